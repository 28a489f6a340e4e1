//! Agent presence (在线/离开/离线), skill groups and capacity. Going offline never drops a
//! chat: the agent's active sessions go back to the front of the queue.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
use strum::{AsRefStr, EnumString};
use taxdesk_workflow::error::{Error, Result};
use taxdesk_workflow::{Actor, Role};

use crate::chat::Chat;
use crate::entities::{agent_presence, session};
use crate::session::router::serving;
use crate::session::{Event, Status};

#[derive(Debug, Clone, Copy, PartialEq, Eq, AsRefStr, EnumString)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum Presence {
    Online,
    /// Keeps current chats, takes no new ones.
    Away,
    Offline,
}

pub fn groups_of(p: &agent_presence::Model) -> Vec<String> {
    serde_json::from_str(&p.skill_groups).unwrap_or_default()
}

pub(crate) fn serves(p: &agent_presence::Model, group: &str) -> bool {
    let groups = groups_of(p);
    groups.is_empty() || groups.iter().any(|g| g == group)
}

/// Whether the agent's presence lets them take a chat of the group (room aside). An agent
/// who is away gets none from others but may still pick one themselves (`by_themselves`).
pub(crate) fn may_take(p: &agent_presence::Model, group: &str, by_themselves: bool) -> bool {
    let present = p.status == Presence::Online.as_ref()
        || (by_themselves && p.status == Presence::Away.as_ref());
    present && serves(p, group)
}

/// One lock per agent and instance: capacity is checked and taken under it, so fewer races
/// are lost here. The guarantee across instances is the presence row lock that
/// `Chat::recheck_capacity` takes in the assignment's transaction.
static AGENT_LOCKS: LazyLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> =
    LazyLock::new(Default::default);

impl Chat {
    pub(crate) async fn agent_lock(&self, agent: &str) -> tokio::sync::OwnedMutexGuard<()> {
        // Keyed by instance too: two servers in one process (tests) must not share it, or it
        // would hide what the row lock has to guarantee between processes.
        let key = format!("{}:{agent}", self.hub.instance_key());
        let lock = AGENT_LOCKS
            .lock()
            .map(|mut m| m.entry(key).or_default().clone())
            .unwrap_or_default();
        lock.lock_owned().await
    }

    pub async fn presence(&self, agent: &str) -> Result<Option<agent_presence::Model>> {
        Ok(agent_presence::Entity::find_by_id(agent)
            .one(self.wf.db())
            .await?)
    }

    /// `setAgentStatus`: presence, the groups served (empty = all) and capacity.
    pub async fn set_agent_status(
        &self,
        actor: &Actor,
        status: Presence,
        skill_groups: Option<Vec<String>>,
        max_concurrent: Option<i32>,
    ) -> Result<agent_presence::Model> {
        if !actor.role.is_bureau() {
            return Err(Error::Forbidden("only staff have an agent status".into()));
        }
        let current = self.presence(&actor.id).await?;
        let groups = match skill_groups {
            Some(gs) => {
                let mut checked = vec![];
                for g in gs {
                    checked.push(self.skill_group(Some(&g))?);
                }
                checked
            }
            None => current.as_ref().map(groups_of).unwrap_or_default(),
        };
        let max = max_concurrent
            .or(current.as_ref().map(|c| c.max_concurrent))
            .unwrap_or(self.config.default_max_concurrent);
        if !(1..=50).contains(&max) {
            return Err(Error::input(
                "maxConcurrent",
                format!("同时接待数须在 1 到 50 之间（现为 {max}）"),
                format!("maxConcurrent must be between 1 and 50 (got {max})"),
            ));
        }
        let now = self.wf.now();
        let row = agent_presence::ActiveModel {
            user_id: Set(actor.id.clone()),
            status: Set(status.as_ref().into()),
            skill_groups: Set(serde_json::to_string(&groups).unwrap_or_else(|_| "[]".into())),
            max_concurrent: Set(max),
            // Counted by the session transitions; a new row has no chats yet.
            active_chats: ActiveValue::NotSet,
            updated_at: Set(now),
        };
        agent_presence::Entity::insert(row)
            .on_conflict(
                OnConflict::column(agent_presence::Column::UserId)
                    .update_columns([
                        agent_presence::Column::Status,
                        agent_presence::Column::SkillGroups,
                        agent_presence::Column::MaxConcurrent,
                        agent_presence::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(self.wf.db())
            .await?;
        tracing::info!(agent = %actor.id, status = status.as_ref(), max, ?groups, "agent status");
        match status {
            Presence::Offline => self.requeue_all_of(&actor.id).await?,
            // Each group's router pulls from its queue for this agent (and for everyone else
            // who came online meanwhile, in one pass); this request does not wait for it.
            Presence::Online => {
                let served = if groups.is_empty() {
                    self.wf.config().categories.clone()
                } else {
                    groups.clone()
                };
                for g in served {
                    self.wake_router(&g);
                }
            }
            Presence::Away => {}
        }
        self.presence(&actor.id)
            .await?
            .ok_or_else(|| Error::not_found("agent", actor.id.clone()))
    }

    /// Marks an agent away (they left a chat unanswered); their other chats stay theirs.
    pub(crate) async fn set_away(&self, agent: &str) -> Result<()> {
        agent_presence::Entity::update_many()
            .col_expr(
                agent_presence::Column::Status,
                sea_orm::sea_query::Expr::value(Presence::Away.as_ref()),
            )
            .col_expr(
                agent_presence::Column::UpdatedAt,
                sea_orm::sea_query::Expr::value(self.wf.now()),
            )
            .filter(agent_presence::Column::UserId.eq(agent))
            .filter(agent_presence::Column::Status.eq(Presence::Online.as_ref()))
            .exec(self.wf.db())
            .await?;
        Ok(())
    }

    /// An agent going offline: each active chat goes back to the front of its queue.
    async fn requeue_all_of(&self, agent: &str) -> Result<()> {
        let active = session::Entity::find()
            .filter(session::Column::AgentId.eq(agent))
            .filter(session::Column::Status.eq(Status::Active.as_ref()))
            .all(self.wf.db())
            .await?;
        for s in active {
            match self.apply(&Actor::system(), &s.id, Event::Requeue).await {
                Ok(_) | Err(Error::Refused(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Someone of the group is at work (online, or away for a moment): worth queueing for.
    pub(crate) async fn any_agent_online(&self, group: &str) -> Result<bool> {
        Ok(agent_presence::Entity::find()
            .filter(
                agent_presence::Column::Status
                    .is_in([Presence::Online.as_ref(), Presence::Away.as_ref()]),
            )
            .filter(serving(group))
            .limit(1)
            // A fact for the machine, read before the hand-over's transaction: the reader,
            // so that it does not queue behind the writer as well.
            .one(self.wf.reader())
            .await?
            .is_some_and(|p| serves(&p, group)))
    }

    /// Whether this agent may take one more chat of the group now. An agent who is away
    /// gets none from others but may still pick one themselves (`by_themselves`).
    pub(crate) async fn can_take(
        &self,
        agent: &str,
        group: &str,
        by_themselves: bool,
    ) -> Result<bool> {
        let Some(p) = self.presence(agent).await? else {
            return Ok(false);
        };
        Ok(may_take(&p, group, by_themselves)
            && self.active_count(agent).await? < p.max_concurrent.max(0) as u64)
    }

    /// Whether the actor is a bureau member with an agent status (for staff-only views).
    pub fn is_agent(actor: &Actor) -> bool {
        matches!(actor.role, Role::Staff | Role::Admin)
    }
}
