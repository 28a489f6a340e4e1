//! Work orders (工单): the machine, its service, and how numbers are given.

pub mod machine;
mod notices;
pub mod service;

pub use machine::{
    Decision, Effect, Event, EventKind, NoticeKind, Policy, Priority, Rating, Recipient, Snapshot,
    Status,
};
pub use service::{CreateWorkOrder, PreparedOrder, StagedOrder, WorkOrderFilter, WorkOrders};
