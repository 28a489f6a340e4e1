//! Applies the booking machine: one transaction per event (version-checked row, history,
//! the place in the slot, notifications, emails and timer jobs).

use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, Statement, TransactionTrait,
};
use tracing::{Instrument, info_span};

use super::machine::{
    self, Decision, Effect, Event, EventKind, NoticeKind, Origin, Recipient, Snapshot, Status,
};
use crate::actor::{Actor, Role};
use crate::entities::{booking, booking_history, notification as notification_row, user};
use crate::error::{Error, Result, check};
use crate::jobs::{self, NewJob};
use crate::metrics;
use crate::notification::{self, Email, Notice};
use crate::page::{self, Keyed, Page, PageRequest};
use crate::refusal::{Refusal, RefusalCode};
use crate::users::expect_role;
use crate::workflow::{Workflow, new_id};

const WHAT: &str = "booking";

/// Job kinds of bookings.
pub mod kind {
    pub const REMINDER: &str = "booking.reminder";
    pub const START: &str = "booking.start";
    pub const EXPIRE: &str = "booking.expire";
    pub const NO_SHOW: &str = "booking.no_show";
}

#[derive(Debug, Clone)]
pub struct BookingPolicy {
    /// Reminders this long before the start (in-app and email).
    pub reminders: Vec<Duration>,
    /// How long before the start a taxpayer may still cancel or move (unless the service
    /// type says otherwise).
    pub cancel_cutoff: Duration,
    /// After the start, how long to wait for the taxpayer before NO_SHOW.
    pub no_show_grace: Duration,
}

impl Default for BookingPolicy {
    fn default() -> Self {
        BookingPolicy {
            reminders: vec![Duration::hours(24), Duration::minutes(15)],
            cancel_cutoff: Duration::hours(1),
            no_show_grace: Duration::minutes(10),
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewBooking {
    pub service_type: String,
    pub method: String,
    pub start: DateTime<Utc>,
    pub note: Option<String>,
    /// For invitations: the invited taxpayer's user id.
    pub taxpayer_id: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct BookingFilter {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub agent_id: Option<String>,
    pub status: Option<Status>,
}

/// What the chat layer must do after a booking starts.
#[derive(Debug, Clone)]
pub struct OpenBookedSession {
    pub booking_id: String,
    pub taxpayer_id: String,
    pub agent_id: Option<String>,
    pub skill_group: String,
}

/// A booking event written in a transaction, to announce after its commit.
#[derive(Debug)]
pub struct StagedBooking {
    after: booking::Model,
    written: Vec<notification_row::Model>,
    kind: EventKind,
    open: bool,
}

impl Keyed for booking::Model {
    fn key(&self) -> &str {
        &self.id
    }
}

pub struct Bookings<'a> {
    wf: &'a Workflow,
}

impl Workflow {
    pub fn bookings(&self) -> Bookings<'_> {
        Bookings { wf: self }
    }
}

fn visible(actor: &Actor, b: &booking::Model) -> bool {
    actor.role != Role::Taxpayer || b.taxpayer_id == actor.id
}

fn corrupt(b: &booking::Model) -> Error {
    Error::Database(sea_orm::DbErr::Custom(format!(
        "booking {} has status {:?}",
        b.id, b.status
    )))
}

impl Bookings<'_> {
    fn cutoff(&self, service_type: &str) -> Duration {
        self.wf
            .config
            .service_type(service_type)
            .and_then(|st| st.cancel_cutoff)
            .unwrap_or(self.wf.config.booking.cancel_cutoff)
    }

    pub fn snapshot(&self, b: &booking::Model) -> Result<Snapshot> {
        Ok(Snapshot {
            status: Status::from_str(&b.status).map_err(|_| corrupt(b))?,
            taxpayer_id: b.taxpayer_id.clone(),
            agent_id: b.agent_id.clone(),
            inviter_id: b.inviter_id.clone(),
            start: b.start_at,
            end: b.end_at,
            cancel_cutoff: self.cutoff(&b.service_type),
        })
    }

    /// Checks the type and method, and the start against the calendar; returns the end.
    fn check_new(
        &self,
        input: &NewBooking,
        invitation: bool,
        now: DateTime<Utc>,
    ) -> Result<(String, DateTime<Utc>)> {
        let st = self
            .wf
            .config
            .service_type(&input.service_type)
            .ok_or_else(|| {
                Error::input(
                    "serviceType",
                    format!("未知的服务类型「{}」", input.service_type),
                    format!("unknown service type {:?}", input.service_type),
                )
            })?;
        if !st.methods.iter().any(|m| m.as_ref() == input.method) {
            return Err(Error::input(
                "method",
                format!("「{}」不提供 {} 方式", st.name, input.method),
                format!("{} is not offered for {}", input.method, st.code),
            ));
        }
        let cal = &self.wf.config.calendar;
        let end = if invitation {
            super::slots::check_invite_start(st, cal, input.start, now)?
        } else {
            super::slots::check_start(st, cal, input.start, now)?
        };
        Ok((st.skill_group.clone(), end))
    }

    /// `bookAppointment`: a taxpayer takes a place in a slot.
    pub async fn book(&self, actor: &Actor, input: NewBooking) -> Result<booking::Model> {
        machine::decide_new(actor, Origin::Mine)?;
        let note = check::optional_text("note", input.note.as_deref(), 500)?;
        let now = self.wf.now();
        let (_, end) = self.check_new(&input, false, now)?;
        let capacity = self
            .wf
            .config
            .service_type(&input.service_type)
            .map(|s| s.capacity)
            .unwrap_or(0);
        let txn = self.wf.db.begin().await?;
        take_place(&txn, &input.service_type, input.start, capacity).await?;
        let b = booking::Model {
            id: new_id(),
            taxpayer_id: actor.id.clone(),
            origin: Origin::Mine.as_ref().into(),
            service_type: input.service_type.clone(),
            method: input.method.clone(),
            start_at: input.start,
            end_at: end,
            status: Status::Confirmed.as_ref().into(),
            agent_id: None,
            inviter_id: None,
            note,
            reason: None,
            holds_place: true,
            chat_session_id: None,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        booking::Entity::insert(b.clone().into_active_model())
            .exec_without_returning(&txn)
            .await?;
        record(&txn, &b, actor, "BOOK", None, None, now).await?;
        let effects = [
            Effect::ScheduleReminders,
            Effect::Notify {
                to: Recipient::Taxpayer,
                kind: NoticeKind::BookingConfirmed,
            },
        ];
        let written = self.carry_out(&txn, &b, actor, &effects, now).await?;
        txn.commit().await?;
        self.after_commit(written, "BOOK", &b);
        Ok(b)
    }

    /// `inviteTaxpayer`: staff invite a taxpayer (named by user id) at any start in hours.
    pub async fn invite(&self, actor: &Actor, input: NewBooking) -> Result<booking::Model> {
        machine::decide_new(actor, Origin::BureauInvited)?;
        let taxpayer = check::text(
            "taxpayerId",
            input.taxpayer_id.as_deref().unwrap_or(""),
            1,
            64,
        )?;
        let note = check::optional_text("note", input.note.as_deref(), 500)?;
        let now = self.wf.now();
        let (_, end) = self.check_new(&input, true, now)?;
        let txn = self.wf.db.begin().await?;
        crate::users::ensure_taxpayer(&txn, &taxpayer, now).await?;
        let b = booking::Model {
            id: new_id(),
            taxpayer_id: taxpayer,
            origin: Origin::BureauInvited.as_ref().into(),
            service_type: input.service_type.clone(),
            method: input.method.clone(),
            start_at: input.start,
            end_at: end,
            status: Status::Invited.as_ref().into(),
            agent_id: Some(actor.id.clone()),
            inviter_id: Some(actor.id.clone()),
            note,
            reason: None,
            holds_place: false,
            chat_session_id: None,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        booking::Entity::insert(b.clone().into_active_model())
            .exec_without_returning(&txn)
            .await?;
        record(&txn, &b, actor, "INVITE", None, b.note.clone(), now).await?;
        let effects = [
            Effect::ScheduleExpiry,
            Effect::Notify {
                to: Recipient::Taxpayer,
                kind: NoticeKind::BookingInvited,
            },
            Effect::Email {
                to: Recipient::Taxpayer,
                kind: NoticeKind::BookingInvited,
            },
        ];
        let written = self.carry_out(&txn, &b, actor, &effects, now).await?;
        txn.commit().await?;
        self.after_commit(written, "INVITE", &b);
        Ok(b)
    }

    /// `rescheduleBooking`: the same checks as a new booking, and the cut-off of a cancel.
    pub async fn reschedule(
        &self,
        actor: &Actor,
        id: &str,
        start: DateTime<Utc>,
    ) -> Result<(booking::Model, Option<OpenBookedSession>)> {
        let b = self.get(actor, id).await?;
        let input = NewBooking {
            service_type: b.service_type.clone(),
            method: b.method.clone(),
            start,
            note: None,
            taxpayer_id: None,
        };
        let invitation = b.origin == Origin::BureauInvited.as_ref() || actor.role.is_bureau();
        let (_, end) = self.check_new(&input, invitation, self.wf.now())?;
        self.apply(actor, id, Event::Reschedule { start, end })
            .await
    }

    /// One event: refused → nothing written; lost race → `Conflict`, nothing written.
    pub async fn apply(
        &self,
        actor: &Actor,
        id: &str,
        event: Event,
    ) -> Result<(booking::Model, Option<OpenBookedSession>)> {
        let span = info_span!("transition", machine = "booking", booking.id = %id, event = event.kind().as_ref(), actor.id = %actor.id);
        async move {
            if let Event::Reject { reason } | Event::Cancel { reason } = &event {
                check::optional_text("reason", reason.as_deref(), 500)?;
            }
            let txn = self.wf.db.begin().await?;
            let staged = self.stage(&txn, actor, id, &event).await?;
            txn.commit().await?;
            Ok(self.announce(staged))
        }
        .instrument(span)
        .await
    }

    /// One event inside the caller's transaction (checked input): the row, its history and
    /// every effect written; [`announce`](Self::announce) after the commit. Refused or not
    /// found → nothing written.
    pub async fn stage(
        &self,
        txn: &DatabaseTransaction,
        actor: &Actor,
        id: &str,
        event: &Event,
    ) -> Result<StagedBooking> {
        let kind = event.kind();
        let now = self.wf.now();
        let before = booking::Entity::find_by_id(id)
            .one(txn)
            .await?
            .filter(|b| visible(actor, b))
            .ok_or_else(|| Error::not_found(WHAT, id))?;
        let snap = self.snapshot(&before)?;
        let Decision { next, effects } =
            machine::decide(&snap, actor, event, now).inspect_err(|r| {
                tracing::info!(booking.id = %id, code = r.code.as_ref(), "refused: {}", r.en);
            })?;
        let mut after = before.clone();
        after.status = next.status.as_ref().into();
        after.start_at = next.start;
        after.end_at = next.end;
        after.version = before.version + 1;
        after.updated_at = now;
        if let Event::Reject { reason } | Event::Cancel { reason } = event {
            after.reason = reason.clone();
        }
        if effects.contains(&Effect::ReleasePlace) {
            after.holds_place = false;
        }
        if let Event::Reschedule { start, .. } = event
            && before.holds_place
        {
            let capacity = self
                .wf
                .config
                .service_type(&before.service_type)
                .map(|s| s.capacity)
                .unwrap_or(0);
            release_place(txn, &before.service_type, before.start_at).await?;
            take_place(txn, &before.service_type, *start, capacity).await?;
        }
        let res = booking::Entity::update_many()
            .set(after.clone().into_active_model().reset_all())
            .filter(booking::Column::Id.eq(id))
            .filter(booking::Column::Version.eq(before.version))
            .exec(txn)
            .await?;
        if res.rows_affected != 1 {
            return Err(Error::Conflict {
                what: WHAT,
                id: id.to_string(),
            });
        }
        record(
            txn,
            &after,
            actor,
            kind.as_ref(),
            Some(snap.status),
            event.note(),
            now,
        )
        .await?;
        if effects.contains(&Effect::ReleasePlace) && before.holds_place {
            release_place(txn, &before.service_type, before.start_at).await?;
        }
        let written = self.carry_out(txn, &after, actor, &effects, now).await?;
        Ok(StagedBooking {
            open: effects.contains(&Effect::OpenBookedSession),
            after,
            written,
            kind,
        })
    }

    /// After the commit of a staged event: metrics, the log line, the notifications pushed,
    /// and what the chat layer must open (a start).
    pub fn announce(&self, staged: StagedBooking) -> (booking::Model, Option<OpenBookedSession>) {
        let StagedBooking {
            after,
            written,
            kind,
            open,
        } = staged;
        self.after_commit(written, kind.as_ref(), &after);
        let open = open.then(|| self.session_to_open(&after));
        (after, open)
    }

    fn after_commit(&self, written: Vec<notification_row::Model>, event: &str, b: &booking::Model) {
        metrics::transition("booking", event);
        self.wf.jobs_written();
        tracing::info!(booking.id = %b.id, status = %b.status, event, "booking transition");
        self.wf.publish(written);
    }

    /// Writes every effect of a decision as rows in the transaction.
    async fn carry_out(
        &self,
        txn: &DatabaseTransaction,
        b: &booking::Model,
        actor: &Actor,
        effects: &[Effect],
        now: DateTime<Utc>,
    ) -> Result<Vec<notification_row::Model>> {
        let mut written = vec![];
        let key = |what: &str| format!("booking:{}:{}:{}", b.id, what, b.start_at.timestamp());
        for e in effects {
            match e {
                Effect::ScheduleReminders => {
                    for offset in &self.wf.config.booking.reminders {
                        let at = b.start_at - *offset;
                        if at > now {
                            let job = NewJob::new(
                                kind::REMINDER,
                                key(&format!("reminder{}", offset.num_seconds())),
                                at,
                                serde_json::json!({ "bookingId": b.id, "start": b.start_at.to_rfc3339() }),
                            );
                            jobs::schedule(txn, job, now).await?;
                        }
                    }
                    let start = NewJob::new(
                        kind::START,
                        key("start"),
                        b.start_at,
                        serde_json::json!({ "bookingId": b.id }),
                    );
                    jobs::schedule(txn, start, now).await?;
                }
                Effect::ScheduleExpiry => {
                    let job = NewJob::new(
                        kind::EXPIRE,
                        key("expire"),
                        b.start_at,
                        serde_json::json!({ "bookingId": b.id }),
                    );
                    jobs::schedule(txn, job, now).await?;
                }
                Effect::ScheduleNoShowCheck => {
                    let at = now.max(b.start_at) + self.wf.config.booking.no_show_grace;
                    let job = NewJob::new(
                        kind::NO_SHOW,
                        key("no_show"),
                        at,
                        serde_json::json!({ "bookingId": b.id }),
                    );
                    jobs::schedule(txn, job, now).await?;
                }
                Effect::CancelJobs => {
                    jobs::cancel(txn, &format!("booking:{}:", b.id), now).await?;
                }
                Effect::Notify { to, kind } | Effect::Email { to, kind } => {
                    let email = matches!(e, Effect::Email { .. });
                    for u in self.recipients(txn, b, *to).await? {
                        if u.id == actor.id {
                            continue;
                        }
                        let text = super::notices::render(*kind, b, &self.wf.config);
                        if email {
                            if let Some(addr) = u.email.clone() {
                                let mail = Email {
                                    user_id: Some(u.id.clone()),
                                    to_address: addr,
                                    kind: kind.as_ref().into(),
                                    subject: text.title.clone(),
                                    body_text: text.body.clone(),
                                    body_html: super::notices::html(&text),
                                };
                                notification::enqueue_email(txn, mail, now).await?;
                            }
                        } else {
                            let n = Notice {
                                user_id: u.id.clone(),
                                kind: kind.as_ref().into(),
                                title: text.title,
                                body: text.body,
                                target_kind: Some("BOOKING".into()),
                                target_id: Some(b.id.clone()),
                            };
                            written.push(notification::write(txn, n, now).await?);
                        }
                    }
                }
                Effect::ReleasePlace | Effect::OpenBookedSession => {}
            }
        }
        Ok(written)
    }

    async fn recipients(
        &self,
        txn: &DatabaseTransaction,
        b: &booking::Model,
        to: Recipient,
    ) -> Result<Vec<user::Model>> {
        let one = |id: &str| user::Entity::find_by_id(id.to_string()).all(txn);
        Ok(match to {
            Recipient::Taxpayer => one(&b.taxpayer_id).await?,
            Recipient::Inviter => match &b.inviter_id {
                Some(i) => one(i).await?,
                None => vec![],
            },
            Recipient::Host => match &b.agent_id {
                Some(a) => one(a).await?,
                None => {
                    user::Entity::find()
                        .filter(user::Column::Role.eq(Role::Admin.as_ref()))
                        .all(txn)
                        .await?
                }
            },
        })
    }

    /// The reminder job: in-app and email to the taxpayer (and the host), if still confirmed
    /// for that start.
    pub async fn remind(&self, id: &str, start: &str) -> Result<()> {
        let Some(b) = booking::Entity::find_by_id(id).one(&self.wf.db).await? else {
            return Ok(());
        };
        if b.status != Status::Confirmed.as_ref() || b.start_at.to_rfc3339() != start {
            return Ok(());
        }
        let now = self.wf.now();
        let txn = self.wf.db.begin().await?;
        let mut written = vec![];
        for to in [Recipient::Taxpayer, Recipient::Host] {
            for u in self.recipients(&txn, &b, to).await? {
                let text = super::notices::reminder(&b, &self.wf.config);
                written.push(
                    notification::write(
                        &txn,
                        Notice {
                            user_id: u.id.clone(),
                            kind: "BOOKING_REMINDER".into(),
                            title: text.title.clone(),
                            body: text.body.clone(),
                            target_kind: Some("BOOKING".into()),
                            target_id: Some(b.id.clone()),
                        },
                        now,
                    )
                    .await?,
                );
                if let Some(addr) = u.email.clone() {
                    let mail = Email {
                        user_id: Some(u.id.clone()),
                        to_address: addr,
                        kind: "BOOKING_REMINDER".into(),
                        subject: text.title.clone(),
                        body_text: text.body.clone(),
                        body_html: super::notices::html(&text),
                    };
                    notification::enqueue_email(&txn, mail, now).await?;
                }
            }
        }
        txn.commit().await?;
        self.wf.jobs_written();
        self.wf.publish(written);
        tracing::info!(booking.id = %id, "booking reminder sent");
        Ok(())
    }

    /// What the chat layer opens for `b` once it has started.
    pub fn session_to_open(&self, b: &booking::Model) -> OpenBookedSession {
        OpenBookedSession {
            booking_id: b.id.clone(),
            taxpayer_id: b.taxpayer_id.clone(),
            agent_id: b.agent_id.clone(),
            skill_group: self
                .wf
                .config
                .service_type(&b.service_type)
                .map(|s| s.skill_group.clone())
                .unwrap_or_default(),
        }
    }

    /// Binds the chat session that the start opened (in the caller's transaction, so that a
    /// bound booking always has its session open).
    pub async fn bind_session(
        &self,
        db: &impl ConnectionTrait,
        id: &str,
        session_id: &str,
    ) -> Result<()> {
        booking::Entity::update_many()
            .col_expr(
                booking::Column::ChatSessionId,
                sea_orm::sea_query::Expr::value(session_id),
            )
            .filter(booking::Column::Id.eq(id))
            .exec(db)
            .await?;
        Ok(())
    }

    pub async fn get(&self, actor: &Actor, id: &str) -> Result<booking::Model> {
        booking::Entity::find_by_id(id)
            .one(&self.wf.db)
            .await?
            .filter(|b| visible(actor, b))
            .ok_or_else(|| Error::not_found(WHAT, id))
    }

    pub async fn history(&self, id: &str) -> Result<Vec<booking_history::Model>> {
        Ok(booking_history::Entity::find()
            .filter(booking_history::Column::BookingId.eq(id))
            .order_by_asc(booking_history::Column::Seq)
            .all(&self.wf.db)
            .await?)
    }

    pub fn allowed(&self, actor: &Actor, b: &booking::Model) -> Vec<EventKind> {
        match self.snapshot(b) {
            Ok(s) => machine::allowed(&s, actor, self.wf.now()),
            Err(_) => vec![],
        }
    }

    /// 我的预约: mine (booked) or the bureau's invitations.
    pub async fn mine(
        &self,
        actor: &Actor,
        origin: Option<Origin>,
        req: &PageRequest,
    ) -> Result<Page<booking::Model>> {
        let mut q =
            booking::Entity::find().filter(booking::Column::TaxpayerId.eq(actor.id.as_str()));
        if let Some(o) = origin {
            q = q.filter(booking::Column::Origin.eq(o.as_ref()));
        }
        page::newest_first(self.wf.reader(), q, booking::Column::Id, req).await
    }

    /// Staff: bookings by time range, agent and status.
    pub async fn list(
        &self,
        actor: &Actor,
        f: &BookingFilter,
        req: &PageRequest,
    ) -> Result<Page<booking::Model>> {
        if !actor.role.is_bureau() {
            return Err(Error::Forbidden("only staff may list bookings".into()));
        }
        let mut q = booking::Entity::find();
        if let Some(from) = f.from {
            q = q.filter(booking::Column::StartAt.gte(from));
        }
        if let Some(to) = f.to {
            q = q.filter(booking::Column::StartAt.lt(to));
        }
        if let Some(a) = &f.agent_id {
            q = q.filter(booking::Column::AgentId.eq(a.as_str()));
        }
        if let Some(s) = f.status {
            q = q.filter(booking::Column::Status.eq(s.as_ref()));
        }
        page::newest_first(self.wf.reader(), q, booking::Column::Id, req).await
    }

    /// Staff and taxpayers named in bookings must exist with the right role.
    pub async fn check_staff(&self, id: &str) -> Result<()> {
        let u = user::Entity::find_by_id(id).one(&self.wf.db).await?;
        expect_role(u.as_ref(), "agentId", id, true)
    }
}

/// Takes one place in a slot, in one statement: exactly one of many racing bookings gets
/// the last place.
async fn take_place(
    db: &impl ConnectionTrait,
    service_type: &str,
    start: DateTime<Utc>,
    capacity: i32,
) -> Result<()> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "INSERT INTO booking_slots (service_type, start_at, taken) VALUES ($1, $2, 1) \
             ON CONFLICT (service_type, start_at) DO UPDATE SET taken = booking_slots.taken + 1 \
             WHERE booking_slots.taken < $3 RETURNING taken"
        }
        _ => {
            "INSERT INTO booking_slots (service_type, start_at, taken) VALUES (?1, ?2, 1) \
             ON CONFLICT (service_type, start_at) DO UPDATE SET taken = booking_slots.taken + 1 \
             WHERE booking_slots.taken < ?3 RETURNING taken"
        }
    };
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [service_type.into(), start.into(), capacity.into()],
        ))
        .await?;
    if row.is_none() || capacity <= 0 {
        return Err(Error::Refused(Refusal::new(
            RefusalCode::SlotFull,
            "该时段已约满，请选择其他时段",
            "that slot is full; choose another",
        )));
    }
    Ok(())
}

async fn release_place(
    db: &impl ConnectionTrait,
    service_type: &str,
    start: DateTime<Utc>,
) -> Result<()> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "UPDATE booking_slots SET taken = taken - 1 WHERE service_type = $1 AND start_at = $2 AND taken > 0"
        }
        _ => {
            "UPDATE booking_slots SET taken = taken - 1 WHERE service_type = ? AND start_at = ? AND taken > 0"
        }
    };
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        sql,
        [service_type.into(), start.into()],
    ))
    .await?;
    Ok(())
}

async fn record(
    txn: &DatabaseTransaction,
    b: &booking::Model,
    actor: &Actor,
    event: &str,
    from: Option<Status>,
    note: Option<String>,
    now: DateTime<Utc>,
) -> Result<()> {
    let row = booking_history::Model {
        id: new_id(),
        booking_id: b.id.clone(),
        seq: b.version,
        event: event.to_string(),
        from_status: from.map(|s| s.as_ref().to_string()),
        to_status: b.status.clone(),
        actor_id: actor.id.clone(),
        actor_role: actor.role.as_ref().to_string(),
        note,
        at: now,
    };
    booking_history::Entity::insert(row.into_active_model())
        .exec_without_returning(txn)
        .await?;
    Ok(())
}
