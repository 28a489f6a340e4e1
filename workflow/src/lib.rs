//! taxdesk's domain: the state machines (pure `decide` functions), the services that apply
//! their decisions in one transaction each, and the sea-orm entities they persist to.
//!
//! Nothing here knows GraphQL or HTTP. Higher crates call the services and carry out effects
//! that must happen outside this crate.

pub mod actor;
pub mod booking;
pub mod calendar;
pub mod entities;
pub mod error;
pub mod fanout;
pub mod jobs;
pub mod leave_message;
pub mod metrics;
pub mod notification;
pub mod page;
pub mod refusal;
pub mod todo;
pub mod users;
pub mod work_order;

mod counter;
mod job_wake;
mod workflow;

pub use actor::{Actor, Role};
pub use error::{Error, InputError};
pub use refusal::{Refusal, RefusalCode};
pub use workflow::{Workflow, WorkflowConfig};
