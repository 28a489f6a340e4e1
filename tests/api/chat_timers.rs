//! Chat timers: idle sessions close with a farewell, a long wait is offered alternatives and
//! then given up, an agent going offline or not answering loses the chat to the queue's front.

use std::time::Duration;

use serde_json::json;

use crate::chat::{online, open, send, session, until_status};
use crate::helpers::TestApp;

async fn wait_status(app: &TestApp, id: &str, status: &str) -> i64 {
    app.wait_for_count(
        &format!("SELECT id FROM chat_sessions WHERE id = '{id}' AND status = '{status}'"),
        1,
        Duration::from_secs(8),
    )
    .await
}

#[tokio::test]
async fn an_idle_session_ends_with_a_farewell() {
    let app = TestApp::spawn_with(&[
        ("TAXDESK_CALENDAR", "always"),
        ("TAXDESK_IDLE_TIMEOUT", "1s"),
    ])
    .await;
    let tp = app.user("taxpayer", "tp1");
    let id = open(&tp).await["id"].as_str().unwrap().to_string();
    send(&tp, &id, "TEXT", "你好", None).await.ok();
    assert_eq!(wait_status(&app, &id, "ENDED").await, 1);
    let s = session(&tp, &id).await;
    assert_eq!(
        s["history"].as_array().unwrap().last().unwrap()["event"],
        "IDLE_TIMEOUT"
    );
    let farewell = app.count(&format!("SELECT id FROM chat_messages WHERE session_id = '{id}' AND kind = 'SYSTEM' AND text LIKE '%长时间%'")).await;
    assert_eq!(farewell, 1);
}

/// The idle check outlives a queue wait longer than the idle timeout: the chat an agent
/// takes afterwards still ends when nobody writes, and a chat in use does not.
#[tokio::test]
async fn the_idle_check_survives_the_queue_and_activity_keeps_a_chat_open() {
    let app = TestApp::spawn_with(&[
        ("TAXDESK_CALENDAR", "always"),
        ("TAXDESK_IDLE_TIMEOUT", "3s"),
        ("TAXDESK_QUEUE_TIMEOUT", "1h"),
        ("TAXDESK_QUEUE_OFFER_AFTER", "1h"),
        ("TAXDESK_ANSWER_TIMEOUT", "1h"),
    ])
    .await;
    let agent = app.user("staff", "s1");
    online(&agent, 1).await;
    let busy = app.user("taxpayer", "tp1");
    let waiting = app.user("taxpayer", "tp2");
    let first = open(&busy).await["id"].as_str().unwrap().to_string();
    send(&busy, &first, "TEXT", "转人工", None).await.ok();
    until_status(&busy, &first, "ACTIVE").await;
    let second = open(&waiting).await["id"].as_str().unwrap().to_string();
    send(&waiting, &second, "TEXT", "转人工", None).await.ok();
    assert_eq!(session(&waiting, &second).await["status"], "QUEUED");

    // The first chat is in use: a message every 300 ms for longer than the idle timeout.
    for i in 0..15 {
        send(&busy, &first, "TEXT", &format!("第{i}条"), None)
            .await
            .ok();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(session(&busy, &first).await["status"], "ACTIVE");
    // Meanwhile the second waited longer than the idle timeout, and is still queued.
    assert_eq!(session(&waiting, &second).await["status"], "QUEUED");

    // The agent frees up and takes the second; nobody writes in it, so it ends.
    busy.gql(
        "mutation($id: ID!) { endChat(sessionId: $id) { status } }",
        json!({"id": first}),
    )
    .await
    .ok();
    assert_eq!(wait_status(&app, &second, "ACTIVE").await, 1);
    assert_eq!(wait_status(&app, &second, "ENDED").await, 1);
    let s = session(&waiting, &second).await;
    assert_eq!(
        s["history"].as_array().unwrap().last().unwrap()["event"],
        "IDLE_TIMEOUT"
    );
}

#[tokio::test]
async fn a_long_wait_offers_alternatives_then_gives_up() {
    let app = TestApp::spawn_with(&[
        ("TAXDESK_CALENDAR", "always"),
        ("TAXDESK_QUEUE_OFFER_AFTER", "1s"),
        ("TAXDESK_QUEUE_TIMEOUT", "2s"),
    ])
    .await;
    let tp = app.user("taxpayer", "tp1");
    let agent = app.user("staff", "s1");
    agent
        .gql(
            "mutation { setAgentStatus(input: {status: AWAY}) { status } }",
            json!({}),
        )
        .await
        .ok();
    let id = open(&tp).await["id"].as_str().unwrap().to_string();
    send(&tp, &id, "TEXT", "社保费怎么缴", None).await.ok();
    send(&tp, &id, "TEXT", "转人工", None).await.ok();
    assert_eq!(session(&tp, &id).await["status"], "QUEUED");
    let offered = app
        .wait_for_count(
            &format!(
                "SELECT id FROM chat_messages WHERE session_id = '{id}' AND text LIKE '%在线留言%'"
            ),
            1,
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(offered, 1);
    assert_eq!(wait_status(&app, &id, "ABANDONED").await, 1);
    let s = tp
        .gql(
            "query($id: ID!) { chatSession(id: $id) { firstQuestion allowedActions } }",
            json!({"id": id}),
        )
        .await
        .ok();
    assert_eq!(
        s["chatSession"]["firstQuestion"], "社保费怎么缴",
        "carried over to a message"
    );
    assert_eq!(s["chatSession"]["allowedActions"], json!([]));
}

#[tokio::test]
async fn an_agent_going_offline_or_not_answering_loses_the_chat_to_the_front() {
    let app = TestApp::spawn_with(&[
        ("TAXDESK_CALENDAR", "always"),
        ("TAXDESK_ANSWER_TIMEOUT", "1s"),
    ])
    .await;
    let tp = app.user("taxpayer", "tp1");
    let tp2 = app.user("taxpayer", "tp2");
    let s1 = app.user("staff", "s1");
    let s2 = app.user("staff", "s2");
    online(&s1, 1).await;
    let id = open(&tp).await["id"].as_str().unwrap().to_string();
    send(&tp, &id, "TEXT", "转人工", None).await.ok();
    assert_eq!(until_status(&tp, &id, "ACTIVE").await["agent"]["id"], "s1");
    send(&s1, &id, "TEXT", "您好", None).await.ok();
    // Someone else queues meanwhile.
    s2.gql(
        "mutation { setAgentStatus(input: {status: AWAY}) { status } }",
        json!({}),
    )
    .await
    .ok();
    let id2 = open(&tp2).await["id"].as_str().unwrap().to_string();
    send(&tp2, &id2, "TEXT", "转人工", None).await.ok();
    assert_eq!(session(&tp2, &id2).await["queuePosition"], 1);

    // s1 goes offline: tp1's chat is not dropped, it goes back ahead of tp2.
    s1.gql(
        "mutation { setAgentStatus(input: {status: OFFLINE}) { status } }",
        json!({}),
    )
    .await
    .ok();
    let s = session(&tp, &id).await;
    assert_eq!(s["status"], "QUEUED");
    assert_eq!(s["queuePosition"], 1);
    assert_eq!(session(&tp2, &id2).await["queuePosition"], 2);

    // s2 comes online and takes tp1, but does not answer: it goes to the front again and
    // s2 is set away.
    online(&s2, 1).await;
    assert_eq!(until_status(&tp, &id, "ACTIVE").await["agent"]["id"], "s2");
    assert_eq!(app.wait_for_count(&format!("SELECT id FROM chat_session_history WHERE session_id = '{id}' AND event = 'REQUEUE'"), 2, Duration::from_secs(6)).await, 2);
    let s = session(&tp, &id).await;
    assert_eq!(s["status"], "QUEUED");
    assert_eq!(s["queuePosition"], 1);
    let st = s2.gql("{ myAgentStatus { status } }", json!({})).await.ok();
    assert_eq!(st["myAgentStatus"]["status"], "AWAY");
}
