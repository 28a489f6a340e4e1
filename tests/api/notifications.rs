//! 我的消息: reading, marking read, and the `notifications` subscription.

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

use crate::helpers::TestApp;
use crate::work_orders::create;

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn ws_connect(app: &TestApp) -> Ws {
    let mut req = app.ws_url.as_str().into_client_request().unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (ws, resp) = tokio_tungstenite::connect_async(req)
        .await
        .expect("ws connects");
    assert_eq!(
        resp.headers()
            .get("sec-websocket-protocol")
            .map(|v| v.to_str().unwrap()),
        Some("graphql-transport-ws")
    );
    ws
}

pub async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let m = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .expect("a message within 10 s")
            .expect("stream open")
            .expect("no ws error");
        match m {
            Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
            Message::Close(f) => panic!("closed: {f:?}"),
            _ => continue,
        }
    }
}

pub async fn close_code(ws: &mut Ws) -> u16 {
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(15), ws.next())
            .await
            .expect("closes in time")
        {
            Some(Ok(Message::Close(Some(f)))) => return f.code.into(),
            Some(Ok(Message::Close(None))) | None => return 1005,
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("ws error {e}"),
        }
    }
}

#[tokio::test]
async fn notifications_are_listed_marked_read_and_pushed() {
    let app = TestApp::spawn().await;
    let tp = app.user("taxpayer", "tp1");
    let staff = app.user("staff", "s1");
    staff.gql("{ me { id } }", json!({})).await.ok();

    // The taxpayer subscribes before anything happens.
    let mut ws = ws_connect(&app).await;
    let init = json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {}", app.token("taxpayer", "tp1"))}});
    ws.send(Message::Text(init.to_string().into()))
        .await
        .unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "connection_ack");
    let sub = json!({"id": "n1", "type": "subscribe", "payload": {"query": "subscription { notifications { kind title targetId read } }"}});
    ws.send(Message::Text(sub.to_string().into()))
        .await
        .unwrap();

    let id = create(&tp, "推送").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    staff
        .gql(
            "mutation($id: ID!) { dispatchWorkOrder(input: {id: $id, handlerId: \"s1\"}) { id } }",
            json!({"id": id}),
        )
        .await
        .ok();
    staff
        .gql(
            "mutation($id: ID!) { acceptWorkOrder(id: $id) { id } }",
            json!({"id": id}),
        )
        .await
        .ok();
    staff
        .gql("mutation($id: ID!) { addWorkOrderProgress(input: {id: $id, note: \"正在核实\"}) { id } }", json!({"id": id}))
        .await
        .ok();

    let pushed = next_json(&mut ws).await;
    assert_eq!(pushed["type"], "next");
    assert_eq!(pushed["id"], "n1");
    let n = &pushed["payload"]["data"]["notifications"];
    assert_eq!(n["kind"], "WORK_ORDER_PROGRESS");
    assert_eq!(n["targetId"], id.as_str());
    assert_eq!(n["read"], false);

    let list = tp
        .gql("{ myNotifications { edges { node { id read body } } } unreadCounts { notifications } }", json!({}))
        .await
        .ok();
    assert_eq!(list["unreadCounts"]["notifications"], 1);
    let nid = list["myNotifications"]["edges"][0]["node"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        list["myNotifications"]["edges"][0]["node"]["body"]
            .as_str()
            .unwrap()
            .contains("正在核实")
    );

    // Someone else's id is ignored; one's own is marked.
    let other = app.user("taxpayer", "tp2");
    let r = other
        .gql(
            "mutation($ids: [ID!]!) { markNotificationsRead(ids: $ids) { id } }",
            json!({"ids": [nid]}),
        )
        .await
        .ok();
    assert_eq!(r["markNotificationsRead"], json!([]));
    let r = tp
        .gql(
            "mutation($ids: [ID!]!) { markNotificationsRead(ids: $ids) { id read readAt } }",
            json!({"ids": [nid]}),
        )
        .await
        .ok();
    assert_eq!(r["markNotificationsRead"][0]["read"], true);
    let counts = tp.gql("{ unreadCounts { notifications todos leaveMessageReplies } myNotifications(unreadOnly: true) { totalCount } }", json!({})).await.ok();
    assert_eq!(
        counts["unreadCounts"],
        json!({"notifications": 0, "todos": 0, "leaveMessageReplies": 0})
    );
    assert_eq!(counts["myNotifications"]["totalCount"], 0);
}

#[tokio::test]
async fn websocket_refuses_without_a_token_and_before_the_ack() {
    let app = TestApp::spawn().await;
    let mut ws = ws_connect(&app).await;
    ws.send(Message::Text(
        json!({"type": "connection_init", "payload": {}})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    assert_eq!(close_code(&mut ws).await, 4403);

    let mut ws = ws_connect(&app).await;
    let init =
        json!({"type": "connection_init", "payload": {"Authorization": "Bearer not-a-token"}});
    ws.send(Message::Text(init.to_string().into()))
        .await
        .unwrap();
    assert_eq!(close_code(&mut ws).await, 4403);

    let mut ws = ws_connect(&app).await;
    let sub = json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription { notifications { id } }"}});
    ws.send(Message::Text(sub.to_string().into()))
        .await
        .unwrap();
    assert_eq!(close_code(&mut ws).await, 4401);
}
