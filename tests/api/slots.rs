//! `serviceTypes` and `availableSlots`: what may be booked, and when.

use chrono::{DateTime, Duration, FixedOffset, NaiveTime, Utc};
use sea_orm::{ActiveModelTrait, Set};
use serde_json::{Value, json};
use taxdesk_workflow::entities::booking_slot;

use crate::helpers::{Client, TestApp};

const SLOTS: &str = "query($input: AvailableSlotsInput!) {
    availableSlots(input: $input) { start end remaining }
}";

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .unwrap_or_else(|| panic!("a time: {v}"))
        .parse()
        .unwrap()
}

/// Tomorrow in Asia/Shanghai (UTC+8 all year): its local midnight and the next one, in UTC.
fn tomorrow() -> (DateTime<Utc>, DateTime<Utc>) {
    let sh = FixedOffset::east_opt(8 * 3600).unwrap();
    let date = Utc::now().with_timezone(&sh).date_naive() + Duration::days(1);
    let from = date
        .and_time(NaiveTime::MIN)
        .and_local_timezone(sh)
        .unwrap()
        .with_timezone(&Utc);
    (from, from + Duration::days(1))
}

async fn slots(c: &Client, input: Value) -> Vec<Value> {
    c.gql(SLOTS, json!({ "input": input })).await.ok()["availableSlots"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn service_types_and_slots_of_a_day() {
    let app = TestApp::spawn_with(&[("TAXDESK_CALENDAR", "always")]).await;
    let tp = app.user("taxpayer", "tp1");
    let types = tp
        .gql(
            "{ serviceTypes { code name methods skillGroup slotMinutes capacity bookableDays } }",
            json!({}),
        )
        .await
        .ok()["serviceTypes"]
        .as_array()
        .unwrap()
        .clone();
    let codes: Vec<&str> = types.iter().map(|t| t["code"].as_str().unwrap()).collect();
    for code in ["invoice", "iit", "registration", "social", "etax"] {
        assert!(codes.contains(&code), "{code} in {codes:?}");
    }
    let invoice = types.iter().find(|t| t["code"] == "invoice").unwrap();
    assert_eq!(invoice["name"], "发票业务咨询");
    assert_eq!(invoice["skillGroup"], "发票业务");
    assert_eq!(invoice["methods"], json!(["TEXT", "VOICE", "VIDEO"]));
    assert_eq!(invoice["bookableDays"], 14);
    // Staff see the same list.
    let staff = app.user("staff", "s1");
    let r = staff.gql("{ serviceTypes { code } }", json!({})).await.ok();
    assert_eq!(r["serviceTypes"].as_array().unwrap().len(), types.len());

    let (from, to) = tomorrow();
    for t in types.iter().filter(|t| t["slotMinutes"] == 30) {
        let code = t["code"].as_str().unwrap();
        let capacity = t["capacity"].as_i64().unwrap();
        let method = t["methods"][0].clone();
        let got = slots(
            &tp,
            json!({"serviceType": code, "method": method, "from": from, "to": to}),
        )
        .await;
        assert_eq!(got.len(), 48, "{code}: every half hour of the day");
        let mut at = from;
        for s in &got {
            assert_eq!(time(&s["start"]), at, "{code}");
            assert_eq!(time(&s["end"]), at + Duration::minutes(30), "{code}");
            assert_eq!(s["remaining"], capacity, "{code}");
            at += Duration::minutes(30);
        }
    }
}

#[tokio::test]
async fn places_taken_are_counted_and_full_slots_listed() {
    let app = TestApp::spawn_with(&[("TAXDESK_CALENDAR", "always")]).await;
    let tp = app.user("taxpayer", "tp1");
    let (from, to) = tomorrow();
    let capacity = app
        .user("staff", "s1")
        .gql("{ serviceTypes { code capacity } }", json!({}))
        .await
        .ok()["serviceTypes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["code"] == "etax")
        .unwrap()["capacity"]
        .clone();
    let capacity = capacity.as_i64().unwrap() as i32;
    let full = from + Duration::hours(10);
    let one = full + Duration::minutes(30);
    for (service_type, start_at, taken) in [
        ("etax", full, capacity),
        ("etax", one, 1),
        // Another type's places do not count.
        ("invoice", one + Duration::minutes(30), 1),
    ] {
        booking_slot::ActiveModel {
            service_type: Set(service_type.into()),
            start_at: Set(start_at),
            taken: Set(taken),
        }
        .insert(app.db())
        .await
        .unwrap();
    }
    let got = slots(&tp, json!({"serviceType": "etax", "from": from, "to": to})).await;
    assert_eq!(got.len(), 48);
    for s in &got {
        let start = time(&s["start"]);
        let want = if start == full {
            0
        } else if start == one {
            capacity - 1
        } else {
            capacity
        };
        assert_eq!(s["remaining"], want, "{start}");
    }
}

#[tokio::test]
async fn bad_input_is_refused() {
    let app = TestApp::spawn_with(&[("TAXDESK_CALENDAR", "always")]).await;
    let tp = app.user("taxpayer", "tp1");
    let (from, to) = tomorrow();
    let unknown = tp
        .gql(
            SLOTS,
            json!({"input": {"serviceType": "visa", "from": from, "to": to}}),
        )
        .await;
    assert_eq!(unknown.code(), Some("INVALID_INPUT"), "{:?}", unknown.0);
    let ext = &unknown.0["errors"][0]["extensions"];
    assert_eq!(ext["field"], "serviceType");
    assert!(ext["zh"].as_str().unwrap().contains("invoice"), "{ext}");
    // etax is offered by text and video only.
    let voice = tp
        .gql(
            SLOTS,
            json!({"input": {"serviceType": "etax", "method": "VOICE", "from": from, "to": to}}),
        )
        .await;
    assert_eq!(voice.code(), Some("INVALID_INPUT"), "{:?}", voice.0);
    assert_eq!(voice.0["errors"][0]["extensions"]["field"], "method");
    let reversed = tp
        .gql(
            SLOTS,
            json!({"input": {"serviceType": "etax", "from": to, "to": from}}),
        )
        .await;
    assert_eq!(reversed.code(), Some("INVALID_INPUT"), "{:?}", reversed.0);
    // The past has no slots.
    let past = slots(
        &tp,
        json!({"serviceType": "etax", "from": from - Duration::days(3), "to": from - Duration::days(2)}),
    )
    .await;
    assert!(past.is_empty(), "{past:?}");
    // Signed-in users only.
    let anon = app
        .anonymous()
        .gql("{ serviceTypes { code } }", json!({}))
        .await;
    assert_eq!(anon.code(), Some("UNAUTHENTICATED"));
}
