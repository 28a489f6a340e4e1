//! The HTTP surface: `/graphql` (POST JSON or multipart uploads, GET with GraphiQL),
//! `/graphql/ws`, `/attachments/{id}`, `/healthz`, `/metrics`, and the web front end (`/`,
//! `/staff`, `/login`; see `web`). Only this module knows axum.

mod download;
mod graphql;
mod rate;
mod reply;
mod upload;
mod web;
mod ws;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use sea_orm::ConnectionTrait;
use taxdesk_graphql::{Code, TaxdeskSchema};
use taxdesk_workflow::{Workflow, metrics};
use tracing::Instrument;

use crate::auth::Keys;
pub use upload::UploadGate;

#[derive(Clone)]
pub struct AppState {
    pub schema: TaxdeskSchema,
    pub keys: Arc<Keys>,
    pub workflow: Workflow,
    pub body_limit: usize,
    /// Where attachments are stored and the size limit of one.
    pub attachments: taxdesk_chat::attachment::Settings,
    /// Rendered once at start; the page does not change.
    pub graphiql: Arc<String>,
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

async fn metrics_text() -> Response {
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
