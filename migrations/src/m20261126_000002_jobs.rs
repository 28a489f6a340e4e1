//! Durable timed jobs: one row per piece of timed work, claimed with a lease.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("jobs")
                .col(string_len("id", 64).primary_key())
                .col(string_len("kind", 64))
                .col(text("payload"))
                // Makes scheduling idempotent: the same key is written once, ever.
                .col(string_len_uniq("dedupe_key", 200))
                .col(timestamp_with_time_zone("run_at"))
                // PENDING, RUNNING, DONE, DEAD, CANCELLED
                .col(string_len("state", 16))
                .col(integer("attempts").default(0))
                .col(integer("max_attempts"))
                .col(string_len_null("locked_by", 100))
                .col(timestamp_with_time_zone_null("locked_until"))
                .col(text_null("last_error"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("updated_at"))
                .col(timestamp_with_time_zone_null("started_at"))
                .col(timestamp_with_time_zone_null("finished_at"))
                .take(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("jobs_due")
                .table("jobs")
                .col("state")
                .col("run_at")
                .take(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("jobs_kind")
                .table("jobs")
                .col("kind")
                .take(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("jobs").take()).await
    }
}
