//! A 无用 vote finds the taxpayer's last ask of that FAQ inside the vote's transaction; without
//! an index on the asker that read scans the whole ask log (a million rows in a busy month).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(
            Index::create()
                .name("ask_log_user_at")
                .table("ask_log")
                .col("user_id")
                .col("at")
                .take(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("ask_log_user_at")
                .table("ask_log")
                .to_owned(),
        )
        .await
    }
}
