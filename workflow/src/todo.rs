//! 我的待办: what a user is expected to do next, derived from the state of their things
//! rather than stored, so it can never disagree with them.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use strum::AsRefStr;

use crate::booking::machine::Status as BookingStatus;
use crate::entities::{booking, work_order};
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
        let mut todos: Vec<Todo> = to_rate
            .into_iter()
            .map(|o| Todo {
                kind: TodoKind::RateWorkOrder,
                title: format!("请评价工单 {}「{}」", o.number, o.title),
                due_at: o.closed_at.map(|c| c + window),
                target_id: o.id,
            })
            .collect();
        let bookings = booking::Entity::find()
            .filter(booking::Column::TaxpayerId.eq(user_id))
            .filter(booking::Column::StartAt.gt(now))
            .filter(booking::Column::Status.is_in([
                BookingStatus::Invited.as_ref(),
                BookingStatus::Confirmed.as_ref(),
            ]))
            .order_by_asc(booking::Column::StartAt)
            .all(&self.db)
            .await?;
        for b in bookings {
            let name = self
                .config
                .service_type(&b.service_type)
                .map(|s| s.name.clone())
                .unwrap_or_else(|| b.service_type.clone());
            let when = b
                .start_at
                .with_timezone(&chrono_tz::Asia::Shanghai)
                .format("%m-%d %H:%M");
            if b.status == BookingStatus::Invited.as_ref() {
                todos.push(Todo {
                    kind: TodoKind::AnswerInvitation,
                    title: format!("请答复税务局的邀请：{name}（{when}）"),
                    target_id: b.id,
                    due_at: Some(b.start_at),
                });
            } else if b.start_at - now <= chrono::Duration::hours(24) {
                todos.push(Todo {
                    kind: TodoKind::BookingSoon,
                    title: format!("预约即将开始：{name}（{when}）"),
                    target_id: b.id,
                    due_at: Some(b.start_at),
                });
            }
        }
        todos.extend(self.leave_messages().read_reply_todos(user_id).await?);
        Ok(todos)
    }
}
