//! The chat-session machine as one pure function.
//!
//! | from | event (actor) | to |
//! |---|---|---|
//! | BOT | ask (taxpayer) | BOT |
//! | BOT | request_human (taxpayer; in hours, an agent online) | QUEUED |
//! | QUEUED | assign (system router; an agent picking for themselves; an admin) | ACTIVE |
//! | QUEUED | leave (taxpayer) / queue_timeout (system) | ABANDONED |
//! | ACTIVE | transfer to an agent / to a group (the agent, an admin) | ACTIVE / QUEUED |
//! | ACTIVE | requeue (system: the agent went offline or left it unanswered) | QUEUED, at the front |
//! | BOT | end (taxpayer) / idle_timeout (system) | ENDED |
//! | ACTIVE | end (taxpayer or agent) / idle_timeout (system) | ENDED |
//! | ENDED | rate (taxpayer; once; only if a human took part) | ENDED |
//! | BOT | booking_starts (system: a booked appointment begins) | ACTIVE with its agent, or QUEUED at the front |

use chrono::{DateTime, Utc};
use strum::{AsRefStr, EnumDiscriminants, EnumIter, EnumString, IntoEnumIterator};
use taxdesk_workflow::{Actor, Refusal, RefusalCode, Role};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, AsRefStr, EnumString, EnumIter)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Bot,
    Queued,
    Active,
    Ended,
    Abandoned,
}

impl Status {
    /// Open sessions hold the taxpayer's one open slot.
    pub fn is_open(self) -> bool {
        matches!(self, Status::Bot | Status::Queued | Status::Active)
    }
}

/// Queue priority of a session that lost its agent: ahead of everyone who never had one.
pub const FRONT_OF_QUEUE: i32 = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub status: Status,
    pub taxpayer_id: String,
    pub agent_id: Option<String>,
    pub skill_group: String,
    pub had_agent: bool,
    pub rated: bool,
    pub queue_priority: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferTarget {
    Agent(String),
    Group(String),
}

#[derive(Debug, Clone, PartialEq, Eq, EnumDiscriminants)]
#[strum_discriminants(name(EventKind))]
#[strum_discriminants(derive(Hash, AsRefStr, EnumIter, EnumString))]
#[strum_discriminants(strum(serialize_all = "SCREAMING_SNAKE_CASE"))]
pub enum Event {
    Ask,
    /// The service observes the facts (hours, agents online) and records them here.
    RequestHuman {
        skill_group: String,
        open_now: bool,
        agent_online: bool,
    },
    Assign {
        agent_id: String,
        /// The agent is online, serves the group and is under `maxConcurrent`.
        available: bool,
    },
    Leave,
    QueueTimeout,
    Transfer {
        to: TransferTarget,
        /// For a transfer to an agent: that agent can take it.
        available: bool,
    },
    Requeue,
    End,
    IdleTimeout,
    Rate {
        resolved: bool,
        satisfaction: i32,
        comment: Option<String>,
    },
    /// A booked appointment begins in this session.
    BookingStarts {
        agent_id: Option<String>,
        /// The booking's agent can take it now.
        available: bool,
    },
}

impl Event {
    pub fn kind(&self) -> EventKind {
        EventKind::from(self)
    }
}

/// What the service must do besides writing the row and its history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// A line from the system in the transcript.
    SystemMessage(&'static str),
    /// Try to give queued sessions of the group to free agents.
    Route,
    /// Timers of a newly queued session: give up, and offer alternatives.
    ScheduleQueueTimers,
    /// Re-route if the newly assigned agent does not answer in time.
    ScheduleAnswerCheck,
    /// End remote assistance and calls of the session.
    EndChannels,
    /// Tell the agent (agentEvents) that the session is now theirs.
    TellAgent(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub next: Snapshot,
    pub effects: Vec<Effect>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relation {
    Owner,
    Agent,
    Admin,
    Staff,
    System,
    Stranger,
}

fn relation(s: &Snapshot, a: &Actor) -> Relation {
    match a.role {
        Role::System => Relation::System,
        Role::Taxpayer if a.id == s.taxpayer_id => Relation::Owner,
        Role::Taxpayer => Relation::Stranger,
        _ if s.agent_id.as_deref() == Some(a.id.as_str()) => Relation::Agent,
        Role::Admin => Relation::Admin,
        Role::Staff => Relation::Staff,
    }
}

fn may(rel: Relation, event: &Event, actor: &Actor) -> bool {
    use Relation as R;
    match event {
        Event::Ask | Event::RequestHuman { .. } | Event::Leave | Event::Rate { .. } => {
            rel == R::Owner
        }
        // Staff pick a session for themselves; admins may hand one to anyone.
        Event::Assign { agent_id, .. } => {
            rel == R::System
                || actor.role == Role::Admin
                || (actor.role == Role::Staff && *agent_id == actor.id)
        }
        Event::Transfer { .. } => rel == R::Agent || actor.role == Role::Admin,
        Event::End => matches!(rel, R::Owner | R::Agent),
        Event::QueueTimeout | Event::Requeue | Event::IdleTimeout | Event::BookingStarts { .. } => {
            rel == R::System
        }
    }
}

fn forbidden(kind: EventKind) -> Refusal {
    Refusal::forbidden(
        format!("无权对该会话执行此操作（{}）", kind.as_ref()),
        format!("you may not {} this chat session", kind.as_ref()),
    )
}

pub fn decide(
    s: &Snapshot,
    actor: &Actor,
    event: &Event,
    _now: DateTime<Utc>,
) -> Result<Decision, Refusal> {
    let kind = event.kind();
    if !may(relation(s, actor), event, actor) {
        return Err(forbidden(kind));
    }
    let refuse = || Refusal::invalid_transition(s.status.as_ref(), kind.as_ref());
    let mut next = s.clone();
    let mut effects = Vec::new();
    use Status as S;
    match (s.status, event) {
        (S::Bot, Event::Ask) => {}
        (
            S::Bot,
            Event::RequestHuman {
                skill_group,
                open_now,
                agent_online,
            },
        ) => {
            if !open_now {
                return Err(Refusal::new(
                    RefusalCode::OffHours,
                    "当前不在人工服务时间，您可以在线留言或预约服务",
                    "human agents are not available now; leave a message or book an appointment",
                ));
            }
            if !agent_online {
                return Err(Refusal::new(
                    RefusalCode::NoAgent,
                    "暂无在线的人工客服，您可以在线留言或预约服务",
                    "no agent is online; leave a message or book an appointment",
                ));
            }
            next.status = S::Queued;
            next.skill_group = skill_group.clone();
            effects.push(Effect::SystemMessage("正在为您转接人工客服，请稍候。"));
            effects.push(Effect::ScheduleQueueTimers);
            effects.push(Effect::Route);
        }
        (
            S::Queued,
            Event::Assign {
                agent_id,
                available,
            },
        ) => {
            if !available {
                return Err(Refusal::new(
                    RefusalCode::InvalidTransition,
                    "该客服当前不能接入更多会话",
                    "that agent cannot take another chat now",
                ));
            }
            next.status = S::Active;
            next.agent_id = Some(agent_id.clone());
            next.had_agent = true;
            next.queue_priority = 0;
            effects.push(Effect::SystemMessage(
                "人工客服已接入，请问有什么可以帮您？",
            ));
            effects.push(Effect::ScheduleAnswerCheck);
            effects.push(Effect::TellAgent(agent_id.clone()));
        }
        (S::Queued, Event::Leave | Event::QueueTimeout) => {
            next.status = S::Abandoned;
            if kind == EventKind::QueueTimeout {
                effects.push(Effect::SystemMessage(
                    "排队等待超时，您可以在线留言或预约服务。",
                ));
            }
            effects.push(Effect::Route);
        }
        (S::Active, Event::Transfer { to, available }) => match to {
            TransferTarget::Agent(a) => {
                if !available || s.agent_id.as_deref() == Some(a.as_str()) {
                    return Err(Refusal::new(
                        RefusalCode::InvalidTransition,
                        "该客服当前不能接入此会话",
                        "that agent cannot take this chat now",
                    ));
                }
                next.agent_id = Some(a.clone());
                effects.push(Effect::SystemMessage("会话已转接给其他客服。"));
                effects.push(Effect::ScheduleAnswerCheck);
                effects.push(Effect::TellAgent(a.clone()));
            }
            TransferTarget::Group(g) => {
                next.status = S::Queued;
                next.agent_id = None;
                next.skill_group = g.clone();
                next.queue_priority = FRONT_OF_QUEUE;
                effects.push(Effect::SystemMessage("会话已转接，正在为您安排其他客服。"));
                effects.push(Effect::EndChannels);
                effects.push(Effect::Route);
            }
        },
        (S::Active, Event::Requeue) => {
            next.status = S::Queued;
            next.agent_id = None;
            next.queue_priority = FRONT_OF_QUEUE;
            effects.push(Effect::SystemMessage(
                "客服暂时离开，正在为您优先安排其他客服。",
            ));
            effects.push(Effect::EndChannels);
            effects.push(Effect::Route);
        }
        (S::Bot | S::Active, Event::End | Event::IdleTimeout) => {
            next.status = S::Ended;
            if kind == EventKind::IdleTimeout {
                effects.push(Effect::SystemMessage(
                    "由于长时间没有消息，会话已结束。感谢您的咨询，再见！",
                ));
            } else {
                effects.push(Effect::SystemMessage("会话已结束，感谢您的咨询。"));
            }
            if s.status == S::Active {
                effects.push(Effect::EndChannels);
                effects.push(Effect::Route);
            }
        }
        (
            S::Bot,
            Event::BookingStarts {
                agent_id,
                available,
            },
        ) => match agent_id {
            Some(a) if *available => {
                next.status = S::Active;
                next.agent_id = Some(a.clone());
                next.had_agent = true;
                effects.push(Effect::SystemMessage("您预约的服务已开始，客服已接入。"));
                effects.push(Effect::ScheduleAnswerCheck);
                effects.push(Effect::TellAgent(a.clone()));
            }
            _ => {
                next.status = S::Queued;
                next.queue_priority = FRONT_OF_QUEUE;
                effects.push(Effect::SystemMessage(
                    "您预约的服务已开始，正在为您优先安排客服。",
                ));
                effects.push(Effect::ScheduleQueueTimers);
                effects.push(Effect::Route);
            }
        },
        (S::Ended, Event::Rate { satisfaction, .. }) => {
            if !s.had_agent {
                return Err(Refusal::new(
                    RefusalCode::InvalidTransition,
                    "只有人工服务的会话可以评价",
                    "only chats with a human agent can be rated",
                ));
            }
            if s.rated {
                return Err(Refusal::new(
                    RefusalCode::AlreadyRated,
                    "该会话已评价，不能重复评价",
                    "this chat has already been rated",
                ));
            }
            if !(1..=5).contains(satisfaction) {
                return Err(Refusal::new(
                    RefusalCode::InvalidInput,
                    "满意度须为 1 到 5",
                    "satisfaction must be between 1 and 5",
                ));
            }
            next.rated = true;
        }
        _ => return Err(refuse()),
    }
    Ok(Decision { next, effects })
}

impl EventKind {
    /// A well-formed event of this kind, for `allowed`; facts are assumed favourable, so
    /// `REQUEST_HUMAN` is offered and its refusal (off hours, no agent) explains itself.
    fn sample(self, s: &Snapshot, actor: &Actor) -> Event {
        match self {
            EventKind::Ask => Event::Ask,
            EventKind::RequestHuman => Event::RequestHuman {
                skill_group: s.skill_group.clone(),
                open_now: true,
                agent_online: true,
            },
            EventKind::Assign => Event::Assign {
                agent_id: actor.id.clone(),
                available: true,
            },
            EventKind::Leave => Event::Leave,
            EventKind::QueueTimeout => Event::QueueTimeout,
            EventKind::Transfer => Event::Transfer {
                to: TransferTarget::Group(s.skill_group.clone()),
                available: true,
            },
            EventKind::Requeue => Event::Requeue,
            EventKind::End => Event::End,
            EventKind::IdleTimeout => Event::IdleTimeout,
            EventKind::Rate => Event::Rate {
                resolved: true,
                satisfaction: 5,
                comment: None,
            },
            EventKind::BookingStarts => Event::BookingStarts {
                agent_id: None,
                available: false,
            },
        }
    }
}

/// What this actor may do now (system events are never offered to people).
pub fn allowed(s: &Snapshot, actor: &Actor, now: DateTime<Utc>) -> Vec<EventKind> {
    if actor.role == Role::System {
        return vec![];
    }
    EventKind::iter()
        .filter(|k| decide(s, actor, &k.sample(s, actor), now).is_ok())
        .collect()
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
