//! Wiring: configuration → database → services → schema → HTTP server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::serve::ListenerExt;
use taxdesk_chat::bot::BotProfile;
use taxdesk_chat::hub::relay::Relay;
use taxdesk_chat::kb::embed::ModelSettings;
use taxdesk_chat::session::Routing;
use taxdesk_chat::{Chat, ChatConfig};
use taxdesk_graphql::{Limits, RateLimiter, build_schema};
use taxdesk_scheduler::{MailConfig, Scheduler, SchedulerConfig, Stopper};
use taxdesk_workflow::booking::service::BookingPolicy;
use taxdesk_workflow::calendar::Calendar;
use taxdesk_workflow::{Workflow, WorkflowConfig, work_order::Policy};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::auth::Keys;
use crate::config::Config;
use crate::db;
use crate::http::{self, AppState};

/// How often an instance looks for FAQ changes made elsewhere.
const KB_FOLLOW_EVERY: Duration = Duration::from_secs(2);

fn chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

pub fn workflow_config(c: &Config) -> anyhow::Result<WorkflowConfig> {
    let defaults = WorkflowConfig::default();
    let calendar = Calendar::from_setting(c.calendar.as_deref()).context("TAXDESK_CALENDAR")?;
    Ok(WorkflowConfig {
        work_orders: Policy {
            urge_cooldown: chrono(c.urge_cooldown),
            escalate_after_urges: c.escalate_after_urges,
            rating_window: chrono(c.rating_window),
        },
        categories: c.categories.clone().unwrap_or(defaults.categories),
        deadlines: c
            .deadlines
            .iter()
            .map(|(k, v)| (k.clone(), chrono(*v)))
            .collect(),
        default_deadline: chrono(c.default_deadline),
        calendar,
        service_types: defaults.service_types,
        booking: BookingPolicy {
            reminders: c.booking_reminders.iter().map(|d| chrono(*d)).collect(),
            cancel_cutoff: chrono(c.cancel_cutoff),
            no_show_grace: chrono(c.no_show_grace),
        },
        follow_role_changes: c.follow_role_changes,
    })
}

pub fn chat_config(c: &Config) -> ChatConfig {
    ChatConfig {
        queue_timeout: chrono(c.queue_timeout),
        queue_offer_after: chrono(c.queue_offer_after),
        answer_timeout: chrono(c.answer_timeout),
        idle_timeout: chrono(c.idle_timeout),
        default_max_concurrent: c.max_concurrent,
        bot: BotProfile {
            name: c.bot_name.clone(),
            greeting: c.bot_greeting.clone(),
            avatar_url: c.bot_avatar_url.clone(),
        },
        ..ChatConfig::default()
    }
}

pub fn scheduler_config(c: &Config) -> SchedulerConfig {
    let mut s = SchedulerConfig::new(MailConfig {
        smtp_url: c.smtp_url.clone(),
        outbox_dir: c.data_dir.join("outbox"),
        from: c.mail_from.clone(),
    });
    s.lease = chrono(c.job_lease);
    s.cron = c.cron.clone();
    s
}

pub fn model_settings(c: &Config) -> ModelSettings {
    ModelSettings {
        model: c.kb_model.clone(),
        source: c.kb_model_source.clone(),
        vectors: c.kb_vectors.clone(),
        ca_bundle: c.kb_model_ca.clone(),
    }
}

pub fn limits(c: &Config) -> Limits {
    Limits {
        depth: c.max_depth,
        complexity: c.max_complexity,
        introspection: c.introspection,
        query_bytes: c.max_query_bytes,
        tokens: c.max_tokens,
        selections: c.max_fields,
        aliases: c.max_aliases,
        mutations: c.max_mutations,
        list_items: c.max_list_items,
        string_chars: c.max_string_chars,
        ..Limits::default()
    }
}

/// A server that is accepting connections.
pub struct Running {
    pub addr: SocketAddr,
    pub workflow: Workflow,
    /// This instance among those sharing the database (its realtime events carry it; its
    /// listener connection is `taxdesk-listen-<instance_id>`).
    pub instance_id: String,
    shutdown: Option<oneshot::Sender<()>>,
    join: JoinHandle<std::io::Result<()>>,
    scheduler: Option<Stopper>,
    relay: Option<Relay>,
    routing: Routing,
}

impl Running {
    /// Stops accepting, lets requests in flight finish (WebSockets get `grace` to close).
    pub async fn stop(mut self, grace: Duration) {
        if let Some(s) = self.scheduler.take() {
            s.stop().await;
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match tokio::time::timeout(grace, &mut self.join).await {
            Ok(_) => tracing::info!("server stopped"),
            Err(_) => {
                tracing::warn!("connections still open after {grace:?}; closing them");
                self.join.abort();
            }
        }
        self.routing.stop();
        // Last: events published by requests that finished above still go out.
        if let Some(r) = self.relay.take() {
            r.stop().await;
        }
    }

    /// Stops everything at once, without waiting for anything in flight.
    pub fn abort(mut self) {
        if let Some(s) = self.scheduler.take() {
            s.abort();
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.join.abort();
        self.routing.stop();
        if let Some(r) = self.relay.take() {
            r.abort();
        }
    }

    /// Runs until the server ends by itself (it does not, short of an error).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.join.await.context("server task")?.context("server")
    }
}

pub async fn start(config: Config) -> anyhow::Result<Running> {
    taxdesk_workflow::metrics::describe_defaults();
    let conn = db::connect(&config.database_url).await?;
    db::migrate(&conn).await?;
    let reader = db::connect_reader(&config.database_url, &conn).await?;
    let workflow = Workflow::new(conn, workflow_config(&config)?).with_reader(reader);
    let chat = Chat::new(workflow.clone(), chat_config(&config))
        .context("building the knowledge index")?;
    chat.load_knowledge_base()
        .await
        .context("loading the knowledge base")?;
    let instance_id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    // Before the server accepts anyone: events cross instances from the first request on.
    let relay = Relay::start(&chat, &instance_id).await;
    // FAQs saved by another instance or by `taxdesk kb import` become answerable here too.
    chat.follow_knowledge_base(KB_FOLLOW_EVERY);
    // Lexical answers from now on; the semantic layer joins when its model and vectors are.
    chat.start_semantic_search(model_settings(&config));
    // Each skill group's router serves its queue (sessions left queued included).
    let routing = chat.start_routing();
    let scheduler = if config.scheduler {
        let mut s = Scheduler::new(workflow.clone(), scheduler_config(&config))?;
        s.with_chat(chat.clone());
        Some(s.start())
    } else {
        tracing::info!("scheduler off on this instance (TAXDESK_SCHEDULER=off)");
        None
    };
    let limits = limits(&config);
    let limiter = RateLimiter::new(config.rate_limit.clone());
    let keys = Keys::from_config(&config)?;
    let links = crate::auth::download_links(&config)?;
    let schema = build_schema(
        workflow.clone(),
        chat.clone(),
        &limits,
        limiter.clone(),
        links.clone(),
    );
    let security =
        http::SecurityHeaders::new(&config.frame_ancestors, config.bot_avatar_url.as_deref())?;
    let state = AppState {
        schema,
        keys: Arc::new(keys),
        workflow: workflow.clone(),
        body_limit: config.body_limit,
        attachments: taxdesk_chat::attachment::Settings {
            data_dir: config.data_dir.clone(),
            limit: config.attachment_limit,
        },
        security: Arc::new(security),
        links,
        metrics_token: config.metrics_token.as_deref().map(Arc::from),
        chat: chat.clone(),
        uploads: http::UploadGate::new(config.uploads, config.uploads_per_user),
        limits: Arc::new(limits),
        limiter,
    };
    let listener = TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("binding {}", config.bind))?;
    let addr = listener.local_addr()?;
    // Without NODELAY, two small frames back to back can wait ~40 ms for a delayed ACK.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let (tx, rx) = oneshot::channel::<()>();
    let app = http::router(state);
    let join = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = rx.await;
        })
        .await
    });
    tracing::info!(%addr, instance = %instance_id, database = if config.is_embedded() { "sqlite" } else { "postgres" }, graphiql = config.introspection, "taxdesk listening; GraphiQL at /graphql when introspection is on");
    Ok(Running {
        addr,
        workflow,
        instance_id,
        shutdown: Some(tx),
        join,
        scheduler,
        relay,
        routing,
    })
}
