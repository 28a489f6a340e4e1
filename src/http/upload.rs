//! Uploads: `POST /graphql` as `multipart/form-data` (the GraphQL multipart request spec).
//!
//! The bearer is checked before a byte of the body is read, and a declared length over the
//! limit is refused at once. Each user has a bounded number of uploads in flight, and so has
//! the server; more are refused with `RATE_LIMITED` and `Retry-After`. Files stream to a
//! temporary file with the limit enforced chunk by chunk (`taxdesk_chat::incoming`); for an
//! `uploadAttachment` request the type is sniffed from the first bytes, so an executable is
//! refused before the rest arrives, and the resolver stores the received file as it is.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use async_graphql::UploadValue;
use async_graphql::parser::parse_query;
use async_graphql::parser::types::{DocumentOperations, Selection};
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use taxdesk_chat::attachment::AttachmentError;
use taxdesk_chat::incoming::{Check, Incoming, Staged, StagedUploads};
use taxdesk_graphql::{Code, Identity};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::reply::{self, Format};
use super::{AppState, RequestId};
use crate::auth;

/// How many uploads may be in flight at once, per user and in all.
pub struct UploadGate {
    all: Arc<Semaphore>,
    per_user: usize,
    active: Mutex<HashMap<String, usize>>,
}

/// A place among the uploads in flight, given back on drop.
pub struct UploadPermit {
    gate: Arc<UploadGate>,
    user: String,
    _slot: OwnedSemaphorePermit,
}

impl UploadGate {
    pub fn new(all: usize, per_user: usize) -> Arc<UploadGate> {
        Arc::new(UploadGate {
            all: Arc::new(Semaphore::new(all.max(1))),
            per_user: per_user.max(1),
            active: Mutex::new(HashMap::new()),
        })
    }

    /// A place for one more upload of `user`, if there is one (never waits).
    pub fn admit(self: &Arc<Self>, user: &str) -> Option<UploadPermit> {
        let mut active = self.active.lock().ok()?;
        let mine = active.get(user).copied().unwrap_or(0);
        if mine >= self.per_user {
            return None;
        }
        let slot = self.all.clone().try_acquire_owned().ok()?;
        active.insert(user.to_string(), mine + 1);
        Some(UploadPermit {
            gate: self.clone(),
            user: user.to_string(),
            _slot: slot,
        })
    }
}

impl Drop for UploadPermit {
    fn drop(&mut self) {
        if let Ok(mut active) = self.gate.active.lock()
            && let Some(n) = active.get_mut(&self.user)
        {
            *n -= 1;
            if *n == 0 {
                active.remove(&self.user);
            }
        }
    }
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn bad_request(format: Format, zh: &str, en: &str) -> Response {
    reply::error(StatusCode::BAD_REQUEST, format, Code::BadRequest, zh, en)
}

fn too_large(format: Format, limit: usize) -> Response {
    reply::error(
        StatusCode::PAYLOAD_TOO_LARGE,
        format,
        Code::PayloadTooLarge,
        &format!("上传的文件超过 {limit} 字节上限"),
        &format!("the upload is larger than the {limit} byte limit"),
    )
}

fn internal(rid: &RequestId, format: Format) -> Response {
    let zh = format!("服务器内部错误，请稍后重试（请求号 {}）", rid.0);
    let en = format!("internal error; please retry later (request id {})", rid.0);
    let mut body = reply::error_body(Code::Internal, &zh, &en);
    body["errors"][0]["extensions"]["requestId"] = rid.0.clone().into();
    reply::json(StatusCode::INTERNAL_SERVER_ERROR, format, &body)
}

/// A refused file, answered as the resolver would have (a field error of
/// `uploadAttachment`), except that the rest of the body is never read.
fn refused_file(rid: &RequestId, format: Format, e: AttachmentError, limit: usize) -> Response {
    let (code, zh, en) = match e {
        AttachmentError::TooLarge { .. } => return too_large(format, limit),
        AttachmentError::Empty => (
            Code::InvalidInput,
            "文件为空".to_string(),
            "the file is empty".to_string(),
        ),
        AttachmentError::UnsupportedMediaType { zh, en } => (Code::UnsupportedMediaType, zh, en),
        e => {
            tracing::error!(request.id = %rid.0, error = %e, "receiving an upload failed");
            return internal(rid, format);
        }
    };
    let mut body = reply::error_body(code, &zh, &en);
    body["errors"][0]["path"] = serde_json::json!(["uploadAttachment"]);
    if code == Code::InvalidInput {
        body["errors"][0]["extensions"]["field"] = "file".into();
    }
    body["data"] = serde_json::Value::Null;
    reply::json(StatusCode::OK, format, &body)
}

/// Whether every root field of the operation is `uploadAttachment`: then files are
/// attachments, sniffed as they stream in; other uploads are only bounded.
fn attachments_only(req: &async_graphql::Request) -> bool {
    let Ok(doc) = parse_query(&req.query) else {
        return false;
    };
    let op = match (&doc.operations, req.operation_name.as_deref()) {
        (DocumentOperations::Single(op), _) => Some(op),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next(),
        _ => None,
    };
    op.is_some_and(|op| {
        let items = &op.node.selection_set.node.items;
        !items.is_empty()
            && items.iter().all(|s| match &s.node {
                Selection::Field(f) => f.node.name.node == "uploadAttachment",
                _ => false,
            })
    })
}

/// Reads a small text part (`operations`, `map`) up to `limit` bytes.
async fn small_part(field: &mut multer::Field<'_>, limit: usize) -> Result<Vec<u8>, ()> {
    let mut out = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|_| ())? {
        if out.len() + chunk.len() > limit {
            return Err(());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Streams one file part into an [`Incoming`].
async fn receive_file(
    field: &mut multer::Field<'_>,
    s: &AppState,
    file_name: &str,
    check: Check,
) -> Result<Staged, AttachmentError> {
    let limit = s.attachments.limit;
    let mut incoming = Incoming::begin(&s.attachments.data_dir, file_name, limit, check).await?;
    loop {
        match field.chunk().await {
            Ok(Some(chunk)) => incoming.push(&chunk).await?,
            Ok(None) => break,
            Err(e) => {
                return Err(AttachmentError::Io(std::io::Error::other(format!(
                    "the upload was cut off: {e}"
                ))));
            }
        }
    }
    incoming.finish().await
}

/// Receives a multipart upload and runs its operation (see the module comment).
pub async fn receive(
    s: &AppState,
    rid: &RequestId,
    peer: SocketAddr,
    headers: &HeaderMap,
    content_type: &str,
    body: Body,
    format: Format,
) -> Response {
    let viewer = match auth::identify(
        &s.keys,
        &s.workflow,
        header_str(headers, header::AUTHORIZATION),
    )
    .await
    {
        Identity::User(v) => v,
        Identity::Forbidden { zh, en } => {
            return reply::error(StatusCode::FORBIDDEN, format, Code::Forbidden, &zh, &en);
        }
        Identity::Rejected { zh, en } => {
            return reply::error(
                StatusCode::UNAUTHORIZED,
                format,
                Code::Unauthenticated,
                &zh,
                &en,
            );
        }
        Identity::Anonymous => {
            return reply::error(
                StatusCode::UNAUTHORIZED,
                format,
                Code::Unauthenticated,
                "上传文件前请先登录（Authorization: Bearer 令牌）",
                "sign in before uploading: send Authorization: Bearer <token>",
            );
        }
    };
    let limit = s.attachments.limit;
    let whole_limit = limit.saturating_add(s.body_limit);
    let declared = header_str(headers, header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > whole_limit as u64) {
        return too_large(format, limit);
    }
    let Some(_permit) = s.uploads.admit(&viewer.id) else {
        let mut r = reply::error(
            StatusCode::TOO_MANY_REQUESTS,
            format,
            Code::RateLimited,
            "同时进行的上传过多，请稍后再试",
            "too many uploads in flight; retry shortly",
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    };
    let Ok(boundary) = multer::parse_boundary(content_type) else {
        return bad_request(
            format,
            "multipart 请求缺少 boundary",
            "the multipart request has no boundary",
        );
    };
    let constraints = multer::Constraints::new()
        .size_limit(multer::SizeLimit::new().whole_stream(whole_limit as u64));
    let mut parts =
        multer::Multipart::with_constraints(body.into_data_stream(), boundary, constraints);
    let malformed = || {
        bad_request(
            format,
            "multipart 请求格式错误（须含 operations、map 与文件，见 GraphQL multipart 请求规范）",
            "malformed multipart request; send operations, map and the files as the GraphQL multipart request spec says",
        )
    };
    let mut operations: Option<async_graphql::Request> = None;
    let mut map: Option<HashMap<String, Vec<String>>> = None;
    let mut check = Check::SizeOnly;
    let mut files: Vec<(String, Staged)> = Vec::new();
    loop {
        let mut field = match parts.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(multer::Error::StreamSizeExceeded { .. }) => return too_large(format, limit),
            Err(_) => return malformed(),
        };
        let name = field.name().unwrap_or_default().to_string();
        match name.as_str() {
            "operations" => {
                let Ok(bytes) = small_part(&mut field, s.body_limit).await else {
                    return malformed();
                };
                let req = match serde_json::from_slice::<async_graphql::Request>(&bytes) {
                    Ok(req) => req,
                    Err(_) if bytes.trim_ascii_start().starts_with(b"[") => {
                        return bad_request(
                            format,
                            "不支持批量请求",
                            "batched requests are not supported",
                        );
                    }
                    Err(_) => {
                        return reply::error(
                            StatusCode::BAD_REQUEST,
                            format,
                            Code::GraphqlParseFailed,
                            "operations 不是合法的 GraphQL 请求 JSON",
                            "the operations part is not a GraphQL request in JSON",
                        );
                    }
                };
                // Bounded before the parser runs, as for every other request.
                let limits = &s.limits;
                if let Err(r) = taxdesk_graphql::guard::check_text(
                    &req.query,
                    limits.query_bytes,
                    limits.tokens,
                ) {
                    return reply::error(StatusCode::BAD_REQUEST, format, r.code, &r.zh, &r.en);
                }
                if attachments_only(&req) {
                    check = Check::Attachment;
                }
                operations = Some(req);
            }
            "map" => {
                let Ok(bytes) = small_part(&mut field, s.body_limit).await else {
                    return malformed();
                };
                match serde_json::from_slice(&bytes) {
                    Ok(m) => map = Some(m),
                    Err(_) => return malformed(),
                }
            }
            _ => {
                // The spec sends operations and map first; a file before them is refused
                // rather than held until they come.
                let Some(file_name) = field.file_name().map(str::to_string) else {
                    continue;
                };
                if operations.is_none() || map.is_none() {
                    return malformed();
                }
                match receive_file(&mut field, s, &file_name, check).await {
                    Ok(staged) => files.push((name, staged)),
                    Err(AttachmentError::Io(e)) if e.to_string().contains("cut off") => {
                        return malformed();
                    }
                    Err(e) => return refused_file(rid, format, e, limit),
                }
            }
        }
    }
    let (Some(mut req), Some(mut map)) = (operations, map) else {
        return malformed();
    };
    let staged_uploads = StagedUploads::default();
    for (name, staged) in files {
        let Some(paths) = map.remove(&name) else {
            continue;
        };
        let content: axum::body::Bytes = match check {
            // The resolver stores the received file itself.
            Check::Attachment => Default::default(),
            Check::SizeOnly => match staged.read().await {
                Ok(bytes) => bytes.into(),
                Err(e) => {
                    tracing::error!(request.id = %rid.0, error = %e, "reading a received upload");
                    return internal(rid, format);
                }
            },
        };
        let mut staged = Some(staged);
        for path in paths {
            let index = req.uploads.len();
            req.set_upload(
                &path,
                UploadValue {
                    filename: staged
                        .as_ref()
                        .map(|f| f.file_name.clone())
                        .unwrap_or_default(),
                    content_type: None,
                    content: content.clone(),
                },
            );
            if req.uploads.len() > index
                && let Some(f) = staged.take()
            {
                staged_uploads.insert(index, f);
            }
        }
    }
    if !map.is_empty() {
        return bad_request(
            format,
            "map 中列出的文件未随请求发送",
            "the map names files that were not sent",
        );
    }
    super::graphql::run(
        s,
        rid,
        peer,
        headers,
        req.data(staged_uploads),
        format,
        true,
    )
    .await
}
