//! GraphQL over HTTP: every refusal is a GraphQL JSON body with a code; limits hold.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::TestApp;

async fn post_raw(
    app: &TestApp,
    content_type: &str,
    accept: Option<&str>,
    body: String,
) -> (StatusCode, String, Value) {
    let mut req = app
        .http
        .post(format!("{}/graphql", app.base))
        .header("content-type", content_type)
        .bearer_auth(app.token("taxpayer", "tp1"))
        .body(body);
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let text = resp.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, ct, body)
}

fn code(v: &Value) -> &str {
    v["errors"][0]["extensions"]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn malformed_requests_get_coded_json_errors() {
    let app = TestApp::spawn().await;
    let json_ct = "application/json";
    let gr = Some("application/graphql-response+json");

    let (s, ct, b) = post_raw(&app, json_ct, gr, "{not json".into()).await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::BAD_REQUEST, "GRAPHQL_PARSE_FAILED")
    );
    assert!(ct.starts_with("application/graphql-response+json"));

    let (s, _, b) = post_raw(
        &app,
        json_ct,
        gr,
        r#"{"query": "{ me { id } }\ud800"}"#.into(),
    )
    .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::BAD_REQUEST, "GRAPHQL_PARSE_FAILED")
    );

    let (s, _, b) = post_raw(&app, json_ct, gr, r#"[{"query": "{ me { id } }"}]"#.into()).await;
    assert_eq!((s, code(&b)), (StatusCode::BAD_REQUEST, "BAD_REQUEST"));

    let (s, _, b) = post_raw(&app, json_ct, gr, r#"{"query": "{ me { id "}"#.into()).await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::BAD_REQUEST, "GRAPHQL_PARSE_FAILED")
    );
    assert!(b.get("data").is_none(), "no data entry on a request error");

    let (s, _, b) = post_raw(&app, json_ct, gr, r#"{"query": "{ me { nope } }"}"#.into()).await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::BAD_REQUEST, "GRAPHQL_VALIDATION_FAILED")
    );
    // The legacy media type answers 200 to a well-formed request.
    let (s, ct, b) = post_raw(
        &app,
        json_ct,
        Some("application/json"),
        r#"{"query": "{ me { nope } }"}"#.into(),
    )
    .await;
    assert_eq!((s, code(&b)), (StatusCode::OK, "GRAPHQL_VALIDATION_FAILED"));
    assert!(ct.starts_with("application/json"));

    let (s, _, b) = post_raw(
        &app,
        "text/plain",
        None,
        r#"{"query": "{ me { id } }"}"#.into(),
    )
    .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE")
    );

    let big = format!(
        r#"{{"query": "{{ me {{ id }} }}", "variables": {{"x": "{}"}}}}"#,
        "x".repeat(3 * 1024 * 1024)
    );
    let (s, _, b) = post_raw(&app, json_ct, None, big).await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE")
    );

    let (s, _, b) = post_raw(
        &app,
        json_ct,
        gr,
        r#"{"query": "{ me { id } }", "variables": [1]}"#.into(),
    )
    .await;
    assert_eq!((s, code(&b)), (StatusCode::BAD_REQUEST, "BAD_REQUEST"));
}

#[tokio::test]
async fn media_types_are_negotiated_and_refused_with_coded_errors() {
    let app = TestApp::spawn().await;
    let typename = r#"{"query": "{ __typename }"}"#;

    // The client's recommended Accept (GraphQL over HTTP): the GraphQL response type wins.
    let (s, ct, b) = post_raw(
        &app,
        "application/json; charset=utf-8",
        Some("application/graphql-response+json; charset=utf-8, application/json; charset=utf-8"),
        typename.into(),
    )
    .await;
    assert_eq!(
        (s, &b["data"]["__typename"]),
        (StatusCode::OK, &json!("Query"))
    );
    assert!(ct.starts_with("application/graphql-response+json"));

    // Accept names nothing we write: 406, as the spec recommends, still a coded JSON error.
    let (s, ct, b) = post_raw(
        &app,
        "application/json",
        Some("text/plain"),
        typename.into(),
    )
    .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::NOT_ACCEPTABLE, "UNSUPPORTED_MEDIA_TYPE")
    );
    assert!(ct.starts_with("application/json"));

    // A body in another charset would be misread as UTF-8.
    let (s, _, b) = post_raw(
        &app,
        "application/json; charset=iso-8859-1",
        None,
        typename.into(),
    )
    .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE")
    );
}

#[tokio::test]
async fn get_parameters_follow_the_spec_encoding() {
    let app = TestApp::spawn().await;
    let get = |params: &'static [(&'static str, &'static str)]| {
        app.http
            .get(format!("{}/graphql", app.base))
            .header("accept", "application/graphql-response+json")
            .query(params)
            .send()
    };
    // An empty operationName is the same as none.
    let r = get(&[("query", "query A { __typename }"), ("operationName", "")])
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["data"]["__typename"], "Query", "{b}");

    // Two values for one parameter: which was meant is a guess, so it is refused.
    let r = get(&[("query", "{ __typename }"), ("query", "{ me { id } }")])
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let b: Value = r.json().await.unwrap();
    assert_eq!(code(&b), "BAD_REQUEST");

    // extensions is JSON-encoded and must be an object, as in a POST body.
    let r = get(&[("query", "{ __typename }"), ("extensions", "[1]")])
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let b: Value = r.json().await.unwrap();
    assert_eq!(code(&b), "BAD_REQUEST");
}

#[tokio::test]
async fn deep_wide_and_nested_queries_are_refused() {
    let app = TestApp::spawn().await;
    let gr = Some("application/graphql-response+json");
    // A list nested 3,000 deep in an argument: refused before the parser can overflow.
    let deep_list = format!(
        "{{ myWorkOrders(after: {}\"x\"{}) {{ totalCount }} }}",
        "[".repeat(3000),
        "]".repeat(3000)
    );
    let (s, _, b) = post_raw(
        &app,
        "application/json",
        gr,
        json!({"query": deep_list}).to_string(),
    )
    .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::BAD_REQUEST, "QUERY_TOO_COMPLEX")
    );

    // Selection depth over the limit.
    let deep = "{ myWorkOrders { edges { node { history { actor { id } } handler { id } } } } a: me { id } }";
    let (_, _, b) = post_raw(
        &app,
        "application/json",
        gr,
        json!({"query": deep}).to_string(),
    )
    .await;
    assert!(b.get("errors").is_none(), "a normal query passes: {b}");
    let too_deep = format!(
        "{{ __schema {{ types {{ fields {{ type {{ {} name {} }} }} }} }} }}",
        "ofType { ".repeat(12),
        "} ".repeat(12)
    );
    let (_, _, b) = post_raw(
        &app,
        "application/json",
        gr,
        json!({"query": too_deep}).to_string(),
    )
    .await;
    assert_eq!(code(&b), "QUERY_TOO_COMPLEX", "{b}");

    // Many aliases of an expensive field: complexity.
    let wide: String = (0..300)
        .map(|i| {
            format!(
                "a{i}: myWorkOrders(first: 100) {{ totalCount edges {{ node {{ id title }} }} }} "
            )
        })
        .collect();
    let (_, _, b) = post_raw(
        &app,
        "application/json",
        gr,
        json!({"query": format!("{{ {wide} }}")}).to_string(),
    )
    .await;
    assert_eq!(code(&b), "QUERY_TOO_COMPLEX");
}

#[tokio::test]
async fn get_serves_graphiql_queries_and_refuses_mutations() {
    // GraphiQL is served while introspection is on (see `pages.rs` for when it is off).
    let app = TestApp::spawn_with(&[("TAXDESK_INTROSPECTION", "on")]).await;
    let page = app
        .http
        .get(format!("{}/graphql", app.base))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("graphiql"));

    let q = app
        .http
        .get(format!("{}/graphql", app.base))
        .query(&[("query", "{ me { id } }")])
        .bearer_auth(app.token("taxpayer", "tp1"))
        .send()
        .await
        .unwrap();
    assert_eq!(q.status(), StatusCode::OK);
    let b: Value = q.json().await.unwrap();
    assert_eq!(b["data"]["me"]["id"], "tp1");

    let m = app
        .http
        .get(format!("{}/graphql", app.base))
        .query(&[("query", "mutation { markAllNotificationsRead }")])
        .bearer_auth(app.token("taxpayer", "tp1"))
        .send()
        .await
        .unwrap();
    assert_eq!(m.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn health_metrics_and_unknown_routes() {
    let app = TestApp::spawn().await;
    let h = app
        .http
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(h.status(), StatusCode::OK);
    let b: Value = h.json().await.unwrap();
    assert_eq!(b["database"], "ok");

    app.user("taxpayer", "tp1")
        .gql("mutation { createWorkOrder(input: {title: \"t\", description: \"d\", category: \"其他\"}) { id } }", json!({}))
        .await
        .ok();
    let m = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains("# TYPE taxdesk_transitions_total counter"),
        "{m}"
    );
    assert!(
        m.contains(r#"taxdesk_transitions_total{machine="work_order",event="CREATE"}"#),
        "{m}"
    );
    assert!(m.contains("taxdesk_http_requests_total{"), "{m}");
    assert!(m.contains("taxdesk_jobs_run_total"));
    assert!(m.contains("taxdesk_outbox_sent_total"));

    let nf = app
        .http
        .get(format!("{}/nope", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(nf.status(), StatusCode::NOT_FOUND);
    let b: Value = nf.json().await.unwrap();
    assert_eq!(code(&b), "NOT_FOUND");
}

#[test]
fn the_sdl_names_every_work_order_and_notification_operation_of_api_md() {
    let sdl = taxdesk_graphql::sdl();
    for name in [
        "createWorkOrder(input: CreateWorkOrderInput!): WorkOrder!",
        "dispatchWorkOrder(input: DispatchWorkOrderInput!): WorkOrder!",
        "acceptWorkOrder(id: ID!): WorkOrder!",
        "addWorkOrderProgress(input: AddWorkOrderProgressInput!): WorkOrder!",
        "completeWorkOrder(input: CompleteWorkOrderInput!): WorkOrder!",
        "urgeWorkOrder(input: UrgeWorkOrderInput!): WorkOrder!",
        "terminateWorkOrder(input: TerminateWorkOrderInput!): WorkOrder!",
        "rateWorkOrder(input: RateWorkOrderInput!): WorkOrder!",
        "workOrders(filter: WorkOrderFilter",
        "workOrder(id: ID!): WorkOrder",
        "myWorkOrders(status: WorkOrderStatus",
        "myNotifications(unreadOnly: Boolean",
        "markNotificationsRead(ids: [ID!]!)",
        "myTodos: [Todo!]!",
        "unreadCounts: UnreadCounts!",
        "me: Viewer!",
        "notifications: Notification!",
        "urgeCount: Int!",
        "allowedActions: [WorkOrderAction!]!",
        "history: [HistoryEntry!]!",
        "RATE_WORK_ORDER",
        "leaveMessageReplies",
    ] {
        assert!(sdl.contains(name), "SDL lacks {name}");
    }
}
