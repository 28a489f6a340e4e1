//! The booking machine against DESIGN.md's table, every status × event × actor, then guards.

use super::*;
use chrono::TimeZone;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 2, 0, 0).unwrap()
}

fn given(status: Status) -> Snapshot {
    Snapshot {
        status,
        taxpayer_id: "tp1".into(),
        agent_id: Some("s1".into()),
        inviter_id: Some("s1".into()),
        start: now() + Duration::hours(3),
        end: now() + Duration::hours(3) + Duration::minutes(30),
        cancel_cutoff: Duration::hours(1),
    }
}

fn actors() -> Vec<(&'static str, Actor)> {
    vec![
        ("owner", Actor::new("tp1", Role::Taxpayer)),
        ("other taxpayer", Actor::new("tp2", Role::Taxpayer)),
        ("staff", Actor::new("s1", Role::Staff)),
        ("admin", Actor::new("a1", Role::Admin)),
        ("system", Actor::system()),
    ]
}

type Row = (
    EventKind,
    &'static [&'static str],
    &'static [Status],
    Option<Status>,
);

fn table() -> Vec<Row> {
    use Status::*;
    vec![
        (EventKind::Accept, &["owner"], &[Invited], Some(Confirmed)),
        (EventKind::Reject, &["owner"], &[Invited], Some(Rejected)),
        (EventKind::Expire, &["system"], &[Invited], Some(Expired)),
        (
            EventKind::Cancel,
            &["owner", "staff", "admin"],
            &[Confirmed],
            Some(Cancelled),
        ),
        (
            EventKind::Reschedule,
            &["owner", "staff", "admin"],
            &[Confirmed],
            None,
        ),
        (EventKind::Start, &["system"], &[Confirmed], Some(InSession)),
        (
            EventKind::Finish,
            &["system"],
            &[InSession],
            Some(Completed),
        ),
        (EventKind::NoShow, &["system"], &[InSession], Some(NoShow)),
    ]
}

#[test]
fn every_status_event_and_actor_follows_the_table() {
    let rows = table();
    assert_eq!(rows.len(), EventKind::iter().count());
    let mut checked = 0;
    for status in Status::iter() {
        for (kind, who, from, to) in &rows {
            for (name, actor) in actors() {
                let s = given(status);
                let case = format!("{status:?} × {kind:?} × {name}");
                let may = who.contains(&name);
                match decide(&s, &actor, &kind.sample(&s), now()) {
                    Ok(d) => {
                        assert!(
                            may && from.contains(&status),
                            "{case}: allowed but the table refuses"
                        );
                        assert_eq!(d.next.status, to.unwrap_or(status), "{case}");
                    }
                    Err(r) if !may => assert_eq!(r.code, RefusalCode::Forbidden, "{case}"),
                    Err(r) if !from.contains(&status) => {
                        assert_eq!(r.code, RefusalCode::InvalidTransition, "{case}")
                    }
                    Err(r) => panic!("{case}: the table allows it but got {r:?}"),
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 8 * 8 * 5);
}

#[test]
fn a_taxpayer_cancels_only_before_the_cut_off_staff_any_time_with_a_reason() {
    let owner = Actor::new("tp1", Role::Taxpayer);
    let staff = Actor::new("s1", Role::Staff);
    let s = given(Status::Confirmed);
    let late = s.start - Duration::minutes(30);
    let cancel = |r: Option<&str>| Event::Cancel {
        reason: r.map(String::from),
    };
    assert!(decide(&s, &owner, &cancel(None), now()).is_ok());
    assert_eq!(
        decide(&s, &owner, &cancel(None), late).unwrap_err().code,
        RefusalCode::TooLateToCancel
    );
    assert_eq!(
        decide(&s, &staff, &cancel(None), late).unwrap_err().code,
        RefusalCode::InvalidInput
    );
    let d = decide(&s, &staff, &cancel(Some("窗口临时关闭")), late).unwrap();
    assert!(d.effects.contains(&Effect::ReleasePlace));
    assert!(d.effects.contains(&Effect::Email {
        to: Recipient::Taxpayer,
        kind: NoticeKind::BookingCancelled
    }));
    let moved = Event::Reschedule {
        start: late,
        end: late,
    };
    assert_eq!(
        decide(&s, &owner, &moved, late).unwrap_err().code,
        RefusalCode::TooLateToCancel
    );
}

#[test]
fn accepting_schedules_and_tells_the_inviter_start_opens_the_session() {
    let owner = Actor::new("tp1", Role::Taxpayer);
    let d = decide(&given(Status::Invited), &owner, &Event::Accept, now()).unwrap();
    assert!(d.effects.contains(&Effect::ScheduleReminders));
    assert!(
        d.effects.contains(&Effect::CancelJobs),
        "the expiry is no longer wanted"
    );
    let too_late = given(Status::Invited).start + Duration::minutes(1);
    assert_eq!(
        decide(&given(Status::Invited), &owner, &Event::Accept, too_late)
            .unwrap_err()
            .code,
        RefusalCode::InvalidTransition
    );
    let d = decide(
        &given(Status::Confirmed),
        &Actor::system(),
        &Event::Start,
        now(),
    )
    .unwrap();
    assert_eq!(d.effects[0], Effect::OpenBookedSession);
    assert!(d.effects.contains(&Effect::ScheduleNoShowCheck));
}

#[test]
fn only_taxpayers_book_and_only_staff_invite() {
    assert!(decide_new(&Actor::new("tp1", Role::Taxpayer), Origin::Mine).is_ok());
    assert!(decide_new(&Actor::new("s1", Role::Staff), Origin::Mine).is_err());
    assert!(decide_new(&Actor::new("s1", Role::Staff), Origin::BureauInvited).is_ok());
    assert!(decide_new(&Actor::new("tp1", Role::Taxpayer), Origin::BureauInvited).is_err());
}

#[test]
fn allowed_actions() {
    let owner = Actor::new("tp1", Role::Taxpayer);
    assert_eq!(
        allowed(&given(Status::Invited), &owner, now()),
        vec![EventKind::Accept, EventKind::Reject]
    );
    assert_eq!(
        allowed(&given(Status::Confirmed), &owner, now()),
        vec![EventKind::Cancel, EventKind::Reschedule]
    );
    let late = given(Status::Confirmed).start - Duration::minutes(10);
    assert!(allowed(&given(Status::Confirmed), &owner, late).is_empty());
}
