//! The knowledge base: FAQs (imported ones keep their source id), votes, favorites, topic
//! bundles, quick links, the log of every question asked, and the ranked hot questions.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("faqs")
                .col(string_len("id", 64).primary_key())
                .col(string_len("category", 32))
                .col(text("question"))
                .col(text("answer"))
                // JSON lists.
                .col(text("keywords"))
                .col(text("similar"))
                // Disabled rather than deleted.
                .col(boolean("enabled").default(true))
                .col(integer("useful_count").default(0))
                .col(integer("useless_count").default(0))
                .col(integer("version"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("updated_at"))
                .take(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("faq_votes")
                .col(string_len("faq_id", 64))
                .col(string_len("user_id", 64))
                .col(boolean("useful"))
                .col(timestamp_with_time_zone("at"))
                .primary_key(Index::create().col("faq_id").col("user_id"))
                .take(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("faq_favorites")
                .col(string_len("user_id", 64))
                .col(string_len("faq_id", 64))
                .col(string_len("id", 64).unique_key())
                .col(timestamp_with_time_zone("created_at"))
                .primary_key(Index::create().col("user_id").col("faq_id"))
                .take(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("ask_log")
                .col(string_len("id", 64).primary_key())
                .col(string_len_null("user_id", 64))
                .col(string_len_null("session_id", 64))
                .col(text("text"))
                .col(string_len_null("matched_id", 64))
                .col(double("confidence"))
                .col(boolean("answered"))
                .col(boolean("handover"))
                .col(timestamp_with_time_zone("at"))
                .take(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ask_log_at")
                .table("ask_log")
                .col("at")
                .take(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("qa_packages")
                .col(string_len("id", 64).primary_key())
                .col(string_len("title", 100))
                .col(text("faq_ids"))
                .col(integer("position").default(0))
                .col(boolean("enabled").default(true))
                .col(timestamp_with_time_zone("updated_at"))
                .take(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("quick_links")
                .col(string_len("id", 64).primary_key())
                .col(string_len("title", 100))
                .col(string_len("url", 500))
                .col(integer("position"))
                .take(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("hot_questions")
                .col(string_len("faq_id", 64).primary_key())
                .col(integer("rank"))
                .col(integer("asks"))
                .col(timestamp_with_time_zone("computed_at"))
                .take(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            "hot_questions",
            "quick_links",
            "qa_packages",
            "ask_log",
            "faq_favorites",
            "faq_votes",
            "faqs",
        ] {
            m.drop_table(Table::drop().table(t).take()).await?;
        }
        Ok(())
    }
}
