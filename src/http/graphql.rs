//! GraphQL over HTTP: POST with a JSON body, GET with query parameters (queries only) or
//! GraphiQL for a browser. Bodies are bounded and checked before the GraphQL parser runs.

use std::collections::HashMap;

use async_graphql::parser::types::{DocumentOperations, OperationType};
use async_graphql::{Variables, parser::parse_query};
use axum::body::{Body, to_bytes};
use axum::extract::{Extension, Query, State, rejection::QueryRejection};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::Value;
use taxdesk_graphql::{Code, guard};
use taxdesk_workflow::metrics;

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

fn bad_request(format: Format, zh: &str, en: &str) -> Response {
    reply::error(StatusCode::BAD_REQUEST, format, Code::BadRequest, zh, en)
}

/// Why a request's parameters are unusable, in Chinese and English.
type Unusable = (&'static str, &'static str);

/// Reads `query`, `variables`, `operationName` from a JSON object, checking their types.
fn params_from_json(map: serde_json::Map<String, Value>) -> Result<Params, Unusable> {
    let query = match map.get("query") {
        Some(Value::String(q)) => q.clone(),
        Some(_) => return Err(("query 必须是字符串", "query must be a string")),
        None => return Err(("缺少 query", "the request has no query")),
    };
    let variables = match map.get("variables") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(_)) => Some(v.clone()),
        Some(_) => return Err(("variables 必须是对象", "variables must be an object")),
    };
    let operation_name = match map.get("operationName") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            return Err((
                "operationName 必须是字符串",
                "operationName must be a string",
            ));
        }
    };
    if !matches!(
        map.get("extensions"),
        None | Some(Value::Null) | Some(Value::Object(_))
    ) {
        return Err(("extensions 必须是对象", "extensions must be an object"));
    }
    Ok(Params {
        query,
        variables,
        operation_name,
    })
}

pub async fn post(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let format = Format::from_accept(header_str(&headers, header::ACCEPT));
    let content_type = header_str(&headers, header::CONTENT_TYPE).unwrap_or("");
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media != "application/json" && media != "application/graphql-response+json" {
        return reply::error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format,
            Code::UnsupportedMediaType,
            "请求体须为 application/json",
            &format!("the body must be application/json, not {content_type:?}"),
        );
    }
    let bytes = match to_bytes(body, s.body_limit).await {
        Ok(b) => b,
        Err(_) => {
            return reply::error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format,
                Code::PayloadTooLarge,
                &format!("请求体超过 {} 字节上限", s.body_limit),
                &format!("the body is larger than the {} byte limit", s.body_limit),
            );
        }
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
        Value::Object(map) => match params_from_json(map) {
            Ok(p) => p,
            Err((zh, en)) => return bad_request(format, zh, en),
        },
        Value::Array(_) => {
            return bad_request(
                format,
                "不支持批量请求",
                "batched requests are not supported",
            );
        }
        _ => {
            return bad_request(
                format,
                "请求体须为 JSON 对象",
                "the body must be a JSON object",
            );
        }
    };
    execute(&s, &rid, &headers, params, format, true).await
}

pub async fn get(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    headers: HeaderMap,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let format = Format::from_accept(header_str(&headers, header::ACCEPT));
    let Ok(Query(q)) = query else {
        return bad_request(format, "查询参数格式错误", "the query string is malformed");
    };
    let wants_html = header_str(&headers, header::ACCEPT).is_some_and(|a| a.contains("text/html"));
    if !q.contains_key("query") && wants_html {
        return Html(s.graphiql.as_str().to_owned()).into_response();
    }
    let mut map = serde_json::Map::new();
    if let Some(query) = q.get("query") {
        map.insert("query".into(), Value::String(query.clone()));
    }
    if let Some(op) = q.get("operationName") {
        map.insert("operationName".into(), Value::String(op.clone()));
    }
    if let Some(v) = q.get("variables") {
        match serde_json::from_str::<Value>(v) {
            Ok(v) => {
                map.insert("variables".into(), v);
            }
            Err(_) => {
                return reply::error(
                    StatusCode::BAD_REQUEST,
                    format,
                    Code::GraphqlParseFailed,
                    "variables 不是合法的 JSON",
                    "variables is not valid JSON",
                );
            }
        }
    }
    match params_from_json(map) {
        Ok(p) => execute(&s, &rid, &headers, p, format, false).await,
        Err((zh, en)) => bad_request(format, zh, en),
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

async fn execute(
    s: &AppState,
    rid: &RequestId,
    headers: &HeaderMap,
    p: Params,
    format: Format,
    allow_mutation: bool,
) -> Response {
    let request_error_status = match format {
        Format::GraphqlResponse => StatusCode::BAD_REQUEST,
        Format::Json => StatusCode::OK,
    };
    if guard::nesting_depth(&p.query) > guard::MAX_NESTING {
        return reply::error(
            request_error_status,
            format,
            Code::QueryTooComplex,
            "查询嵌套过深",
            &format!("the query nests deeper than {} levels", guard::MAX_NESTING),
        );
    }
    if !allow_mutation && is_mutation(&p.query, p.operation_name.as_deref()) {
        let mut r = reply::error(
            StatusCode::METHOD_NOT_ALLOWED,
            format,
            Code::BadRequest,
            "变更操作须使用 POST",
            "mutations must be sent with POST",
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return r;
    }
    let identity = auth::identify(
        &s.keys,
        &s.workflow,
        header_str(headers, header::AUTHORIZATION),
    )
    .await;
    let mut req = async_graphql::Request::new(p.query)
        .data(identity)
        .data(taxdesk_graphql::RequestId(rid.0.clone()));
    if let Some(v) = p.variables {
        req = req.variables(Variables::from_json(v));
    }
    if let Some(op) = p.operation_name {
        req = req.operation_name(op);
    }
    let resp = s.schema.execute(req).await;

    let codes: Vec<&str> = resp
        .errors
        .iter()
        .filter_map(|e| e.extensions.as_ref()?.get("code"))
        .filter_map(|v| match v {
            async_graphql::Value::String(s) => Some(s.as_str()),
            _ => None,
        })
        .collect();
    let request_error = resp.data == async_graphql::Value::Null
        && !resp.errors.is_empty()
        && codes.iter().all(|c| {
            matches!(
                *c,
                "GRAPHQL_PARSE_FAILED"
                    | "GRAPHQL_VALIDATION_FAILED"
                    | "QUERY_TOO_COMPLEX"
                    | "BAD_REQUEST"
            )
        });
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
    let mut body =
        serde_json::to_value(&resp).unwrap_or_else(|_| Value::Object(Default::default()));
    if request_error && let Value::Object(m) = &mut body {
        // A request that never executed has no `data` entry (GraphQL over HTTP).
        m.remove("data");
    }
    let status = if request_error {
        request_error_status
    } else {
        StatusCode::OK
    };
    reply::json(status, format, &body)
}
