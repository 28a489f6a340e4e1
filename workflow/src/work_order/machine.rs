//! The work-order machine as one pure function: `decide(state, actor, event, now)`.
//!
//! | from | event (actor) | to |
//! |---|---|---|
//! | — | create (taxpayer for self; staff/admin for a taxpayer) | SUBMITTED |
//! | SUBMITTED, DISPATCHED, IN_PROGRESS | dispatch (staff/admin) | DISPATCHED |
//! | DISPATCHED | accept (the handler) | IN_PROGRESS |
//! | IN_PROGRESS | progress (the handler) | IN_PROGRESS |
//! | IN_PROGRESS | complete (the handler) | COMPLETED |
//! | SUBMITTED, DISPATCHED, IN_PROGRESS | urge (owner; cool-down) | same |
//! | SUBMITTED, DISPATCHED, IN_PROGRESS | terminate (owner) | TERMINATED |
//! | COMPLETED, TERMINATED | rate (owner; once, within the window) | same |
//! | SUBMITTED, DISPATCHED, IN_PROGRESS | overdue (system; past deadline, once per deadline) | same |
//!
//! The actor's right to an event is checked before the status, so a taxpayer asking to
//! dispatch is `FORBIDDEN` whatever the state, and the handler accepting twice is
//! `INVALID_TRANSITION`.

use chrono::{DateTime, Duration, Utc};
use strum::{AsRefStr, EnumDiscriminants, EnumIter, EnumString, IntoEnumIterator};

use crate::actor::{Actor, Role};
use crate::refusal::{Refusal, RefusalCode};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, AsRefStr, EnumString, EnumIter)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Submitted,
    Dispatched,
    InProgress,
    Completed,
    Terminated,
}

impl Status {
    pub fn is_open(self) -> bool {
        matches!(
            self,
            Status::Submitted | Status::Dispatched | Status::InProgress
        )
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, AsRefStr, EnumString, EnumIter,
)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum Priority {
    Normal,
    High,
    Urgent,
}

impl Priority {
    /// One step up; `Urgent` stays `Urgent`.
    pub fn raised(self) -> Priority {
        match self {
            Priority::Normal => Priority::High,
            Priority::High | Priority::Urgent => Priority::Urgent,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rating {
    pub score: u8,
    pub comment: Option<String>,
    pub at: DateTime<Utc>,
}

/// What the machine needs to know of a work order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub status: Status,
    pub owner_id: String,
    pub handler_id: Option<String>,
    pub priority: Priority,
    pub urge_count: u32,
    pub last_urged_at: Option<DateTime<Utc>>,
    pub resolution: Option<String>,
    pub rating: Option<Rating>,
    /// When it reached COMPLETED or TERMINATED; the rating window counts from here.
    pub closed_at: Option<DateTime<Utc>>,
    pub deadline: Option<DateTime<Utc>>,
    /// The deadline whose passing was already escalated, so it is escalated once.
    pub overdue_escalated_for: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, EnumDiscriminants)]
#[strum_discriminants(name(EventKind))]
#[strum_discriminants(derive(Hash, AsRefStr, EnumIter, EnumString))]
#[strum_discriminants(strum(serialize_all = "SCREAMING_SNAKE_CASE"))]
pub enum Event {
    Dispatch {
        handler_id: String,
        note: Option<String>,
    },
    Accept,
    Progress {
        note: String,
    },
    Complete {
        resolution: String,
    },
    Urge {
        reason: Option<String>,
    },
    Terminate {
        reason: Option<String>,
    },
    Rate {
        score: i32,
        comment: Option<String>,
    },
    Overdue,
}

impl Event {
    pub fn kind(&self) -> EventKind {
        EventKind::from(self)
    }

    /// The text kept in the history row.
    pub fn note(&self) -> Option<String> {
        match self {
            Event::Dispatch { note, .. } => note.clone(),
            Event::Progress { note } => Some(note.clone()),
            Event::Complete { resolution } => Some(resolution.clone()),
            Event::Urge { reason } | Event::Terminate { reason } => reason.clone(),
            Event::Rate { score, comment } => Some(match comment {
                Some(c) => format!("{score}/5 {c}"),
                None => format!("{score}/5"),
            }),
            Event::Accept | Event::Overdue => None,
        }
    }
}

impl EventKind {
    /// A well-formed event of this kind, used to ask `decide` whether the kind is allowed.
    fn sample(self, actor: &Actor) -> Event {
        match self {
            EventKind::Dispatch => Event::Dispatch {
                handler_id: actor.id.clone(),
                note: None,
            },
            EventKind::Accept => Event::Accept,
            EventKind::Progress => Event::Progress {
                note: String::new(),
            },
            EventKind::Complete => Event::Complete {
                resolution: String::new(),
            },
            EventKind::Urge => Event::Urge { reason: None },
            EventKind::Terminate => Event::Terminate { reason: None },
            EventKind::Rate => Event::Rate {
                score: 5,
                comment: None,
            },
            EventKind::Overdue => Event::Overdue,
        }
    }
}

/// Who a notification or email goes to, resolved by the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    Owner,
    Handler,
    /// The handler before a re-dispatch, told that the order went to someone else.
    User(String),
    /// Every admin.
    Supervisors,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, AsRefStr)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum NoticeKind {
    WorkOrderCreated,
    WorkOrderDispatched,
    WorkOrderReassigned,
    WorkOrderProgress,
    WorkOrderCompleted,
    WorkOrderUrged,
    WorkOrderEscalated,
    WorkOrderTerminated,
    WorkOrderOverdue,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Notify { to: Recipient, kind: NoticeKind },
    Email { to: Recipient, kind: NoticeKind },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub next: Snapshot,
    pub effects: Vec<Effect>,
}

/// The configurable numbers of the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub urge_cooldown: Duration,
    /// Every this many urges the priority goes up one step.
    pub escalate_after_urges: u32,
    pub rating_window: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            urge_cooldown: Duration::hours(24),
            escalate_after_urges: 3,
            rating_window: Duration::days(30),
        }
    }
}

/// How an actor stands to this order; rights are given to relations, not to ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relation {
    Owner,
    Handler,
    Bureau,
    System,
    Stranger,
}

fn relation(state: &Snapshot, actor: &Actor) -> Relation {
    match actor.role {
        Role::System => Relation::System,
        Role::Taxpayer if actor.id == state.owner_id => Relation::Owner,
        Role::Taxpayer => Relation::Stranger,
        Role::Staff | Role::Admin if state.handler_id.as_deref() == Some(actor.id.as_str()) => {
            Relation::Handler
        }
        Role::Staff | Role::Admin => Relation::Bureau,
    }
}

fn forbidden(kind: EventKind) -> Refusal {
    let (zh, en) = match kind {
        EventKind::Dispatch => (
            "只有工作人员可以分派工单",
            "only staff may dispatch a work order",
        ),
        EventKind::Accept | EventKind::Progress | EventKind::Complete => (
            "只有该工单的处理人可以办理",
            "only the work order's handler may do this",
        ),
        EventKind::Urge | EventKind::Terminate | EventKind::Rate => (
            "只有提交工单的纳税人可以执行此操作",
            "only the taxpayer who owns the work order may do this",
        ),
        EventKind::Overdue => (
            "超期由系统判定",
            "only the system marks a work order overdue",
        ),
    };
    Refusal::forbidden(zh, en)
}

/// Which relations may ask for which event (before looking at the status).
fn may(rel: Relation, kind: EventKind) -> bool {
    use EventKind as K;
    use Relation as R;
    match kind {
        K::Dispatch => matches!(rel, R::Bureau | R::Handler),
        K::Accept | K::Progress | K::Complete => rel == R::Handler,
        K::Urge | K::Terminate | K::Rate => rel == R::Owner,
        K::Overdue => rel == R::System,
    }
}

pub fn decide(
    policy: &Policy,
    state: &Snapshot,
    actor: &Actor,
    event: &Event,
    now: DateTime<Utc>,
) -> Result<Decision, Refusal> {
    let kind = event.kind();
    if !may(relation(state, actor), kind) {
        return Err(forbidden(kind));
    }
    let refuse = || Refusal::invalid_transition(state.status.as_ref(), kind.as_ref());
    let mut next = state.clone();
    let mut effects = Vec::new();
    use Status as S;
    match (state.status, event) {
        (S::Submitted | S::Dispatched | S::InProgress, Event::Dispatch { handler_id, .. }) => {
            next.status = S::Dispatched;
            next.handler_id = Some(handler_id.clone());
            effects.push(Effect::Notify {
                to: Recipient::Handler,
                kind: NoticeKind::WorkOrderDispatched,
            });
            if let Some(previous) = state.handler_id.as_ref().filter(|p| *p != handler_id) {
                effects.push(Effect::Notify {
                    to: Recipient::User(previous.clone()),
                    kind: NoticeKind::WorkOrderReassigned,
                });
            }
        }
        (S::Dispatched, Event::Accept) => next.status = S::InProgress,
        (S::InProgress, Event::Progress { .. }) => effects.push(Effect::Notify {
            to: Recipient::Owner,
            kind: NoticeKind::WorkOrderProgress,
        }),
        (S::InProgress, Event::Complete { resolution }) => {
            next.status = S::Completed;
            next.resolution = Some(resolution.clone());
            next.closed_at = Some(now);
            effects.push(Effect::Notify {
                to: Recipient::Owner,
                kind: NoticeKind::WorkOrderCompleted,
            });
            effects.push(Effect::Email {
                to: Recipient::Owner,
                kind: NoticeKind::WorkOrderCompleted,
            });
        }
        (S::Submitted | S::Dispatched | S::InProgress, Event::Urge { .. }) => {
            if let Some(last) = state.last_urged_at {
                let again_at = last + policy.urge_cooldown;
                if now < again_at {
                    return Err(Refusal::new(
                        RefusalCode::CoolDown,
                        format!("催办过于频繁，请于 {} 后再试", again_at.to_rfc3339()),
                        format!(
                            "already urged; you may urge again after {}",
                            again_at.to_rfc3339()
                        ),
                    ));
                }
            }
            next.urge_count = state.urge_count + 1;
            next.last_urged_at = Some(now);
            // Before dispatch there is no handler yet: the supervisors hear the urge.
            let urged = if state.handler_id.is_some() {
                Recipient::Handler
            } else {
                Recipient::Supervisors
            };
            effects.push(Effect::Notify {
                to: urged,
                kind: NoticeKind::WorkOrderUrged,
            });
            if policy.escalate_after_urges > 0
                && next.urge_count.is_multiple_of(policy.escalate_after_urges)
                && state.priority != Priority::Urgent
            {
                next.priority = state.priority.raised();
                effects.push(Effect::Notify {
                    to: Recipient::Supervisors,
                    kind: NoticeKind::WorkOrderEscalated,
                });
            }
        }
        (S::Submitted | S::Dispatched | S::InProgress, Event::Terminate { .. }) => {
            next.status = S::Terminated;
            next.closed_at = Some(now);
            if state.handler_id.is_some() {
                effects.push(Effect::Notify {
                    to: Recipient::Handler,
                    kind: NoticeKind::WorkOrderTerminated,
                });
            }
        }
        (S::Completed | S::Terminated, Event::Rate { score, comment }) => {
            if state.rating.is_some() {
                return Err(Refusal::new(
                    RefusalCode::AlreadyRated,
                    "该工单已评价，不能重复评价",
                    "this work order has already been rated",
                ));
            }
            if !(1..=5).contains(score) {
                return Err(Refusal::new(
                    RefusalCode::InvalidInput,
                    "评分须为 1 到 5",
                    "score must be between 1 and 5",
                ));
            }
            let closed = state.closed_at.unwrap_or(now);
            if now > closed + policy.rating_window {
                return Err(Refusal::new(
                    RefusalCode::InvalidTransition,
                    "已超过评价期限",
                    "the time for rating this work order has passed",
                ));
            }
            next.rating = Some(Rating {
                score: *score as u8,
                comment: comment.clone(),
                at: now,
            });
        }
        (S::Submitted | S::Dispatched | S::InProgress, Event::Overdue) => {
            let due = match state.deadline {
                Some(d) if d <= now && state.overdue_escalated_for != Some(d) => d,
                _ => return Err(refuse()),
            };
            next.overdue_escalated_for = Some(due);
            next.priority = state.priority.raised();
            if state.handler_id.is_some() {
                effects.push(Effect::Notify {
                    to: Recipient::Handler,
                    kind: NoticeKind::WorkOrderOverdue,
                });
            }
            effects.push(Effect::Notify {
                to: Recipient::Supervisors,
                kind: NoticeKind::WorkOrderOverdue,
            });
        }
        _ => return Err(refuse()),
    }
    Ok(Decision { next, effects })
}

/// The events this actor may ask for now; drives `allowedActions`. The system's `OVERDUE` is
/// never offered to a person.
pub fn allowed(
    policy: &Policy,
    state: &Snapshot,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Vec<EventKind> {
    EventKind::iter()
        .filter(|k| decide(policy, state, actor, &k.sample(actor), now).is_ok())
        .collect()
}

/// Who may create an order, and for whom. Returns the owner's user id.
pub fn decide_create(actor: &Actor, taxpayer_id: Option<&str>) -> Result<String, Refusal> {
    match (actor.role, taxpayer_id) {
        (Role::Taxpayer, None) => Ok(actor.id.clone()),
        (Role::Taxpayer, Some(t)) if t == actor.id => Ok(actor.id.clone()),
        (Role::Taxpayer, Some(_)) => Err(Refusal::forbidden(
            "纳税人只能为自己提交工单",
            "a taxpayer may only create work orders for themselves",
        )),
        (Role::Staff | Role::Admin, Some(t)) => Ok(t.to_string()),
        (Role::Staff | Role::Admin, None) => Err(Refusal::new(
            RefusalCode::InvalidInput,
            "工作人员代为提交工单时须填写纳税人（taxpayerId）",
            "staff must name the taxpayer (taxpayerId) when creating a work order",
        )),
        (Role::System, _) => Err(Refusal::forbidden(
            "系统不能提交工单",
            "the system does not create work orders",
        )),
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
