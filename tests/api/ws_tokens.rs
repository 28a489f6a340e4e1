//! A WebSocket lives no longer than its token: closed with 4403 when it expires, kept open
//! by a fresh token of the same user sent in a `ping`.

use std::time::Duration;

use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::TestApp;
use crate::notifications::{Ws, close_code, next_json, ws_connect};

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into()))
        .await
        .expect("sent");
}

/// A socket acknowledged with `token`.
async fn connected(app: &TestApp, token: &str) -> Ws {
    let mut ws = ws_connect(app).await;
    send(
        &mut ws,
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}}),
    )
    .await;
    assert_eq!(next_json(&mut ws).await["type"], "connection_ack");
    ws
}

const CREATE: &str = "mutation { createWorkOrder(input: {title: \"t\", description: \"d\", category: \"其他\"}) { id } }";

#[tokio::test]
async fn the_socket_closes_when_its_token_expires() {
    let app = TestApp::spawn().await;
    let short = app.token_with("taxpayer", "tp1", Duration::from_secs(2), true);
    let mut ws = connected(&app, &short).await;
    send(
        &mut ws,
        json!({"id": "n", "type": "subscribe", "payload": {"query": "subscription { notifications { id } }"}}),
    )
    .await;
    // Nothing else is sent: the server's own timer closes the socket.
    assert_eq!(close_code(&mut ws).await, 4403);
    // A mutation sent on it afterwards does not run.
    let _ = ws
        .send(Message::Text(
            json!({"id": "m", "type": "subscribe", "payload": {"query": CREATE}})
                .to_string()
                .into(),
        ))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.count("SELECT id FROM work_orders").await, 0);
}

#[tokio::test]
async fn a_fresh_token_in_a_ping_keeps_the_socket_open() {
    let app = TestApp::spawn().await;
    let short = app.token_with("taxpayer", "tp1", Duration::from_secs(2), true);
    let mut ws = connected(&app, &short).await;
    let fresh = app.token("taxpayer", "tp1");
    send(
        &mut ws,
        json!({"type": "ping", "payload": {"Authorization": format!("Bearer {fresh}")}}),
    )
    .await;
    assert_eq!(next_json(&mut ws).await["type"], "pong");
    // Past the first token's expiry the socket still serves, mutations included.
    tokio::time::sleep(Duration::from_secs(4)).await;
    send(
        &mut ws,
        json!({"id": "m", "type": "subscribe", "payload": {"query": CREATE}}),
    )
    .await;
    let next = next_json(&mut ws).await;
    assert_eq!(next["type"], "next", "{next}");
    assert!(next["payload"]["data"]["createWorkOrder"]["id"].is_string());
    // A plain ping still gets its pong.
    send(&mut ws, json!({"type": "ping"})).await;
    loop {
        if next_json(&mut ws).await["type"] == "pong" {
            break;
        }
    }
}

#[tokio::test]
async fn a_refresh_must_be_the_same_users_valid_token() {
    let app = TestApp::spawn().await;
    let mut ws = connected(&app, &app.token("taxpayer", "tp1")).await;
    let someone_else = app.token("taxpayer", "tp2");
    send(
        &mut ws,
        json!({"type": "ping", "payload": {"Authorization": format!("Bearer {someone_else}")}}),
    )
    .await;
    assert_eq!(close_code(&mut ws).await, 4403);

    let mut ws = connected(&app, &app.token("taxpayer", "tp1")).await;
    let expired = app.token_with("taxpayer", "tp1", Duration::ZERO, true);
    send(
        &mut ws,
        json!({"type": "ping", "payload": {"Authorization": format!("Bearer {expired}")}}),
    )
    .await;
    assert_eq!(close_code(&mut ws).await, 4403);
}

#[tokio::test]
async fn a_token_expired_within_the_leeway_opens_no_socket() {
    let app = TestApp::spawn().await;
    // HTTP tolerates 30 s of clock difference on exp; a socket would be closed at once.
    let now = taxdesk::auth::now_secs();
    let token = app
        .keys()
        .mint(&taxdesk::auth::TokenClaims {
            sub: "tp1".into(),
            role: "taxpayer".into(),
            exp: now - 5,
            iat: Some(now - 60),
            ..Default::default()
        })
        .expect("mint");
    let mut ws = ws_connect(&app).await;
    send(
        &mut ws,
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}}),
    )
    .await;
    assert_eq!(close_code(&mut ws).await, 4403);
}
