//! Offline messages (在线留言): the machine, its service, and the words of its notices.

pub mod machine;
mod notices;
pub mod service;

pub use machine::{Decision, Effect, Event, EventKind, NoticeKind, Recipient, Snapshot, Status};
pub use service::{LeaveMessageFilter, LeaveMessages, SubmitLeaveMessage};
