//! Users, work orders with their history, notifications, the email outbox and named counters.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn id(name: &'static str) -> ColumnDef {
    string_len(name, 64).primary_key().take()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("users")
                .col(id("id"))
                .col(string_len("role", 16))
                .col(string_len("display_name", 100))
                .col(string_len_null("taxpayer_id", 32))
                .col(string_len_null("email", 254))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("updated_at"))
                .take(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("users_role")
                .table("users")
                .col("role")
                .take(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("work_orders")
                .col(id("id"))
                .col(string_len_uniq("number", 32))
                .col(string_len("title", 200))
                .col(text("description"))
                .col(string_len("category", 32))
                .col(string_len("taxpayer_id", 64))
                .col(string_len("created_by", 64))
                .col(string_len_null("handler_id", 64))
                .col(string_len("status", 16))
                .col(string_len("priority", 16))
                .col(integer("urge_count").default(0))
                .col(timestamp_with_time_zone_null("last_urged_at"))
                .col(text_null("resolution"))
                .col(small_integer_null("rating_score"))
                .col(text_null("rating_comment"))
                .col(timestamp_with_time_zone_null("rated_at"))
                .col(timestamp_with_time_zone_null("closed_at"))
                .col(timestamp_with_time_zone_null("deadline"))
                .col(timestamp_with_time_zone_null("overdue_escalated_for"))
                .col(string_len_null("source_session_id", 64))
                .col(string_len_null("source_leave_message_id", 64))
                .col(integer("version"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("updated_at"))
                .foreign_key(
                    ForeignKey::create()
                        .name("work_orders_taxpayer")
                        .from("work_orders", "taxpayer_id")
                        .to("users", "id"),
                )
                .take(),
        )
        .await?;
        for (name, col) in [
            ("work_orders_taxpayer_id", "taxpayer_id"),
            ("work_orders_handler_id", "handler_id"),
            ("work_orders_status", "status"),
            ("work_orders_deadline", "deadline"),
        ] {
            m.create_index(
                Index::create()
                    .name(name)
                    .table("work_orders")
                    .col(col)
                    .take(),
            )
            .await?;
        }

        m.create_table(
            Table::create()
                .table("work_order_history")
                .col(id("id"))
                .col(string_len("work_order_id", 64))
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
                        .name("work_order_history_order")
                        .from("work_order_history", "work_order_id")
                        .to("work_orders", "id"),
                )
                .take(),
        )
        .await?;
        // One row per step: a second writer of the same step fails here even if it slipped
        // past the version check.
        m.create_index(
            Index::create()
                .name("work_order_history_seq")
                .table("work_order_history")
                .col("work_order_id")
                .col("seq")
                .unique()
                .take(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("notifications")
                .col(id("id"))
                .col(string_len("user_id", 64))
                .col(string_len("kind", 40))
                .col(string_len("title", 200))
                .col(text("body"))
                .col(string_len_null("target_kind", 32))
                .col(string_len_null("target_id", 64))
                .col(timestamp_with_time_zone_null("read_at"))
                .col(timestamp_with_time_zone("created_at"))
                .take(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("notifications_user")
                .table("notifications")
                .col("user_id")
                .col("id")
                .take(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("outbox_emails")
                .col(id("id"))
                .col(string_len_null("user_id", 64))
                .col(string_len("to_address", 254))
                .col(string_len("kind", 40))
                .col(string_len("subject", 200))
                .col(text("body_text"))
                .col(text("body_html"))
                .col(string_len("state", 16))
                .col(integer("attempts").default(0))
                .col(timestamp_with_time_zone("next_attempt_at"))
                .col(text_null("last_error"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone_null("sent_at"))
                .take(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("outbox_emails_due")
                .table("outbox_emails")
                .col("state")
                .col("next_attempt_at")
                .take(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("counters")
                .col(string_len("name", 64).primary_key())
                .col(big_integer("value"))
                .take(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            "counters",
            "outbox_emails",
            "notifications",
            "work_order_history",
            "work_orders",
            "users",
        ] {
            m.drop_table(Table::drop().table(t).take()).await?;
        }
        Ok(())
    }
}
