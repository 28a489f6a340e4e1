//! Attachments end to end: uploads by the GraphQL multipart request spec, sniffed types,
//! the size limit, and downloads only for those who may see them.

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::helpers::TestApp;

pub(crate) const BOUNDARY: &str = "----taxdesk-test-boundary-7MA4YWxkTrZu0gW";

pub(crate) const UPLOAD: &str = "mutation Upload($file: Upload!, $sessionId: ID) {
  uploadAttachment(file: $file, sessionId: $sessionId) { id fileName contentType size url }
}";

pub(crate) fn png(padding: usize) -> Vec<u8> {
    let mut b =
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89".to_vec();
    b.extend(std::iter::repeat_n(0u8, padding));
    b.extend_from_slice(b"\0\0\0\0IEND\xaeB`\x82");
    b
}

pub(crate) fn pdf() -> Vec<u8> {
    b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n".to_vec()
}

pub(crate) fn exe() -> Vec<u8> {
    let mut b = vec![0u8; 512];
    b[..2].copy_from_slice(b"MZ");
    b[0x3C] = 0x80;
    b[0x80..0x84].copy_from_slice(b"PE\0\0");
    b
}

/// A `multipart/form-data` body: the given parts in order; a part with a file name is a file.
pub(crate) fn form(parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, file_name, data) in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match file_name {
            Some(f) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\n\
                     Content-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn post_form(app: &TestApp, token: Option<&str>, body: Vec<u8>) -> (StatusCode, Value) {
    let mut req = app
        .http
        .post(format!("{}/graphql", app.base))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("request sent");
    let status = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let text = resp.text().await.unwrap();
    assert!(ct.starts_with("application/json"), "{status} {ct}: {text}");
    let v = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, v)
}

/// Uploads one file as the spec says: `operations`, `map`, then the file.
pub(crate) async fn upload(
    app: &TestApp,
    token: Option<&str>,
    file_name: &str,
    bytes: &[u8],
    session_id: Option<&str>,
) -> (StatusCode, Value) {
    let operations =
        json!({"query": UPLOAD, "variables": {"file": null, "sessionId": session_id}}).to_string();
    let map = json!({"0": ["variables.file"]}).to_string();
    let body = form(&[
        ("operations", None, operations.as_bytes()),
        ("map", None, map.as_bytes()),
        ("0", Some(file_name), bytes),
    ]);
    post_form(app, token, body).await
}

fn code(v: &Value) -> &str {
    v["errors"][0]["extensions"]["code"].as_str().unwrap_or("")
}

fn uploaded(v: &Value) -> &Value {
    assert!(v.get("errors").is_none(), "unexpected errors: {v}");
    &v["data"]["uploadAttachment"]
}

pub(crate) async fn download(
    app: &TestApp,
    url: &str,
    token: Option<&str>,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut req = app.http.get(format!("{}{url}", app.base));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("request sent");
    (
        resp.status(),
        resp.headers().clone(),
        resp.bytes().await.unwrap().to_vec(),
    )
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

fn json_code(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(body)));
    code(&v).to_string()
}

/// The stored blobs under `DATA_DIR/attachments/`.
fn blobs(app: &TestApp) -> Vec<std::path::PathBuf> {
    let root = app.data_dir.join("attachments");
    let Ok(dirs) = std::fs::read_dir(&root) else {
        return Vec::new();
    };
    dirs.flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|f| f.unwrap().path())
        .collect()
}

#[tokio::test]
async fn uploads_are_downloaded_by_their_uploader_and_no_one_else() {
    let app = TestApp::spawn().await;
    let tp1 = app.token("taxpayer", "tp1");
    let tp2 = app.token("taxpayer", "tp2");
    let staff = app.token("staff", "s1");
    let admin = app.token("admin", "boss");

    // An image, named with a path a browser would never send, is kept under its own name.
    let image = png(64);
    let (s, v) = upload(&app, Some(&tp1), "../../回单截图.PNG", &image, None).await;
    assert_eq!(s, StatusCode::OK);
    let a = uploaded(&v).clone();
    let id = a["id"].as_str().unwrap();
    assert_eq!(a["fileName"], "回单截图.png");
    assert_eq!(a["contentType"], "image/png");
    assert_eq!(a["size"], image.len());
    // A link signed for the uploader (see `signed_links_*` below).
    let signed = a["url"].as_str().unwrap().to_string();
    assert!(
        signed.starts_with(&format!("/attachments/{id}?user=tp1&exp=")),
        "{signed}"
    );
    let bare = format!("/attachments/{id}");
    let url = bare.as_str();

    let (s, h, body) = download(&app, url, Some(&tp1)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body, image);
    assert_eq!(header(&h, "content-type"), "image/png");
    assert_eq!(header(&h, "x-content-type-options"), "nosniff");
    assert_eq!(
        header(&h, "content-disposition"),
        "inline; filename*=UTF-8''%E5%9B%9E%E5%8D%95%E6%88%AA%E5%9B%BE.png"
    );
    assert_eq!(header(&h, "content-length"), image.len().to_string());

    // <img src> cannot send a header: the signed link says who asks.
    let (s, _, body) = download(&app, &signed, None).await;
    assert_eq!((s, body == image), (StatusCode::OK, true));

    // A revisit with the ETag costs nothing.
    let etag = header(&h, "etag").to_string();
    let r = app
        .http
        .get(format!("{}{url}", app.base))
        .bearer_auth(&tp1)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);

    // Anyone else: as if it did not exist. Admins may look.
    for other in [&tp2, &staff] {
        let (s, h, body) = download(&app, url, Some(other)).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert!(header(&h, "content-type").starts_with("application/json"));
        assert_eq!(json_code(&body), "NOT_FOUND");
    }
    let (s, _, _) = download(&app, url, Some(&admin)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, body) = download(&app, url, None).await;
    assert_eq!(
        (s, json_code(&body)),
        (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED".into())
    );
    let (s, _, body) = download(&app, &format!("{url}?token=forged"), None).await;
    assert_eq!(
        (s, json_code(&body)),
        (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED".into())
    );
    // Nor does a real bearer token in the query string open anything any more.
    let (s, _, body) = download(&app, &format!("{url}?token={tp1}"), None).await;
    assert_eq!(
        (s, json_code(&body)),
        (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED".into())
    );
    assert!(String::from_utf8_lossy(&body).contains("?token="));
    let (s, _, body) = download(&app, "/attachments/nope", Some(&tp1)).await;
    assert_eq!(
        (s, json_code(&body)),
        (StatusCode::NOT_FOUND, "NOT_FOUND".into())
    );

    // A PDF is a download, under its Chinese name.
    let (_, v) = upload(&app, Some(&tp1), "纳税申报表.pdf", &pdf(), None).await;
    let doc = uploaded(&v).clone();
    assert_eq!(doc["contentType"], "application/pdf");
    assert_eq!(doc["fileName"], "纳税申报表.pdf");
    let (s, h, body) = download(&app, doc["url"].as_str().unwrap(), Some(&tp1)).await;
    assert_eq!((s, body), (StatusCode::OK, pdf()));
    assert_eq!(header(&h, "content-type"), "application/pdf");
    assert_eq!(
        header(&h, "content-disposition"),
        "attachment; filename*=UTF-8''%E7%BA%B3%E7%A8%8E%E7%94%B3%E6%8A%A5%E8%A1%A8.pdf"
    );
    let (s, _, _) = download(&app, doc["url"].as_str().unwrap(), Some(&tp2)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // The same bytes again: a new attachment, stored once.
    let (_, v) = upload(&app, Some(&tp2), "again.png", &image, None).await;
    assert_ne!(uploaded(&v)["id"].as_str().unwrap(), id);
    assert_eq!(blobs(&app).len(), 2, "{:?}", blobs(&app));
    assert_eq!(app.count("SELECT id FROM attachments").await, 3);

    // Only GET (and HEAD) on a download URL.
    let r = app
        .http
        .delete(format!("{}{url}", app.base))
        .bearer_auth(&tp1)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(json_code(&r.bytes().await.unwrap()), "BAD_REQUEST");
}

#[tokio::test]
async fn executables_and_mismatched_types_are_refused() {
    let app = TestApp::spawn().await;
    let tp1 = app.token("taxpayer", "tp1");

    let (s, v) = upload(&app, Some(&tp1), "发票.png", &exe(), None).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::OK, "UNSUPPORTED_MEDIA_TYPE"),
        "{v}"
    );
    let (_, v) = upload(&app, Some(&tp1), "scan.pdf", &png(8), None).await;
    assert_eq!(code(&v), "UNSUPPORTED_MEDIA_TYPE", "{v}");
    let (_, v) = upload(&app, Some(&tp1), "tool.exe", &exe(), None).await;
    assert_eq!(code(&v), "UNSUPPORTED_MEDIA_TYPE", "{v}");
    let (_, v) = upload(&app, Some(&tp1), "run.sh", b"echo hi\n", None).await;
    assert_eq!(code(&v), "UNSUPPORTED_MEDIA_TYPE", "{v}");
    let (_, v) = upload(&app, Some(&tp1), "empty.txt", b"", None).await;
    assert_eq!(code(&v), "INVALID_INPUT", "{v}");
    // A session the uploader does not take part in (here: none at all).
    let (_, v) = upload(&app, Some(&tp1), "a.png", &png(8), Some("no-such-session")).await;
    assert_eq!(code(&v), "NOT_FOUND", "{v}");
    let (_, v) = upload(&app, None, "a.png", &png(8), None).await;
    assert_eq!(code(&v), "UNAUTHENTICATED", "{v}");

    assert_eq!(app.count("SELECT id FROM attachments").await, 0);
    assert!(blobs(&app).is_empty(), "nothing stored: {:?}", blobs(&app));
}

#[tokio::test]
async fn malformed_multipart_requests_get_coded_400s() {
    let app = TestApp::spawn().await;
    let tp1 = app.token("taxpayer", "tp1");
    let operations = json!({"query": UPLOAD, "variables": {"file": null}}).to_string();

    // No map.
    let body = form(&[
        ("operations", None, operations.as_bytes()),
        ("0", Some("a.png"), &png(8)),
    ]);
    let (s, v) = post_form(&app, Some(&tp1), body).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::BAD_REQUEST, "BAD_REQUEST"),
        "{v}"
    );

    // The map names a file that was not sent.
    let map = json!({"0": ["variables.file"], "1": ["variables.other"]}).to_string();
    let body = form(&[
        ("operations", None, operations.as_bytes()),
        ("map", None, map.as_bytes()),
        ("0", Some("a.png"), &png(8)),
    ]);
    let (s, v) = post_form(&app, Some(&tp1), body).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::BAD_REQUEST, "BAD_REQUEST"),
        "{v}"
    );

    // Not multipart at all, despite the header.
    let (s, v) = post_form(&app, Some(&tp1), b"just some bytes".to_vec()).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::BAD_REQUEST, "BAD_REQUEST"),
        "{v}"
    );

    // operations that are not JSON.
    let body = form(&[("operations", None, b"{nope"), ("map", None, b"{}")]);
    let (s, v) = post_form(&app, Some(&tp1), body).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::BAD_REQUEST, "GRAPHQL_PARSE_FAILED"),
        "{v}"
    );

    // No boundary.
    let r = app
        .http
        .post(format!("{}/graphql", app.base))
        .header("content-type", "multipart/form-data")
        .bearer_auth(&tp1)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: Value = r.json().await.unwrap();
    assert_eq!(code(&v), "BAD_REQUEST");

    // A multipart request without files is an ordinary request.
    let ops = json!({"query": "{ me { id } }"}).to_string();
    let body = form(&[("operations", None, ops.as_bytes()), ("map", None, b"{}")]);
    let (s, v) = post_form(&app, Some(&tp1), body).await;
    assert_eq!((s, &v["data"]["me"]["id"]), (StatusCode::OK, &json!("tp1")));
}

#[tokio::test]
async fn uploads_over_the_limit_are_refused_with_413() {
    let app = TestApp::spawn_with(&[("TAXDESK_ATTACHMENT_LIMIT", "1024")]).await;
    let tp1 = app.token("taxpayer", "tp1");

    let (s, v) = upload(&app, Some(&tp1), "small.png", &png(900), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(uploaded(&v)["size"], png(900).len());

    let (s, v) = upload(&app, Some(&tp1), "big.png", &png(4096), None).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE"),
        "{v}"
    );
    assert_eq!(app.count("SELECT id FROM attachments").await, 1);
}

fn now() -> u64 {
    taxdesk::auth::now_secs()
}

/// The query parameter `name` of a URL.
fn param(url: &str, name: &str) -> String {
    url.split_once('?')
        .map(|(_, q)| q)
        .unwrap_or_default()
        .split('&')
        .find_map(|p| p.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("{name} in {url}"))
        .to_string()
}

/// `url` with the query parameter `name` set to `value`.
fn with_param(url: &str, name: &str, value: &str) -> String {
    let (path, query) = url.split_once('?').expect("a query");
    let query: Vec<String> = query
        .split('&')
        .map(|p| {
            if p.starts_with(&format!("{name}=")) {
                format!("{name}={value}")
            } else {
                p.to_string()
            }
        })
        .collect();
    format!("{path}?{}", query.join("&"))
}

/// The links the test server signs (its link key is derived from the test JWT secret).
fn server_links() -> taxdesk_chat::download_link::DownloadLinks {
    taxdesk_chat::download_link::DownloadLinks::derived_from_jwt_secret(
        crate::helpers::SECRET.as_bytes(),
        std::time::Duration::from_secs(600),
    )
}

fn refusal_en(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).expect("coded JSON");
    assert_eq!(
        v["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{v}"
    );
    assert!(v["errors"][0]["extensions"]["zh"].is_string(), "{v}");
    v["errors"][0]["extensions"]["en"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn signed_links_download_without_a_header_for_their_user_only() {
    let app = TestApp::spawn().await;
    let tp1 = app.token("taxpayer", "tp1");
    app.user("taxpayer", "tp2")
        .gql("{ me { id } }", json!({}))
        .await
        .ok();
    app.user("admin", "boss")
        .gql("{ me { id } }", json!({}))
        .await
        .ok();
    let image = png(32);
    let (_, v) = upload(&app, Some(&tp1), "发票.png", &image, None).await;
    let a = uploaded(&v).clone();
    let id = a["id"].as_str().unwrap().to_string();
    let url = a["url"].as_str().unwrap().to_string();

    // Fresh: the bytes, without any header, kept by the browser (the bytes never change).
    let exp: u64 = param(&url, "exp").parse().unwrap();
    assert!(exp >= now() + 590 && exp <= now() + 600 + 60, "{exp}");
    assert_eq!(param(&url, "sig").len(), 64);
    let (s, h, body) = download(&app, &url, None).await;
    assert_eq!((s, body == image), (StatusCode::OK, true));
    assert!(header(&h, "cache-control").contains("max-age"), "{h:?}");
    assert_eq!(header(&h, "referrer-policy"), "no-referrer");

    // Tampered signature.
    let sig = param(&url, "sig");
    let flipped = format!(
        "{}{}",
        &sig[..63],
        if sig.ends_with('0') { "1" } else { "0" }
    );
    let (s, _, body) = download(&app, &with_param(&url, "sig", &flipped), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(refusal_en(&body).contains("not valid"));
    // Another user put in the link (tp2 exists; the signature was tp1's).
    let (s, _, body) = download(&app, &with_param(&url, "user", "tp2"), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    refusal_en(&body);
    // A later expiry put in the link.
    let (s, _, body) = download(
        &app,
        &with_param(&url, "exp", &(exp + 3600).to_string()),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    refusal_en(&body);
    // Another attachment's id under the same signature.
    let (_, v) = upload(&app, Some(&tp1), "b.png", &png(8), None).await;
    let other_id = uploaded(&v)["id"].as_str().unwrap().to_string();
    let moved = url.replacen(&id, &other_id, 1);
    let (s, _, _) = download(&app, &moved, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Parts missing.
    for name in ["user", "exp"] {
        let without = url.replace(&format!("{name}={}&", param(&url, name)), "");
        let (s, _, _) = download(&app, &without, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{without}");
    }

    // Expired: a link made (with the server's key) 20 minutes ago for a 10-minute life.
    let links = server_links();
    let old = links.url(&id, "tp1", now() - 1200);
    let (s, _, body) = download(&app, &old, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(refusal_en(&body).contains("expired"));
    // The same key, now: accepted (the test computes the server's key correctly).
    let (s, _, _) = download(&app, &links.url(&id, "tp1", now()), None).await;
    assert_eq!(s, StatusCode::OK);

    // A valid signature for a user who may not see it: as if it did not exist, exactly as
    // with that user's bearer token; an admin may.
    let (s, _, body) = download(&app, &links.url(&id, "tp2", now()), None).await;
    assert_eq!(
        (s, json_code(&body)),
        (StatusCode::NOT_FOUND, "NOT_FOUND".into())
    );
    let (s, _, _) = download(&app, &links.url(&id, "boss", now()), None).await;
    assert_eq!(s, StatusCode::OK);
    // Signed for someone this server never saw.
    let (s, _, body) = download(&app, &links.url(&id, "ghost", now()), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    refusal_en(&body);
    // The JWT secret itself is not the link key.
    let raw = taxdesk_chat::download_link::DownloadLinks::new(
        crate::helpers::SECRET.as_bytes(),
        std::time::Duration::from_secs(600),
    );
    let (s, _, _) = download(&app, &raw.url(&id, "tp1", now()), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn each_viewer_reads_a_link_of_their_own() {
    let app = TestApp::spawn_with(&[("TAXDESK_LINK_TTL", "90s")]).await;
    let tp1 = app.token("taxpayer", "tp1");
    let (_, v) = upload(&app, Some(&tp1), "凭证.pdf", &pdf(), None).await;
    let id = uploaded(&v)["id"].as_str().unwrap().to_string();
    let own = uploaded(&v)["url"].as_str().unwrap().to_string();
    // TAXDESK_LINK_TTL: 90 s, rounded up to a step of 9 s.
    let exp: u64 = param(&own, "exp").parse().unwrap();
    assert!(exp >= now() + 85 && exp <= now() + 90 + 9, "{exp}");

    // Sent with an offline message: the staff member answering it reads a link signed for
    // them, which opens it for them without a header.
    let sent = app
        .user("taxpayer", "tp1")
        .gql(
            "mutation($input: LeaveMessageInput!) { leaveMessage(input: $input) { id } }",
            json!({"input": {"category": "其他", "content": "见附件", "attachmentIds": [id]}}),
        )
        .await
        .ok();
    let lm = sent["leaveMessage"]["id"].as_str().unwrap().to_string();
    let read = app
        .user("staff", "s1")
        .gql(
            "query($id: ID!) { leaveMessage(id: $id) { attachments { id url } } }",
            json!({"id": lm}),
        )
        .await
        .ok();
    let staff_url = read["leaveMessage"]["attachments"][0]["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        staff_url.starts_with(&format!("/attachments/{id}?user=s1&")),
        "{staff_url}"
    );
    let (s, _, body) = download(&app, &staff_url, None).await;
    assert_eq!((s, body), (StatusCode::OK, pdf()));
    // The taxpayer's own link still works for them, and is not the staff member's.
    assert_ne!(param(&own, "sig"), param(&staff_url, "sig"));
    let (s, _, _) = download(&app, &own, None).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn a_configured_link_secret_signs_the_links() {
    let secret = "link-secret-0123456789abcdef-0123456789";
    let app = TestApp::spawn_with(&[("TAXDESK_LINK_SECRET", secret)]).await;
    let tp1 = app.token("taxpayer", "tp1");
    let (_, v) = upload(&app, Some(&tp1), "a.png", &png(8), None).await;
    let id = uploaded(&v)["id"].as_str().unwrap().to_string();
    let url = uploaded(&v)["url"].as_str().unwrap().to_string();
    let (s, _, _) = download(&app, &url, None).await;
    assert_eq!(s, StatusCode::OK);
    // Links derived from the JWT secret are no longer this server's.
    let (s, _, _) = download(&app, &server_links().url(&id, "tp1", now()), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let configured = taxdesk_chat::download_link::DownloadLinks::new(
        secret.as_bytes(),
        std::time::Duration::from_secs(60),
    );
    let (s, _, _) = download(&app, &configured.url(&id, "tp1", now()), None).await;
    assert_eq!(s, StatusCode::OK);
}
