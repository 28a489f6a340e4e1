//! 我的待办: what a user is expected to do next, derived from the state of their things
//! rather than stored, so it can never disagree with them.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use strum::AsRefStr;

use crate::entities::work_order;
use crate::error::Result;
use crate::work_order::Status;
use crate::workflow::Workflow;

#[derive(Debug, Clone, Copy, PartialEq, Eq, AsRefStr)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum TodoKind {
    AnswerInvitation,
    RateWorkOrder,
    RateChat,
    BookingSoon,
    ReadReply,
}

#[derive(Debug, Clone)]
pub struct Todo {
    pub kind: TodoKind,
    pub title: String,
    pub target_id: String,
    pub due_at: Option<DateTime<Utc>>,
}

impl Workflow {
    pub async fn todos(&self, user_id: &str) -> Result<Vec<Todo>> {
        let now = self.now();
        let window = self.config.work_orders.rating_window;
        let to_rate = work_order::Entity::find()
            .filter(work_order::Column::TaxpayerId.eq(user_id))
            .filter(work_order::Column::Status.eq(Status::Completed.as_ref()))
            .filter(work_order::Column::RatedAt.is_null())
            .filter(work_order::Column::ClosedAt.gt(now - window))
            .order_by_asc(work_order::Column::ClosedAt)
            .all(&self.db)
            .await?;
        Ok(to_rate
            .into_iter()
            .map(|o| Todo {
                kind: TodoKind::RateWorkOrder,
                title: format!("请评价工单 {}「{}」", o.number, o.title),
                due_at: o.closed_at.map(|c| c + window),
                target_id: o.id,
            })
            .collect())
    }
}
