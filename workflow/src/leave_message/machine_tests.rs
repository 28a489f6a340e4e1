//! The offline-message machine against DESIGN.md's table, every status × event × actor, then
//! the effects one by one in given/when/then form.

use super::*;
use crate::refusal::RefusalCode;
use chrono::{Duration, TimeZone};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 20, 0, 0).unwrap()
}

fn given(status: Status) -> Snapshot {
    Snapshot {
        status,
        owner_id: "tp1".into(),
        // A message that was never answered has no replier.
        last_replier_id: (status != Status::Submitted).then(|| "s1".into()),
        work_order_id: None,
        closed_at: (status == Status::Closed).then(|| now() - Duration::hours(1)),
        closed_by: (status == Status::Closed).then(|| "tp1".into()),
    }
}

/// The actors of the table: who they are and how the table names them.
fn actors() -> Vec<(&'static str, Actor)> {
    vec![
        ("owner", Actor::new("tp1", Role::Taxpayer)),
        ("other taxpayer", Actor::new("tp2", Role::Taxpayer)),
        ("staff", Actor::new("s2", Role::Staff)),
        ("admin", Actor::new("a1", Role::Admin)),
        ("system", Actor::system()),
    ]
}

fn event(kind: EventKind) -> Event {
    match kind {
        EventKind::Reply => Event::Reply {
            content: "请在电子税务局申请调整额度".into(),
        },
        EventKind::FollowUp => Event::FollowUp {
            content: "在哪个菜单？".into(),
        },
        EventKind::Close => Event::Close,
        EventKind::Convert => Event::Convert {
            work_order_id: "wo1".into(),
            number: "GD202611260001".into(),
        },
    }
}

/// DESIGN.md's offline-message table as data: (event, who may, from statuses, to status).
type Row = (
    EventKind,
    &'static [&'static str],
    &'static [Status],
    Status,
);

fn table() -> Vec<Row> {
    use Status::*;
    const OPEN: &[Status] = &[Submitted, Replied];
    vec![
        (EventKind::Reply, &["staff", "admin"], &[Submitted], Replied),
        (EventKind::FollowUp, &["owner"], &[Replied], Submitted),
        (EventKind::Close, &["owner", "staff", "admin"], OPEN, Closed),
        (EventKind::Convert, &["staff", "admin"], OPEN, Closed),
    ]
}

#[test]
fn every_status_event_and_actor_follows_the_table() {
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
                let may = who.contains(&name);
                let got = decide(&given(status), &actor, &event(*kind), now());
                let case = format!("{status:?} × {kind:?} × {name}");
                match got {
                    Ok(d) => {
                        assert!(
                            may && from.contains(&status),
                            "{case}: allowed but the table refuses"
                        );
                        assert_eq!(d.next.status, *to, "{case}: wrong target");
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
    assert_eq!(checked, 3 * 4 * 5);
}

#[test]
fn allowed_actions_match_decide() {
    for status in Status::iter() {
        for (name, actor) in actors() {
            let allowed = allowed(&given(status), &actor, now());
            for kind in EventKind::iter() {
                let ok = decide(&given(status), &actor, &kind.sample(), now()).is_ok();
                assert_eq!(allowed.contains(&kind), ok, "{status:?} {kind:?} {name}");
            }
        }
    }
    let owner = Actor::new("tp1", Role::Taxpayer);
    let staff = Actor::new("s2", Role::Staff);
    use EventKind as K;
    assert_eq!(
        allowed(&given(Status::Submitted), &owner, now()),
        [K::Close]
    );
    assert_eq!(
        allowed(&given(Status::Replied), &owner, now()),
        [K::FollowUp, K::Close]
    );
    assert_eq!(
        allowed(&given(Status::Submitted), &staff, now()),
        [K::Reply, K::Close, K::Convert]
    );
    assert_eq!(
        allowed(&given(Status::Replied), &staff, now()),
        [K::Close, K::Convert]
    );
    for (_, actor) in actors() {
        assert!(allowed(&given(Status::Closed), &actor, now()).is_empty());
    }
}

#[test]
fn only_a_taxpayer_submits_and_the_supervisors_hear_of_it() {
    let (owner, effects) = decide_submit(&Actor::new("tp1", Role::Taxpayer)).unwrap();
    assert_eq!(owner, "tp1");
    assert_eq!(
        effects,
        vec![Effect::Notify {
            to: Recipient::Supervisors,
            kind: NoticeKind::LeaveMessageSubmitted
        }]
    );
    for actor in [
        Actor::new("s1", Role::Staff),
        Actor::new("a1", Role::Admin),
        Actor::system(),
    ] {
        assert_eq!(
            decide_submit(&actor).unwrap_err().code,
            RefusalCode::Forbidden,
            "{actor:?}"
        );
    }
}

#[test]
fn a_reply_notifies_and_emails_the_owner_and_remembers_the_replier() {
    let staff = Actor::new("s2", Role::Staff);
    let d = decide(
        &given(Status::Submitted),
        &staff,
        &event(EventKind::Reply),
        now(),
    )
    .unwrap();
    assert_eq!(d.next.status, Status::Replied);
    assert_eq!(d.next.last_replier_id.as_deref(), Some("s2"));
    assert_eq!(
        d.effects,
        vec![
            Effect::Notify {
                to: Recipient::Owner,
                kind: NoticeKind::LeaveMessageReplied
            },
            Effect::Email {
                to: Recipient::Owner,
                kind: NoticeKind::LeaveMessageReplied
            },
        ]
    );
}

#[test]
fn a_follow_up_reopens_and_tells_who_replied() {
    let owner = Actor::new("tp1", Role::Taxpayer);
    let d = decide(
        &given(Status::Replied),
        &owner,
        &event(EventKind::FollowUp),
        now(),
    )
    .unwrap();
    assert_eq!(d.next.status, Status::Submitted);
    assert_eq!(d.next.last_replier_id.as_deref(), Some("s1"));
    assert_eq!(
        d.effects,
        vec![Effect::Notify {
            to: Recipient::Replier,
            kind: NoticeKind::LeaveMessageFollowedUp
        }]
    );

    // A reply whose author is not known (an old row): the supervisors hear it instead.
    let mut unknown = given(Status::Replied);
    unknown.last_replier_id = None;
    let d = decide(&unknown, &owner, &event(EventKind::FollowUp), now()).unwrap();
    assert_eq!(
        d.effects,
        vec![Effect::Notify {
            to: Recipient::Supervisors,
            kind: NoticeKind::LeaveMessageFollowedUp
        }]
    );
}

#[test]
fn closing_records_who_and_when_and_staff_closing_tells_the_owner() {
    let owner = Actor::new("tp1", Role::Taxpayer);
    let d = decide(&given(Status::Replied), &owner, &Event::Close, now()).unwrap();
    assert_eq!(d.next.status, Status::Closed);
    assert_eq!(d.next.closed_at, Some(now()));
    assert_eq!(d.next.closed_by.as_deref(), Some("tp1"));
    assert!(d.effects.is_empty());

    let staff = Actor::new("s2", Role::Staff);
    let d = decide(&given(Status::Submitted), &staff, &Event::Close, now()).unwrap();
    assert_eq!(d.next.closed_by.as_deref(), Some("s2"));
    assert_eq!(
        d.effects,
        vec![Effect::Notify {
            to: Recipient::Owner,
            kind: NoticeKind::LeaveMessageClosed
        }]
    );
}

#[test]
fn converting_records_the_work_order_and_closes_the_message() {
    let admin = Actor::new("a1", Role::Admin);
    let d = decide(
        &given(Status::Replied),
        &admin,
        &event(EventKind::Convert),
        now(),
    )
    .unwrap();
    assert_eq!(d.next.status, Status::Closed);
    assert_eq!(d.next.work_order_id.as_deref(), Some("wo1"));
    assert_eq!(d.next.closed_by.as_deref(), Some("a1"));
    // The work order's creation tells the taxpayer; the message adds nothing.
    assert!(d.effects.is_empty());
    assert_eq!(
        event(EventKind::Convert).note().as_deref(),
        Some("转为工单 GD202611260001")
    );

    // Once converted (closed), a second conversion is refused.
    let again = decide(&d.next, &admin, &event(EventKind::Convert), now());
    assert_eq!(again.unwrap_err().code, RefusalCode::InvalidTransition);
}

#[test]
fn the_conversation_goes_round_until_closed() {
    let owner = Actor::new("tp1", Role::Taxpayer);
    let staff = Actor::new("s2", Role::Staff);
    let admin = Actor::new("a1", Role::Admin);
    let mut s = given(Status::Submitted);
    let steps: [(&Actor, EventKind, Status); 5] = [
        (&staff, EventKind::Reply, Status::Replied),
        (&owner, EventKind::FollowUp, Status::Submitted),
        (&admin, EventKind::Reply, Status::Replied),
        (&owner, EventKind::FollowUp, Status::Submitted),
        (&owner, EventKind::Close, Status::Closed),
    ];
    for (actor, kind, to) in steps {
        s = decide(&s, actor, &event(kind), now()).unwrap().next;
        assert_eq!(s.status, to, "{kind:?}");
    }
    // The last to answer was the admin.
    assert_eq!(s.last_replier_id.as_deref(), Some("a1"));
}
