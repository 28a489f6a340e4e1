//! The worker loop: claim due jobs, run them, sleep until the next is due or a new one is
//! written (in-process signal, and PostgreSQL NOTIFY from other instances).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use futures_util::future::join_all;
use sea_orm::DbBackend;
use taxdesk_workflow::jobs::{CHANNEL, kind};
use taxdesk_workflow::{Workflow, metrics};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::backoff;
use crate::builtin::{EmailDelivery, PruneJobs, WorkOrderDeadline};
use crate::cron_plan::CronEntry;
use crate::handler::{Handler, Job, JobError};
use crate::mailer::{MailConfig, Mailer};
use crate::store::{Claimed, Store};

/// The recurring job that ranks hot questions.
pub const HOT_RANK: &str = "kb.hot_rank";

#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// How long a claim holds before another worker may take the job over.
    pub lease: Duration,
    pub batch: u64,
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// Longest sleep with nothing due: a safety net, not the way jobs are found.
    pub max_idle: StdDuration,
    /// Recurring jobs: (kind, cron expression).
    pub cron: Vec<(String, String)>,
    pub mail: MailConfig,
    /// How long finished jobs are kept before `jobs.prune` removes them.
    pub keep_finished: Duration,
}

impl SchedulerConfig {
    pub fn new(mail: MailConfig) -> SchedulerConfig {
        SchedulerConfig {
            lease: Duration::seconds(60),
            batch: 64,
            retry_base: Duration::seconds(2),
            retry_cap: Duration::hours(1),
            max_idle: StdDuration::from_secs(60),
            cron: vec![("jobs.prune".into(), "0 30 3 * * *".into())],
            mail,
            keep_finished: Duration::days(30),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("scheduler configuration: {0}")]
    Config(String),
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
}

struct Inner {
    workflow: Workflow,
    store: Arc<Store>,
    handlers: HashMap<String, Arc<dyn Handler>>,
    cron: HashMap<String, CronEntry>,
    config: SchedulerConfig,
    worker_id: String,
    wake: Arc<Notify>,
    /// When the job gauges were last counted.
    gauges_at: std::sync::Mutex<Option<std::time::Instant>>,
}

/// One worker. Several may run in one process or across instances on one database.
pub struct Scheduler {
    inner: Arc<Inner>,
}

/// Stops a started scheduler.
pub struct Stopper {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Stopper {
    /// Stops at once without waiting (the process, or a test, is going away).
    pub fn abort(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            t.abort();
        }
    }

    /// Stops claiming, lets the current batch finish.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            if tokio::time::timeout(StdDuration::from_secs(30), t)
                .await
                .is_err()
            {
                tracing::warn!("scheduler did not stop within 30 s");
            }
        }
    }
}

impl Scheduler {
    /// A worker with the built-in job kinds and the configured cron entries.
    pub fn new(workflow: Workflow, config: SchedulerConfig) -> Result<Scheduler, SchedulerError> {
        let store = Arc::new(Store {
            db: workflow.db().clone(),
        });
        let mailer = Arc::new(Mailer::new(&config.mail).map_err(SchedulerError::Config)?);
        tracing::info!(delivery = %mailer.describe(), "email outbox");
        let mut handlers: HashMap<String, Arc<dyn Handler>> = HashMap::new();
        handlers.insert(
            kind::WORK_ORDER_DEADLINE.into(),
            Arc::new(WorkOrderDeadline(workflow.clone())),
        );
        handlers.insert(
            kind::EMAIL_DELIVER.into(),
            Arc::new(EmailDelivery {
                workflow: workflow.clone(),
                mailer,
            }),
        );
        handlers.insert(
            "jobs.prune".into(),
            Arc::new(PruneJobs {
                store: store.clone(),
                workflow: workflow.clone(),
                keep: config.keep_finished,
            }),
        );
        let mut cron = HashMap::new();
        for (k, expr) in &config.cron {
            cron.insert(
                k.clone(),
                CronEntry::parse(k, expr).map_err(SchedulerError::Config)?,
            );
        }
        let worker_id = format!(
            "{}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        Ok(Scheduler {
            inner: Arc::new(Inner {
                wake: workflow.job_signal(),
                gauges_at: std::sync::Mutex::new(None),
                workflow,
                store,
                handlers,
                cron,
                config,
                worker_id,
            }),
        })
    }

    fn inner_mut(&mut self) -> &mut Inner {
        Arc::get_mut(&mut self.inner).expect("configured before it is started or shared")
    }

    /// Adds (or replaces) the handler of a job kind.
    pub fn register(&mut self, kind: &str, handler: impl Handler) -> &mut Self {
        self.inner_mut()
            .handlers
            .insert(kind.to_string(), Arc::new(handler));
        self
    }

    /// Runs the chat timers (queue and idle time-outs, unanswered chats) of `chat`.
    pub fn with_chat(&mut self, chat: taxdesk_chat::Chat) -> &mut Self {
        for kind in taxdesk_chat::timer::ALL {
            self.register(kind, crate::builtin::ChatTimer(chat.clone()));
        }
        self.register(
            taxdesk_chat::channel::call::EXPIRE_JOB_KIND,
            crate::builtin::CallExpiry(chat.clone()),
        );
        self.register(HOT_RANK, crate::builtin::HotRank(chat.clone()));
        {
            use taxdesk_workflow::booking::service::kind;
            for k in [kind::REMINDER, kind::START, kind::EXPIRE, kind::NO_SHOW] {
                self.register(k, crate::builtin::BookingJob(chat.clone()));
            }
        }
        self
    }

    /// Adds a recurring job; its kind needs a handler.
    pub fn add_cron(&mut self, kind: &str, expr: &str) -> Result<&mut Self, SchedulerError> {
        let entry = CronEntry::parse(kind, expr).map_err(SchedulerError::Config)?;
        self.inner_mut().cron.insert(kind.to_string(), entry);
        Ok(self)
    }

    /// Uses another lease (tests shorten it).
    /// How many due jobs one claim takes at most.
    pub fn set_batch(&mut self, batch: u64) -> &mut Self {
        self.inner_mut().config.batch = batch.max(1);
        self
    }

    pub fn set_lease(&mut self, lease: Duration) -> &mut Self {
        self.inner_mut().config.lease = lease;
        self
    }

    pub fn worker_id(&self) -> &str {
        &self.inner.worker_id
    }

    /// Claims due jobs without running them (a worker that then dies, in tests).
    pub async fn claim(&self) -> Result<Vec<Claimed>, SchedulerError> {
        let i = &self.inner;
        Ok(i.store
            .claim(
                &i.worker_id,
                i.workflow.now(),
                i.config.lease,
                i.config.batch,
            )
            .await?)
    }

    /// Completes a claimed job; false if its lease was lost to another worker.
    pub async fn complete(&self, c: &Claimed) -> Result<bool, SchedulerError> {
        Ok(self.complete_all(std::slice::from_ref(c)).await? == 1)
    }

    /// Completes claimed jobs in one statement, each only while its lease is still ours;
    /// returns how many were completed.
    pub async fn complete_all(&self, cs: &[Claimed]) -> Result<u64, SchedulerError> {
        let now = self.inner.workflow.now();
        Ok(self.inner.store.complete_many(cs, now).await?)
    }

    /// Claims one batch and runs it; returns how many jobs ran.
    pub async fn tick(&self) -> Result<usize, SchedulerError> {
        self.inner.tick().await
    }

    /// Runs the worker loop (and, on PostgreSQL, the NOTIFY listener) until stopped.
    pub fn start(self) -> Stopper {
        let (stop, rx) = watch::channel(false);
        let inner = self.inner;
        let mut tasks = vec![];
        if inner.workflow.db().get_database_backend() == DbBackend::Postgres {
            tasks.push(tokio::spawn(listen(inner.clone(), rx.clone())));
        }
        let span = tracing::info_span!("scheduler", worker = %inner.worker_id);
        tasks.push(tokio::spawn(run_loop(inner, rx).instrument(span)));
        Stopper { stop, tasks }
    }
}

impl Inner {
    async fn plan_cron(&self, after: DateTime<Utc>) {
        for entry in self.cron.values() {
            if let Err(e) = entry.plan(&self.workflow, after).await {
                tracing::error!(kind = %entry.kind, error = %e, "planning a cron tick");
            }
        }
    }

    async fn tick(&self) -> Result<usize, SchedulerError> {
        let now = self.workflow.now();
        let buried = self.store.bury_expired(now).await?;
        if buried > 0 {
            tracing::warn!(
                jobs = buried,
                "jobs dead after their last attempt's lease expired"
            );
        }
        let claimed = self
            .store
            .claim(&self.worker_id, now, self.config.lease, self.config.batch)
            .await?;
        let n = claimed.len();
        let done: Vec<Claimed> = join_all(claimed.into_iter().map(|c| self.run(c)))
            .await
            .into_iter()
            .flatten()
            .collect();
        // One statement for the batch's successes: at 10,000 due jobs this is most of the work.
        match self.store.complete_many(&done, self.workflow.now()).await {
            Ok(completed) if completed as usize == done.len() => {
                tracing::debug!(jobs = completed, "jobs finished")
            }
            Ok(completed) => tracing::warn!(
                jobs = done.len(),
                completed,
                "some jobs finished after their lease was taken over; their results discarded"
            ),
            Err(e) => tracing::error!(error = %e, jobs = done.len(), "recording finished jobs"),
        }
        self.update_gauges().await;
        Ok(n)
    }

    /// The job gauges, at most once a second (counting is a scan of the table).
    async fn update_gauges(&self) {
        {
            let mut last = self.gauges_at.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|t| t.elapsed() < StdDuration::from_secs(1)) {
                return;
            }
            *last = Some(std::time::Instant::now());
        }
        if let Ok(counts) = self.store.counts(self.workflow.now()).await {
            for state in ["DUE", "RUNNING", "DEAD"] {
                let v = counts
                    .iter()
                    .find(|(s, _)| s == state)
                    .map(|(_, n)| *n)
                    .unwrap_or(0);
                metrics::set_gauge("taxdesk_jobs", &[("state", state)], v as f64);
            }
        }
    }

    /// Runs one claimed job; a failure is recorded at once under its lease, a success is
    /// handed back for the batch's one completing statement.
    async fn run(&self, c: Claimed) -> Option<Claimed> {
        let row = &c.row;
        let span =
            tracing::info_span!("job", job.id = %row.id, kind = %row.kind, attempt = row.attempts);
        async {
            let started = self.workflow.now();
            let late = (started - row.run_at).num_milliseconds().max(0) as f64 / 1000.0;
            metrics::observe("taxdesk_job_lateness_seconds", late);
            let job = Job {
                id: row.id.clone(),
                kind: row.kind.clone(),
                payload: serde_json::from_str(&row.payload).unwrap_or(serde_json::Value::Null),
                dedupe_key: row.dedupe_key.clone(),
                run_at: row.run_at,
                attempt: row.attempts,
                max_attempts: row.max_attempts,
            };
            // A recurring job plans its next tick first, so a failing run does not end the series.
            if let Some(entry) = job.payload.get("cron").and_then(|c| c.as_str()).and_then(|k| self.cron.get(k)) {
                let after = started.max(row.run_at);
                if let Err(e) = entry.plan(&self.workflow, after).await {
                    tracing::error!(error = %e, "planning the next cron tick");
                }
            }
            let outcome = match self.handlers.get(&row.kind) {
                Some(h) => {
                    let limit = self.config.lease.to_std().unwrap_or(StdDuration::from_secs(60));
                    match tokio::time::timeout(limit, h.run(&job)).await {
                        Ok(r) => r,
                        Err(_) => Err(JobError::retry("timed out: the lease ran out")),
                    }
                }
                None => Err(JobError::permanent(format!("no handler for job kind {:?}", row.kind))),
            };
            metrics::inc("taxdesk_jobs_run_total", &[("kind", &row.kind)]);
            let now = self.workflow.now();
            let recorded = match &outcome {
                Ok(()) => return true,
                Err(e) => {
                    metrics::inc("taxdesk_jobs_failed_total", &[("kind", &row.kind)]);
                    let retry_at = (!e.permanent && !job.is_last_attempt()).then(|| {
                        now + backoff::delay(row.attempts, self.config.retry_base, self.config.retry_cap)
                    });
                    match retry_at {
                        Some(at) => tracing::warn!(error = %e.message, retry_at = %at, "job failed; will retry"),
                        None => tracing::error!(error = %e.message, "job failed for good (DEAD)"),
                    }
                    self.store.fail(&c, &e.message, retry_at, now).await
                }
            };
            match recorded {
                Ok(true) => tracing::debug!("job failure recorded"),
                Ok(false) => tracing::warn!("job failed after its lease was taken over; result discarded"),
                Err(e) => tracing::error!(error = %e, "recording a job's outcome"),
            }
            false
        }
        .instrument(span)
        .await
        .then_some(c)
    }
}

async fn run_loop(inner: Arc<Inner>, mut stop: watch::Receiver<bool>) {
    tracing::info!("scheduler started");
    inner.plan_cron(inner.workflow.now()).await;
    while !*stop.borrow() {
        match inner.tick().await {
            Ok(n) if n > 0 => continue,
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %e, "scheduler tick failed; retrying in 1 s");
                tokio::select! {
                    _ = tokio::time::sleep(StdDuration::from_secs(1)) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
        }
        let now = inner.workflow.now();
        let wait = match inner.store.next_wake().await {
            Ok(Some(at)) => (at - now)
                .to_std()
                // Due but not claimable (another instance holds it): look again shortly.
                .unwrap_or(StdDuration::from_millis(20))
                .max(StdDuration::from_millis(1)),
            Ok(None) => inner.config.max_idle,
            Err(e) => {
                tracing::error!(error = %e, "reading the next due time");
                StdDuration::from_secs(1)
            }
        }
        .min(inner.config.max_idle);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = inner.wake.notified() => {}
            _ = stop.changed() => {}
        }
    }
    tracing::info!("scheduler stopped");
}

/// PostgreSQL: wakes this instance when another writes a job. A lost connection is
/// re-established, and the worker looks at the table again in case it missed something.
async fn listen(inner: Arc<Inner>, mut stop: watch::Receiver<bool>) {
    let pool = inner.workflow.db().get_postgres_connection_pool().clone();
    while !*stop.borrow() {
        let mut listener = match sea_orm::sqlx::postgres::PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "job listener: connecting; retrying in 1 s");
                tokio::select! {
                    _ = tokio::time::sleep(StdDuration::from_secs(1)) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::warn!(error = %e, "job listener: LISTEN failed");
            continue;
        }
        inner.wake.notify_one();
        loop {
            tokio::select! {
                n = listener.try_recv() => match n {
                    Ok(Some(_)) => inner.wake.notify_one(),
                    Ok(None) => {
                        tracing::warn!("job listener: connection lost; reconnecting");
                        inner.wake.notify_one();
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "job listener failed; reconnecting");
                        break;
                    }
                },
                _ = stop.changed() => return,
            }
        }
    }
}
