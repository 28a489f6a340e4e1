//! Scale-out on PostgreSQL: two servers on one database. A chat whose two sides sit on
//! different instances delivers every message to both once and in order, also across a lost
//! LISTEN connection; an agent is never given more chats than `maxConcurrent`, nor a chat
//! twice, whichever instances assign. SQLite runs one instance: these tests skip there.

use std::collections::HashSet;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::chat::{open, send, session};
use crate::helpers::{Client, TestApp};
use crate::notifications::Ws;

/// Generous: these waits end as soon as the condition holds.
const PATIENCE: Duration = Duration::from_secs(30);

async fn connect(ws_url: &str, token: &str) -> Ws {
    let mut req = ws_url.into_client_request().expect("ws request");
    req.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().expect("header"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("ws connects");
    let init =
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}});
    ws.send(WsMessage::Text(init.to_string().into()))
        .await
        .expect("init sent");
    assert_eq!(next_frame(&mut ws).await["type"], "connection_ack");
    ws
}

async fn next_frame(ws: &mut Ws) -> Value {
    loop {
        let m = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("a frame within the patience")
            .expect("stream open")
            .expect("no ws error");
        match m {
            WsMessage::Text(t) => return serde_json::from_str(t.as_str()).expect("JSON frame"),
            WsMessage::Close(f) => panic!("closed: {f:?}"),
            _ => continue,
        }
    }
}

/// `chatEvents` of `session` on the instance at `ws_url`, as `who`.
async fn subscribe(app: &TestApp, ws_url: &str, who: (&str, &str), session: &str) -> Ws {
    let mut ws = connect(ws_url, &app.token(who.0, who.1)).await;
    let sub = json!({"id": "c", "type": "subscribe", "payload": {
        "query": "subscription($id: ID!) { chatEvents(sessionId: $id) { kind message { seq text } signal { kind payload } } }",
        "variables": {"id": session}}});
    ws.send(WsMessage::Text(sub.to_string().into()))
        .await
        .expect("subscribe sent");
    ws
}

/// Reads MESSAGE events until `last` arrives; returns every message as (seq, text).
async fn messages_until(ws: &mut Ws, last: &str) -> Vec<(i64, String)> {
    let mut got = vec![];
    loop {
        let f = next_frame(ws).await;
        assert_ne!(f["type"], "error", "{f}");
        let e = &f["payload"]["data"]["chatEvents"];
        if e["kind"] != "MESSAGE" {
            continue;
        }
        let seq = e["message"]["seq"].as_i64().expect("seq");
        let text = e["message"]["text"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let done = text == last;
        got.push((seq, text));
        if done {
            return got;
        }
    }
}

/// Waits until `ws` hears `typist` typing (they type again until it does): then the
/// subscription is registered and anything published from now on reaches it.
async fn until_live(ws: &mut Ws, typist: &Client, session: &str) {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        typist
            .gql(
                "mutation($id: ID!) { sendTyping(sessionId: $id) }",
                json!({"id": session}),
            )
            .await
            .ok();
        let heard = tokio::time::timeout(Duration::from_millis(500), async {
            loop {
                let f = next_frame(ws).await;
                if f["payload"]["data"]["chatEvents"]["kind"] == "TYPING" {
                    return;
                }
            }
        })
        .await;
        if heard.is_ok() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out: subscription live"
        );
    }
}

/// Waits (polling) until `probe` holds.
async fn wait_until<F, Fut>(what: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + PATIENCE;
    while !probe().await {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every message once, in `seq` order without holes, and ours in the order they were sent.
fn assert_once_in_order(who: &str, got: &[(i64, String)], sent: &[String]) {
    for w in got.windows(2) {
        assert_eq!(
            w[1].0,
            w[0].0 + 1,
            "{who}: seqs must follow each other: {got:?}"
        );
    }
    let ours: Vec<&String> = got
        .iter()
        .map(|(_, t)| t)
        .filter(|t| t.starts_with("tp-") || t.starts_with("ag-"))
        .collect();
    let expected: Vec<&String> = sent.iter().collect();
    assert_eq!(ours, expected, "{who}: every message once, in order");
}

/// Sends one message as `c` and records it.
async fn say(c: &Client, session: &str, text: String, sent: &mut Vec<String>) {
    send(c, session, "TEXT", &text, None).await.ok();
    sent.push(text);
}

async fn listener_connections(app: &TestApp, instance: &str) -> i64 {
    app.count(&format!(
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'taxdesk-listen-{instance}'"
    ))
    .await
}

#[tokio::test]
async fn a_chat_across_two_instances_arrives_once_and_in_order_even_across_a_lost_listener() {
    let app = TestApp::spawn_with(&[("TAXDESK_CALENDAR", "always")]).await;
    if !app.is_postgres() {
        eprintln!("skipped: scale-out needs PostgreSQL (SQLite runs one instance)");
        return;
    }
    let b = app.second_instance().await;
    let b_ws = format!("ws://{}/graphql/ws", b.addr);
    let tp = app.user("taxpayer", "tp1");
    let agent = app.user_at(b.addr, "staff", "s1");
    let a_id = app.instance_id();
    assert_ne!(a_id, b.instance_id);
    assert_eq!(listener_connections(&app, &a_id).await, 1);

    // The taxpayer chats on A, the agent works on B.
    crate::chat::online(&agent, 3).await;
    let id = open(&tp).await["id"]
        .as_str()
        .expect("session id")
        .to_string();
    let mut tp_ws = subscribe(&app, &app.ws_url, ("taxpayer", "tp1"), &id).await;
    send(&tp, &id, "TEXT", "转人工", None).await.ok();
    wait_until("the chat reaches the agent", || async {
        session(&tp, &id).await["status"] == "ACTIVE"
    })
    .await;
    let mut ag_ws = subscribe(&app, &b_ws, ("staff", "s1"), &id).await;
    // Each subscription is live once the other side's typing crosses to it.
    until_live(&mut ag_ws, &tp, &id).await;
    until_live(&mut tp_ws, &agent, &id).await;

    // A WebRTC offer too big for a NOTIFY crosses by id.
    let ra = tp
        .gql(
            "mutation($id: ID!) { requestRemoteAssist(sessionId: $id) { id } }",
            json!({"id": id}),
        )
        .await
        .ok();
    let ra_id = ra["requestRemoteAssist"]["id"]
        .as_str()
        .expect("channel id")
        .to_string();
    agent
        .gql(
            "mutation($id: ID!) { respondRemoteAssist(input: {id: $id, accept: true}) { status } }",
            json!({"id": ra_id}),
        )
        .await
        .ok();
    let offer = format!(
        "v=0\r\n{}",
        "a=candidate:1 1 udp 1 10.0.0.1 9 typ host\r\n".repeat(500)
    );
    assert!(offer.len() > 8000);
    tp.gql(
        "mutation($input: SendSignalInput!) { sendSignal(input: $input) }",
        json!({"input": {"channelId": ra_id, "kind": "OFFER", "payload": offer}}),
    )
    .await
    .ok();
    let got = loop {
        let f = next_frame(&mut ag_ws).await;
        let e = &f["payload"]["data"]["chatEvents"];
        if e["kind"] == "SIGNAL" {
            break e.clone();
        }
    };
    assert_eq!(got["signal"]["kind"], "OFFER");
    assert_eq!(got["signal"]["payload"], offer.as_str(), "the whole offer");
    assert!(app.count("SELECT id FROM realtime_payloads").await >= 1);

    send(&agent, &id, "TEXT", "您好", None).await.ok();
    let tp_start = messages_until(&mut tp_ws, "您好").await;
    let ag_start = messages_until(&mut ag_ws, "您好").await;
    assert_eq!(ag_start.len(), 1, "{ag_start:?}");
    let from_seq = ag_start[0].0;
    assert!(tp_start.iter().any(|(s, _)| *s == from_seq));

    // 20 each way, interleaved, each side on its own instance.
    let mut sent = vec![];
    for i in 0..20 {
        say(&tp, &id, format!("tp-{i}"), &mut sent).await;
        say(&agent, &id, format!("ag-{i}"), &mut sent).await;
    }
    // A's listener dies mid-chat; messages keep flowing both ways meanwhile.
    let killed = app
        .count(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'taxdesk-listen-{a_id}'"
        ))
        .await;
    assert_eq!(killed, 1, "instance A's listener was found and ended");
    for i in 20..30 {
        say(&agent, &id, format!("ag-{i}"), &mut sent).await;
        say(&tp, &id, format!("tp-{i}"), &mut sent).await;
    }
    wait_until("A's listener reconnects", || async {
        listener_connections(&app, &a_id).await == 1
    })
    .await;
    assert_eq!(
        listener_connections(&app, &b.instance_id).await,
        1,
        "B's listener was left alone"
    );
    for i in 30..40 {
        say(&tp, &id, format!("tp-{i}"), &mut sent).await;
        say(&agent, &id, format!("ag-{i}"), &mut sent).await;
    }
    // A last word from B: anything late or doubled would arrive before it.
    say(&agent, &id, "ag-end".to_string(), &mut sent).await;

    let tp_got = messages_until(&mut tp_ws, "ag-end").await;
    let ag_got = messages_until(&mut ag_ws, "ag-end").await;
    let mut tp_all = tp_start.clone();
    tp_all.extend(tp_got.clone());
    let tp_seqs: HashSet<i64> = tp_all.iter().map(|(s, _)| *s).collect();
    assert_eq!(tp_seqs.len(), tp_all.len(), "taxpayer: no message twice");
    assert_once_in_order("taxpayer", &tp_got, &sent);
    assert_once_in_order("agent", &ag_got, &sent);
    assert_eq!(tp_got.first().map(|m| m.0), Some(from_seq + 1));
    assert_eq!(ag_got.first().map(|m| m.0), Some(from_seq + 1));
    assert_eq!(
        app.count(&format!(
            "SELECT id FROM chat_messages WHERE session_id = '{id}' AND seq > {from_seq}"
        ))
        .await,
        sent.len() as i64,
        "what both saw is exactly what was stored"
    );
    b.abort();
}

/// The agent's ACTIVE chats' ids.
async fn active_ids(app: &TestApp, agent: &str) -> Vec<String> {
    let backend = app.db().get_database_backend();
    app.db()
        .query_all_raw(Statement::from_string(
            backend,
            format!(
                "SELECT id FROM chat_sessions WHERE status = 'ACTIVE' AND agent_id = '{agent}'"
            ),
        ))
        .await
        .expect("active sessions")
        .iter()
        .map(|r| r.try_get::<String>("", "id").expect("id"))
        .collect()
}

// Several worker threads: requests to the two instances really run at the same time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn agents_on_two_instances_racing_for_one_queue_never_exceed_their_capacity() {
    let app = TestApp::spawn_with(&[("TAXDESK_CALENDAR", "always")]).await;
    if !app.is_postgres() {
        eprintln!("skipped: scale-out needs PostgreSQL (SQLite runs one instance)");
        return;
    }
    let b = app.second_instance().await;
    let on_a = |role: &str, sub: &str| app.user(role, sub);
    let on_b = |role: &str, sub: &str| app.user_at(b.addr, role, sub);
    // Both agents at work but away (they pick chats themselves), one chat at a time.
    for s in ["s1", "s2"] {
        on_a("staff", s)
            .gql(
                "mutation { setAgentStatus(input: {status: AWAY, maxConcurrent: 1}) { status } }",
                json!({}),
            )
            .await
            .ok();
    }
    let mut queued = vec![];
    for i in 0..10 {
        let tp = if i % 2 == 0 {
            on_a("taxpayer", &format!("tp{i}"))
        } else {
            on_b("taxpayer", &format!("tp{i}"))
        };
        let id = open(&tp).await["id"]
            .as_str()
            .expect("session id")
            .to_string();
        let s = tp
            .gql(
                "mutation($id: ID!) { requestHuman(input: {sessionId: $id}) { status } }",
                json!({"id": id}),
            )
            .await
            .ok();
        assert_eq!(s["requestHuman"]["status"], "QUEUED");
        queued.push(id);
    }

    let accept = "mutation($id: ID!) { acceptChat(sessionId: $id) { status } }";
    let mut assigned = 0;
    for round in 0..4 {
        // All at once: each agent picks every waiting chat, half on A and half on B.
        let mut racing = vec![];
        for (n, id) in queued.iter().enumerate() {
            for (k, s) in ["s1", "s2"].iter().enumerate() {
                let c = if (n + k) % 2 == 0 {
                    on_a("staff", s)
                } else {
                    on_b("staff", s)
                };
                let id = id.clone();
                racing.push(tokio::spawn(async move {
                    c.gql(accept, json!({"id": id})).await;
                }));
            }
        }
        for r in racing {
            r.await.expect("request task");
        }
        assigned += 2;
        for agent in ["s1", "s2"] {
            let mine = active_ids(&app, agent).await;
            assert_eq!(
                mine.len(),
                1,
                "round {round}: {agent} has exactly maxConcurrent = 1 chat: {mine:?}"
            );
            queued.retain(|q| !mine.contains(q));
        }
        assert_eq!(
            app.count("SELECT id FROM chat_session_history WHERE event = 'ASSIGN'")
                .await,
            assigned,
            "round {round}: no chat was assigned twice"
        );
        // Each agent closes their chat and the next round races for the rest.
        for agent in ["s1", "s2"] {
            for id in active_ids(&app, agent).await {
                on_b("staff", agent)
                    .gql(
                        "mutation($id: ID!) { endChat(sessionId: $id) { status } }",
                        json!({"id": id}),
                    )
                    .await
                    .ok();
            }
        }
    }
    assert_eq!(queued.len(), 2, "two chats still wait");

    // Routing races too: both go ONLINE at once, on different instances.
    let going_online = [on_a("staff", "s1"), on_b("staff", "s2")].map(|c| {
        tokio::spawn(async move {
            c.gql(
                "mutation { setAgentStatus(input: {status: ONLINE}) { status } }",
                json!({}),
            )
            .await;
        })
    });
    for t in going_online {
        t.await.expect("request task");
    }
    // Routing runs after the requests have answered.
    for agent in ["s1", "s2"] {
        wait_until(&format!("{agent} routed a chat"), || async {
            active_ids(&app, agent).await.len() == 1
        })
        .await;
    }
    assert_eq!(
        app.count("SELECT id FROM chat_session_history WHERE event = 'ASSIGN'")
            .await,
        assigned + 2
    );
    b.abort();
}

/// Sends `payload` as a graphql-transport-ws subscription `id`.
async fn start(ws: &mut Ws, id: &str, query: &str) {
    let sub = json!({"id": id, "type": "subscribe", "payload": {"query": query}});
    ws.send(WsMessage::Text(sub.to_string().into()))
        .await
        .expect("subscribe sent");
}

/// The next `next` frame of subscription `id` within `within`, if any.
async fn next_of(ws: &mut Ws, id: &str, within: Duration) -> Option<Value> {
    tokio::time::timeout(within, async {
        loop {
            let f = next_frame(ws).await;
            assert_ne!(f["type"], "error", "{f}");
            if f["id"] == id && f["type"] == "next" {
                return f["payload"]["data"].clone();
            }
        }
    })
    .await
    .ok()
}

#[tokio::test]
async fn notifications_and_agent_events_cross_instances_and_survive_a_lost_listener() {
    let app = TestApp::spawn_with(&[("TAXDESK_CALENDAR", "always")]).await;
    if !app.is_postgres() {
        eprintln!("skipped: scale-out needs PostgreSQL (SQLite runs one instance)");
        return;
    }
    let b = app.second_instance().await;
    let b_ws = format!("ws://{}/graphql/ws", b.addr);
    let a_id = app.instance_id();

    // Agent events: the agent works on B, taxpayers are routed to them on A.
    let agent = app.user_at(b.addr, "staff", "s1");
    crate::chat::online(&agent, 10).await;
    let mut agent_ws = connect(&b_ws, &app.token("staff", "s1")).await;
    start(
        &mut agent_ws,
        "ag",
        "subscription { agentEvents { kind sessionId } }",
    )
    .await;
    let mut routed = HashSet::new();
    let deadline = std::time::Instant::now() + PATIENCE;
    let assigned = loop {
        // Each try is a new taxpayer on A, until the subscription is live and hears one.
        let tp = app.user("taxpayer", &format!("tq{}", routed.len()));
        let id = open(&tp).await["id"]
            .as_str()
            .expect("session id")
            .to_string();
        tp.gql(
            "mutation($id: ID!) { requestHuman(input: {sessionId: $id}) { status } }",
            json!({"id": id}),
        )
        .await
        .ok();
        routed.insert(id);
        let mut heard = None;
        while let Some(e) = next_of(&mut agent_ws, "ag", Duration::from_millis(500)).await {
            if e["agentEvents"]["kind"] == "ASSIGNED" {
                heard = Some(e["agentEvents"]["sessionId"].clone());
                break;
            }
        }
        if let Some(s) = heard {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out: ASSIGNED on B"
        );
    };
    assert!(
        routed.contains(assigned.as_str().unwrap_or_default()),
        "B's agent heard of a chat routed on A: {assigned}"
    );

    // Notifications: the taxpayer listens on A, the handler works the order on B.
    let tp = app.user("taxpayer", "tp1");
    let staff = app.user_at(b.addr, "staff", "s2");
    staff.gql("{ me { id } }", json!({})).await.ok();
    let wo = tp
        .gql(
            "mutation { createWorkOrder(input: {title: \"发票额度\", description: \"额度不足\", category: \"发票业务\"}) { id } }",
            json!({}),
        )
        .await
        .ok();
    let wo = wo["createWorkOrder"]["id"]
        .as_str()
        .expect("work order id")
        .to_string();
    for m in [
        "mutation($id: ID!) { dispatchWorkOrder(input: {id: $id, handlerId: \"s2\"}) { id } }",
        "mutation($id: ID!) { acceptWorkOrder(id: $id) { id } }",
    ] {
        staff.gql(m, json!({"id": wo})).await.ok();
    }
    let mut tp_ws = connect(&app.ws_url, &app.token("taxpayer", "tp1")).await;
    start(
        &mut tp_ws,
        "n",
        "subscription { notifications { id kind } }",
    )
    .await;
    let progress =
        "mutation($id: ID!) { addWorkOrderProgress(input: {id: $id, note: \"正在核实\"}) { id } }";
    let mut seen: Vec<String> = vec![];
    let deadline = std::time::Instant::now() + PATIENCE;
    while seen.is_empty() {
        // Progress written on B until the subscription on A is live and hears one.
        staff.gql(progress, json!({"id": wo})).await.ok();
        while let Some(n) = next_of(&mut tp_ws, "n", Duration::from_millis(500)).await {
            seen.push(
                n["notifications"]["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out: notification on A"
        );
    }

    // A's listener dies; what B writes meanwhile arrives after the reconnect, once.
    let killed = app
        .count(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'taxdesk-listen-{a_id}'"
        ))
        .await;
    assert_eq!(killed, 1);
    for _ in 0..3 {
        staff.gql(progress, json!({"id": wo})).await.ok();
    }
    wait_until("A's listener reconnects", || async {
        listener_connections(&app, &a_id).await == 1
    })
    .await;
    staff.gql(progress, json!({"id": wo})).await.ok();
    // Everything from the first one heard on (all written by B, whose UUID v7 ids ascend).
    let written = app
        .count(&format!(
            "SELECT id FROM notifications WHERE user_id = 'tp1' AND kind = 'WORK_ORDER_PROGRESS' AND id >= '{}'",
            seen[0]
        ))
        .await as usize;
    while seen.len() < written {
        let n = next_of(&mut tp_ws, "n", PATIENCE)
            .await
            .expect("every progress notification arrives");
        seen.push(
            n["notifications"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "each notification once: {seen:?}");
    // Nothing more (no duplicate) follows.
    assert!(
        next_of(&mut tp_ws, "n", Duration::from_millis(500))
            .await
            .is_none()
    );
    b.abort();
}
