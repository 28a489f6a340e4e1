//! GraphQL subscriptions over WebSocket (graphql-transport-ws). Authentication happens at
//! `connection_init`; the close codes follow the protocol: 4403 for a refused token, 4401
//! for a subscribe before the ack, 4408 when no `connection_init` arrives in time.
//!
//! A connection lives no longer than its token: a timer of its own closes it with 4403 when
//! the token's `exp` passes. Before that a client sends a fresh token of the same user in a
//! `ping` (`{"type": "ping", "payload": {"Authorization": "Bearer <JWT>"}}`, a payload the
//! protocol leaves to the application), which moves the timer; a refused one closes with
//! 4403. Every `subscribe` (a query or mutation as well as a subscription) is checked
//! against the connection's current token as an HTTP request would be.

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_graphql::Data;
use async_graphql::http::{WebSocketProtocols, WsMessage};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, State};
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt, future};
use serde_json::Value;
use taxdesk_graphql::{Code, Identity, guard};
use tokio::sync::{mpsc, watch};

use super::{AppState, RequestId};
use crate::auth;

const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Marks our own refusal in the library's close reason, so it can be given code 4403.
const REFUSED: &str = "Forbidden: ";

pub async fn upgrade(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let protocol = headers
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',')
                .find_map(|p| WebSocketProtocols::from_str(p.trim()).ok())
        })
        .unwrap_or(WebSocketProtocols::GraphQLWS);
    ws.protocols(["graphql-transport-ws", "graphql-ws"])
        // Small buffers: idle connections are the common case.
        .read_buffer_size(8 * 1024)
        .write_buffer_size(8 * 1024)
        .max_message_size(s.body_limit)
        .on_upgrade(move |socket| serve(socket, s, rid, protocol))
}

/// An error for one subscription, sent without involving the executor.
fn subscription_error(id: &str, code: Code, zh: &str, en: &str) -> Message {
    let payload = serde_json::json!({
        "id": id,
        "type": "error",
        "payload": [{"message": format!("{zh} / {en}"), "extensions": {"code": code.as_ref()}}],
    });
    Message::Text(payload.to_string().into())
}

/// A client message that must not reach the GraphQL parser: returns the refusal to send.
fn refuse_early(text: &str) -> Option<Message> {
    let v: Value = serde_json::from_str(text).ok()?;
    if !matches!(
        v.get("type").and_then(Value::as_str),
        Some("subscribe" | "start")
    ) {
        return None;
    }
    let query = v.pointer("/payload/query").and_then(Value::as_str)?;
    (guard::nesting_depth(query) > guard::MAX_NESTING).then(|| {
        let id = v.get("id").and_then(Value::as_str).unwrap_or("");
        subscription_error(
            id,
            Code::QueryTooComplex,
            "查询嵌套过深",
            "the query nests too deeply",
        )
    })
}

/// The token a connection currently stands on, and when it expires.
#[derive(Default)]
struct Session {
    /// The `Authorization` value of `connection_init` or of the latest refresh.
    credential: Mutex<Option<String>>,
    /// The token's `exp` (seconds since the epoch): the connection closes then.
    expires: watch::Sender<Option<u64>>,
}

impl Session {
    fn stand_on(&self, credential: &str, exp: u64) {
        if let Ok(mut c) = self.credential.lock() {
            *c = Some(credential.to_string());
        }
        self.expires.send_replace(Some(exp));
    }

    fn credential(&self) -> Option<String> {
        self.credential.lock().ok().and_then(|c| c.clone())
    }
}

/// The `Authorization` value of a `connection_init` or `ping` payload.
fn credential_of(payload: &Value) -> Option<&str> {
    payload
        .get("Authorization")
        .or_else(|| payload.get("authorization"))
        .and_then(Value::as_str)
}

/// The id of a `subscribe` (or legacy `start`) message; `None` for any other message.
fn subscribe_id(text: &str) -> Option<String> {
    let v: Value = serde_json::from_str(text).ok()?;
    if !matches!(
        v.get("type").and_then(Value::as_str),
        Some("subscribe" | "start")
    ) {
        return None;
    }
    Some(
        v.get("id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
    )
}

/// Checks a `subscribe` against the connection's current token, as HTTP checks a request:
/// the refusal to send instead of running it, if any. Before the ack there is no token yet
/// and the protocol's own rule (4401) applies.
async fn refuse_subscribe(s: &AppState, session: &Session, id: &str) -> Option<Message> {
    let credential = session.credential()?;
    match auth::identify(&s.keys, &s.workflow, Some(&credential)).await {
        Identity::User(_) => None,
        Identity::Forbidden { zh, en } => Some(subscription_error(id, Code::Forbidden, &zh, &en)),
        Identity::Rejected { zh, en } => {
            Some(subscription_error(id, Code::Unauthenticated, &zh, &en))
        }
        Identity::Anonymous => Some(subscription_error(
            id,
            Code::Unauthenticated,
            "请先登录",
            "sign in first",
        )),
    }
}

/// How long until `exp` (seconds since the epoch).
fn until(exp: u64) -> Duration {
    Duration::from_secs(exp.saturating_sub(auth::now_secs()))
}

fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.chars().take(100).collect::<String>().into(),
    }))
}

async fn serve(socket: WebSocket, s: AppState, rid: RequestId, protocol: WebSocketProtocols) {
    let (mut sink, source) = socket.split();
    let (early_tx, mut early_rx) = mpsc::unbounded_channel::<Message>();
    let session = Arc::new(Session::default());
    let mut expires = session.expires.subscribe();
    let checks = (s.clone(), session.clone());
    // Boxed: the checks are async, so the stream is not Unpin by itself.
    let input = Box::pin(
        source
            .take_while(|m| {
                future::ready(matches!(m, Ok(msg) if !matches!(msg, Message::Close(_))))
            })
            .filter_map(move |m| {
                let early_tx = early_tx.clone();
                let (s, session) = checks.clone();
                async move {
                    match m {
                        Ok(Message::Text(t)) => {
                            if let Some(refusal) = refuse_early(t.as_str()) {
                                let _ = early_tx.send(refusal);
                                return None;
                            }
                            if let Some(id) = subscribe_id(t.as_str())
                                && let Some(refusal) = refuse_subscribe(&s, &session, &id).await
                            {
                                let _ = early_tx.send(refusal);
                                return None;
                            }
                            Some(t.as_bytes().to_vec())
                        }
                        Ok(Message::Binary(b)) => Some(b.to_vec()),
                        _ => None,
                    }
                }
            }),
    );

    let keys = s.keys.clone();
    let workflow = s.workflow.clone();
    let request_id = rid.0.clone();
    let on_init = session.clone();
    let (ping_keys, ping_workflow, on_ping) = (s.keys.clone(), s.workflow.clone(), session.clone());
    let mut out = async_graphql::http::WebSocket::new(s.schema.clone(), input, protocol)
        .on_connection_init(move |payload: Value| async move {
            let header = credential_of(&payload);
            match auth::identify_until(&keys, &workflow, header).await {
                (Identity::User(v), Some(exp)) if exp > auth::now_secs() => {
                    tracing::debug!(user.id = %v.id, "websocket authenticated");
                    on_init.stand_on(header.unwrap_or_default(), exp);
                    let mut data = Data::default();
                    data.insert(Identity::User(v));
                    data.insert(taxdesk_graphql::RequestId(request_id));
                    Ok(data)
                }
                (Identity::User(_), _) => Err(async_graphql::Error::new(format!(
                    "{REFUSED}the token has expired; sign in again"
                ))),
                (Identity::Rejected { en, .. } | Identity::Forbidden { en, .. }, _) => {
                    Err(async_graphql::Error::new(format!("{REFUSED}{en}")))
                }
                (Identity::Anonymous, _) => Err(async_graphql::Error::new(format!(
                    "{REFUSED}connection_init needs {{\"Authorization\": \"Bearer <token>\"}}"
                ))),
            }
        })
        .on_ping(move |data: Option<&Data>, payload: Option<Value>| {
            // The connection's user, to hold a fresh token to; none before the ack.
            let user = data
                .and_then(|d| d.get(&std::any::TypeId::of::<Identity>()))
                .and_then(|any| match any.downcast_ref::<Identity>() {
                    Some(Identity::User(v)) => Some((v.id.clone(), v.role_)),
                    _ => None,
                });
            async move {
                let Some(header) = payload.as_ref().and_then(credential_of) else {
                    return Ok(None);
                };
                let Some((id, role)) = user else {
                    return Err(async_graphql::Error::new(format!(
                        "{REFUSED}send a fresh token only after connection_ack"
                    )));
                };
                match auth::identify_until(&ping_keys, &ping_workflow, Some(header)).await {
                    (Identity::User(v), Some(exp)) if v.id == id && v.role_ == role => {
                        tracing::debug!(user.id = %v.id, exp, "websocket token refreshed");
                        on_ping.stand_on(header, exp);
                        Ok(None)
                    }
                    (Identity::User(_), _) => Err(async_graphql::Error::new(format!(
                        "{REFUSED}a fresh token must be the same user's, with the same role"
                    ))),
                    (Identity::Rejected { en, .. } | Identity::Forbidden { en, .. }, _) => {
                        Err(async_graphql::Error::new(format!("{REFUSED}{en}")))
                    }
                    (Identity::Anonymous, _) => Ok(None),
                }
            }
        });

    let mut acked = false;
    let init_deadline = tokio::time::sleep(INIT_TIMEOUT);
    tokio::pin!(init_deadline);
    // The token's expiry: one timer per connection, moved by each refresh.
    let token_deadline = tokio::time::sleep(Duration::MAX / 4);
    tokio::pin!(token_deadline);
    let mut has_token = false;
    loop {
        let msg = tokio::select! {
            m = out.next() => match m {
                Some(WsMessage::Text(t)) => {
                    acked |= t.contains("\"connection_ack\"");
                    Message::Text(t.into())
                }
                Some(WsMessage::Close(code, reason)) => {
                    let code = match code {
                        1002 if reason.starts_with(REFUSED) => 4403,
                        1011 => 4401,
                        c => c,
                    };
                    tracing::debug!(code, reason = %reason, "closing websocket");
                    let _ = sink.send(close(code, &reason)).await;
                    break;
                }
                None => break,
            },
            Some(m) = early_rx.recv() => m,
            _ = &mut init_deadline, if !acked => {
                let _ = sink.send(close(4408, "Connection initialisation timeout")).await;
                break;
            }
            Ok(()) = expires.changed() => {
                if let Some(exp) = *expires.borrow_and_update() {
                    token_deadline.as_mut().reset(tokio::time::Instant::now() + until(exp));
                    has_token = true;
                }
                continue;
            }
            _ = &mut token_deadline, if has_token => {
                tracing::debug!("websocket token expired; closing");
                let _ = sink.send(close(4403, "Forbidden: the token has expired")).await;
                break;
            }
        };
        if sink.send(msg).await.is_err() {
            break;
        }
    }
}
