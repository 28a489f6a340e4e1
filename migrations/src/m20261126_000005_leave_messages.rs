//! Offline messages (在线留言): the messages, the conversation under each (staff replies and
//! the taxpayer's follow-ups, with read marks) and their history.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn id(name: &'static str) -> ColumnDef {
    string_len(name, 64).primary_key().take()
}

async fn index(
    m: &SchemaManager<'_>,
    name: &str,
    table: &str,
    cols: &[&'static str],
    unique: bool,
) -> Result<(), DbErr> {
    let mut i = Index::create().name(name).table(table.to_string()).take();
    for c in cols {
        i.col(*c);
    }
    if unique {
        i.unique();
    }
    m.create_index(i).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("leave_messages")
                .col(id("id"))
                // The owner: the taxpayer's user id.
                .col(string_len("taxpayer_id", 64))
                // One of the configured categories (as work orders).
                .col(string_len("category", 32))
                .col(text("content"))
                .col(string_len_null("contact", 100))
                // A JSON list of attachment ids, e.g. `["0193…"]`.
                .col(text("attachment_ids"))
                // SUBMITTED, REPLIED, CLOSED
                .col(string_len("status", 16))
                // The chat whose refused hand-over led to the message.
                .col(string_len_null("source_session_id", 64))
                // The work order it was turned into.
                .col(string_len_null("work_order_id", 64))
                // The staff member who replied last; told of a follow-up.
                .col(string_len_null("last_replier_id", 64))
                .col(integer("version"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("updated_at"))
                .col(timestamp_with_time_zone_null("closed_at"))
                .col(string_len_null("closed_by", 64))
                .foreign_key(
                    ForeignKey::create()
                        .name("leave_messages_taxpayer")
                        .from("leave_messages", "taxpayer_id")
                        .to("users", "id"),
                )
                .take(),
        )
        .await?;
        index(
            m,
            "leave_messages_taxpayer",
            "leave_messages",
            &["taxpayer_id", "id"],
            false,
        )
        .await?;
        index(
            m,
            "leave_messages_status",
            "leave_messages",
            &["status", "id"],
            false,
        )
        .await?;

        m.create_table(
            Table::create()
                .table("leave_message_replies")
                .col(id("id"))
                .col(string_len("leave_message_id", 64))
                .col(string_len("author_id", 64))
                .col(string_len("author_role", 16))
                .col(text("content"))
                .col(timestamp_with_time_zone("created_at"))
                // When the taxpayer read a staff reply; their own follow-ups are born read.
                .col(timestamp_with_time_zone_null("read_at"))
                .foreign_key(
                    ForeignKey::create()
                        .name("leave_message_replies_message")
                        .from("leave_message_replies", "leave_message_id")
                        .to("leave_messages", "id"),
                )
                .take(),
        )
        .await?;
        index(
            m,
            "leave_message_replies_message",
            "leave_message_replies",
            &["leave_message_id", "id"],
            false,
        )
        .await?;

        m.create_table(
            Table::create()
                .table("leave_message_history")
                .col(id("id"))
                .col(string_len("leave_message_id", 64))
                .col(integer("seq"))
                .col(string_len("event", 32))
                .col(string_len_null("from_status", 16))
                .col(string_len("to_status", 16))
                .col(string_len("actor_id", 64))
                .col(string_len("actor_role", 16))
                .col(text_null("note"))
                .col(timestamp_with_time_zone("at"))
                .foreign_key(
                    ForeignKey::create()
                        .name("leave_message_history_message")
                        .from("leave_message_history", "leave_message_id")
                        .to("leave_messages", "id"),
                )
                .take(),
        )
        .await?;
        // One row per step: a second writer of the same step fails here even if it slipped
        // past the version check.
        index(
            m,
            "leave_message_history_seq",
            "leave_message_history",
            &["leave_message_id", "seq"],
            true,
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            "leave_message_history",
            "leave_message_replies",
            "leave_messages",
        ] {
            m.drop_table(Table::drop().table(t).take()).await?;
        }
        Ok(())
    }
}
