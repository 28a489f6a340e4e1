use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "agent_presence")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
    /// `ONLINE`, `AWAY` or `OFFLINE`.
    pub status: String,
    /// JSON list of skill groups; empty means every group.
    pub skill_groups: String,
    pub max_concurrent: i32,
    /// ACTIVE chats of the agent, kept in step by every session transition (routing finds
    /// free agents by it; an assignment re-counts under the row lock).
    pub active_chats: i32,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
