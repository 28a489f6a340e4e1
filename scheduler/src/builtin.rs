//! The job kinds taxdesk runs itself: work-order deadlines, email delivery, clean-up.

use std::sync::Arc;

use async_trait::async_trait;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use taxdesk_workflow::entities::outbox_email;
use taxdesk_workflow::work_order::Event;
use taxdesk_workflow::{Actor, Error, Workflow, metrics};

use crate::handler::{Handler, Job, JobError};
use crate::mailer::Mailer;
use crate::store::Store;

fn db_error(e: impl std::fmt::Display) -> JobError {
    JobError::retry(format!("database: {e}"))
}

/// `work_order.deadline`: raises `overdue` on the order. Already closed, already escalated
/// or not due (the deadline moved): nothing to do, which is success.
pub struct WorkOrderDeadline(pub Workflow);

#[async_trait]
impl Handler for WorkOrderDeadline {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        let id = job.field("workOrderId")?;
        match self
            .0
            .work_orders()
            .apply(&Actor::system(), id, Event::Overdue)
            .await
        {
            Ok(o) => {
                tracing::info!(work_order.id = %id, number = %o.number, "work order overdue: escalated");
                Ok(())
            }
            Err(Error::Refused(r)) => {
                tracing::debug!(work_order.id = %id, reason = %r.en, "deadline passed with nothing to do");
                Ok(())
            }
            Err(Error::NotFound { .. }) => Err(JobError::permanent(format!(
                "work order {id} does not exist"
            ))),
            Err(e @ Error::Conflict { .. }) => Err(JobError::retry(e.to_string())),
            Err(e) => Err(db_error(e)),
        }
    }
}

/// `email.deliver`: sends one outbox row at most once. The row is marked SENDING before the
/// attempt; a row found SENDING by a later attempt may have gone out (the worker died
/// mid-send), so it is marked FAILED for an admin rather than sent again.
pub struct EmailDelivery {
    pub workflow: Workflow,
    pub mailer: Arc<Mailer>,
}

impl EmailDelivery {
    async fn set_state(
        &self,
        id: &str,
        from: &str,
        to: &str,
        error: Option<&str>,
    ) -> Result<bool, JobError> {
        let now = self.workflow.now();
        let mut q = outbox_email::Entity::update_many()
            .col_expr(outbox_email::Column::State, Expr::value(to))
            .filter(outbox_email::Column::Id.eq(id))
            .filter(outbox_email::Column::State.eq(from));
        if to == "SENDING" {
            q = q.col_expr(
                outbox_email::Column::Attempts,
                Expr::col(outbox_email::Column::Attempts).add(1),
            );
        }
        if to == "SENT" {
            q = q.col_expr(outbox_email::Column::SentAt, Expr::value(now));
        }
        if let Some(e) = error {
            let e: String = e.chars().take(2000).collect();
            q = q.col_expr(outbox_email::Column::LastError, Expr::value(e));
        }
        let r = q.exec(self.workflow.db()).await.map_err(db_error)?;
        Ok(r.rows_affected == 1)
    }
}

#[async_trait]
impl Handler for EmailDelivery {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        let id = job.field("emailId")?;
        let Some(email) = outbox_email::Entity::find_by_id(id)
            .one(self.workflow.db())
            .await
            .map_err(db_error)?
        else {
            return Err(JobError::permanent(format!(
                "outbox email {id} does not exist"
            )));
        };
        match email.state.as_str() {
            "SENT" | "FAILED" => return Ok(()),
            "SENDING" => {
                self.set_state(
                    id,
                    "SENDING",
                    "FAILED",
                    Some("interrupted while sending; not retried to avoid a duplicate"),
                )
                .await?;
                tracing::warn!(email.id = %id, "email interrupted mid-send; marked FAILED");
                metrics::inc("taxdesk_outbox_failed_total", &[]);
                return Ok(());
            }
            _ => {}
        }
        if !self.set_state(id, "PENDING", "SENDING", None).await? {
            return Ok(()); // another attempt has it
        }
        match self.mailer.deliver(&email).await {
            Ok(()) => {
                self.set_state(id, "SENDING", "SENT", None).await?;
                metrics::inc("taxdesk_outbox_sent_total", &[]);
                tracing::info!(email.id = %id, kind = %email.kind, "email delivered");
                Ok(())
            }
            Err(e) => {
                metrics::inc("taxdesk_outbox_failed_total", &[]);
                let last = e.permanent || job.is_last_attempt();
                let next = if last { "FAILED" } else { "PENDING" };
                self.set_state(id, "SENDING", next, Some(&e.message))
                    .await?;
                tracing::warn!(email.id = %id, error = %e.message, gave_up = last, "email delivery failed");
                Err(e)
            }
        }
    }
}

/// `jobs.prune`: finished jobs are kept for a while for admins, then removed.
pub struct PruneJobs {
    pub store: Arc<Store>,
    pub workflow: Workflow,
    pub keep: chrono::Duration,
}

#[async_trait]
impl Handler for PruneJobs {
    async fn run(&self, _job: &Job) -> Result<(), JobError> {
        let n = self
            .store
            .prune(self.workflow.now() - self.keep)
            .await
            .map_err(db_error)?;
        tracing::info!(removed = n, "finished jobs pruned");
        Ok(())
    }
}

/// `chat.*` timers: handed to the chat service, which checks they are still current.
pub struct ChatTimer(pub taxdesk_chat::Chat);

#[async_trait]
impl Handler for ChatTimer {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        self.0
            .run_timer(&job.kind, &job.payload)
            .await
            .map_err(|e| JobError::retry(e.to_string()))
    }
}

/// `call.expire`: an unanswered call invitation runs out.
pub struct CallExpiry(pub taxdesk_chat::Chat);

#[async_trait]
impl Handler for CallExpiry {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        let id = job.field("channelId")?;
        self.0
            .expire_call(id)
            .await
            .map_err(|e| JobError::retry(e.to_string()))
    }
}

/// `booking.*`: reminders, the start (which opens the booked chat session), the expiry of an
/// unanswered invitation, and the no-show check.
pub struct BookingJob(pub taxdesk_chat::Chat);

#[async_trait]
impl Handler for BookingJob {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        use taxdesk_workflow::booking::machine::Event as B;
        use taxdesk_workflow::booking::service::kind;
        let id = job.field("bookingId")?;
        let chat = &self.0;
        let bookings = chat.workflow().bookings();
        let retry = |e: Error| JobError::retry(e.to_string());
        let system = Actor::system();
        match job.kind.as_str() {
            kind::REMINDER => bookings
                .remind(id, job.field("start")?)
                .await
                .map_err(retry),
            kind::START => chat.start_booking(id).await.map_err(retry),
            kind::EXPIRE => match bookings.apply(&system, id, B::Expire).await {
                Ok(_) | Err(Error::Refused(_)) | Err(Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(retry(e)),
            },
            kind::NO_SHOW => chat.booking_no_show(id).await.map_err(retry),
            other => Err(JobError::permanent(format!("not a booking job: {other}"))),
        }
    }
}

/// `kb.hot_rank`: recomputes the hot questions from the last week's asks.
pub struct HotRank(pub taxdesk_chat::Chat);

#[async_trait]
impl Handler for HotRank {
    async fn run(&self, _job: &Job) -> Result<(), JobError> {
        self.0
            .rank_hot_questions()
            .await
            .map(|_| ())
            .map_err(|e| JobError::retry(e.to_string()))
    }
}
