//! Live chat end to end: hand-over, queue positions pushed live, routing, messages, history
//! pages, end and rating, idempotent resends, and who may listen.

use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::helpers::{Client, TestApp};
use crate::notifications::{Ws, next_json, ws_connect};

const SESSION: &str = "id status version queuePosition estimatedWaitSeconds skillGroup
    agent { id } rating { resolved satisfaction comment } allowedActions
    history { event fromStatus toStatus }";

pub async fn open(c: &Client) -> Value {
    let q = format!("mutation {{ openChat {{ {SESSION} }} }}");
    c.gql(&q, json!({})).await.ok()["openChat"].clone()
}

pub async fn send(
    c: &Client,
    session: &str,
    kind: &str,
    text: &str,
    cmid: Option<&str>,
) -> crate::helpers::Gql {
    c.gql(
        "mutation($input: SendMessageInput!) { sendMessage(input: $input) { id seq kind text senderRole clientMessageId } }",
        json!({"input": {"sessionId": session, "kind": kind, "text": text, "clientMessageId": cmid}}),
    )
    .await
}

pub async fn session(c: &Client, id: &str) -> Value {
    let q = format!("query($id: ID!) {{ chatSession(id: $id) {{ {SESSION} }} }}");
    c.gql(&q, json!({"id": id})).await.ok()["chatSession"].clone()
}

/// The session once it has `status`: routing runs after the request that queued the
/// session (or freed an agent) has answered.
pub async fn until_status(c: &Client, id: &str, status: &str) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let s = session(c, id).await;
        if s["status"] == status {
            return s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "session {id} not {status}: {s}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

pub async fn subscribe(app: &TestApp, who: (&str, &str), session: &str) -> Ws {
    let mut ws = ws_connect(app).await;
    let token = app.token(who.0, who.1);
    let init =
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}});
    ws.send(WsMessage::Text(init.to_string().into()))
        .await
        .unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "connection_ack");
    let sub = json!({"id": "c", "type": "subscribe", "payload": {
        "query": "subscription($id: ID!) { chatEvents(sessionId: $id) { kind queuePosition estimatedWaitSeconds message { seq text senderRole } session { status agent { id } } } }",
        "variables": {"id": session}}});
    ws.send(WsMessage::Text(sub.to_string().into()))
        .await
        .unwrap();
    // Let the server register the subscription before anything is published.
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    ws
}

/// The next chat event of `kind`, skipping others.
pub async fn next_event(ws: &mut Ws, kind: &str) -> Value {
    for _ in 0..50 {
        let m = next_json(ws).await;
        assert_ne!(m["type"], "error", "{m}");
        let e = &m["payload"]["data"]["chatEvents"];
        if e["kind"] == kind {
            return e.clone();
        }
    }
    panic!("no {kind} event");
}

pub async fn online(c: &Client, max: i32) {
    c.gql(
        "mutation($m: Int) { setAgentStatus(input: {status: ONLINE, maxConcurrent: $m}) { status } }",
        json!({"m": max}),
    )
    .await
    .ok();
}

#[tokio::test]
async fn a_taxpayer_is_handed_over_served_and_rates_the_chat() {
    let app = TestApp::spawn_with(&[("TAXDESK_CALENDAR", "always")]).await;
    let tp = app.user("taxpayer", "tp1");
    let tp2 = app.user("taxpayer", "tp2");
    let agent = app.user("staff", "s1");

    let s = open(&tp).await;
    let id = s["id"].as_str().unwrap().to_string();
    assert_eq!(s["status"], "BOT");
    assert_eq!(s["allowedActions"], json!(["ASK", "REQUEST_HUMAN", "END"]));
    assert_eq!(
        open(&tp).await["id"],
        id.as_str(),
        "one open session per taxpayer"
    );

    // Nobody at work: a request for a human is refused, and the bot says why.
    send(&tp, &id, "TEXT", "转人工", None).await.ok();
    let r = tp
        .gql(
            "mutation($id: ID!) { requestHuman(input: {sessionId: $id}) { status } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(r.code(), Some("NO_AGENT"));

    // The agent is at work but away: the taxpayer queues at place 1.
    agent
        .gql(
            "mutation { setAgentStatus(input: {status: AWAY, maxConcurrent: 1}) { status } }",
            json!({}),
        )
        .await
        .ok();
    let mut ws1 = subscribe(&app, ("taxpayer", "tp1"), &id).await;
    send(&tp, &id, "TEXT", "我要转人工", None).await.ok();
    let s = session(&tp, &id).await;
    assert_eq!(s["status"], "QUEUED");
    assert_eq!(s["queuePosition"], 1);
    assert!(s["estimatedWaitSeconds"].as_i64().unwrap() > 0);
    assert_eq!(
        next_event(&mut ws1, "QUEUE_POSITION").await["queuePosition"],
        1
    );

    // A second taxpayer queues behind, and watches their place.
    let s2 = open(&tp2).await;
    let id2 = s2["id"].as_str().unwrap().to_string();
    let mut ws2 = subscribe(&app, ("taxpayer", "tp2"), &id2).await;
    let q2 = tp2
        .gql(
            "mutation($id: ID!) { requestHuman(input: {sessionId: $id}) { status queuePosition } }",
            json!({"id": id2}),
        )
        .await
        .ok();
    assert_eq!(
        q2["requestHuman"],
        json!({"status": "QUEUED", "queuePosition": 2})
    );
    assert_eq!(
        next_event(&mut ws2, "QUEUE_POSITION").await["queuePosition"],
        2
    );
    let waiting = agent.gql("{ waitingQueue { id } }", json!({})).await.ok();
    assert_eq!(waiting["waitingQueue"].as_array().unwrap().len(), 2);

    // The agent comes online: the first in line is theirs, the second moves up, live.
    online(&agent, 1).await;
    let status = next_event(&mut ws1, "STATUS").await;
    assert_eq!(status["session"]["status"], "ACTIVE");
    assert_eq!(status["session"]["agent"]["id"], "s1");
    assert_eq!(
        next_event(&mut ws2, "QUEUE_POSITION").await["queuePosition"],
        1
    );
    let mine = agent.gql("{ myActiveChats { id } }", json!({})).await.ok();
    assert_eq!(mine["myActiveChats"][0]["id"], id.as_str());

    // They talk; both see every message, in order.
    let mut ws_agent = subscribe(&app, ("staff", "s1"), &id).await;
    send(&tp, &id, "TEXT", "发票额度不够用了", None).await.ok();
    send(&tp, &id, "EMOJI", "🙏", None).await.ok();
    send(&agent, &id, "TEXT", "您好，我来帮您查一下", None)
        .await
        .ok();
    let seen: Vec<String> = {
        let mut v = vec![];
        while v.len() < 3 {
            let e = next_event(&mut ws_agent, "MESSAGE").await;
            if e["message"]["senderRole"] != "SYSTEM" {
                v.push(e["message"]["text"].as_str().unwrap().to_string());
            }
        }
        v
    };
    assert_eq!(seen, ["发票额度不够用了", "🙏", "您好，我来帮您查一下"]);

    // An image from the taxpayer and a PDF from the agent, uploaded into the session.
    let tp_token = tp.token.clone().unwrap();
    let agent_token = agent.token.clone().unwrap();
    let (_, img) = crate::attachments::upload(
        &app,
        Some(&tp_token),
        "截图.png",
        &crate::attachments::png(64),
        Some(&id),
    )
    .await;
    let img_id = img["data"]["uploadAttachment"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, doc) = crate::attachments::upload(
        &app,
        Some(&agent_token),
        "办理指南.pdf",
        &crate::attachments::pdf(),
        Some(&id),
    )
    .await;
    let doc_id = doc["data"]["uploadAttachment"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let q = "mutation($input: SendMessageInput!) { sendMessage(input: $input) { kind attachment { fileName contentType url } } }";
    let m = tp
        .gql(
            q,
            json!({"input": {"sessionId": id, "kind": "IMAGE", "attachmentId": img_id}}),
        )
        .await
        .ok();
    assert_eq!(m["sendMessage"]["attachment"]["contentType"], "image/png");
    let m = agent
        .gql(
            q,
            json!({"input": {"sessionId": id, "kind": "FILE", "attachmentId": doc_id}}),
        )
        .await
        .ok();
    assert_eq!(m["sendMessage"]["attachment"]["fileName"], "办理指南.pdf");
    // A PDF is not an image; someone else's upload cannot be sent.
    let wrong = tp
        .gql(
            q,
            json!({"input": {"sessionId": id, "kind": "IMAGE", "attachmentId": doc_id}}),
        )
        .await;
    assert_eq!(wrong.code(), Some("INVALID_INPUT"));
    let url = m["sendMessage"]["attachment"]["url"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _, bytes) = crate::attachments::download(&app, &url, Some(&tp_token)).await;
    assert_eq!(
        (status.as_u16(), bytes),
        (200, crate::attachments::pdf()),
        "participants download"
    );
    let stranger = app.token("taxpayer", "tp2");
    assert_eq!(
        crate::attachments::download(&app, &url, Some(&stranger))
            .await
            .0
            .as_u16(),
        404
    );

    // A resend with the same client id gives the same message back.
    let first = send(&tp, &id, "TEXT", "再问一句", Some("c-1")).await.ok();
    let again = send(&tp, &id, "TEXT", "再问一句", Some("c-1")).await.ok();
    assert_eq!(first["sendMessage"]["id"], again["sendMessage"]["id"]);
    assert_eq!(
        app.count("SELECT id FROM chat_messages WHERE client_message_id = 'c-1'")
            .await,
        1
    );

    // History in pages of 20, newest last, each message once.
    for i in 0..40 {
        send(
            if i % 2 == 0 { &tp } else { &agent },
            &id,
            "TEXT",
            &format!("第{i}条"),
            None,
        )
        .await
        .ok();
    }
    let total = app
        .count(&format!(
            "SELECT id FROM chat_messages WHERE session_id = '{id}'"
        ))
        .await;
    let mut seqs: Vec<i64> = vec![];
    let mut before = Value::Null;
    loop {
        let p = tp
            .gql(
                "query($id: ID!, $before: String) { messages(sessionId: $id, last: 20, before: $before) { pageInfo { hasPreviousPage startCursor } edges { cursor node { seq } } } }",
                json!({"id": id, "before": before}),
            )
            .await
            .ok();
        let page = &p["messages"];
        let mut got: Vec<i64> = page["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["seq"].as_i64().unwrap())
            .collect();
        assert!(got.len() <= 20);
        assert!(got.windows(2).all(|w| w[0] < w[1]), "newest last");
        got.extend(seqs);
        seqs = got;
        if !page["pageInfo"]["hasPreviousPage"].as_bool().unwrap() {
            break;
        }
        before = page["pageInfo"]["startCursor"].clone();
    }
    assert_eq!(seqs.len() as i64, total);
    assert_eq!(seqs, (1..=total).collect::<Vec<_>>());

    // The agent ends; the taxpayer rates once; the rating shows.
    let ended = agent
        .gql(
            "mutation($id: ID!) { endChat(sessionId: $id) { status } }",
            json!({"id": id}),
        )
        .await
        .ok();
    assert_eq!(ended["endChat"]["status"], "ENDED");
    let rated = tp
        .gql(
            "mutation($id: ID!) { rateChat(input: {sessionId: $id, resolved: true, satisfaction: 5, comment: \"很耐心\"}) { rating { resolved satisfaction comment } allowedActions } }",
            json!({"id": id}),
        )
        .await
        .ok();
    assert_eq!(
        rated["rateChat"]["rating"],
        json!({"resolved": true, "satisfaction": 5, "comment": "很耐心"})
    );
    assert_eq!(rated["rateChat"]["allowedActions"], json!([]));
    let twice = tp.gql("mutation($id: ID!) { rateChat(input: {sessionId: $id, resolved: true, satisfaction: 4}) { id } }", json!({"id": id})).await;
    assert_eq!(twice.code(), Some("ALREADY_RATED"));
    // The freed agent takes the next in line.
    until_status(&tp2, &id2, "ACTIVE").await;
    let done = session(&tp, &id).await;
    let events: Vec<&str> = done["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["OPEN", "REQUEST_HUMAN", "ASSIGN", "END", "RATE"]);
    // A new chat can be opened now.
    assert_ne!(open(&tp).await["id"], id.as_str());
}

#[tokio::test]
async fn off_hours_and_strangers() {
    let app = TestApp::spawn_with(&[("TAXDESK_CALENDAR", "never")]).await;
    let tp = app.user("taxpayer", "tp1");
    let agent = app.user("staff", "s1");
    online(&agent, 3).await;
    let id = open(&tp).await["id"].as_str().unwrap().to_string();
    let r = tp
        .gql(
            "mutation($id: ID!) { requestHuman(input: {sessionId: $id}) { status } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(r.code(), Some("OFF_HOURS"));
    assert!(
        r.0["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("留言")
    );
    let hours = tp
        .gql("{ serviceHours { openNow nextOpenAt } }", json!({}))
        .await
        .ok();
    assert_eq!(hours["serviceHours"]["openNow"], false);

    // Another taxpayer can neither read nor listen to the session.
    let other = app.user("taxpayer", "tp3");
    let seen = other
        .gql(
            "query($id: ID!) { chatSession(id: $id) { id } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(seen.code(), Some("NOT_FOUND"));
    let sent = send(&other, &id, "TEXT", "偷看", None).await;
    assert_eq!(sent.code(), Some("NOT_FOUND"));
    let mut ws = ws_connect(&app).await;
    let token = app.token("taxpayer", "tp3");
    ws.send(WsMessage::Text(
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "connection_ack");
    let sub = json!({"id": "x", "type": "subscribe", "payload": {"query": "subscription($id: ID!) { chatEvents(sessionId: $id) { kind } }", "variables": {"id": id}}});
    ws.send(WsMessage::Text(sub.to_string().into()))
        .await
        .unwrap();
    let refused = next_json(&mut ws).await;
    assert!(
        matches!(refused["type"].as_str(), Some("error") | Some("next")),
        "{refused}"
    );
    let code = refused["payload"]["errors"][0]["extensions"]["code"]
        .as_str()
        .or(refused["payload"][0]["extensions"]["code"].as_str());
    assert_eq!(code, Some("NOT_FOUND"), "{refused}");
}

#[tokio::test]
async fn agents_pick_transfer_see_typing_and_read_marks() {
    let app = TestApp::spawn_with(&[("TAXDESK_CALENDAR", "always")]).await;
    let tp = app.user("taxpayer", "tp1");
    let s1 = app.user("staff", "s1");
    let s2 = app.user("staff", "s2");
    for s in [&s1, &s2] {
        s.gql(
            "mutation { setAgentStatus(input: {status: AWAY, maxConcurrent: 2}) { status } }",
            json!({}),
        )
        .await
        .ok();
    }
    // Two tabs open at once: still one session.
    let (a, b) = tokio::join!(open(&tp), open(&tp));
    assert_eq!(a["id"], b["id"]);
    let id = a["id"].as_str().unwrap().to_string();
    tp.gql("mutation($id: ID!) { requestHuman(input: {sessionId: $id, skillGroup: \"个人所得税\"}) { status skillGroup } }", json!({"id": id}))
        .await
        .ok();
    let bad = tp.gql("mutation($id: ID!) { requestHuman(input: {sessionId: $id, skillGroup: \"火星\"}) { status } }", json!({"id": id})).await;
    assert_eq!(bad.code(), Some("INVALID_INPUT"));

    // s1 picks it from the queue; a taxpayer cannot.
    assert_eq!(
        tp.gql(
            "mutation($id: ID!) { acceptChat(sessionId: $id) { id } }",
            json!({"id": id})
        )
        .await
        .code(),
        Some("FORBIDDEN")
    );
    let picked = s1
        .gql(
            "mutation($id: ID!) { acceptChat(sessionId: $id) { status agent { id } } }",
            json!({"id": id}),
        )
        .await
        .ok();
    assert_eq!(
        picked["acceptChat"],
        json!({"status": "ACTIVE", "agent": {"id": "s1"}})
    );
    let again = s2
        .gql(
            "mutation($id: ID!) { acceptChat(sessionId: $id) { id } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(again.code(), Some("INVALID_TRANSITION"));

    // Typing and read marks reach the other side only.
    let mut tp_ws = subscribe(&app, ("taxpayer", "tp1"), &id).await;
    s1.gql(
        "mutation($id: ID!) { sendTyping(sessionId: $id) }",
        json!({"id": id}),
    )
    .await
    .ok();
    next_event(&mut tp_ws, "TYPING").await;
    let m = send(&s1, &id, "TEXT", "请稍等", None).await.ok();
    let seq = m["sendMessage"]["seq"].as_i64().unwrap();
    tp.gql(
        "mutation($id: ID!, $seq: Int!) { markMessagesRead(input: {sessionId: $id, seq: $seq}) }",
        json!({"id": id, "seq": seq}),
    )
    .await
    .ok();
    let reads = s1
        .gql(
            "query($id: ID!) { chatSession(id: $id) { reads { userId seq } } }",
            json!({"id": id}),
        )
        .await
        .ok();
    assert_eq!(
        reads["chatSession"]["reads"],
        json!([{"userId": "tp1", "seq": seq}])
    );

    // Transfer to an agent who is away: refused. Online: the chat moves, history says so.
    let to = |agent: &str| json!({"input": {"sessionId": id, "toAgentId": agent}});
    let q = "mutation($input: TransferChatInput!) { transferChat(input: $input) { status agent { id } } }";
    assert_eq!(s1.gql(q, to("s2")).await.code(), Some("INVALID_TRANSITION"));
    s2.gql(
        "mutation { setAgentStatus(input: {status: ONLINE}) { status } }",
        json!({}),
    )
    .await
    .ok();
    let moved = s1.gql(q, to("s2")).await.ok();
    assert_eq!(
        moved["transferChat"],
        json!({"status": "ACTIVE", "agent": {"id": "s2"}})
    );
    // s1 is no longer part of it.
    assert_eq!(
        send(&s1, &id, "TEXT", "还在吗", None).await.code(),
        Some("INVALID_TRANSITION")
    );
    // Back to a group's queue: s2 (online, serving every group) gets it again at once.
    let q = "mutation($input: TransferChatInput!) { transferChat(input: $input) { status } }";
    let both = s2
        .gql(
            q,
            json!({"input": {"sessionId": id, "toAgentId": "s1", "toSkillGroup": "其他"}}),
        )
        .await;
    assert_eq!(both.code(), Some("INVALID_INPUT"));
    s2.gql(
        q,
        json!({"input": {"sessionId": id, "toSkillGroup": "其他"}}),
    )
    .await
    .ok();
    let s = session(&tp, &id).await;
    assert_eq!(s["skillGroup"], "其他");
    let events: Vec<&str> = s["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        &events[..5],
        ["OPEN", "REQUEST_HUMAN", "ASSIGN", "TRANSFER", "TRANSFER"]
    );
}
