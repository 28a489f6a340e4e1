//! The job table's claim protocol. A claim sets a lease (`locked_by`, `locked_until`) and
//! bumps `attempts`; completing or failing is a conditional update on that same lease and
//! attempt, so a worker whose lease expired (and whose job was re-claimed) cannot finish it.

use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, FromQueryResult, Statement, Value,
};
use taxdesk_workflow::entities::job;

/// Statements are written with `$1`-style parameters; SQLite reads them as `?1`.
fn stmt(backend: DbBackend, sql: &str, values: Vec<Value>) -> Statement {
    let sql = match backend {
        DbBackend::Postgres => sql.to_string(),
        _ => sql.replace('$', "?"),
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// A job this worker holds, with the attempt its lease is for.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub row: job::Model,
    pub worker: String,
}

pub(crate) struct Store {
    pub db: DatabaseConnection,
}

impl Store {
    fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    /// Jobs whose last attempt's lease ran out are dead, not re-run.
    pub async fn bury_expired(&self, now: DateTime<Utc>) -> Result<u64, DbErr> {
        let r = self
            .db
            .execute_raw(stmt(
                self.backend(),
                "UPDATE jobs SET state = 'DEAD', last_error = 'the lease of its last attempt expired', \
                 finished_at = $1, updated_at = $1, locked_by = NULL, locked_until = NULL \
                 WHERE state = 'RUNNING' AND locked_until < $1 AND attempts >= max_attempts",
                vec![now.into()],
            ))
            .await?;
        Ok(r.rows_affected())
    }

    /// Claims up to `limit` due jobs (pending and due, or running with an expired lease).
    pub async fn claim(
        &self,
        worker: &str,
        now: DateTime<Utc>,
        lease: chrono::Duration,
        limit: u64,
    ) -> Result<Vec<Claimed>, DbErr> {
        let lock = match self.backend() {
            // Other instances skip what this one is claiming instead of waiting for it.
            DbBackend::Postgres => "FOR UPDATE SKIP LOCKED",
            // SQLite: one writer at a time, so the statement is the claim.
            _ => "",
        };
        let sql = format!(
            "UPDATE jobs SET state = 'RUNNING', locked_by = $1, locked_until = $2, \
             attempts = attempts + 1, started_at = $3, updated_at = $3 \
             WHERE id IN (SELECT id FROM jobs WHERE (state = 'PENDING' AND run_at <= $3) \
               OR (state = 'RUNNING' AND locked_until < $3 AND attempts < max_attempts) \
               ORDER BY run_at LIMIT $4 {lock}) \
             RETURNING *"
        );
        let rows = self
            .db
            .query_all_raw(stmt(
                self.backend(),
                &sql,
                vec![
                    worker.into(),
                    (now + lease).into(),
                    now.into(),
                    (limit as i64).into(),
                ],
            ))
            .await?;
        rows.iter()
            .map(|r| {
                job::Model::from_query_result(r, "").map(|row| Claimed {
                    row,
                    worker: worker.to_string(),
                })
            })
            .collect()
    }

    /// Marks a batch held by one worker DONE, in one statement, each row only while still on
    /// its own lease and attempt (a worker whose job was taken over cannot finish it);
    /// returns how many were completed.
    pub async fn complete_many(&self, done: &[Claimed], now: DateTime<Utc>) -> Result<u64, DbErr> {
        let Some(first) = done.first() else {
            return Ok(0);
        };
        let mut values: Vec<Value> = vec![now.into(), first.worker.clone().into()];
        let mut pairs = Vec::with_capacity(done.len());
        for c in done {
            let n = values.len();
            pairs.push(format!("(${}, ${})", n + 1, n + 2));
            values.push(c.row.id.clone().into());
            values.push(c.row.attempts.into());
        }
        let sql = format!(
            "UPDATE jobs SET state = 'DONE', finished_at = $1, updated_at = $1, \
             locked_by = NULL, locked_until = NULL, last_error = NULL \
             WHERE state = 'RUNNING' AND locked_by = $2 AND (id, attempts) IN (VALUES {})",
            pairs.join(", ")
        );
        let r = self
            .db
            .execute_raw(stmt(self.backend(), &sql, values))
            .await?;
        Ok(r.rows_affected())
    }

    /// Back to PENDING at `retry_at`, or DEAD when `retry_at` is None; only with our lease.
    pub async fn fail(
        &self,
        c: &Claimed,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<bool, DbErr> {
        let error: String = error.chars().take(2000).collect();
        let r = match retry_at {
            Some(at) => {
                self.db
                    .execute_raw(stmt(
                        self.backend(),
                        "UPDATE jobs SET state = 'PENDING', run_at = $1, last_error = $2, updated_at = $3, \
                         locked_by = NULL, locked_until = NULL \
                         WHERE id = $4 AND state = 'RUNNING' AND locked_by = $5 AND attempts = $6",
                        vec![
                            at.into(),
                            error.into(),
                            now.into(),
                            c.row.id.clone().into(),
                            c.worker.clone().into(),
                            c.row.attempts.into(),
                        ],
                    ))
                    .await?
            }
            None => {
                self.db
                    .execute_raw(stmt(
                        self.backend(),
                        "UPDATE jobs SET state = 'DEAD', last_error = $1, finished_at = $2, updated_at = $2, \
                         locked_by = NULL, locked_until = NULL \
                         WHERE id = $3 AND state = 'RUNNING' AND locked_by = $4 AND attempts = $5",
                        vec![
                            error.into(),
                            now.into(),
                            c.row.id.clone().into(),
                            c.worker.clone().into(),
                            c.row.attempts.into(),
                        ],
                    ))
                    .await?
            }
        };
        Ok(r.rows_affected() == 1)
    }

    /// When the next job falls due or the next lease runs out, whichever is first.
    pub async fn next_wake(&self) -> Result<Option<DateTime<Utc>>, DbErr> {
        #[derive(FromQueryResult)]
        struct At {
            at: Option<DateTime<Utc>>,
        }
        let pending = At::find_by_statement(stmt(
            self.backend(),
            "SELECT run_at AS at FROM jobs WHERE state = 'PENDING' ORDER BY run_at LIMIT 1",
            vec![],
        ))
        .one(&self.db)
        .await?
        .and_then(|a| a.at);
        let leased = At::find_by_statement(stmt(
            self.backend(),
            "SELECT locked_until AS at FROM jobs WHERE state = 'RUNNING' ORDER BY locked_until LIMIT 1",
            vec![],
        ))
        .one(&self.db)
        .await?
        .and_then(|a| a.at);
        Ok(match (pending, leased) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    /// Counts by state, for the gauges.
    pub async fn counts(&self, now: DateTime<Utc>) -> Result<Vec<(String, i64)>, DbErr> {
        #[derive(FromQueryResult)]
        struct Count {
            state: String,
            n: i64,
        }
        let mut out: Vec<(String, i64)> = Count::find_by_statement(stmt(
            self.backend(),
            "SELECT state, COUNT(*) AS n FROM jobs WHERE state IN ('RUNNING', 'DEAD') GROUP BY state",
            vec![],
        ))
        .all(&self.db)
        .await?
        .into_iter()
        .map(|c| (c.state, c.n))
        .collect();
        let due = Count::find_by_statement(stmt(
            self.backend(),
            "SELECT 'DUE' AS state, COUNT(*) AS n FROM jobs WHERE state = 'PENDING' AND run_at <= $1",
            vec![now.into()],
        ))
        .one(&self.db)
        .await?;
        out.extend(due.map(|c| (c.state, c.n)));
        Ok(out)
    }

    /// Removes finished jobs older than `before` (jobs are machinery, not user data).
    pub async fn prune(&self, before: DateTime<Utc>) -> Result<u64, DbErr> {
        let r = self
            .db
            .execute_raw(stmt(
                self.backend(),
                "DELETE FROM jobs WHERE state IN ('DONE', 'CANCELLED') AND finished_at < $1",
                vec![before.into()],
            ))
            .await?;
        Ok(r.rows_affected())
    }
}
