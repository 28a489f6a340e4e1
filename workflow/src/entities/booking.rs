use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "bookings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub taxpayer_id: String,
    /// `MINE` or `BUREAU_INVITED`.
    pub origin: String,
    pub service_type: String,
    /// `TEXT`, `VOICE` or `VIDEO`.
    pub method: String,
    pub start_at: DateTimeUtc,
    pub end_at: DateTimeUtc,
    pub status: String,
    pub agent_id: Option<String>,
    pub inviter_id: Option<String>,
    pub note: Option<String>,
    /// Why it was rejected or cancelled.
    pub reason: Option<String>,
    pub holds_place: bool,
    pub chat_session_id: Option<String>,
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
