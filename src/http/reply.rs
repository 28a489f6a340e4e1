//! GraphQL-shaped JSON replies, including for requests refused before GraphQL runs, so a
//! client always gets `errors[].extensions.code` and never a plain-text body.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use taxdesk_graphql::Code;

/// The media type negotiated from `Accept` (GraphQL over HTTP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/graphql-response+json`: request errors are 4xx.
    GraphqlResponse,
    /// `application/json`: every GraphQL response is 200.
    Json,
}

impl Format {
    pub fn from_accept(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Json;
        };
        let mut best: Option<(Format, f32)> = None;
        for part in accept.split(',') {
            let mut it = part.split(';');
            let media = it.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = it
                .filter_map(|p| p.trim().strip_prefix("q="))
                .filter_map(|q| q.parse::<f32>().ok())
                .next()
                .unwrap_or(1.0);
            let f = match media.as_str() {
                "application/graphql-response+json" => Format::GraphqlResponse,
                "application/json" | "application/*" | "*/*" => Format::Json,
                _ => continue,
            };
            if q > 0.0 && best.is_none_or(|(_, bq)| q > bq) {
                best = Some((f, q));
            }
        }
        best.map(|(f, _)| f).unwrap_or(Format::Json)
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::GraphqlResponse => "application/graphql-response+json; charset=utf-8",
            Format::Json => "application/json; charset=utf-8",
        }
    }
}

pub fn json(status: StatusCode, format: Format, body: &serde_json::Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut resp = (status, bytes).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    resp
}

pub fn error_body(code: Code, zh: &str, en: &str) -> serde_json::Value {
    serde_json::json!({
        "errors": [{
            "message": format!("{zh} / {en}"),
            "extensions": {"code": code.as_ref(), "zh": zh, "en": en}
        }]
    })
}

pub fn error(status: StatusCode, format: Format, code: Code, zh: &str, en: &str) -> Response {
    json(status, format, &error_body(code, zh, en))
}
