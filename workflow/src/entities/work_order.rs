use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "work_orders")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub number: String,
    pub title: String,
    pub description: String,
    pub category: String,
    /// The owner: the taxpayer's user id.
    pub taxpayer_id: String,
    pub created_by: String,
    pub handler_id: Option<String>,
    pub status: String,
    pub priority: String,
    pub urge_count: i32,
    pub last_urged_at: Option<DateTimeUtc>,
    pub resolution: Option<String>,
    pub rating_score: Option<i16>,
    pub rating_comment: Option<String>,
    pub rated_at: Option<DateTimeUtc>,
    pub closed_at: Option<DateTimeUtc>,
    pub deadline: Option<DateTimeUtc>,
    pub overdue_escalated_for: Option<DateTimeUtc>,
    pub source_session_id: Option<String>,
    pub source_leave_message_id: Option<String>,
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
