//! A hand-over queues the chat's last question for review inside its own transaction; without
//! an index on the session that read scans the whole ask log (a million rows in a busy month)
//! while the hand-over holds the writer.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(
            Index::create()
                .name("ask_log_session_at")
                .table("ask_log")
                .col("session_id")
                .col("at")
                .take(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("ask_log_session_at")
                .table("ask_log")
                .to_owned(),
        )
        .await
    }
}
