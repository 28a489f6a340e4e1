//! The database schema of taxdesk: one migration per change, applied in order on SQLite and
//! PostgreSQL alike. Ids are text (UUID v7 strings, or the token subject for users) so they
//! read the same on both databases and sort by creation time.

pub use sea_orm_migration::MigratorTrait;
use sea_orm_migration::prelude::*;

mod m20261126_000001_foundation;
mod m20261126_000002_jobs;
mod m20261126_000003_chat;
mod m20261126_000004_bookings;
mod m20261126_000005_leave_messages;
mod m20261126_000006_knowledge_base;
mod m20261126_000007_realtime_payloads;
mod m20261126_000008_bot_reply_basis;
mod m20261204_000009_asked_questions;
mod m20261204_000010_routing;
mod m20261204_000011_one_channel_in_play;
mod m20261204_000015_ask_log_by_user;
mod m20261205_000016_ask_log_by_session;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_foundation::Migration),
            Box::new(m20261126_000002_jobs::Migration),
            Box::new(m20261126_000003_chat::Migration),
            Box::new(m20261126_000004_bookings::Migration),
            Box::new(m20261126_000005_leave_messages::Migration),
            Box::new(m20261126_000006_knowledge_base::Migration),
            Box::new(m20261126_000007_realtime_payloads::Migration),
            Box::new(m20261126_000008_bot_reply_basis::Migration),
            Box::new(m20261204_000009_asked_questions::Migration),
            Box::new(m20261204_000010_routing::Migration),
            Box::new(m20261204_000011_one_channel_in_play::Migration),
            Box::new(m20261204_000015_ask_log_by_user::Migration),
            Box::new(m20261205_000016_ask_log_by_session::Migration),
        ]
    }
}
