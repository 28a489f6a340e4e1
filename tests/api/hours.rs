//! `serviceHours`: when humans are available, from the working-hours calendar.

use chrono::{DateTime, FixedOffset, Timelike, Utc};
use serde_json::{Value, json};

use crate::helpers::{Client, TestApp};

const QUERY: &str = "query($g: String) {
    serviceHours(skillGroup: $g) { openNow nextOpenAt periodsToday { start end } }
}";

async fn hours(c: &Client, group: Option<&str>) -> Value {
    c.gql(QUERY, json!({ "g": group })).await.ok()["serviceHours"].clone()
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .unwrap_or_else(|| panic!("a time: {v}"))
        .parse()
        .unwrap()
}

fn periods(h: &Value) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    h["periodsToday"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (time(&p["start"]), time(&p["end"])))
        .collect()
}

fn inside(periods: &[(DateTime<Utc>, DateTime<Utc>)], t: DateTime<Utc>) -> bool {
    periods.iter().any(|(s, e)| *s <= t && t < *e)
}

#[tokio::test]
async fn always_open() {
    let app = TestApp::spawn_with(&[("TAXDESK_CALENDAR", "always")]).await;
    let tp = app.user("taxpayer", "tp1");
    let before = Utc::now();
    let h = hours(&tp, None).await;
    let after = Utc::now();
    assert_eq!(h["openNow"], true);
    let next = time(&h["nextOpenAt"]);
    assert!(
        before - chrono::Duration::seconds(1) <= next && next <= after,
        "now: {next}"
    );
    // The whole local day, in UTC.
    let p = periods(&h);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].1 - p[0].0, chrono::Duration::hours(24));
    assert!(inside(&p, next));
    // Staff may ask too, and for a group.
    let staff = app.user("staff", "s1");
    assert_eq!(hours(&staff, Some("个人所得税")).await["openNow"], true);
}

#[tokio::test]
async fn never_open() {
    let app = TestApp::spawn_with(&[("TAXDESK_CALENDAR", "never")]).await;
    let tp = app.user("taxpayer", "tp1");
    for g in [None, Some("发票业务")] {
        let h = hours(&tp, g).await;
        assert_eq!(h["openNow"], false);
        assert_eq!(h["nextOpenAt"], Value::Null);
        assert_eq!(h["periodsToday"], json!([]));
    }
}

#[tokio::test]
async fn the_bundled_calendar_is_consistent() {
    let app = TestApp::spawn().await;
    let tp = app.user("taxpayer", "tp1");
    // Asia/Shanghai: UTC+8 all year.
    let sh = FixedOffset::east_opt(8 * 3600).unwrap();
    let before = Utc::now();
    let h = hours(&tp, None).await;
    let after = Utc::now();
    let p = periods(&h);
    let open = h["openNow"].as_bool().unwrap();
    // The server's clock read between `before` and `after`; unless a period boundary fell
    // in between, openNow says whether that instant is inside one of today's periods.
    if inside(&p, before) == inside(&p, after) {
        assert_eq!(open, inside(&p, before), "{h}");
    }
    // Today's periods: none on a day off, else 09:00–12:00 and 13:30–17:30 local.
    let local: Vec<String> = p
        .iter()
        .map(|(s, e)| {
            format!(
                "{}-{}",
                s.with_timezone(&sh).format("%H:%M"),
                e.with_timezone(&sh).format("%H:%M")
            )
        })
        .collect();
    assert!(
        local.is_empty() || local == ["09:00-12:00", "13:30-17:30"],
        "{local:?}"
    );
    // They are today's: the local date of the server's clock.
    let days = [before, after].map(|t| t.with_timezone(&sh).date_naive());
    for (s, e) in &p {
        assert!(days.contains(&s.with_timezone(&sh).date_naive()), "{s}");
        assert!(s < e);
    }
    // The next opening: now when open, else a later 09:00 or 13:30 local.
    let next = time(&h["nextOpenAt"]);
    if open {
        assert!(before - chrono::Duration::seconds(1) <= next && next <= after);
    } else {
        assert!(next > before, "{next} is in the future");
        let l = next.with_timezone(&sh);
        assert!(
            matches!((l.hour(), l.minute()), (9, 0) | (13, 30)),
            "opens at a period's start: {l}"
        );
        assert!(
            next - before < chrono::Duration::days(15),
            "within a fortnight"
        );
        // Today's later periods come first.
        if let Some((s, _)) = p.iter().find(|(_, e)| *e > after) {
            assert_eq!(next, *s);
        }
    }
}

#[tokio::test]
async fn hours_per_skill_group_from_a_calendar_file() {
    // The default group never opens; 个人所得税 is open all day every day but public holidays.
    let path = std::env::temp_dir().join(format!("taxdesk-hours-{}.json", uuid::Uuid::new_v4()));
    let all_day = json!(["00:00-24:00"]);
    let file = json!({"hours": {
        "default": {"weekdays": []},
        "groups": {"个人所得税": {
            "weekdays": all_day, "sat": all_day, "sun": all_day, "makeup": all_day
        }}
    }});
    std::fs::write(&path, file.to_string()).unwrap();
    let app = TestApp::spawn_with(&[("TAXDESK_CALENDAR", path.to_str().unwrap())]).await;
    std::fs::remove_file(&path).ok();
    let tp = app.user("taxpayer", "tp1");

    let h = hours(&tp, None).await;
    assert_eq!(h["openNow"], false);
    assert_eq!(h["nextOpenAt"], Value::Null);
    assert_eq!(h["periodsToday"], json!([]));
    // Another group without hours of its own has the default ones.
    assert_eq!(
        hours(&tp, Some("发票业务")).await["nextOpenAt"],
        Value::Null
    );

    let now = Utc::now();
    let h = hours(&tp, Some("个人所得税")).await;
    let p = periods(&h);
    // Open all day unless today is a public holiday.
    assert!(p.is_empty() || (p.len() == 1 && p[0].1 - p[0].0 == chrono::Duration::hours(24)));
    assert_eq!(h["openNow"], !p.is_empty());
    assert_eq!(inside(&p, now), !p.is_empty());
    assert!(h["nextOpenAt"].is_string());
}

#[tokio::test]
async fn refusals() {
    let app = TestApp::spawn().await;
    let tp = app.user("taxpayer", "tp1");
    let r = tp.gql(QUERY, json!({"g": "没有这个组"})).await;
    assert_eq!(r.code(), Some("INVALID_INPUT"));
    assert_eq!(r.0["errors"][0]["extensions"]["field"], "skillGroup");
    assert!(
        r.0["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("个人所得税")
    );
    // An empty group is the default group.
    assert!(hours(&tp, Some("")).await["openNow"].is_boolean());
    // Signed-in users only.
    let r = app.anonymous().gql(QUERY, json!({})).await;
    assert_eq!(r.code(), Some("UNAUTHENTICATED"));
}
