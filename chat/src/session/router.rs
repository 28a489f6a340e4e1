//! The router: one task per skill group and instance hands queued sessions to free agents.
//!
//! A hand-over request, an agent going ONLINE, a chat ending or leaving the queue only
//! commits its own change and wakes the group's router ([`Chat::wake_router`]); wake-ups that
//! arrive while it works are folded into its next pass, so a burst costs a few passes, not a
//! pass per request racing the others for the queue's head.
//!
//! A pass assigns in batches, each in ONE transaction: the head of the queue in serving order
//! (priority, then waiting time) and the free agents of the group with the fewest chats, both
//! claimed with `FOR UPDATE SKIP LOCKED` on PostgreSQL (a router of another instance claims
//! other rows meanwhile instead of waiting; on SQLite the one writer runs the batch alone).
//! Free agents come from the `agent_presence_free` index (status, active chats), not from a
//! scan of everyone online. Each assignment still goes through the machine and re-counts the
//! agent's chats under the agent's row lock, so no agent exceeds `maxConcurrent` and no
//! session is assigned twice, whichever instance routes. After the pass the group's queue is
//! pushed once (each waiting taxpayer's place), at most every [`PUSH_GAP`].
//!
//! Each instance's router is woken by that instance's commits; rows another instance's
//! router held are looked at again after [`CONTENDED_RETRY`], and every router sweeps its
//! queue every [`SWEEP_EVERY`] in case a wake-up was lost (an error, a crash elsewhere).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sea_orm::sea_query::{Expr, ExprTrait, LikeExpr, LockBehavior, LockType};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use taxdesk_workflow::Actor;
use taxdesk_workflow::error::{Error, Result};
use tokio::sync::Notify;
use tokio::task::AbortHandle;
use tracing::Instrument;

use super::intake::IntakeGate;
use super::machine::{Event, Status};
use crate::chat::Chat;
use crate::entities::{agent_presence, session};
use crate::hub::QueueSnapshot;
use crate::presence::{Presence, serves};

/// Sessions claimed per transaction: big enough that a burst takes few commits, small
/// enough that the one SQLite writer is not held long from other requests.
const BATCH: u64 = 64;
/// Queue places are pushed at most this often per group (each push reaches every waiting
/// taxpayer).
pub const PUSH_GAP: Duration = Duration::from_millis(100);
/// Another instance's router held the rows this one wanted: look again this soon …
pub const CONTENDED_RETRY: Duration = Duration::from_millis(25);
/// … this many times in a row, then wait for the next wake-up or sweep.
const CONTENDED_RETRIES: u32 = 80;
/// An idle router looks at its queue this often anyway.
pub const SWEEP_EVERY: Duration = Duration::from_secs(5);
/// After a failed pass (the database), wait this long before the next.
const AFTER_ERROR: Duration = Duration::from_millis(500);

/// The routers of one instance.
#[derive(Default)]
pub struct Router {
    state: Mutex<RouterState>,
    /// Hand-overs in flight, which routing batches let go first.
    pub(crate) intake: Arc<IntakeGate>,
}

#[derive(Default)]
struct RouterState {
    /// Whether routers run in this process (not in a CLI command).
    started: bool,
    wakes: HashMap<String, Arc<Notify>>,
    tasks: Vec<AbortHandle>,
}

impl Router {
    fn state(&self) -> MutexGuard<'_, RouterState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The routers started by [`Chat::start_routing`]; they stop with [`Routing::stop`].
pub struct Routing {
    router: Arc<Router>,
}

impl Routing {
    pub fn stop(&self) {
        let mut state = self.router.state();
        state.started = false;
        state.wakes.clear();
        for t in state.tasks.drain(..) {
            t.abort();
        }
    }
}

/// What one pass did.
struct Pass {
    assigned: usize,
    /// Sessions and free agents are there, but another router holds them.
    contended: bool,
}

impl Chat {
    /// Starts a router for every skill group (others start on their first wake-up); each
    /// looks at its queue once at start.
    pub fn start_routing(&self) -> Routing {
        self.router.state().started = true;
        for g in self.wf.config().categories.clone() {
            self.wake_router(&g);
        }
        Routing {
            router: self.router.clone(),
        }
    }

    /// The group's queue or its agents changed (after commit): its router takes a look.
    pub(crate) fn wake_router(&self, group: &str) {
        let mut state = self.router.state();
        if let Some(wake) = state.wakes.get(group) {
            wake.notify_one();
            return;
        }
        if !state.started {
            return;
        }
        let wake = Arc::new(Notify::new());
        wake.notify_one();
        state.wakes.insert(group.to_string(), wake.clone());
        let span = tracing::info_span!("router", skill_group = %group);
        let task = tokio::spawn(
            self.clone()
                .route_group(group.to_string(), wake)
                .instrument(span),
        );
        state.tasks.push(task.abort_handle());
    }

    async fn route_group(self, group: String, wake: Arc<Notify>) {
        // The queue changed since its places were last pushed.
        let mut dirty = false;
        let mut last_push: Option<Instant> = None;
        let mut contended = 0u32;
        let mut failed = false;
        loop {
            let until_push =
                last_push.map_or(Duration::ZERO, |t| PUSH_GAP.saturating_sub(t.elapsed()));
            let wait = if failed {
                AFTER_ERROR
            } else if contended > 0 {
                CONTENDED_RETRY
            } else if dirty {
                until_push
            } else {
                SWEEP_EVERY
            };
            let woken = tokio::select! {
                _ = wake.notified() => true,
                _ = tokio::time::sleep(wait) => false,
            };
            match self.route_pass(&group).await {
                Ok(pass) => {
                    failed = false;
                    dirty |= woken || pass.assigned > 0;
                    contended = if pass.contended && contended < CONTENDED_RETRIES {
                        contended + 1
                    } else {
                        0
                    };
                }
                Err(e) => {
                    tracing::error!(error = %e, "routing pass failed; trying again");
                    failed = true;
                    dirty = true;
                }
            }
            if dirty && last_push.is_none_or(|t| t.elapsed() >= PUSH_GAP) {
                match self.push_queue(&group).await {
                    Ok(()) => dirty = false,
                    Err(e) => tracing::error!(error = %e, "pushing queue places"),
                }
                last_push = Some(Instant::now());
            }
        }
    }

    /// Assigns batch after batch until a batch assigns nobody.
    async fn route_pass(&self, group: &str) -> Result<Pass> {
        let mut assigned = 0;
        loop {
            self.router.intake.quiet().await;
            let n = self.route_batch(group).await?;
            assigned += n;
            if n == 0 {
                break;
            }
        }
        let contended = self.wf.db().get_database_backend() == DbBackend::Postgres
            && self.anyone_waiting(group).await?
            && !free_agents(self.wf.db(), group, 1, false).await?.is_empty();
        Ok(Pass {
            assigned,
            contended,
        })
    }

    /// One transaction: the queue's head and the group's free agents, paired in serving
    /// order, each session to the claimed agent with the fewest chats.
    async fn route_batch(&self, group: &str) -> Result<usize> {
        let db = self.wf.db();
        let postgres = db.get_database_backend() == DbBackend::Postgres;
        let txn = db.begin().await?;
        let mut head = serving_order(
            session::Entity::find()
                .filter(session::Column::Status.eq(Status::Queued.as_ref()))
                .filter(session::Column::SkillGroup.eq(group)),
        )
        .limit(BATCH);
        if postgres {
            head = head.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        }
        let waiting = head.all(&txn).await?;
        if waiting.is_empty() {
            return Ok(0);
        }
        let agents = free_agents(&txn, group, waiting.len() as u64, postgres).await?;
        if agents.is_empty() {
            return Ok(0);
        }
        // Fewest chats first; ties by id, so a burst spreads over everyone.
        let mut free: BinaryHeap<Reverse<(i32, String, i32)>> = agents
            .into_iter()
            .map(|a| Reverse((a.active_chats, a.user_id, a.max_concurrent)))
            .collect();
        let system = Actor::system();
        let now = self.wf.now();
        let mut staged = vec![];
        'sessions: for s in waiting {
            loop {
                let Some(Reverse((chats, agent, max))) = free.pop() else {
                    break 'sessions;
                };
                let event = Event::Assign {
                    agent_id: agent.clone(),
                    available: true,
                };
                match self.stage(&txn, &system, s.clone(), event, now).await {
                    Ok(st) => {
                        tracing::info!(session.id = %s.id, agent = %agent, "routed");
                        staged.push(st);
                        if chats + 1 < max {
                            free.push(Reverse((chats + 1, agent, max)));
                        }
                        break;
                    }
                    // Fuller than its count said (re-counted under its lock): set the count
                    // right and try the next agent. Nothing of this assignment was written.
                    Err(Error::Refused(_)) => recount(&txn, &agent).await?,
                    Err(e) => return Err(e),
                }
            }
        }
        txn.commit().await?;
        let n = staged.len();
        for st in staged {
            self.announce(st);
        }
        Ok(n)
    }

    async fn anyone_waiting(&self, group: &str) -> Result<bool> {
        Ok(session::Entity::find()
            .select_only()
            .column(session::Column::Id)
            .filter(session::Column::Status.eq(Status::Queued.as_ref()))
            .filter(session::Column::SkillGroup.eq(group))
            .limit(1)
            .into_tuple::<String>()
            .one(self.wf.db())
            .await?
            .is_some())
    }

    /// Every waiting taxpayer of the group their place (one hub message for all).
    async fn push_queue(&self, group: &str) -> Result<()> {
        let waiting: Vec<(String, String)> = serving_order(
            session::Entity::find()
                .select_only()
                .column(session::Column::Id)
                .column(session::Column::TaxpayerId)
                .filter(session::Column::Status.eq(Status::Queued.as_ref()))
                .filter(session::Column::SkillGroup.eq(group)),
        )
        .into_tuple()
        .all(self.wf.db())
        .await?;
        let wait_per_place = self.wait_per_place(group).await?;
        self.hub.publish_queue(QueueSnapshot {
            skill_group: group.to_string(),
            waiting,
            wait_per_place,
        });
        Ok(())
    }
}

/// The queue's serving order: priority (booked, re-queued) first, then the longest waiting.
pub(crate) fn serving_order(
    q: sea_orm::Select<session::Entity>,
) -> sea_orm::Select<session::Entity> {
    q.order_by_desc(session::Column::QueuePriority)
        .order_by_asc(session::Column::QueuedAt)
        .order_by_asc(session::Column::Id)
}

/// Matches the JSON list of skill groups of agents who serve `group` (or every group).
pub(crate) fn serving(group: &str) -> Condition {
    let quoted = serde_json::to_string(group).unwrap_or_else(|_| format!("\"{group}\""));
    let escaped = quoted
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    Condition::any()
        .add(agent_presence::Column::SkillGroups.eq("[]"))
        .add(
            agent_presence::Column::SkillGroups
                .like(LikeExpr::new(format!("%{escaped}%")).escape('\\')),
        )
}

/// Up to `n` ONLINE agents of the group with room, fewest chats first, read through the
/// `agent_presence_free` index; `claim`: locked for this transaction, skipping agents that
/// another transaction holds (PostgreSQL).
async fn free_agents(
    db: &impl ConnectionTrait,
    group: &str,
    n: u64,
    claim: bool,
) -> Result<Vec<agent_presence::Model>> {
    let mut q = agent_presence::Entity::find()
        .filter(agent_presence::Column::Status.eq(Presence::Online.as_ref()))
        .filter(
            Expr::col(agent_presence::Column::ActiveChats)
                .lt(Expr::col(agent_presence::Column::MaxConcurrent)),
        )
        .filter(serving(group))
        .order_by_asc(agent_presence::Column::ActiveChats)
        .order_by_asc(agent_presence::Column::UserId)
        .limit(n);
    if claim {
        q = q.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    Ok(q.all(db)
        .await?
        .into_iter()
        .filter(|p| serves(p, group))
        .collect())
}

/// Sets an agent's `active_chats` to their real number of ACTIVE chats.
async fn recount(txn: &DatabaseTransaction, agent: &str) -> Result<()> {
    let backend = txn.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "UPDATE agent_presence SET active_chats = (SELECT COUNT(*) FROM chat_sessions \
             WHERE agent_id = $1 AND status = $2) WHERE user_id = $1"
        }
        _ => {
            "UPDATE agent_presence SET active_chats = (SELECT COUNT(*) FROM chat_sessions \
             WHERE agent_id = ?1 AND status = ?2) WHERE user_id = ?1"
        }
    };
    txn.execute_raw(sea_orm::Statement::from_sql_and_values(
        backend,
        sql,
        [agent.into(), Status::Active.as_ref().into()],
    ))
    .await?;
    Ok(())
}
