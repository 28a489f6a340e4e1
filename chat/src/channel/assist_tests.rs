//! The remote-assistance machine against DESIGN.md's rows, every status × event × actor, then
//! the guards, the effects and the signalling rule in given/when/then form.

use super::*;
use chrono::{Duration, TimeZone};
use taxdesk_workflow::Role;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 10, 0, 0).unwrap()
}

/// A chat between taxpayer tp1 and agent s1, ACTIVE, with a remote assistance in `status`
/// (`None`: not requested yet).
fn given(status: Option<Status>) -> Snapshot {
    let mut s = Snapshot::new("tp1", Some("s1".into()), true);
    s.status = status;
    s.requested_at = status.map(|_| now() - Duration::minutes(1));
    s.ended_at = status
        .filter(|s| !s.is_open())
        .map(|_| now() - Duration::seconds(10));
    s
}

fn statuses() -> Vec<Option<Status>> {
    std::iter::once(None)
        .chain(Status::iter().map(Some))
        .collect()
}

/// The actors of the table: who they are and how the table names them.
fn actors() -> Vec<(&'static str, Actor)> {
    vec![
        ("taxpayer", taxpayer()),
        ("other taxpayer", Actor::new("tp2", Role::Taxpayer)),
        ("agent", agent()),
        ("other staff", Actor::new("s2", Role::Staff)),
        ("admin", Actor::new("a1", Role::Admin)),
        ("system", Actor::system()),
    ]
}

fn taxpayer() -> Actor {
    Actor::new("tp1", Role::Taxpayer)
}

fn agent() -> Actor {
    Actor::new("s1", Role::Staff)
}

/// DESIGN.md's remote-assistance rows as data: (event, who may, [(from, to)]). An event may
/// have several rows when different actors may ask for it from different statuses.
type Row = (
    EventKind,
    &'static [&'static str],
    &'static [(Option<Status>, Status)],
);

fn table() -> Vec<Row> {
    use Status::*;
    const PARTICIPANTS: &[&str] = &["taxpayer", "agent"];
    const CLOSE: &[(Option<Status>, Status)] =
        &[(Some(Requested), Cancelled), (Some(Active), Ended)];
    vec![
        (EventKind::Request, &["taxpayer"], &[(None, Requested)]),
        (EventKind::Accept, &["agent"], &[(Some(Requested), Active)]),
        (
            EventKind::Decline,
            &["agent"],
            &[(Some(Requested), Declined)],
        ),
        (
            EventKind::Cancel,
            &["taxpayer"],
            &[(Some(Requested), Cancelled)],
        ),
        (EventKind::End, PARTICIPANTS, &[(Some(Active), Ended)]),
        (EventKind::End, &["system"], CLOSE),
        (EventKind::SessionEnded, &["system"], CLOSE),
    ]
}

#[test]
fn every_status_event_and_actor_follows_the_table() {
    let rows = table();
    for kind in EventKind::iter() {
        assert!(rows.iter().any(|(k, ..)| *k == kind), "{kind:?} has no row");
    }
    let mut checked = 0;
    for status in statuses() {
        for kind in EventKind::iter() {
            for (name, actor) in actors() {
                let mine: Vec<_> = rows
                    .iter()
                    .filter(|(k, who, _)| *k == kind && who.contains(&name))
                    .collect();
                let expected = mine
                    .iter()
                    .flat_map(|(.., moves)| moves.iter())
                    .find(|(from, _)| *from == status)
                    .map(|(_, to)| *to);
                let got = decide(&given(status), &actor, &kind.sample(), now());
                let case = format!("{status:?} × {kind:?} × {name}");
                match (got, expected) {
                    (Ok(d), Some(to)) => {
                        assert_eq!(d.to, to, "{case}: wrong target");
                        assert_eq!(d.next.status, Some(to), "{case}");
                        assert_eq!(
                            d.effects,
                            vec![Effect::Publish(ChannelChange::RemoteAssist {
                                from: status,
                                to
                            })],
                            "{case}: every change is published"
                        );
                    }
                    (Ok(d), None) => {
                        panic!("{case}: allowed (to {:?}) but the table refuses", d.to)
                    }
                    (Err(r), Some(_)) => panic!("{case}: the table allows it but got {r:?}"),
                    (Err(r), None) if mine.is_empty() => {
                        assert_eq!(r.code, RefusalCode::Forbidden, "{case}")
                    }
                    (Err(r), None) => {
                        assert_eq!(r.code, RefusalCode::InvalidTransition, "{case}")
                    }
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 6 * 6 * 6);
}

#[test]
fn allowed_actions_match_decide() {
    for status in statuses() {
        for (name, actor) in actors() {
            let allowed = allowed(&given(status), &actor, now());
            for kind in EventKind::iter() {
                let ok = decide(&given(status), &actor, &kind.sample(), now()).is_ok();
                assert_eq!(allowed.contains(&kind), ok, "{status:?} {kind:?} {name}");
            }
        }
    }
}

#[test]
fn each_side_sees_its_own_buttons() {
    use EventKind as K;
    let none: Vec<K> = vec![];
    assert_eq!(allowed(&given(None), &taxpayer(), now()), vec![K::Request]);
    assert_eq!(allowed(&given(None), &agent(), now()), none);
    let requested = given(Some(Status::Requested));
    assert_eq!(allowed(&requested, &taxpayer(), now()), vec![K::Cancel]);
    assert_eq!(
        allowed(&requested, &agent(), now()),
        vec![K::Accept, K::Decline]
    );
    let active = given(Some(Status::Active));
    assert_eq!(allowed(&active, &taxpayer(), now()), vec![K::End]);
    assert_eq!(allowed(&active, &agent(), now()), vec![K::End]);
    let other = Actor::new("s2", Role::Staff);
    assert_eq!(allowed(&active, &other, now()), none);
}

#[test]
fn request_needs_an_active_chat() {
    // Given a chat that is still with the bot (or queued, or ended)
    let bot = Snapshot::new("tp1", None, false);
    // When the taxpayer asks for remote assistance
    let got = decide(&bot, &taxpayer(), &Event::Request, now());
    // Then it is refused as a wrong state, and not offered
    assert_eq!(got.unwrap_err().code, RefusalCode::InvalidTransition);
    assert!(allowed(&bot, &taxpayer(), now()).is_empty());
}

#[test]
fn request_opens_a_row_and_publishes_it() {
    let d = decide(&given(None), &taxpayer(), &Event::Request, now()).unwrap();
    assert_eq!(d.to, Status::Requested);
    assert_eq!(d.next.requested_at, Some(now()));
    assert_eq!(d.next.ended_at, None);
    assert_eq!(
        d.effects,
        vec![Effect::Publish(ChannelChange::RemoteAssist {
            from: None,
            to: Status::Requested
        })]
    );
    let Effect::Publish(change) = &d.effects[0] else {
        unreachable!()
    };
    assert_eq!(change.kind(), ChannelKind::RemoteAssist);
    assert_eq!(change.to_status(), "REQUESTED");
}

#[test]
fn a_second_request_while_one_is_open_is_refused() {
    for open in [Status::Requested, Status::Active] {
        let got = decide(&given(Some(open)), &taxpayer(), &Event::Request, now());
        let r = got.unwrap_err();
        assert_eq!(r.code, RefusalCode::InvalidTransition);
        assert!(r.en.contains("already"), "{r}");
    }
}

#[test]
fn the_agent_cannot_accept_after_the_chat_left_active() {
    let mut s = given(Some(Status::Requested));
    s.session_active = false;
    assert_eq!(
        decide(&s, &agent(), &Event::Accept, now())
            .unwrap_err()
            .code,
        RefusalCode::InvalidTransition
    );
    // Declining is still possible: it only closes the request.
    assert_eq!(
        decide(&s, &agent(), &Event::Decline, now()).unwrap().to,
        Status::Declined
    );
}

#[test]
fn rights_follow_the_relation_not_the_role() {
    // Given an admin who is this chat's agent
    let mut s = given(Some(Status::Requested));
    s.agent_id = Some("a1".into());
    let admin = Actor::new("a1", Role::Admin);
    // Then the admin accepts like any agent, and the former agent s1 cannot
    assert_eq!(
        decide(&s, &admin, &Event::Accept, now()).unwrap().to,
        Status::Active
    );
    assert_eq!(
        decide(&s, &agent(), &Event::Accept, now())
            .unwrap_err()
            .code,
        RefusalCode::Forbidden
    );
}

#[test]
fn ending_stamps_the_end_and_either_side_may_end() {
    for who in [taxpayer(), agent()] {
        let d = decide(&given(Some(Status::Active)), &who, &Event::End, now()).unwrap();
        assert_eq!(d.to, Status::Ended);
        assert_eq!(d.next.ended_at, Some(now()));
    }
    // The taxpayer withdraws a pending request with CANCEL, not END.
    assert_eq!(
        decide(
            &given(Some(Status::Requested)),
            &taxpayer(),
            &Event::End,
            now()
        )
        .unwrap_err()
        .code,
        RefusalCode::InvalidTransition
    );
}

#[test]
fn the_chat_ending_cancels_a_request_and_ends_an_assistance() {
    let sys = Actor::system();
    for ev in [Event::SessionEnded, Event::End] {
        let d = decide(&given(Some(Status::Requested)), &sys, &ev, now()).unwrap();
        assert_eq!(d.to, Status::Cancelled);
        assert_eq!(d.next.ended_at, Some(now()));
        let d = decide(&given(Some(Status::Active)), &sys, &ev, now()).unwrap();
        assert_eq!(d.to, Status::Ended);
    }
    // Nothing to close before a request, nor after the end.
    for s in [None, Some(Status::Ended), Some(Status::Declined)] {
        assert_eq!(
            decide(&given(s), &sys, &Event::SessionEnded, now())
                .unwrap_err()
                .code,
            RefusalCode::InvalidTransition
        );
    }
}

#[test]
fn statuses_and_events_are_stable_strings() {
    assert_eq!(Status::Requested.as_ref(), "REQUESTED");
    assert_eq!("CANCELLED".parse::<Status>().unwrap(), Status::Cancelled);
    assert_eq!(EventKind::SessionEnded.as_ref(), "SESSION_ENDED");
    assert_eq!(Event::End.note(), None);
}

// --- signalling ---

#[test]
fn participants_relay_negotiation_to_each_other_while_active() {
    let active = given(Some(Status::Active));
    for kind in [SignalKind::Offer, SignalKind::Answer, SignalKind::Ice] {
        assert_eq!(
            signal(&active, &taxpayer(), kind).unwrap(),
            Relay { to: "s1".into() }
        );
        assert_eq!(
            signal(&active, &agent(), kind).unwrap(),
            Relay { to: "tp1".into() }
        );
    }
}

#[test]
fn a_control_message_is_never_relayed() {
    for status in statuses() {
        for (name, actor) in actors() {
            assert!(
                !may_signal(&given(status), &actor, SignalKind::Control),
                "{status:?} {name}"
            );
        }
    }
    // Not even the agent of an active assistance: the agent only watches.
    let r = signal(&given(Some(Status::Active)), &agent(), SignalKind::Control).unwrap_err();
    assert_eq!(r.code, RefusalCode::Forbidden);
}

#[test]
fn nothing_is_relayed_outside_active() {
    for status in statuses()
        .into_iter()
        .filter(|s| *s != Some(Status::Active))
    {
        for who in [taxpayer(), agent()] {
            let r = signal(&given(status), &who, SignalKind::Offer).unwrap_err();
            assert_eq!(r.code, RefusalCode::InvalidTransition, "{status:?}");
        }
    }
}

#[test]
fn a_stranger_cannot_signal() {
    let active = given(Some(Status::Active));
    for (name, actor) in actors() {
        if name == "taxpayer" || name == "agent" {
            continue;
        }
        for kind in SignalKind::iter() {
            let r = signal(&active, &actor, kind).unwrap_err();
            assert_eq!(r.code, RefusalCode::Forbidden, "{name} {kind:?}");
        }
    }
}

#[test]
fn only_negotiation_kinds_are_ever_relayed() {
    let relayed: Vec<_> = SignalKind::iter().filter(|k| k.is_relayed()).collect();
    assert_eq!(
        relayed,
        vec![SignalKind::Offer, SignalKind::Answer, SignalKind::Ice]
    );
    assert_eq!("ICE".parse::<SignalKind>().unwrap(), SignalKind::Ice);
}
