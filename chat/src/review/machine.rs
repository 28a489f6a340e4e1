//! The review of one asked question as one pure function: `decide(state, actor, event)`.
//!
//! | from | event (actor) | to | effect |
//! |---|---|---|---|
//! | — | recorded (system: not answered, voted 无用, or handed over) | OPEN | |
//! | OPEN | link(faq) (staff/admin) | LINKED | the text becomes a phrasing of the FAQ |
//! | OPEN | dismiss (staff/admin) | DISMISSED | |
//!
//! Taxpayers and the system are `FORBIDDEN` whatever the state (the right is checked before
//! the status); anything else not in the table is `INVALID_TRANSITION`: a dismissed question
//! is not linked, a linked one is not linked again or dismissed. A question asked again after
//! its review opens a new row (see the service), so a closed review stays as it was decided.

use strum::{AsRefStr, EnumDiscriminants, EnumIter, EnumString, IntoEnumIterator};
use taxdesk_workflow::{Actor, Refusal};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, AsRefStr, EnumString, EnumIter)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Open,
    Linked,
    Dismissed,
}

/// Why a question is in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, AsRefStr, EnumString, EnumIter)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum Reason {
    /// The virtual agent did not answer it (related questions at most).
    Unanswered,
    /// It was answered and the taxpayer voted the answer 无用.
    Useless,
    /// The chat it was asked in went on to a human agent.
    HandedOver,
}

#[derive(Debug, Clone, PartialEq, Eq, EnumDiscriminants)]
#[strum_discriminants(name(EventKind))]
#[strum_discriminants(derive(Hash, AsRefStr, EnumIter, EnumString))]
#[strum_discriminants(strum(serialize_all = "SCREAMING_SNAKE_CASE"))]
pub enum Event {
    /// Make the question a phrasing of this FAQ.
    Link {
        faq_id: String,
    },
    Dismiss,
}

impl Event {
    pub fn kind(&self) -> EventKind {
        EventKind::from(self)
    }

    /// The text kept in the history row.
    pub fn note(&self) -> Option<String> {
        match self {
            Event::Link { faq_id } => Some(faq_id.clone()),
            Event::Dismiss => None,
        }
    }
}

impl EventKind {
    fn sample(self) -> Event {
        match self {
            EventKind::Link => Event::Link {
                faq_id: String::new(),
            },
            EventKind::Dismiss => Event::Dismiss,
        }
    }
}

/// What the machine needs to know of a question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub status: Status,
    pub linked_faq_id: Option<String>,
}

/// Only the bureau reviews; the status decides the rest.
pub fn decide(state: &Snapshot, actor: &Actor, event: &Event) -> Result<Snapshot, Refusal> {
    if !actor.role.is_bureau() {
        return Err(Refusal::forbidden(
            "只有工作人员可以处理待审问题",
            "only staff review asked questions",
        ));
    }
    match (state.status, event) {
        (Status::Open, Event::Link { faq_id }) => Ok(Snapshot {
            status: Status::Linked,
            linked_faq_id: Some(faq_id.clone()),
        }),
        (Status::Open, Event::Dismiss) => Ok(Snapshot {
            status: Status::Dismissed,
            linked_faq_id: None,
        }),
        (status, event) => Err(Refusal::invalid_transition(
            status.as_ref(),
            event.kind().as_ref(),
        )),
    }
}

/// What `actor` may do with the question now (drives `allowedActions`).
pub fn allowed(state: &Snapshot, actor: &Actor) -> Vec<EventKind> {
    EventKind::iter()
        .filter(|k| decide(state, actor, &k.sample()).is_ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use taxdesk_workflow::{RefusalCode, Role};

    fn given(status: Status) -> Snapshot {
        Snapshot {
            status,
            linked_faq_id: None,
        }
    }

    /// Every (status, event, actor) against the table.
    #[test]
    fn every_status_and_event_against_the_table() {
        let actors = [
            ("taxpayer", Actor::new("tp1", Role::Taxpayer)),
            ("staff", Actor::new("s1", Role::Staff)),
            ("admin", Actor::new("a1", Role::Admin)),
            ("system", Actor::system()),
        ];
        for status in Status::iter() {
            for kind in EventKind::iter() {
                for (who, actor) in &actors {
                    let got = decide(&given(status), actor, &kind.sample());
                    let expected = match (*who, status, kind) {
                        ("taxpayer" | "system", _, _) => Err(RefusalCode::Forbidden),
                        (_, Status::Open, EventKind::Link) => Ok(Status::Linked),
                        (_, Status::Open, EventKind::Dismiss) => Ok(Status::Dismissed),
                        _ => Err(RefusalCode::InvalidTransition),
                    };
                    assert_eq!(
                        got.map(|s| s.status).map_err(|r| r.code),
                        expected,
                        "{who} {status:?} {kind:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn linking_names_the_faq_and_only_open_questions_offer_actions() {
        let staff = Actor::new("s1", Role::Staff);
        let next = decide(
            &given(Status::Open),
            &staff,
            &Event::Link {
                faq_id: "kb-0001".into(),
            },
        )
        .unwrap();
        assert_eq!(next.linked_faq_id.as_deref(), Some("kb-0001"));
        assert_eq!(
            allowed(&given(Status::Open), &staff),
            [EventKind::Link, EventKind::Dismiss]
        );
        assert!(allowed(&given(Status::Dismissed), &staff).is_empty());
        assert!(allowed(&given(Status::Linked), &staff).is_empty());
        let tp = Actor::new("tp1", Role::Taxpayer);
        assert!(allowed(&given(Status::Open), &tp).is_empty());
    }
}
