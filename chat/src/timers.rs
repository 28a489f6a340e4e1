//! What chat timers do when they fire. Each checks that the session is still in the state
//! the timer was set for (by `version`), so a stale timer does nothing.

use sea_orm::TransactionTrait;
use taxdesk_workflow::error::{Error, Result};
use taxdesk_workflow::{Actor, Role};

use crate::chat::{Chat, timer};
use crate::hub::{ChatEvent, ChatEventKind};
use crate::session::{Event, Status};

impl Chat {
    async fn rearm_idle_check(&self, id: &str, from: chrono::DateTime<chrono::Utc>) -> Result<()> {
        let txn = self.wf.db().begin().await?;
        self.schedule_idle_check(&txn, id, from).await?;
        txn.commit().await?;
        self.wf.jobs_written();
        Ok(())
    }

    /// Runs one chat timer job; `Ok` also when there was nothing left to do.
    pub async fn run_timer(&self, kind: &str, payload: &serde_json::Value) -> Result<()> {
        let id = payload
            .get("sessionId")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        let version = payload.get("version").and_then(|v| v.as_i64());
        let system = Actor::system();
        let bureau = Actor::new("system", Role::Admin);
        let s = match self.session(&bureau, id).await {
            Ok(s) => s,
            Err(Error::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        let status: Status = s.status.parse().unwrap_or(Status::Ended);
        let current = version.is_none_or(|v| v == i64::from(s.version));
        let result = match kind {
            timer::QUEUE_TIMEOUT if status == Status::Queued && current => self
                .apply(&system, id, Event::QueueTimeout)
                .await
                .map(|_| ()),
            timer::QUEUE_OFFER if status == Status::Queued && current => {
                self.post_as(
                    &s,
                    "system",
                    "SYSTEM",
                    "您已等待较长时间：可以继续等待，也可以在线留言（将带上您的问题）或预约服务。"
                        .into(),
                )
                .await?;
                self.hub.publish(ChatEvent {
                    session_id: s.id.clone(),
                    audience: vec![s.taxpayer_id.clone()],
                    kind: ChatEventKind::QueueOffer {
                        question: s.first_question.clone(),
                    },
                });
                Ok(())
            }
            timer::ANSWER_CHECK
                if status == Status::Active && current && s.agent_replied_at.is_none() =>
            {
                tracing::info!(session.id = %id, agent = ?s.agent_id, "agent did not answer in time: set away, re-routing");
                // An agent who does not answer is not at the desk: no more chats until they say so.
                if let Some(agent) = &s.agent_id {
                    self.set_away(agent).await?;
                }
                self.apply(&system, id, Event::Requeue).await.map(|_| ())
            }
            timer::IDLE_CHECK if matches!(status, Status::Bot | Status::Active) => {
                let due = s.last_activity_at + self.config.idle_timeout;
                if due <= self.wf.now() {
                    self.apply(&system, id, Event::IdleTimeout)
                        .await
                        .map(|_| ())
                } else {
                    // Activity since this timer was set: look again when it would be idle.
                    self.rearm_idle_check(id, s.last_activity_at).await
                }
            }
            // One idle check is pending from open to end (messages do not add one): it waits
            // out the queue, and an assignment (which counts as activity) restarts the clock.
            timer::IDLE_CHECK if status == Status::Queued => {
                self.rearm_idle_check(id, self.wf.now()).await
            }
            _ => Ok(()),
        };
        match result {
            // The session moved on in between: the timer is stale.
            Err(Error::Refused(_)) | Err(Error::Conflict { .. }) => Ok(()),
            r => r,
        }
    }
}
