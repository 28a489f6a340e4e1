//! Applies the chat-session machine: one transaction per event (version-checked row,
//! history, system messages, timer jobs), then realtime events and routing after commit.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, DatabaseTransaction, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, TransactionTrait,
};
use taxdesk_workflow::booking::service::StagedBooking;
use taxdesk_workflow::error::{Error, Result};
use taxdesk_workflow::jobs::{self, NewJob};
use taxdesk_workflow::{Actor, Role, metrics};
use tracing::{Instrument, info_span};

use super::machine::{self, Decision, Effect, Event, EventKind, Snapshot, Status};
use crate::chat::{Chat, timer};
use crate::entities::{agent_presence, message, session, session_history};
use crate::hub::{AgentEvent, AgentEventKind, ChatEvent, ChatEventKind};
use crate::message::insert_message;

const WHAT: &str = "chat session";

pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

pub fn snapshot(s: &session::Model) -> Result<Snapshot> {
    Ok(Snapshot {
        status: Status::from_str(&s.status).map_err(|_| {
            Error::Database(sea_orm::DbErr::Custom(format!(
                "session {} has status {:?}",
                s.id, s.status
            )))
        })?,
        taxpayer_id: s.taxpayer_id.clone(),
        agent_id: s.agent_id.clone(),
        skill_group: s.skill_group.clone(),
        had_agent: s.had_agent,
        rated: s.rated_at.is_some(),
        queue_priority: s.queue_priority,
    })
}

/// Who may read a session: its taxpayer, and the bureau's staff.
pub(crate) fn visible(actor: &Actor, s: &session::Model) -> bool {
    actor.role != Role::Taxpayer || s.taxpayer_id == actor.id
}

/// Who takes part in it now (and so receives its events).
pub(crate) fn participants(s: &session::Model) -> Vec<String> {
    let mut v = vec![s.taxpayer_id.clone()];
    v.extend(s.agent_id.clone());
    v
}

fn is_unique_violation(e: &sea_orm::DbErr) -> bool {
    matches!(
        e.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

/// An event written in a transaction not yet committed, with what to announce after.
pub(crate) struct Staged {
    pub before: session::Model,
    pub after: session::Model,
    pub effects: Vec<Effect>,
    pub written: Vec<message::Model>,
    pub kind: EventKind,
    /// The booking this session's end completed.
    pub booking: Option<StagedBooking>,
}

/// What a transition left to do after its commit.
pub(crate) struct Applied {
    pub session: session::Model,
    pub before: session::Model,
    pub effects: Vec<Effect>,
}

impl Chat {
    /// The taxpayer's open session, or a new one with the virtual agent.
    pub async fn open(&self, actor: &Actor) -> Result<session::Model> {
        if actor.role != Role::Taxpayer {
            return Err(Error::Forbidden("only taxpayers open chat sessions".into()));
        }
        if let Some(open) = self.open_session_of(&actor.id).await? {
            return Ok(open);
        }
        let now = self.wf.now();
        let row = session::Model {
            id: new_id(),
            taxpayer_id: actor.id.clone(),
            status: Status::Bot.as_ref().into(),
            skill_group: self.default_group(),
            agent_id: None,
            had_agent: false,
            queue_priority: 0,
            queued_at: None,
            assigned_at: None,
            agent_replied_at: None,
            ended_at: None,
            ended_by: None,
            booking_id: None,
            first_question: None,
            rating_resolved: None,
            rating_satisfaction: None,
            rating_comment: None,
            rated_at: None,
            last_activity_at: now,
            open_key: Some(actor.id.clone()),
            last_seq: 0,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        let txn = self.wf.db().begin().await?;
        match session::Entity::insert(row.clone().into_active_model())
            .exec_without_returning(&txn)
            .await
        {
            Ok(_) => {}
            // Opened twice at once: the database keeps one; return that one.
            Err(e) if is_unique_violation(&e) => {
                drop(txn);
                return self
                    .open_session_of(&actor.id)
                    .await?
                    .ok_or_else(|| Error::Conflict {
                        what: WHAT,
                        id: actor.id.clone(),
                    });
            }
            Err(e) => return Err(e.into()),
        }
        record(&txn, &row, actor, "OPEN", None, None, now).await?;
        let greeting = insert_message(
            &txn,
            &row.id,
            "bot",
            "BOT",
            "TEXT",
            Some(self.config.bot.greeting_text()),
            None,
            None,
            now,
        )
        .await?;
        self.schedule_idle_check(&txn, &row.id, now).await?;
        txn.commit().await?;
        self.wf.jobs_written();
        metrics::transition("chat_session", "OPEN");
        tracing::info!(session.id = %row.id, taxpayer = %actor.id, "chat opened");
        let mut row = row;
        row.last_seq = greeting.seq;
        self.publish_message(&row, greeting);
        Ok(row)
    }

    pub(crate) fn default_group(&self) -> String {
        self.wf
            .config()
            .categories
            .last()
            .cloned()
            .unwrap_or_else(|| "其他".into())
    }

    async fn open_session_of(&self, taxpayer: &str) -> Result<Option<session::Model>> {
        Ok(session::Entity::find()
            .filter(session::Column::OpenKey.eq(taxpayer))
            .one(self.wf.db())
            .await?)
    }

    pub async fn session(&self, actor: &Actor, id: &str) -> Result<session::Model> {
        session::Entity::find_by_id(id)
            .one(self.wf.db())
            .await?
            .filter(|s| visible(actor, s))
            .ok_or_else(|| Error::not_found(WHAT, id))
    }

    pub async fn history(&self, id: &str) -> Result<Vec<session_history::Model>> {
        Ok(session_history::Entity::find()
            .filter(session_history::Column::SessionId.eq(id))
            .order_by_asc(session_history::Column::Seq)
            .all(self.wf.db())
            .await?)
    }

    pub fn allowed(&self, actor: &Actor, s: &session::Model) -> Vec<EventKind> {
        match snapshot(s) {
            Ok(snap) => machine::allowed(&snap, actor, self.wf.now()),
            Err(_) => vec![],
        }
    }

    /// One event: refused → nothing written; lost race → `Conflict`, nothing written.
    pub async fn apply(&self, actor: &Actor, id: &str, event: Event) -> Result<session::Model> {
        let applied = self.transition(actor, id, event).await?;
        self.after(&applied).await;
        Ok(applied.session)
    }

    /// `requestHuman`: the facts (hours, agents online) are read now and given to the machine.
    pub async fn request_human(
        &self,
        actor: &Actor,
        id: &str,
        skill_group: Option<&str>,
    ) -> Result<session::Model> {
        let group = self.skill_group(skill_group)?;
        // Routing batches of this instance wait while hand-overs are in flight.
        let _turn = self.router.intake.enter();
        let now = self.wf.now();
        let event = Event::RequestHuman {
            open_now: self.wf.config().calendar.is_open(Some(&group), now),
            agent_online: self.any_agent_online(&group).await?,
            skill_group: group,
        };
        // The learning loop: what the bot could not settle goes to staff review, written
        // with the hand-over.
        let applied = self
            .transition_then(actor, id, event, async |txn, staged: &Staged| {
                self.review_hand_over(txn, &staged.after.id).await;
                Ok(())
            })
            .await?;
        self.after(&applied).await;
        Ok(applied.session)
    }

    pub(crate) fn skill_group(&self, g: Option<&str>) -> Result<String> {
        match g.map(str::trim).filter(|g| !g.is_empty()) {
            None => Ok(self.default_group()),
            Some(g) if self.wf.config().categories.iter().any(|c| c == g) => Ok(g.to_string()),
            Some(g) => Err(Error::input(
                "skillGroup",
                format!("未知的业务类别「{g}」"),
                format!("unknown skill group {g:?}"),
            )),
        }
    }

    pub(crate) async fn transition(
        &self,
        actor: &Actor,
        id: &str,
        event: Event,
    ) -> Result<Applied> {
        self.transition_then(actor, id, event, async |_, _| Ok(()))
            .await
    }

    /// [`Self::transition`], with `also` written in the same transaction once the event is
    /// staged (it sees the staged rows; its error undoes the event).
    pub(crate) async fn transition_then(
        &self,
        actor: &Actor,
        id: &str,
        event: Event,
        also: impl AsyncFnOnce(&DatabaseTransaction, &Staged) -> Result<()>,
    ) -> Result<Applied> {
        let kind = event.kind();
        let span = info_span!("transition", machine = "chat_session", session.id = %id, event = kind.as_ref(), actor.id = %actor.id);
        async move {
            let now = self.wf.now();
            let txn = self.wf.db().begin().await?;
            let before = session::Entity::find_by_id(id)
                .one(&txn)
                .await?
                .filter(|s| visible(actor, s))
                .ok_or_else(|| Error::not_found(WHAT, id))?;
            let staged = self.stage(&txn, actor, before, event, now).await?;
            also(&txn, &staged).await?;
            txn.commit().await?;
            Ok(self.announce(staged))
        }
        .instrument(span)
        .await
    }

    /// One event on a session loaded in `txn` (the caller commits): the machine decides on
    /// the row as read, and the new row, its history, its effects' rows and the agents'
    /// chat counts are written, and the booking a closing session completes. Refused or lost
    /// race on the session: an error, and nothing of this event is written (the caller's
    /// other work in `txn` stands).
    pub(crate) async fn stage(
        &self,
        txn: &DatabaseTransaction,
        actor: &Actor,
        before: session::Model,
        event: Event,
        now: DateTime<Utc>,
    ) -> Result<Staged> {
        let id = before.id.clone();
        let kind = event.kind();
        // Capacity is re-read under the agent's row lock, in this transaction.
        let event = self.recheck_capacity(txn, actor, &before, event).await?;
        let snap = snapshot(&before)?;
        let Decision { next, effects } =
            machine::decide(&snap, actor, &event, now).inspect_err(|r| {
                tracing::info!(session.id = %id, code = r.code.as_ref(), "refused: {}", r.en);
            })?;
        let after = patched(&before, &snap, &next, &event, actor, now);
        // Every column but `last_seq`, which messages advance concurrently.
        let mut row = after.clone().into_active_model().reset_all();
        row.last_seq = ActiveValue::NotSet;
        let res = session::Entity::update_many()
            .set(row)
            .filter(session::Column::Id.eq(id.as_str()))
            .filter(session::Column::Version.eq(before.version))
            .exec(txn)
            .await?;
        if res.rows_affected != 1 {
            return Err(Error::Conflict { what: WHAT, id });
        }
        let note = note_of(&event);
        record(
            txn,
            &after,
            actor,
            kind.as_ref(),
            Some(snap.status),
            note,
            now,
        )
        .await
        .map_err(|e| match e {
            Error::Database(db) if is_unique_violation(&db) => Error::Conflict {
                what: WHAT,
                id: id.clone(),
            },
            e => e,
        })?;
        count_active_chats(txn, &before, &after).await?;
        let mut written: Vec<message::Model> = vec![];
        for e in &effects {
            match e {
                Effect::SystemMessage(text) => {
                    written.push(
                        insert_message(
                            txn,
                            &id,
                            "system",
                            "SYSTEM",
                            "SYSTEM",
                            Some(text.to_string()),
                            None,
                            None,
                            now,
                        )
                        .await?,
                    );
                }
                Effect::ScheduleQueueTimers => self.schedule_queue_timers(txn, &after, now).await?,
                Effect::ScheduleAnswerCheck => self.schedule_answer_check(txn, &after, now).await?,
                Effect::EndChannels => crate::channel_end::end_all(txn, &id, actor, now).await?,
                Effect::Route | Effect::TellAgent(_) => {}
            }
        }
        let booking = self.finish_booking(txn, &before, &after).await?;
        Ok(Staged {
            before,
            after,
            effects,
            written,
            kind,
            booking,
        })
    }

    /// A booked session that closes completes its booking in the same transaction, so the
    /// session's end and the booking's cannot part (a booking already over, or gone, is left
    /// as it is).
    async fn finish_booking(
        &self,
        txn: &DatabaseTransaction,
        before: &session::Model,
        after: &session::Model,
    ) -> Result<Option<StagedBooking>> {
        let open = |s: &session::Model| Status::from_str(&s.status).is_ok_and(Status::is_open);
        let Some(booking) = after.booking_id.as_deref() else {
            return Ok(None);
        };
        if !open(before) || open(after) {
            return Ok(None);
        }
        let finish = taxdesk_workflow::booking::machine::Event::Finish;
        match self
            .wf
            .bookings()
            .stage(txn, &Actor::system(), booking, &finish)
            .await
        {
            Ok(staged) => Ok(Some(staged)),
            Err(Error::Refused(_) | Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// After the commit of a staged event: metrics, the log line and the realtime events.
    pub(crate) fn announce(&self, staged: Staged) -> Applied {
        let Staged {
            before,
            after,
            effects,
            written,
            kind,
            booking,
        } = staged;
        if let Some(b) = booking {
            let (b, _) = self.wf.bookings().announce(b);
            tracing::info!(booking.id = %b.id, session.id = %after.id, "booked session ended: booking completed");
        }
        self.wf.jobs_written();
        metrics::transition("chat_session", kind.as_ref());
        tracing::info!(session.id = %after.id, event = kind.as_ref(), from = %before.status, to = %after.status, agent = ?after.agent_id, "chat session transition");
        let mut session = after;
        if let Some(last) = written.last() {
            session.last_seq = last.seq;
        }
        for m in written {
            self.publish_message(&session, m);
        }
        self.publish_status(&before, &session);
        for e in &effects {
            if let Effect::TellAgent(agent) = e {
                self.hub.publish_agent(AgentEvent {
                    agent_id: Some(agent.clone()),
                    kind: AgentEventKind::Assigned {
                        session_id: session.id.clone(),
                    },
                });
            }
        }
        if before.agent_id.is_some() && before.agent_id != session.agent_id {
            self.hub.publish_agent(AgentEvent {
                agent_id: before.agent_id.clone(),
                kind: AgentEventKind::Released {
                    session_id: session.id.clone(),
                },
            });
        }
        Applied {
            session,
            before,
            effects,
        }
    }

    /// After commit: routing, and the places of every queue it touched.
    pub(crate) async fn after(&self, a: &Applied) {
        // The group's router assigns (capacity freed, a session queued) and pushes the
        // queue's new places; this request does not wait for it.
        let queued = |s: &session::Model| s.status == Status::Queued.as_ref();
        if a.effects.contains(&Effect::Route) || queued(&a.before) || queued(&a.session) {
            self.wake_router(&a.before.skill_group);
            if a.session.skill_group != a.before.skill_group {
                self.wake_router(&a.session.skill_group);
            }
        }
    }

    fn publish_status(&self, before: &session::Model, after: &session::Model) {
        let mut audience = participants(after);
        if let Some(a) = &before.agent_id
            && !audience.contains(a)
        {
            audience.push(a.clone());
        }
        self.hub.publish(ChatEvent {
            session_id: after.id.clone(),
            audience,
            kind: ChatEventKind::Status,
        });
    }

    pub(crate) fn publish_message(&self, s: &session::Model, m: message::Model) {
        self.hub.publish(ChatEvent {
            session_id: s.id.clone(),
            audience: participants(s),
            kind: ChatEventKind::Message(m),
        });
    }

    async fn schedule_queue_timers(
        &self,
        txn: &DatabaseTransaction,
        s: &session::Model,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let key = |kind: &str| format!("{kind}:{}:{}", s.id, s.version);
        let payload = serde_json::json!({ "sessionId": s.id, "version": s.version });
        jobs::schedule(
            txn,
            NewJob::new(
                timer::QUEUE_OFFER,
                key(timer::QUEUE_OFFER),
                now + self.config.queue_offer_after,
                payload.clone(),
            ),
            now,
        )
        .await?;
        jobs::schedule(
            txn,
            NewJob::new(
                timer::QUEUE_TIMEOUT,
                key(timer::QUEUE_TIMEOUT),
                now + self.config.queue_timeout,
                payload,
            ),
            now,
        )
        .await?;
        Ok(())
    }

    async fn schedule_answer_check(
        &self,
        txn: &DatabaseTransaction,
        s: &session::Model,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let payload = serde_json::json!({ "sessionId": s.id, "version": s.version });
        let job = NewJob::new(
            timer::ANSWER_CHECK,
            format!("{}:{}:{}", timer::ANSWER_CHECK, s.id, s.version),
            now + self.config.answer_timeout,
            payload,
        );
        jobs::schedule(txn, job, now).await?;
        Ok(())
    }

    pub(crate) async fn schedule_idle_check(
        &self,
        txn: &DatabaseTransaction,
        id: &str,
        from: DateTime<Utc>,
    ) -> Result<()> {
        let at = from + self.config.idle_timeout;
        let job = NewJob::new(
            timer::IDLE_CHECK,
            format!("{}:{id}:{}", timer::IDLE_CHECK, at.timestamp_millis()),
            at,
            serde_json::json!({ "sessionId": id }),
        );
        jobs::schedule(txn, job, from).await?;
        Ok(())
    }
}

/// Keeps `agent_presence.active_chats` in step: the agent who lost an ACTIVE chat has one
/// fewer, the one who got it one more (in the transition's transaction).
async fn count_active_chats(
    txn: &DatabaseTransaction,
    before: &session::Model,
    after: &session::Model,
) -> Result<()> {
    let active = Status::Active.as_ref();
    let had = (before.status == active)
        .then_some(before.agent_id.as_deref())
        .flatten();
    let has = (after.status == active)
        .then_some(after.agent_id.as_deref())
        .flatten();
    if had == has {
        return Ok(());
    }
    for (agent, step) in [(had, -1), (has, 1)] {
        if let Some(agent) = agent {
            agent_presence::Entity::update_many()
                .col_expr(
                    agent_presence::Column::ActiveChats,
                    Expr::col(agent_presence::Column::ActiveChats).add(step),
                )
                .filter(agent_presence::Column::UserId.eq(agent))
                .exec(txn)
                .await?;
        }
    }
    Ok(())
}

/// The row after a decision: the machine's fields, plus the times and marks the event sets.
fn patched(
    before: &session::Model,
    snap: &Snapshot,
    next: &Snapshot,
    event: &Event,
    actor: &Actor,
    now: DateTime<Utc>,
) -> session::Model {
    let mut s = before.clone();
    s.status = next.status.as_ref().into();
    s.agent_id = next.agent_id.clone();
    s.skill_group = next.skill_group.clone();
    s.had_agent = next.had_agent;
    s.queue_priority = next.queue_priority;
    s.open_key = next.status.is_open().then(|| before.taxpayer_id.clone());
    if next.status == Status::Queued && snap.status != Status::Queued {
        s.queued_at = Some(now);
    }
    if next.agent_id.is_some() && next.agent_id != snap.agent_id {
        s.assigned_at = Some(now);
        s.agent_replied_at = None;
    }
    if !next.status.is_open() && snap.status.is_open() {
        s.ended_at = Some(now);
        s.ended_by = Some(actor.id.clone());
    }
    if let Event::Rate {
        resolved,
        satisfaction,
        comment,
    } = event
    {
        s.rating_resolved = Some(*resolved);
        s.rating_satisfaction = Some(*satisfaction as i16);
        s.rating_comment = comment.clone();
        s.rated_at = Some(now);
    }
    s.last_activity_at = now;
    s.version = before.version + 1;
    s.updated_at = now;
    s
}

fn note_of(e: &Event) -> Option<String> {
    match e {
        Event::RequestHuman { skill_group, .. } => Some(skill_group.clone()),
        Event::Assign { agent_id, .. } => Some(agent_id.clone()),
        Event::BookingStarts { agent_id, .. } => agent_id.clone(),
        Event::Transfer { to, .. } => Some(match to {
            machine::TransferTarget::Agent(a) => format!("agent {a}"),
            machine::TransferTarget::Group(g) => format!("group {g}"),
        }),
        Event::Rate {
            resolved,
            satisfaction,
            comment,
        } => Some(format!(
            "{} {satisfaction}/5{}",
            if *resolved { "resolved" } else { "unresolved" },
            comment
                .as_ref()
                .map(|c| format!(" {c}"))
                .unwrap_or_default()
        )),
        _ => None,
    }
}

async fn record(
    txn: &DatabaseTransaction,
    s: &session::Model,
    actor: &Actor,
    event: &str,
    from: Option<Status>,
    note: Option<String>,
    now: DateTime<Utc>,
) -> Result<()> {
    let row = session_history::Model {
        id: new_id(),
        session_id: s.id.clone(),
        seq: s.version,
        event: event.to_string(),
        from_status: from.map(|f| f.as_ref().to_string()),
        to_status: s.status.clone(),
        actor_id: actor.id.clone(),
        actor_role: actor.role.as_ref().to_string(),
        note,
        at: now,
    };
    session_history::Entity::insert(row.into_active_model())
        .exec_without_returning(txn)
        .await?;
    Ok(())
}

impl taxdesk_workflow::page::Keyed for session::Model {
    fn key(&self) -> &str {
        &self.id
    }
}

impl Chat {
    /// 我的会话: a taxpayer's sessions, or the sessions a staff member served; newest first.
    pub async fn my_chats(
        &self,
        actor: &Actor,
        req: &taxdesk_workflow::page::PageRequest,
    ) -> Result<taxdesk_workflow::page::Page<session::Model>> {
        let q = session::Entity::find();
        let q = if actor.role == Role::Taxpayer {
            q.filter(session::Column::TaxpayerId.eq(actor.id.as_str()))
        } else {
            q.filter(session::Column::AgentId.eq(actor.id.as_str()))
        };
        taxdesk_workflow::page::newest_first(self.wf.db(), q, session::Column::Id, req).await
    }

    /// A staff member's sessions in progress.
    pub async fn active_chats_of(&self, agent: &str) -> Result<Vec<session::Model>> {
        Ok(session::Entity::find()
            .filter(session::Column::AgentId.eq(agent))
            .filter(session::Column::Status.eq(Status::Active.as_ref()))
            .order_by_asc(session::Column::AssignedAt)
            .all(self.wf.db())
            .await?)
    }
}

impl Chat {
    /// 我的待办 of chat: sessions with an agent that ended in the last week, not yet rated.
    pub async fn rate_todos(&self, taxpayer: &str) -> Result<Vec<taxdesk_workflow::todo::Todo>> {
        let since = self.wf.now() - chrono::Duration::days(7);
        let rows = session::Entity::find()
            .filter(session::Column::TaxpayerId.eq(taxpayer))
            .filter(session::Column::Status.eq(Status::Ended.as_ref()))
            .filter(session::Column::HadAgent.eq(true))
            .filter(session::Column::RatedAt.is_null())
            .filter(session::Column::EndedAt.gt(since))
            .order_by_desc(session::Column::EndedAt)
            .all(self.wf.db())
            .await?;
        Ok(rows
            .into_iter()
            .map(|s| taxdesk_workflow::todo::Todo {
                kind: taxdesk_workflow::todo::TodoKind::RateChat,
                title: "请评价本次人工服务".into(),
                due_at: s.ended_at.map(|e| e + chrono::Duration::days(7)),
                target_id: s.id,
            })
            .collect())
    }
}
