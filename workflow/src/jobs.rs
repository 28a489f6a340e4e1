//! Timed work written as rows in the same transaction as the change that needs it (a
//! deadline, an email, a reminder). The scheduler crate claims and runs them; this module
//! only writes, cancels and lists them.

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, Statement, sea_query::Expr,
};
use strum::{AsRefStr, EnumString};

use crate::entities::job;
use crate::error::{Error, Result};
use crate::page::{self, Keyed, Page, PageRequest};
use crate::workflow::{Workflow, new_id};

/// The PostgreSQL channel on which instances tell each other that jobs were written (a
/// payload-less wake-up sent after the commit).
pub const CHANNEL: &str = "taxdesk_jobs";

#[derive(Debug, Clone, Copy, PartialEq, Eq, AsRefStr, EnumString)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum JobState {
    Pending,
    Running,
    Done,
    /// Gave up after the last attempt; the error is kept.
    Dead,
    Cancelled,
}

/// Built-in job kinds.
pub mod kind {
    /// Payload `{"workOrderId"}`: the order's deadline has come.
    pub const WORK_ORDER_DEADLINE: &str = "work_order.deadline";
    /// Payload `{"emailId"}`: deliver one outbox email.
    pub const EMAIL_DELIVER: &str = "email.deliver";
}

#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: String,
    pub payload: serde_json::Value,
    /// Scheduling the same key again does nothing.
    pub dedupe_key: String,
    pub run_at: DateTime<Utc>,
    pub max_attempts: i32,
}

impl NewJob {
    pub fn new(
        kind: &str,
        dedupe_key: String,
        run_at: DateTime<Utc>,
        payload: serde_json::Value,
    ) -> NewJob {
        NewJob {
            kind: kind.to_string(),
            payload,
            dedupe_key,
            run_at,
            max_attempts: 5,
        }
    }
}

impl Keyed for job::Model {
    fn key(&self) -> &str {
        &self.id
    }
}

/// Writes a job unless its dedupe key exists; returns whether it was written. On PostgreSQL
/// other instances are told on commit (NOTIFY is transactional).
pub async fn schedule(db: &impl ConnectionTrait, j: NewJob, now: DateTime<Utc>) -> Result<bool> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "INSERT INTO jobs (id, kind, payload, dedupe_key, run_at, state, attempts, max_attempts, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 'PENDING', 0, $6, $7, $7) ON CONFLICT (dedupe_key) DO NOTHING"
        }
        _ => {
            "INSERT INTO jobs (id, kind, payload, dedupe_key, run_at, state, attempts, max_attempts, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, 'PENDING', 0, ?, ?, ?) ON CONFLICT (dedupe_key) DO NOTHING"
        }
    };
    let mut values: Vec<sea_orm::Value> = vec![
        new_id().into(),
        j.kind.clone().into(),
        j.payload.to_string().into(),
        j.dedupe_key.clone().into(),
        j.run_at.into(),
        j.max_attempts.into(),
        now.into(),
    ];
    if backend != DbBackend::Postgres {
        values.push(now.into());
    }
    let res = db
        .execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    tracing::debug!(kind = %j.kind, key = %j.dedupe_key, run_at = %j.run_at, written = res.rows_affected() > 0, "job scheduled");
    Ok(res.rows_affected() > 0)
}

/// Cancels pending jobs whose dedupe key starts with `prefix` (e.g. every job of a booking).
pub async fn cancel(db: &impl ConnectionTrait, prefix: &str, now: DateTime<Utc>) -> Result<u64> {
    let res = job::Entity::update_many()
        .col_expr(
            job::Column::State,
            Expr::value(JobState::Cancelled.as_ref()),
        )
        .col_expr(job::Column::UpdatedAt, Expr::value(now))
        .col_expr(job::Column::FinishedAt, Expr::value(now))
        .filter(job::Column::DedupeKey.starts_with(prefix))
        .filter(job::Column::State.eq(JobState::Pending.as_ref()))
        .exec(db)
        .await?;
    Ok(res.rows_affected)
}

impl Workflow {
    /// Tells this process's scheduler, and on PostgreSQL the other instances', that jobs
    /// were written (call after commit; see `job_wake` for why never inside it).
    pub fn jobs_written(&self) {
        self.job_signal.notify_one();
        if let Some(w) = &self.job_wake {
            w.announce();
        }
    }

    /// Admins: jobs by state and kind, newest first.
    pub async fn jobs(
        &self,
        state: Option<JobState>,
        kind: Option<&str>,
        req: &PageRequest,
    ) -> Result<Page<job::Model>> {
        let mut q = job::Entity::find();
        if let Some(s) = state {
            q = q.filter(job::Column::State.eq(s.as_ref()));
        }
        if let Some(k) = kind {
            q = q.filter(job::Column::Kind.eq(k));
        }
        page::newest_first(self.reader(), q, job::Column::Id, req).await
    }

    /// Admins: runs a dead (or cancelled) job again now, with a fresh set of attempts.
    pub async fn retry_job(&self, id: &str) -> Result<job::Model> {
        let now = self.now();
        let res = job::Entity::update_many()
            .col_expr(job::Column::State, Expr::value(JobState::Pending.as_ref()))
            .col_expr(job::Column::Attempts, Expr::value(0))
            .col_expr(job::Column::RunAt, Expr::value(now))
            .col_expr(job::Column::LockedBy, Expr::value(Option::<String>::None))
            .col_expr(
                job::Column::LockedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(
                job::Column::FinishedAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(job::Column::UpdatedAt, Expr::value(now))
            .filter(job::Column::Id.eq(id))
            .filter(
                job::Column::State.is_in([JobState::Dead.as_ref(), JobState::Cancelled.as_ref()]),
            )
            .exec(&self.db)
            .await?;
        let row = job::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::not_found("job", id))?;
        if res.rows_affected == 0 {
            return Err(Error::Refused(crate::Refusal::new(
                crate::RefusalCode::InvalidTransition,
                format!("任务状态为 {}，只有失败或已取消的任务可以重试", row.state),
                format!(
                    "the job is {}; only DEAD or CANCELLED jobs can be retried",
                    row.state
                ),
            )));
        }
        tracing::info!(job.id = %id, kind = %row.kind, "job retried by an admin");
        self.jobs_written();
        Ok(row)
    }
}
