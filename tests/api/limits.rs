//! Rate limits (`TAXDESK_RATE_LIMIT`) per user and per client address, and introspection
//! off once a key is configured.

use serde_json::{Value, json};

use crate::helpers::TestApp;

const CREATE: &str = "mutation { createWorkOrder(input: {title: \"额度\", description: \"开票额度不足\", category: \"发票业务\"}) { id } }";

/// Status, `Retry-After` and body of a GraphQL POST.
async fn post(app: &TestApp, token: &str, query: &str) -> (u16, Option<String>, Value) {
    let resp = app
        .http
        .post(format!("{}/graphql", app.base))
        .bearer_auth(token)
        .header("accept", "application/graphql-response+json")
        .json(&json!({ "query": query }))
        .send()
        .await
        .expect("sent");
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, retry, resp.json().await.expect("json"))
}

fn code(b: &Value) -> &str {
    b["errors"][0]["extensions"]["code"].as_str().unwrap_or("")
}

async fn my_work_orders(app: &TestApp, sub: &str) -> i64 {
    let c = app.user("taxpayer", sub);
    c.gql("{ myWorkOrders { totalCount } }", json!({}))
        .await
        .ok()["myWorkOrders"]["totalCount"]
        .as_i64()
        .expect("count")
}

#[tokio::test]
async fn work_orders_are_limited_per_user_with_retry_after() {
    let app =
        TestApp::spawn_with(&[("TAXDESK_RATE_LIMIT", "work_order=2/1h,work_order.ip=off")]).await;
    let t = app.token("taxpayer", "rl1");
    for _ in 0..2 {
        let (status, _, b) = post(&app, &t, CREATE).await;
        assert_eq!(status, 200, "{b}");
        assert!(b.get("errors").is_none(), "{b}");
    }
    let (status, retry, b) = post(&app, &t, CREATE).await;
    assert_eq!(code(&b), "RATE_LIMITED", "{b}");
    assert_eq!(status, 429, "nothing else was done: {b}");
    let after = b["errors"][0]["extensions"]["retryAfter"]
        .as_u64()
        .expect("retryAfter");
    assert!(
        (1..=1800).contains(&after),
        "half the hour's allowance regrows in 30 min: {after}"
    );
    assert_eq!(retry, Some(after.to_string()), "Retry-After says the same");
    assert_eq!(
        my_work_orders(&app, "rl1").await,
        2,
        "the refused one was not written"
    );

    // Another taxpayer has an allowance of their own; aliases in one request count one by
    // one (the third is refused and not written).
    let other = app.token("taxpayer", "rl2");
    let three = "mutation { a: createWorkOrder(input: {title: \"a\", description: \"d\", category: \"其他\"}) { id } b: createWorkOrder(input: {title: \"b\", description: \"d\", category: \"其他\"}) { id } c: createWorkOrder(input: {title: \"c\", description: \"d\", category: \"其他\"}) { id } }";
    let (_, retry, b) = post(&app, &other, three).await;
    assert_eq!(code(&b), "RATE_LIMITED", "{b}");
    assert_eq!(b["errors"][0]["path"], json!(["c"]), "{b}");
    assert!(retry.is_some());
    assert_eq!(my_work_orders(&app, "rl2").await, 2);
}

#[tokio::test]
async fn asks_are_limited_per_address_and_a_message_to_the_bot_is_an_ask() {
    let app = TestApp::spawn_with(&[("TAXDESK_RATE_LIMIT", "ask=off,ask.ip=2/1m")]).await;
    let ask = "mutation { askBot(input: {text: \"如何开具发票\"}) { answered } }";
    for sub in ["a1", "a2"] {
        let (_, _, b) = post(&app, &app.token("taxpayer", sub), ask).await;
        assert!(b.get("errors").is_none(), "{b}");
    }
    // A third taxpayer from the same address: the address is spent.
    let (status, retry, b) = post(&app, &app.token("taxpayer", "a3"), ask).await;
    assert_eq!((status, code(&b)), (429, "RATE_LIMITED"), "{b}");
    assert!(retry.is_some());

    let app =
        TestApp::spawn_with(&[("TAXDESK_RATE_LIMIT", "ask=1/1m,ask.ip=off,message=off")]).await;
    let c = app.user("taxpayer", "b1");
    let session = c.gql("mutation { openChat { id } }", json!({})).await.ok()["openChat"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let send = "mutation($s: ID!) { sendMessage(input: {sessionId: $s, kind: TEXT, text: \"发票怎么开\"}) { id } }";
    c.gql(send, json!({ "s": session })).await.ok();
    let refused = c.gql(send, json!({ "s": session })).await;
    assert_eq!(refused.code(), Some("RATE_LIMITED"), "{:?}", refused.0);
    let messages = app
        .count(&format!(
            "SELECT id FROM chat_messages WHERE session_id = '{session}' AND sender_id = 'b1'"
        ))
        .await;
    assert_eq!(messages, 1, "the refused question was not stored");
}

#[tokio::test]
async fn refused_tokens_spend_the_address_sign_in_allowance() {
    let app = TestApp::spawn_with(&[("TAXDESK_RATE_LIMIT", "login.ip=2/1m")]).await;
    for _ in 0..2 {
        let (status, _, b) = post(&app, "not-a-token", "{ me { id } }").await;
        assert_eq!(code(&b), "UNAUTHENTICATED", "{status} {b}");
    }
    let (status, retry, b) = post(&app, "not-a-token", "{ me { id } }").await;
    assert_eq!((status, code(&b)), (429, "RATE_LIMITED"), "{b}");
    assert!(retry.is_some());
    // A valid token is not charged.
    let (_, _, b) = post(&app, &app.token("taxpayer", "ok"), "{ me { id } }").await;
    assert_eq!(b["data"]["me"]["id"], "ok", "{b}");
}

#[tokio::test]
async fn introspection_is_off_once_a_key_is_configured_unless_asked_for() {
    let schema = "{ __schema { queryType { name } } }";
    let app = TestApp::spawn().await;
    let (_, _, b) = post(&app, &app.token("taxpayer", "i1"), schema).await;
    assert_eq!(
        b["data"]["__schema"],
        Value::Null,
        "a configured key means production: {b}"
    );

    let app = TestApp::spawn_with(&[("TAXDESK_INTROSPECTION", "on")]).await;
    let (_, _, b) = post(&app, &app.token("taxpayer", "i1"), schema).await;
    assert_eq!(b["data"]["__schema"]["queryType"]["name"], "Query", "{b}");
}
