//! The offline-message (留言) machine as one pure function: `decide(state, actor, event, now)`.
//!
//! | from | event (actor) | to | effect |
//! |---|---|---|---|
//! | — | submit (a taxpayer, for themselves) | SUBMITTED | notify the supervisors |
//! | SUBMITTED | reply(content) (staff/admin) | REPLIED | notify + email the owner; to-do "read reply" |
//! | REPLIED | follow_up(content) (owner) | SUBMITTED | notify the staff member who replied last |
//! | SUBMITTED, REPLIED | close (owner, staff/admin) | CLOSED | staff closing tells the owner |
//! | SUBMITTED, REPLIED | convert(work order) (staff/admin) | CLOSED | records the work order |
//!
//! Converting closes the message: from then on the matter is followed in the work order
//! (progress, urge, terminate, rate), so the conversation does not continue in two places.
//! The work order's own creation tells the taxpayer, so converting adds no notice of its own.
//!
//! The actor's right to an event is checked before the status, so a taxpayer asking to reply
//! is `FORBIDDEN` whatever the state, and replying twice is `INVALID_TRANSITION`.

use chrono::{DateTime, Utc};
use strum::{AsRefStr, EnumDiscriminants, EnumIter, EnumString, IntoEnumIterator};

use crate::actor::{Actor, Role};
use crate::refusal::Refusal;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, AsRefStr, EnumString, EnumIter)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Submitted,
    Replied,
    Closed,
}

impl Status {
    pub fn is_open(self) -> bool {
        self != Status::Closed
    }
}

/// What the machine needs to know of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub status: Status,
    pub owner_id: String,
    /// The staff member who replied last; a follow-up goes to them.
    pub last_replier_id: Option<String>,
    pub work_order_id: Option<String>,
    pub closed_at: Option<DateTime<Utc>>,
    pub closed_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, EnumDiscriminants)]
#[strum_discriminants(name(EventKind))]
#[strum_discriminants(derive(Hash, AsRefStr, EnumIter, EnumString))]
#[strum_discriminants(strum(serialize_all = "SCREAMING_SNAKE_CASE"))]
pub enum Event {
    Reply {
        content: String,
    },
    FollowUp {
        content: String,
    },
    Close,
    /// The work order already made from the message.
    Convert {
        work_order_id: String,
        number: String,
    },
}

impl Event {
    pub fn kind(&self) -> EventKind {
        EventKind::from(self)
    }

    /// The text kept in the history row.
    pub fn note(&self) -> Option<String> {
        match self {
            Event::Reply { content } | Event::FollowUp { content } => Some(content.clone()),
            Event::Convert { number, .. } => Some(format!("转为工单 {number}")),
            Event::Close => None,
        }
    }
}

impl EventKind {
    /// A well-formed event of this kind, used to ask `decide` whether the kind is allowed.
    pub(crate) fn sample(self) -> Event {
        match self {
            EventKind::Reply => Event::Reply {
                content: String::new(),
            },
            EventKind::FollowUp => Event::FollowUp {
                content: String::new(),
            },
            EventKind::Close => Event::Close,
            EventKind::Convert => Event::Convert {
                work_order_id: String::new(),
                number: String::new(),
            },
        }
    }
}

/// Who a notification or email goes to, resolved by the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipient {
    Owner,
    /// The staff member who replied last.
    Replier,
    /// Every admin.
    Supervisors,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, AsRefStr)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum NoticeKind {
    LeaveMessageSubmitted,
    LeaveMessageReplied,
    LeaveMessageFollowedUp,
    LeaveMessageClosed,
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

/// How an actor stands to this message; rights are given to relations, not to ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relation {
    Owner,
    Bureau,
    System,
    Stranger,
}

fn relation(state: &Snapshot, actor: &Actor) -> Relation {
    match actor.role {
        Role::System => Relation::System,
        Role::Taxpayer if actor.id == state.owner_id => Relation::Owner,
        Role::Taxpayer => Relation::Stranger,
        Role::Staff | Role::Admin => Relation::Bureau,
    }
}

fn forbidden(kind: EventKind) -> Refusal {
    let (zh, en) = match kind {
        EventKind::Reply => (
            "只有工作人员可以答复留言",
            "only staff may reply to a message",
        ),
        EventKind::FollowUp => (
            "只有留言的纳税人可以追问",
            "only the taxpayer who left the message may follow up",
        ),
        EventKind::Close => (
            "只有留言的纳税人或工作人员可以关闭留言",
            "only the taxpayer who left the message or staff may close it",
        ),
        EventKind::Convert => (
            "只有工作人员可以将留言转为工单",
            "only staff may turn a message into a work order",
        ),
    };
    Refusal::forbidden(zh, en)
}

/// Which relations may ask for which event (before looking at the status).
fn may(rel: Relation, kind: EventKind) -> bool {
    use EventKind as K;
    use Relation as R;
    match kind {
        K::Reply | K::Convert => rel == R::Bureau,
        K::FollowUp => rel == R::Owner,
        K::Close => matches!(rel, R::Owner | R::Bureau),
    }
}

pub fn decide(
    state: &Snapshot,
    actor: &Actor,
    event: &Event,
    now: DateTime<Utc>,
) -> Result<Decision, Refusal> {
    let kind = event.kind();
    let rel = relation(state, actor);
    if !may(rel, kind) {
        return Err(forbidden(kind));
    }
    let refuse = || Refusal::invalid_transition(state.status.as_ref(), kind.as_ref());
    let mut next = state.clone();
    let mut effects = Vec::new();
    let close = |next: &mut Snapshot| {
        next.status = Status::Closed;
        next.closed_at = Some(now);
        next.closed_by = Some(actor.id.clone());
    };
    use Status as S;
    match (state.status, event) {
        (S::Submitted, Event::Reply { .. }) => {
            next.status = S::Replied;
            next.last_replier_id = Some(actor.id.clone());
            effects.push(Effect::Notify {
                to: Recipient::Owner,
                kind: NoticeKind::LeaveMessageReplied,
            });
            effects.push(Effect::Email {
                to: Recipient::Owner,
                kind: NoticeKind::LeaveMessageReplied,
            });
        }
        (S::Replied, Event::FollowUp { .. }) => {
            next.status = S::Submitted;
            // Whoever answered hears the follow-up; without one, the supervisors do.
            let to = if state.last_replier_id.is_some() {
                Recipient::Replier
            } else {
                Recipient::Supervisors
            };
            effects.push(Effect::Notify {
                to,
                kind: NoticeKind::LeaveMessageFollowedUp,
            });
        }
        (S::Submitted | S::Replied, Event::Close) => {
            close(&mut next);
            if rel == Relation::Bureau {
                effects.push(Effect::Notify {
                    to: Recipient::Owner,
                    kind: NoticeKind::LeaveMessageClosed,
                });
            }
        }
        (S::Submitted | S::Replied, Event::Convert { work_order_id, .. }) => {
            close(&mut next);
            next.work_order_id = Some(work_order_id.clone());
        }
        _ => return Err(refuse()),
    }
    Ok(Decision { next, effects })
}

/// The events this actor may ask for now; drives `allowedActions`.
pub fn allowed(state: &Snapshot, actor: &Actor, now: DateTime<Utc>) -> Vec<EventKind> {
    EventKind::iter()
        .filter(|k| decide(state, actor, &k.sample(), now).is_ok())
        .collect()
}

/// Who may leave a message: a taxpayer, for themselves. Returns the owner's user id and what
/// submitting causes.
pub fn decide_submit(actor: &Actor) -> Result<(String, Vec<Effect>), Refusal> {
    match actor.role {
        Role::Taxpayer => Ok((
            actor.id.clone(),
            vec![Effect::Notify {
                to: Recipient::Supervisors,
                kind: NoticeKind::LeaveMessageSubmitted,
            }],
        )),
        Role::Staff | Role::Admin | Role::System => Err(Refusal::forbidden(
            "只有纳税人可以留言",
            "only a taxpayer may leave a message",
        )),
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
