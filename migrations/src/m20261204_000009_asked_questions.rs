//! The staff review queue of the virtual agent (the learning loop): questions it did not
//! answer, answers voted 无用 and chats that ended in a hand-over, each linked to an FAQ
//! (becoming one of its phrasings) or dismissed, with the history of who did what.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("asked_questions")
                .col(string_len("id", 64).primary_key())
                .col(text("text"))
                // Folded text (width, traditional characters, case, punctuation): what
                // "the same question" means.
                .col(text("normalized_text"))
                .col(string_len("reason", 16))
                .col(string_len("status", 16))
                // reason + normalized text while OPEN, NULL after: one open row per question
                // and reason, however often it is asked (NULLs never collide).
                .col(text_null("open_key"))
                .col(integer("ask_count").default(1))
                .col(string_len_null("closest_faq_id", 64))
                .col(string_len_null("linked_faq_id", 64))
                .col(double("confidence"))
                .col(string_len_null("session_id", 64))
                .col(string_len_null("user_id", 64))
                .col(integer("version"))
                .col(timestamp_with_time_zone("at"))
                .col(timestamp_with_time_zone("last_asked_at"))
                .col(timestamp_with_time_zone("updated_at"))
                .take(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("asked_questions_open_key")
                .table("asked_questions")
                .col("open_key")
                .unique()
                .take(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("asked_questions_status")
                .table("asked_questions")
                .col("status")
                .col("id")
                .take(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("asked_question_history")
                .col(string_len("id", 64).primary_key())
                .col(string_len("asked_question_id", 64))
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
                        .name("asked_question_history_question")
                        .from("asked_question_history", "asked_question_id")
                        .to("asked_questions", "id"),
                )
                .take(),
        )
        .await?;
        // One row per step: a second writer of the same step fails here.
        m.create_index(
            Index::create()
                .name("asked_question_history_seq")
                .table("asked_question_history")
                .col("asked_question_id")
                .col("seq")
                .unique()
                .take(),
        )
        .await?;
        // A hand-over looks up the session's last question.
        m.create_index(
            Index::create()
                .name("ask_log_session")
                .table("ask_log")
                .col("session_id")
                .take(),
        )
        .await?;
        // What `unansweredQuestions` listed before this table: every unanswered ask that was
        // not a hand-over request, kept as OPEN questions (without an open key, so a later
        // ask of the same text opens a row of its own).
        let db = m.get_connection();
        db.execute_unprepared(
            "INSERT INTO asked_questions (id, text, normalized_text, reason, status, open_key, \
             ask_count, closest_faq_id, linked_faq_id, confidence, session_id, user_id, version, \
             at, last_asked_at, updated_at) \
             SELECT id, text, text, 'UNANSWERED', 'OPEN', NULL, 1, matched_id, NULL, confidence, \
             session_id, user_id, 1, at, at, at FROM ask_log \
             WHERE answered = false AND handover = false",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("ask_log_session")
                .table("ask_log")
                .to_owned(),
        )
        .await?;
        for t in ["asked_question_history", "asked_questions"] {
            m.drop_table(Table::drop().table(t).take()).await?;
        }
        Ok(())
    }
}
