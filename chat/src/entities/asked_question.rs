use sea_orm::entity::prelude::*;

/// A question in the staff review queue (the virtual agent's learning loop).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "asked_questions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub text: String,
    pub normalized_text: String,
    /// `UNANSWERED`, `USELESS` or `HANDED_OVER`.
    pub reason: String,
    /// `OPEN`, `LINKED` or `DISMISSED`.
    pub status: String,
    /// `reason:normalized text` while OPEN (unique), NULL after.
    pub open_key: Option<String>,
    /// How often the question was asked while OPEN.
    pub ask_count: i32,
    pub closest_faq_id: Option<String>,
    pub linked_faq_id: Option<String>,
    pub confidence: f64,
    pub session_id: Option<String>,
    pub user_id: Option<String>,
    pub version: i32,
    /// First asked.
    pub at: DateTimeUtc,
    pub last_asked_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
