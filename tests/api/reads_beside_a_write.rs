//! Reads do not queue behind a write: while a writing transaction is held open on the
//! database (on SQLite, its one writer), `/healthz`, chat history, lists and the knowledge
//! base still answer, with what was committed before it.

use sea_orm::{ConnectionTrait, TransactionTrait};
use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_answer_while_a_write_is_held_open() {
    let app = TestApp::spawn().await;
    let tp = app.user("taxpayer", "tp1");
    let session = crate::chat::open(&tp).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    crate::chat::send(&tp, &session, "TEXT", "什么是数电发票？", None)
        .await
        .ok();
    let order = crate::work_orders::create(&tp, "额度不足").await["id"]
        .as_str()
        .unwrap()
        .to_string();

    let held = app.db().begin().await.expect("a write transaction");
    held.execute_unprepared(&format!(
        "UPDATE work_orders SET title = 'not committed' WHERE id = '{order}'"
    ))
    .await
    .expect("the write takes the lock");

    let health = app
        .http
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .expect("healthz answers");
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.json::<serde_json::Value>().await.unwrap()["database"],
        "ok"
    );
    let seen = tp
        .gql(
            "query($s: ID!) {
                messages(sessionId: $s, last: 10) { edges { node { senderRole faq { id } } } }
                myWorkOrders { totalCount edges { node { title } } }
                faq(id: \"kb-0001\") { id }
                hotQuestions(first: 3) { id }
                qaPackages { id }
            }",
            json!({"s": session}),
        )
        .await
        .ok();
    let history = seen["messages"]["edges"].as_array().unwrap();
    assert_eq!(
        history.last().unwrap()["node"],
        json!({"senderRole": "BOT", "faq": {"id": "kb-0001"}})
    );
    assert_eq!(
        seen["myWorkOrders"]["edges"][0]["node"]["title"], "额度不足",
        "the committed state, not the open write"
    );
    assert_eq!(seen["faq"]["id"], "kb-0001");
    assert_eq!(seen["hotQuestions"].as_array().unwrap().len(), 3);
    assert!(!seen["qaPackages"].as_array().unwrap().is_empty());
    held.rollback().await.unwrap();
}
