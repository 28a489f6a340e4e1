//! The call machine against DESIGN.md's rows, every status × event × actor, then the answer
//! timeout, the effects and the signalling rule in given/when/then form.

use super::*;
use chrono::TimeZone;
use taxdesk_workflow::Role;

/// When the agent invited in `given`.
fn invited_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 10, 0, 0).unwrap()
}

/// A moment while the invitation still waits for an answer.
fn now() -> DateTime<Utc> {
    invited_at() + Duration::seconds(10)
}

/// The moment the invitation expires under the default policy.
fn due() -> DateTime<Utc> {
    invited_at() + DEFAULT_ANSWER_TIMEOUT
}

/// A chat between taxpayer tp1 and agent s1, ACTIVE, with a video call in `status`
/// (`None`: not invited yet).
fn given(status: Option<Status>) -> Snapshot {
    let mut s = Snapshot::new("tp1", Some("s1".into()), true);
    s.status = status;
    s.media = status.map(|_| Media::Video);
    s.invited_at = status.map(|_| invited_at());
    s.ended_at = status.filter(|s| !s.is_open()).map(|_| now());
    s
}

fn statuses() -> Vec<Option<Status>> {
    std::iter::once(None)
        .chain(Status::iter().map(Some))
        .collect()
}

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

/// When the table's events happen: the expiry job runs at the deadline, everything else
/// while the invitation still waits.
fn at(kind: EventKind) -> DateTime<Utc> {
    match kind {
        EventKind::Expire => due(),
        _ => now(),
    }
}

/// What a row does to the expiry job besides publishing the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    Keep,
    Schedule,
    Cancel,
}

/// DESIGN.md's call rows as data: (event, who may, [(from, to, timer)]). An event may have
/// several rows when different actors may ask for it from different statuses.
type Row = (
    EventKind,
    &'static [&'static str],
    &'static [(Option<Status>, Status, Timer)],
);

fn table() -> Vec<Row> {
    use Status::*;
    use Timer::*;
    const PARTICIPANTS: &[&str] = &["taxpayer", "agent"];
    const CLOSE: &[(Option<Status>, Status, Timer)] = &[
        (Some(Invited), Cancelled, Cancel),
        (Some(Active), Ended, Keep),
    ];
    vec![
        (EventKind::Invite, &["agent"], &[(None, Invited, Schedule)]),
        (
            EventKind::Accept,
            &["taxpayer"],
            &[(Some(Invited), Active, Cancel)],
        ),
        (
            EventKind::Decline,
            &["taxpayer"],
            &[(Some(Invited), Declined, Cancel)],
        ),
        (
            EventKind::Cancel,
            &["agent"],
            &[(Some(Invited), Cancelled, Cancel)],
        ),
        (
            EventKind::Expire,
            &["system"],
            &[(Some(Invited), Expired, Keep)],
        ),
        (EventKind::End, PARTICIPANTS, &[(Some(Active), Ended, Keep)]),
        (EventKind::End, &["system"], CLOSE),
        (EventKind::SessionEnded, &["system"], CLOSE),
    ]
}

fn effects(from: Option<Status>, to: Status, timer: Timer, now: DateTime<Utc>) -> Vec<Effect> {
    let mut e = match timer {
        Timer::Keep => vec![],
        Timer::Schedule => vec![Effect::ScheduleExpiry {
            at: now + DEFAULT_ANSWER_TIMEOUT,
        }],
        Timer::Cancel => vec![Effect::CancelExpiry],
    };
    e.push(Effect::Publish(ChannelChange::Call { from, to }));
    e
}

#[test]
fn every_status_event_and_actor_follows_the_table() {
    let policy = Policy::default();
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
                    .find(|(from, ..)| *from == status);
                let got = decide(&policy, &given(status), &actor, &kind.sample(), at(kind));
                let case = format!("{status:?} × {kind:?} × {name}");
                match (got, expected) {
                    (Ok(d), Some((_, to, timer))) => {
                        assert_eq!(d.to, *to, "{case}: wrong target");
                        assert_eq!(d.next.status, Some(*to), "{case}");
                        assert_eq!(
                            d.effects,
                            effects(status, *to, *timer, at(kind)),
                            "{case}: effects"
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
    assert_eq!(checked, 7 * 7 * 6);
}

#[test]
fn allowed_actions_match_decide() {
    let policy = Policy::default();
    for status in statuses() {
        for (name, actor) in actors() {
            for when in [now(), due()] {
                let allowed = allowed(&policy, &given(status), &actor, when);
                for kind in EventKind::iter() {
                    let ok = decide(&policy, &given(status), &actor, &kind.sample(), when).is_ok();
                    assert_eq!(allowed.contains(&kind), ok, "{status:?} {kind:?} {name}");
                }
            }
        }
    }
}

#[test]
fn each_side_sees_its_own_buttons() {
    use EventKind as K;
    let p = Policy::default();
    let none: Vec<K> = vec![];
    assert_eq!(allowed(&p, &given(None), &agent(), now()), vec![K::Invite]);
    assert_eq!(allowed(&p, &given(None), &taxpayer(), now()), none);
    let invited = given(Some(Status::Invited));
    assert_eq!(
        allowed(&p, &invited, &taxpayer(), now()),
        vec![K::Accept, K::Decline]
    );
    assert_eq!(allowed(&p, &invited, &agent(), now()), vec![K::Cancel]);
    let active = given(Some(Status::Active));
    assert_eq!(allowed(&p, &active, &taxpayer(), now()), vec![K::End]);
    assert_eq!(allowed(&p, &active, &agent(), now()), vec![K::End]);
}

#[test]
fn invite_schedules_the_expiry_after_the_answer_timeout() {
    // Given a chat with no call, and a policy of 45 s
    let policy = Policy {
        answer_timeout: Duration::seconds(45),
    };
    // When the agent invites to a video call
    let invite = Event::Invite {
        media: Media::Video,
    };
    let d = decide(&policy, &given(None), &agent(), &invite, invited_at()).unwrap();
    // Then the call waits, its expiry is scheduled, and the change is published
    assert_eq!(d.to, Status::Invited);
    assert_eq!(d.next.media, Some(Media::Video));
    assert_eq!(d.next.invited_at, Some(invited_at()));
    assert_eq!(
        d.next.answer_deadline(&policy),
        Some(invited_at() + Duration::seconds(45))
    );
    assert_eq!(
        d.effects,
        vec![
            Effect::ScheduleExpiry {
                at: invited_at() + Duration::seconds(45)
            },
            Effect::Publish(ChannelChange::Call {
                from: None,
                to: Status::Invited
            }),
        ]
    );
    assert_eq!(invite.note().as_deref(), Some("VIDEO"));
}

#[test]
fn the_default_answer_timeout_is_a_minute() {
    assert_eq!(DEFAULT_ANSWER_TIMEOUT, Duration::seconds(60));
    assert_eq!(Policy::default().answer_timeout, DEFAULT_ANSWER_TIMEOUT);
    assert_eq!(EXPIRE_JOB_KIND, "call.expire");
}

#[test]
fn an_unanswered_invitation_expires_only_when_due() {
    let policy = Policy::default();
    let sys = Actor::system();
    let invited = given(Some(Status::Invited));
    // Given the job ran a moment early
    let early = decide(
        &policy,
        &invited,
        &sys,
        &Event::Expire,
        due() - Duration::seconds(1),
    );
    assert_eq!(early.unwrap_err().code, RefusalCode::InvalidTransition);
    // When it runs on time
    let d = decide(&policy, &invited, &sys, &Event::Expire, due()).unwrap();
    // Then the call is EXPIRED and closed; the job itself needs no cancelling
    assert_eq!(d.to, Status::Expired);
    assert_eq!(d.next.ended_at, Some(due()));
    assert_eq!(
        d.effects,
        vec![Effect::Publish(ChannelChange::Call {
            from: Some(Status::Invited),
            to: Status::Expired
        })]
    );
    // An answered call does not expire.
    let answered = decide(
        &policy,
        &given(Some(Status::Active)),
        &sys,
        &Event::Expire,
        due(),
    );
    assert_eq!(answered.unwrap_err().code, RefusalCode::InvalidTransition);
}

#[test]
fn the_taxpayer_cannot_answer_after_the_timeout() {
    let policy = Policy::default();
    let invited = given(Some(Status::Invited));
    for ev in [Event::Accept, Event::Decline] {
        let r = decide(&policy, &invited, &taxpayer(), &ev, due()).unwrap_err();
        assert_eq!(r.code, RefusalCode::InvalidTransition);
        assert!(r.en.contains("expired"), "{r}");
    }
    assert!(allowed(&policy, &invited, &taxpayer(), due()).is_empty());
    // The agent may still withdraw it before the job runs.
    assert_eq!(
        allowed(&policy, &invited, &agent(), due()),
        vec![EventKind::Cancel]
    );
}

#[test]
fn answering_in_time_cancels_the_expiry() {
    let policy = Policy::default();
    let invited = given(Some(Status::Invited));
    let just_in_time = due() - Duration::seconds(1);
    let d = decide(&policy, &invited, &taxpayer(), &Event::Accept, just_in_time).unwrap();
    assert_eq!(d.to, Status::Active);
    assert_eq!(d.next.ended_at, None);
    assert_eq!(d.effects[0], Effect::CancelExpiry);
    let d = decide(&policy, &invited, &taxpayer(), &Event::Decline, now()).unwrap();
    assert_eq!(d.to, Status::Declined);
    assert_eq!(d.next.ended_at, Some(now()));
    assert_eq!(d.effects[0], Effect::CancelExpiry);
}

#[test]
fn invite_and_accept_need_an_active_chat() {
    let policy = Policy::default();
    let bot = Snapshot::new("tp1", None, false);
    // Nobody is the agent of a chat with the bot: staff are refused as strangers.
    assert_eq!(
        decide(
            &policy,
            &bot,
            &agent(),
            &Event::Invite {
                media: Media::Audio
            },
            now()
        )
        .unwrap_err()
        .code,
        RefusalCode::Forbidden
    );
    // A chat that just ended still names its agent, but is no longer ACTIVE.
    let mut ended = given(None);
    ended.session_active = false;
    let invite = Event::Invite {
        media: Media::Audio,
    };
    assert_eq!(
        decide(&policy, &ended, &agent(), &invite, now())
            .unwrap_err()
            .code,
        RefusalCode::InvalidTransition
    );
    let mut invited = given(Some(Status::Invited));
    invited.session_active = false;
    assert_eq!(
        decide(&policy, &invited, &taxpayer(), &Event::Accept, now())
            .unwrap_err()
            .code,
        RefusalCode::InvalidTransition
    );
}

#[test]
fn one_open_call_at_a_time() {
    let policy = Policy::default();
    let invite = Event::Invite {
        media: Media::Audio,
    };
    for open in [Status::Invited, Status::Active] {
        let r = decide(&policy, &given(Some(open)), &agent(), &invite, now()).unwrap_err();
        assert_eq!(r.code, RefusalCode::InvalidTransition);
        assert!(r.en.contains("already"), "{r}");
    }
}

#[test]
fn the_chat_ending_cancels_an_invitation_and_ends_a_call() {
    let policy = Policy::default();
    let sys = Actor::system();
    let d = decide(
        &policy,
        &given(Some(Status::Invited)),
        &sys,
        &Event::SessionEnded,
        now(),
    )
    .unwrap();
    assert_eq!(d.to, Status::Cancelled);
    assert_eq!(d.effects[0], Effect::CancelExpiry);
    let d = decide(
        &policy,
        &given(Some(Status::Active)),
        &sys,
        &Event::SessionEnded,
        now(),
    )
    .unwrap();
    assert_eq!(d.to, Status::Ended);
    assert_eq!(d.next.ended_at, Some(now()));
    assert_eq!(d.effects.len(), 1);
}

#[test]
fn statuses_and_media_are_stable_strings() {
    assert_eq!(Status::Expired.as_ref(), "EXPIRED");
    assert_eq!("INVITED".parse::<Status>().unwrap(), Status::Invited);
    assert_eq!("AUDIO".parse::<Media>().unwrap(), Media::Audio);
    assert_eq!(ChannelKind::Call.as_ref(), "CALL");
    assert_eq!(ChannelKind::RemoteAssist.as_ref(), "REMOTE_ASSIST");
    assert_eq!(EventKind::Expire.as_ref(), "EXPIRE");
}

// --- signalling ---

#[test]
fn participants_relay_negotiation_to_each_other_while_active() {
    let active = given(Some(Status::Active));
    for kind in [SignalKind::Offer, SignalKind::Answer, SignalKind::Ice] {
        assert_eq!(
            signal(&active, &agent(), kind).unwrap(),
            Relay { to: "tp1".into() }
        );
        assert_eq!(
            signal(&active, &taxpayer(), kind).unwrap(),
            Relay { to: "s1".into() }
        );
    }
}

#[test]
fn a_declined_or_expired_call_relays_nothing() {
    for status in [
        None,
        Some(Status::Invited),
        Some(Status::Declined),
        Some(Status::Expired),
        Some(Status::Cancelled),
        Some(Status::Ended),
    ] {
        for who in [taxpayer(), agent()] {
            for kind in SignalKind::iter() {
                assert!(
                    !may_signal(&given(status), &who, kind),
                    "{status:?} {kind:?}"
                );
            }
        }
    }
    let r = signal(
        &given(Some(Status::Declined)),
        &taxpayer(),
        SignalKind::Offer,
    )
    .unwrap_err();
    assert_eq!(r.code, RefusalCode::InvalidTransition);
}

#[test]
fn a_control_message_is_never_relayed() {
    for status in statuses() {
        for (name, actor) in actors() {
            let r = signal(&given(status), &actor, SignalKind::Control).unwrap_err();
            assert_eq!(r.code, RefusalCode::Forbidden, "{status:?} {name}");
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
