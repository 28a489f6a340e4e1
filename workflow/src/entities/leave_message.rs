use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "leave_messages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The owner: the taxpayer's user id.
    pub taxpayer_id: String,
    pub category: String,
    pub content: String,
    pub contact: Option<String>,
    /// A JSON list of attachment ids (`["…"]`); read it with `attachment_ids()`.
    pub attachment_ids: String,
    pub status: String,
    pub source_session_id: Option<String>,
    pub work_order_id: Option<String>,
    pub last_replier_id: Option<String>,
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub closed_at: Option<DateTimeUtc>,
    pub closed_by: Option<String>,
}

impl Model {
    /// The attachment ids; an unreadable column reads as none.
    pub fn attachment_ids(&self) -> Vec<String> {
        serde_json::from_str(&self.attachment_ids).unwrap_or_default()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
