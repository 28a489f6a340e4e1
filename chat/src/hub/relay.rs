//! Cross-instance realtime on PostgreSQL: every event published on one instance reaches the
//! subscribers of every instance sharing the database.
//!
//! Out: the hub and the notification feed hand each published event to one sender task,
//! which NOTIFYs it on [`CHANNEL`] in publish order, stamped with this instance's id (so the
//! instance ignores its own echo). A payload too big for NOTIFY (8000 bytes; e.g. a WebRTC
//! offer) is written to `realtime_payloads` and only its id is sent. A notification is sent
//! by id: receivers read the committed row.
//!
//! In: one listener per instance, on a connection of its own named `taxdesk-listen-<instance>`
//! (so an operator, or a test, can find it in `pg_stat_activity`), feeds remote events into
//! the local hub. A lost connection is re-established with back-off; since events may have
//! been missed meanwhile, the hub and the feed then signal a resync and subscribers catch up
//! from the database.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::Duration;
use sea_orm::sqlx::postgres::{PgListener, PgPoolOptions};
use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, Statement};
use serde::{Deserialize, Serialize};
use taxdesk_workflow::Workflow;
use taxdesk_workflow::entities::notification;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::{AgentEvent, ChatEvent, Hub, Outbound, QueueSnapshot};
use crate::chat::Chat;

/// The NOTIFY channel of realtime events.
pub const CHANNEL: &str = "taxdesk_events";

/// The `application_name` prefix of listener connections.
pub const APPLICATION_NAME: &str = "taxdesk-listen";

/// Payloads above this go by id (NOTIFY refuses 8000 bytes and more; leave room).
const INLINE_LIMIT: usize = 7000;

/// Stored payloads older than this are pruned: every listener has read them long before.
fn payload_ttl() -> Duration {
    Duration::minutes(10)
}

const FIRST_BACKOFF: StdDuration = StdDuration::from_millis(100);
const MAX_BACKOFF: StdDuration = StdDuration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error("listener: {0}")]
    Listener(#[from] sea_orm::sqlx::Error),
    #[error("payload: {0}")]
    Payload(#[from] serde_json::Error),
    #[error("stored payload {0} not found")]
    Missing(String),
}

/// One NOTIFY payload.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    /// The instance that published it.
    origin: String,
    #[serde(flatten)]
    body: Body,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "t", content = "e", rename_all = "snake_case")]
enum Body {
    Chat(Box<ChatEvent>),
    Agent(AgentEvent),
    /// A group's queue after a routing pass.
    Queue(QueueSnapshot),
    /// A committed notification, by id.
    Notification {
        id: String,
    },
    /// The whole envelope is the `realtime_payloads` row of this id.
    Stored {
        id: String,
    },
}

impl From<Outbound> for Body {
    fn from(e: Outbound) -> Body {
        match e {
            Outbound::Chat(e) => Body::Chat(Box::new(Arc::unwrap_or_clone(e))),
            Outbound::Agent(e) => Body::Agent(Arc::unwrap_or_clone(e)),
            Outbound::Queue(q) => Body::Queue(Arc::unwrap_or_clone(q)),
        }
    }
}

/// The running relay of one instance.
pub struct Relay {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Relay {
    /// PostgreSQL only (`None` on SQLite, which runs one instance). Returns once the
    /// listener is connected, or has failed to connect once (it keeps trying in the
    /// background), so events published after this are not missed.
    pub async fn start(chat: &Chat, instance: &str) -> Option<Relay> {
        let wf = chat.workflow().clone();
        if wf.db().get_database_backend() != DbBackend::Postgres {
            return None;
        }
        let (stop, stopped) = watch::channel(false);
        let (tx, events) = mpsc::unbounded_channel();
        let (ntx, notes) = mpsc::unbounded_channel();
        chat.hub().set_outlet(tx);
        wf.set_notification_outlet(ntx);
        let span = tracing::info_span!("relay", instance = %instance);
        let sender = Sender {
            wf: wf.clone(),
            origin: instance.to_string(),
        };
        let send_task = tokio::spawn(
            sender
                .run(events, notes, stopped.clone())
                .instrument(span.clone()),
        );
        let listener = Listener {
            wf,
            hub: chat.hub().clone(),
            instance: instance.to_string(),
        };
        let first = listener.connect().instrument(span.clone()).await;
        let listen_task = tokio::spawn(listener.run(first, stopped).instrument(span));
        Some(Relay {
            stop,
            tasks: vec![send_task, listen_task],
        })
    }

    /// Stops both tasks; events still queued are sent first.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }

    pub fn abort(self) {
        for t in self.tasks {
            t.abort();
        }
    }
}

/// The publishing side: one task, so NOTIFYs leave in publish order.
struct Sender {
    wf: Workflow,
    origin: String,
}

impl Sender {
    async fn run(
        self,
        mut events: mpsc::UnboundedReceiver<Outbound>,
        mut notes: mpsc::UnboundedReceiver<notification::Model>,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            let body = tokio::select! {
                biased;
                e = events.recv() => match e {
                    Some(e) => Body::from(e),
                    None => break,
                },
                n = notes.recv() => match n {
                    Some(n) => Body::Notification { id: n.id },
                    None => break,
                },
                _ = stop.changed() => {
                    // Flush what was published before the stop, then end.
                    while let Ok(e) = events.try_recv() {
                        self.send_logged(Body::from(e)).await;
                    }
                    break;
                }
            };
            self.send_logged(body).await;
        }
        tracing::info!("relay sender stopped");
    }

    async fn send_logged(&self, body: Body) {
        if let Err(e) = self.send(body).await {
            // Other instances miss this live event; what it announces is in the database.
            tracing::error!(error = %e, "relay: NOTIFY failed");
        }
    }

    async fn send(&self, body: Body) -> Result<(), RelayError> {
        let envelope = Envelope {
            origin: self.origin.clone(),
            body,
        };
        let mut payload = serde_json::to_string(&envelope)?;
        let db = self.wf.db();
        if payload.len() > INLINE_LIMIT {
            let id = uuid::Uuid::now_v7().to_string();
            let now = self.wf.now();
            db.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "INSERT INTO realtime_payloads (id, body, created_at) VALUES ($1, $2, $3)",
                [id.clone().into(), payload.into(), now.into()],
            ))
            .await?;
            // Pruned on write: only big payloads make rows, so this runs as rarely.
            db.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "DELETE FROM realtime_payloads WHERE created_at < $1",
                [(now - payload_ttl()).into()],
            ))
            .await?;
            tracing::debug!(payload.id = %id, "relay: payload stored");
            payload = serde_json::to_string(&Envelope {
                origin: self.origin.clone(),
                body: Body::Stored { id },
            })?;
        }
        db.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_notify($1, $2)",
            [CHANNEL.into(), payload.into()],
        ))
        .await?;
        Ok(())
    }
}

/// The receiving side.
struct Listener {
    wf: Workflow,
    hub: Hub,
    instance: String,
}

impl Listener {
    fn application_name(&self) -> String {
        format!("{APPLICATION_NAME}-{}", self.instance)
    }

    /// A listener on a connection of its own (not the shared pool's: it is held for good).
    async fn connect(&self) -> Result<PgListener, RelayError> {
        let options = (*self
            .wf
            .db()
            .get_postgres_connection_pool()
            .connect_options())
        .clone()
        .application_name(&self.application_name());
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_lazy_with(options);
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(CHANNEL).await?;
        tracing::info!(application_name = %self.application_name(), "relay: listening");
        Ok(listener)
    }

    async fn run(self, first: Result<PgListener, RelayError>, mut stop: watch::Receiver<bool>) {
        let mut connected = first;
        let mut backoff = FIRST_BACKOFF;
        loop {
            let mut listener = match connected {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "relay: listener not connected; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.changed() => return,
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    connected = self.connect().await;
                    if connected.is_ok() {
                        tracing::info!("relay: listener reconnected; subscribers resync");
                        self.resync();
                    }
                    continue;
                }
            };
            backoff = FIRST_BACKOFF;
            connected = loop {
                tokio::select! {
                    n = listener.try_recv() => match n {
                        Ok(Some(n)) => self.handle(n.payload()).await,
                        // sqlx re-established the connection (and its LISTEN) before saying so.
                        Ok(None) => {
                            tracing::warn!("relay: listener connection lost and re-established; subscribers resync");
                            self.resync();
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "relay: listener connection lost");
                            break Err(e.into());
                        }
                    },
                    _ = stop.changed() => {
                        tracing::info!("relay listener stopped");
                        return;
                    }
                }
            };
        }
    }

    fn resync(&self) {
        self.hub.resync();
        self.wf.resync_notifications();
    }

    async fn handle(&self, payload: &str) {
        if let Err(e) = self.deliver(payload).await {
            tracing::error!(error = %e, "relay: an event from another instance was dropped");
        }
    }

    async fn deliver(&self, payload: &str) -> Result<(), RelayError> {
        let mut envelope: Envelope = serde_json::from_str(payload)?;
        if envelope.origin == self.instance {
            return Ok(());
        }
        if let Body::Stored { id } = &envelope.body {
            let row = self
                .wf
                .db()
                .query_one_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT body FROM realtime_payloads WHERE id = $1",
                    [id.clone().into()],
                ))
                .await?
                .ok_or_else(|| RelayError::Missing(id.clone()))?;
            let body: String = row.try_get("", "body")?;
            envelope = serde_json::from_str(&body)?;
        }
        match envelope.body {
            Body::Chat(e) => self.hub.deliver(Arc::new(*e)),
            Body::Agent(e) => self.hub.deliver_agent(Arc::new(e)),
            Body::Queue(q) => self.hub.deliver_queue(&q),
            Body::Notification { id } => {
                if let Some(n) = notification::Entity::find_by_id(id)
                    .one(self.wf.db())
                    .await?
                {
                    self.wf.deliver_notification(n);
                }
            }
            // A stored payload holds an inline body; it never points at another.
            Body::Stored { id } => return Err(RelayError::Missing(id)),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::ChatEventKind;

    #[test]
    fn an_envelope_reads_back_as_written() {
        let e = Envelope {
            origin: "i1".into(),
            body: Body::Chat(Box::new(ChatEvent {
                session_id: "s1".into(),
                audience: vec!["tp1".into()],
                kind: ChatEventKind::Signal {
                    channel_id: "c1".into(),
                    from: "tp1".into(),
                    kind: "OFFER".into(),
                    payload: "v=0".into(),
                },
            })),
        };
        let json = serde_json::to_string(&e).expect("serializes");
        let back: Envelope = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back.origin, "i1");
        assert!(matches!(
            back.body,
            Body::Chat(e) if matches!(e.kind, ChatEventKind::Signal { .. })
        ));
        let stored: Envelope =
            serde_json::from_str(r#"{"origin":"i2","t":"stored","e":{"id":"p1"}}"#)
                .expect("deserializes");
        assert!(matches!(stored.body, Body::Stored { id } if id == "p1"));
    }
}
