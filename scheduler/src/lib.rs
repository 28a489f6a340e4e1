//! The scheduler: durable timed jobs claimed with a lease (safe with many instances on one
//! PostgreSQL), recurring jobs from cron expressions, and the email outbox sender.
//!
//! Jobs are written by the workflow services inside their transactions
//! (`taxdesk_workflow::jobs::schedule`); here they are claimed, run by a [`Handler`] of
//! their kind, and completed only while the claim's lease and attempt still hold.

mod backoff;
mod builtin;
mod cron_plan;
mod handler;
mod mailer;
mod store;
mod worker;

pub use cron_plan::CronEntry;
pub use handler::{Handler, Job, JobError};
pub use mailer::{MailConfig, Mailer};
pub use store::Claimed;
pub use worker::{Scheduler, SchedulerConfig, SchedulerError, Stopper};
