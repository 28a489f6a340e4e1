use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "faq_votes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub faq_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
    pub useful: bool,
    pub at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
