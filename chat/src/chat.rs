//! The handle of the chat services: the workflow (database, clock, calendar), the hub, the
//! bot and the timings.

use std::sync::Arc;

use chrono::Duration;
use taxdesk_workflow::Workflow;

use crate::bot::{Bot, BotProfile, GreetingBot};
use crate::hub::Hub;
use crate::kb::embed::{ModelSettings, SemanticIndex, SemanticStatus};
use crate::kb::{KbError, KnowledgeIndex};
use crate::session::router::Router;

#[derive(Debug, Clone)]
pub struct ChatConfig {
    /// A queued taxpayer is given up on after this long (ABANDONED).
    pub queue_timeout: Duration,
    /// After this long in the queue the taxpayer is offered to leave a message or book.
    pub queue_offer_after: Duration,
    /// An agent who has not answered a new chat after this long loses it to the queue.
    pub answer_timeout: Duration,
    /// A session without messages for this long is closed with a farewell.
    pub idle_timeout: Duration,
    /// `maxConcurrent` of an agent who did not set one.
    pub default_max_concurrent: i32,
    /// The largest signalling payload relayed (bytes).
    pub signal_limit: usize,
    /// An unanswered call invitation expires after this long.
    pub call_answer_timeout: Duration,
    /// The virtual agent's name, greeting and avatar.
    pub bot: BotProfile,
}

impl Default for ChatConfig {
    fn default() -> Self {
        ChatConfig {
            queue_timeout: Duration::minutes(30),
            queue_offer_after: Duration::minutes(3),
            answer_timeout: Duration::minutes(2),
            idle_timeout: Duration::minutes(15),
            default_max_concurrent: 3,
            signal_limit: 64 * 1024,
            call_answer_timeout: crate::channel::call::DEFAULT_ANSWER_TIMEOUT,
            bot: BotProfile::default(),
        }
    }
}

#[derive(Clone)]
pub struct Chat {
    pub(crate) wf: Workflow,
    pub(crate) hub: Hub,
    pub(crate) bot: Arc<dyn Bot>,
    pub(crate) config: Arc<ChatConfig>,
    /// The knowledge base's search index, kept in step with the `faqs` table.
    pub(crate) kb: Arc<KnowledgeIndex>,
    /// FAQ id → the version the index holds: what [`Chat::follow_knowledge_base`] need not
    /// index again.
    pub(crate) kb_versions: Arc<std::sync::Mutex<std::collections::HashMap<String, i32>>>,
    /// The semantic layer beside `kb`: fed the same FAQ changes, off without a model.
    pub(crate) semantic: SemanticIndex,
    /// The routers of the skill groups (running once [`Chat::start_routing`] is called).
    pub(crate) router: Arc<Router>,
}

impl Chat {
    /// An empty index is filled by [`Chat::load_knowledge_base`] at start.
    pub fn new(wf: Workflow, config: ChatConfig) -> Result<Chat, KbError> {
        Ok(Chat {
            wf,
            hub: Hub::new(),
            bot: Arc::new(GreetingBot),
            config: Arc::new(config),
            kb: Arc::new(KnowledgeIndex::build(&[])?),
            kb_versions: Arc::default(),
            semantic: SemanticIndex::new(),
            router: Arc::default(),
        })
    }

    pub fn knowledge_index(&self) -> &KnowledgeIndex {
        &self.kb
    }

    /// The semantic layer of the knowledge base (for the fusion with the lexical ranking).
    pub fn semantic_index(&self) -> &SemanticIndex {
        &self.semantic
    }

    /// Cheap: whether questions are matched by meaning too right now (`/healthz`,
    /// `botProfile.semanticSearch`).
    pub fn semantic_search_available(&self) -> bool {
        self.semantic.available()
    }

    /// off | loading | on.
    pub fn semantic_search(&self) -> SemanticStatus {
        self.semantic.status()
    }

    /// Finds or fetches the embedding model in the background and turns the semantic layer
    /// on when the FAQs have their vectors; the server answers lexically meanwhile.
    pub fn start_semantic_search(&self, settings: ModelSettings) -> tokio::task::JoinHandle<()> {
        self.semantic.start(settings)
    }

    /// Plugs in another virtual agent.
    pub fn with_bot(mut self, bot: Arc<dyn Bot>) -> Chat {
        self.bot = bot;
        self
    }

    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    pub fn workflow(&self) -> &Workflow {
        &self.wf
    }

    pub fn config(&self) -> &ChatConfig {
        &self.config
    }

    pub fn bot_profile(&self) -> &BotProfile {
        &self.config.bot
    }
}

/// Job kinds of chat timers (run by the scheduler through [`Chat::run_timer`]).
pub mod timer {
    pub const QUEUE_TIMEOUT: &str = "chat.queue_timeout";
    pub const QUEUE_OFFER: &str = "chat.queue_offer";
    pub const ANSWER_CHECK: &str = "chat.answer_check";
    pub const IDLE_CHECK: &str = "chat.idle_check";
    pub const ALL: [&str; 4] = [QUEUE_TIMEOUT, QUEUE_OFFER, ANSWER_CHECK, IDLE_CHECK];
}
