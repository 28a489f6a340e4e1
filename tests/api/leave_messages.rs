//! Offline messages (在线留言) end to end: from an off-hours hand-over to a reply the taxpayer
//! reads (notification, email, to-do, unread count), follow-up and close; scoping; refusals
//! that write nothing; concurrent replies; conversion into a work order; input checks.

use std::time::Duration;

use serde_json::{Value, json};

use crate::attachments::{download, png, upload};
use crate::chat::open;
use crate::helpers::{Client, Gql, TestApp};

pub const FIELDS: &str = "id category content contact attachmentIds status version createdAt
    updatedAt sourceSessionId workOrderId allowedActions closedAt closedBy { id }
    replies { at content readAt author { id role } }
    history { event fromStatus toStatus note actor { id role } }";

const QUESTION: &str = "开票时提示发票额度不足，请问如何申请提高数电票的开票额度？";

pub async fn leave(c: &Client, input: Value) -> Gql {
    let q = format!(
        "mutation($input: LeaveMessageInput!) {{ leaveMessage(input: $input) {{ {FIELDS} }} }}"
    );
    c.gql(&q, json!({ "input": input })).await
}

/// A message of `tp` that must be accepted; returns it.
pub async fn left(c: &Client, content: &str) -> Value {
    leave(c, json!({"category": "发票业务", "content": content}))
        .await
        .ok()["leaveMessage"]
        .clone()
}

async fn act(c: &Client, mutation: &str, input_type: &str, input: Value) -> Gql {
    let q =
        format!("mutation($input: {input_type}!) {{ {mutation}(input: $input) {{ {FIELDS} }} }}");
    c.gql(&q, json!({ "input": input })).await
}

async fn reply(c: &Client, id: &str, content: &str) -> Gql {
    act(
        c,
        "replyLeaveMessage",
        "ReplyLeaveMessageInput",
        json!({"id": id, "content": content}),
    )
    .await
}

async fn follow_up(c: &Client, id: &str, content: &str) -> Gql {
    act(
        c,
        "followUpLeaveMessage",
        "FollowUpLeaveMessageInput",
        json!({"id": id, "content": content}),
    )
    .await
}

async fn convert(c: &Client, id: &str, category: Option<&str>) -> Gql {
    let q = "mutation($input: ConvertLeaveMessageInput!) { convertLeaveMessage(input: $input) {
        id status version workOrderId allowedActions history { event note }
        workOrder { id number title description category status taxpayer { id }
                    sourceLeaveMessageId history { event actor { id } } } } }";
    c.gql(q, json!({"input": {"id": id, "category": category}}))
        .await
}

/// A mutation that takes a single id.
async fn by_id(c: &Client, mutation: &str, id: &str) -> Gql {
    let q = format!("mutation($id: ID!) {{ {mutation}(id: $id) {{ {FIELDS} }} }}");
    c.gql(&q, json!({ "id": id })).await
}

async fn get(c: &Client, id: &str) -> Gql {
    let q = format!("query($id: ID!) {{ leaveMessage(id: $id) {{ {FIELDS} }} }}");
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

fn kinds(v: &Value) -> Vec<&str> {
    v["myNotifications"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["kind"].as_str().unwrap())
        .collect()
}

/// The personal centre of a user: notifications, to-dos and the badges.
async fn centre(c: &Client) -> Value {
    c.gql(
        "{ myNotifications { edges { node { kind title body targetKind targetId } } }
           myTodos { kind title targetId }
           unreadCounts { notifications todos leaveMessageReplies } }",
        json!({}),
    )
    .await
    .ok()
}

async fn rows(app: &TestApp, table: &str, id: &str) -> i64 {
    app.count(&format!(
        "SELECT id FROM {table} WHERE leave_message_id = '{id}'"
    ))
    .await
}

#[tokio::test]
async fn an_off_hours_hand_over_becomes_a_message_that_staff_answer() {
    let app = TestApp::spawn_with(&[("TAXDESK_CALENDAR", "never")]).await;
    let tp = app.user("taxpayer", "tp1");
    let staff = app.user("staff", "s1");
    let admin = app.user("admin", "a1");
    for c in [&staff, &admin] {
        c.gql("{ me { id } }", json!({})).await.ok();
    }

    // The taxpayer asks the bot, then asks for a human: out of hours the hand-over is
    // refused, and the refusal offers 留言 pre-filled with the question.
    let session = open(&tp).await["id"].as_str().unwrap().to_string();
    tp.gql(
        "mutation($id: ID!, $t: String!) { sendMessage(input: {sessionId: $id, kind: TEXT, text: $t}) { seq } }",
        json!({"id": session, "t": QUESTION}),
    )
    .await
    .ok();
    let refused = tp
        .gql(
            "mutation($id: ID!) { requestHuman(input: {sessionId: $id, skillGroup: \"发票业务\"}) { status } }",
            json!({"id": session}),
        )
        .await;
    assert_eq!(refused.code(), Some("OFF_HOURS"));
    let error = &refused.0["errors"][0];
    assert!(error["message"].as_str().unwrap().contains("留言"));
    let offer = &error["extensions"]["offer"]["leaveMessage"];
    assert_eq!(offer["sourceSessionId"], session.as_str(), "{error}");
    assert_eq!(offer["category"], "发票业务");
    assert_eq!(offer["content"], QUESTION);
    assert!(error["extensions"]["offer"]["nextOpenAt"].is_null());
    // Typing 转人工 instead is refused the same way, by the bot, in the chat.
    tp.gql(
        "mutation($id: ID!) { sendMessage(input: {sessionId: $id, kind: TEXT, text: \"转人工\"}) { seq } }",
        json!({"id": session}),
    )
    .await
    .ok();
    let transcript = tp
        .gql(
            "query($id: ID!) { messages(sessionId: $id, last: 1) { edges { node { text } } } }",
            json!({"id": session}),
        )
        .await
        .ok();
    let last = transcript["messages"]["edges"][0]["node"]["text"]
        .as_str()
        .unwrap();
    assert!(last.contains("留言"), "{last}");

    // The taxpayer sends the offered message as it is, with a contact.
    let m = leave(
        &tp,
        json!({"category": offer["category"], "content": offer["content"],
               "contact": "13800000000", "sourceSessionId": offer["sourceSessionId"]}),
    )
    .await
    .ok()["leaveMessage"]
        .clone();
    let id = m["id"].as_str().unwrap().to_string();
    assert_eq!(m["status"], "SUBMITTED");
    assert_eq!(m["version"], 1);
    assert_eq!(m["content"], QUESTION);
    assert_eq!(m["contact"], "13800000000");
    assert_eq!(m["sourceSessionId"], session.as_str());
    assert_eq!(m["attachmentIds"], json!([]));
    assert_eq!(m["replies"], json!([]));
    assert_eq!(actions(&m), ["CLOSE"]);
    assert_eq!(m["history"][0]["event"], "SUBMIT");
    assert_eq!(m["history"][0]["fromStatus"], Value::Null);
    // The supervisors hear of it.
    let a = centre(&admin).await;
    assert_eq!(kinds(&a), ["LEAVE_MESSAGE_SUBMITTED"]);
    let n = &a["myNotifications"]["edges"][0]["node"];
    assert_eq!(n["targetKind"], "LEAVE_MESSAGE");
    assert_eq!(n["targetId"], id.as_str());

    // Staff find it among the unanswered and may reply, close or convert it.
    let list = staff
        .gql(
            "{ leaveMessages(status: SUBMITTED, category: \"发票业务\") { totalCount edges { node { id allowedActions taxpayer { id } } } } }",
            json!({}),
        )
        .await
        .ok();
    assert_eq!(list["leaveMessages"]["totalCount"], 1);
    let node = &list["leaveMessages"]["edges"][0]["node"];
    assert_eq!(node["id"], id.as_str());
    assert_eq!(node["taxpayer"]["id"], "tp1");
    assert_eq!(actions(node), ["REPLY", "CLOSE", "CONVERT"]);
    let other_category = staff
        .gql(
            "{ leaveMessages(category: \"社保费\") { totalCount } }",
            json!({}),
        )
        .await
        .ok();
    assert_eq!(other_category["leaveMessages"]["totalCount"], 0);

    let answer = "请登录电子税务局，在“发票业务—发票额度调整申请”中提交申请。";
    let r = reply(&staff, &id, answer).await.ok();
    let r = &r["replyLeaveMessage"];
    assert_eq!(r["status"], "REPLIED");
    assert_eq!(r["version"], 2);
    assert_eq!(actions(r), ["CLOSE", "CONVERT"]);

    // The taxpayer has a notification, an email, a to-do and a badge.
    let c = centre(&tp).await;
    assert_eq!(kinds(&c), ["LEAVE_MESSAGE_REPLIED"]);
    let n = &c["myNotifications"]["edges"][0]["node"];
    assert_eq!(n["targetKind"], "LEAVE_MESSAGE");
    assert_eq!(n["targetId"], id.as_str());
    assert!(n["body"].as_str().unwrap().contains(answer), "{n}");
    assert_eq!(c["myTodos"].as_array().unwrap().len(), 1);
    assert_eq!(c["myTodos"][0]["kind"], "READ_REPLY");
    assert_eq!(c["myTodos"][0]["targetId"], id.as_str());
    assert_eq!(c["unreadCounts"]["leaveMessageReplies"], 1);
    assert_eq!(c["unreadCounts"]["todos"], 1);
    assert_eq!(c["unreadCounts"]["notifications"], 1);
    assert_eq!(
        app.count("SELECT id FROM outbox_emails WHERE to_address = 'tp1@example.com' AND kind = 'LEAVE_MESSAGE_REPLIED'").await,
        1
    );
    let sent = app
        .wait_for_count(
            "SELECT id FROM outbox_emails WHERE state = 'SENT'",
            1,
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(sent, 1);
    let emls: Vec<String> = std::fs::read_dir(app.data_dir.join("outbox"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(emls.len(), 1);
    assert!(emls[0].contains("To: tp1@example.com"), "{}", emls[0]);

    // Listing does not read it; opening it does.
    let mine = tp
        .gql(
            "{ myLeaveMessages { totalCount edges { node { id status } } } unreadCounts { leaveMessageReplies } }",
            json!({}),
        )
        .await
        .ok();
    assert_eq!(mine["myLeaveMessages"]["totalCount"], 1);
    assert_eq!(
        mine["myLeaveMessages"]["edges"][0]["node"]["status"],
        "REPLIED"
    );
    assert_eq!(mine["unreadCounts"]["leaveMessageReplies"], 1);
    let seen = get(&tp, &id).await.ok();
    let seen = &seen["leaveMessage"];
    assert_eq!(seen["status"], "REPLIED");
    assert_eq!(seen["replies"].as_array().unwrap().len(), 1);
    assert_eq!(seen["replies"][0]["content"], answer);
    assert_eq!(seen["replies"][0]["author"]["id"], "s1");
    assert_eq!(seen["replies"][0]["author"]["role"], "STAFF");
    assert_eq!(actions(seen), ["FOLLOW_UP", "CLOSE"]);
    let c = centre(&tp).await;
    assert_eq!(c["myTodos"], json!([]));
    assert_eq!(c["unreadCounts"]["leaveMessageReplies"], 0);
    assert_eq!(c["unreadCounts"]["todos"], 0);
    assert!(get(&tp, &id).await.ok()["leaveMessage"]["replies"][0]["readAt"].is_string());

    // A follow-up goes back to the bureau, and the one who answered hears it.
    let f = follow_up(&tp, &id, "在哪个菜单下？找不到。").await.ok();
    let f = &f["followUpLeaveMessage"];
    assert_eq!(f["status"], "SUBMITTED");
    assert_eq!(f["replies"][1]["author"]["role"], "TAXPAYER");
    assert_eq!(actions(f), ["CLOSE"]);
    assert_eq!(kinds(&centre(&staff).await), ["LEAVE_MESSAGE_FOLLOWED_UP"]);
    // Their own words are not an unread reply.
    assert_eq!(centre(&tp).await["unreadCounts"]["leaveMessageReplies"], 0);

    // A second answer: read by the explicit mutation this time.
    reply(&staff, &id, "在“我要办税—发票使用”下。").await.ok();
    assert_eq!(centre(&tp).await["unreadCounts"]["leaveMessageReplies"], 1);
    by_id(&tp, "markLeaveMessageRead", &id).await.ok();
    let c = centre(&tp).await;
    assert_eq!(c["unreadCounts"]["leaveMessageReplies"], 0);
    assert_eq!(c["myTodos"], json!([]));

    // The taxpayer closes it: nothing more can happen.
    let closed = by_id(&tp, "closeLeaveMessage", &id).await.ok();
    let closed = &closed["closeLeaveMessage"];
    assert_eq!(closed["status"], "CLOSED");
    assert_eq!(closed["closedBy"]["id"], "tp1");
    assert!(closed["closedAt"].is_string());
    assert!(actions(closed).is_empty());
    assert_eq!(closed["version"], 5);
    let events: Vec<(&str, &str)> = closed["history"]
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
            ("SUBMIT", "SUBMITTED"),
            ("REPLY", "REPLIED"),
            ("FOLLOW_UP", "SUBMITTED"),
            ("REPLY", "REPLIED"),
            ("CLOSE", "CLOSED"),
        ]
    );
    assert_eq!(closed["history"][1]["actor"]["id"], "s1");
    assert_eq!(closed["history"][1]["note"], answer);
    assert_eq!(rows(&app, "leave_message_history", &id).await, 5);
    assert_eq!(rows(&app, "leave_message_replies", &id).await, 3);
    // Staff see it among the ones they answered.
    let handled = staff
        .gql(
            "{ myLeaveMessages(status: CLOSED) { totalCount } }",
            json!({}),
        )
        .await
        .ok();
    assert_eq!(handled["myLeaveMessages"]["totalCount"], 1);
}

#[tokio::test]
async fn another_taxpayer_can_neither_see_nor_touch_it_and_refusals_write_nothing() {
    let app = TestApp::spawn().await;
    let tp = app.user("taxpayer", "tp1");
    let other = app.user("taxpayer", "tp2");
    let staff = app.user("staff", "s1");
    staff.gql("{ me { id } }", json!({})).await.ok();
    let id = left(&tp, "我的留言").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let before = async || {
        (
            rows(&app, "leave_message_history", &id).await,
            rows(&app, "leave_message_replies", &id).await,
            app.count("SELECT id FROM notifications").await,
            app.count("SELECT id FROM outbox_emails").await,
            app.count("SELECT id FROM work_orders").await,
        )
    };
    let untouched = before().await;

    // Another taxpayer: not found, whatever they try.
    assert_eq!(get(&other, &id).await.code(), Some("NOT_FOUND"));
    assert_eq!(
        follow_up(&other, &id, "偷看").await.code(),
        Some("NOT_FOUND")
    );
    assert_eq!(
        by_id(&other, "closeLeaveMessage", &id).await.code(),
        Some("NOT_FOUND")
    );
    assert_eq!(
        by_id(&other, "markLeaveMessageRead", &id).await.code(),
        Some("NOT_FOUND")
    );
    let mine = other
        .gql("{ myLeaveMessages { totalCount } }", json!({}))
        .await
        .ok();
    assert_eq!(mine["myLeaveMessages"]["totalCount"], 0);
    let all = other
        .gql("{ leaveMessages { totalCount } }", json!({}))
        .await;
    assert_eq!(all.code(), Some("FORBIDDEN"));

    // Wrong actor, wrong state, bad input: refused, nothing written.
    assert_eq!(reply(&tp, &id, "自问自答").await.code(), Some("FORBIDDEN"));
    assert_eq!(
        follow_up(&tp, &id, "还没人答复").await.code(),
        Some("INVALID_TRANSITION")
    );
    assert_eq!(convert(&tp, &id, None).await.code(), Some("FORBIDDEN"));
    assert_eq!(
        follow_up(&staff, &id, "代追问").await.code(),
        Some("FORBIDDEN")
    );
    assert_eq!(
        reply(&staff, &id, "   ").await.code(),
        Some("INVALID_INPUT")
    );
    assert_eq!(
        reply(&staff, &id, &"长".repeat(5001)).await.code(),
        Some("INVALID_INPUT")
    );
    assert_eq!(
        reply(&staff, "no-such-message", "答复").await.code(),
        Some("NOT_FOUND")
    );
    let by_staff = leave(&staff, json!({"category": "其他", "content": "代留言"})).await;
    assert_eq!(by_staff.code(), Some("FORBIDDEN"));
    assert_eq!(before().await, untouched);
    assert_eq!(app.count("SELECT id FROM leave_messages").await, 1);

    // Staff close it: the taxpayer is told; then every event is refused and writes nothing.
    let closed = by_id(&staff, "closeLeaveMessage", &id).await.ok();
    assert_eq!(closed["closeLeaveMessage"]["status"], "CLOSED");
    assert_eq!(closed["closeLeaveMessage"]["closedBy"]["id"], "s1");
    assert_eq!(kinds(&centre(&tp).await), ["LEAVE_MESSAGE_CLOSED"]);
    let after_close = before().await;
    assert_eq!(
        reply(&staff, &id, "晚了").await.code(),
        Some("INVALID_TRANSITION")
    );
    assert_eq!(
        by_id(&tp, "closeLeaveMessage", &id).await.code(),
        Some("INVALID_TRANSITION")
    );
    assert_eq!(
        follow_up(&tp, &id, "再问").await.code(),
        Some("INVALID_TRANSITION")
    );
    assert_eq!(
        convert(&staff, &id, None).await.code(),
        Some("INVALID_TRANSITION")
    );
    assert_eq!(before().await, after_close);
    let m = get(&tp, &id).await.ok();
    assert_eq!(m["leaveMessage"]["version"], 2);
    assert!(actions(&m["leaveMessage"]).is_empty());
}

#[tokio::test]
async fn ten_concurrent_replies_give_one_answer() {
    let app = TestApp::spawn().await;
    let tp = app.user("taxpayer", "tp1");
    let id = left(&tp, "并发答复").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let replies = (0..10).map(|i| {
        let staff = app.user("staff", &format!("s{i}"));
        let id = id.clone();
        tokio::spawn(async move { reply(&staff, &id, &format!("答复{i}")).await })
    });
    let mut ok = 0;
    for r in futures_util::future::join_all(replies).await {
        let r = r.unwrap();
        match r.code() {
            None => ok += 1,
            Some("INVALID_TRANSITION") | Some("CONFLICT") => {}
            Some(other) => panic!("unexpected {other}: {:?}", r.0),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(rows(&app, "leave_message_replies", &id).await, 1);
    assert_eq!(
        app.count(&format!(
            "SELECT id FROM leave_message_history WHERE leave_message_id = '{id}' AND event = 'REPLY'"
        ))
        .await,
        1
    );
    assert_eq!(
        app.count("SELECT id FROM notifications WHERE kind = 'LEAVE_MESSAGE_REPLIED'")
            .await,
        1
    );
    let c = centre(&tp).await;
    assert_eq!(c["unreadCounts"]["leaveMessageReplies"], 1);
}

#[tokio::test]
async fn staff_turn_a_message_into_a_work_order() {
    let app = TestApp::spawn().await;
    let tp = app.user("taxpayer", "tp1");
    let staff = app.user("staff", "s1");
    staff.gql("{ me { id } }", json!({})).await.ok();
    let long = "个人所得税年度汇算时，专项附加扣除中的住房贷款利息和住房租金能否同时申报？我去年换了城市工作。";
    let m = leave(&tp, json!({"category": "个人所得税", "content": long}))
        .await
        .ok()["leaveMessage"]
        .clone();
    let id = m["id"].as_str().unwrap().to_string();
    reply(&staff, &id, "不能同时享受，请提供更多情况。")
        .await
        .ok();

    // An unknown category is refused before anything is made.
    let bad = convert(&staff, &id, Some("不存在")).await;
    assert_eq!(bad.code(), Some("INVALID_INPUT"));
    assert_eq!(app.count("SELECT id FROM work_orders").await, 0);

    let c = convert(&staff, &id, None).await.ok();
    let c = &c["convertLeaveMessage"];
    assert_eq!(c["status"], "CLOSED");
    assert!(actions(c).is_empty());
    let wo = &c["workOrder"];
    assert_eq!(c["workOrderId"], wo["id"]);
    assert_eq!(wo["sourceLeaveMessageId"], id.as_str());
    assert_eq!(wo["status"], "SUBMITTED");
    assert_eq!(wo["category"], "个人所得税");
    assert_eq!(wo["taxpayer"]["id"], "tp1");
    assert_eq!(wo["description"], long);
    let title: String = long.chars().take(30).collect();
    assert_eq!(wo["title"], title.as_str());
    assert_eq!(wo["history"][0]["event"], "CREATE");
    assert_eq!(wo["history"][0]["actor"]["id"], "s1");
    let number = wo["number"].as_str().unwrap();
    let last = c["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["event"], "CONVERT");
    assert_eq!(last["note"], format!("转为工单 {number}"));

    // The taxpayer sees the order among theirs, and was told of it.
    let mine = tp
        .gql(
            "{ myWorkOrders { totalCount edges { node { id sourceLeaveMessageId } } } }",
            json!({}),
        )
        .await
        .ok();
    assert_eq!(mine["myWorkOrders"]["totalCount"], 1);
    assert_eq!(
        mine["myWorkOrders"]["edges"][0]["node"]["sourceLeaveMessageId"],
        id.as_str()
    );
    assert!(kinds(&centre(&tp).await).contains(&"WORK_ORDER_CREATED"));
    let seen = tp
        .gql(
            "query($id: ID!) { leaveMessage(id: $id) { workOrder { id } } }",
            json!({"id": id}),
        )
        .await
        .ok();
    assert_eq!(seen["leaveMessage"]["workOrder"]["id"], wo["id"]);

    // Only once.
    assert_eq!(
        convert(&staff, &id, None).await.code(),
        Some("INVALID_TRANSITION")
    );
    assert_eq!(app.count("SELECT id FROM work_orders").await, 1);

    // Another message, converted while waiting, under another category.
    let other = left(&tp, "发票作废后还能重新开具吗？").await;
    let other_id = other["id"].as_str().unwrap();
    let c = convert(&staff, other_id, Some("其他")).await.ok();
    assert_eq!(c["convertLeaveMessage"]["workOrder"]["category"], "其他");
    assert_eq!(app.count("SELECT id FROM work_orders").await, 2);
}

#[tokio::test]
async fn what_is_left_is_checked() {
    let app = TestApp::spawn().await;
    let tp = app.user("taxpayer", "tp1");
    let tp_token = app.token("taxpayer", "tp1");
    let other_token = app.token("taxpayer", "tp2");

    let field = |g: &Gql| {
        g.0["errors"][0]["extensions"]["field"]
            .as_str()
            .map(str::to_string)
    };
    let cases = [
        (json!({"category": "不存在", "content": "问题"}), "category"),
        (json!({"category": "其他", "content": "  "}), "content"),
        (
            json!({"category": "其他", "content": "长".repeat(2001)}),
            "content",
        ),
        (
            json!({"category": "其他", "content": "问题", "contact": "1".repeat(101)}),
            "contact",
        ),
        (
            json!({"category": "其他", "content": "问题", "attachmentIds": ["no-such-file"]}),
            "attachmentIds",
        ),
        (
            json!({"category": "其他", "content": "问题", "sourceSessionId": "no-such-chat"}),
            "sourceSessionId",
        ),
    ];
    for (input, f) in cases {
        let g = leave(&tp, input.clone()).await;
        assert_eq!(g.code(), Some("INVALID_INPUT"), "{input}");
        assert_eq!(field(&g).as_deref(), Some(f), "{input}");
    }

    // Attachments: the taxpayer's own uploads, up to five.
    let mut mine = vec![];
    for i in 0..6 {
        let (_, v) = upload(
            &app,
            Some(&tp_token),
            &format!("截图{i}.png"),
            &png(i),
            None,
        )
        .await;
        mine.push(
            v["data"]["uploadAttachment"]["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let (_, v) = upload(&app, Some(&other_token), "别人的.png", &png(0), None).await;
    let theirs = v["data"]["uploadAttachment"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let too_many = leave(
        &tp,
        json!({"category": "其他", "content": "问题", "attachmentIds": mine}),
    )
    .await;
    assert_eq!(too_many.code(), Some("INVALID_INPUT"));
    let not_mine = leave(
        &tp,
        json!({"category": "其他", "content": "问题", "attachmentIds": [mine[0], theirs]}),
    )
    .await;
    assert_eq!(not_mine.code(), Some("INVALID_INPUT"));
    // Another's chat cannot be cited either.
    let other = app.user("taxpayer", "tp2");
    let their_chat = open(&other).await["id"].as_str().unwrap().to_string();
    let g = leave(
        &tp,
        json!({"category": "其他", "content": "问题", "sourceSessionId": their_chat}),
    )
    .await;
    assert_eq!(g.code(), Some("INVALID_INPUT"));
    assert_eq!(app.count("SELECT id FROM leave_messages").await, 0);

    // Repeats are dropped; the order is kept; the uploads are shown.
    let ok = tp
        .gql(
            "mutation($input: LeaveMessageInput!) { leaveMessage(input: $input) {
                attachmentIds attachments { id fileName } } }",
            json!({"input": {"category": "其他", "content": "见附件",
                             "attachmentIds": [mine[1], mine[0], mine[1]]}}),
        )
        .await
        .ok();
    assert_eq!(
        ok["leaveMessage"]["attachmentIds"],
        json!([mine[1], mine[0]])
    );
    assert_eq!(ok["leaveMessage"]["attachments"][0]["id"], mine[1].as_str());
    // Staff who answer the message can open its files; other taxpayers cannot.
    let staff_token = app.token("staff", "s1");
    let url = format!("/attachments/{}", mine[1]);
    let (status, _, _) = download(&app, &url, Some(&staff_token)).await;
    assert_eq!(status, 200);
    let (status, _, _) = download(&app, &url, Some(&other_token)).await;
    assert_eq!(status, 404);
    let unattached = format!("/attachments/{}", mine[5]);
    let (status, _, _) = download(&app, &unattached, Some(&staff_token)).await;
    assert_eq!(
        status, 404,
        "an upload not sent with a message stays private"
    );
    assert_eq!(
        ok["leaveMessage"]["attachments"].as_array().unwrap().len(),
        2
    );
    assert_eq!(app.count("SELECT id FROM leave_messages").await, 1);
}

/// A message naming 170,000 attachments (2 MB) is refused from its list alone, before any
/// transaction opens: the database stays answering throughout (`/healthz`, a taxpayer's
/// list) and nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_huge_attachment_list_is_refused_without_holding_the_database() {
    let app = TestApp::spawn().await;
    let tp = app.user("taxpayer", "tp1");
    let ids: Vec<String> = (0..170_000).map(|i| format!("a{i}")).collect();
    let big = {
        let tp = tp.clone();
        tokio::spawn(async move {
            leave(
                &tp,
                json!({"category": "其他", "content": "问题", "attachmentIds": ids}),
            )
            .await
        })
    };
    let reader = app.user("taxpayer", "tp2");
    let mut checks = 0;
    while !big.is_finished() {
        let health = app
            .http
            .get(format!("{}/healthz", app.base))
            .send()
            .await
            .expect("healthz answers");
        assert_eq!(health.status(), 200, "the database answers while it runs");
        reader
            .gql("{ myLeaveMessages { totalCount } }", json!({}))
            .await
            .ok();
        checks += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let refused = big.await.expect("the request ends");
    assert_eq!(refused.code(), Some("INVALID_INPUT"), "{:?}", refused.0);
    // Refused by the request's list bound (sec-limits) before the service sees it.
    let field = refused.0["errors"][0]["extensions"]["field"].as_str();
    assert!(
        field.is_some_and(|f| f.ends_with("attachmentIds")),
        "{:?}",
        refused.0
    );
    assert!(checks > 0);
    assert_eq!(app.count("SELECT id FROM leave_messages").await, 0);
}

/// A message whose status the machine cannot read is the server's fault: a coded INTERNAL
/// with a request id, never a bare message.
#[tokio::test]
async fn an_unreadable_status_is_a_coded_internal_error() {
    let app = TestApp::spawn().await;
    let tp = app.user("taxpayer", "tp1");
    let id = left(&tp, QUESTION).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.execute(&format!(
        "UPDATE leave_messages SET status = 'MELTED' WHERE id = '{id}'"
    ))
    .await;
    let r = tp
        .gql(
            "query($id: ID!) { leaveMessage(id: $id) { status } }",
            json!({ "id": id }),
        )
        .await;
    r.assert_internal_hiding("MELTED");
}

/// Fault injection (#14): the message's CONVERT step fails after its work order was written.
/// The order and the step are one transaction, so no order is left citing a message that
/// was not converted; without the fault the same conversion makes exactly one. Six staff
/// converting at once: one order, one success, the rest told the message moved on.
#[tokio::test]
async fn a_conversion_makes_its_work_order_and_closes_the_message_or_neither() {
    let app = TestApp::spawn().await;
    let tp = app.user("taxpayer", "tp1");
    let staff = app.user("staff", "s1");
    staff.gql("{ me { id } }", json!({})).await.ok();
    let id = left(&tp, "发票丢了怎么补？我们是小规模纳税人。").await["id"]
        .as_str()
        .unwrap()
        .to_string();

    app.inject_fault(
        "fail_convert",
        "leave_messages",
        "NEW.work_order_id IS NOT NULL",
    )
    .await;
    convert(&staff, &id, None)
        .await
        .assert_internal_hiding("injected fault");
    assert_eq!(
        app.count("SELECT id FROM work_orders").await,
        0,
        "no work order without the message's step"
    );
    assert_eq!(
        get(&tp, &id).await.ok()["leaveMessage"]["status"],
        "SUBMITTED"
    );
    app.clear_fault("fail_convert", "leave_messages").await;
    let done = convert(&staff, &id, None).await.ok();
    assert_eq!(done["convertLeaveMessage"]["status"], "CLOSED");
    assert_eq!(app.count("SELECT id FROM work_orders").await, 1);

    // Six at once on another message: one order.
    let other = left(&tp, "个税汇算退税多久到账？").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let tries = futures_util::future::join_all((0..6).map(|_| convert(&staff, &other, None))).await;
    let won = tries.iter().filter(|g| g.code().is_none()).count();
    assert_eq!(won, 1, "{tries:?}");
    for t in tries.iter().filter(|g| g.code().is_some()) {
        assert_eq!(t.code(), Some("INVALID_TRANSITION"), "{t:?}");
    }
    assert_eq!(
        app.count(&format!(
            "SELECT id FROM work_orders WHERE source_leave_message_id = '{other}'"
        ))
        .await,
        1,
        "one work order per converted message"
    );
}
