//! `scheduler`: N jobs due in the same second — time to drain and lateness — on SQLite with
//! one instance and on PostgreSQL with three instances (schedulers with their own connection
//! pools, woken by NOTIFY) where every run is counted per job id; then a lone due job's
//! lateness, many times over. Jobs are real rows claimed by the real `Scheduler`; only the
//! handler is the benchmark's (it counts and timestamps, and does nothing else).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use async_trait::async_trait;
use chrono::Utc;
use hdrhistogram::Histogram;
use sea_orm::{ConnectionTrait, Statement, TransactionTrait};
use serde_json::json;
use taxdesk_scheduler::{Handler, Job, JobError, MailConfig, Scheduler, SchedulerConfig, Stopper};
use taxdesk_workflow::jobs::{self, NewJob};
use taxdesk_workflow::{Workflow, WorkflowConfig};
use tokio::sync::Notify;

use crate::load;
use crate::pg::Pg;
use crate::report::{Check, Column, ScenarioReport};

pub const NAME: &str = "scheduler";
const KIND: &str = "bench.count";
/// The bulk jobs fall due this long after the run starts writing them (all in one second).
const LEAD: Duration = Duration::from_secs(5);
const DRAIN_TIMEOUT: Duration = Duration::from_secs(180);

pub struct Options {
    pub jobs: usize,
    /// Lone due jobs, one after another.
    pub lone: usize,
    /// Scheduler instances on the one PostgreSQL database.
    pub instances: usize,
}

#[derive(Default)]
struct Tally {
    runs: HashMap<String, u32>,
    bulk: Option<Histogram<u64>>,
    lone: Option<Histogram<u64>>,
    last_run: Option<Instant>,
}

/// Counts every run by job id and records its lateness (start of the run − `run_at`).
#[derive(Clone)]
struct Counter {
    tally: Arc<Mutex<Tally>>,
    ran: Arc<Notify>,
}

#[async_trait]
impl Handler for Counter {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        let late = (Utc::now() - job.run_at).to_std().unwrap_or_default();
        {
            let mut t = self.tally.lock().unwrap_or_else(|e| e.into_inner());
            *t.runs.entry(job.id.clone()).or_default() += 1;
            let h = if job.payload.get("lone").is_some() {
                &mut t.lone
            } else {
                &mut t.bulk
            };
            if let Some(h) = h {
                load::record(h, late);
            }
            t.last_run = Some(Instant::now());
        }
        self.ran.notify_waiters();
        Ok(())
    }
}

impl Counter {
    fn new() -> anyhow::Result<Counter> {
        Ok(Counter {
            tally: Arc::new(Mutex::new(Tally {
                bulk: Some(load::histogram()?),
                lone: Some(load::histogram()?),
                ..Tally::default()
            })),
            ran: Arc::new(Notify::new()),
        })
    }

    fn runs(&self) -> (usize, u64) {
        let t = self.tally.lock().unwrap_or_else(|e| e.into_inner());
        (t.runs.len(), t.runs.values().map(|&n| u64::from(n)).sum())
    }
}

pub async fn run(opts: &Options, pg: &Pg) -> anyhow::Result<ScenarioReport> {
    let mut report = ScenarioReport::new(
        NAME,
        "due jobs: drain time, lateness, exactly-once across instances",
        format!(
            "{n} jobs are written (one transaction) with the same `run_at`, {lead} s ahead; the \
             real `Scheduler` (default batch and lease) claims and runs them with a counting \
             handler. Drain: from `run_at` until every job is DONE in the table (polled every \
             20 ms); jobs/s = {n} ÷ drain. Lateness: handler start − `run_at` (HdrHistogram). \
             SQLite: one instance (its only mode). PostgreSQL: {i} instances, each its own \
             `Workflow` and connection pool, woken by LISTEN/NOTIFY, every run counted per job \
             id. Then {lone} lone jobs one after another, each due ~200 ms after it is written \
             (by instance 1), lateness likewise.",
            n = opts.jobs,
            lead = LEAD.as_secs(),
            i = opts.instances,
            lone = opts.lone
        ),
        vec![
            Column::int("database", "database"),
            Column::int("instances", "instances"),
            Column::int("jobs", "jobs"),
            Column::float("drain_seconds", "drain s", 2),
            Column::float("jobs_per_second", "jobs/s", 0),
            Column::float("p50_ms", "lateness p50 ms", 1),
            Column::float("p99_ms", "lateness p99 ms", 1),
            Column::int("runs", "runs"),
            Column::int("duplicates", "duplicates"),
            Column::int("missing", "missing"),
            Column::float("lone_p50_ms", "lone p50 ms", 1),
            Column::float("lone_p99_ms", "lone p99 ms", 1),
        ],
    );

    eprintln!("scheduler: SQLite, 1 instance, {} jobs", opts.jobs);
    let dir = std::env::temp_dir().join(format!(
        "taxdesk-bench-sched-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    ));
    std::fs::create_dir_all(&dir)?;
    let url = format!("sqlite://{}/sched.db", dir.display());
    let sqlite = one_database(&url, 1, opts, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    let sqlite = sqlite?;
    report.rows.push(sqlite.row("SQLite", 1, opts.jobs));

    let n = opts.jobs;
    let pg_result = match pg.check().await {
        Err(why) => Err(why),
        Ok(()) => {
            eprintln!(
                "scheduler: PostgreSQL, {} instances, {n} jobs",
                opts.instances
            );
            let db = pg.create_db("sched").await?;
            let dir = std::env::temp_dir().join("taxdesk-bench-sched-pg");
            let r = one_database(&db.url, opts.instances, opts, &dir).await;
            db.drop_db().await;
            let _ = std::fs::remove_dir_all(&dir);
            Ok(r?)
        }
    };
    let tgt_rate = format!("{n} due jobs drained, jobs/s");
    match &pg_result {
        Ok(pgr) => {
            report.rows.push(pgr.row("PostgreSQL", opts.instances, n));
            report.checks.push(Check::at_least(
                &format!("{tgt_rate} (PostgreSQL ×{})", opts.instances),
                pgr.rate(n),
                "jobs/s",
                2000.0,
            ));
            report.checks.push(Check::at_most(
                &format!(
                    "{n} due jobs, lateness p99 (PostgreSQL ×{})",
                    opts.instances
                ),
                load::ms(&pgr.bulk, 0.99) / 1000.0,
                "s",
                1.0,
            ));
            report.checks.push(Check::at_most(
                &format!("duplicate runs across {} instances", opts.instances),
                pgr.duplicates as f64,
                "runs",
                0.0,
            ));
            if pgr.missing > 0 {
                report.notes.push(format!(
                    "PostgreSQL: {} jobs never ran within {} s",
                    pgr.missing,
                    DRAIN_TIMEOUT.as_secs()
                ));
            }
            report.checks.push(Check::at_most(
                &format!("lone due job lateness p99 (PostgreSQL ×{})", opts.instances),
                load::ms(&pgr.lone, 0.99),
                "ms",
                50.0,
            ));
        }
        Err(why) => {
            report.notes.push(format!("PostgreSQL: skipped: {why}"));
            report.checks.push(Check::skipped(
                "due jobs on PostgreSQL ×3",
                "≥ 2000 jobs/s, p99 ≤ 1 s, 0 duplicates",
                why,
            ));
        }
    }
    report.checks.push(Check::at_least(
        &format!("{tgt_rate} (SQLite ×1)"),
        sqlite.rate(n),
        "jobs/s",
        2000.0,
    ));
    report.checks.push(Check::at_most(
        &format!("{n} due jobs, lateness p99 (SQLite ×1)"),
        load::ms(&sqlite.bulk, 0.99) / 1000.0,
        "s",
        1.0,
    ));
    report.checks.push(Check::at_most(
        "lone due job lateness p99 (SQLite ×1)",
        load::ms(&sqlite.lone, 0.99),
        "ms",
        50.0,
    ));
    if sqlite.missing > 0 {
        report.notes.push(format!(
            "SQLite: {} jobs never ran within {} s",
            sqlite.missing,
            DRAIN_TIMEOUT.as_secs()
        ));
    }
    Ok(report)
}

struct Outcome {
    drain: Duration,
    bulk: Histogram<u64>,
    lone: Histogram<u64>,
    runs: u64,
    duplicates: u64,
    missing: u64,
}

impl Outcome {
    fn rate(&self, n: usize) -> f64 {
        n as f64 / self.drain.as_secs_f64().max(1e-9)
    }

    fn row(&self, database: &str, instances: usize, n: usize) -> serde_json::Value {
        let mut row = load::quantiles(&self.bulk);
        let lone = load::quantiles(&self.lone);
        row["database"] = json!(database);
        row["instances"] = json!(instances);
        row["jobs"] = json!(n);
        row["drain_seconds"] = json!(self.drain.as_secs_f64());
        row["jobs_per_second"] = json!(self.rate(n));
        row["runs"] = json!(self.runs);
        row["duplicates"] = json!(self.duplicates);
        row["missing"] = json!(self.missing);
        row["lone_p50_ms"] = lone["p50_ms"].clone();
        row["lone_p99_ms"] = lone["p99_ms"].clone();
        row["lone_max_ms"] = lone["max_ms"].clone();
        row
    }
}

async fn one_database(
    url: &str,
    instances: usize,
    opts: &Options,
    dir: &std::path::Path,
) -> anyhow::Result<Outcome> {
    let counter = Counter::new()?;
    let mut workflows = vec![];
    let mut stoppers: Vec<Stopper> = vec![];
    for i in 0..instances {
        let db = taxdesk::db::connect(url).await?;
        if i == 0 {
            taxdesk::db::migrate(&db).await?;
        }
        let wf = Workflow::new(db, WorkflowConfig::default());
        let mut s = Scheduler::new(
            wf.clone(),
            SchedulerConfig::new(MailConfig {
                smtp_url: None,
                outbox_dir: dir.join("outbox"),
                from: "bench <bench@example.invalid>".into(),
            }),
        )?;
        s.register(KIND, counter.clone());
        stoppers.push(s.start());
        workflows.push(wf);
    }
    let r = measure(&workflows[0], &counter, opts).await;
    for s in stoppers {
        s.stop().await;
    }
    for wf in workflows {
        let _ = wf.db().clone().close().await;
    }
    r
}

async fn measure(wf: &Workflow, counter: &Counter, opts: &Options) -> anyhow::Result<Outcome> {
    let n = opts.jobs;
    let written = Instant::now();
    let run_at = Utc::now() + chrono::Duration::from_std(LEAD)?;
    // Whole-second due time: "due in the same second".
    let run_at = run_at
        .with_nanosecond_zero()
        .ok_or_else(|| anyhow!("due time"))?;
    let txn = wf.db().begin().await?;
    for i in 0..n {
        let job = NewJob::new(
            KIND,
            format!("bench:{i}:{}", run_at.timestamp()),
            run_at,
            json!({"n": i}),
        );
        jobs::schedule(&txn, job, Utc::now()).await?;
    }
    txn.commit().await?;
    wf.jobs_written();
    let write_time = written.elapsed();
    if Utc::now() >= run_at {
        eprintln!(
            "scheduler:   writing {n} jobs took {:.1} s, past their due time",
            write_time.as_secs_f64()
        );
    }
    let due = Instant::now() + (run_at - Utc::now()).to_std().unwrap_or_default();

    // Drained when no bench job is left undone in the table.
    let backend = wf.db().get_database_backend();
    let left_sql = format!("SELECT COUNT(*) FROM jobs WHERE kind = '{KIND}' AND state <> 'DONE'");
    let deadline = due + DRAIN_TIMEOUT;
    let drained_at = loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let left: i64 = wf
            .db()
            .query_one_raw(Statement::from_string(backend, left_sql.clone()))
            .await?
            .context("count")?
            .try_get_by_index(0)?;
        if left == 0 {
            break Instant::now();
        }
        if Instant::now() > deadline {
            eprintln!(
                "scheduler:   {left} jobs still not done after {} s",
                DRAIN_TIMEOUT.as_secs()
            );
            break Instant::now();
        }
    };
    let drain = drained_at.saturating_duration_since(due);
    let (distinct, runs) = counter.runs();

    // Lone jobs: each due 200 ms (plus a little jitter) after it is written.
    for i in 0..opts.lone {
        let before = counter.runs().1;
        let at = Utc::now() + chrono::Duration::milliseconds(200 + (i as i64 * 7) % 50);
        let txn = wf.db().begin().await?;
        jobs::schedule(
            &txn,
            NewJob::new(
                KIND,
                format!("bench-lone:{i}:{}", at.timestamp_micros()),
                at,
                json!({"lone": true}),
            ),
            Utc::now(),
        )
        .await?;
        txn.commit().await?;
        wf.jobs_written();
        let waited = tokio::time::timeout(Duration::from_secs(10), async {
            while counter.runs().1 == before {
                let notified = counter.ran.notified();
                if counter.runs().1 != before {
                    break;
                }
                notified.await;
            }
        })
        .await;
        if waited.is_err() {
            bail!("lone job {i} did not run within 10 s");
        }
        // Let its completion land before the next one.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let t = counter.tally.lock().unwrap_or_else(|e| e.into_inner());
    Ok(Outcome {
        drain,
        bulk: t.bulk.clone().context("histogram")?,
        lone: t.lone.clone().context("histogram")?,
        runs,
        duplicates: runs - distinct as u64,
        missing: (n as u64).saturating_sub(distinct as u64),
    })
}

trait WholeSecond: Sized {
    fn with_nanosecond_zero(self) -> Option<Self>;
}

impl WholeSecond for chrono::DateTime<Utc> {
    fn with_nanosecond_zero(self) -> Option<Self> {
        chrono::Timelike::with_nanosecond(&self, 0)
    }
}
