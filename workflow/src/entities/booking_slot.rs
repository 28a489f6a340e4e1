use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "booking_slots")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub service_type: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub start_at: DateTimeUtc,
    /// Places taken by bookings that hold one.
    pub taken: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
