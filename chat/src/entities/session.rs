use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "chat_sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub taxpayer_id: String,
    /// `BOT`, `QUEUED`, `ACTIVE`, `ENDED` or `ABANDONED`.
    pub status: String,
    pub skill_group: String,
    pub agent_id: Option<String>,
    pub had_agent: bool,
    pub queue_priority: i32,
    pub queued_at: Option<DateTimeUtc>,
    pub assigned_at: Option<DateTimeUtc>,
    pub agent_replied_at: Option<DateTimeUtc>,
    pub ended_at: Option<DateTimeUtc>,
    pub ended_by: Option<String>,
    pub booking_id: Option<String>,
    pub first_question: Option<String>,
    pub rating_resolved: Option<bool>,
    pub rating_satisfaction: Option<i16>,
    pub rating_comment: Option<String>,
    pub rated_at: Option<DateTimeUtc>,
    pub last_activity_at: DateTimeUtc,
    /// The taxpayer id while open, `None` once closed (unique: one open session each).
    pub open_key: Option<String>,
    pub last_seq: i64,
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
