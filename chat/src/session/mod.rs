//! Chat sessions (会话): the machine, the service that applies it, and the queue.

pub mod machine;
mod queue;
pub mod service;

pub use machine::{Decision, Effect, Event, EventKind, Snapshot, Status, TransferTarget};
