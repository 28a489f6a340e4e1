//! Hand-over bursts (#17): many 转人工 at once, agents coming online while the queue is full,
//! many chats ending at once. Every session is assigned once, no agent exceeds
//! `maxConcurrent`, the queue is served by priority then waiting time, and the places pushed
//! to the waiting taxpayers stay right; on PostgreSQL two instances share a burst.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures_util::future::join_all;
use futures_util::{SinkExt, StreamExt};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::chat::{online, open, send};
use crate::helpers::{Client, TestApp};
use crate::notifications::Ws;

/// Generous: the waits end as soon as the condition holds.
const PATIENCE: Duration = Duration::from_secs(30);

const SETTINGS: [(&str, &str); 5] = [
    ("TAXDESK_CALENDAR", "always"),
    ("TAXDESK_ANSWER_TIMEOUT", "1h"),
    ("TAXDESK_QUEUE_OFFER_AFTER", "1h"),
    ("TAXDESK_QUEUE_TIMEOUT", "1h"),
    ("TAXDESK_IDLE_TIMEOUT", "1h"),
];

const REQUEST: &str =
    "mutation($id: ID!) { requestHuman(input: {sessionId: $id}) { status queuePosition } }";

/// Rows of `sql` as strings (NULL as "").
async fn rows(app: &TestApp, sql: &str, cols: &[&str]) -> Vec<Vec<String>> {
    let backend = app.db().get_database_backend();
    app.db()
        .query_all_raw(Statement::from_string(backend, sql.to_string()))
        .await
        .expect("query")
        .iter()
        .map(|r| {
            cols.iter()
                .map(|c| {
                    r.try_get::<Option<String>>("", c)
                        .ok()
                        .flatten()
                        .unwrap_or_default()
                })
                .collect()
        })
        .collect()
}

/// Session id → agent id of every ACTIVE session.
async fn active(app: &TestApp) -> HashMap<String, String> {
    rows(
        app,
        "SELECT id, agent_id FROM chat_sessions WHERE status = 'ACTIVE'",
        &["id", "agent_id"],
    )
    .await
    .into_iter()
    .map(|r| (r[0].clone(), r[1].clone()))
    .collect()
}

/// Polls until `sql` has exactly `n` rows.
async fn until_count(app: &TestApp, what: &str, sql: &str, n: i64) {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let c = app.count(sql).await;
        if c == n {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out: {what} ({c} rows, expected {n})"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

const ACTIVE: &str = "SELECT id FROM chat_sessions WHERE status = 'ACTIVE'";
const QUEUED: &str = "SELECT id FROM chat_sessions WHERE status = 'QUEUED'";

/// No agent over `maxConcurrent`, every agent's kept count right, and no session assigned
/// more often than it was put (back) in the queue.
async fn assert_capacity_and_once(app: &TestApp, when: &str) {
    let over = app
        .count(
            "SELECT p.user_id FROM agent_presence p WHERE p.max_concurrent < \
             (SELECT COUNT(*) FROM chat_sessions s WHERE s.agent_id = p.user_id AND s.status = 'ACTIVE')",
        )
        .await;
    assert_eq!(
        over, 0,
        "{when}: an agent has more than maxConcurrent chats"
    );
    let miscounted = app
        .count(
            "SELECT p.user_id FROM agent_presence p WHERE p.active_chats <> \
             (SELECT COUNT(*) FROM chat_sessions s WHERE s.agent_id = p.user_id AND s.status = 'ACTIVE')",
        )
        .await;
    assert_eq!(miscounted, 0, "{when}: active_chats out of step");
    let twice = app
        .count(
            "SELECT s.id FROM chat_sessions s WHERE \
             (SELECT COUNT(*) FROM chat_session_history h WHERE h.session_id = s.id AND h.event = 'ASSIGN') > \
             1 + (SELECT COUNT(*) FROM chat_session_history h WHERE h.session_id = s.id AND h.event = 'REQUEUE')",
        )
        .await;
    assert_eq!(twice, 0, "{when}: a session was assigned twice");
}

/// Opens a chat for each taxpayer and asks for a human, all at once: half by
/// `requestHuman`, half by typing 转人工. Each answer comes back QUEUED with a place.
async fn burst(taxpayers: &[Client]) -> Vec<String> {
    let ids: Vec<String> = join_all(taxpayers.iter().map(open))
        .await
        .iter()
        .map(|s| s["id"].as_str().expect("session id").to_string())
        .collect();
    let asks = taxpayers
        .iter()
        .zip(&ids)
        .enumerate()
        .map(|(i, (c, id))| async move {
            if i.is_multiple_of(2) {
                let s = c.gql(REQUEST, json!({"id": id})).await.ok();
                assert_eq!(s["requestHuman"]["status"], "QUEUED", "answered at once");
                assert!(
                    s["requestHuman"]["queuePosition"].as_i64().unwrap_or(0) >= 1,
                    "{s}"
                );
            } else {
                send(c, id, "TEXT", "转人工", None).await.ok();
            }
        });
    join_all(asks).await;
    ids
}

async fn go(clients: &[Client], status: &str) {
    join_all(clients.iter().map(|c| {
        c.gql(
            "mutation($s: AgentPresence!) { setAgentStatus(input: {status: $s, maxConcurrent: 1}) { status } }",
            json!({"s": status}),
        )
    }))
    .await
    .into_iter()
    .for_each(|r| {
        r.ok();
    });
}

/// The waiting sessions in serving order, as staff see them.
async fn waiting(staff: &Client) -> Vec<String> {
    staff.gql("{ waitingQueue { id } }", json!({})).await.ok()["waitingQueue"]
        .as_array()
        .expect("list")
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_string())
        .collect()
}

/// `chatEvents` of `session` for its taxpayer.
async fn watch(app: &TestApp, taxpayer: &str, session: &str) -> Ws {
    let mut ws = crate::notifications::ws_connect(app).await;
    let token = app.token("taxpayer", taxpayer);
    let init =
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}});
    ws.send(WsMessage::Text(init.to_string().into()))
        .await
        .expect("init");
    assert_eq!(
        crate::notifications::next_json(&mut ws).await["type"],
        "connection_ack"
    );
    let sub = json!({"id": "q", "type": "subscribe", "payload": {
        "query": "subscription($id: ID!) { chatEvents(sessionId: $id) { kind queuePosition } }",
        "variables": {"id": session}}});
    ws.send(WsMessage::Text(sub.to_string().into()))
        .await
        .expect("subscribe");
    ws
}

/// Reads queue places until `expected` arrives and nothing else follows for a moment;
/// returns the last place heard.
async fn settled_place(ws: &mut Ws, expected: i64) -> Option<i64> {
    let mut last = None;
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let quiet = if last == Some(expected) {
            Duration::from_millis(500)
        } else {
            deadline.saturating_duration_since(std::time::Instant::now())
        };
        let Ok(frame) = tokio::time::timeout(quiet, ws.next()).await else {
            return last;
        };
        let Some(Ok(WsMessage::Text(t))) = frame else {
            return last;
        };
        let v: Value = serde_json::from_str(t.as_str()).expect("JSON frame");
        let e = &v["payload"]["data"]["chatEvents"];
        if e["kind"] == "QUEUE_POSITION" {
            last = e["queuePosition"].as_i64();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_hand_overs_is_served_once_by_priority_then_waiting_time() {
    let app = TestApp::spawn_with(&SETTINGS).await;
    let agents: Vec<Client> = (0..40)
        .map(|i| app.user("staff", &format!("s{i:02}")))
        .collect();
    go(&agents, "ONLINE").await;

    // 60 hand-overs at once for 40 agents of one chat each.
    let taxpayers: Vec<Client> = (0..60)
        .map(|i| app.user("taxpayer", &format!("tp{i:02}")))
        .collect();
    let ids = burst(&taxpayers).await;
    until_count(&app, "40 chats with an agent", ACTIVE, 40).await;
    until_count(&app, "20 still waiting", QUEUED, 20).await;
    let served = active(&app).await;
    let agents_used: HashSet<&String> = served.values().collect();
    assert_eq!(agents_used.len(), 40, "one chat per agent");
    assert_eq!(
        app.count("SELECT id FROM chat_session_history WHERE event = 'ASSIGN'")
            .await,
        40
    );
    assert_capacity_and_once(&app, "after the burst").await;
    for id in &ids {
        let n = app
            .count(&format!(
                "SELECT id FROM chat_sessions WHERE id = '{id}' AND status IN ('ACTIVE', 'QUEUED')"
            ))
            .await;
        assert_eq!(n, 1, "session {id} is with an agent or waiting");
    }

    // Five agents leave: their chats go back to the front of the queue, ahead of the 20.
    let leaving: Vec<Client> = (0..5)
        .map(|i| app.user("staff", &format!("s{i:02}")))
        .collect();
    let requeued: HashSet<String> = served
        .iter()
        .filter(|(_, a)| ["s00", "s01", "s02", "s03", "s04"].contains(&a.as_str()))
        .map(|(s, _)| s.clone())
        .collect();
    go(&leaving, "OFFLINE").await;
    until_count(&app, "25 waiting", QUEUED, 25).await;
    let order = waiting(&agents[10]).await;
    assert_eq!(order.len(), 25);
    let front: HashSet<String> = order[..5].iter().cloned().collect();
    assert_eq!(front, requeued, "re-queued chats are served first");
    let by_wait: Vec<String> = rows(
        &app,
        "SELECT id FROM chat_sessions WHERE status = 'QUEUED' AND queue_priority = 0 ORDER BY queued_at, id",
        &["id"],
    )
    .await
    .into_iter()
    .map(|r| r[0].clone())
    .collect();
    assert_eq!(order[5..], by_wait[..], "then by waiting time");

    // The last in line watches their place.
    let last = order[24].clone();
    let last_tp = format!(
        "tp{:02}",
        ids.iter().position(|i| *i == last).expect("a taxpayer")
    );
    let mut ws = watch(&app, &last_tp, &last).await;

    // Ten agents come online at once while the queue is full: the first ten in line are theirs.
    let arriving: Vec<Client> = (0..10)
        .map(|i| app.user("staff", &format!("n{i:02}")))
        .collect();
    go(&arriving, "ONLINE").await;
    until_count(&app, "15 waiting", QUEUED, 15).await;
    let now_active = active(&app).await;
    let taken: HashSet<String> = order
        .iter()
        .filter(|s| now_active.contains_key(*s))
        .cloned()
        .collect();
    assert_eq!(
        taken,
        order[..10].iter().cloned().collect::<HashSet<_>>(),
        "the first ten in line"
    );
    assert_capacity_and_once(&app, "after agents came online").await;
    assert_eq!(
        settled_place(&mut ws, 15).await,
        Some(15),
        "the last in line is told their place"
    );

    // Ten chats end at once: the freed agents take the next ten in line.
    let ending: Vec<(String, Client)> = now_active
        .iter()
        .filter(|(s, _)| !order.contains(s))
        .take(10)
        .map(|(s, _)| {
            let i = ids.iter().position(|i| i == s).expect("a burst session");
            (s.clone(), taxpayers[i].clone())
        })
        .collect();
    assert_eq!(ending.len(), 10);
    join_all(ending.iter().map(|(s, c)| {
        c.gql(
            "mutation($id: ID!) { endChat(sessionId: $id) { status } }",
            json!({"id": s}),
        )
    }))
    .await
    .into_iter()
    .for_each(|r| {
        r.ok();
    });
    until_count(&app, "5 waiting", QUEUED, 5).await;
    let now_active = active(&app).await;
    let taken: HashSet<String> = order[10..]
        .iter()
        .filter(|s| now_active.contains_key(*s))
        .cloned()
        .collect();
    assert_eq!(
        taken,
        order[10..20].iter().cloned().collect::<HashSet<_>>(),
        "the next ten in line"
    );
    assert_capacity_and_once(&app, "after chats ended").await;
    assert_eq!(settled_place(&mut ws, 5).await, Some(5));

    // Five more agents drain the queue.
    let more: Vec<Client> = (10..15)
        .map(|i| app.user("staff", &format!("n{i:02}")))
        .collect();
    go(&more, "ONLINE").await;
    until_count(&app, "nobody waiting", QUEUED, 0).await;
    assert_capacity_and_once(&app, "drained").await;
}

// Several worker threads: requests to the two instances really run at the same time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_share_a_burst_without_double_assignment() {
    let app = TestApp::spawn_with(&SETTINGS).await;
    if !app.is_postgres() {
        eprintln!("skipped: scale-out needs PostgreSQL (SQLite runs one instance)");
        return;
    }
    let b = app.second_instance().await;
    let at = |i: usize, role: &str, sub: String| {
        if i.is_multiple_of(2) {
            app.user(role, &sub)
        } else {
            app.user_at(b.addr, role, &sub)
        }
    };
    // One agent already at work so hand-overs are accepted; 39 more arrive during the burst.
    online(&at(0, "staff", "s00".into()), 1).await;
    let agents: Vec<Client> = (1..40)
        .map(|i| at(i, "staff", format!("s{i:02}")))
        .collect();
    let taxpayers: Vec<Client> = (0..60)
        .map(|i| at(i, "taxpayer", format!("tp{i:02}")))
        .collect();
    let (ids, ()) = tokio::join!(burst(&taxpayers), go(&agents, "ONLINE"));
    until_count(&app, "40 chats with an agent", ACTIVE, 40).await;
    until_count(&app, "20 waiting", QUEUED, 20).await;
    assert_capacity_and_once(&app, "after the burst").await;
    assert_eq!(
        app.count("SELECT id FROM chat_session_history WHERE event = 'ASSIGN'")
            .await,
        40
    );

    // Twenty more agents, on both instances at once: everyone is served, each once.
    let more: Vec<Client> = (40..60)
        .map(|i| at(i, "staff", format!("s{i:02}")))
        .collect();
    go(&more, "ONLINE").await;
    until_count(&app, "everyone with an agent", ACTIVE, 60).await;
    assert_capacity_and_once(&app, "drained").await;
    let served = active(&app).await;
    assert_eq!(served.len(), ids.len());
    assert_eq!(
        served.values().collect::<HashSet<_>>().len(),
        60,
        "one chat per agent"
    );
    assert_eq!(
        app.count("SELECT id FROM chat_session_history WHERE event = 'ASSIGN'")
            .await,
        60
    );
    b.abort();
}
