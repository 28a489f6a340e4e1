//! The HTTP surface: `/graphql` (POST JSON or multipart uploads, GET with GraphiQL),
//! `/graphql/ws`, `/attachments/{id}`, `/healthz`, `/metrics`, and the web front end (`/`,
//! `/staff`, `/login`; see `web`). Only this module knows axum.

mod download;
mod graphql;
mod rate;
mod reply;
mod security;
mod upload;
mod web;
mod ws;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use sea_orm::ConnectionTrait;
use taxdesk_graphql::{Code, TaxdeskSchema};
use taxdesk_workflow::{Workflow, metrics};
use tracing::Instrument;

use crate::auth::Keys;
pub use security::SecurityHeaders;
use taxdesk_chat::download_link::DownloadLinks;
pub use upload::UploadGate;

#[derive(Clone)]
pub struct AppState {
    pub schema: TaxdeskSchema,
    pub keys: Arc<Keys>,
    pub workflow: Workflow,
    pub body_limit: usize,
    /// Where attachments are stored and the size limit of one.
    pub attachments: taxdesk_chat::attachment::Settings,
    /// The Content-Security-Policies of the pages, rendered once at start.
    pub security: Arc<SecurityHeaders>,
    /// Signs and checks the download links of attachments (`Attachment.url`).
    pub links: DownloadLinks,
    /// `TAXDESK_METRICS_TOKEN`; without one, `/metrics` answers loopback peers only.
    pub metrics_token: Option<Arc<str>>,
    /// For `/healthz` (whether the semantic search layer is on).
    pub chat: taxdesk_chat::Chat,
    /// Uploads in flight, bounded per user and in all.
    pub uploads: Arc<upload::UploadGate>,
    /// What one GraphQL request may ask for (the schema enforces them too).
    pub limits: Arc<taxdesk_graphql::Limits>,
    /// The rate limits (`TAXDESK_RATE_LIMIT`), shared with the schema.
    pub limiter: taxdesk_graphql::RateLimiter,
}

/// The id of one HTTP request, in its logs and on its errors.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/graphql",
            get(graphql::get)
                .post(graphql::post)
                .fallback(graphql::method_not_allowed),
        )
        .route("/graphql/ws", get(ws::upgrade))
        .route(
            "/attachments/{id}",
            get(download::get).fallback(download::method_not_allowed),
        )
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        // The reference web front end (web/, embedded); its files via the fallback.
        .route("/", get(web::portal))
        .route("/staff", get(web::staff))
        .route("/staff/", get(web::staff))
        .route("/login", get(web::login_page).post(web::login))
        .fallback(web::asset_or_not_found)
        .layer(middleware::from_fn_with_state(
            state.security.clone(),
            security::apply,
        ))
        .layer(middleware::from_fn(request_span))
        .with_state(state)
}

/// Gives each request an id, a span with it, an `x-request-id` header, and a count.
async fn request_span(mut req: Request, next: Next) -> Response {
    let id = uuid::Uuid::new_v4().simple().to_string()[..16].to_string();
    req.extensions_mut().insert(RequestId(id.clone()));
    let route: &'static str = match req.uri().path() {
        "/graphql" => "/graphql",
        "/graphql/ws" => "/graphql/ws",
        "/healthz" => "/healthz",
        "/metrics" => "/metrics",
        p if p.starts_with("/attachments/") => "/attachments/{id}",
        _ => "other",
    };
    let span = tracing::info_span!("request", request.id = %id, method = %req.method(), path = %req.uri().path());
    let started = Instant::now();
    let mut resp = next.run(req).instrument(span.clone()).await;
    let status = resp.status();
    span.in_scope(|| {
        tracing::debug!(
            status = status.as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "served"
        )
    });
    let class = format!("{}xx", status.as_u16() / 100);
    metrics::inc(
        "taxdesk_http_requests_total",
        &[("route", route), ("status", &class)],
    );
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

/// Healthy when the database answers; `semanticSearch` says whether questions are matched
/// by meaning too (`on`), not yet (`loading`: model or FAQ vectors on their way) or not at
/// all (`off`: no model, lexical search only). Either way the server answers.
async fn healthz(State(s): State<AppState>) -> Response {
    // On the reader: a long write does not make the database look unreachable.
    let db = s.workflow.reader();
    let semantic = s.chat.semantic_search().as_str();
    match db.execute_unprepared("SELECT 1").await {
        Ok(_) => {
            Json(serde_json::json!({"status": "ok", "database": "ok", "semanticSearch": semantic}))
                .into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "health check: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(
                    serde_json::json!({"status": "unavailable", "database": "unreachable", "semanticSearch": semantic}),
                ),
            )
                .into_response()
        }
    }
}

/// Whether `given` is `expected`, in the same time wherever they differ (and whatever
/// their lengths: the digests are compared).
fn same_secret(given: &str, expected: &str) -> bool {
    use sha2::{Digest, Sha256};
    use subtle::ConstantTimeEq;
    Sha256::digest(given.as_bytes())
        .ct_eq(&Sha256::digest(expected.as_bytes()))
        .into()
}

/// Who may read `/metrics`: with a token configured, whoever sends it as a bearer token;
/// without one, only a peer on the loopback interface (a scraper on the same host or a
/// sidecar), everyone else being told there is no such route.
enum MetricsAccess {
    Allowed,
    /// 401: a token is configured and was not sent.
    NeedsToken,
    /// 404: no token is configured and the peer is not local.
    Hidden,
}

fn metrics_access(
    token: Option<&str>,
    peer: std::net::IpAddr,
    authorization: Option<&str>,
) -> MetricsAccess {
    match token {
        Some(expected) => {
            let given = authorization
                .and_then(|h| {
                    h.strip_prefix("Bearer ")
                        .or_else(|| h.strip_prefix("bearer "))
                })
                .map(str::trim)
                .unwrap_or("");
            if same_secret(given, expected) {
                MetricsAccess::Allowed
            } else {
                MetricsAccess::NeedsToken
            }
        }
        None if peer.to_canonical().is_loopback() => MetricsAccess::Allowed,
        None => MetricsAccess::Hidden,
    }
}

async fn metrics_text(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match metrics_access(s.metrics_token.as_deref(), peer.ip(), authorization) {
        MetricsAccess::Allowed => {}
        MetricsAccess::Hidden => return not_found().await,
        MetricsAccess::NeedsToken => {
            let mut r = reply::error(
                StatusCode::UNAUTHORIZED,
                reply::Format::Json,
                Code::Unauthenticated,
                "读取监控指标需要令牌（Authorization: Bearer <TAXDESK_METRICS_TOKEN>）",
                "/metrics needs its token: Authorization: Bearer <TAXDESK_METRICS_TOKEN>",
            );
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return r;
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics::render(),
    )
        .into_response()
}

async fn not_found() -> Response {
    reply::error(
        StatusCode::NOT_FOUND,
        reply::Format::Json,
        Code::NotFound,
        "没有这个地址；GraphQL 接口在 /graphql",
        "no such route; the GraphQL endpoint is /graphql",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn allowed(token: Option<&str>, peer: &str, auth: Option<&str>) -> &'static str {
        let peer: IpAddr = peer.parse().expect("an address");
        match metrics_access(token, peer, auth) {
            MetricsAccess::Allowed => "allowed",
            MetricsAccess::NeedsToken => "401",
            MetricsAccess::Hidden => "404",
        }
    }

    #[test]
    fn metrics_want_the_token_or_a_local_peer() {
        let t = Some("fedcba9876543210fedcba9876543210");
        assert_eq!(allowed(None, "127.0.0.1", None), "allowed");
        assert_eq!(allowed(None, "::1", None), "allowed");
        assert_eq!(allowed(None, "::ffff:127.0.0.1", None), "allowed");
        assert_eq!(allowed(None, "10.1.2.3", None), "404");
        assert_eq!(allowed(None, "10.1.2.3", Some("Bearer anything")), "404");
        assert_eq!(
            allowed(
                t,
                "10.1.2.3",
                Some("Bearer fedcba9876543210fedcba9876543210")
            ),
            "allowed"
        );
        // With a token, being local is not enough.
        assert_eq!(allowed(t, "127.0.0.1", None), "401");
        assert_eq!(allowed(t, "127.0.0.1", Some("Bearer fedcba98")), "401");
        assert_eq!(
            allowed(t, "127.0.0.1", Some("fedcba9876543210fedcba9876543210")),
            "401"
        );
    }
}
