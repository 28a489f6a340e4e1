//! 我的消息: in-app notifications, written as rows inside the transaction of the change that
//! caused them and pushed to subscribers after it commits.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    sea_query::Expr,
};

use crate::entities::{notification, outbox_email};
use crate::error::Result;
use crate::jobs;
use crate::page::{self, Keyed, Page, PageRequest};
use crate::workflow::{Workflow, new_id};

impl Keyed for notification::Model {
    fn key(&self) -> &str {
        &self.id
    }
}

/// A message about to be written: to whom, what, and what it links to.
#[derive(Debug, Clone)]
pub struct Notice {
    pub user_id: String,
    pub kind: String,
    pub title: String,
    pub body: String,
    pub target_kind: Option<String>,
    pub target_id: Option<String>,
}

pub(crate) async fn write(
    db: &impl ConnectionTrait,
    n: Notice,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<notification::Model> {
    let row = notification::Model {
        id: new_id(),
        user_id: n.user_id,
        kind: n.kind,
        title: n.title,
        body: n.body,
        target_kind: n.target_kind,
        target_id: n.target_id,
        read_at: None,
        created_at: now,
    };
    notification::Entity::insert(notification::ActiveModel::from(row.clone()))
        .exec_without_returning(db)
        .await?;
    Ok(row)
}

/// An email for the outbox; the scheduler's sender delivers it after the commit.
#[derive(Debug, Clone)]
pub struct Email {
    pub user_id: Option<String>,
    pub to_address: String,
    pub kind: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
}

/// Writes the email and the job that delivers it.
pub(crate) async fn enqueue_email(
    db: &impl ConnectionTrait,
    e: Email,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<()> {
    let id = new_id();
    let row = outbox_email::ActiveModel {
        id: Set(id.clone()),
        user_id: Set(e.user_id),
        to_address: Set(e.to_address),
        kind: Set(e.kind),
        subject: Set(e.subject),
        body_text: Set(e.body_text),
        body_html: Set(e.body_html),
        state: Set("PENDING".into()),
        attempts: Set(0),
        next_attempt_at: Set(now),
        last_error: Set(None),
        created_at: Set(now),
        sent_at: Set(None),
    };
    outbox_email::Entity::insert(row)
        .exec_without_returning(db)
        .await?;
    let job = jobs::NewJob::new(
        jobs::kind::EMAIL_DELIVER,
        format!("email:{id}"),
        now,
        serde_json::json!({ "emailId": id }),
    );
    jobs::schedule(db, job, now).await?;
    Ok(())
}

impl Workflow {
    pub async fn notifications(
        &self,
        user_id: &str,
        unread_only: bool,
        req: &PageRequest,
    ) -> Result<Page<notification::Model>> {
        let mut q = notification::Entity::find().filter(notification::Column::UserId.eq(user_id));
        if unread_only {
            q = q.filter(notification::Column::ReadAt.is_null());
        }
        page::newest_first(self.reader(), q, notification::Column::Id, req).await
    }

    /// Marks the user's own notifications read; ids of others are ignored. Returns them all,
    /// read, in the order asked.
    pub async fn mark_notifications_read(
        &self,
        user_id: &str,
        ids: &[String],
    ) -> Result<Vec<notification::Model>> {
        let mine = || {
            notification::Entity::find()
                .filter(notification::Column::UserId.eq(user_id))
                .filter(notification::Column::Id.is_in(ids.iter().cloned()))
        };
        notification::Entity::update_many()
            .col_expr(notification::Column::ReadAt, Expr::value(self.now()))
            .filter(notification::Column::UserId.eq(user_id))
            .filter(notification::Column::Id.is_in(ids.iter().cloned()))
            .filter(notification::Column::ReadAt.is_null())
            .exec(&self.db)
            .await?;
        let mut rows = mine().all(&self.db).await?;
        // In the order asked for; a map, as a search per row is quadratic in a long list.
        let place: std::collections::HashMap<&str, usize> = ids
            .iter()
            .enumerate()
            .rev()
            .map(|(n, id)| (id.as_str(), n))
            .collect();
        rows.sort_by_key(|r| place.get(r.id.as_str()).copied());
        Ok(rows)
    }

    pub async fn mark_all_notifications_read(&self, user_id: &str) -> Result<u64> {
        let r = notification::Entity::update_many()
            .col_expr(notification::Column::ReadAt, Expr::value(self.now()))
            .filter(notification::Column::UserId.eq(user_id))
            .filter(notification::Column::ReadAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(r.rows_affected)
    }

    pub async fn unread_notifications(&self, user_id: &str) -> Result<u64> {
        Ok(notification::Entity::find()
            .filter(notification::Column::UserId.eq(user_id))
            .filter(notification::Column::ReadAt.is_null())
            .count(&self.db)
            .await?)
    }
}

impl Keyed for outbox_email::Model {
    fn key(&self) -> &str {
        &self.id
    }
}

impl Workflow {
    /// Admins: the email outbox by state (`PENDING`, `SENDING`, `SENT`, `FAILED`), newest first.
    pub async fn outbox(
        &self,
        state: Option<&str>,
        req: &PageRequest,
    ) -> Result<Page<outbox_email::Model>> {
        let mut q = outbox_email::Entity::find();
        if let Some(s) = state {
            q = q.filter(outbox_email::Column::State.eq(s));
        }
        page::newest_first(self.reader(), q, outbox_email::Column::Id, req).await
    }
}
