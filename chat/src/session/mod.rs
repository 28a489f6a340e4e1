//! Chat sessions (会话): the machine, the service that applies it, and the queue.

pub(crate) mod intake;
pub mod machine;
mod queue;
pub(crate) mod router;
pub mod service;

pub use machine::{Decision, Effect, Event, EventKind, Snapshot, Status, TransferTarget};
pub use router::Routing;
