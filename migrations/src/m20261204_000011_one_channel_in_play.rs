//! At most one remote assistance and one call in play (requested, invited or active) per chat
//! session, held by the database: two requests racing past the service's check can no longer
//! both be inserted; the loser's insert fails on this index and is refused.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const IN_PLAY: &str = "('REQUESTED', 'INVITED', 'ACTIVE')";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        // Races before this index may have left several in play in one session: the newest
        // (ids are UUID v7) stays, the older ones are cancelled so the index can be built.
        db.execute_unprepared(&format!(
            "UPDATE chat_channels SET status = 'CANCELLED', ended_at = updated_at, \
             version = version + 1 \
             WHERE status IN {IN_PLAY} AND EXISTS (SELECT 1 FROM chat_channels newer \
             WHERE newer.session_id = chat_channels.session_id \
             AND newer.kind = chat_channels.kind \
             AND newer.status IN {IN_PLAY} AND newer.id > chat_channels.id)"
        ))
        .await?;
        // A partial unique index: the same statement on SQLite and PostgreSQL.
        db.execute_unprepared(&format!(
            "CREATE UNIQUE INDEX chat_channels_one_in_play ON chat_channels (session_id, kind) \
             WHERE status IN {IN_PLAY}"
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("chat_channels_one_in_play")
                .table("chat_channels")
                .to_owned(),
        )
        .await
    }
}
