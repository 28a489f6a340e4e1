//! The realtime hub of one process: every chat event and agent event goes through here to
//! the subscriptions. Events name their audience, so a subscriber only ever sees events of
//! sessions it takes part in.
//!
//! Delivery is keyed: a chat event goes only to the subscribers of its session, an agent
//! event only to its agent (or, for queue lengths, to every agent), so one event costs
//! O(its audience). On PostgreSQL the [`relay`] also carries every published event to the
//! other instances and feeds theirs in here ([`Hub::deliver`]); when it may have missed some
//! (its connection was lost) it bumps [`Hub::resyncs`], and subscribers catch up from the
//! database ([`catch_up`], [`order`]).

pub mod catch_up;
pub mod order;
pub mod relay;

use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use taxdesk_workflow::fanout::{Fanout, RecvError, Subscription};
use tokio::sync::{broadcast, mpsc, watch};

use crate::entities::{channel, message};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChatEventKind {
    Message(message::Model),
    /// The session changed (status, agent, rating); read it again.
    Status,
    QueuePosition {
        position: i64,
        estimated_wait_seconds: i64,
    },
    Typing {
        user_id: String,
    },
    /// Someone read up to `seq`.
    Read {
        user_id: String,
        seq: i64,
    },
    Signal {
        channel_id: String,
        from: String,
        kind: String,
        payload: String,
    },
    RemoteAssist(channel::Model),
    Call(channel::Model),
    /// The queue wait is long: keep waiting, leave a message (question carried over), or book.
    QueueOffer {
        question: Option<String>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatEvent {
    pub session_id: String,
    /// User ids that may receive it.
    pub audience: Vec<String>,
    pub kind: ChatEventKind,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AgentEventKind {
    /// A session was given to this agent.
    Assigned {
        session_id: String,
    },
    /// A session of this agent left them (ended, transferred, re-queued).
    Released {
        session_id: String,
    },
    QueueLength {
        skill_group: String,
        length: i64,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentEvent {
    /// `None`: every agent.
    pub agent_id: Option<String>,
    pub kind: AgentEventKind,
}

/// A group's queue in serving order: each waiting taxpayer's place is their index + 1. One
/// value per routing pass instead of one event per waiting session, so a queue of thousands
/// crosses to the other instances as one message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueueSnapshot {
    pub skill_group: String,
    /// (session id, taxpayer id), first in line first.
    pub waiting: Vec<(String, String)>,
    /// Expected seconds per place ahead (from the group's recent waits).
    pub wait_per_place: i64,
}

/// What this instance published, on its way to the other instances.
#[derive(Debug, Clone)]
pub enum Outbound {
    Chat(Arc<ChatEvent>),
    Agent(Arc<AgentEvent>),
    Queue(Arc<QueueSnapshot>),
}

/// Events a slow subscriber may fall behind by before it lags (and catches up from the
/// database). Per session, so generous.
const PER_KEY_CAPACITY: usize = 256;

#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    sessions: Fanout<Arc<ChatEvent>>,
    agents: Fanout<Arc<AgentEvent>>,
    /// Agent events for every agent (queue lengths).
    all_agents: broadcast::Sender<Arc<AgentEvent>>,
    resync: watch::Sender<u64>,
    outlet: OnceLock<mpsc::UnboundedSender<Outbound>>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub::new()
    }
}

impl Hub {
    pub fn new() -> Hub {
        Hub {
            inner: Arc::new(Inner {
                sessions: Fanout::new(PER_KEY_CAPACITY),
                agents: Fanout::new(PER_KEY_CAPACITY),
                all_agents: broadcast::channel(1024).0,
                resync: watch::channel(0).0,
                outlet: OnceLock::new(),
            }),
        }
    }

    /// An event that happened here: to this instance's subscribers and, through the relay,
    /// to the other instances'.
    pub fn publish(&self, e: ChatEvent) {
        let e = Arc::new(e);
        if let Some(outlet) = self.inner.outlet.get() {
            // A stopped relay loses nothing stored: messages and states are in the database.
            let _ = outlet.send(Outbound::Chat(e.clone()));
        }
        self.deliver(e);
    }

    pub fn publish_agent(&self, e: AgentEvent) {
        let e = Arc::new(e);
        if let Some(outlet) = self.inner.outlet.get() {
            let _ = outlet.send(Outbound::Agent(e.clone()));
        }
        self.deliver_agent(e);
    }

    /// Every waiting taxpayer of the group their place, and every agent the queue's length.
    pub fn publish_queue(&self, q: QueueSnapshot) {
        let q = Arc::new(q);
        if let Some(outlet) = self.inner.outlet.get() {
            let _ = outlet.send(Outbound::Queue(q.clone()));
        }
        self.deliver_queue(&q);
    }

    /// A queue snapshot to this instance's subscribers: a `QueuePosition` to each waiting
    /// session (only sessions with a subscriber here cost more than a map lookup).
    pub fn deliver_queue(&self, q: &QueueSnapshot) {
        for (i, (session_id, taxpayer_id)) in q.waiting.iter().enumerate() {
            let position = i as i64 + 1;
            self.deliver(Arc::new(ChatEvent {
                session_id: session_id.clone(),
                audience: vec![taxpayer_id.clone()],
                kind: ChatEventKind::QueuePosition {
                    position,
                    estimated_wait_seconds: position * q.wait_per_place,
                },
            }));
        }
        self.deliver_agent(Arc::new(AgentEvent {
            agent_id: None,
            kind: AgentEventKind::QueueLength {
                skill_group: q.skill_group.clone(),
                length: q.waiting.len() as i64,
            },
        }));
    }

    /// To this instance's subscribers only (an event from another instance).
    pub fn deliver(&self, e: Arc<ChatEvent>) {
        // Nobody listening is fine: everything is also in the database.
        let key = e.session_id.clone();
        self.inner.sessions.send(&key, e);
    }

    pub fn deliver_agent(&self, e: Arc<AgentEvent>) {
        match e.agent_id.clone() {
            Some(agent) => {
                self.inner.agents.send(&agent, e);
            }
            None => {
                let _ = self.inner.all_agents.send(e);
            }
        }
    }

    /// The events of one session (each subscriber still checks it is in the audience).
    pub fn session_events(&self, session_id: &str) -> Subscription<Arc<ChatEvent>> {
        self.inner.sessions.subscribe(session_id)
    }

    /// The events for one agent, and those for every agent.
    pub fn agent_events(&self, agent_id: &str) -> AgentFeed {
        AgentFeed {
            own: self.inner.agents.subscribe(agent_id),
            all: self.inner.all_agents.subscribe(),
        }
    }

    /// Changes whenever events from other instances may have been lost.
    pub fn resyncs(&self) -> watch::Receiver<u64> {
        self.inner.resync.subscribe()
    }

    /// Tells every subscriber to catch up from the database.
    pub fn resync(&self) {
        self.inner.resync.send_modify(|n| *n += 1);
    }

    /// Hands every published event to `outlet` too. Only the first outlet is kept; returns
    /// whether this one was.
    pub fn set_outlet(&self, outlet: mpsc::UnboundedSender<Outbound>) -> bool {
        self.inner.outlet.set(outlet).is_ok()
    }

    /// Tells this hub (so this server) apart from others in the same process.
    pub fn instance_key(&self) -> usize {
        Arc::as_ptr(&self.inner) as usize
    }

    /// Sessions with at least one subscriber on this instance.
    pub fn subscribed_sessions(&self) -> usize {
        self.inner.sessions.keys()
    }
}

/// An agent's subscription: their own events and those for every agent.
pub struct AgentFeed {
    own: Subscription<Arc<AgentEvent>>,
    all: broadcast::Receiver<Arc<AgentEvent>>,
}

impl AgentFeed {
    pub async fn recv(&mut self) -> Result<Arc<AgentEvent>, RecvError> {
        tokio::select! {
            e = self.own.recv() => e,
            e = self.all.recv() => e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(session: &str) -> ChatEvent {
        ChatEvent {
            session_id: session.into(),
            audience: vec!["tp1".into()],
            kind: ChatEventKind::Status,
        }
    }

    #[tokio::test]
    async fn a_session_event_reaches_only_that_sessions_subscribers() {
        let hub = Hub::new();
        let mut a = hub.session_events("s1");
        let mut b = hub.session_events("s2");
        hub.publish(status("s1"));
        assert_eq!(
            a.recv().await.map(|e| e.session_id.clone()),
            Ok("s1".into())
        );
        let other = tokio::time::timeout(std::time::Duration::from_millis(50), b.recv()).await;
        assert!(other.is_err(), "s2's subscriber hears nothing of s1");
        drop(a);
        drop(b);
        assert_eq!(hub.subscribed_sessions(), 0);
    }

    #[tokio::test]
    async fn agents_get_their_own_events_and_those_for_everyone() {
        let hub = Hub::new();
        let mut s1 = hub.agent_events("s1");
        let mut s2 = hub.agent_events("s2");
        hub.publish_agent(AgentEvent {
            agent_id: Some("s1".into()),
            kind: AgentEventKind::Assigned {
                session_id: "x".into(),
            },
        });
        hub.publish_agent(AgentEvent {
            agent_id: None,
            kind: AgentEventKind::QueueLength {
                skill_group: "其他".into(),
                length: 2,
            },
        });
        // Two channels: their events may interleave either way.
        let mut kinds = vec![];
        for _ in 0..2 {
            match s1.recv().await.map(|e| e.kind.clone()) {
                Ok(AgentEventKind::Assigned { .. }) => kinds.push("assigned"),
                Ok(AgentEventKind::QueueLength { .. }) => kinds.push("queue"),
                other => panic!("unexpected {other:?}"),
            }
        }
        kinds.sort();
        assert_eq!(kinds, ["assigned", "queue"]);
        assert!(matches!(
            s2.recv().await.map(|e| e.kind.clone()),
            Ok(AgentEventKind::QueueLength { .. })
        ));
    }

    #[test]
    fn events_survive_the_wire() {
        let e = ChatEvent {
            session_id: "s1".into(),
            audience: vec!["tp1".into(), "a1".into()],
            kind: ChatEventKind::QueuePosition {
                position: 2,
                estimated_wait_seconds: 120,
            },
        };
        let json = serde_json::to_string(&e).expect("serializes");
        let back: ChatEvent = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back.session_id, "s1");
        assert!(matches!(
            back.kind,
            ChatEventKind::QueuePosition {
                position: 2,
                estimated_wait_seconds: 120
            }
        ));
    }
}
