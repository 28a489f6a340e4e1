//! What the virtual agent based a chat reply on: the FAQ it answered with, or the related
//! questions it offered, so a front end can show 有用/无用, 收藏 and clickable questions.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per ALTER: SQLite adds one at a time.
        m.alter_table(
            Table::alter()
                .table("chat_messages")
                .add_column(string_len_null("faq_id", 64))
                .take(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table("chat_messages")
                // A JSON list of FAQ ids.
                .add_column(text_null("suggestion_ids"))
                .take(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for col in ["suggestion_ids", "faq_id"] {
            m.alter_table(
                Table::alter()
                    .table("chat_messages")
                    .drop_column(col)
                    .take(),
            )
            .await?;
        }
        Ok(())
    }
}
