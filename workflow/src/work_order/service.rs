//! Applies the work-order machine: load, decide, and write state (version-checked), history
//! and effects in one transaction.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Asia::Shanghai;
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, EntityTrait,
    IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder, TransactionTrait,
};
use tracing::{Instrument, info_span};

use super::machine::{
    self, Decision, Effect, Event, EventKind, NoticeKind, Priority, Rating, Recipient, Snapshot,
    Status,
};
use super::notices;
use crate::actor::{Actor, Role};
use crate::entities::{leave_message, user, work_order, work_order_history};
use crate::error::{Error, Result, check};
use crate::jobs;
use crate::metrics;
use crate::notification::{self, Email, Notice};
use crate::page::{self, Keyed, Page, PageRequest};
use crate::users::expect_role;
use crate::workflow::{Workflow, new_id};

const WHAT: &str = "work order";

impl Keyed for work_order::Model {
    fn key(&self) -> &str {
        &self.id
    }
}

#[derive(Debug, Clone, Default)]
pub struct CreateWorkOrder {
    pub title: String,
    pub description: String,
    pub category: String,
    pub taxpayer_id: Option<String>,
    pub source_session_id: Option<String>,
    pub source_leave_message_id: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct WorkOrderFilter {
    pub status: Option<Status>,
    pub handler_id: Option<String>,
    pub category: Option<String>,
    pub taxpayer_id: Option<String>,
    pub priority: Option<Priority>,
    /// Open and past its deadline (or, with `false`, not).
    pub overdue: Option<bool>,
}

/// Work-order operations of one `Workflow`.
pub struct WorkOrders<'a> {
    wf: &'a Workflow,
}

impl Workflow {
    pub fn work_orders(&self) -> WorkOrders<'_> {
        WorkOrders { wf: self }
    }
}

pub fn snapshot(o: &work_order::Model) -> Result<Snapshot> {
    let corrupt = |col: &str, v: &str| {
        Error::Database(sea_orm::DbErr::Custom(format!(
            "work order {} has an unknown {col} {v:?}",
            o.id
        )))
    };
    Ok(Snapshot {
        status: Status::from_str(&o.status).map_err(|_| corrupt("status", &o.status))?,
        owner_id: o.taxpayer_id.clone(),
        handler_id: o.handler_id.clone(),
        priority: Priority::from_str(&o.priority).map_err(|_| corrupt("priority", &o.priority))?,
        urge_count: o.urge_count.max(0) as u32,
        last_urged_at: o.last_urged_at,
        resolution: o.resolution.clone(),
        rating: match (o.rating_score, o.rated_at) {
            (Some(score), Some(at)) => Some(Rating {
                score: score.clamp(0, 5) as u8,
                comment: o.rating_comment.clone(),
                at,
            }),
            _ => None,
        },
        closed_at: o.closed_at,
        deadline: o.deadline,
        overdue_escalated_for: o.overdue_escalated_for,
    })
}

/// The row after a decision: the snapshot's fields, one version on.
fn updated(o: &work_order::Model, s: &Snapshot, now: DateTime<Utc>) -> work_order::Model {
    work_order::Model {
        status: s.status.as_ref().to_string(),
        handler_id: s.handler_id.clone(),
        priority: s.priority.as_ref().to_string(),
        urge_count: s.urge_count as i32,
        last_urged_at: s.last_urged_at,
        resolution: s.resolution.clone(),
        rating_score: s.rating.as_ref().map(|r| r.score as i16),
        rating_comment: s.rating.as_ref().and_then(|r| r.comment.clone()),
        rated_at: s.rating.as_ref().map(|r| r.at),
        closed_at: s.closed_at,
        deadline: s.deadline,
        overdue_escalated_for: s.overdue_escalated_for,
        version: o.version + 1,
        updated_at: now,
        ..o.clone()
    }
}

/// A taxpayer sees only their own orders; another's is "not found", not "forbidden", so
/// ids cannot be probed.
fn visible(actor: &Actor, o: &work_order::Model) -> bool {
    actor.role != Role::Taxpayer || o.taxpayer_id == actor.id
}

fn is_unique_violation(e: &sea_orm::DbErr) -> bool {
    matches!(
        e.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

/// A work order may cite a chat or an offline message only of the taxpayer it is for
/// (`owner`); another's is "not found", as an unknown id, so ids cannot be probed. Chats
/// belong to the chat crate, which this one cannot name; their table is read directly.
async fn check_sources(
    db: &impl ConnectionTrait,
    owner: &str,
    session_id: Option<&str>,
    leave_message_id: Option<&str>,
) -> Result<()> {
    use sea_orm::sea_query::ExprTrait;
    if let Some(id) = session_id {
        let q = Query::select()
            .column("id")
            .from("chat_sessions")
            .and_where(Expr::col("id").eq(id))
            .and_where(Expr::col("taxpayer_id").eq(owner))
            .to_owned();
        if db.query_one(&q).await?.is_none() {
            return Err(Error::not_found("chat session", id));
        }
    }
    if let Some(id) = leave_message_id {
        let mine = leave_message::Entity::find_by_id(id)
            .filter(leave_message::Column::TaxpayerId.eq(owner))
            .count(db)
            .await?;
        if mine == 0 {
            return Err(Error::not_found("leave message", id));
        }
    }
    Ok(())
}

/// Checks an event's free text before anything is read.
fn checked(event: Event) -> Result<Event> {
    Ok(match event {
        Event::Dispatch { handler_id, note } => Event::Dispatch {
            handler_id: check::text("handlerId", &handler_id, 1, 64)?,
            note: check::optional_text("note", note.as_deref(), 2000)?,
        },
        Event::Progress { note } => Event::Progress {
            note: check::text("note", &note, 1, 2000)?,
        },
        Event::Complete { resolution } => Event::Complete {
            resolution: check::text("resolution", &resolution, 1, 5000)?,
        },
        Event::Urge { reason } => Event::Urge {
            reason: check::optional_text("reason", reason.as_deref(), 500)?,
        },
        Event::Terminate { reason } => Event::Terminate {
            reason: check::optional_text("reason", reason.as_deref(), 500)?,
        },
        Event::Rate { score, comment } => {
            if !(1..=5).contains(&score) {
                return Err(Error::input(
                    "score",
                    format!("评分须为 1 到 5（现为 {score}）"),
                    format!("score must be between 1 and 5 (got {score})"),
                ));
            }
            Event::Rate {
                score,
                comment: check::optional_text("comment", comment.as_deref(), 1000)?,
            }
        }
        e @ (Event::Accept | Event::Overdue) => e,
    })
}

/// A create checked and numbered, to be written in a transaction.
#[derive(Debug)]
pub struct PreparedOrder {
    number: String,
    owner: String,
    title: String,
    description: String,
    category: String,
    source_session_id: Option<String>,
    source_leave_message_id: Option<String>,
}

/// A work order written in a transaction, to announce after its commit.
#[derive(Debug)]
pub struct StagedOrder {
    order: work_order::Model,
    written: Vec<crate::entities::notification::Model>,
}

impl StagedOrder {
    pub fn order(&self) -> &work_order::Model {
        &self.order
    }
}

impl WorkOrders<'_> {
    pub async fn create(&self, actor: &Actor, input: CreateWorkOrder) -> Result<work_order::Model> {
        let prepared = self.prepare(actor, input).await?;
        let txn = self.wf.db.begin().await?;
        let staged = self.stage_create(&txn, actor, prepared).await?;
        txn.commit().await?;
        Ok(self.announce_create(actor, staged))
    }

    /// Everything a create decides before its transaction: the input checked, who owns the
    /// order (the machine's creation rule), its sources the owner's, and its number (from
    /// this instance's reserved block, so concurrent creates do not queue on the day's
    /// counter row; a create that fails later leaves a gap).
    pub async fn prepare(&self, actor: &Actor, input: CreateWorkOrder) -> Result<PreparedOrder> {
        let wf = self.wf;
        let title = check::text("title", &input.title, 1, 200)?;
        let description = check::text("description", &input.description, 1, 5000)?;
        let category = input.category.trim().to_string();
        if !wf.config.categories.contains(&category) {
            return Err(Error::input(
                "category",
                format!(
                    "未知的业务类别「{category}」，可选：{}",
                    wf.config.categories.join("、")
                ),
                format!(
                    "unknown category {category:?}; one of: {}",
                    wf.config.categories.join(", ")
                ),
            ));
        }
        let taxpayer_id = check::optional_text("taxpayerId", input.taxpayer_id.as_deref(), 64)?;
        let source_session_id =
            check::optional_text("sourceSessionId", input.source_session_id.as_deref(), 64)?;
        let source_leave_message_id = check::optional_text(
            "sourceLeaveMessageId",
            input.source_leave_message_id.as_deref(),
            64,
        )?;
        let owner = machine::decide_create(actor, taxpayer_id.as_deref())?;
        check_sources(
            &wf.db,
            &owner,
            source_session_id.as_deref(),
            source_leave_message_id.as_deref(),
        )
        .await?;
        let now = wf.now();
        let day = now.with_timezone(&Shanghai).format("%Y%m%d").to_string();
        let seq = wf
            .numbers
            .take(&wf.db, &format!("work_order:{day}"))
            .await?;
        Ok(PreparedOrder {
            number: format!("GD{day}{seq:04}"),
            owner,
            title,
            description,
            category,
            source_session_id,
            source_leave_message_id,
        })
    }

    /// Writes a prepared order in the caller's transaction: the row, its CREATE history, its
    /// deadline job and its notifications; [`announce_create`](Self::announce_create) after
    /// the commit.
    pub async fn stage_create(
        &self,
        txn: &DatabaseTransaction,
        actor: &Actor,
        prepared: PreparedOrder,
    ) -> Result<StagedOrder> {
        let wf = self.wf;
        let input = prepared;
        let now = wf.now();
        crate::users::ensure_taxpayer(txn, &input.owner, now).await?;
        // Whole days are working days of the calendar (holidays skipped, 调休 days counted).
        let deadline = wf.deadline_for(&input.category, now);
        let order = work_order::Model {
            id: new_id(),
            number: input.number,
            title: input.title,
            description: input.description,
            category: input.category,
            taxpayer_id: input.owner,
            created_by: actor.id.clone(),
            handler_id: None,
            status: Status::Submitted.as_ref().into(),
            priority: Priority::Normal.as_ref().into(),
            urge_count: 0,
            last_urged_at: None,
            resolution: None,
            rating_score: None,
            rating_comment: None,
            rated_at: None,
            closed_at: None,
            deadline: Some(deadline),
            overdue_escalated_for: None,
            source_session_id: input.source_session_id,
            source_leave_message_id: input.source_leave_message_id,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        work_order::Entity::insert(order.clone().into_active_model())
            .exec_without_returning(txn)
            .await?;
        record(txn, &order, actor, "CREATE", None, None, now).await?;
        schedule_deadline(txn, &order, now).await?;
        let effects = [
            Effect::Notify {
                to: Recipient::Owner,
                kind: NoticeKind::WorkOrderCreated,
            },
            Effect::Notify {
                to: Recipient::Supervisors,
                kind: NoticeKind::WorkOrderCreated,
            },
        ];
        let written = write_effects(txn, &order, actor, &effects, None, now).await?;
        Ok(StagedOrder { order, written })
    }

    /// After the commit of a staged create: metrics, the log line, the notifications pushed.
    pub fn announce_create(&self, actor: &Actor, staged: StagedOrder) -> work_order::Model {
        let StagedOrder { order, written } = staged;
        metrics::transition("work_order", "CREATE");
        self.wf.jobs_written();
        tracing::info!(work_order.id = %order.id, number = %order.number, actor.id = %actor.id, "work order created");
        self.wf.publish(written);
        order
    }

    /// One event, applied: refused → nothing written; lost race → `Conflict`, nothing written.
    pub async fn apply(&self, actor: &Actor, id: &str, event: Event) -> Result<work_order::Model> {
        let kind = event.kind();
        let span = info_span!("transition", machine = "work_order", work_order.id = %id, event = kind.as_ref(), actor.id = %actor.id);
        async move {
            let event = checked(event)?;
            let wf = self.wf;
            let now = wf.now();
            let txn = wf.db.begin().await?;
            let order = work_order::Entity::find_by_id(id)
                .one(&txn)
                .await?
                .filter(|o| visible(actor, o))
                .ok_or_else(|| Error::not_found(WHAT, id))?;
            if let Event::Dispatch { handler_id, .. } = &event {
                let handler = user::Entity::find_by_id(handler_id.as_str()).one(&txn).await?;
                expect_role(handler.as_ref(), "handlerId", handler_id, true)?;
            }
            let before = snapshot(&order)?;
            let Decision { next, effects } =
                machine::decide(&wf.config.work_orders, &before, actor, &event, now).inspect_err(|r| {
                    tracing::info!(code = r.code.as_ref(), "refused: {}", r.en);
                })?;
            let after = updated(&order, &next, now);
            let res = work_order::Entity::update_many()
                .set(after.clone().into_active_model().reset_all())
                .filter(work_order::Column::Id.eq(id))
                .filter(work_order::Column::Version.eq(order.version))
                .exec(&txn)
                .await?;
            if res.rows_affected != 1 {
                tracing::info!("lost a race: version {} moved on", order.version);
                return Err(Error::Conflict { what: WHAT, id: id.to_string() });
            }
            let note = event.note();
            record(&txn, &after, actor, kind.as_ref(), Some(before.status), note.clone(), now)
                .await
                .map_err(|e| match e {
                    Error::Database(db) if is_unique_violation(&db) => {
                        Error::Conflict { what: WHAT, id: id.to_string() }
                    }
                    e => e,
                })?;
            let written = write_effects(&txn, &after, actor, &effects, note.as_deref(), now).await?;
            txn.commit().await?;
            metrics::transition("work_order", kind.as_ref());
            wf.jobs_written();
            tracing::info!(from = %order.status, to = %after.status, version = after.version, "work order transition");
            wf.publish(written);
            Ok(after)
        }
        .instrument(span)
        .await
    }

    pub async fn get(&self, actor: &Actor, id: &str) -> Result<work_order::Model> {
        work_order::Entity::find_by_id(id)
            .one(&self.wf.db)
            .await?
            .filter(|o| visible(actor, o))
            .ok_or_else(|| Error::not_found(WHAT, id))
    }

    pub async fn history(&self, id: &str) -> Result<Vec<work_order_history::Model>> {
        Ok(work_order_history::Entity::find()
            .filter(work_order_history::Column::WorkOrderId.eq(id))
            .order_by_asc(work_order_history::Column::Seq)
            .all(&self.wf.db)
            .await?)
    }

    pub fn allowed(&self, actor: &Actor, o: &work_order::Model) -> Vec<EventKind> {
        match snapshot(o) {
            Ok(s) => machine::allowed(&self.wf.config.work_orders, &s, actor, self.wf.now()),
            Err(_) => vec![],
        }
    }

    /// 我的工单: a taxpayer's own orders; for staff, the orders they handle.
    pub async fn mine(
        &self,
        actor: &Actor,
        status: Option<Status>,
        req: &PageRequest,
    ) -> Result<Page<work_order::Model>> {
        let mut q = work_order::Entity::find();
        q = if actor.role == Role::Taxpayer {
            q.filter(work_order::Column::TaxpayerId.eq(actor.id.as_str()))
        } else {
            q.filter(work_order::Column::HandlerId.eq(actor.id.as_str()))
        };
        if let Some(s) = status {
            q = q.filter(work_order::Column::Status.eq(s.as_ref()));
        }
        page::newest_first(self.wf.reader(), q, work_order::Column::Id, req).await
    }

    /// The bureau's list, filtered.
    pub async fn list(
        &self,
        actor: &Actor,
        f: &WorkOrderFilter,
        req: &PageRequest,
    ) -> Result<Page<work_order::Model>> {
        if !actor.role.is_bureau() {
            return Err(Error::Forbidden(
                "only staff may list all work orders".into(),
            ));
        }
        let mut q = work_order::Entity::find();
        if let Some(s) = f.status {
            q = q.filter(work_order::Column::Status.eq(s.as_ref()));
        }
        if let Some(h) = &f.handler_id {
            q = q.filter(work_order::Column::HandlerId.eq(h.as_str()));
        }
        if let Some(c) = &f.category {
            q = q.filter(work_order::Column::Category.eq(c.as_str()));
        }
        if let Some(t) = &f.taxpayer_id {
            q = q.filter(work_order::Column::TaxpayerId.eq(t.as_str()));
        }
        if let Some(p) = f.priority {
            q = q.filter(work_order::Column::Priority.eq(p.as_ref()));
        }
        if let Some(overdue) = f.overdue {
            let open = [Status::Submitted, Status::Dispatched, Status::InProgress]
                .map(|s| s.as_ref().to_string());
            let is_overdue = Condition::all()
                .add(work_order::Column::Status.is_in(open))
                .add(work_order::Column::Deadline.lt(self.wf.now()));
            q = q.filter(if overdue {
                is_overdue
            } else {
                is_overdue.not()
            });
        }
        page::newest_first(self.wf.reader(), q, work_order::Column::Id, req).await
    }
}

/// The job that raises `overdue` when the deadline passes; keyed by the deadline, so a new
/// deadline gets a new job and the same one is never scheduled twice.
async fn schedule_deadline(
    txn: &DatabaseTransaction,
    o: &work_order::Model,
    now: DateTime<Utc>,
) -> Result<()> {
    if let Some(deadline) = o.deadline {
        let job = jobs::NewJob::new(
            jobs::kind::WORK_ORDER_DEADLINE,
            format!("work_order.deadline:{}:{}", o.id, deadline.timestamp()),
            deadline,
            serde_json::json!({ "workOrderId": o.id }),
        );
        jobs::schedule(txn, job, now).await?;
    }
    Ok(())
}

async fn record(
    txn: &DatabaseTransaction,
    o: &work_order::Model,
    actor: &Actor,
    event: &str,
    from: Option<Status>,
    note: Option<String>,
    now: DateTime<Utc>,
) -> Result<()> {
    let row = work_order_history::Model {
        id: new_id(),
        work_order_id: o.id.clone(),
        seq: o.version,
        event: event.to_string(),
        from_status: from.map(|s| s.as_ref().to_string()),
        to_status: o.status.clone(),
        actor_id: actor.id.clone(),
        actor_role: actor.role.as_ref().to_string(),
        note,
        at: now,
    };
    work_order_history::Entity::insert(row.into_active_model())
        .exec_without_returning(txn)
        .await?;
    Ok(())
}

/// Resolves recipients and writes each effect as a row. The actor is never told of their
/// own action.
async fn write_effects(
    txn: &DatabaseTransaction,
    o: &work_order::Model,
    actor: &Actor,
    effects: &[Effect],
    note: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<crate::entities::notification::Model>> {
    let mut written = Vec::new();
    for effect in effects {
        let (to, kind, email) = match effect {
            Effect::Notify { to, kind } => (to, *kind, false),
            Effect::Email { to, kind } => (to, *kind, true),
        };
        let users: Vec<user::Model> = match to {
            Recipient::Owner => {
                user::Entity::find_by_id(o.taxpayer_id.as_str())
                    .all(txn)
                    .await?
            }
            Recipient::Handler => match &o.handler_id {
                Some(h) => user::Entity::find_by_id(h.as_str()).all(txn).await?,
                None => vec![],
            },
            Recipient::User(id) => user::Entity::find_by_id(id.as_str()).all(txn).await?,
            Recipient::Supervisors => {
                user::Entity::find()
                    .filter(user::Column::Role.eq(Role::Admin.as_ref()))
                    .all(txn)
                    .await?
            }
        };
        let text = notices::render(kind, o, note);
        for u in users.iter().filter(|u| u.id != actor.id) {
            if email {
                let Some(addr) = u.email.clone() else {
                    tracing::debug!(user.id = %u.id, "no email address; email skipped");
                    continue;
                };
                let mail = Email {
                    user_id: Some(u.id.clone()),
                    to_address: addr,
                    kind: kind.as_ref().to_string(),
                    subject: text.title.clone(),
                    body_text: text.body.clone(),
                    body_html: notices::html(&text),
                };
                notification::enqueue_email(txn, mail, now).await?;
            } else {
                let notice = Notice {
                    user_id: u.id.clone(),
                    kind: kind.as_ref().to_string(),
                    title: text.title.clone(),
                    body: text.body.clone(),
                    target_kind: Some("WORK_ORDER".into()),
                    target_id: Some(o.id.clone()),
                };
                written.push(notification::write(txn, notice, now).await?);
            }
        }
    }
    Ok(written)
}
