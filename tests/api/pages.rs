//! What the server says about its pages and to whom it shows what: security headers on
//! every response and a Content-Security-Policy on every page, GraphiQL served from the
//! binary (nothing from a CDN) only while introspection is on, `/metrics` behind its token
//! or loopback-only, and token refusals that never echo the JWT library.

use std::collections::HashMap;

use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::TestApp;
use crate::notifications::ws_connect;

const ETAX: &str = "https://etax.example.gov.cn";

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// A CSP as directive → sources.
fn directives(csp: &str) -> HashMap<String, Vec<String>> {
    csp.split(';')
        .filter_map(|d| {
            let mut words = d.split_whitespace().map(str::to_string);
            Some((words.next()?, words.collect()))
        })
        .collect()
}

async fn get_html(app: &TestApp, path: &str) -> (StatusCode, HeaderMap, String) {
    let r = app
        .http
        .get(format!("{}{path}", app.base))
        .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .expect("request sent");
    let status = r.status();
    let headers = r.headers().clone();
    (status, headers, r.text().await.unwrap_or_default())
}

/// What every response carries, and what none may.
fn assert_common(h: &HeaderMap, what: &str) {
    assert_eq!(header(h, "x-content-type-options"), "nosniff", "{what}");
    assert_eq!(header(h, "referrer-policy"), "no-referrer", "{what}");
    assert!(
        h.get("x-frame-options").is_none(),
        "{what}: X-Frame-Options would contradict frame-ancestors"
    );
}

/// The policy every page must have; `frame_ancestors` as configured.
fn assert_page_policy(
    h: &HeaderMap,
    what: &str,
    frame_ancestors: &[&str],
) -> HashMap<String, Vec<String>> {
    let csp = header(h, "content-security-policy");
    let d = directives(csp);
    let has = |name: &str, sources: &[&str]| {
        let got = d
            .get(name)
            .unwrap_or_else(|| panic!("{what}: no {name} in {csp}"));
        for s in sources {
            assert!(
                got.iter().any(|g| g == s),
                "{what}: {name} lacks {s}: {csp}"
            );
        }
    };
    has("default-src", &["'self'"]);
    has("script-src", &["'self'"]);
    has("connect-src", &["'self'"]);
    has("img-src", &["'self'", "data:", "blob:"]);
    has("media-src", &["'self'", "blob:"]);
    assert_eq!(d["object-src"], vec!["'none'"], "{what}");
    assert_eq!(d["base-uri"], vec!["'none'"], "{what}");
    assert_eq!(d["frame-ancestors"], frame_ancestors, "{what}");
    for s in &d["script-src"] {
        assert!(
            !s.starts_with("'unsafe") && s != "*" && !s.starts_with("http") && s != "data:",
            "{what}: script-src allows {s}: {csp}"
        );
    }
    d
}

#[tokio::test]
async fn every_page_has_a_policy_and_every_response_the_headers() {
    let app = TestApp::spawn_with(&[
        ("TAXDESK_FRAME_ANCESTORS", &format!("'self' {ETAX}")),
        ("TAXDESK_INTROSPECTION", "on"),
    ])
    .await;
    let ancestors = ["'self'", ETAX];
    for path in ["/", "/staff", "/graphql"] {
        let (s, h, body) = get_html(&app, path).await;
        assert_eq!(s, StatusCode::OK, "{path}: {body}");
        assert!(
            header(&h, "content-type").starts_with("text/html"),
            "{path}"
        );
        assert_common(&h, path);
        let d = assert_page_policy(&h, path, &ancestors);
        if path != "/graphql" {
            // The portal and the workbench: no inline style either.
            assert_eq!(d["style-src"], vec!["'self'"], "{path}");
        }
        // Nothing inline that the policy would refuse.
        for inline in ["<script>", "<style", " onclick=", " onload=", "style=\""] {
            assert!(!body.contains(inline), "{path} holds {inline}");
        }
    }

    // Not pages, but the same headers: JSON, files, errors, downloads.
    let tp = app.token("taxpayer", "tp1");
    for path in ["/healthz", "/js/graphql.js", "/nope", "/attachments/x"] {
        let r = app
            .http
            .get(format!("{}{path}", app.base))
            .bearer_auth(&tp)
            .send()
            .await
            .unwrap();
        assert_common(r.headers(), path);
    }
    let r = app
        .http
        .post(format!("{}/graphql", app.base))
        .json(&json!({"query": "{ me { id } }"}))
        .send()
        .await
        .unwrap();
    assert_common(r.headers(), "POST /graphql");
}

#[tokio::test]
async fn the_development_sign_in_page_has_the_default_policy() {
    // No key configured: the embedded default, with /login.
    let app = TestApp::spawn_with(&[("TAXDESK_JWT_SECRET", "")]).await;
    for path in ["/login", "/"] {
        let (s, h, body) = get_html(&app, path).await;
        assert_eq!(s, StatusCode::OK, "{path}");
        assert_common(&h, path);
        assert_page_policy(&h, path, &["'self'"]);
        assert!(
            !body.contains("<script>") && !body.contains("<style"),
            "{path}"
        );
    }
    // Its script and styles are files of the site.
    for (path, kind) in [
        ("/login/login.js", "text/javascript"),
        ("/login/login.css", "text/css"),
    ] {
        let r = app
            .http
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert!(
            header(r.headers(), "content-type").starts_with(kind),
            "{path}"
        );
    }
}

#[test]
fn frame_ancestors_that_could_inject_are_refused_at_start() {
    for bad in [
        "'self'; script-src *",
        "https://a.example\r\nSet-Cookie: x=1",
        "\"https://a.example\"",
        "'unsafe-inline'",
    ] {
        let env = HashMap::from([("TAXDESK_FRAME_ANCESTORS".to_string(), bad.to_string())]);
        let e = taxdesk::Config::from_sources(&env).expect_err(bad);
        assert!(
            format!("{e:#}").contains("TAXDESK_FRAME_ANCESTORS"),
            "{bad:?}: {e:#}"
        );
    }
}

/// `src="…"` and `href="…"` values of a page.
fn references(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["src=\"", "href=\""] {
        let mut rest = html;
        while let Some(i) = rest.find(attr) {
            rest = &rest[i + attr.len()..];
            if let Some(end) = rest.find('"') {
                out.push(rest[..end].to_string());
                rest = &rest[end..];
            }
        }
    }
    out
}

#[tokio::test]
async fn graphiql_comes_from_the_binary_and_only_with_introspection() {
    let app = TestApp::spawn_with(&[("TAXDESK_INTROSPECTION", "on")]).await;
    let (s, h, page) = get_html(&app, "/graphql").await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("graphiql"), "{page}");
    let refs = references(&page);
    assert!(
        refs.iter().any(|r| r.ends_with(".js")) && refs.iter().any(|r| r.ends_with(".css")),
        "{refs:?}"
    );
    for r in &refs {
        assert!(
            r.starts_with('/') && !r.starts_with("//"),
            "GraphiQL loads {r} from elsewhere"
        );
        assert!(!r.contains("http:") && !r.contains("https:"), "{r}");
    }
    // The policy would stop any other origin anyway.
    let d = directives(header(&h, "content-security-policy"));
    assert_eq!(d["script-src"], vec!["'self'"]);
    assert_eq!(d["connect-src"], vec!["'self'"]);
    // Every file it names is served, with its type.
    for r in refs {
        let resp = app
            .http
            .get(format!("{}{r}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{r}");
        let ct = header(resp.headers(), "content-type").to_string();
        let want = match r.rsplit_once('.').map(|(_, e)| e) {
            Some("js") => "text/javascript",
            Some("css") => "text/css",
            Some("svg") => "image/svg+xml",
            other => panic!("unexpected reference {r} ({other:?})"),
        };
        assert!(ct.starts_with(want), "{r}: {ct}");
        assert_eq!(header(resp.headers(), "x-content-type-options"), "nosniff");
        assert!(!resp.bytes().await.unwrap().is_empty(), "{r}");
    }
    // The vendored licences go with it.
    let lic = app
        .http
        .get(format!("{}/graphiql/graphiql.LICENSE.txt", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(lic.status(), StatusCode::OK);

    // Introspection off (the default with a configured key): no GraphiQL.
    let off = TestApp::spawn().await;
    let (s, _, body) = get_html(&off, "/graphql").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{body}");
    let v: Value = serde_json::from_str(&body).expect("coded JSON");
    assert_eq!(v["errors"][0]["extensions"]["code"], "NOT_FOUND");
    assert!(
        v["errors"][0]["extensions"]["en"]
            .as_str()
            .unwrap_or_default()
            .contains("TAXDESK_INTROSPECTION"),
        "{v}"
    );
}

const METRICS_TOKEN: &str = "metrics-token-0123456789abcdef-0123";

async fn metrics(
    app: &TestApp,
    base: &str,
    bearer: Option<&str>,
) -> (StatusCode, HeaderMap, String) {
    let mut req = app.http.get(format!("{base}/metrics"));
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.expect("request sent");
    let status = r.status();
    let h = r.headers().clone();
    (status, h, r.text().await.unwrap_or_default())
}

#[tokio::test]
async fn metrics_want_their_token_when_one_is_configured() {
    let app = TestApp::spawn_with(&[("TAXDESK_METRICS_TOKEN", METRICS_TOKEN)]).await;
    for bearer in [None, Some("wrong"), Some(&METRICS_TOKEN[..20])] {
        let (s, h, body) = metrics(&app, &app.base, bearer).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{bearer:?}: {body}");
        assert_eq!(header(&h, "www-authenticate"), "Bearer");
        let v: Value = serde_json::from_str(&body).expect("coded JSON");
        assert_eq!(v["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
        assert!(!body.contains("taxdesk_http_requests_total"));
    }
    // A user's token is not the metrics token.
    let (s, _, _) = metrics(&app, &app.base, Some(&app.token("admin", "boss"))).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, body) = metrics(&app, &app.base, Some(METRICS_TOKEN)).await;
    assert_eq!(s, StatusCode::OK);
    assert!(body.contains("taxdesk_http_requests_total"), "{body}");
}

/// This host's address on a non-loopback interface, if it has one.
fn outside_address() -> Option<std::net::IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    // No packet is sent: connecting a UDP socket only picks the route.
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[tokio::test]
async fn without_a_token_metrics_answer_only_loopback_peers() {
    let app = TestApp::spawn_with(&[("TAXDESK_BIND", "0.0.0.0:0")]).await;
    let port = app.base.rsplit(':').next().expect("a port").to_string();
    let (s, _, body) = metrics(&app, &format!("http://127.0.0.1:{port}"), None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(body.contains("taxdesk_http_requests_total"));
    let Some(ip) = outside_address() else {
        eprintln!("skipped the non-loopback half: this host has no other interface");
        return;
    };
    let (s, _, body) = metrics(&app, &format!("http://{ip}:{port}"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{body}");
    assert!(!body.contains("taxdesk_http_requests_total"));
    // The rest of the server answers there as usual.
    let h = app
        .http
        .get(format!("http://{ip}:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(h.status(), StatusCode::OK);
}

/// Names of JWT library internals that must never reach a client.
const LIBRARY_WORDS: [&str; 6] = [
    "InvalidToken",
    "Base64",
    "Json(",
    "ErrorKind",
    "InvalidSignature",
    "Error(",
];

fn assert_no_library_text(text: &str) {
    for w in LIBRARY_WORDS {
        assert!(!text.contains(w), "{w} in {text}");
    }
}

#[tokio::test]
async fn token_refusals_on_downloads_and_sockets_name_no_library_internals() {
    let app = TestApp::spawn().await;
    for (token, en) in [
        ("not-a-token", "the token is malformed"),
        ("a.b.c", "the token is malformed"),
        (
            "eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl",
            "the token has no expiry (exp)",
        ),
    ] {
        let r = app
            .http
            .get(format!("{}/attachments/some-id", app.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{token}");
        let body = r.text().await.unwrap();
        let v: Value = serde_json::from_str(&body).expect("coded JSON");
        assert_eq!(v["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
        let got = v["errors"][0]["extensions"]["en"]
            .as_str()
            .unwrap_or_default();
        assert!(
            got == en || got == "the token's signature does not verify",
            "{token}: {got}"
        );
        assert!(v["errors"][0]["extensions"]["zh"].is_string());
        assert_no_library_text(&body);

        // On the WebSocket: refused with 4403 and the same fixed sentence.
        let mut ws = ws_connect(&app).await;
        ws.send(Message::Text(
            json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}})
                .to_string()
                .into(),
        ))
        .await
        .expect("sent");
        let frame = loop {
            match tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
                .await
                .expect("closed in time")
            {
                Some(Ok(Message::Close(Some(f)))) => break f,
                Some(Ok(Message::Close(None))) | None => panic!("{token}: closed without a frame"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("{token}: ws error {e}"),
            }
        };
        assert_eq!(u16::from(frame.code), 4403, "{token}");
        assert_no_library_text(frame.reason.as_str());
    }
}
