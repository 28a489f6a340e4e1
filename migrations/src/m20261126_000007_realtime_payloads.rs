//! Realtime events too big for a PostgreSQL NOTIFY (8000 bytes; e.g. a WebRTC offer): the
//! publishing instance writes the event here and notifies its id; the others read it back.
//! Rows live minutes and are pruned as new ones are written. Unused on SQLite (one instance).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("realtime_payloads")
                .col(string_len("id", 64).primary_key())
                // The whole event as JSON, as it would have gone in the NOTIFY.
                .col(text("body"))
                .col(timestamp_with_time_zone("created_at"))
                .to_owned(),
        )
        .await?;
        // Pruning deletes by age.
        m.create_index(
            Index::create()
                .name("realtime_payloads_created_at")
                .table("realtime_payloads")
                .col("created_at")
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("realtime_payloads").to_owned())
            .await
    }
}
