//! The realtime hub of one process: every chat event and agent event goes through here to
//! the subscriptions. Events name their audience, so a subscriber only ever sees events of
//! sessions it takes part in.

use tokio::sync::broadcast;

use crate::entities::{channel, message};

#[derive(Debug, Clone)]
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

#[derive(Debug, Clone)]
pub struct ChatEvent {
    pub session_id: String,
    /// User ids that may receive it.
    pub audience: Vec<String>,
    pub kind: ChatEventKind,
}

#[derive(Debug, Clone)]
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

#[derive(Debug, Clone)]
pub struct AgentEvent {
    /// `None`: every agent.
    pub agent_id: Option<String>,
    pub kind: AgentEventKind,
}

#[derive(Clone)]
pub struct Hub {
    chat: broadcast::Sender<ChatEvent>,
    agents: broadcast::Sender<AgentEvent>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub::new()
    }
}

impl Hub {
    pub fn new() -> Hub {
        Hub {
            chat: broadcast::channel(4096).0,
            agents: broadcast::channel(1024).0,
        }
    }

    pub fn publish(&self, e: ChatEvent) {
        // Nobody listening is fine: everything is also in the database.
        let _ = self.chat.send(e);
    }

    pub fn publish_agent(&self, e: AgentEvent) {
        let _ = self.agents.send(e);
    }

    pub fn chat_events(&self) -> broadcast::Receiver<ChatEvent> {
        self.chat.subscribe()
    }

    pub fn agent_events(&self) -> broadcast::Receiver<AgentEvent> {
        self.agents.subscribe()
    }
}
