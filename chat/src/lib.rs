//! Live chat: sessions with the virtual agent and human agents, the hand-over queue and
//! routing, messages, attachments, remote assistance and call signalling, and the realtime
//! hub that pushes all of it to subscribers.

pub mod attachment;
mod booked;
pub mod bot;
pub mod channel;
mod channel_end;
mod chat;
pub mod download_link;
pub mod entities;
pub mod faq;
pub mod hub;
pub mod incoming;
pub mod kb;
pub mod message;
pub mod offer;
pub mod presence;
pub mod review;
pub mod session;
mod timers;

pub use chat::{Chat, ChatConfig, timer};
