//! The booking machine (预约) as one pure function.
//!
//! | from | event (actor) | to |
//! |---|---|---|
//! | — | book (taxpayer) | CONFIRMED |
//! | — | invite (staff) | INVITED |
//! | INVITED | accept / reject (the taxpayer) | CONFIRMED / REJECTED |
//! | INVITED | expire (system, at the start) | EXPIRED |
//! | CONFIRMED | cancel (the taxpayer before the cut-off; staff any time, with a reason) | CANCELLED |
//! | CONFIRMED | reschedule (as cancel) | CONFIRMED |
//! | CONFIRMED | start (system, at the start) | IN_SESSION |
//! | IN_SESSION | finish (system: the session ended) | COMPLETED |
//! | IN_SESSION | no_show (system: nobody came within the grace period) | NO_SHOW |

use chrono::{DateTime, Duration, Utc};
use strum::{AsRefStr, EnumDiscriminants, EnumIter, EnumString, IntoEnumIterator};

use crate::actor::{Actor, Role};
use crate::refusal::{Refusal, RefusalCode};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, AsRefStr, EnumString, EnumIter)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Invited,
    Confirmed,
    Rejected,
    Expired,
    Cancelled,
    InSession,
    Completed,
    NoShow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, AsRefStr, EnumString, EnumIter)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum Origin {
    /// 我的发起: the taxpayer booked.
    Mine,
    /// 税局邀请: the bureau invited.
    BureauInvited,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub status: Status,
    pub taxpayer_id: String,
    pub agent_id: Option<String>,
    pub inviter_id: Option<String>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// How long before the start the taxpayer may still cancel or move it.
    pub cancel_cutoff: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, EnumDiscriminants)]
#[strum_discriminants(name(EventKind))]
#[strum_discriminants(derive(Hash, AsRefStr, EnumIter, EnumString))]
#[strum_discriminants(strum(serialize_all = "SCREAMING_SNAKE_CASE"))]
pub enum Event {
    Accept,
    Reject {
        reason: Option<String>,
    },
    Expire,
    Cancel {
        reason: Option<String>,
    },
    /// To a new start (already checked against hours and capacity by the service).
    Reschedule {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
    Start,
    Finish,
    NoShow,
}

impl Event {
    pub fn kind(&self) -> EventKind {
        EventKind::from(self)
    }

    pub fn note(&self) -> Option<String> {
        match self {
            Event::Reject { reason } | Event::Cancel { reason } => reason.clone(),
            Event::Reschedule { start, .. } => Some(start.to_rfc3339()),
            _ => None,
        }
    }
}

/// Who hears of a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipient {
    Taxpayer,
    /// The host: the booking's agent, or, before there is one, the supervisors.
    Host,
    Inviter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, AsRefStr)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum NoticeKind {
    BookingConfirmed,
    BookingInvited,
    BookingAccepted,
    BookingRejected,
    BookingCancelled,
    BookingRescheduled,
    BookingStarted,
    BookingExpired,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Notify {
        to: Recipient,
        kind: NoticeKind,
    },
    Email {
        to: Recipient,
        kind: NoticeKind,
    },
    /// Reminders before the start, and the start itself.
    ScheduleReminders,
    /// The invitation runs out at the start.
    ScheduleExpiry,
    /// After the start: nobody came?
    ScheduleNoShowCheck,
    /// Pending jobs of this booking are no longer wanted.
    CancelJobs,
    /// Give back the place in the slot.
    ReleasePlace,
    /// Open the chat session bound to the booking (carried out by the chat layer).
    OpenBookedSession,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub next: Snapshot,
    pub effects: Vec<Effect>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relation {
    Owner,
    Bureau,
    System,
    Stranger,
}

fn relation(s: &Snapshot, a: &Actor) -> Relation {
    match a.role {
        Role::System => Relation::System,
        Role::Taxpayer if a.id == s.taxpayer_id => Relation::Owner,
        Role::Taxpayer => Relation::Stranger,
        Role::Staff | Role::Admin => Relation::Bureau,
    }
}

fn may(rel: Relation, kind: EventKind) -> bool {
    use EventKind as K;
    use Relation as R;
    match kind {
        K::Accept | K::Reject => rel == R::Owner,
        K::Cancel | K::Reschedule => matches!(rel, R::Owner | R::Bureau),
        K::Expire | K::Start | K::Finish | K::NoShow => rel == R::System,
    }
}

pub fn decide(
    s: &Snapshot,
    actor: &Actor,
    event: &Event,
    now: DateTime<Utc>,
) -> Result<Decision, Refusal> {
    let kind = event.kind();
    let rel = relation(s, actor);
    if !may(rel, kind) {
        return Err(Refusal::forbidden(
            format!("无权对该预约执行此操作（{}）", kind.as_ref()),
            format!("you may not {} this booking", kind.as_ref()),
        ));
    }
    let mut next = s.clone();
    let mut effects = vec![];
    use Status as S;
    match (s.status, event) {
        (S::Invited, Event::Accept) => {
            if now >= s.start {
                return Err(Refusal::new(
                    RefusalCode::InvalidTransition,
                    "邀请已过开始时间",
                    "the invitation's time has passed",
                ));
            }
            next.status = S::Confirmed;
            effects.extend([
                Effect::CancelJobs,
                Effect::ScheduleReminders,
                Effect::Notify {
                    to: Recipient::Inviter,
                    kind: NoticeKind::BookingAccepted,
                },
            ]);
        }
        (S::Invited, Event::Reject { .. }) => {
            next.status = S::Rejected;
            effects.extend([
                Effect::CancelJobs,
                Effect::Notify {
                    to: Recipient::Inviter,
                    kind: NoticeKind::BookingRejected,
                },
            ]);
        }
        (S::Invited, Event::Expire) => {
            next.status = S::Expired;
            effects.push(Effect::Notify {
                to: Recipient::Inviter,
                kind: NoticeKind::BookingExpired,
            });
        }
        (S::Confirmed, Event::Cancel { reason }) => {
            late_guard(s, rel, reason.as_deref(), now)?;
            next.status = S::Cancelled;
            let other = if rel == Relation::Owner {
                Recipient::Host
            } else {
                Recipient::Taxpayer
            };
            effects.extend([
                Effect::CancelJobs,
                Effect::ReleasePlace,
                Effect::Notify {
                    to: other,
                    kind: NoticeKind::BookingCancelled,
                },
            ]);
            if other == Recipient::Taxpayer {
                effects.push(Effect::Email {
                    to: Recipient::Taxpayer,
                    kind: NoticeKind::BookingCancelled,
                });
            }
        }
        (S::Confirmed, Event::Reschedule { start, end }) => {
            late_guard(s, rel, Some("reschedule"), now)?;
            next.start = *start;
            next.end = *end;
            let other = if rel == Relation::Owner {
                Recipient::Host
            } else {
                Recipient::Taxpayer
            };
            effects.extend([
                Effect::CancelJobs,
                Effect::ScheduleReminders,
                Effect::Notify {
                    to: other,
                    kind: NoticeKind::BookingRescheduled,
                },
            ]);
        }
        (S::Confirmed, Event::Start) => {
            next.status = S::InSession;
            effects.extend([
                Effect::OpenBookedSession,
                Effect::ScheduleNoShowCheck,
                Effect::Notify {
                    to: Recipient::Taxpayer,
                    kind: NoticeKind::BookingStarted,
                },
                Effect::Notify {
                    to: Recipient::Host,
                    kind: NoticeKind::BookingStarted,
                },
            ]);
        }
        (S::InSession, Event::Finish) => next.status = S::Completed,
        (S::InSession, Event::NoShow) => next.status = S::NoShow,
        _ => {
            return Err(Refusal::invalid_transition(
                s.status.as_ref(),
                kind.as_ref(),
            ));
        }
    }
    Ok(Decision { next, effects })
}

/// A taxpayer may cancel or move only before the cut-off; staff any time, with a reason.
fn late_guard(
    s: &Snapshot,
    rel: Relation,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    match rel {
        Relation::Owner if now > s.start - s.cancel_cutoff => Err(Refusal::new(
            RefusalCode::TooLateToCancel,
            format!(
                "距开始不足 {} 分钟，已不能取消或改约",
                s.cancel_cutoff.num_minutes()
            ),
            format!(
                "less than {} minutes before the start: too late to cancel or move",
                s.cancel_cutoff.num_minutes()
            ),
        )),
        Relation::Bureau if reason.is_none_or(|r| r.trim().is_empty()) => Err(Refusal::new(
            RefusalCode::InvalidInput,
            "工作人员取消预约须填写原因",
            "staff must give a reason to cancel a booking",
        )),
        _ => Ok(()),
    }
}

impl EventKind {
    fn sample(self, s: &Snapshot) -> Event {
        match self {
            EventKind::Accept => Event::Accept,
            EventKind::Reject => Event::Reject { reason: None },
            EventKind::Expire => Event::Expire,
            EventKind::Cancel => Event::Cancel {
                reason: Some("—".into()),
            },
            EventKind::Reschedule => Event::Reschedule {
                start: s.start,
                end: s.end,
            },
            EventKind::Start => Event::Start,
            EventKind::Finish => Event::Finish,
            EventKind::NoShow => Event::NoShow,
        }
    }
}

/// What this actor may do now (system events are never offered to people).
pub fn allowed(s: &Snapshot, actor: &Actor, now: DateTime<Utc>) -> Vec<EventKind> {
    if actor.role == Role::System {
        return vec![];
    }
    EventKind::iter()
        .filter(|k| decide(s, actor, &k.sample(s), now).is_ok())
        .collect()
}

/// Who may book or invite: a taxpayer books for themselves; staff invite a taxpayer.
pub fn decide_new(actor: &Actor, origin: Origin) -> Result<(), Refusal> {
    match (origin, actor.role) {
        (Origin::Mine, Role::Taxpayer) | (Origin::BureauInvited, Role::Staff | Role::Admin) => {
            Ok(())
        }
        (Origin::Mine, _) => Err(Refusal::forbidden(
            "只有纳税人可以预约",
            "only taxpayers book appointments",
        )),
        (Origin::BureauInvited, _) => Err(Refusal::forbidden(
            "只有工作人员可以发出邀请",
            "only staff invite taxpayers",
        )),
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
