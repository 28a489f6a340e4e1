//! The hand-over queue: FIFO per skill group with priority (booked and re-queued sessions
//! first), places and expected waits, agents picking and transferring chats. Routing (the
//! queue's head to the online agent of the group with the fewest chats under their
//! `maxConcurrent`) is the group's router's, in `router.rs`.
//!
//! Capacity holds across instances: whatever asks, an assignment re-checks the agent's room
//! inside its own transaction, after locking the agent's presence row (`FOR UPDATE` on
//! PostgreSQL; SQLite's single connection already runs transactions one at a time), so two
//! instances can neither give one agent more than `maxConcurrent` chats nor one chat twice
//! (the session's `version` check).

use chrono::Duration;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use taxdesk_workflow::Actor;
use taxdesk_workflow::error::Result;

use super::TransferTarget;
use super::machine::{Event, Status};
use super::router::serving_order;
use crate::chat::Chat;
use crate::entities::{agent_presence, session};
use crate::presence::may_take;

/// Used when a group has no recent hand-overs to learn from.
const DEFAULT_WAIT_PER_PLACE: i64 = 60;

impl Chat {
    /// The queue of a group in serving order.
    pub async fn queue(&self, group: Option<&str>) -> Result<Vec<session::Model>> {
        let mut q =
            session::Entity::find().filter(session::Column::Status.eq(Status::Queued.as_ref()));
        if let Some(g) = group {
            q = q.filter(session::Column::SkillGroup.eq(g));
        }
        Ok(serving_order(q).all(self.wf.db()).await?)
    }

    /// 1-based place of a queued session, and the expected wait in seconds: the sessions
    /// ahead of it are counted in the serving-order index, not read.
    pub async fn queue_place(&self, s: &session::Model) -> Result<Option<(i64, i64)>> {
        if s.status != Status::Queued.as_ref() {
            return Ok(None);
        }
        let Some(queued_at) = s.queued_at else {
            return Ok(None);
        };
        let waited_longer = Condition::any()
            .add(session::Column::QueuedAt.lt(queued_at))
            .add(
                Condition::all()
                    .add(session::Column::QueuedAt.eq(queued_at))
                    .add(session::Column::Id.lt(s.id.as_str())),
            );
        let ahead = session::Entity::find()
            .filter(session::Column::Status.eq(Status::Queued.as_ref()))
            .filter(session::Column::SkillGroup.eq(s.skill_group.as_str()))
            .filter(
                Condition::any()
                    .add(session::Column::QueuePriority.gt(s.queue_priority))
                    .add(
                        Condition::all()
                            .add(session::Column::QueuePriority.eq(s.queue_priority))
                            .add(waited_longer),
                    ),
            )
            // On the reader: a waiting taxpayer's place must not queue behind the writer
            // (a burst of hand-overs would make every answer wait for the whole burst).
            .count(self.wf.reader())
            .await?;
        let place = ahead as i64 + 1;
        Ok(Some((
            place,
            place * self.wait_per_place(&s.skill_group).await?,
        )))
    }

    /// The average time from queued to assigned of the group's last 20 hand-overs.
    pub(crate) async fn wait_per_place(&self, group: &str) -> Result<i64> {
        type Stamp = Option<chrono::DateTime<chrono::Utc>>;
        let recent: Vec<(Stamp, Stamp)> = session::Entity::find()
            .select_only()
            .column(session::Column::QueuedAt)
            .column(session::Column::AssignedAt)
            .filter(session::Column::SkillGroup.eq(group))
            .filter(session::Column::AssignedAt.is_not_null())
            .filter(session::Column::QueuedAt.is_not_null())
            .order_by_desc(session::Column::AssignedAt)
            .limit(20)
            .into_tuple()
            .all(self.wf.reader())
            .await?;
        let waits: Vec<i64> = recent
            .iter()
            .filter_map(|(queued, assigned)| {
                Some(
                    (assigned.as_ref()?.signed_duration_since(*queued.as_ref()?))
                        .num_seconds()
                        .max(0),
                )
            })
            .collect();
        if waits.is_empty() {
            return Ok(DEFAULT_WAIT_PER_PLACE);
        }
        Ok((waits.iter().sum::<i64>() / waits.len() as i64).max(1))
    }

    /// Active chats of an agent.
    pub async fn active_count(&self, agent: &str) -> Result<u64> {
        active_count_in(self.wf.db(), agent).await
    }

    /// Inside an assignment's transaction, just before the machine decides: locks the
    /// receiving agent's presence row and re-reads their room, so the `available` the
    /// machine sees is true at commit, whichever instance asked.
    pub(crate) async fn recheck_capacity(
        &self,
        txn: &DatabaseTransaction,
        actor: &Actor,
        s: &session::Model,
        event: Event,
    ) -> Result<Event> {
        Ok(match event {
            Event::Assign { agent_id, .. } => {
                let by_themselves = actor.id == agent_id;
                let available = can_take_in(txn, &agent_id, &s.skill_group, by_themselves).await?;
                Event::Assign {
                    agent_id,
                    available,
                }
            }
            Event::Transfer {
                to: TransferTarget::Agent(agent),
                available: _,
            } => {
                let available = can_take_in(txn, &agent, &s.skill_group, false).await?;
                Event::Transfer {
                    to: TransferTarget::Agent(agent),
                    available,
                }
            }
            Event::BookingStarts {
                agent_id: Some(agent),
                available: _,
            } => {
                let available = can_take_in(txn, &agent, &s.skill_group, true).await?;
                Event::BookingStarts {
                    agent_id: Some(agent),
                    available,
                }
            }
            other => other,
        })
    }

    /// An assignment whose capacity is checked under the agent's lock (this process), then
    /// again under the agent's row lock in the transaction (every process).
    pub(crate) async fn assign_checked(
        &self,
        actor: &Actor,
        id: &str,
        event: Event,
    ) -> Result<session::Model> {
        let Event::Assign { agent_id, .. } = &event else {
            return self.apply(actor, id, event).await;
        };
        let agent_id = agent_id.clone();
        let _guard = self.agent_lock(&agent_id).await;
        let s = self.session(actor, id).await?;
        let available = self
            .can_take(&agent_id, &s.skill_group, actor.id == agent_id)
            .await?;
        let applied = self
            .transition(
                actor,
                id,
                Event::Assign {
                    agent_id,
                    available,
                },
            )
            .await?;
        drop(_guard);
        self.after(&applied).await;
        Ok(applied.session)
    }

    /// Expected time to be answered: used by `estimatedWaitSeconds`.
    pub fn default_wait_per_place() -> Duration {
        Duration::seconds(DEFAULT_WAIT_PER_PLACE)
    }
}

impl Chat {
    /// `acceptChat`: a staff member takes a waiting session, if they have room.
    pub async fn accept(&self, actor: &Actor, id: &str, event: Event) -> Result<session::Model> {
        self.assign_checked(actor, id, event).await
    }

    /// `transferChat`: to another agent (who must have room) or back to a group's queue.
    pub async fn transfer(
        &self,
        actor: &Actor,
        id: &str,
        to: super::TransferTarget,
    ) -> Result<session::Model> {
        let to = match to {
            super::TransferTarget::Group(g) => {
                super::TransferTarget::Group(self.skill_group(Some(&g))?)
            }
            agent => agent,
        };
        let (available, _guard) = match &to {
            super::TransferTarget::Agent(a) => {
                let guard = self.agent_lock(a).await;
                let s = self.session(actor, id).await?;
                (self.can_take(a, &s.skill_group, false).await?, Some(guard))
            }
            super::TransferTarget::Group(_) => (true, None),
        };
        let applied = self
            .transition(actor, id, Event::Transfer { to, available })
            .await?;
        drop(_guard);
        self.after(&applied).await;
        Ok(applied.session)
    }
}

async fn active_count_in(db: &impl ConnectionTrait, agent: &str) -> Result<u64> {
    Ok(session::Entity::find()
        .filter(session::Column::AgentId.eq(agent))
        .filter(session::Column::Status.eq(Status::Active.as_ref()))
        .count(db)
        .await?)
}

/// Whether the agent may take one more chat of the group, read in `txn` with the agent's
/// presence row locked until it ends (PostgreSQL), so concurrent assignments to the agent
/// from any instance queue up here and each sees the ones before it.
async fn can_take_in(
    txn: &DatabaseTransaction,
    agent: &str,
    group: &str,
    by_themselves: bool,
) -> Result<bool> {
    let mut q = agent_presence::Entity::find_by_id(agent);
    if txn.get_database_backend() == DbBackend::Postgres {
        q = q.lock_exclusive();
    }
    let Some(p) = q.one(txn).await? else {
        return Ok(false);
    };
    Ok(may_take(&p, group, by_themselves)
        && active_count_in(txn, agent).await? < p.max_concurrent.max(0) as u64)
}
