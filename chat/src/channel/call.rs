//! Audio/video calls (音视频) as one pure function: `decide(policy, state, actor, event, now)`.
//! The agent proposes a call; the taxpayer agrees (同意) or declines.
//!
//! | from | event (actor) | to | effects |
//! |---|---|---|---|
//! | — | invite(AUDIO/VIDEO) (the session's agent; the chat session is ACTIVE) | INVITED | schedule expiry at now + answer timeout |
//! | INVITED | accept (the session's taxpayer; before the timeout; the chat session is ACTIVE) | ACTIVE | cancel expiry |
//! | INVITED | decline (the session's taxpayer; before the timeout) | DECLINED | cancel expiry |
//! | INVITED | cancel (the session's agent withdraws) | CANCELLED | cancel expiry |
//! | INVITED | expire (system; the timeout has passed) | EXPIRED | |
//! | ACTIVE | end (either participant, or the system) | ENDED | |
//! | INVITED | end (the system) | CANCELLED | cancel expiry |
//! | INVITED | session_ended (system) | CANCELLED | cancel expiry |
//! | ACTIVE | session_ended (system) | ENDED | |
//!
//! Every change is also published to the session. "—" is a session without an open call
//! (`Snapshot::new`): each invitation is a new `chat_channels` row, and a final row never opens
//! again. The system's `END` is for a call that must stop while the chat goes on (the chat was
//! transferred to another agent); `SESSION_ENDED` is for the chat itself ending.
//!
//! The actor's right to an event is checked before the status, so the taxpayer inviting is
//! `FORBIDDEN` whatever the state, and accepting twice is `INVALID_TRANSITION`.

use chrono::{DateTime, Duration, Utc};
use strum::{AsRefStr, EnumDiscriminants, EnumIter, EnumString, IntoEnumIterator};
use taxdesk_workflow::{Actor, Refusal, RefusalCode};

use super::{
    ChannelChange, ChannelKind, Effect, Media, Party, Relay, SignalKind, session_not_active,
};

/// The scheduled job that expires an unanswered invitation; payload `{"channelId"}`.
pub const EXPIRE_JOB_KIND: &str = "call.expire";

/// How long an invitation waits for the taxpayer's answer unless configured otherwise.
pub const DEFAULT_ANSWER_TIMEOUT: Duration = Duration::seconds(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, AsRefStr, EnumString, EnumIter)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Invited,
    Active,
    Declined,
    Expired,
    Cancelled,
    Ended,
}

impl Status {
    /// INVITED and ACTIVE are open; the rest never change again.
    pub fn is_open(self) -> bool {
        matches!(self, Status::Invited | Status::Active)
    }
}

/// The configurable numbers of the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// How long an invitation waits for an answer before it expires.
    pub answer_timeout: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            answer_timeout: DEFAULT_ANSWER_TIMEOUT,
        }
    }
}

/// What the machine needs to know of a call and its chat session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// `None` before the agent invites (no open call in this session).
    pub status: Option<Status>,
    /// Set by the invitation.
    pub media: Option<Media>,
    /// The session's taxpayer: the one who is invited.
    pub taxpayer_id: String,
    /// The session's agent: the one who invites.
    pub agent_id: Option<String>,
    /// Whether the chat session is ACTIVE (a human agent is in the chat).
    pub session_active: bool,
    /// When the agent invited; the answer timeout counts from here.
    pub invited_at: Option<DateTime<Utc>>,
    /// When it reached a final status.
    pub ended_at: Option<DateTime<Utc>>,
}

impl Snapshot {
    /// A session with no open call: the state an `INVITE` starts from.
    pub fn new(
        taxpayer_id: impl Into<String>,
        agent_id: Option<String>,
        session_active: bool,
    ) -> Snapshot {
        Snapshot {
            status: None,
            media: None,
            taxpayer_id: taxpayer_id.into(),
            agent_id,
            session_active,
            invited_at: None,
            ended_at: None,
        }
    }

    /// When an unanswered invitation expires (`None` before the invitation).
    pub fn answer_deadline(&self, policy: &Policy) -> Option<DateTime<Utc>> {
        self.invited_at.map(|at| at + policy.answer_timeout)
    }

    /// The status as the history and refusals name it (`—` before the invitation).
    fn status_name(&self) -> &str {
        self.status.as_ref().map_or("—", |s| s.as_ref())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, EnumDiscriminants)]
#[strum_discriminants(name(EventKind))]
#[strum_discriminants(derive(Hash, AsRefStr, EnumIter, EnumString))]
#[strum_discriminants(strum(serialize_all = "SCREAMING_SNAKE_CASE"))]
pub enum Event {
    Invite { media: Media },
    Accept,
    Decline,
    Cancel,
    Expire,
    End,
    SessionEnded,
}

impl Event {
    pub fn kind(&self) -> EventKind {
        EventKind::from(self)
    }

    /// The text kept in the history row: the media of an invitation.
    pub fn note(&self) -> Option<String> {
        match self {
            Event::Invite { media } => Some(media.as_ref().to_string()),
            _ => None,
        }
    }
}

impl EventKind {
    /// A well-formed event of this kind, used to ask `decide` whether the kind is allowed.
    fn sample(self) -> Event {
        match self {
            EventKind::Invite => Event::Invite {
                media: Media::Audio,
            },
            EventKind::Accept => Event::Accept,
            EventKind::Decline => Event::Decline,
            EventKind::Cancel => Event::Cancel,
            EventKind::Expire => Event::Expire,
            EventKind::End => Event::End,
            EventKind::SessionEnded => Event::SessionEnded,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The status the call moves to (also `next.status`).
    pub to: Status,
    pub next: Snapshot,
    pub effects: Vec<Effect>,
}

fn forbidden(kind: EventKind) -> Refusal {
    let (zh, en) = match kind {
        EventKind::Invite | EventKind::Cancel => (
            "只有本会话的坐席可以发起或撤回通话邀请",
            "only the agent of this chat may invite to or withdraw a call",
        ),
        EventKind::Accept | EventKind::Decline => (
            "只有本会话的纳税人可以同意或拒绝通话",
            "only the taxpayer of this chat may accept or decline a call",
        ),
        EventKind::End => (
            "只有会话双方可以结束通话",
            "only the participants of this chat may end a call",
        ),
        EventKind::Expire => (
            "通话邀请由系统判定过期",
            "only the system expires a call invitation",
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
        K::Invite | K::Cancel => party == P::Agent,
        K::Accept | K::Decline => party == P::Taxpayer,
        K::End => matches!(party, P::Taxpayer | P::Agent | P::System),
        K::Expire | K::SessionEnded => party == P::System,
    }
}

fn expired() -> Refusal {
    Refusal::new(
        RefusalCode::InvalidTransition,
        "通话邀请已过期",
        "the call invitation has expired",
    )
}

pub fn decide(
    policy: &Policy,
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
    // A row without its invitation time is treated as due: it must not stay INVITED forever.
    let due = state.answer_deadline(policy).is_none_or(|d| now >= d);
    let mut next = state.clone();
    let mut effects = Vec::new();
    use Status as S;
    let to = match (state.status, event) {
        (None, Event::Invite { .. }) if !state.session_active => return Err(session_not_active()),
        (None, Event::Invite { media }) => {
            next.media = Some(*media);
            next.invited_at = Some(now);
            effects.push(Effect::ScheduleExpiry {
                at: now + policy.answer_timeout,
            });
            S::Invited
        }
        (Some(S::Invited | S::Active), Event::Invite { .. }) => {
            return Err(Refusal::new(
                RefusalCode::InvalidTransition,
                "已有进行中的通话或邀请",
                "a call is already invited or active in this chat",
            ));
        }
        (Some(S::Invited), Event::Accept | Event::Decline) if due => return Err(expired()),
        (Some(S::Invited), Event::Accept) if !state.session_active => {
            return Err(session_not_active());
        }
        (Some(S::Invited), Event::Accept) => {
            effects.push(Effect::CancelExpiry);
            S::Active
        }
        (Some(S::Invited), Event::Decline) => {
            effects.push(Effect::CancelExpiry);
            S::Declined
        }
        (Some(S::Invited), Event::Cancel) => {
            effects.push(Effect::CancelExpiry);
            S::Cancelled
        }
        (Some(S::Invited), Event::Expire) if due => S::Expired,
        (Some(S::Active), Event::End | Event::SessionEnded) => S::Ended,
        // An invitation nobody answered is cancelled, not ended.
        (Some(S::Invited), Event::End) if party == Party::System => {
            effects.push(Effect::CancelExpiry);
            S::Cancelled
        }
        (Some(S::Invited), Event::SessionEnded) => {
            effects.push(Effect::CancelExpiry);
            S::Cancelled
        }
        _ => return Err(refuse()),
    };
    next.status = Some(to);
    if !to.is_open() {
        next.ended_at = Some(now);
    }
    effects.push(Effect::Publish(ChannelChange::Call {
        from: state.status,
        to,
    }));
    Ok(Decision { to, next, effects })
}

/// The events this actor may ask for now; drives `allowedActions`. The system's events are
/// never offered to a person.
pub fn allowed(
    policy: &Policy,
    state: &Snapshot,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Vec<EventKind> {
    EventKind::iter()
        .filter(|k| decide(policy, state, actor, &k.sample(), now).is_ok())
        .collect()
}

/// Whether `actor` may send a signal of `kind` now, and to whom: only between the session's
/// taxpayer and agent, only while ACTIVE (an invited, declined or expired call relays
/// nothing), and never [`SignalKind::Control`]. A stranger or another staff member is
/// `FORBIDDEN`, so is a control message; a signal outside ACTIVE is `INVALID_TRANSITION`.
pub fn signal(state: &Snapshot, actor: &Actor, kind: SignalKind) -> Result<Relay, Refusal> {
    super::signal(
        ChannelKind::Call,
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
#[path = "call_tests.rs"]
mod tests;
