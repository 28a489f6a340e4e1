//! Rate limits over HTTP: a `RATE_LIMITED` refusal is answered with `Retry-After`, whether
//! it comes from the transport (sign-in, refused tokens) or from a GraphQL resolver.

use std::net::IpAddr;
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::Value;
use taxdesk_graphql::Code;
use taxdesk_graphql::rate_limit::Action;

use super::AppState;
use super::reply::{self, Format};

fn whole_seconds(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// Takes one `action` from `address`; when it has none left, the answer to send instead:
/// 429 with `Retry-After` and a coded body.
pub fn refuse(s: &AppState, action: Action, address: IpAddr, format: Format) -> Option<Response> {
    let Err(wait) = s.limiter.take(action, None, Some(address)) else {
        return None;
    };
    let secs = whole_seconds(wait);
    tracing::info!(action = action.as_ref(), %address, "rate limited");
    let mut body = reply::error_body(
        Code::RateLimited,
        &format!("操作过于频繁，请 {secs} 秒后再试"),
        &format!("too many requests; retry in {secs} s"),
    );
    body["errors"][0]["extensions"]["retryAfter"] = secs.into();
    let mut resp = reply::json(StatusCode::TOO_MANY_REQUESTS, format, &body);
    set_retry_after(&mut resp, secs);
    Some(resp)
}

fn set_retry_after(resp: &mut Response, secs: u64) {
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
}

/// The longest `extensions.retryAfter` among a GraphQL response's `RATE_LIMITED` errors.
pub fn retry_after(body: &Value) -> Option<u64> {
    body.get("errors")?
        .as_array()?
        .iter()
        .filter(|e| e["extensions"]["code"] == Code::RateLimited.as_ref())
        .filter_map(|e| e["extensions"]["retryAfter"].as_u64())
        .max()
}

/// Adds `Retry-After` to a GraphQL response refused (in part) by a rate limit; 429 when
/// nothing else happened (no data, every error a rate limit).
pub fn mark(resp: &mut Response, body: &Value) {
    let Some(secs) = retry_after(body) else {
        return;
    };
    set_retry_after(resp, secs);
    let only_limited = body["data"].is_null()
        && body["errors"].as_array().is_some_and(|es| {
            es.iter()
                .all(|e| e["extensions"]["code"] == Code::RateLimited.as_ref())
        });
    if only_limited {
        *resp.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    }
}
