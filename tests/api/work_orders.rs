//! Work orders through GraphQL: the whole life, scoping, concurrency, refusals.

use serde_json::{Value, json};

use crate::helpers::{Client, TestApp};

pub const FIELDS: &str = "id number title status priority urgeCount version deadline overdue
    handler { id displayName } taxpayer { id } rating { score comment }
    allowedActions history { event fromStatus toStatus note actor { id role } }";

pub async fn create(c: &Client, title: &str) -> Value {
    let q = format!(
        "mutation($input: CreateWorkOrderInput!) {{ createWorkOrder(input: $input) {{ {FIELDS} }} }}"
    );
    c.gql(
        &q,
        json!({"input": {"title": title, "description": "电子税务局开票时提示额度不足", "category": "发票业务"}}),
    )
    .await
    .ok()["createWorkOrder"]
        .clone()
}

async fn act(c: &Client, mutation: &str, input_type: &str, input: Value) -> crate::helpers::Gql {
    let q =
        format!("mutation($input: {input_type}!) {{ {mutation}(input: $input) {{ {FIELDS} }} }}");
    c.gql(&q, json!({ "input": input })).await
}

async fn accept(c: &Client, id: &str) -> crate::helpers::Gql {
    let q = format!("mutation($id: ID!) {{ acceptWorkOrder(id: $id) {{ {FIELDS} }} }}");
    c.gql(&q, json!({ "id": id })).await
}

fn actions(v: &Value) -> Vec<&str> {
    v["allowedActions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect()
}

async fn history_rows(app: &TestApp, id: &str) -> i64 {
    app.count(&format!(
        "SELECT id FROM work_order_history WHERE work_order_id = '{id}'"
    ))
    .await
}

async fn notification_rows(app: &TestApp) -> i64 {
    app.count("SELECT id FROM notifications").await
}

#[tokio::test]
async fn the_whole_life_of_a_work_order() {
    let app = TestApp::spawn().await;
    let tp = app.user("taxpayer", "tp1");
    let s1 = app.user("staff", "s1");
    let s2 = app.user("staff", "s2");
    let admin = app.user("admin", "a1");
    // Staff must have signed in once to be chosen as handlers.
    for c in [&s1, &s2, &admin] {
        c.gql("{ me { id } }", json!({})).await.ok();
    }

    let wo = create(&tp, "发票额度不足").await;
    let id = wo["id"].as_str().unwrap().to_string();
    assert_eq!(wo["status"], "SUBMITTED");
    assert!(wo["number"].as_str().unwrap().starts_with("GD2"));
    assert_eq!(wo["number"].as_str().unwrap().len(), 14);
    assert_eq!(wo["version"], 1);
    assert_eq!(actions(&wo), ["URGE", "TERMINATE"]);
    assert!(wo["deadline"].is_string());
    // The supervisor hears of the new order.
    let n = admin
        .gql(
            "{ myNotifications { edges { node { kind targetId } } } }",
            json!({}),
        )
        .await
        .ok();
    assert_eq!(
        n["myNotifications"]["edges"][0]["node"]["kind"],
        "WORK_ORDER_CREATED"
    );

    // s1 dispatches to s2; s2 accepts, reports progress, completes.
    let d = act(
        &s1,
        "dispatchWorkOrder",
        "DispatchWorkOrderInput",
        json!({"id": id, "handlerId": "s2", "note": "请处理"}),
    )
    .await
    .ok();
    let d = &d["dispatchWorkOrder"];
    assert_eq!(d["status"], "DISPATCHED");
    assert_eq!(d["handler"]["id"], "s2");
    assert_eq!(d["handler"]["displayName"], "S2");

    // Only the handler may accept.
    assert_eq!(accept(&s1, &id).await.code(), Some("FORBIDDEN"));
    let a = accept(&s2, &id).await.ok();
    assert_eq!(a["acceptWorkOrder"]["status"], "IN_PROGRESS");
    assert_eq!(
        actions(&a["acceptWorkOrder"]),
        ["DISPATCH", "PROGRESS", "COMPLETE"]
    );

    let p = act(
        &s2,
        "addWorkOrderProgress",
        "AddWorkOrderProgressInput",
        json!({"id": id, "note": "已联系主管税务所"}),
    )
    .await
    .ok();
    assert_eq!(p["addWorkOrderProgress"]["status"], "IN_PROGRESS");

    let c = act(
        &s2,
        "completeWorkOrder",
        "CompleteWorkOrderInput",
        json!({"id": id, "resolution": "已调整发票额度"}),
    )
    .await
    .ok();
    let c = &c["completeWorkOrder"];
    assert_eq!(c["status"], "COMPLETED");
    assert_eq!(c["version"], 5);

    // The taxpayer sees progress and completion, has a to-do to rate, and an email waits.
    let mine = tp
        .gql(
            "{ myNotifications(unreadOnly: true) { totalCount edges { node { id kind title read } } }
               myTodos { kind targetId dueAt } unreadCounts { notifications todos } }",
            json!({}),
        )
        .await
        .ok();
    let kinds: Vec<&str> = mine["myNotifications"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["WORK_ORDER_COMPLETED", "WORK_ORDER_PROGRESS"]);
    assert_eq!(mine["myTodos"][0]["kind"], "RATE_WORK_ORDER");
    assert_eq!(mine["myTodos"][0]["targetId"], id.as_str());
    assert_eq!(mine["unreadCounts"]["notifications"], 2);
    assert_eq!(mine["unreadCounts"]["todos"], 1);
    assert_eq!(
        app.count("SELECT id FROM outbox_emails WHERE to_address = 'tp1@example.com' AND kind = 'WORK_ORDER_COMPLETED'").await,
        1
    );

    let r = act(
        &tp,
        "rateWorkOrder",
        "RateWorkOrderInput",
        json!({"id": id, "score": 5, "comment": "很快"}),
    )
    .await
    .ok();
    let r = &r["rateWorkOrder"];
    assert_eq!(r["rating"]["score"], 5);
    assert_eq!(r["status"], "COMPLETED");
    assert!(actions(r).is_empty());
    let again = act(
        &tp,
        "rateWorkOrder",
        "RateWorkOrderInput",
        json!({"id": id, "score": 4}),
    )
    .await;
    assert_eq!(again.code(), Some("ALREADY_RATED"));
    let todos = tp.gql("{ myTodos { kind } }", json!({})).await.ok();
    assert_eq!(todos["myTodos"], json!([]));

    let events: Vec<(&str, &str)> = r["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["event"].as_str().unwrap(),
                h["toStatus"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        events,
        [
            ("CREATE", "SUBMITTED"),
            ("DISPATCH", "DISPATCHED"),
            ("ACCEPT", "IN_PROGRESS"),
            ("PROGRESS", "IN_PROGRESS"),
            ("COMPLETE", "COMPLETED"),
            ("RATE", "COMPLETED"),
        ]
    );
    assert_eq!(r["history"][1]["actor"]["id"], "s1");
    assert_eq!(r["history"][1]["note"], "请处理");
    assert_eq!(r["history"][0]["fromStatus"], Value::Null);
    assert_eq!(history_rows(&app, &id).await, 6);

    // Staff lists: by handler and status; the handler's own list.
    let list = admin
        .gql(
            r#"{ workOrders(filter: {handlerId: "s2", status: COMPLETED}) { totalCount edges { node { id } } } }"#,
            json!({}),
        )
        .await
        .ok();
    assert_eq!(list["workOrders"]["totalCount"], 1);
    let handled = s2
        .gql("{ myWorkOrders { totalCount } }", json!({}))
        .await
        .ok();
    assert_eq!(handled["myWorkOrders"]["totalCount"], 1);
}

#[tokio::test]
async fn another_taxpayer_can_neither_see_nor_touch_it() {
    let app = TestApp::spawn().await;
    let tp = app.user("taxpayer", "tp1");
    let other = app.user("taxpayer", "tp2");
    let id = create(&tp, "我的工单").await["id"]
        .as_str()
        .unwrap()
        .to_string();

    let seen = other
        .gql(
            "query($id: ID!) { workOrder(id: $id) { id } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(seen.code(), Some("NOT_FOUND"));
    let urged = act(
        &other,
        "urgeWorkOrder",
        "UrgeWorkOrderInput",
        json!({"id": id}),
    )
    .await;
    assert_eq!(urged.code(), Some("NOT_FOUND"));
    let terminated = act(
        &other,
        "terminateWorkOrder",
        "TerminateWorkOrderInput",
        json!({"id": id}),
    )
    .await;
    assert_eq!(terminated.code(), Some("NOT_FOUND"));
    let mine = other
        .gql("{ myWorkOrders { totalCount } }", json!({}))
        .await
        .ok();
    assert_eq!(mine["myWorkOrders"]["totalCount"], 0);
    let all = other.gql("{ workOrders { totalCount } }", json!({})).await;
    assert_eq!(all.code(), Some("FORBIDDEN"));
    // A taxpayer cannot file for someone else either.
    let for_other = other
        .gql(
            "mutation { createWorkOrder(input: {title: \"x\", description: \"y\", category: \"其他\", taxpayerId: \"tp1\"}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(for_other.code(), Some("FORBIDDEN"));
    assert_eq!(history_rows(&app, &id).await, 1);
    assert_eq!(app.count("SELECT id FROM work_orders").await, 1);
}

#[tokio::test]
async fn twenty_concurrent_urges_give_one_success() {
    let app = TestApp::spawn().await;
    let tp = app.user("taxpayer", "tp1");
    let id = create(&tp, "催办并发").await["id"]
        .as_str()
        .unwrap()
        .to_string();

    let urges = (0..20).map(|i| {
        let tp = tp.clone();
        let id = id.clone();
        tokio::spawn(async move {
            act(
                &tp,
                "urgeWorkOrder",
                "UrgeWorkOrderInput",
                json!({"id": id, "reason": format!("第{i}次")}),
            )
            .await
        })
    });
    let results = futures_util::future::join_all(urges).await;
    let mut ok = 0;
    let mut refused = 0;
    for r in results {
        let r = r.unwrap();
        match r.code() {
            None => ok += 1,
            Some("COOL_DOWN") | Some("CONFLICT") => refused += 1,
            Some(other) => panic!("unexpected {other}: {:?}", r.0),
        }
    }
    assert_eq!((ok, refused), (1, 19));
    assert_eq!(
        app.count(&format!(
            "SELECT id FROM work_order_history WHERE work_order_id = '{id}' AND event = 'URGE'"
        ))
        .await,
        1
    );
    let wo = tp
        .gql(
            "query($id: ID!) { workOrder(id: $id) { urgeCount version allowedActions } }",
            json!({"id": id}),
        )
        .await
        .ok();
    assert_eq!(wo["workOrder"]["urgeCount"], 1);
    assert_eq!(wo["workOrder"]["version"], 2);
    // Cooling down: URGE is not offered.
    assert_eq!(wo["workOrder"]["allowedActions"], json!(["TERMINATE"]));
}

#[tokio::test]
async fn urges_escalate_after_the_configured_count() {
    let app = TestApp::spawn_with(&[
        ("TAXDESK_URGE_COOLDOWN", "0s"),
        ("TAXDESK_ESCALATE_AFTER_URGES", "2"),
    ])
    .await;
    let tp = app.user("taxpayer", "tp1");
    let admin = app.user("admin", "a1");
    admin.gql("{ me { id } }", json!({})).await.ok();
    let id = create(&tp, "升级").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut priorities = vec![];
    for _ in 0..2 {
        let u = act(
            &tp,
            "urgeWorkOrder",
            "UrgeWorkOrderInput",
            json!({"id": id}),
        )
        .await
        .ok();
        priorities.push(u["urgeWorkOrder"]["priority"].as_str().unwrap().to_string());
    }
    assert_eq!(priorities, ["NORMAL", "HIGH"]);
    let n = admin
        .gql("{ myNotifications { edges { node { kind } } } }", json!({}))
        .await
        .ok();
    let kinds: Vec<&str> = n["myNotifications"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["kind"].as_str().unwrap())
        .collect();
    // Newest first: the escalation, the two urges (no handler yet), the creation.
    assert_eq!(
        kinds,
        [
            "WORK_ORDER_ESCALATED",
            "WORK_ORDER_URGED",
            "WORK_ORDER_URGED",
            "WORK_ORDER_CREATED"
        ]
    );
}

#[tokio::test]
async fn a_refused_transition_writes_nothing() {
    let app = TestApp::spawn().await;
    let tp = app.user("taxpayer", "tp1");
    let staff = app.user("staff", "s1");
    staff.gql("{ me { id } }", json!({})).await.ok();
    let id = create(&tp, "拒绝").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let before = (history_rows(&app, &id).await, notification_rows(&app).await);

    // Wrong actor, wrong state, bad input, unknown handler.
    assert_eq!(accept(&tp, &id).await.code(), Some("FORBIDDEN"));
    let done = act(
        &staff,
        "completeWorkOrder",
        "CompleteWorkOrderInput",
        json!({"id": id, "resolution": "x"}),
    )
    .await;
    assert_eq!(done.code(), Some("FORBIDDEN"));
    let rate = act(
        &tp,
        "rateWorkOrder",
        "RateWorkOrderInput",
        json!({"id": id, "score": 5}),
    )
    .await;
    assert_eq!(rate.code(), Some("INVALID_TRANSITION"));
    let bad_score = act(
        &tp,
        "rateWorkOrder",
        "RateWorkOrderInput",
        json!({"id": id, "score": 9}),
    )
    .await;
    assert_eq!(bad_score.code(), Some("INVALID_INPUT"));
    let nobody = act(
        &staff,
        "dispatchWorkOrder",
        "DispatchWorkOrderInput",
        json!({"id": id, "handlerId": "ghost"}),
    )
    .await;
    assert_eq!(nobody.code(), Some("INVALID_INPUT"));
    assert_eq!(nobody.0["errors"][0]["extensions"]["field"], "handlerId");
    let to_taxpayer = act(
        &staff,
        "dispatchWorkOrder",
        "DispatchWorkOrderInput",
        json!({"id": id, "handlerId": "tp1"}),
    )
    .await;
    assert_eq!(to_taxpayer.code(), Some("INVALID_INPUT"));
    let empty_note = act(
        &staff,
        "addWorkOrderProgress",
        "AddWorkOrderProgressInput",
        json!({"id": id, "note": "  "}),
    )
    .await;
    assert_eq!(empty_note.code(), Some("INVALID_INPUT"));
    let missing = accept(&staff, "no-such-order").await;
    assert_eq!(missing.code(), Some("NOT_FOUND"));

    assert_eq!(
        (history_rows(&app, &id).await, notification_rows(&app).await),
        before
    );
    let wo = tp
        .gql(
            "query($id: ID!) { workOrder(id: $id) { version status } }",
            json!({"id": id}),
        )
        .await
        .ok();
    assert_eq!(
        wo["workOrder"],
        json!({"version": 1, "status": "SUBMITTED"})
    );
}

#[tokio::test]
async fn bad_input_is_refused_with_a_field_and_nothing_is_created() {
    let app = TestApp::spawn().await;
    let tp = app.user("taxpayer", "tp1");
    let staff = app.user("staff", "s1");
    let q = "mutation($input: CreateWorkOrderInput!) { createWorkOrder(input: $input) { id } }";
    let cases = [
        (
            json!({"title": "", "description": "d", "category": "其他"}),
            "title",
        ),
        (
            json!({"title": "t".repeat(201), "description": "d", "category": "其他"}),
            "title",
        ),
        (
            json!({"title": "t", "description": "", "category": "其他"}),
            "description",
        ),
        (
            json!({"title": "t", "description": "d", "category": "火星税"}),
            "category",
        ),
    ];
    for (input, field) in cases {
        let r = tp.gql(q, json!({"input": input})).await;
        assert_eq!(r.code(), Some("INVALID_INPUT"), "{input}");
        assert_eq!(r.0["errors"][0]["extensions"]["field"], field);
        assert!(
            r.0["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains(" / "),
            "message in zh / en"
        );
    }
    // Staff must say for whom.
    let r = staff
        .gql(
            q,
            json!({"input": {"title": "t", "description": "d", "category": "其他"}}),
        )
        .await;
    assert_eq!(r.code(), Some("INVALID_INPUT"));
    // A staff member cannot own a work order.
    let r = staff.gql(q, json!({"input": {"title": "t", "description": "d", "category": "其他", "taxpayerId": "s1"}})).await;
    assert_eq!(r.code(), Some("INVALID_INPUT"));
    assert_eq!(app.count("SELECT id FROM work_orders").await, 0);
    // Page sizes are bounded.
    let r = tp
        .gql("{ myWorkOrders(first: 1000) { totalCount } }", json!({}))
        .await;
    assert_eq!(r.code(), Some("INVALID_INPUT"));
}

#[tokio::test]
async fn staff_file_for_a_taxpayer_who_has_never_signed_in() {
    let app = TestApp::spawn().await;
    let staff = app.user("staff", "s1");
    let r = staff
        .gql(
            r#"mutation { createWorkOrder(input: {title: "代填", description: "电话来访", category: "社保费", taxpayerId: "tp9"}) { taxpayer { id role } allowedActions } }"#,
            json!({}),
        )
        .await
        .ok();
    assert_eq!(
        r["createWorkOrder"]["taxpayer"],
        json!({"id": "tp9", "role": "TAXPAYER"})
    );
    assert_eq!(r["createWorkOrder"]["allowedActions"], json!(["DISPATCH"]));
    // When tp9 signs in they find it, and were told.
    let tp9 = app.user("taxpayer", "tp9");
    let mine = tp9
        .gql(
            "{ myWorkOrders { totalCount } myNotifications { totalCount } }",
            json!({}),
        )
        .await
        .ok();
    assert_eq!(mine["myWorkOrders"]["totalCount"], 1);
    assert_eq!(mine["myNotifications"]["totalCount"], 1);
}

#[tokio::test]
async fn numbers_stay_unique_under_concurrent_creation() {
    let app = TestApp::spawn().await;
    let creates = (0..12).map(|i| {
        let c = app.user("taxpayer", &format!("tp{i}"));
        tokio::spawn(async move {
            create(&c, "并发").await["number"]
                .as_str()
                .unwrap()
                .to_string()
        })
    });
    let mut numbers: Vec<String> = futures_util::future::join_all(creates)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers.len(), 12);
    assert!(numbers.iter().all(|n| n.starts_with("GD") && n.len() == 14));
    assert!(numbers[0].ends_with("0001"), "{numbers:?}");
    assert!(numbers[11].ends_with("0012"), "{numbers:?}");
}

#[tokio::test]
async fn lists_page_with_cursors_and_filter_overdue() {
    let app = TestApp::spawn_with(&[("TAXDESK_DEFAULT_DEADLINE", "0s")]).await;
    let tp = app.user("taxpayer", "tp1");
    let admin = app.user("admin", "a1");
    let mut ids = vec![];
    for i in 0..5 {
        ids.push(
            create(&tp, &format!("第{i}个")).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let q = "query($after: String) { myWorkOrders(first: 2, after: $after) { totalCount pageInfo { hasNextPage hasPreviousPage endCursor } edges { node { id title } } } }";
    let mut seen = vec![];
    let mut after = Value::Null;
    loop {
        let p = tp.gql(q, json!({"after": after})).await.ok();
        let page = &p["myWorkOrders"];
        assert_eq!(page["totalCount"], 5);
        for e in page["edges"].as_array().unwrap() {
            seen.push(e["node"]["id"].as_str().unwrap().to_string());
        }
        if !page["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    ids.reverse();
    assert_eq!(seen, ids, "newest first, each once");

    // `last/before` walks back towards newer ones.
    let back = tp
        .gql(
            "query($before: String) { myWorkOrders(last: 2, before: $before) { edges { node { id } } pageInfo { hasPreviousPage } } }",
            json!({"before": ids[3]}),
        )
        .await
        .ok();
    let got: Vec<&str> = back["myWorkOrders"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, [ids[1].as_str(), ids[2].as_str()]);
    assert_eq!(back["myWorkOrders"]["pageInfo"]["hasPreviousPage"], true);

    // A zero deadline: all five are overdue until one is terminated.
    tp.gql(
        "mutation($id: ID!) { terminateWorkOrder(input: {id: $id}) { status } }",
        json!({"id": ids[0]}),
    )
    .await
    .ok();
    let overdue = admin
        .gql("{ a: workOrders(filter: {overdue: true}) { totalCount } b: workOrders(filter: {overdue: false}) { totalCount } }", json!({}))
        .await
        .ok();
    assert_eq!(overdue["a"]["totalCount"], 4);
    assert_eq!(overdue["b"]["totalCount"], 1);
}

/// A deadline in whole days counts working days of the calendar: a public holiday is
/// skipped and a 调休 (make-up) working day on a weekend counts. The calendar is built around
/// today: every day until the first Saturday at least three days ahead is a holiday, that
/// Saturday and Sunday are make-up days, so "2d" ends on the Sunday (plain time would give
/// today + 2 days, weekends only the Tuesday after).
#[tokio::test]
async fn a_whole_day_deadline_counts_working_days_across_holidays_and_makeup_days() {
    use chrono::{Datelike, Duration, NaiveDate, Utc, Weekday};
    use std::collections::BTreeMap;

    let tz = chrono_tz::Asia::Shanghai;
    let today = Utc::now().with_timezone(&tz).date_naive();
    let mut saturday = today + Duration::days(3);
    while saturday.weekday() != Weekday::Sat {
        saturday += Duration::days(1);
    }
    let sunday = saturday + Duration::days(1);
    // One arrangement per calendar year the dates touch.
    let mut years: BTreeMap<i32, (Vec<String>, Vec<String>)> = BTreeMap::new();
    let mut day = today + Duration::days(1);
    while day < saturday {
        years.entry(day.year()).or_default().0.push(day.to_string());
        day += Duration::days(1);
    }
    for d in [saturday, sunday] {
        years.entry(d.year()).or_default().1.push(d.to_string());
    }
    let arrangements: Vec<Value> = years
        .into_iter()
        .map(|(year, (holidays, makeup))| {
            json!({
                "year": year,
                "holidays": [{"name": "测试假期", "days": holidays}],
                "makeup_workdays": makeup.iter().map(|d| json!({"date": d})).collect::<Vec<_>>(),
            })
        })
        .collect();
    let dir = std::env::temp_dir().join(format!("taxdesk-cal-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("calendar.json");
    std::fs::write(&file, json!({ "years": arrangements }).to_string()).unwrap();

    let app = TestApp::spawn_with(&[
        ("TAXDESK_CALENDAR", file.to_str().unwrap()),
        ("TAXDESK_DEFAULT_DEADLINE", "2d"),
    ])
    .await;
    let tp = app.user("taxpayer", "tp1");
    let wo = tp
        .gql(
            "mutation($input: CreateWorkOrderInput!) { createWorkOrder(input: $input) { createdAt deadline } }",
            json!({"input": {"title": "额度", "description": "开票额度不足", "category": "发票业务"}}),
        )
        .await
        .ok()["createWorkOrder"]
        .clone();
    let created: chrono::DateTime<Utc> = wo["createdAt"].as_str().unwrap().parse().unwrap();
    let deadline: chrono::DateTime<Utc> = wo["deadline"].as_str().unwrap().parse().unwrap();
    let created_local = created.with_timezone(&tz);
    let deadline_local = deadline.with_timezone(&tz);
    let expected: NaiveDate = sunday;
    assert_eq!(
        deadline_local.date_naive(),
        expected,
        "created {created_local}, deadline {deadline_local}: two working days are the 调休 Saturday and Sunday"
    );
    assert_eq!(
        deadline_local.time(),
        created_local.time(),
        "same time of day"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// A work order may cite a chat or an offline message only of the taxpayer it is for:
/// another's is "not found" (so ids cannot be probed), for a taxpayer filing and for staff
/// filing for a taxpayer alike, and nothing is written.
#[tokio::test]
async fn a_work_order_cites_only_its_own_taxpayers_chat_or_message() {
    let app = TestApp::spawn().await;
    let tp1 = app.user("taxpayer", "tp1");
    let tp2 = app.user("taxpayer", "tp2");
    let staff = app.user("staff", "s1");
    let chat_of = |c: Client| async move {
        crate::chat::open(&c).await["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let message_of = |c: Client| async move {
        crate::leave_messages::left(&c, "开票额度不足，请帮忙处理").await["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (chat1, chat2) = (chat_of(tp1.clone()).await, chat_of(tp2.clone()).await);
    let (msg1, msg2) = (message_of(tp1.clone()).await, message_of(tp2.clone()).await);
    let file = |c: &Client, taxpayer: Option<&str>, chat: Option<&str>, msg: Option<&str>| {
        let c = c.clone();
        let input = json!({"title": "引用", "description": "见会话", "category": "发票业务",
                           "taxpayerId": taxpayer, "sourceSessionId": chat,
                           "sourceLeaveMessageId": msg});
        async move {
            c.gql(
                "mutation($i: CreateWorkOrderInput!) { createWorkOrder(input: $i) { id sourceSessionId sourceLeaveMessageId } }",
                json!({"i": input}),
            )
            .await
        }
    };
    let refused = [
        (
            "tp2 cites tp1's chat",
            file(&tp2, None, Some(&chat1), None).await,
        ),
        (
            "tp2 cites tp1's message",
            file(&tp2, None, None, Some(&msg1)).await,
        ),
        (
            "tp2 cites its chat and tp1's message",
            file(&tp2, None, Some(&chat2), Some(&msg1)).await,
        ),
        (
            "tp2 cites an unknown chat",
            file(&tp2, None, Some("no-such-chat"), None).await,
        ),
        (
            "staff for tp2 cite tp1's chat",
            file(&staff, Some("tp2"), Some(&chat1), None).await,
        ),
        (
            "staff for tp2 cite tp1's message",
            file(&staff, Some("tp2"), None, Some(&msg1)).await,
        ),
    ];
    for (what, r) in refused {
        assert_eq!(r.code(), Some("NOT_FOUND"), "{what}: {:?}", r.0);
    }
    assert_eq!(
        app.count("SELECT id FROM work_orders").await,
        0,
        "nothing written"
    );
    assert_eq!(app.count("SELECT id FROM work_order_history").await, 0);

    // One's own, or the taxpayer's own when staff file for them, is accepted.
    let mine = file(&tp2, None, Some(&chat2), Some(&msg2)).await.ok();
    assert_eq!(
        (
            &mine["createWorkOrder"]["sourceSessionId"],
            &mine["createWorkOrder"]["sourceLeaveMessageId"]
        ),
        (&json!(chat2), &json!(msg2))
    );
    let theirs = file(&staff, Some("tp1"), Some(&chat1), Some(&msg1))
        .await
        .ok();
    assert_eq!(theirs["createWorkOrder"]["sourceSessionId"], json!(chat1));
    assert_eq!(app.count("SELECT id FROM work_orders").await, 2);
}

/// A row whose status the machine cannot read (damaged by hand, or written by a newer
/// version) is the server's fault: a coded INTERNAL with a request id, never a bare message.
#[tokio::test]
async fn an_unreadable_status_is_a_coded_internal_error() {
    let app = TestApp::spawn().await;
    let tp = app.user("taxpayer", "tp1");
    let id = create(&tp, "状态损坏").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.execute(&format!(
        "UPDATE work_orders SET status = 'MELTED' WHERE id = '{id}'"
    ))
    .await;
    for field in ["status", "priority", "overdue"] {
        let r = tp
            .gql(
                &format!("query($id: ID!) {{ workOrder(id: $id) {{ {field} }} }}"),
                json!({ "id": id }),
            )
            .await;
        r.assert_internal_hiding("MELTED");
    }
}

/// Creating a work order does not hold the day's counter row (the hot row every create
/// queued on): with the row locked by someone else, a create still goes through, from the
/// block of numbers this instance reserved. PostgreSQL only (on SQLite any open write
/// transaction holds the one writer).
#[tokio::test]
async fn a_create_does_not_wait_for_the_days_counter_row() {
    use sea_orm::{ConnectionTrait, Statement, TransactionTrait};
    let app = TestApp::spawn().await;
    if !app.is_postgres() {
        eprintln!("skipped: PostgreSQL only");
        return;
    }
    let tp = app.user("taxpayer", "tp1");
    let first = create(&tp, "第一张").await["number"]
        .as_str()
        .unwrap()
        .to_string();
    let day = &first[2..10];
    let holder = app.db().begin().await.unwrap();
    holder
        .execute_raw(Statement::from_string(
            sea_orm::DbBackend::Postgres,
            format!("SELECT value FROM counters WHERE name = 'work_order:{day}' FOR UPDATE"),
        ))
        .await
        .unwrap();
    let second = tokio::time::timeout(std::time::Duration::from_secs(20), create(&tp, "第二张"))
        .await
        .expect("a create while the counter row is locked goes through");
    let second = second["number"].as_str().unwrap().to_string();
    holder.rollback().await.unwrap();
    assert_ne!(first, second);
    assert!(second.starts_with(&format!("GD{day}")), "{second}");
}
