//! sea-orm entities of live chat, one file per table.

pub mod agent_presence;
pub mod attachment;
pub mod channel;
pub mod channel_history;
pub mod chat_read;
pub mod message;
pub mod session;
pub mod session_history;
