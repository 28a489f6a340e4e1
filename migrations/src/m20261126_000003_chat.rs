//! Live chat: sessions (at most one open per taxpayer), their history, messages with a
//! total order per session, read marks, agent presence, attachments, and the remote-assist
//! and call channels with their history.

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
                .table("chat_sessions")
                .col(id("id"))
                .col(string_len("taxpayer_id", 64))
                // BOT, QUEUED, ACTIVE, ENDED, ABANDONED
                .col(string_len("status", 16))
                .col(string_len("skill_group", 32))
                .col(string_len_null("agent_id", 64))
                // Whether a human agent ever took part (only then is a rating asked).
                .col(boolean("had_agent").default(false))
                // Higher is served first: booked sessions and re-queued ones jump ahead.
                .col(integer("queue_priority").default(0))
                .col(timestamp_with_time_zone_null("queued_at"))
                .col(timestamp_with_time_zone_null("assigned_at"))
                .col(timestamp_with_time_zone_null("agent_replied_at"))
                .col(timestamp_with_time_zone_null("ended_at"))
                .col(string_len_null("ended_by", 64))
                .col(string_len_null("booking_id", 64))
                .col(text_null("first_question"))
                .col(boolean_null("rating_resolved"))
                .col(small_integer_null("rating_satisfaction"))
                .col(text_null("rating_comment"))
                .col(timestamp_with_time_zone_null("rated_at"))
                .col(timestamp_with_time_zone("last_activity_at"))
                // The taxpayer's id while the session is open, NULL once closed: a unique
                // index on it allows one open session per taxpayer and any number of closed.
                .col(string_len_null("open_key", 64))
                .col(big_integer("last_seq").default(0))
                .col(integer("version"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("updated_at"))
                .take(),
        )
        .await?;
        index(
            m,
            "chat_sessions_open_key",
            "chat_sessions",
            &["open_key"],
            true,
        )
        .await?;
        index(
            m,
            "chat_sessions_taxpayer",
            "chat_sessions",
            &["taxpayer_id"],
            false,
        )
        .await?;
        index(
            m,
            "chat_sessions_queue",
            "chat_sessions",
            &["status", "skill_group"],
            false,
        )
        .await?;
        index(
            m,
            "chat_sessions_agent",
            "chat_sessions",
            &["agent_id", "status"],
            false,
        )
        .await?;

        m.create_table(
            Table::create()
                .table("chat_session_history")
                .col(id("id"))
                .col(string_len("session_id", 64))
                .col(integer("seq"))
                .col(string_len("event", 32))
                .col(string_len_null("from_status", 16))
                .col(string_len("to_status", 16))
                .col(string_len("actor_id", 64))
                .col(string_len("actor_role", 16))
                .col(text_null("note"))
                .col(timestamp_with_time_zone("at"))
                .take(),
        )
        .await?;
        index(
            m,
            "chat_session_history_seq",
            "chat_session_history",
            &["session_id", "seq"],
            true,
        )
        .await?;

        m.create_table(
            Table::create()
                .table("chat_messages")
                .col(id("id"))
                .col(string_len("session_id", 64))
                // 1, 2, 3 … per session: the order every reader sees.
                .col(big_integer("seq"))
                .col(string_len("sender_id", 64))
                // TAXPAYER, STAFF, ADMIN, BOT, SYSTEM
                .col(string_len("sender_role", 16))
                // TEXT, EMOJI, IMAGE, FILE, SYSTEM
                .col(string_len("kind", 16))
                .col(text_null("text"))
                .col(string_len_null("attachment_id", 64))
                .col(string_len_null("client_message_id", 64))
                .col(timestamp_with_time_zone("created_at"))
                .take(),
        )
        .await?;
        index(
            m,
            "chat_messages_seq",
            "chat_messages",
            &["session_id", "seq"],
            true,
        )
        .await?;
        // A resend with the same client id finds the first message instead of adding one.
        index(
            m,
            "chat_messages_client_id",
            "chat_messages",
            &["session_id", "sender_id", "client_message_id"],
            true,
        )
        .await?;

        m.create_table(
            Table::create()
                .table("chat_reads")
                .col(string_len("session_id", 64))
                .col(string_len("user_id", 64))
                .col(big_integer("last_read_seq"))
                .col(timestamp_with_time_zone("updated_at"))
                .primary_key(Index::create().col("session_id").col("user_id"))
                .take(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("agent_presence")
                .col(string_len("user_id", 64).primary_key())
                // ONLINE, AWAY, OFFLINE
                .col(string_len("status", 16))
                // JSON list; empty = every group.
                .col(text("skill_groups"))
                .col(integer("max_concurrent"))
                .col(timestamp_with_time_zone("updated_at"))
                .take(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("attachments")
                .col(id("id"))
                .col(string_len("sha256", 64))
                .col(string_len("file_name", 255))
                .col(string_len("content_type", 100))
                .col(big_integer("size"))
                .col(string_len("uploader_id", 64))
                .col(string_len_null("session_id", 64))
                .col(timestamp_with_time_zone("created_at"))
                .take(),
        )
        .await?;
        index(
            m,
            "attachments_session",
            "attachments",
            &["session_id"],
            false,
        )
        .await?;

        m.create_table(
            Table::create()
                .table("chat_channels")
                .col(id("id"))
                .col(string_len("session_id", 64))
                // REMOTE_ASSIST or CALL
                .col(string_len("kind", 16))
                // AUDIO or VIDEO for calls
                .col(string_len_null("media", 16))
                .col(string_len("status", 16))
                .col(string_len("initiator_id", 64))
                .col(integer("version"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("updated_at"))
                .col(timestamp_with_time_zone_null("ended_at"))
                .take(),
        )
        .await?;
        index(
            m,
            "chat_channels_session",
            "chat_channels",
            &["session_id"],
            false,
        )
        .await?;

        m.create_table(
            Table::create()
                .table("chat_channel_history")
                .col(id("id"))
                .col(string_len("channel_id", 64))
                .col(integer("seq"))
                .col(string_len("event", 32))
                .col(string_len_null("from_status", 16))
                .col(string_len("to_status", 16))
                .col(string_len("actor_id", 64))
                .col(string_len("actor_role", 16))
                .col(text_null("note"))
                .col(timestamp_with_time_zone("at"))
                .take(),
        )
        .await?;
        index(
            m,
            "chat_channel_history_seq",
            "chat_channel_history",
            &["channel_id", "seq"],
            true,
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            "chat_channel_history",
            "chat_channels",
            "attachments",
            "agent_presence",
            "chat_reads",
            "chat_messages",
            "chat_session_history",
            "chat_sessions",
        ] {
            m.drop_table(Table::drop().table(t).take()).await?;
        }
        Ok(())
    }
}
