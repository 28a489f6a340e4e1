//! The reference web front end, embedded at build time from `web/` (see `build.rs`):
//! `/` the taxpayer portal, `/staff` the staff workbench, GraphiQL for `GET /graphql` from a
//! browser (`web/graphiql/`), the files they load at their path
//! under `web/` (`/js/graphql.js`, `/css/base.css`, `/portal/app.js`, …), and — only while no
//! JWT key is configured — the development sign-in `/login` that mints tokens like
//! `taxdesk token`. Everything else still gets the coded JSON 404.
//!
//! For work on the front end, `TAXDESK_WEB_DIR=web` serves the files from that folder
//! instead, read on every request, so an edit shows without rebuilding the binary.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use taxdesk_graphql::Code;

use super::AppState;
use super::reply::{self, Format};
use crate::auth::TokenClaims;

include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// How long a development token from `/login` lasts.
const LOGIN_TTL: Duration = Duration::from_secs(12 * 3600);

fn find(path: &str) -> Option<&'static [u8]> {
    FILES
        .binary_search_by(|(p, _)| (*p).cmp(path))
        .ok()
        .map(|i| FILES[i].1)
}

/// `TAXDESK_WEB_DIR`, read once: the folder to serve from instead of the embedded copy.
fn disk_dir() -> Option<&'static PathBuf> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::var_os("TAXDESK_WEB_DIR")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        if let Some(d) = &dir {
            tracing::info!(dir = %d.display(), "serving the web front end from disk");
        }
        dir
    })
    .as_ref()
}

/// A file of the front end: from disk when `TAXDESK_WEB_DIR` is set, else embedded. The
/// same files are visible either way (no dot-files, no notes, no `..`).
fn load(path: &str) -> Option<Cow<'static, [u8]>> {
    let Some(dir) = disk_dir() else {
        return find(path).map(Cow::Borrowed);
    };
    let hidden = path
        .split('/')
        .any(|seg| seg.is_empty() || seg.starts_with('.') || seg == "..");
    if hidden || path.ends_with(".md") {
        return None;
    }
    std::fs::read(dir.join(path)).ok().map(Cow::Owned)
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("ico") => "image/x-icon",
        Some("webp") => "image/webp",
        Some("woff2") => "font/woff2",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// One embedded file. `no-cache`: the browser revalidates, so a new binary's files are seen
/// at once (the files are small and there is no build step to fingerprint them).
fn file(path: &str, head: bool) -> Option<Response> {
    let bytes = load(path)?;
    let body = if head {
        Body::empty()
    } else {
        match bytes {
            Cow::Borrowed(b) => Body::from(Bytes::from_static(b)),
            Cow::Owned(v) => Body::from(v),
        }
    };
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    // `nosniff`, `no-referrer` and the pages' CSP come from `security::apply`.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Some(r)
}

async fn page(path: &str) -> Response {
    match file(path, false) {
        Some(r) => r,
        None => {
            tracing::warn!(path, "web page missing from the embedded front end");
            super::not_found().await
        }
    }
}

/// A page that may send a person without a token to `/login`: on the embedded default the
/// `<html>` element is marked `data-dev-login`, so the page knows without probing `/login`
/// (a probe that fails is a console error in the browser).
async fn page_with_login_hint(path: &str, development: bool) -> Response {
    if !development {
        return page(path).await;
    }
    let Some(bytes) = load(path) else {
        return page(path).await;
    };
    let html = String::from_utf8_lossy(&bytes).replacen("<html ", "<html data-dev-login ", 1);
    let mut r = Html(html).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// `GET /`: the taxpayer portal.
pub async fn portal(State(s): State<AppState>) -> Response {
    page_with_login_hint("portal/index.html", s.keys.is_development()).await
}

/// `GET /staff`: the staff workbench.
pub async fn staff(State(s): State<AppState>) -> Response {
    page_with_login_hint("staff/index.html", s.keys.is_development()).await
}

/// `GET /login`: the development sign-in, absent (404) once a key is configured.
pub async fn login_page(State(s): State<AppState>) -> Response {
    if !s.keys.is_development() {
        return super::not_found().await;
    }
    page("login/index.html").await
}

/// `GET /graphql` from a browser: GraphiQL, from `web/graphiql/` (vendored GraphiQL, React
/// and ReactDOM; no CDN), only while introspection is on (`TAXDESK_INTROSPECTION`): without
/// the schema it could only show an error.
pub async fn graphiql(s: &AppState) -> Response {
    if !s.limits.introspection {
        return reply::error(
            StatusCode::NOT_FOUND,
            Format::Json,
            Code::NotFound,
            "GraphiQL 未开启：它需要内省（TAXDESK_INTROSPECTION=on）",
            "GraphiQL is off: it needs introspection (TAXDESK_INTROSPECTION=on)",
        );
    }
    let mut r = page("graphiql/index.html").await;
    if r.status() == StatusCode::OK {
        r.headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, s.security.graphiql());
    }
    r
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LoginRequest {
    role: String,
    sub: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    taxpayer_id: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

fn invalid(zh: &str, en: &str) -> Response {
    reply::error(
        StatusCode::BAD_REQUEST,
        Format::Json,
        Code::InvalidInput,
        zh,
        en,
    )
}

fn blank_to_none(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// `POST /login` `{role, sub, name?, taxpayerId?, email?}` → `{token, expiresAt}`: a token
/// signed exactly as `taxdesk token` signs it. Only on the embedded default (no key
/// configured); anyone who can reach the server could otherwise become anyone.
pub async fn login(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    body: Bytes,
) -> Response {
    if !s.keys.is_development() {
        return super::not_found().await;
    }
    if let Some(refused) = super::rate::refuse(
        &s,
        taxdesk_graphql::rate_limit::Action::Login,
        peer.ip(),
        super::reply::Format::Json,
    ) {
        return refused;
    }
    let req: LoginRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return invalid(
                "请求格式错误：需要 JSON {role, sub, name}",
                &format!("send JSON {{role, sub, name}} ({e})"),
            );
        }
    };
    let role = req.role.trim().to_ascii_lowercase();
    if !matches!(role.as_str(), "taxpayer" | "staff" | "admin") {
        return invalid(
            "角色须为纳税人、工作人员或管理员",
            "role must be taxpayer, staff or admin",
        );
    }
    let sub = req.sub.trim().to_string();
    if sub.is_empty() || sub.chars().count() > 64 {
        return invalid(
            "用户标识须为 1–64 个字符",
            "the user id must be 1–64 characters",
        );
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // Never longer than the tokens the server accepts.
    let exp = now + LOGIN_TTL.min(s.keys.max_ttl()).as_secs();
    let claims = TokenClaims {
        sub,
        role,
        name: blank_to_none(req.name),
        taxpayer_id: blank_to_none(req.taxpayer_id),
        email: blank_to_none(req.email),
        exp,
        iat: Some(now),
        ..TokenClaims::default()
    };
    match s.keys.mint(&claims) {
        Ok(token) => {
            tracing::info!(user.id = %claims.sub, role = %claims.role, "development sign-in");
            let expires_at = chrono::DateTime::from_timestamp(exp as i64, 0)
                .map(|t| t.to_rfc3339())
                .unwrap_or_default();
            reply::json(
                StatusCode::OK,
                Format::Json,
                &serde_json::json!({"token": token, "expiresAt": expires_at}),
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "could not mint a development token");
            reply::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                Format::Json,
                Code::Internal,
                "无法签发令牌",
                "could not mint a token",
            )
        }
    }
}

/// The fallback: a GET/HEAD of a file under `web/` is served; anything else, and the pages
/// themselves by their file path (they have their routes, `/login` its guard), is the coded
/// JSON 404.
pub async fn asset_or_not_found(method: Method, uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    let head = method == Method::HEAD;
    if (method == Method::GET || head)
        && !path.is_empty()
        && !path.ends_with("index.html")
        && !path.contains("..")
        && let Some(r) = file(path, head)
    {
        return r;
    }
    super::not_found().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_holds_the_pages() {
        assert!(FILES.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(find("portal/index.html").is_some());
        assert!(find("js/graphql.js").is_some());
        assert!(find("graphiql/index.html").is_some());
        assert!(find("graphiql/graphiql.min.js").is_some());
        assert!(find("nope.html").is_none());
    }

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type("a/b.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("x.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("noext"), "application/octet-stream");
    }
}
