//! The chat-session machine against DESIGN.md's table, every status × event × actor, then
//! the guards.

use super::*;
use chrono::TimeZone;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 10, 0, 0).unwrap()
}

fn given(status: Status) -> Snapshot {
    Snapshot {
        status,
        taxpayer_id: "tp1".into(),
        agent_id: (status == Status::Active).then(|| "ag1".into()),
        skill_group: "发票业务".into(),
        had_agent: matches!(status, Status::Active | Status::Ended),
        rated: false,
        queue_priority: 0,
    }
}

fn actors() -> Vec<(&'static str, Actor)> {
    vec![
        ("owner", Actor::new("tp1", Role::Taxpayer)),
        ("other taxpayer", Actor::new("tp2", Role::Taxpayer)),
        ("agent", Actor::new("ag1", Role::Staff)),
        ("other staff", Actor::new("s2", Role::Staff)),
        ("admin", Actor::new("a1", Role::Admin)),
        ("system", Actor::system()),
    ]
}

fn event(kind: EventKind, actor: &Actor) -> Event {
    match kind {
        EventKind::Ask => Event::Ask,
        EventKind::RequestHuman => Event::RequestHuman {
            skill_group: "个人所得税".into(),
            open_now: true,
            agent_online: true,
        },
        // Whoever assigns, assigns themselves (staff may only pick for themselves).
        EventKind::Assign => Event::Assign {
            agent_id: actor.id.clone(),
            available: true,
        },
        EventKind::Leave => Event::Leave,
        EventKind::QueueTimeout => Event::QueueTimeout,
        EventKind::Transfer => Event::Transfer {
            to: TransferTarget::Group("其他".into()),
            available: true,
        },
        EventKind::Requeue => Event::Requeue,
        EventKind::End => Event::End,
        EventKind::IdleTimeout => Event::IdleTimeout,
        EventKind::Rate => Event::Rate {
            resolved: true,
            satisfaction: 4,
            comment: None,
        },
        EventKind::BookingStarts => Event::BookingStarts {
            agent_id: None,
            available: false,
        },
    }
}

/// (event, who may, from statuses, to status or `None` for "same").
type Row = (
    EventKind,
    &'static [&'static str],
    &'static [Status],
    Option<Status>,
);

fn table() -> Vec<Row> {
    use Status::*;
    vec![
        (EventKind::Ask, &["owner"], &[Bot], None),
        (EventKind::RequestHuman, &["owner"], &[Bot], Some(Queued)),
        (
            EventKind::Assign,
            &["agent", "other staff", "admin", "system"],
            &[Queued],
            Some(Active),
        ),
        (EventKind::Leave, &["owner"], &[Queued], Some(Abandoned)),
        (
            EventKind::QueueTimeout,
            &["system"],
            &[Queued],
            Some(Abandoned),
        ),
        (
            EventKind::Transfer,
            &["agent", "admin"],
            &[Active],
            Some(Queued),
        ),
        (EventKind::Requeue, &["system"], &[Active], Some(Queued)),
        (
            EventKind::End,
            &["owner", "agent"],
            &[Bot, Active],
            Some(Ended),
        ),
        (
            EventKind::IdleTimeout,
            &["system"],
            &[Bot, Active],
            Some(Ended),
        ),
        (EventKind::Rate, &["owner"], &[Ended], None),
        (EventKind::BookingStarts, &["system"], &[Bot], Some(Queued)),
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
                // Only an ACTIVE session has an agent; otherwise ag1 is just another staff member.
                let role = if status != Status::Active && name == "agent" {
                    "other staff"
                } else {
                    name
                };
                let may = who.contains(&role);
                let case = format!("{status:?} × {kind:?} × {name}");
                match decide(&given(status), &actor, &event(*kind, &actor), now()) {
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
    assert_eq!(checked, 5 * 11 * 6);
}

#[test]
fn allowed_actions_follow_decide() {
    let owner = Actor::new("tp1", Role::Taxpayer);
    assert_eq!(
        allowed(&given(Status::Bot), &owner, now()),
        vec![EventKind::Ask, EventKind::RequestHuman, EventKind::End]
    );
    assert_eq!(
        allowed(&given(Status::Queued), &owner, now()),
        vec![EventKind::Leave]
    );
    assert_eq!(
        allowed(&given(Status::Active), &owner, now()),
        vec![EventKind::End]
    );
    assert_eq!(
        allowed(&given(Status::Ended), &owner, now()),
        vec![EventKind::Rate]
    );
    let agent = Actor::new("ag1", Role::Staff);
    assert_eq!(
        allowed(&given(Status::Active), &agent, now()),
        vec![EventKind::Transfer, EventKind::End]
    );
    let staff = Actor::new("s2", Role::Staff);
    assert_eq!(
        allowed(&given(Status::Queued), &staff, now()),
        vec![EventKind::Assign]
    );
    assert!(allowed(&given(Status::Active), &Actor::system(), now()).is_empty());
}

#[test]
fn human_hand_over_is_refused_off_hours_and_without_agents() {
    let owner = Actor::new("tp1", Role::Taxpayer);
    let ask = |open_now, agent_online| Event::RequestHuman {
        skill_group: "其他".into(),
        open_now,
        agent_online,
    };
    let off = decide(&given(Status::Bot), &owner, &ask(false, true), now()).unwrap_err();
    assert_eq!(off.code, RefusalCode::OffHours);
    assert!(off.zh.contains("留言") && off.zh.contains("预约"));
    assert_eq!(
        decide(&given(Status::Bot), &owner, &ask(true, false), now())
            .unwrap_err()
            .code,
        RefusalCode::NoAgent
    );
    let d = decide(&given(Status::Bot), &owner, &ask(true, true), now()).unwrap();
    assert_eq!(d.next.skill_group, "其他");
    assert!(d.effects.contains(&Effect::Route));
    assert!(d.effects.contains(&Effect::ScheduleQueueTimers));
}

#[test]
fn assignment_needs_a_free_agent_and_tells_them() {
    let sys = Actor::system();
    let busy = Event::Assign {
        agent_id: "ag9".into(),
        available: false,
    };
    assert_eq!(
        decide(&given(Status::Queued), &sys, &busy, now())
            .unwrap_err()
            .code,
        RefusalCode::InvalidTransition
    );
    let free = Event::Assign {
        agent_id: "ag9".into(),
        available: true,
    };
    let d = decide(&given(Status::Queued), &sys, &free, now()).unwrap();
    assert_eq!(d.next.agent_id.as_deref(), Some("ag9"));
    assert!(d.next.had_agent);
    assert!(d.effects.contains(&Effect::TellAgent("ag9".into())));
}

#[test]
fn losing_the_agent_requeues_at_the_front() {
    let d = decide(
        &given(Status::Active),
        &Actor::system(),
        &Event::Requeue,
        now(),
    )
    .unwrap();
    assert_eq!(d.next.status, Status::Queued);
    assert_eq!(d.next.agent_id, None);
    assert_eq!(d.next.queue_priority, FRONT_OF_QUEUE);
    assert!(d.effects.contains(&Effect::EndChannels));
}

#[test]
fn transfer_to_an_agent_keeps_the_chat_active() {
    let agent = Actor::new("ag1", Role::Staff);
    let to = |a: &str, available| Event::Transfer {
        to: TransferTarget::Agent(a.into()),
        available,
    };
    let d = decide(&given(Status::Active), &agent, &to("ag2", true), now()).unwrap();
    assert_eq!(d.next.status, Status::Active);
    assert_eq!(d.next.agent_id.as_deref(), Some("ag2"));
    assert!(decide(&given(Status::Active), &agent, &to("ag2", false), now()).is_err());
    assert!(
        decide(&given(Status::Active), &agent, &to("ag1", true), now()).is_err(),
        "not to oneself"
    );
}

#[test]
fn rating_only_after_a_human_and_only_once() {
    let owner = Actor::new("tp1", Role::Taxpayer);
    let rate = |s| Event::Rate {
        resolved: false,
        satisfaction: s,
        comment: Some("还行".into()),
    };
    let d = decide(&given(Status::Ended), &owner, &rate(3), now()).unwrap();
    assert!(d.next.rated);
    assert_eq!(
        decide(&d.next, &owner, &rate(3), now()).unwrap_err().code,
        RefusalCode::AlreadyRated
    );
    assert_eq!(
        decide(&given(Status::Ended), &owner, &rate(0), now())
            .unwrap_err()
            .code,
        RefusalCode::InvalidInput
    );
    let mut bot_only = given(Status::Ended);
    bot_only.had_agent = false;
    assert_eq!(
        decide(&bot_only, &owner, &rate(5), now()).unwrap_err().code,
        RefusalCode::InvalidTransition
    );
}

#[test]
fn ending_a_bot_chat_needs_no_routing() {
    let owner = Actor::new("tp1", Role::Taxpayer);
    let d = decide(&given(Status::Bot), &owner, &Event::End, now()).unwrap();
    assert!(!d.effects.contains(&Effect::Route));
    let d = decide(&given(Status::Active), &owner, &Event::End, now()).unwrap();
    assert!(
        d.effects.contains(&Effect::Route),
        "a freed agent takes the next in line"
    );
    assert!(d.effects.contains(&Effect::EndChannels));
}

#[test]
fn a_booked_session_starts_with_its_agent_or_at_the_front() {
    let sys = Actor::system();
    let with = Event::BookingStarts {
        agent_id: Some("ag9".into()),
        available: true,
    };
    let d = decide(&given(Status::Bot), &sys, &with, now()).unwrap();
    assert_eq!(d.next.status, Status::Active);
    assert!(d.effects.contains(&Effect::TellAgent("ag9".into())));
    let away = Event::BookingStarts {
        agent_id: Some("ag9".into()),
        available: false,
    };
    let d = decide(&given(Status::Bot), &sys, &away, now()).unwrap();
    assert_eq!(d.next.status, Status::Queued);
    assert_eq!(d.next.queue_priority, FRONT_OF_QUEUE);
}
