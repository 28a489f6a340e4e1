use sea_orm::entity::prelude::*;

/// One entry of a message's conversation: a staff reply or the taxpayer's follow-up.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "leave_message_replies")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub leave_message_id: String,
    pub author_id: String,
    pub author_role: String,
    pub content: String,
    pub created_at: DateTimeUtc,
    /// When the taxpayer read it; their own follow-ups are written read.
    pub read_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
