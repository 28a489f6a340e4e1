//! GraphQL subscriptions over WebSocket (graphql-transport-ws). Authentication happens at
//! `connection_init`; the close codes follow the protocol: 4403 for a refused token, 4401
//! for a subscribe before the ack, 4408 when no `connection_init` arrives in time.

use std::str::FromStr;
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
use tokio::sync::mpsc;

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

fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.chars().take(100).collect::<String>().into(),
    }))
}

async fn serve(socket: WebSocket, s: AppState, rid: RequestId, protocol: WebSocketProtocols) {
    let (mut sink, source) = socket.split();
    let (early_tx, mut early_rx) = mpsc::unbounded_channel::<Message>();
    let input = source
        .take_while(|m| future::ready(matches!(m, Ok(msg) if !matches!(msg, Message::Close(_)))))
        .filter_map(move |m| {
            let early_tx = early_tx.clone();
            future::ready(match m {
                Ok(Message::Text(t)) => match refuse_early(t.as_str()) {
                    Some(refusal) => {
                        let _ = early_tx.send(refusal);
                        None
                    }
                    None => Some(t.as_bytes().to_vec()),
                },
                Ok(Message::Binary(b)) => Some(b.to_vec()),
                _ => None,
            })
        });

    let keys = s.keys.clone();
    let workflow = s.workflow.clone();
    let request_id = rid.0.clone();
    let mut out = async_graphql::http::WebSocket::new(s.schema.clone(), input, protocol)
        .on_connection_init(move |payload: Value| async move {
            let header = payload
                .get("Authorization")
                .or_else(|| payload.get("authorization"))
                .and_then(Value::as_str);
            match auth::identify(&keys, &workflow, header).await {
                Identity::User(v) => {
                    tracing::debug!(user.id = %v.id, "websocket authenticated");
                    let mut data = Data::default();
                    data.insert(Identity::User(v));
                    data.insert(taxdesk_graphql::RequestId(request_id));
                    Ok(data)
                }
                Identity::Rejected { en, .. } => {
                    Err(async_graphql::Error::new(format!("{REFUSED}{en}")))
                }
                Identity::Anonymous => Err(async_graphql::Error::new(format!(
                    "{REFUSED}connection_init needs {{\"Authorization\": \"Bearer <token>\"}}"
                ))),
            }
        });

    let mut acked = false;
    let init_deadline = tokio::time::sleep(INIT_TIMEOUT);
    tokio::pin!(init_deadline);
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
        };
        if sink.send(msg).await.is_err() {
            break;
        }
    }
}
