//! GraphQL over HTTP: POST with a JSON body or, for uploads, a `multipart/form-data` body
//! (the GraphQL multipart request spec), GET with query parameters (queries only) or GraphiQL
//! for a browser. Bodies are bounded and checked before the GraphQL parser runs.

use async_graphql::parser::types::{DocumentOperations, OperationType};
use async_graphql::{ServerError, Variables, parser::parse_query};
use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, Extension, Query, State, rejection::QueryRejection};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Map, Value};
use std::net::SocketAddr;
use taxdesk_graphql::rate_limit::Action;
use taxdesk_graphql::{ClientAddr, Code, Identity, guard};
use taxdesk_workflow::metrics;

use super::rate;
use super::reply::{self, Format};
use super::{AppState, RequestId};
use crate::auth;

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// One GraphQL request, however it arrived.
struct Params {
    query: String,
    variables: Option<Value>,
    operation_name: Option<String>,
}

/// Why a request is not a well-formed GraphQL-over-HTTP request: answered 400 whatever
/// the negotiated format, since no GraphQL response could be produced for it.
struct Unusable {
    code: Code,
    zh: &'static str,
    en: &'static str,
}

impl Unusable {
    fn bad_request(zh: &'static str, en: &'static str) -> Unusable {
        Unusable {
            code: Code::BadRequest,
            zh,
            en,
        }
    }

    fn reply(self, format: Format) -> Response {
        reply::error(StatusCode::BAD_REQUEST, format, self.code, self.zh, self.en)
    }
}

/// Reads `query`, `variables`, `operationName` from a JSON object, checking their types.
fn params_from_json(map: Map<String, Value>) -> Result<Params, Unusable> {
    let query = match map.get("query") {
        Some(Value::String(q)) => q.clone(),
        Some(_) => {
            return Err(Unusable::bad_request(
                "query 必须是字符串",
                "query must be a string",
            ));
        }
        None => {
            return Err(Unusable::bad_request(
                "缺少 query",
                "the request has no query",
            ));
        }
    };
    let variables = match map.get("variables") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(_)) => Some(v.clone()),
        Some(_) => {
            return Err(Unusable::bad_request(
                "variables 必须是对象",
                "variables must be an object",
            ));
        }
    };
    let operation_name = match map.get("operationName") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            return Err(Unusable::bad_request(
                "operationName 必须是字符串",
                "operationName must be a string",
            ));
        }
    };
    if !matches!(
        map.get("extensions"),
        None | Some(Value::Null) | Some(Value::Object(_))
    ) {
        return Err(Unusable::bad_request(
            "extensions 必须是对象",
            "extensions must be an object",
        ));
    }
    Ok(Params {
        query,
        variables,
        operation_name,
    })
}

/// Turns GET query parameters into the JSON shape of a POST body, so both are checked by
/// `params_from_json`. `variables` and `extensions` arrive JSON-encoded (the spec's
/// encoding); other parameters (a cache buster, say) are ignored.
fn json_from_query(pairs: Vec<(String, String)>) -> Result<Map<String, Value>, Unusable> {
    let mut map = Map::new();
    for (name, value) in pairs {
        let value = match name.as_str() {
            "query" => Value::String(value),
            // The spec: an empty operationName is the same as none (names are never empty).
            "operationName" if value.is_empty() => continue,
            "operationName" => Value::String(value),
            "variables" | "extensions" => serde_json::from_str(&value).map_err(|_| Unusable {
                code: Code::GraphqlParseFailed,
                zh: "variables 与 extensions 须为 JSON 编码",
                en: "variables and extensions must be JSON-encoded",
            })?,
            _ => continue,
        };
        // Which of two values was meant is a guess; refuse rather than pick one.
        if map.insert(name, value).is_some() {
            return Err(Unusable::bad_request(
                "请求参数重复",
                "a request parameter is given more than once",
            ));
        }
    }
    Ok(map)
}

/// Whether a POST body is declared UTF-8 JSON, so it can be read. A missing charset means
/// UTF-8 (the spec); another one would be misread, since JSON is decoded as UTF-8.
fn is_utf8_json(content_type: &str) -> bool {
    let mut parts = content_type.split(';');
    let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let json = media == "application/json" || media == "application/graphql-response+json";
    json && parts
        .filter_map(|p| p.split_once('='))
        .filter(|(name, _)| name.trim().eq_ignore_ascii_case("charset"))
        .all(|(_, value)| reply::is_utf8(value))
}

/// Whether a POST body is `multipart/form-data`: an upload by the GraphQL multipart
/// request spec (`operations`, `map`, then the files).
fn is_form_data(content_type: &str) -> bool {
    let media = content_type.split(';').next().unwrap_or("").trim();
    media.eq_ignore_ascii_case("multipart/form-data")
}

fn too_large(format: Format, limit: usize, zh_what: &str, en_what: &str) -> Response {
    reply::error(
        StatusCode::PAYLOAD_TOO_LARGE,
        format,
        Code::PayloadTooLarge,
        &format!("{zh_what}超过 {limit} 字节上限"),
        &format!("{en_what} is larger than the {limit} byte limit"),
    )
}

pub async fn post(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(format) = Format::negotiate(header_str(&headers, header::ACCEPT)) else {
        return reply::not_acceptable();
    };
    let content_type = header_str(&headers, header::CONTENT_TYPE).unwrap_or("");
    if is_form_data(content_type) {
        return super::upload::receive(&s, &rid, peer, &headers, content_type, body, format).await;
    }
    if !is_utf8_json(content_type) {
        return reply::unsupported_media_type(format, content_type);
    }
    let Ok(bytes) = to_bytes(body, s.body_limit).await else {
        return too_large(format, s.body_limit, "请求体", "the body");
    };
    // serde_json bounds nesting (128) and rejects lone surrogates and bad escapes.
    let value: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            return reply::error(
                StatusCode::BAD_REQUEST,
                format,
                Code::GraphqlParseFailed,
                "请求体不是合法的 JSON",
                &format!("the body is not valid JSON: {e}"),
            );
        }
    };
    let params = match value {
        Value::Object(map) => params_from_json(map),
        Value::Array(_) => Err(Unusable::bad_request(
            "不支持批量请求",
            "batched requests are not supported",
        )),
        _ => Err(Unusable::bad_request(
            "请求体须为 JSON 对象",
            "the body must be a JSON object",
        )),
    };
    match params {
        Ok(p) => execute(&s, &rid, peer, &headers, p, format, true).await,
        Err(unusable) => unusable.reply(format),
    }
}

pub async fn get(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    let accept = header_str(&headers, header::ACCEPT);
    let Ok(Query(pairs)) = query else {
        let format = Format::negotiate(accept).unwrap_or(Format::Json);
        return Unusable::bad_request("查询参数格式错误", "the query string is malformed")
            .reply(format);
    };
    // A browser opening the endpoint gets GraphiQL; a request with a query is GraphQL.
    let wants_html = accept.is_some_and(|a| a.contains("text/html"));
    if wants_html && !pairs.iter().any(|(name, _)| name == "query") {
        return super::web::graphiql(&s).await;
    }
    let Some(format) = Format::negotiate(accept) else {
        return reply::not_acceptable();
    };
    match json_from_query(pairs).and_then(params_from_json) {
        Ok(p) => execute(&s, &rid, peer, &headers, p, format, false).await,
        Err(unusable) => unusable.reply(format),
    }
}

pub async fn method_not_allowed() -> Response {
    let mut r = reply::error(
        StatusCode::METHOD_NOT_ALLOWED,
        Format::Json,
        Code::BadRequest,
        "仅支持 GET 与 POST",
        "only GET and POST are supported",
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
    r
}

/// Whether the operation the request selects is a mutation (GET may only query).
fn is_mutation(query: &str, operation_name: Option<&str>) -> bool {
    let Ok(doc) = parse_query(query) else {
        return false;
    };
    let ty = match (&doc.operations, operation_name) {
        (DocumentOperations::Single(op), _) => Some(op.node.ty),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| op.node.ty),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().map(|op| op.node.ty)
        }
        _ => None,
    };
    ty == Some(OperationType::Mutation)
}

/// The spec's answer to a mutation sent with GET: 405, and nothing executed.
fn mutation_over_get(format: Format) -> Response {
    let mut r = reply::error(
        StatusCode::METHOD_NOT_ALLOWED,
        format,
        Code::BadRequest,
        "变更操作须使用 POST",
        "mutations must be sent with POST",
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    r
}

fn error_code(e: &ServerError) -> Option<&str> {
    match e.extensions.as_ref()?.get("code")? {
        async_graphql::Value::String(s) => Some(s.as_str()),
        _ => None,
    }
}

/// Whether the request was refused before any resolver ran (parse, validation, limits,
/// variable coercion): a GraphQL request error, as opposed to a field error. Mirrors
/// `Code::is_request_error`; an error without a code is not assumed to be one.
fn is_request_error(resp: &async_graphql::Response) -> bool {
    resp.data == async_graphql::Value::Null
        && !resp.errors.is_empty()
        && resp.errors.iter().all(|e| {
            matches!(
                error_code(e),
                Some(
                    "GRAPHQL_PARSE_FAILED"
                        | "GRAPHQL_VALIDATION_FAILED"
                        | "QUERY_TOO_COMPLEX"
                        | "BAD_REQUEST"
                )
            )
        })
}

/// The status of a request error: 400 where the client reads status codes
/// (`application/graphql-response+json`), 200 for legacy `application/json` clients.
fn request_error_status(format: Format) -> StatusCode {
    match format {
        Format::GraphqlResponse => StatusCode::BAD_REQUEST,
        Format::Json => StatusCode::OK,
    }
}

async fn execute(
    s: &AppState,
    rid: &RequestId,
    peer: SocketAddr,
    headers: &HeaderMap,
    p: Params,
    format: Format,
    allow_mutation: bool,
) -> Response {
    let mut req = async_graphql::Request::new(p.query);
    if let Some(v) = p.variables {
        req = req.variables(Variables::from_json(v));
    }
    if let Some(op) = p.operation_name {
        req = req.operation_name(op);
    }
    run(s, rid, peer, headers, req, format, allow_mutation).await
}

/// Checks, authenticates and executes one request, however it was read.
pub(super) async fn run(
    s: &AppState,
    rid: &RequestId,
    peer: SocketAddr,
    headers: &HeaderMap,
    req: async_graphql::Request,
    format: Format,
    allow_mutation: bool,
) -> Response {
    // Before anything parses it (GET parses it below); the schema checks it again, with
    // the rest of its bounds, for every transport.
    let limits = &s.limits;
    if let Err(r) = guard::check_text(&req.query, limits.query_bytes, limits.tokens) {
        return reply::error(request_error_status(format), format, r.code, &r.zh, &r.en);
    }
    if !allow_mutation && is_mutation(&req.query, req.operation_name.as_deref()) {
        return mutation_over_get(format);
    }
    let identity = auth::identify(
        &s.keys,
        &s.workflow,
        header_str(headers, header::AUTHORIZATION),
    )
    .await;
    // Guessing tokens spends the address's sign-in allowance.
    if matches!(identity, Identity::Rejected { .. })
        && let Some(refused) = rate::refuse(s, Action::Login, peer.ip(), format)
    {
        return refused;
    }
    let req = req
        .data(identity)
        .data(ClientAddr(peer.ip()))
        .data(taxdesk_graphql::RequestId(rid.0.clone()))
        .data(s.attachments.clone());
    let resp = s.schema.execute(req).await;
    respond(&resp, format)
}

/// Counts the outcome and encodes the GraphQL response with the status its kind calls for.
fn respond(resp: &async_graphql::Response, format: Format) -> Response {
    let request_error = is_request_error(resp);
    let outcome = if resp.errors.is_empty() {
        "ok"
    } else if request_error {
        "rejected"
    } else {
        "error"
    };
    metrics::inc("taxdesk_graphql_operations_total", &[("outcome", outcome)]);
    for e in &resp.errors {
        tracing::debug!(error = %e.message, "graphql error");
    }
    let mut body = serde_json::to_value(resp).unwrap_or_else(|_| Value::Object(Map::new()));
    if !request_error {
        let mut r = reply::json(StatusCode::OK, format, &body);
        rate::mark(&mut r, &body);
        return r;
    }
    if let Value::Object(m) = &mut body {
        // A request that never executed has no `data` entry (GraphQL over HTTP).
        m.remove("data");
    }
    reply::json(request_error_status(format), format, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn get_parameters_are_read_like_a_json_body() {
        let map = json_from_query(pairs(&[
            ("query", "{ __typename }"),
            ("operationName", ""),
            ("variables", r#"{"a":1}"#),
            ("extensions", "{}"),
            ("_", "cache-buster"),
        ]))
        .ok()
        .and_then(|m| params_from_json(m).ok());
        let p = map.expect("well-formed");
        assert_eq!(p.query, "{ __typename }");
        assert_eq!(p.operation_name, None, "an empty operationName is none");
        assert_eq!(p.variables, Some(serde_json::json!({"a": 1})));
    }

    #[test]
    fn get_parameters_that_are_ambiguous_or_not_json_are_refused() {
        let dup = json_from_query(pairs(&[("query", "{ a }"), ("query", "{ b }")]));
        assert!(dup.is_err_and(|u| u.code == Code::BadRequest));
        let bad = json_from_query(pairs(&[("query", "{ a }"), ("variables", "{")]));
        assert!(bad.is_err_and(|u| u.code == Code::GraphqlParseFailed));
        let ext = json_from_query(pairs(&[("query", "{ a }"), ("extensions", "[1]")]))
            .and_then(params_from_json);
        assert!(ext.is_err_and(|u| u.code == Code::BadRequest));
    }

    #[test]
    fn only_utf8_json_bodies_are_read() {
        let ok = is_utf8_json;
        assert!(ok("application/json"));
        assert!(ok("Application/JSON; charset=UTF-8"));
        assert!(ok("application/json; charset=\"utf-8\""));
        assert!(!ok("application/json; charset=iso-8859-1"));
        assert!(!ok("text/plain"));
        assert!(!ok("application/x-www-form-urlencoded"));
        assert!(!ok(""), "a POST without Content-Type is refused");
    }
}
