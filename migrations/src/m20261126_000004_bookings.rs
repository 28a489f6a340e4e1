//! Appointments (预约): bookings with their history, and the places taken per slot.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("bookings")
                .col(string_len("id", 64).primary_key())
                .col(string_len("taxpayer_id", 64))
                // MINE (the taxpayer booked) or BUREAU_INVITED
                .col(string_len("origin", 16))
                .col(string_len("service_type", 32))
                // TEXT, VOICE, VIDEO
                .col(string_len("method", 16))
                .col(timestamp_with_time_zone("start_at"))
                .col(timestamp_with_time_zone("end_at"))
                // INVITED, CONFIRMED, REJECTED, EXPIRED, CANCELLED, IN_SESSION, COMPLETED, NO_SHOW
                .col(string_len("status", 16))
                // The staff member who hosts it (the inviter, or who takes it at the start).
                .col(string_len_null("agent_id", 64))
                .col(string_len_null("inviter_id", 64))
                .col(text_null("note"))
                .col(text_null("reason"))
                // Whether the booking holds a place in its slot (taxpayer bookings do).
                .col(boolean("holds_place").default(false))
                .col(string_len_null("chat_session_id", 64))
                .col(integer("version"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("updated_at"))
                .take(),
        )
        .await?;
        for (name, cols) in [
            ("bookings_taxpayer", vec!["taxpayer_id", "start_at"]),
            ("bookings_start", vec!["start_at"]),
            ("bookings_agent", vec!["agent_id", "start_at"]),
        ] {
            let mut i = Index::create().name(name).table("bookings").take();
            for c in cols {
                i.col(c);
            }
            m.create_index(i).await?;
        }

        m.create_table(
            Table::create()
                .table("booking_history")
                .col(string_len("id", 64).primary_key())
                .col(string_len("booking_id", 64))
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
        m.create_index(
            Index::create()
                .name("booking_history_seq")
                .table("booking_history")
                .col("booking_id")
                .col("seq")
                .unique()
                .take(),
        )
        .await?;

        // One row per (service type, slot start): `taken` only grows while below capacity,
        // in one statement, so the last place goes to exactly one booking.
        m.create_table(
            Table::create()
                .table("booking_slots")
                .col(string_len("service_type", 32))
                .col(timestamp_with_time_zone("start_at"))
                .col(integer("taken"))
                .primary_key(Index::create().col("service_type").col("start_at"))
                .take(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in ["booking_slots", "booking_history", "bookings"] {
            m.drop_table(Table::drop().table(t).take()).await?;
        }
        Ok(())
    }
}
