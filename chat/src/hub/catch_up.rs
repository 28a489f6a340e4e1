//! What a subscriber reads from the database when live events may have been lost: the
//! messages after the last one it delivered, and an agent's current assignments and queues.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use taxdesk_workflow::Actor;
use taxdesk_workflow::error::Result;

use super::{AgentEvent, AgentEventKind};
use crate::chat::Chat;
use crate::entities::{message, session};
use crate::session::Status;
use crate::session::service::participants;

/// The most messages one catch-up reads; a subscriber further behind catches up in steps.
const CATCH_UP_LIMIT: u64 = 500;

impl Chat {
    /// Messages of the session after `after` (and before `before`, if given), oldest first,
    /// for a subscriber who takes part in it now; none for anyone else (as live events).
    pub async fn missed_messages(
        &self,
        actor: &Actor,
        session_id: &str,
        after: i64,
        before: Option<i64>,
    ) -> Result<Vec<message::Model>> {
        let s = self.session(actor, session_id).await?;
        if !participants(&s).contains(&actor.id) {
            return Ok(vec![]);
        }
        let mut q = message::Entity::find()
            .filter(message::Column::SessionId.eq(s.id.as_str()))
            .filter(message::Column::Seq.gt(after));
        if let Some(b) = before {
            q = q.filter(message::Column::Seq.lt(b));
        }
        Ok(q.order_by_asc(message::Column::Seq)
            .limit(CATCH_UP_LIMIT)
            .all(self.wf.db())
            .await?)
    }

    /// What an agent's subscription would have been told by now: the sessions they serve and
    /// the length of every queue.
    pub async fn agent_state(&self, agent_id: &str) -> Result<Vec<AgentEvent>> {
        let active = session::Entity::find()
            .filter(session::Column::AgentId.eq(agent_id))
            .filter(session::Column::Status.eq(Status::Active.as_ref()))
            .order_by_asc(session::Column::AssignedAt)
            .all(self.wf.db())
            .await?;
        let mut events: Vec<AgentEvent> = active
            .into_iter()
            .map(|s| AgentEvent {
                agent_id: Some(agent_id.to_string()),
                kind: AgentEventKind::Assigned { session_id: s.id },
            })
            .collect();
        for group in &self.wf.config().categories {
            events.push(AgentEvent {
                agent_id: None,
                kind: AgentEventKind::QueueLength {
                    skill_group: group.clone(),
                    length: self.queue(Some(group)).await?.len() as i64,
                },
            });
        }
        Ok(events)
    }
}
