//! The two sub-machines that live inside an ACTIVE chat session, each a pure module:
//! remote assistance (远程协助, [`assist`]) and audio/video calls (音视频, [`call`]).
//!
//! Both are persisted in `chat_channels` (kind `REMOTE_ASSIST` or `CALL`) with their history in
//! `chat_channel_history`. A service loads the session and the session's open channel of that
//! kind (or none: `Snapshot::new`), calls `decide`, and writes the next snapshot, a history row
//! and every [`Effect`] in one transaction.
//!
//! While a channel is ACTIVE its two participants — the session's taxpayer and the session's
//! agent — relay WebRTC signalling (offer / answer / ICE) through the API. Nobody else can, and
//! a control message (what a viewer would need to steer the sharer's screen) is never relayed:
//! in remote assistance the agent only ever watches.

pub mod assist;
pub mod call;
pub mod service;

use chrono::{DateTime, Utc};
use strum::{AsRefStr, EnumIter, EnumString};
use taxdesk_workflow::{Actor, Refusal, RefusalCode, Role};

/// Which sub-machine a `chat_channels` row follows; persisted in its `kind` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, AsRefStr, EnumString, EnumIter)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum ChannelKind {
    RemoteAssist,
    Call,
}

/// What a call carries; persisted in the `media` column of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, AsRefStr, EnumString, EnumIter)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum Media {
    Audio,
    Video,
}

/// A signalling message one participant asks the server to relay to the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, AsRefStr, EnumString, EnumIter)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum SignalKind {
    /// An SDP offer.
    Offer,
    /// An SDP answer.
    Answer,
    /// An ICE candidate.
    Ice,
    /// Remote control of the other side's screen (pointer, keys). Never relayed.
    Control,
}

impl SignalKind {
    /// Whether the server ever relays this kind: WebRTC negotiation only, never control.
    pub fn is_relayed(self) -> bool {
        match self {
            SignalKind::Offer | SignalKind::Answer | SignalKind::Ice => true,
            SignalKind::Control => false,
        }
    }
}

/// Where a permitted signal goes: the other participant of the channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relay {
    /// The user id of the participant who receives the signal.
    pub to: String,
}

/// A channel's status change, as the session's subscribers hear it (`ChatEvent` of kind
/// `REMOTE_ASSIST` or `CALL`). `from` is `None` when the channel was just opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelChange {
    RemoteAssist {
        from: Option<assist::Status>,
        to: assist::Status,
    },
    Call {
        from: Option<call::Status>,
        to: call::Status,
    },
}

impl ChannelChange {
    pub fn kind(&self) -> ChannelKind {
        match self {
            ChannelChange::RemoteAssist { .. } => ChannelKind::RemoteAssist,
            ChannelChange::Call { .. } => ChannelKind::Call,
        }
    }

    /// The new status as persisted (`ACTIVE`, `ENDED`, ...).
    pub fn to_status(&self) -> &str {
        match self {
            ChannelChange::RemoteAssist { to, .. } => to.as_ref(),
            ChannelChange::Call { to, .. } => to.as_ref(),
        }
    }
}

/// What a decision asks the service to do, written in the same transaction as the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Tell the session's subscribers (both participants) that the channel changed.
    Publish(ChannelChange),
    /// Schedule the call's expiry job ([`call::EXPIRE_JOB_KIND`]) to run at `at`.
    ScheduleExpiry { at: DateTime<Utc> },
    /// Cancel the call's pending expiry job: the invitation was answered or withdrawn.
    CancelExpiry,
}

/// How an actor stands to the session a channel lives in; rights go to relations, not ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Party {
    /// The session's taxpayer.
    Taxpayer,
    /// The session's agent.
    Agent,
    /// Staff or an admin who is not the session's agent.
    Bureau,
    System,
    /// A taxpayer who is not the session's.
    Stranger,
}

impl Party {
    fn of(taxpayer_id: &str, agent_id: Option<&str>, actor: &Actor) -> Party {
        match actor.role {
            Role::System => Party::System,
            Role::Taxpayer if actor.id == taxpayer_id => Party::Taxpayer,
            Role::Taxpayer => Party::Stranger,
            Role::Staff | Role::Admin if agent_id == Some(actor.id.as_str()) => Party::Agent,
            Role::Staff | Role::Admin => Party::Bureau,
        }
    }
}

/// The signalling rule shared by both machines: only between the two participants, only
/// while the channel is ACTIVE, and never a control message.
fn signal(
    what: ChannelKind,
    active: bool,
    taxpayer_id: &str,
    agent_id: Option<&str>,
    actor: &Actor,
    kind: SignalKind,
) -> Result<Relay, Refusal> {
    let to = match (Party::of(taxpayer_id, agent_id, actor), agent_id) {
        (Party::Taxpayer, Some(agent)) => agent.to_string(),
        (Party::Agent, _) => taxpayer_id.to_string(),
        _ => {
            return Err(Refusal::forbidden(
                "只有会话双方可以发送信令",
                "only the two participants of the session may signal",
            ));
        }
    };
    if !kind.is_relayed() {
        return Err(Refusal::forbidden(
            "不提供远程控制，坐席只能查看",
            "remote control is never relayed; the agent may only watch",
        ));
    }
    if !active {
        let (zh, en) = match what {
            ChannelKind::RemoteAssist => (
                "远程协助进行中才能发送信令",
                "signals are relayed only while the remote assistance is active",
            ),
            ChannelKind::Call => (
                "通话进行中才能发送信令",
                "signals are relayed only while the call is active",
            ),
        };
        return Err(Refusal::new(RefusalCode::InvalidTransition, zh, en));
    }
    Ok(Relay { to })
}

/// The refusal for an event asked while the chat session is not ACTIVE.
fn session_not_active() -> Refusal {
    Refusal::new(
        RefusalCode::InvalidTransition,
        "人工会话进行中才能执行此操作",
        "this is possible only while a human agent is in the chat",
    )
}
