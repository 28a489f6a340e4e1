//! Applies the review machine: questions enter the queue as the bot fails them, and staff
//! link or dismiss them, each step in one transaction (version-checked row, history row, and
//! for a link the FAQ's new phrasing). A linked phrasing is answerable at once here and,
//! through the FAQ's version and `updated_at`, on every other instance at its next follow.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction,
    EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, TransactionTrait,
};
use taxdesk_workflow::error::{Error, Result, check};
use taxdesk_workflow::page::{self, Keyed, Page, PageRequest};
use taxdesk_workflow::{Actor, metrics};
use tracing::Instrument;

use super::machine::{self, Event, Reason, Snapshot, Status};
use crate::chat::Chat;
use crate::entities::{ask_log, asked_question, asked_question_history, faq};
use crate::faq::MAX_PHRASINGS;
use crate::kb::text::fold;
use crate::session::service::new_id;

const WHAT: &str = "asked question";

/// A question to put in the queue.
#[derive(Debug, Clone)]
pub struct NewAskedQuestion {
    pub text: String,
    pub reason: Reason,
    pub closest_faq_id: Option<String>,
    pub confidence: f64,
    pub session_id: Option<String>,
    pub user_id: Option<String>,
    pub at: DateTime<Utc>,
}

impl NewAskedQuestion {
    /// The question of an ask the bot logged.
    pub fn from_ask(a: &ask_log::Model, reason: Reason, at: DateTime<Utc>) -> NewAskedQuestion {
        NewAskedQuestion {
            text: a.text.clone(),
            reason,
            closest_faq_id: a.matched_id.clone(),
            confidence: a.confidence,
            session_id: a.session_id.clone(),
            user_id: a.user_id.clone(),
            at,
        }
    }
}

/// What makes two questions the same: folded (width, traditional characters, case,
/// punctuation) with the spaces taken out.
pub fn normalized(text: &str) -> String {
    fold(text).chars().filter(|c| !c.is_whitespace()).collect()
}

impl Keyed for asked_question::Model {
    fn key(&self) -> &str {
        &self.id
    }
}

fn status_of(row: &asked_question::Model) -> Result<Status> {
    row.status.parse().map_err(|_| {
        Error::Database(sea_orm::DbErr::Custom(format!(
            "asked question {} has an unknown status {:?}",
            row.id, row.status
        )))
    })
}

pub fn snapshot(row: &asked_question::Model) -> Result<Snapshot> {
    Ok(Snapshot {
        status: status_of(row)?,
        linked_faq_id: row.linked_faq_id.clone(),
    })
}

/// Puts `q` in the queue in `db`'s transaction: a question already OPEN with the same text
/// and reason counts one more ask instead of a second row.
pub(crate) async fn enqueue(db: &impl ConnectionTrait, q: NewAskedQuestion) -> Result<()> {
    let norm = normalized(&q.text);
    if norm.is_empty() {
        return Ok(());
    }
    let row = asked_question::Model {
        id: new_id(),
        text: q.text,
        open_key: Some(format!("{}:{norm}", q.reason.as_ref())),
        normalized_text: norm,
        reason: q.reason.as_ref().to_string(),
        status: Status::Open.as_ref().to_string(),
        ask_count: 1,
        closest_faq_id: q.closest_faq_id,
        linked_faq_id: None,
        confidence: q.confidence,
        session_id: q.session_id,
        user_id: q.user_id,
        version: 1,
        at: q.at,
        last_asked_at: q.at,
        updated_at: q.at,
    };
    use asked_question::Column as C;
    asked_question::Entity::insert(row.into_active_model())
        .on_conflict(
            OnConflict::column(C::OpenKey)
                .value(
                    C::AskCount,
                    Expr::col((asked_question::Entity, C::AskCount)).add(1),
                )
                .update_columns([C::LastAskedAt, C::Confidence, C::ClosestFaqId])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

impl Chat {
    /// The chat `session_id` went to a human: its last question (not 转人工 itself) is
    /// queued as HANDED_OVER, in the hand-over's own transaction `txn` (one turn at the
    /// writer, and no hand-over without its review row). The row is written under a
    /// savepoint: a failure there is logged and leaves the hand-over standing. A chat
    /// without a question queues nothing.
    pub(crate) async fn review_hand_over(&self, txn: &DatabaseTransaction, session_id: &str) {
        let attempt = async {
            let last = ask_log::Entity::find()
                .filter(ask_log::Column::SessionId.eq(session_id))
                .filter(ask_log::Column::Handover.eq(false))
                .order_by_desc(ask_log::Column::At)
                .one(txn)
                .await?;
            if let Some(a) = last {
                let savepoint = txn.begin().await?;
                let q = NewAskedQuestion::from_ask(&a, Reason::HandedOver, self.wf.now());
                enqueue(&savepoint, q).await?;
                savepoint.commit().await?;
            }
            Ok::<(), Error>(())
        };
        if let Err(e) = attempt.await {
            tracing::warn!(error = %e, session.id = %session_id, "queueing the handed-over question for review");
        }
    }

    /// Staff: the review queue, newest first; `status` None = every status.
    pub async fn asked_questions(
        &self,
        actor: &Actor,
        status: Option<Status>,
        reason: Option<Reason>,
        req: &PageRequest,
    ) -> Result<Page<asked_question::Model>> {
        forbidden_unless_bureau(actor)?;
        let mut q = asked_question::Entity::find();
        if let Some(s) = status {
            q = q.filter(asked_question::Column::Status.eq(s.as_ref()));
        }
        if let Some(r) = reason {
            q = q.filter(asked_question::Column::Reason.eq(r.as_ref()));
        }
        page::newest_first(self.wf.db(), q, asked_question::Column::Id, req).await
    }

    pub async fn asked_question(
        &self,
        actor: &Actor,
        id: &str,
    ) -> Result<Option<asked_question::Model>> {
        forbidden_unless_bureau(actor)?;
        Ok(asked_question::Entity::find_by_id(id)
            .one(self.wf.db())
            .await?)
    }

    pub async fn asked_question_history(
        &self,
        id: &str,
    ) -> Result<Vec<asked_question_history::Model>> {
        Ok(asked_question_history::Entity::find()
            .filter(asked_question_history::Column::AskedQuestionId.eq(id))
            .order_by_asc(asked_question_history::Column::Seq)
            .all(self.wf.db())
            .await?)
    }

    /// `linkAskedQuestion`: the question becomes a phrasing of FAQ `faq_id` (unless the FAQ
    /// already says it), answerable at once. Returns the FAQ.
    pub async fn link_asked_question(
        &self,
        actor: &Actor,
        id: &str,
        faq_id: &str,
    ) -> Result<faq::Model> {
        let span = tracing::info_span!("transition", machine = "asked_question", asked_question.id = %id, faq.id = %faq_id, actor.id = %actor.id);
        async move {
            check::text("askedQuestionId", id, 1, 64)?;
            check::text("faqId", faq_id, 1, 64)?;
            let now = self.wf.now();
            let txn = self.wf.db().begin().await?;
            let before = self.load(&txn, id).await?;
            let event = Event::Link {
                faq_id: faq_id.to_string(),
            };
            let snap = snapshot(&before)?;
            let next = machine::decide(&snap, actor, &event)?;
            let f = faq::Entity::find_by_id(faq_id)
                .one(&txn)
                .await?
                .ok_or_else(|| Error::not_found("faq", faq_id))?;
            if !f.enabled {
                return Err(Error::input(
                    "faqId",
                    "该问答已停用，不能关联",
                    "the FAQ is disabled and cannot take questions",
                ));
            }
            let mut similar: Vec<String> = serde_json::from_str(&f.similar).unwrap_or_default();
            let said = std::iter::once(&f.question)
                .chain(similar.iter())
                .any(|s| normalized(s) == before.normalized_text);
            let linked = if said {
                f
            } else {
                if similar.len() >= MAX_PHRASINGS {
                    return Err(Error::input(
                        "faqId",
                        format!("该问答的相似问法已达 {MAX_PHRASINGS} 条，请先整理"),
                        format!("the FAQ already has {MAX_PHRASINGS} phrasings; tidy them first"),
                    ));
                }
                similar.push(before.text.clone());
                let changed = faq::Entity::update_many()
                    .col_expr(
                        faq::Column::Similar,
                        Expr::value(
                            serde_json::to_string(&similar).unwrap_or_else(|_| "[]".into()),
                        ),
                    )
                    .col_expr(faq::Column::Version, Expr::value(f.version + 1))
                    .col_expr(faq::Column::UpdatedAt, Expr::value(now))
                    .filter(faq::Column::Id.eq(faq_id))
                    .filter(faq::Column::Version.eq(f.version))
                    .exec(&txn)
                    .await?;
                if changed.rows_affected != 1 {
                    return Err(Error::Conflict {
                        what: "faq",
                        id: faq_id.to_string(),
                    });
                }
                faq::Model {
                    similar: serde_json::to_string(&similar).unwrap_or_else(|_| "[]".into()),
                    version: f.version + 1,
                    updated_at: now,
                    ..f
                }
            };
            self.write_step(&txn, actor, &before, snap.status, &next, &event, now)
                .await?;
            txn.commit().await?;
            // Answerable here now (by meaning too once its vectors are made); the other
            // instances follow the FAQ's new version.
            self.index_saved(std::slice::from_ref(&linked))?;
            metrics::transition("asked_question", "LINK");
            tracing::info!(faq.version = linked.version, "asked question linked");
            Ok(linked)
        }
        .instrument(span)
        .await
    }

    /// `dismissAskedQuestion`: out of the OPEN queue, nothing learnt.
    pub async fn dismiss_asked_question(
        &self,
        actor: &Actor,
        id: &str,
    ) -> Result<asked_question::Model> {
        let span = tracing::info_span!("transition", machine = "asked_question", asked_question.id = %id, actor.id = %actor.id);
        async move {
            check::text("id", id, 1, 64)?;
            let now = self.wf.now();
            let txn = self.wf.db().begin().await?;
            let before = self.load(&txn, id).await?;
            let snap = snapshot(&before)?;
            let next = machine::decide(&snap, actor, &Event::Dismiss)?;
            let after = self
                .write_step(
                    &txn,
                    actor,
                    &before,
                    snap.status,
                    &next,
                    &Event::Dismiss,
                    now,
                )
                .await?;
            txn.commit().await?;
            metrics::transition("asked_question", "DISMISS");
            tracing::info!("asked question dismissed");
            Ok(after)
        }
        .instrument(span)
        .await
    }

    async fn load(&self, db: &impl ConnectionTrait, id: &str) -> Result<asked_question::Model> {
        asked_question::Entity::find_by_id(id)
            .one(db)
            .await?
            .ok_or_else(|| Error::not_found(WHAT, id))
    }

    /// The new status (version-checked; a closed question leaves the open key free) and the
    /// history row.
    #[allow(clippy::too_many_arguments)]
    async fn write_step(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        before: &asked_question::Model,
        from: Status,
        next: &Snapshot,
        event: &Event,
        now: DateTime<Utc>,
    ) -> Result<asked_question::Model> {
        let after = asked_question::Model {
            status: next.status.as_ref().to_string(),
            linked_faq_id: next.linked_faq_id.clone(),
            open_key: (next.status == Status::Open)
                .then(|| before.open_key.clone())
                .flatten(),
            version: before.version + 1,
            updated_at: now,
            ..before.clone()
        };
        let res = asked_question::Entity::update_many()
            .set(after.clone().into_active_model().reset_all())
            .filter(asked_question::Column::Id.eq(before.id.as_str()))
            .filter(asked_question::Column::Version.eq(before.version))
            .exec(db)
            .await?;
        if res.rows_affected != 1 {
            return Err(Error::Conflict {
                what: WHAT,
                id: before.id.clone(),
            });
        }
        let h = asked_question_history::ActiveModel {
            id: Set(new_id()),
            asked_question_id: Set(before.id.clone()),
            seq: Set(after.version),
            event: Set(event.kind().as_ref().to_string()),
            from_status: Set(Some(from.as_ref().to_string())),
            to_status: Set(after.status.clone()),
            actor_id: Set(actor.id.clone()),
            actor_role: Set(actor.role.as_ref().to_string()),
            note: Set(event.note()),
            at: Set(now),
        };
        asked_question_history::Entity::insert(h)
            .exec_without_returning(db)
            .await?;
        Ok(after)
    }
}

fn forbidden_unless_bureau(actor: &Actor) -> Result<()> {
    if actor.role.is_bureau() {
        Ok(())
    } else {
        Err(Error::Forbidden("only staff review asked questions".into()))
    }
}
