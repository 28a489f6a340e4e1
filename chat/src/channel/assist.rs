//! Remote assistance (远程协助) as one pure function: `decide(state, actor, event, now)`.
//! The taxpayer shares their screen; the agent only ever watches.
//!
//! | from | event (actor) | to |
//! |---|---|---|
//! | — | request (the session's taxpayer; the chat session is ACTIVE) | REQUESTED |
//! | REQUESTED | accept (the session's agent; the chat session is ACTIVE) | ACTIVE |
//! | REQUESTED | decline (the session's agent) | DECLINED |
//! | REQUESTED | cancel (the session's taxpayer) | CANCELLED |
//! | ACTIVE | end (either participant, or the system) | ENDED |
//! | REQUESTED | end (the system) | CANCELLED |
//! | REQUESTED | session_ended (system) | CANCELLED |
//! | ACTIVE | session_ended (system) | ENDED |
//!
//! "—" is a session without an open request (`Snapshot::new`): each request is a new
//! `chat_channels` row, and a final row never opens again. The system's `END` is for a channel
//! that must stop while the chat goes on (the chat was transferred to another agent);
//! `SESSION_ENDED` is for the chat itself ending. Every change is published to the session.
//!
//! The actor's right to an event is checked before the status, so another staff member
//! accepting is `FORBIDDEN` whatever the state, and the agent accepting twice is
//! `INVALID_TRANSITION`.

use chrono::{DateTime, Utc};
use strum::{AsRefStr, EnumDiscriminants, EnumIter, EnumString, IntoEnumIterator};
use taxdesk_workflow::{Actor, Refusal, RefusalCode};

use super::{ChannelChange, ChannelKind, Effect, Party, Relay, SignalKind, session_not_active};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, AsRefStr, EnumString, EnumIter)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Requested,
    Active,
    Declined,
    Cancelled,
    Ended,
}

impl Status {
    /// REQUESTED and ACTIVE are open; the rest never change again.
    pub fn is_open(self) -> bool {
        matches!(self, Status::Requested | Status::Active)
    }
}

/// What the machine needs to know of a remote assistance and its chat session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// `None` before the taxpayer requests (no open row in this session).
    pub status: Option<Status>,
    /// The session's taxpayer: the one who shares the screen.
    pub taxpayer_id: String,
    /// The session's agent: the one who watches.
    pub agent_id: Option<String>,
    /// Whether the chat session is ACTIVE (a human agent is in the chat).
    pub session_active: bool,
    pub requested_at: Option<DateTime<Utc>>,
    /// When it reached a final status.
    pub ended_at: Option<DateTime<Utc>>,
}

impl Snapshot {
    /// A session with no open remote assistance: the state a `REQUEST` starts from.
    pub fn new(
        taxpayer_id: impl Into<String>,
        agent_id: Option<String>,
        session_active: bool,
    ) -> Snapshot {
        Snapshot {
            status: None,
            taxpayer_id: taxpayer_id.into(),
            agent_id,
            session_active,
            requested_at: None,
            ended_at: None,
        }
    }

    /// The status as the history and refusals name it (`—` before the request).
    fn status_name(&self) -> &str {
        self.status.as_ref().map_or("—", |s| s.as_ref())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, EnumDiscriminants)]
#[strum_discriminants(name(EventKind))]
#[strum_discriminants(derive(Hash, AsRefStr, EnumIter, EnumString))]
#[strum_discriminants(strum(serialize_all = "SCREAMING_SNAKE_CASE"))]
pub enum Event {
    Request,
    Accept,
    Decline,
    Cancel,
    End,
    SessionEnded,
}

impl Event {
    pub fn kind(&self) -> EventKind {
        EventKind::from(self)
    }

    /// The text kept in the history row.
    pub fn note(&self) -> Option<String> {
        None
    }
}

impl EventKind {
    /// A well-formed event of this kind, used to ask `decide` whether the kind is allowed.
    fn sample(self) -> Event {
        match self {
            EventKind::Request => Event::Request,
            EventKind::Accept => Event::Accept,
            EventKind::Decline => Event::Decline,
            EventKind::Cancel => Event::Cancel,
            EventKind::End => Event::End,
            EventKind::SessionEnded => Event::SessionEnded,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The status the channel moves to (also `next.status`).
    pub to: Status,
    pub next: Snapshot,
    pub effects: Vec<Effect>,
}

fn forbidden(kind: EventKind) -> Refusal {
    let (zh, en) = match kind {
        EventKind::Request | EventKind::Cancel => (
            "只有本会话的纳税人可以请求或取消远程协助",
            "only the taxpayer of this chat may request or cancel remote assistance",
        ),
        EventKind::Accept | EventKind::Decline => (
            "只有本会话的坐席可以接受或拒绝远程协助",
            "only the agent of this chat may accept or decline remote assistance",
        ),
        EventKind::End => (
            "只有会话双方可以结束远程协助",
            "only the participants of this chat may end remote assistance",
        ),
        EventKind::SessionEnded => (
            "会话结束由系统处理",
            "only the system reports that the chat ended",
        ),
    };
    Refusal::forbidden(zh, en)
}

/// Which parties may ask for which event (before looking at the status).
fn may(party: Party, kind: EventKind) -> bool {
    use EventKind as K;
    use Party as P;
    match kind {
        K::Request | K::Cancel => party == P::Taxpayer,
        K::Accept | K::Decline => party == P::Agent,
        K::End => matches!(party, P::Taxpayer | P::Agent | P::System),
        K::SessionEnded => party == P::System,
    }
}

pub fn decide(
    state: &Snapshot,
    actor: &Actor,
    event: &Event,
    now: DateTime<Utc>,
) -> Result<Decision, Refusal> {
    let kind = event.kind();
    let party = Party::of(&state.taxpayer_id, state.agent_id.as_deref(), actor);
    if !may(party, kind) {
        return Err(forbidden(kind));
    }
    let refuse = || Refusal::invalid_transition(state.status_name(), kind.as_ref());
    use Status as S;
    let to = match (state.status, event) {
        (None, Event::Request) if !state.session_active => return Err(session_not_active()),
        (None, Event::Request) => S::Requested,
        (Some(S::Requested | S::Active), Event::Request) => {
            return Err(Refusal::new(
                RefusalCode::InvalidTransition,
                "已有进行中的远程协助",
                "a remote assistance is already requested or active in this chat",
            ));
        }
        (Some(S::Requested), Event::Accept) if !state.session_active => {
            return Err(session_not_active());
        }
        (Some(S::Requested), Event::Accept) => S::Active,
        (Some(S::Requested), Event::Decline) => S::Declined,
        (Some(S::Requested), Event::Cancel) => S::Cancelled,
        (Some(S::Active), Event::End | Event::SessionEnded) => S::Ended,
        // A request the agent never took up is cancelled, not ended.
        (Some(S::Requested), Event::End) if party == Party::System => S::Cancelled,
        (Some(S::Requested), Event::SessionEnded) => S::Cancelled,
        _ => return Err(refuse()),
    };
    let mut next = state.clone();
    next.status = Some(to);
    if state.status.is_none() {
        next.requested_at = Some(now);
    }
    if !to.is_open() {
        next.ended_at = Some(now);
    }
    let effects = vec![Effect::Publish(ChannelChange::RemoteAssist {
        from: state.status,
        to,
    })];
    Ok(Decision { to, next, effects })
}

/// The events this actor may ask for now; drives `allowedActions`. The system's events are
/// never offered to a person.
pub fn allowed(state: &Snapshot, actor: &Actor, now: DateTime<Utc>) -> Vec<EventKind> {
    EventKind::iter()
        .filter(|k| decide(state, actor, &k.sample(), now).is_ok())
        .collect()
}

/// Whether `actor` may send a signal of `kind` now, and to whom: only between the session's
/// taxpayer and agent, only while ACTIVE, and never [`SignalKind::Control`] — the agent watches
/// and never steers. A stranger or another staff member is `FORBIDDEN`, so is a control
/// message; a signal outside ACTIVE is `INVALID_TRANSITION`.
pub fn signal(state: &Snapshot, actor: &Actor, kind: SignalKind) -> Result<Relay, Refusal> {
    super::signal(
        ChannelKind::RemoteAssist,
        state.status == Some(Status::Active),
        &state.taxpayer_id,
        state.agent_id.as_deref(),
        actor,
        kind,
    )
}

/// [`signal`] as a yes or no.
pub fn may_signal(state: &Snapshot, actor: &Actor, kind: SignalKind) -> bool {
    signal(state, actor, kind).is_ok()
}

#[cfg(test)]
#[path = "assist_tests.rs"]
mod tests;
