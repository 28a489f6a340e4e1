//! Waking the other instances' schedulers when jobs were written (PostgreSQL).
//!
//! The wake-up is a payload-less `NOTIFY` on [`crate::jobs::CHANNEL`] sent after the commit
//! and coalesced (at most one per [`COALESCE`]), never inside the writing transaction: a
//! transaction with a pending NOTIFY takes a cluster-wide lock at commit to keep the queue in
//! order (PostgreSQL's `async.c`), which would serialise every job-writing commit — every
//! hand-over, booking and work order. A listener only needs to know "look again"; the jobs
//! themselves are read from the table. A wake-up lost in a crash costs at most the other
//! schedulers' idle sweep.

use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use tokio::sync::Notify;

use crate::jobs::CHANNEL;

/// Wake-ups signalled within this window after one was sent go out as one.
const COALESCE: Duration = Duration::from_millis(20);
/// How often an idle announcer checks whether its workflow is gone.
const IDLE_CHECK: Duration = Duration::from_secs(1);

pub(crate) struct JobWake {
    db: DatabaseConnection,
    signal: Notify,
    started: OnceLock<()>,
}

impl JobWake {
    /// `None` unless the database is PostgreSQL (one process: the in-process signal is enough).
    pub(crate) fn new(db: &DatabaseConnection) -> Option<Arc<JobWake>> {
        (db.get_database_backend() == DbBackend::Postgres).then(|| {
            Arc::new(JobWake {
                db: db.clone(),
                signal: Notify::new(),
                started: OnceLock::new(),
            })
        })
    }

    /// Asks for one wake-up of the other instances; returns at once. The announcing task is
    /// started on first use (inside the runtime) and ends once every handle is dropped.
    pub(crate) fn announce(self: &Arc<Self>) {
        self.started.get_or_init(|| {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(run(Arc::downgrade(self)));
            }
        });
        self.signal.notify_one();
    }
}

async fn run(wake: Weak<JobWake>) {
    loop {
        let Some(w) = wake.upgrade() else { return };
        if tokio::time::timeout(IDLE_CHECK, w.signal.notified())
            .await
            .is_ok()
        {
            let sent =
                w.db.execute_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT pg_notify($1, '')",
                    [CHANNEL.into()],
                ))
                .await;
            if let Err(e) = sent {
                // The other schedulers find the jobs at their next idle sweep.
                tracing::warn!(error = %e, "job wake-up NOTIFY failed");
            }
            drop(w);
            tokio::time::sleep(COALESCE).await;
        }
    }
}
