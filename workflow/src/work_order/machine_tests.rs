//! The work-order machine against DESIGN.md's table, every status × event × actor, then the
//! guards one by one in given/when/then form.

use super::*;
use chrono::TimeZone;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 10, 0, 0).unwrap()
}

fn given(status: Status) -> Snapshot {
    Snapshot {
        status,
        owner_id: "tp1".into(),
        // An order that was never dispatched has no handler.
        handler_id: (status != Status::Submitted).then(|| "h1".into()),
        priority: Priority::Normal,
        urge_count: 0,
        last_urged_at: None,
        resolution: None,
        rating: None,
        closed_at: (!status.is_open()).then(|| now() - Duration::hours(1)),
        deadline: Some(now() - Duration::hours(1)),
        overdue_escalated_for: None,
    }
}

/// The actors of the table: who they are and how the table names them.
fn actors() -> Vec<(&'static str, Actor)> {
    vec![
        ("owner", Actor::new("tp1", Role::Taxpayer)),
        ("other taxpayer", Actor::new("tp2", Role::Taxpayer)),
        ("handler", Actor::new("h1", Role::Staff)),
        ("other staff", Actor::new("s2", Role::Staff)),
        ("admin", Actor::new("a1", Role::Admin)),
        ("system", Actor::system()),
    ]
}

fn event(kind: EventKind) -> Event {
    match kind {
        EventKind::Dispatch => Event::Dispatch {
            handler_id: "s2".into(),
            note: None,
        },
        EventKind::Accept => Event::Accept,
        EventKind::Progress => Event::Progress {
            note: "在查".into(),
        },
        EventKind::Complete => Event::Complete {
            resolution: "已解决".into(),
        },
        EventKind::Urge => Event::Urge { reason: None },
        EventKind::Terminate => Event::Terminate { reason: None },
        EventKind::Rate => Event::Rate {
            score: 4,
            comment: None,
        },
        EventKind::Overdue => Event::Overdue,
    }
}

/// DESIGN.md's work-order table as data: (event, who may, from statuses, to status or
/// `None` for "same").
/// (event, who may, from statuses, to status or `None` for "same").
type Row = (
    EventKind,
    &'static [&'static str],
    &'static [Status],
    Option<Status>,
);

fn table() -> Vec<Row> {
    use Status::*;
    const OPEN: &[Status] = &[Submitted, Dispatched, InProgress];
    const CLOSED: &[Status] = &[Completed, Terminated];
    vec![
        (
            EventKind::Dispatch,
            &["handler", "other staff", "admin"],
            OPEN,
            Some(Dispatched),
        ),
        (
            EventKind::Accept,
            &["handler"],
            &[Dispatched],
            Some(InProgress),
        ),
        (EventKind::Progress, &["handler"], &[InProgress], None),
        (
            EventKind::Complete,
            &["handler"],
            &[InProgress],
            Some(Completed),
        ),
        (EventKind::Urge, &["owner"], OPEN, None),
        (EventKind::Terminate, &["owner"], OPEN, Some(Terminated)),
        (EventKind::Rate, &["owner"], CLOSED, None),
        (EventKind::Overdue, &["system"], OPEN, None),
    ]
}

#[test]
fn every_status_event_and_actor_follows_the_table() {
    let policy = Policy::default();
    let rows = table();
    assert_eq!(
        rows.len(),
        EventKind::iter().count(),
        "every event has a row"
    );
    let mut checked = 0;
    for status in Status::iter() {
        for (kind, who, from, to) in &rows {
            for (name, actor) in actors() {
                // Before dispatch nobody is "the handler": h1 is then just another staff member.
                let role = if status == Status::Submitted && name == "handler" {
                    "other staff"
                } else {
                    name
                };
                let may = who.contains(&role);
                let got = decide(&policy, &given(status), &actor, &event(*kind), now());
                let case = format!("{status:?} × {kind:?} × {name}");
                match got {
                    Ok(d) => {
                        assert!(
                            may && from.contains(&status),
                            "{case}: allowed but the table refuses"
                        );
                        assert_eq!(d.next.status, to.unwrap_or(status), "{case}: wrong target");
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
    assert_eq!(checked, 5 * 8 * 6);
}

#[test]
fn allowed_actions_match_decide() {
    let policy = Policy::default();
    for status in Status::iter() {
        for (name, actor) in actors() {
            let allowed = allowed(&policy, &given(status), &actor, now());
            for kind in EventKind::iter() {
                let ok =
                    decide(&policy, &given(status), &actor, &kind.sample(&actor), now()).is_ok();
                assert_eq!(allowed.contains(&kind), ok, "{status:?} {kind:?} {name}");
            }
        }
    }
    let owner = Actor::new("tp1", Role::Taxpayer);
    assert_eq!(
        allowed(&policy, &given(Status::InProgress), &owner, now()),
        vec![EventKind::Urge, EventKind::Terminate]
    );
}

#[test]
fn create_is_for_oneself_or_by_staff_for_a_taxpayer() {
    let tp = Actor::new("tp1", Role::Taxpayer);
    assert_eq!(decide_create(&tp, None).unwrap(), "tp1");
    assert_eq!(decide_create(&tp, Some("tp1")).unwrap(), "tp1");
    assert_eq!(
        decide_create(&tp, Some("tp2")).unwrap_err().code,
        RefusalCode::Forbidden
    );
    let staff = Actor::new("s1", Role::Staff);
    assert_eq!(decide_create(&staff, Some("tp2")).unwrap(), "tp2");
    assert_eq!(
        decide_create(&staff, None).unwrap_err().code,
        RefusalCode::InvalidInput
    );
    let admin = Actor::new("a1", Role::Admin);
    assert_eq!(decide_create(&admin, Some("tp2")).unwrap(), "tp2");
    assert_eq!(
        decide_create(&Actor::system(), Some("tp2"))
            .unwrap_err()
            .code,
        RefusalCode::Forbidden
    );
}

fn owner() -> Actor {
    Actor::new("tp1", Role::Taxpayer)
}

#[test]
fn urge_counts_notifies_the_handler_and_cools_down() {
    let policy = Policy::default();
    let d = decide(
        &policy,
        &given(Status::Dispatched),
        &owner(),
        &Event::Urge { reason: None },
        now(),
    )
    .unwrap();
    assert_eq!(d.next.urge_count, 1);
    assert_eq!(d.next.last_urged_at, Some(now()));
    assert_eq!(
        d.effects,
        vec![Effect::Notify {
            to: Recipient::Handler,
            kind: NoticeKind::WorkOrderUrged
        }]
    );

    let again = decide(
        &policy,
        &d.next,
        &owner(),
        &Event::Urge { reason: None },
        now() + Duration::hours(23),
    );
    assert_eq!(again.unwrap_err().code, RefusalCode::CoolDown);
    assert!(
        decide(
            &policy,
            &d.next,
            &owner(),
            &Event::Urge { reason: None },
            now() + Duration::hours(24)
        )
        .is_ok()
    );
}

#[test]
fn urge_before_dispatch_tells_the_supervisors() {
    let d = decide(
        &Policy::default(),
        &given(Status::Submitted),
        &owner(),
        &Event::Urge { reason: None },
        now(),
    )
    .unwrap();
    assert_eq!(
        d.effects,
        vec![Effect::Notify {
            to: Recipient::Supervisors,
            kind: NoticeKind::WorkOrderUrged
        }]
    );
}

#[test]
fn every_nth_urge_raises_the_priority_once_up_to_urgent() {
    let policy = Policy {
        urge_cooldown: Duration::zero(),
        ..Policy::default()
    };
    let mut s = given(Status::InProgress);
    let mut priorities = vec![];
    for _ in 0..9 {
        s = decide(&policy, &s, &owner(), &Event::Urge { reason: None }, now())
            .unwrap()
            .next;
        priorities.push(s.priority);
    }
    use Priority::*;
    assert_eq!(
        priorities,
        vec![
            Normal, Normal, High, High, High, Urgent, Urgent, Urgent, Urgent
        ]
    );
}

#[test]
fn complete_notifies_and_emails_the_owner() {
    let h = Actor::new("h1", Role::Staff);
    let d = decide(
        &Policy::default(),
        &given(Status::InProgress),
        &h,
        &Event::Complete {
            resolution: "好了".into(),
        },
        now(),
    )
    .unwrap();
    assert_eq!(d.next.closed_at, Some(now()));
    assert_eq!(d.next.resolution.as_deref(), Some("好了"));
    assert_eq!(
        d.effects,
        vec![
            Effect::Notify {
                to: Recipient::Owner,
                kind: NoticeKind::WorkOrderCompleted
            },
            Effect::Email {
                to: Recipient::Owner,
                kind: NoticeKind::WorkOrderCompleted
            },
        ]
    );
}

#[test]
fn redispatch_tells_the_new_and_the_previous_handler() {
    let a = Actor::new("a1", Role::Admin);
    let ev = Event::Dispatch {
        handler_id: "s2".into(),
        note: None,
    };
    let d = decide(
        &Policy::default(),
        &given(Status::InProgress),
        &a,
        &ev,
        now(),
    )
    .unwrap();
    assert_eq!(d.next.handler_id.as_deref(), Some("s2"));
    assert_eq!(d.next.status, Status::Dispatched);
    assert_eq!(
        d.effects,
        vec![
            Effect::Notify {
                to: Recipient::Handler,
                kind: NoticeKind::WorkOrderDispatched
            },
            Effect::Notify {
                to: Recipient::User("h1".into()),
                kind: NoticeKind::WorkOrderReassigned
            },
        ]
    );
}

#[test]
fn rate_once_and_only_within_the_window() {
    let policy = Policy::default();
    let rate = Event::Rate {
        score: 5,
        comment: Some("很好".into()),
    };
    let d = decide(&policy, &given(Status::Completed), &owner(), &rate, now()).unwrap();
    assert_eq!(d.next.rating.as_ref().map(|r| r.score), Some(5));
    assert_eq!(
        decide(&policy, &d.next, &owner(), &rate, now())
            .unwrap_err()
            .code,
        RefusalCode::AlreadyRated
    );

    let late = now() + Duration::days(30);
    assert_eq!(
        decide(&policy, &given(Status::Completed), &owner(), &rate, late)
            .unwrap_err()
            .code,
        RefusalCode::InvalidTransition
    );
    let bad = Event::Rate {
        score: 6,
        comment: None,
    };
    assert_eq!(
        decide(&policy, &given(Status::Completed), &owner(), &bad, now())
            .unwrap_err()
            .code,
        RefusalCode::InvalidInput
    );
}

#[test]
fn overdue_escalates_once_per_deadline_and_only_when_due() {
    let policy = Policy::default();
    let d = decide(
        &policy,
        &given(Status::Dispatched),
        &Actor::system(),
        &Event::Overdue,
        now(),
    )
    .unwrap();
    assert_eq!(d.next.priority, Priority::High);
    assert_eq!(d.effects.len(), 2);
    let twice = decide(&policy, &d.next, &Actor::system(), &Event::Overdue, now());
    assert_eq!(twice.unwrap_err().code, RefusalCode::InvalidTransition);

    let mut not_due = given(Status::Dispatched);
    not_due.deadline = Some(now() + Duration::hours(1));
    assert!(decide(&policy, &not_due, &Actor::system(), &Event::Overdue, now()).is_err());
    // A new deadline (extended, then passed again) escalates again.
    let mut extended = d.next.clone();
    extended.deadline = Some(now() - Duration::minutes(1));
    assert!(decide(&policy, &extended, &Actor::system(), &Event::Overdue, now()).is_ok());
}

#[test]
fn terminate_tells_the_handler_when_there_is_one() {
    let t = Event::Terminate {
        reason: Some("不需要了".into()),
    };
    let d = decide(
        &Policy::default(),
        &given(Status::Submitted),
        &owner(),
        &t,
        now(),
    )
    .unwrap();
    assert!(d.effects.is_empty());
    let d = decide(
        &Policy::default(),
        &given(Status::InProgress),
        &owner(),
        &t,
        now(),
    )
    .unwrap();
    assert_eq!(d.next.status, Status::Terminated);
    assert_eq!(
        d.effects,
        vec![Effect::Notify {
            to: Recipient::Handler,
            kind: NoticeKind::WorkOrderTerminated
        }]
    );
}
