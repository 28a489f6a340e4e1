//! Routing without a convoy (#17): each agent's number of ACTIVE chats kept on their
//! presence row, so a free agent of a group is found through an index instead of by counting
//! everyone's chats; the queue's serving order as an index, so the head is claimed (and a
//! place counted) without reading the whole queue; recent waits of a group by time.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("agent_presence")
                .add_column(integer("active_chats").default(0))
                .take(),
        )
        .await?;
        m.get_connection()
            .execute_unprepared(
                "UPDATE agent_presence SET active_chats = (SELECT COUNT(*) FROM chat_sessions s \
                 WHERE s.agent_id = agent_presence.user_id AND s.status = 'ACTIVE')",
            )
            .await?;
        m.create_index(
            Index::create()
                .name("agent_presence_free")
                .table("agent_presence")
                .col("status")
                .col("active_chats")
                .col("user_id")
                .take(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("chat_sessions_serving_order")
                .table("chat_sessions")
                .col("status")
                .col("skill_group")
                .col(("queue_priority", IndexOrder::Desc))
                .col("queued_at")
                .col("id")
                .take(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("chat_sessions_recent_waits")
                .table("chat_sessions")
                .col("skill_group")
                .col("assigned_at")
                .take(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (name, table) in [
            ("chat_sessions_recent_waits", "chat_sessions"),
            ("chat_sessions_serving_order", "chat_sessions"),
            ("agent_presence_free", "agent_presence"),
        ] {
            m.drop_index(Index::drop().name(name).table(table).to_owned())
                .await?;
        }
        m.alter_table(
            Table::alter()
                .table("agent_presence")
                .drop_column("active_chats")
                .take(),
        )
        .await
    }
}
