//! Live chat: sessions with the virtual agent and human agents, the hand-over queue and
//! routing, messages, attachments, remote assistance and call signalling, and the realtime
//! hub that pushes all of it to subscribers.

pub mod entities;
