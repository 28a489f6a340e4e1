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
    /// The format to answer in: the client's most preferred one we can write (the first
    /// listed wins a tie). `None` when it accepts none of ours, which the spec recommends
    /// answering with 406 rather than sending a body the client cannot read.
    pub fn negotiate(accept: Option<&str>) -> Option<Format> {
        // No (or an empty) `Accept`: a legacy client, which expects application/json
        // (what the graphql-http audit checks for).
        let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
            return Some(Format::Json);
        };
        let mut best: Option<(Format, f32)> = None;
        for (format, q) in accept.split(',').filter_map(media_range) {
            if best.is_none_or(|(_, bq)| q > bq) {
                best = Some((format, q));
            }
        }
        best.map(|(f, _)| f)
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::GraphqlResponse => "application/graphql-response+json; charset=utf-8",
            Format::Json => "application/json; charset=utf-8",
        }
    }
}

/// One `Accept` entry we can serve, with its weight; `None` for a type we do not write,
/// a weight of 0 ("not this"), or a charset other than UTF-8 (the only one we write).
fn media_range(range: &str) -> Option<(Format, f32)> {
    let mut parts = range.split(';');
    let format = match parts.next()?.trim().to_ascii_lowercase().as_str() {
        "application/graphql-response+json" => Format::GraphqlResponse,
        "application/json" | "application/*" | "*/*" => Format::Json,
        _ => return None,
    };
    let mut q = 1.0;
    for (name, value) in parts.filter_map(|p| p.split_once('=')) {
        let value = value.trim().trim_matches('"');
        match name.trim().to_ascii_lowercase().as_str() {
            // A malformed weight is read as the default rather than refusing the client.
            "q" => q = value.parse::<f32>().unwrap_or(1.0),
            "charset" if !is_utf8(value) => return None,
            _ => {}
        }
    }
    (q > 0.0).then_some((format, q))
}

/// Whether a `charset` parameter names UTF-8 (`utf8` is a common misspelling clients send).
pub fn is_utf8(charset: &str) -> bool {
    let charset = charset.trim().trim_matches('"');
    charset.eq_ignore_ascii_case("utf-8") || charset.eq_ignore_ascii_case("utf8")
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

/// 406 for a client that accepts none of our media types. The body is still a coded
/// GraphQL error in plain JSON (every error is one); its message names what we can write.
pub fn not_acceptable() -> Response {
    error(
        StatusCode::NOT_ACCEPTABLE,
        Format::Json,
        Code::UnsupportedMediaType,
        "无法以所请求的媒体类型应答；请接受 application/graphql-response+json 或 application/json",
        "none of the accepted media types can be served; accept application/graphql-response+json or application/json",
    )
}

/// 415 for a body we cannot read; `Accept` on the response says which one we can
/// (RFC 9110, 15.5.16).
pub fn unsupported_media_type(format: Format, content_type: &str) -> Response {
    let mut r = error(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format,
        Code::UnsupportedMediaType,
        "请求体须为 UTF-8 编码的 application/json",
        &format!("the body must be UTF-8 application/json, not {content_type:?}"),
    );
    r.headers_mut().insert(
        header::ACCEPT,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates_the_preferred_supported_type() {
        let gr = Some(Format::GraphqlResponse);
        let json = Some(Format::Json);
        assert_eq!(Format::negotiate(None), json);
        assert_eq!(Format::negotiate(Some(" ")), json);
        assert_eq!(Format::negotiate(Some("*/*")), json);
        assert_eq!(
            Format::negotiate(Some("application/graphql-response+json")),
            gr
        );
        assert_eq!(
            Format::negotiate(Some(
                "application/graphql-response+json; charset=utf-8, application/json; charset=utf-8"
            )),
            gr
        );
        assert_eq!(
            Format::negotiate(Some(
                "application/json;q=0.9, application/graphql-response+json"
            )),
            gr
        );
        assert_eq!(
            Format::negotiate(Some("text/html,application/xhtml+xml,*/*;q=0.8")),
            json
        );
        assert_eq!(
            Format::negotiate(Some("APPLICATION/JSON; Charset=\"UTF8\"")),
            json
        );
    }

    #[test]
    fn refuses_when_nothing_supported_is_accepted() {
        assert_eq!(Format::negotiate(Some("text/plain")), None);
        assert_eq!(Format::negotiate(Some("application/json;q=0")), None);
        assert_eq!(
            Format::negotiate(Some("application/json; charset=gbk")),
            None
        );
        assert_eq!(
            Format::negotiate(Some("application/graphql-response+json; charset=utf-16")),
            None
        );
    }
}
