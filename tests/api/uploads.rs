//! Uploads cost nothing before the bearer is known, stream to disk within their limit, are
//! sniffed from their first bytes, and are bounded in number per user and in all.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::attachments::{BOUNDARY, UPLOAD, exe, form, png};
use crate::helpers::TestApp;

/// The start of an upload of `declared_len` bytes whose file part begins with `first`:
/// the request head, `operations`, `map` and the file part's head, then `first`.
fn upload_start(token: Option<&str>, declared_len: usize, first: &[u8]) -> Vec<u8> {
    let operations = json!({"query": UPLOAD, "variables": {"file": null}}).to_string();
    let map = json!({"0": ["variables.file"]}).to_string();
    let mut body = form(&[
        ("operations", None, operations.as_bytes()),
        ("map", None, map.as_bytes()),
    ]);
    // `form` closes the body; reopen it for the file part.
    body.truncate(body.len() - format!("--{BOUNDARY}--\r\n").len());
    body.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"0\"; filename=\"big.png\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(first);
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let mut req = format!(
        "POST /graphql HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {declared_len}\r\n\r\n"
    )
    .into_bytes();
    req.extend_from_slice(&body);
    req
}

/// Sends `bytes` and keeps the connection open without sending the rest; returns the
/// status and JSON body of the answer, or `None` if none came while the body was unsent.
async fn answer_before_the_rest(app: &TestApp, bytes: &[u8]) -> Option<(u16, Value)> {
    let addr = app.base.trim_start_matches("http://");
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(bytes).await.expect("write");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let read = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut chunk)).await;
        match read {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Err(_) if buf.is_empty() => return None,
            Err(_) => break,
        }
        let text = String::from_utf8_lossy(&buf);
        if let Some((head, body)) = text.split_once("\r\n\r\n")
            && let Some(len) = head.lines().find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length: ")
                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
            })
            && body.len() >= len
        {
            let status = head
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            return Some((
                status,
                serde_json::from_str(&body[..len]).unwrap_or(Value::Null),
            ));
        }
    }
    None
}

fn code(v: &Value) -> &str {
    v["errors"][0]["extensions"]["code"].as_str().unwrap_or("")
}

fn incoming_files(app: &TestApp) -> Vec<u64> {
    std::fs::read_dir(app.data_dir.join("attachments").join(".incoming"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.metadata().ok().map(|m| m.len()))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn an_anonymous_upload_is_refused_before_its_body_is_read() {
    let app = TestApp::spawn().await;
    // 20 MiB announced, a few bytes sent: the answer must not wait for the rest.
    let start = upload_start(None, 20 * 1024 * 1024, &png(16));
    let (status, body) = answer_before_the_rest(&app, &start)
        .await
        .expect("answered without the body");
    assert_eq!((status, code(&body)), (401, "UNAUTHENTICATED"), "{body}");
    let forged = upload_start(Some("not-a-token"), 20 * 1024 * 1024, &png(16));
    let (status, body) = answer_before_the_rest(&app, &forged)
        .await
        .expect("answered");
    assert_eq!((status, code(&body)), (401, "UNAUTHENTICATED"), "{body}");
    assert!(incoming_files(&app).is_empty());
}

#[tokio::test]
async fn an_upload_declared_over_the_limit_is_refused_at_once() {
    let app = TestApp::spawn_with(&[("TAXDESK_ATTACHMENT_LIMIT", "1024")]).await;
    let tp1 = app.token("taxpayer", "tp1");
    let start = upload_start(Some(&tp1), 64 * 1024 * 1024, &png(16));
    let (status, body) = answer_before_the_rest(&app, &start)
        .await
        .expect("answered");
    assert_eq!((status, code(&body)), (413, "PAYLOAD_TOO_LARGE"), "{body}");
}

#[tokio::test]
async fn uploads_stream_to_disk_and_executables_are_refused_from_their_first_bytes() {
    let app = TestApp::spawn().await;
    let tp1 = app.token("taxpayer", "tp1");
    // Half an image sent: it is already on disk, not in memory.
    let mut half = png(200 * 1024);
    half.truncate(150 * 1024);
    let start = upload_start(Some(&tp1), 4 * 1024 * 1024, &half);
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut tcp = TcpStream::connect(&addr).await.expect("connect");
    tcp.write_all(&start).await.expect("write");
    let mut on_disk = 0;
    for _ in 0..200 {
        on_disk = incoming_files(&app).into_iter().max().unwrap_or(0);
        if on_disk >= 100 * 1024 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(on_disk >= 100 * 1024, "{on_disk} bytes received on disk");
    drop(tcp);

    // A program sent as a picture: refused once its first 64 KiB have come, the rest unsent.
    let mut program = exe();
    program.resize(80 * 1024, 0);
    let start = upload_start(Some(&tp1), 8 * 1024 * 1024, &program);
    let (status, body) = answer_before_the_rest(&app, &start)
        .await
        .expect("answered");
    assert_eq!(
        (status, code(&body)),
        (200, "UNSUPPORTED_MEDIA_TYPE"),
        "{body}"
    );
    // Nothing stored, and the partial files are gone.
    for _ in 0..200 {
        if incoming_files(&app).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        incoming_files(&app).is_empty(),
        "{:?}",
        incoming_files(&app)
    );
    assert_eq!(app.count("SELECT id FROM attachments").await, 0);
}

#[tokio::test]
async fn uploads_in_flight_are_bounded_per_user_and_in_all() {
    let app =
        TestApp::spawn_with(&[("TAXDESK_UPLOADS_PER_USER", "1"), ("TAXDESK_UPLOADS", "2")]).await;
    let (tp1, tp2, tp3) = (
        app.token("taxpayer", "tp1"),
        app.token("taxpayer", "tp2"),
        app.token("taxpayer", "tp3"),
    );
    let addr = app.base.trim_start_matches("http://").to_string();
    // tp1's first upload stays in flight.
    let mut first = TcpStream::connect(&addr).await.expect("connect");
    first
        .write_all(&upload_start(Some(&tp1), 1024 * 1024, &png(16)))
        .await
        .expect("write");
    for _ in 0..200 {
        if !incoming_files(&app).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (status, body) =
        answer_before_the_rest(&app, &upload_start(Some(&tp1), 1024 * 1024, &png(16)))
            .await
            .expect("answered");
    assert_eq!((status, code(&body)), (429, "RATE_LIMITED"), "{body}");
    // Another user still gets a place, and fills the server's two.
    let mut second = TcpStream::connect(&addr).await.expect("connect");
    second
        .write_all(&upload_start(Some(&tp2), 1024 * 1024, &png(16)))
        .await
        .expect("write");
    for _ in 0..200 {
        if incoming_files(&app).len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (status, body) =
        answer_before_the_rest(&app, &upload_start(Some(&tp3), 1024 * 1024, &png(16)))
            .await
            .expect("answered");
    assert_eq!((status, code(&body)), (429, "RATE_LIMITED"), "{body}");
    // Places come back when uploads end.
    drop(first);
    drop(second);
    let mut done = false;
    for _ in 0..200 {
        let (s, v) = crate::attachments::upload(&app, Some(&tp1), "a.png", &png(8), None).await;
        if s.as_u16() == 200 && v["data"]["uploadAttachment"]["id"].is_string() {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(done, "tp1 uploads again once the first upload ended");
}
