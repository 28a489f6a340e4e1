//! Applies the offline-message machine: load, decide, and write state (version-checked),
//! history, the conversation and effects in one transaction.
//!
//! Converting a message into a work order is one transaction: the order (made by
//! `WorkOrders::stage_create`, citing the message in `source_leave_message_id`) and the
//! message's `CONVERT` step recording it, both or neither. Two staff members converting the
//! same message at the same instant: one commits, the other's version check fails, its order
//! is rolled back with it, and it is told `INVALID_TRANSITION` on the retry.

use std::collections::HashSet;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait,
    IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
    TransactionTrait,
};
use tracing::{Instrument, info_span};

use super::machine::{self, Decision, Effect, Event, EventKind, Recipient, Snapshot, Status};
use super::notices;
use crate::actor::{Actor, Role};
use crate::entities::{
    leave_message, leave_message_history, leave_message_reply, notification as notification_row,
    user, work_order,
};
use crate::error::{Error, Result, check};
use crate::metrics;
use crate::notification::{self, Email, Notice};
use crate::page::{self, Keyed, Page, PageRequest};
use crate::todo::{Todo, TodoKind};
use crate::work_order::{CreateWorkOrder, PreparedOrder};
use crate::workflow::{Workflow, new_id};

const WHAT: &str = "leave message";

/// At most this many attachments per message.
pub const MAX_ATTACHMENTS: usize = 5;
pub const MAX_CONTENT: usize = 2000;
pub const MAX_REPLY: usize = 5000;
pub const MAX_CONTACT: usize = 100;
/// A work order made from a message is titled with this many characters of it.
const TITLE_CHARS: usize = 30;

/// A message event written in a transaction, to announce after its commit.
struct StagedMessage {
    from: String,
    after: leave_message::Model,
    written: Vec<crate::entities::notification::Model>,
    kind: EventKind,
}

impl Keyed for leave_message::Model {
    fn key(&self) -> &str {
        &self.id
    }
}

#[derive(Debug, Clone, Default)]
pub struct SubmitLeaveMessage {
    pub category: String,
    pub content: String,
    pub contact: Option<String>,
    /// The taxpayer's own uploads (`uploadAttachment`), at most five.
    pub attachment_ids: Vec<String>,
    /// The taxpayer's chat whose hand-over was refused, if the message comes from one.
    pub source_session_id: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct LeaveMessageFilter {
    pub status: Option<Status>,
    pub category: Option<String>,
    pub taxpayer_id: Option<String>,
}

/// Offline-message operations of one `Workflow`.
pub struct LeaveMessages<'a> {
    wf: &'a Workflow,
}

impl Workflow {
    pub fn leave_messages(&self) -> LeaveMessages<'_> {
        LeaveMessages { wf: self }
    }
}

pub fn snapshot(m: &leave_message::Model) -> Result<Snapshot> {
    Ok(Snapshot {
        status: Status::from_str(&m.status).map_err(|_| {
            Error::Database(sea_orm::DbErr::Custom(format!(
                "leave message {} has an unknown status {:?}",
                m.id, m.status
            )))
        })?,
        owner_id: m.taxpayer_id.clone(),
        last_replier_id: m.last_replier_id.clone(),
        work_order_id: m.work_order_id.clone(),
        closed_at: m.closed_at,
        closed_by: m.closed_by.clone(),
    })
}

/// The row after a decision: the snapshot's fields, one version on.
fn updated(m: &leave_message::Model, s: &Snapshot, now: DateTime<Utc>) -> leave_message::Model {
    leave_message::Model {
        status: s.status.as_ref().to_string(),
        last_replier_id: s.last_replier_id.clone(),
        work_order_id: s.work_order_id.clone(),
        closed_at: s.closed_at,
        closed_by: s.closed_by.clone(),
        version: m.version + 1,
        updated_at: now,
        ..m.clone()
    }
}

/// A taxpayer sees only their own messages; another's is "not found", not "forbidden", so
/// ids cannot be probed.
fn visible(actor: &Actor, m: &leave_message::Model) -> bool {
    actor.role != Role::Taxpayer || m.taxpayer_id == actor.id
}

fn is_unique_violation(e: &sea_orm::DbErr) -> bool {
    matches!(
        e.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

/// Checks an event's free text before anything is read.
fn checked(event: Event) -> Result<Event> {
    Ok(match event {
        Event::Reply { content } => Event::Reply {
            content: check::text("content", &content, 1, MAX_REPLY)?,
        },
        Event::FollowUp { content } => Event::FollowUp {
            content: check::text("content", &content, 1, MAX_CONTENT)?,
        },
        e @ (Event::Close | Event::Convert { .. }) => e,
    })
}

/// The title of a work order made from a message: its first characters, on one line.
fn title_of(content: &str) -> String {
    content
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(TITLE_CHARS)
        .collect()
}

/// `SELECT COUNT(*)` of a statement's rows.
async fn count(db: &impl ConnectionTrait, q: &sea_orm::sea_query::SelectStatement) -> Result<i64> {
    Ok(match db.query_one(q).await? {
        Some(row) => row.try_get::<i64>("", "n")?,
        None => 0,
    })
}

/// The attachment ids, trimmed and without repeats, in their order; checked before any
/// transaction opens, in one pass that stops at the first id too many, so a huge list costs
/// no more than a few ids.
pub fn distinct_attachment_ids(ids: &[String]) -> Result<Vec<String>> {
    let field = "attachmentIds";
    let mut seen: HashSet<String> = HashSet::new();
    let mut out: Vec<String> = Vec::new();
    for id in ids {
        let id = check::text(field, id, 1, 64)?;
        if seen.insert(id.clone()) {
            if out.len() == MAX_ATTACHMENTS {
                return Err(Error::input(
                    field,
                    format!("最多可附 {MAX_ATTACHMENTS} 个附件"),
                    format!("at most {MAX_ATTACHMENTS} attachments"),
                ));
            }
            out.push(id);
        }
    }
    Ok(out)
}

/// Each attachment must be an upload of `owner`. Attachments belong to the chat crate,
/// which this one cannot name; their table is read directly.
async fn check_attachments(db: &impl ConnectionTrait, owner: &str, ids: &[String]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let q = Query::select()
        .expr_as(Expr::cust("COUNT(*)"), "n")
        .from("attachments")
        .and_where(Expr::col("id").is_in(ids.iter().cloned()))
        .and_where(Expr::col("uploader_id").eq(owner))
        .to_owned();
    if count(db, &q).await? != ids.len() as i64 {
        return Err(Error::input(
            "attachmentIds",
            "附件不存在或不是您本人上传的，请重新上传",
            "an attachment does not exist or was not uploaded by you; upload it again",
        ));
    }
    Ok(())
}

/// The chat a message comes from must be the taxpayer's own.
async fn check_session(db: &impl ConnectionTrait, owner: &str, session_id: &str) -> Result<()> {
    let q = Query::select()
        .expr_as(Expr::cust("COUNT(*)"), "n")
        .from("chat_sessions")
        .and_where(Expr::col("id").eq(session_id))
        .and_where(Expr::col("taxpayer_id").eq(owner))
        .to_owned();
    if count(db, &q).await? == 1 {
        Ok(())
    } else {
        Err(Error::input(
            "sourceSessionId",
            format!("会话 {session_id} 不存在或不是您的会话"),
            format!("chat {session_id} does not exist or is not yours"),
        ))
    }
}

fn check_category(wf: &Workflow, category: &str) -> Result<String> {
    let category = category.trim().to_string();
    if wf.config.categories.contains(&category) {
        return Ok(category);
    }
    Err(Error::input(
        "category",
        format!(
            "未知的业务类别「{category}」，可选：{}",
            wf.config.categories.join("、")
        ),
        format!(
            "unknown category {category:?}; one of: {}",
            wf.config.categories.join(", ")
        ),
    ))
}

/// Staff replies (not the taxpayer's own follow-ups) that the owner has not read.
fn unread_by_owner() -> sea_orm::Select<leave_message_reply::Entity> {
    leave_message_reply::Entity::find()
        .filter(leave_message_reply::Column::ReadAt.is_null())
        .filter(leave_message_reply::Column::AuthorRole.ne(Role::Taxpayer.as_ref()))
}

impl LeaveMessages<'_> {
    /// 在线留言: a taxpayer leaves a message for the bureau.
    pub async fn submit(
        &self,
        actor: &Actor,
        input: SubmitLeaveMessage,
    ) -> Result<leave_message::Model> {
        let wf = self.wf;
        let (owner, effects) = machine::decide_submit(actor)?;
        let category = check_category(wf, &input.category)?;
        let content = check::text("content", &input.content, 1, MAX_CONTENT)?;
        let contact = check::optional_text("contact", input.contact.as_deref(), MAX_CONTACT)?;
        let source_session_id =
            check::optional_text("sourceSessionId", input.source_session_id.as_deref(), 64)?;
        let attachments = distinct_attachment_ids(&input.attachment_ids)?;

        let now = wf.now();
        let txn = wf.db.begin().await?;
        crate::users::ensure_taxpayer(&txn, &owner, now).await?;
        check_attachments(&txn, &owner, &attachments).await?;
        if let Some(s) = &source_session_id {
            check_session(&txn, &owner, s).await?;
        }
        let message = leave_message::Model {
            id: new_id(),
            taxpayer_id: owner,
            category,
            content,
            contact,
            attachment_ids: serde_json::to_string(&attachments)
                .map_err(|e| Error::Database(sea_orm::DbErr::Custom(e.to_string())))?,
            status: Status::Submitted.as_ref().into(),
            source_session_id,
            work_order_id: None,
            last_replier_id: None,
            version: 1,
            created_at: now,
            updated_at: now,
            closed_at: None,
            closed_by: None,
        };
        leave_message::Entity::insert(message.clone().into_active_model())
            .exec_without_returning(&txn)
            .await?;
        record(&txn, &message, actor, "SUBMIT", None, None, now).await?;
        let written = write_effects(&txn, &message, actor, &effects, None, now).await?;
        txn.commit().await?;
        metrics::transition("leave_message", "SUBMIT");
        tracing::info!(leave_message.id = %message.id, actor.id = %actor.id, "leave message submitted");
        wf.publish(written);
        Ok(message)
    }

    /// Staff answer (答复).
    pub async fn reply(
        &self,
        actor: &Actor,
        id: &str,
        content: String,
    ) -> Result<leave_message::Model> {
        self.apply(actor, id, Event::Reply { content }).await
    }

    /// The taxpayer asks again (追问) after a reply.
    pub async fn follow_up(
        &self,
        actor: &Actor,
        id: &str,
        content: String,
    ) -> Result<leave_message::Model> {
        self.apply(actor, id, Event::FollowUp { content }).await
    }

    pub async fn close(&self, actor: &Actor, id: &str) -> Result<leave_message::Model> {
        self.apply(actor, id, Event::Close).await
    }

    /// Staff turn the message into a work order for its taxpayer: the order and the message's
    /// CONVERT step in one transaction. `category` defaults to the message's. Returns the
    /// closed message, whose `work_order_id` names the order.
    pub async fn convert(
        &self,
        actor: &Actor,
        id: &str,
        category: Option<String>,
    ) -> Result<leave_message::Model> {
        let span = info_span!("transition", machine = "leave_message", leave_message.id = %id, event = EventKind::Convert.as_ref(), actor.id = %actor.id);
        async move {
            let mut attempts = 0;
            loop {
                match self.convert_once(actor, id, category.clone()).await {
                    Err(Error::Conflict { .. }) if attempts < 3 => attempts += 1,
                    done => return done,
                }
            }
        }
        .instrument(span)
        .await
    }

    async fn convert_once(
        &self,
        actor: &Actor,
        id: &str,
        category: Option<String>,
    ) -> Result<leave_message::Model> {
        let wf = self.wf;
        let orders = wf.work_orders();
        let m = self.get(actor, id).await?;
        // Asked first, so that a refused conversion takes no number and writes nothing.
        machine::decide(&snapshot(&m)?, actor, &EventKind::Convert.sample(), wf.now())
            .inspect_err(|r| {
                tracing::info!(leave_message.id = %id, code = r.code.as_ref(), "convert refused: {}", r.en);
            })?;
        // A work order already citing the message: left by an earlier version, which made
        // the order and recorded the step in two transactions and could stop between them.
        let earlier = work_order::Entity::find()
            .filter(work_order::Column::SourceLeaveMessageId.eq(id))
            .filter(work_order::Column::TaxpayerId.eq(m.taxpayer_id.as_str()))
            .order_by_asc(work_order::Column::Id)
            .one(&wf.db)
            .await?;
        enum Order {
            Earlier { id: String, number: String },
            New(PreparedOrder),
        }
        let order = match earlier {
            Some(o) => Order::Earlier {
                id: o.id,
                number: o.number,
            },
            None => {
                let create = CreateWorkOrder {
                    title: title_of(&m.content),
                    description: m.content.clone(),
                    category: category.unwrap_or_else(|| m.category.clone()),
                    taxpayer_id: Some(m.taxpayer_id.clone()),
                    source_session_id: m.source_session_id.clone(),
                    source_leave_message_id: Some(m.id.clone()),
                };
                Order::New(orders.prepare(actor, create).await?)
            }
        };
        let txn = wf.db.begin().await?;
        let (work_order_id, number, made) = match order {
            Order::Earlier { id, number } => (id, number, None),
            Order::New(p) => {
                let made = orders.stage_create(&txn, actor, p).await?;
                let o = made.order();
                (o.id.clone(), o.number.clone(), Some(made))
            }
        };
        let event = Event::Convert {
            work_order_id,
            number,
        };
        let staged = self.stage(&txn, actor, id, &checked(event)?).await?;
        txn.commit().await?;
        if let Some(made) = made {
            orders.announce_create(actor, made);
        }
        Ok(self.announce(staged))
    }

    /// One event, applied: refused → nothing written; lost race → `Conflict`, nothing written.
    async fn apply(&self, actor: &Actor, id: &str, event: Event) -> Result<leave_message::Model> {
        let kind = event.kind();
        let span = info_span!("transition", machine = "leave_message", leave_message.id = %id, event = kind.as_ref(), actor.id = %actor.id);
        async move {
            let event = checked(event)?;
            let txn = self.wf.db.begin().await?;
            let staged = self.stage(&txn, actor, id, &event).await?;
            txn.commit().await?;
            Ok(self.announce(staged))
        }
        .instrument(span)
        .await
    }

    /// One (checked) event in the caller's transaction: the row (version-checked), its
    /// history, the conversation and the effects' rows; [`announce`](Self::announce) after
    /// the commit. Refused or lost race: an error, and nothing of it written.
    async fn stage(
        &self,
        txn: &DatabaseTransaction,
        actor: &Actor,
        id: &str,
        event: &Event,
    ) -> Result<StagedMessage> {
        let kind = event.kind();
        let now = self.wf.now();
        let message = leave_message::Entity::find_by_id(id)
            .one(txn)
            .await?
            .filter(|m| visible(actor, m))
            .ok_or_else(|| Error::not_found(WHAT, id))?;
        let before = snapshot(&message)?;
        let Decision { next, effects } =
            machine::decide(&before, actor, event, now).inspect_err(|r| {
                tracing::info!(leave_message.id = %id, code = r.code.as_ref(), "refused: {}", r.en);
            })?;
        let after = updated(&message, &next, now);
        let res = leave_message::Entity::update_many()
            .set(after.clone().into_active_model().reset_all())
            .filter(leave_message::Column::Id.eq(id))
            .filter(leave_message::Column::Version.eq(message.version))
            .exec(txn)
            .await?;
        if res.rows_affected != 1 {
            tracing::info!(leave_message.id = %id, "lost a race: version {} moved on", message.version);
            return Err(Error::Conflict {
                what: WHAT,
                id: id.to_string(),
            });
        }
        let note = event.note();
        record(
            txn,
            &after,
            actor,
            kind.as_ref(),
            Some(before.status),
            note.clone(),
            now,
        )
        .await
        .map_err(|e| match e {
            Error::Database(db) if is_unique_violation(&db) => Error::Conflict {
                what: WHAT,
                id: id.to_string(),
            },
            e => e,
        })?;
        if let Event::Reply { content } | Event::FollowUp { content } = event {
            // The taxpayer has read their own follow-up; a staff reply waits to be read.
            let read_at = (actor.id == after.taxpayer_id).then_some(now);
            let reply = leave_message_reply::Model {
                id: new_id(),
                leave_message_id: after.id.clone(),
                author_id: actor.id.clone(),
                author_role: actor.role.as_ref().to_string(),
                content: content.clone(),
                created_at: now,
                read_at,
            };
            leave_message_reply::Entity::insert(reply.into_active_model())
                .exec_without_returning(txn)
                .await?;
        }
        let written = write_effects(txn, &after, actor, &effects, note.as_deref(), now).await?;
        Ok(StagedMessage {
            from: message.status,
            after,
            written,
            kind,
        })
    }

    /// After the commit of a staged event: metrics, the log line, the notifications pushed.
    fn announce(&self, staged: StagedMessage) -> leave_message::Model {
        let StagedMessage {
            from,
            after,
            written,
            kind,
        } = staged;
        metrics::transition("leave_message", kind.as_ref());
        self.wf.jobs_written();
        tracing::info!(leave_message.id = %after.id, from = %from, to = %after.status, version = after.version, "leave message transition");
        self.wf.publish(written);
        after
    }

    pub async fn get(&self, actor: &Actor, id: &str) -> Result<leave_message::Model> {
        leave_message::Entity::find_by_id(id)
            .one(&self.wf.db)
            .await?
            .filter(|m| visible(actor, m))
            .ok_or_else(|| Error::not_found(WHAT, id))
    }

    /// Opens a message: for its owner, every staff reply in it is now read (which clears the
    /// READ_REPLY to-do and the unread count). Others just see it.
    pub async fn read(&self, actor: &Actor, id: &str) -> Result<leave_message::Model> {
        let m = self.get(actor, id).await?;
        if actor.role == Role::Taxpayer && actor.id == m.taxpayer_id {
            let r = leave_message_reply::Entity::update_many()
                .col_expr(
                    leave_message_reply::Column::ReadAt,
                    Expr::value(self.wf.now()),
                )
                .filter(leave_message_reply::Column::LeaveMessageId.eq(id))
                .filter(leave_message_reply::Column::ReadAt.is_null())
                .filter(leave_message_reply::Column::AuthorRole.ne(Role::Taxpayer.as_ref()))
                .exec(&self.wf.db)
                .await?;
            if r.rows_affected > 0 {
                tracing::debug!(leave_message.id = %id, read = r.rows_affected, "replies read");
            }
        }
        Ok(m)
    }

    /// The conversation under a message, oldest first.
    pub async fn replies(&self, id: &str) -> Result<Vec<leave_message_reply::Model>> {
        Ok(leave_message_reply::Entity::find()
            .filter(leave_message_reply::Column::LeaveMessageId.eq(id))
            .order_by_asc(leave_message_reply::Column::CreatedAt)
            .order_by_asc(leave_message_reply::Column::Id)
            .all(&self.wf.db)
            .await?)
    }

    pub async fn history(&self, id: &str) -> Result<Vec<leave_message_history::Model>> {
        Ok(leave_message_history::Entity::find()
            .filter(leave_message_history::Column::LeaveMessageId.eq(id))
            .order_by_asc(leave_message_history::Column::Seq)
            .all(&self.wf.db)
            .await?)
    }

    pub fn allowed(&self, actor: &Actor, m: &leave_message::Model) -> Vec<EventKind> {
        match snapshot(m) {
            Ok(s) => machine::allowed(&s, actor, self.wf.now()),
            Err(_) => vec![],
        }
    }

    /// 我的留言: a taxpayer's own messages; for staff, the ones they answered last.
    pub async fn mine(
        &self,
        actor: &Actor,
        status: Option<Status>,
        req: &PageRequest,
    ) -> Result<Page<leave_message::Model>> {
        let mut q = leave_message::Entity::find();
        q = if actor.role == Role::Taxpayer {
            q.filter(leave_message::Column::TaxpayerId.eq(actor.id.as_str()))
        } else {
            q.filter(leave_message::Column::LastReplierId.eq(actor.id.as_str()))
        };
        if let Some(s) = status {
            q = q.filter(leave_message::Column::Status.eq(s.as_ref()));
        }
        page::newest_first(self.wf.reader(), q, leave_message::Column::Id, req).await
    }

    /// The bureau's list, filtered.
    pub async fn list(
        &self,
        actor: &Actor,
        f: &LeaveMessageFilter,
        req: &PageRequest,
    ) -> Result<Page<leave_message::Model>> {
        if !actor.role.is_bureau() {
            return Err(Error::Forbidden(
                "only staff may list all leave messages".into(),
            ));
        }
        let mut q = leave_message::Entity::find();
        if let Some(s) = f.status {
            q = q.filter(leave_message::Column::Status.eq(s.as_ref()));
        }
        if let Some(c) = &f.category {
            q = q.filter(leave_message::Column::Category.eq(c.as_str()));
        }
        if let Some(t) = &f.taxpayer_id {
            q = q.filter(leave_message::Column::TaxpayerId.eq(t.as_str()));
        }
        page::newest_first(self.wf.reader(), q, leave_message::Column::Id, req).await
    }

    /// How many staff replies to the user's messages they have not read yet.
    pub async fn unread_replies(&self, user_id: &str) -> Result<u64> {
        let mine = Query::select()
            .column(leave_message::Column::Id)
            .from(leave_message::Entity)
            .and_where(leave_message::Column::TaxpayerId.eq(user_id))
            .to_owned();
        Ok(unread_by_owner()
            .filter(leave_message_reply::Column::LeaveMessageId.in_subquery(mine))
            .count(&self.wf.db)
            .await?)
    }

    /// One READ_REPLY to-do per message of the user with a reply they have not read.
    pub async fn read_reply_todos(&self, user_id: &str) -> Result<Vec<Todo>> {
        let unread = unread_by_owner()
            .select_only()
            .column(leave_message_reply::Column::LeaveMessageId)
            .into_query();
        let rows = leave_message::Entity::find()
            .filter(leave_message::Column::TaxpayerId.eq(user_id))
            .filter(leave_message::Column::Id.in_subquery(unread))
            .order_by_desc(leave_message::Column::UpdatedAt)
            .all(&self.wf.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|m| Todo {
                kind: TodoKind::ReadReply,
                title: format!("您的留言已有答复：「{}」", notices::excerpt(&m.content, 20)),
                target_id: m.id,
                due_at: None,
            })
            .collect())
    }
}

async fn record(
    txn: &DatabaseTransaction,
    m: &leave_message::Model,
    actor: &Actor,
    event: &str,
    from: Option<Status>,
    note: Option<String>,
    now: DateTime<Utc>,
) -> Result<()> {
    let row = leave_message_history::Model {
        id: new_id(),
        leave_message_id: m.id.clone(),
        seq: m.version,
        event: event.to_string(),
        from_status: from.map(|s| s.as_ref().to_string()),
        to_status: m.status.clone(),
        actor_id: actor.id.clone(),
        actor_role: actor.role.as_ref().to_string(),
        note,
        at: now,
    };
    leave_message_history::Entity::insert(row.into_active_model())
        .exec_without_returning(txn)
        .await?;
    Ok(())
}

/// Resolves recipients and writes each effect as a row. The actor is never told of their
/// own action.
async fn write_effects(
    txn: &DatabaseTransaction,
    m: &leave_message::Model,
    actor: &Actor,
    effects: &[Effect],
    note: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<notification_row::Model>> {
    let mut written = Vec::new();
    for effect in effects {
        let (to, kind, email) = match effect {
            Effect::Notify { to, kind } => (to, *kind, false),
            Effect::Email { to, kind } => (to, *kind, true),
        };
        let users: Vec<user::Model> = match to {
            Recipient::Owner => {
                user::Entity::find_by_id(m.taxpayer_id.as_str())
                    .all(txn)
                    .await?
            }
            Recipient::Replier => match &m.last_replier_id {
                Some(r) => user::Entity::find_by_id(r.as_str()).all(txn).await?,
                None => vec![],
            },
            Recipient::Supervisors => {
                user::Entity::find()
                    .filter(user::Column::Role.eq(Role::Admin.as_ref()))
                    .all(txn)
                    .await?
            }
        };
        let text = notices::render(kind, m, note);
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
                    target_kind: Some("LEAVE_MESSAGE".into()),
                    target_id: Some(m.id.clone()),
                };
                written.push(notification::write(txn, notice, now).await?);
            }
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::{MAX_ATTACHMENTS, distinct_attachment_ids};
    use crate::error::Error;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn attachment_ids_are_trimmed_kept_in_order_and_without_repeats() {
        let out = distinct_attachment_ids(&ids(&[" b ", "a", "b", "a"])).unwrap();
        assert_eq!(out, ids(&["b", "a"]));
        let many_repeats = vec!["a".to_string(); 170_000];
        assert_eq!(distinct_attachment_ids(&many_repeats).unwrap(), ids(&["a"]));
    }

    #[test]
    fn the_first_id_too_many_ends_the_check() {
        // The sixth distinct id is refused before the (invalid) ids after it are looked at.
        let mut list: Vec<String> = (0..=MAX_ATTACHMENTS).map(|i| format!("f{i}")).collect();
        list.extend(std::iter::repeat_n(String::new(), 170_000));
        match distinct_attachment_ids(&list) {
            Err(Error::InvalidInput(i)) => {
                assert_eq!(i.field, "attachmentIds");
                assert!(i.en.starts_with("at most"), "{}", i.en);
            }
            other => panic!("{other:?}"),
        }
        let empty = distinct_attachment_ids(&ids(&["f0", " "]));
        assert!(matches!(empty, Err(Error::InvalidInput(_))));
    }
}
