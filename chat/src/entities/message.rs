use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "chat_messages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub session_id: String,
    /// 1, 2, 3 … within the session.
    pub seq: i64,
    pub sender_id: String,
    /// `TAXPAYER`, `STAFF`, `ADMIN`, `BOT` or `SYSTEM`.
    pub sender_role: String,
    /// `TEXT`, `EMOJI`, `IMAGE`, `FILE` or `SYSTEM`.
    pub kind: String,
    pub text: Option<String>,
    pub attachment_id: Option<String>,
    pub client_message_id: Option<String>,
    /// A bot reply's FAQ (the answer given).
    pub faq_id: Option<String>,
    /// A bot reply's related questions, a JSON list of FAQ ids.
    pub suggestion_ids: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
