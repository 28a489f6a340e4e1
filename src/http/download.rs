//! `GET /attachments/{id}`: the bytes of an attachment, for its uploader, the participants of
//! its chat session, admins, and staff for files sent with an offline message (anyone else
//! gets 404, as if it did not exist).
//!
//! Who asks is said by `Authorization: Bearer …`, or — so that `<img src>` and plain links
//! work in a browser — by a short-lived link signed for one user and this attachment
//! (`?user=…&exp=…&sig=…`, the `url` the API gives; see `taxdesk_chat::download_link`).
//! Either way the same rule decides whether that user may see it. A bearer token in the
//! query string (`?token=`, which logs and browser histories would keep) is refused.
//! Images are served `inline`, everything else as a download;
//! the sniffed type is sent with `nosniff` and a sandboxing CSP, so a browser never runs an
//! upload as a page.

use axum::body::{Body, Bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sea_orm::EntityTrait;
use taxdesk_chat::attachment::{self, AttachmentError, Kind};
use taxdesk_chat::download_link::LinkRefusal;
use taxdesk_chat::entities::attachment::Model;
use taxdesk_graphql::{Code, Identity};
use taxdesk_workflow::Actor;
use taxdesk_workflow::entities::user;
use taxdesk_workflow::users::role_of;
use tokio::io::AsyncReadExt;

use super::reply::{self, Format};
use super::{AppState, RequestId};
use crate::auth;

const CHUNK: usize = 64 * 1024;

fn not_found() -> Response {
    reply::error(
        StatusCode::NOT_FOUND,
        Format::Json,
        Code::NotFound,
        "未找到该附件",
        "no such attachment",
    )
}

fn unauthenticated(zh: &str, en: &str) -> Response {
    let mut r = reply::error(
        StatusCode::UNAUTHORIZED,
        Format::Json,
        Code::Unauthenticated,
        zh,
        en,
    );
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

fn internal(rid: &RequestId) -> Response {
    let zh = format!("服务器内部错误，请稍后重试（请求号 {}）", rid.0);
    let en = format!("internal error; please retry later (request id {})", rid.0);
    let mut body = reply::error_body(Code::Internal, &zh, &en);
    body["errors"][0]["extensions"]["requestId"] = rid.0.clone().into();
    reply::json(StatusCode::INTERNAL_SERVER_ERROR, Format::Json, &body)
}

fn sign_in_first() -> Response {
    unauthenticated(
        "请先登录（请求头 Authorization: Bearer 令牌，或使用接口返回的附件地址）",
        "sign in first: send Authorization: Bearer <token>, or use the attachment's url from the API",
    )
}

fn invalid_link() -> Response {
    unauthenticated(
        "下载链接无效，请刷新页面后重试",
        "the download link is not valid; reload the page for a fresh one",
    )
}

/// The user a signed link was made for, if the signature holds for this attachment, that
/// user and that expiry, and the link has not expired. The user's role is the one their
/// row has now, as for a bearer token.
async fn signed_viewer(
    s: &AppState,
    rid: &RequestId,
    attachment_id: &str,
    user_id: Option<&str>,
    exp: Option<&str>,
    sig: &str,
) -> Result<Actor, Response> {
    let (Some(user_id), Some(exp)) = (user_id, exp) else {
        return Err(invalid_link());
    };
    match s
        .links
        .check(attachment_id, user_id, exp, sig, auth::now_secs())
    {
        Ok(()) => {}
        Err(LinkRefusal::Expired) => {
            return Err(unauthenticated(
                "下载链接已过期，请刷新页面后重试",
                "the download link has expired; reload the page for a fresh one",
            ));
        }
        Err(LinkRefusal::Invalid) => {
            tracing::info!(attachment.id = %attachment_id, "download link refused: bad signature");
            return Err(invalid_link());
        }
    }
    match user::Entity::find_by_id(user_id)
        .one(s.workflow.reader())
        .await
    {
        Ok(Some(row)) => Ok(Actor::new(row.id.clone(), role_of(&row))),
        // Signed for someone never recorded: nobody this server knows.
        Ok(None) => Err(invalid_link()),
        Err(e) => {
            tracing::error!(request.id = %rid.0, user.id = %user_id, error = %e, "download link: user lookup failed");
            Err(internal(rid))
        }
    }
}

pub async fn method_not_allowed() -> Response {
    let mut r = reply::error(
        StatusCode::METHOD_NOT_ALLOWED,
        Format::Json,
        Code::BadRequest,
        "附件仅支持 GET 下载；上传请使用 POST /graphql（multipart）",
        "attachments are downloaded with GET; upload with a multipart POST to /graphql",
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    r
}

/// RFC 8187 `attr-char`: what may stand unencoded in `filename*`.
fn is_attr_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#' | b'$' | b'&' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~'
        )
}

/// `Content-Disposition` for an attachment: `inline` for images, `attachment` for files,
/// with the name UTF-8 percent-encoded (RFC 6266 / 8187) so Chinese names survive.
fn content_disposition(a: &Model) -> String {
    let disposition = match Kind::of_content_type(&a.content_type) {
        Kind::Image => "inline",
        Kind::File => "attachment",
    };
    let mut encoded = String::with_capacity(a.file_name.len() * 3);
    for b in a.file_name.bytes() {
        if is_attr_char(b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("{disposition}; filename*=UTF-8''{encoded}")
}

/// Whether `If-None-Match` names this version (the content never changes under an id).
fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

/// Headers every successful answer carries: the browser must not guess the type, run the
/// content as a page, leak the URL (a signed link) or share it from a cache.
///
/// The bytes under an id never change. Asked for with a bearer token, the browser
/// revalidates (`no-cache`); asked for by a signed link, it keeps them for a day
/// (`max-age`), so a page that draws the same image again after the link expired (a chat
/// redrawn from memory) shows it without asking with a dead link.
fn common_headers(h: &mut HeaderMap, etag: &str, signed_link: bool) {
    let cache = if signed_link {
        "private, max-age=86400, immutable"
    } else {
        "private, no-cache"
    };
    let fixed = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CACHE_CONTROL, cache),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; sandbox",
        ),
    ];
    for (name, value) in fixed {
        h.insert(name, HeaderValue::from_static(value));
    }
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
}

pub async fn get(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let Ok(Path(id)) = path else {
        return not_found();
    };
    let pairs = query.map(|Query(pairs)| pairs).unwrap_or_default();
    let param = |name: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    // The header wins; a signed link is for <img src> and plain links, which cannot send one.
    let signed_link = !headers.contains_key(header::AUTHORIZATION) && param("sig").is_some();
    let viewer = if let Some(h) = headers.get(header::AUTHORIZATION) {
        // A header that is not even text is a malformed token, not an absent one.
        let credential = h.to_str().unwrap_or("");
        match auth::identify(&s.keys, &s.workflow, Some(credential)).await {
            Identity::User(v) => v.actor(),
            Identity::Rejected { zh, en } => return unauthenticated(&zh, &en),
            Identity::Forbidden { zh, en } => {
                return reply::error(
                    StatusCode::FORBIDDEN,
                    Format::Json,
                    Code::Forbidden,
                    &zh,
                    &en,
                );
            }
            Identity::Anonymous => return sign_in_first(),
        }
    } else if let Some(sig) = param("sig") {
        match signed_viewer(&s, &rid, &id, param("user"), param("exp"), sig).await {
            Ok(actor) => actor,
            Err(refused) => return refused,
        }
    } else if param("token").is_some() {
        return unauthenticated(
            "下载地址不再接受 ?token= 令牌：请使用接口返回的附件地址（Attachment.url），或在请求头中携带 Authorization: Bearer 令牌",
            "?token= is no longer accepted on downloads: use the attachment's url from the API (Attachment.url), or send Authorization: Bearer <token>",
        );
    } else {
        return sign_in_first();
    };
    let opened = attachment::open_for(s.workflow.db(), &s.attachments.data_dir, &viewer, &id).await;
    let (a, path) = match opened {
        Ok(found) => found,
        Err(AttachmentError::NotFound { .. }) => return not_found(),
        Err(e) => {
            tracing::error!(request.id = %rid.0, attachment.id = %id, error = %e, "attachment download failed");
            return internal(&rid);
        }
    };
    let etag = format!("\"{}\"", a.sha256);
    if not_modified(&headers, &etag) {
        let mut r = StatusCode::NOT_MODIFIED.into_response();
        common_headers(r.headers_mut(), &etag, signed_link);
        return r;
    }
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(request.id = %rid.0, attachment.id = %id, error = %e, "attachment bytes unreadable");
            return internal(&rid);
        }
    };
    let len = match file.metadata().await {
        Ok(m) => m.len(),
        Err(_) => a.size.max(0) as u64,
    };
    let stream = futures_util::stream::try_unfold(file, |mut f| async move {
        let mut buf = vec![0u8; CHUNK];
        let n = f.read(&mut buf).await?;
        if n == 0 {
            return Ok::<_, std::io::Error>(None);
        }
        buf.truncate(n);
        Ok(Some((Bytes::from(buf), f)))
    });
    let mut r = Body::from_stream(stream).into_response();
    let h = r.headers_mut();
    common_headers(h, &etag, signed_link);
    if let Ok(v) = HeaderValue::from_str(&a.content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Ok(v) = HeaderValue::from_str(&content_disposition(&a)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(file_name: &str, content_type: &str) -> Model {
        Model {
            id: "a1".into(),
            sha256: "0".repeat(64),
            file_name: file_name.into(),
            content_type: content_type.into(),
            size: 1,
            uploader_id: "tp1".into(),
            session_id: None,
            created_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn names_are_percent_encoded_and_images_shown_inline() {
        assert_eq!(
            content_disposition(&model("纳税 申报.pdf", "application/pdf")),
            "attachment; filename*=UTF-8''%E7%BA%B3%E7%A8%8E%20%E7%94%B3%E6%8A%A5.pdf"
        );
        assert_eq!(
            content_disposition(&model("a'b;c\"d.png", "image/png")),
            "inline; filename*=UTF-8''a%27b%3Bc%22d.png"
        );
    }

    #[test]
    fn if_none_match_is_compared_with_the_content_address() {
        let mut h = HeaderMap::new();
        assert!(!not_modified(&h, "\"abc\""));
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"x\", W/\"abc\""),
        );
        assert!(not_modified(&h, "\"abc\""));
        assert!(!not_modified(&h, "\"abd\""));
    }
}
