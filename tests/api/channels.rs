//! Remote assistance and calls: request → accept → signals relayed → end; a declined one
//! relays nothing; control messages never exist.

use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::chat::{online, open, send};
use crate::helpers::{Client, TestApp};
use crate::notifications::{Ws, next_json, ws_connect};

async fn listen(app: &TestApp, who: (&str, &str), session: &str) -> Ws {
    let mut ws = ws_connect(app).await;
    let token = app.token(who.0, who.1);
    let init =
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}});
    ws.send(WsMessage::Text(init.to_string().into()))
        .await
        .unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "connection_ack");
    let sub = json!({"id": "s", "type": "subscribe", "payload": {
        "query": "subscription($id: ID!) { chatEvents(sessionId: $id) { kind channelId channelStatus signal { channelId from kind payload } } }",
        "variables": {"id": session}}});
    ws.send(WsMessage::Text(sub.to_string().into()))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    ws
}

/// Next SIGNAL, REMOTE_ASSIST or CALL event.
async fn next_channel_event(ws: &mut Ws) -> Value {
    for _ in 0..50 {
        let m = next_json(ws).await;
        let e = m["payload"]["data"]["chatEvents"].clone();
        if matches!(
            e["kind"].as_str(),
            Some("SIGNAL" | "REMOTE_ASSIST" | "CALL")
        ) {
            return e;
        }
    }
    panic!("no channel event");
}

/// Skips channel events until one with this status (or a signal, for "SIGNAL").
async fn wait_for(ws: &mut Ws, status: &str) -> Value {
    for _ in 0..50 {
        let e = next_channel_event(ws).await;
        if e["channelStatus"] == status || (status == "SIGNAL" && e["kind"] == "SIGNAL") {
            return e;
        }
    }
    panic!("no {status}");
}

async fn signal(c: &Client, channel: &str, kind: &str, payload: &str) -> crate::helpers::Gql {
    c.gql(
        "mutation($input: SendSignalInput!) { sendSignal(input: $input) }",
        json!({"input": {"channelId": channel, "kind": kind, "payload": payload}}),
    )
    .await
}

/// A taxpayer and an agent in an ACTIVE chat.
async fn active_chat(app: &TestApp) -> (Client, Client, String) {
    let tp = app.user("taxpayer", "tp1");
    let agent = app.user("staff", "s1");
    online(&agent, 2).await;
    let id = open(&tp).await["id"].as_str().unwrap().to_string();
    send(&tp, &id, "TEXT", "转人工", None).await.ok();
    crate::chat::until_status(&tp, &id, "ACTIVE").await;
    (tp, agent, id)
}

#[tokio::test]
async fn remote_assistance_and_a_video_call_relay_signals_between_the_two() {
    let app = TestApp::spawn_with(&[("TAXDESK_CALENDAR", "always")]).await;
    let (tp, agent, id) = active_chat(&app).await;
    let mut tp_ws = listen(&app, ("taxpayer", "tp1"), &id).await;
    let mut agent_ws = listen(&app, ("staff", "s1"), &id).await;

    // Remote assistance: the taxpayer asks, the agent accepts, the screen offer goes across.
    let ra = tp
        .gql(
            "mutation($id: ID!) { requestRemoteAssist(sessionId: $id) { id status } }",
            json!({"id": id}),
        )
        .await
        .ok();
    let ra_id = ra["requestRemoteAssist"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(ra["requestRemoteAssist"]["status"], "REQUESTED");
    wait_for(&mut agent_ws, "REQUESTED").await;
    // A reloaded page finds the request on the session, with what each side may do.
    let open_channels =
        "query($id: ID!) { chatSession(id: $id) { channels { id kind status allowedActions } } }";
    let seen = agent.gql(open_channels, json!({"id": id})).await.ok();
    assert_eq!(
        seen["chatSession"]["channels"],
        json!([{"id": ra_id, "kind": "REMOTE_ASSIST", "status": "REQUESTED",
                "allowedActions": ["ACCEPT", "DECLINE"]}])
    );
    let seen = tp.gql(open_channels, json!({"id": id})).await.ok();
    assert_eq!(
        seen["chatSession"]["channels"][0]["allowedActions"],
        json!(["CANCEL"])
    );
    assert_eq!(
        signal(&tp, &ra_id, "OFFER", "v=0 early").await.code(),
        Some("INVALID_TRANSITION"),
        "not before accept"
    );
    let ok = agent
        .gql(
            "mutation($id: ID!) { respondRemoteAssist(input: {id: $id, accept: true}) { status } }",
            json!({"id": ra_id}),
        )
        .await
        .ok();
    assert_eq!(ok["respondRemoteAssist"]["status"], "ACTIVE");
    wait_for(&mut tp_ws, "ACTIVE").await;
    signal(&tp, &ra_id, "OFFER", "v=0 screen").await.ok();
    let got = wait_for(&mut agent_ws, "SIGNAL").await;
    assert_eq!(
        got["signal"],
        json!({"channelId": ra_id, "from": "tp1", "kind": "OFFER", "payload": "v=0 screen"})
    );
    signal(&agent, &ra_id, "ANSWER", "v=0 answer").await.ok();
    assert_eq!(
        wait_for(&mut tp_ws, "SIGNAL").await["signal"]["kind"],
        "ANSWER"
    );
    // A stranger cannot signal; an over-long payload is refused.
    let stranger = app.user("taxpayer", "tp9");
    assert_eq!(
        signal(&stranger, &ra_id, "ICE", "x").await.code(),
        Some("NOT_FOUND")
    );
    assert_eq!(
        signal(&tp, &ra_id, "ICE", &"x".repeat(70_000)).await.code(),
        Some("INVALID_INPUT")
    );
    let end = tp
        .gql(
            "mutation($id: ID!) { endRemoteAssist(id: $id) { status history { event toStatus } } }",
            json!({"id": ra_id}),
        )
        .await
        .ok();
    assert_eq!(end["endRemoteAssist"]["status"], "ENDED");
    let seen = tp.gql(open_channels, json!({"id": id})).await.ok();
    assert_eq!(
        seen["chatSession"]["channels"],
        json!([]),
        "ended: not in play"
    );
    assert_eq!(
        end["endRemoteAssist"]["history"].as_array().unwrap().len(),
        3
    );

    // A video call: the agent invites, the taxpayer agrees, ICE both ways, the agent ends.
    let call = agent.gql("mutation($id: ID!) { inviteCall(input: {sessionId: $id, media: VIDEO}) { id status media } }", json!({"id": id})).await.ok();
    let call_id = call["inviteCall"]["id"].as_str().unwrap().to_string();
    assert_eq!(call["inviteCall"]["media"], "VIDEO");
    assert_eq!(app.count(&format!("SELECT id FROM jobs WHERE kind = 'call.expire' AND state = 'PENDING' AND dedupe_key LIKE '%{call_id}'")).await, 1);
    wait_for(&mut tp_ws, "INVITED").await;
    tp.gql(
        "mutation($id: ID!) { respondCall(input: {id: $id, accept: true}) { status } }",
        json!({"id": call_id}),
    )
    .await
    .ok();
    assert_eq!(app.count(&format!("SELECT id FROM jobs WHERE kind = 'call.expire' AND state = 'CANCELLED' AND dedupe_key LIKE '%{call_id}'")).await, 1);
    signal(&agent, &call_id, "ICE", "candidate:1").await.ok();
    assert_eq!(
        wait_for(&mut tp_ws, "SIGNAL").await["signal"]["payload"],
        "candidate:1"
    );
    let ended = agent
        .gql(
            "mutation($id: ID!) { endCall(id: $id) { status } }",
            json!({"id": call_id}),
        )
        .await
        .ok();
    assert_eq!(ended["endCall"]["status"], "ENDED");
    assert_eq!(
        signal(&agent, &call_id, "ICE", "late").await.code(),
        Some("INVALID_TRANSITION")
    );
}

#[tokio::test]
async fn a_declined_call_relays_nothing() {
    let app = TestApp::spawn_with(&[("TAXDESK_CALENDAR", "always")]).await;
    let (tp, agent, id) = active_chat(&app).await;
    let call = agent
        .gql(
            "mutation($id: ID!) { inviteCall(input: {sessionId: $id, media: AUDIO}) { id } }",
            json!({"id": id}),
        )
        .await
        .ok();
    let call_id = call["inviteCall"]["id"].as_str().unwrap().to_string();
    // Only the taxpayer answers an invitation.
    let r = agent
        .gql(
            "mutation($id: ID!) { respondCall(input: {id: $id, accept: true}) { status } }",
            json!({"id": call_id}),
        )
        .await;
    assert_eq!(r.code(), Some("FORBIDDEN"));
    let d = tp
        .gql(
            "mutation($id: ID!) { respondCall(input: {id: $id, accept: false}) { status } }",
            json!({"id": call_id}),
        )
        .await
        .ok();
    assert_eq!(d["respondCall"]["status"], "DECLINED");
    assert_eq!(
        signal(&agent, &call_id, "OFFER", "v=0").await.code(),
        Some("INVALID_TRANSITION")
    );
    assert_eq!(
        signal(&tp, &call_id, "ANSWER", "v=0").await.code(),
        Some("INVALID_TRANSITION")
    );
    // Remote assistance declined: the same.
    let ra = tp
        .gql(
            "mutation($id: ID!) { requestRemoteAssist(sessionId: $id) { id } }",
            json!({"id": id}),
        )
        .await
        .ok();
    let ra_id = ra["requestRemoteAssist"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    agent.gql("mutation($id: ID!) { respondRemoteAssist(input: {id: $id, accept: false}) { status } }", json!({"id": ra_id})).await.ok();
    assert_eq!(
        signal(&tp, &ra_id, "OFFER", "v=0").await.code(),
        Some("INVALID_TRANSITION")
    );
    // Ending the chat ends what is still open.
    let call2 = agent
        .gql(
            "mutation($id: ID!) { inviteCall(input: {sessionId: $id, media: AUDIO}) { id } }",
            json!({"id": id}),
        )
        .await
        .ok();
    let call2_id = call2["inviteCall"]["id"].as_str().unwrap().to_string();
    tp.gql(
        "mutation($id: ID!) { endChat(sessionId: $id) { status } }",
        json!({"id": id}),
    )
    .await
    .ok();
    assert_eq!(
        app.count(&format!(
            "SELECT id FROM chat_channels WHERE id = '{call2_id}' AND status = 'CANCELLED'"
        ))
        .await,
        1
    );
}

/// Ten remote-assistance requests sent at once in one chat, in several chats: one is
/// REQUESTED, the other nine are refused (`INVALID_TRANSITION`, as a request while one is
/// open), and the database holds one channel in play per chat (a unique index makes two
/// impossible).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_remote_assist_requests_open_one() {
    let app = TestApp::spawn_with(&[("TAXDESK_CALENDAR", "always")]).await;
    let agent = app.user("staff", "s1");
    online(&agent, 10).await;
    for round in 0..5 {
        let tp = app.user("taxpayer", &format!("tp{round}"));
        let id = open(&tp).await["id"].as_str().unwrap().to_string();
        send(&tp, &id, "TEXT", "转人工", None).await.ok();
        // Routing runs after the hand-over request has answered.
        crate::chat::until_status(&tp, &id, "ACTIVE").await;
        let racers: Vec<_> = (0..10)
            .map(|_| {
                let (tp, id) = (tp.clone(), id.clone());
                tokio::spawn(async move {
                    tp.gql(
                        "mutation($id: ID!) { requestRemoteAssist(sessionId: $id) { id status } }",
                        json!({"id": id}),
                    )
                    .await
                })
            })
            .collect();
        let mut opened = vec![];
        let mut refused = 0;
        for r in racers {
            let r = r.await.unwrap();
            match r.code() {
                None => opened.push(r.ok()["requestRemoteAssist"]["id"].clone()),
                Some("INVALID_TRANSITION") => refused += 1,
                other => panic!("round {round}: unexpected {other:?}: {:?}", r.0),
            }
        }
        assert_eq!((opened.len(), refused), (1, 9), "round {round}");
        let in_play = format!(
            "SELECT id FROM chat_channels WHERE session_id = '{id}' AND status IN ('REQUESTED', 'ACTIVE')"
        );
        assert_eq!(app.count(&in_play).await, 1, "round {round}");
        assert_eq!(
            app.count(&format!("SELECT id FROM chat_channel_history WHERE channel_id IN (SELECT id FROM chat_channels WHERE session_id = '{id}')"))
                .await,
            1,
            "round {round}: one history row"
        );
    }
}
