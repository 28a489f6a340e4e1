//! The virtual agent's learning loop: every question it did not answer, whose answer was
//! voted 无用, or whose chat went on to a human lands in the staff review queue with why;
//! staff link it to an FAQ (it becomes one of its phrasings) or dismiss it.

pub mod machine;
pub mod service;

pub use machine::{EventKind, Reason, Status};
pub use service::{NewAskedQuestion, normalized};
