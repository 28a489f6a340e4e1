//! The scheduler: timely wake-ups, leases, exactly-once across workers, retries, cron, email
//! and work-order deadlines.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement, TransactionTrait};
use serde_json::json;
use taxdesk_scheduler::{Handler, Job, JobError, MailConfig, Scheduler, SchedulerConfig};
use taxdesk_workflow::jobs::{self, NewJob};
use taxdesk_workflow::{Workflow, WorkflowConfig};

use crate::helpers::TestApp;
use crate::smtp::FakeSmtp;
use crate::work_orders::create;

/// A job's dedupe key and when it ran.
type Run = (String, DateTime<Utc>);

/// Records when each job ran.
#[derive(Clone, Default)]
struct Clocked(Arc<Mutex<Vec<Run>>>);

#[async_trait]
impl Handler for Clocked {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        self.0
            .lock()
            .unwrap()
            .push((job.dedupe_key.clone(), Utc::now()));
        Ok(())
    }
}

/// Writes one row per run into `job_runs`, in the database under test.
struct Counted(DatabaseConnection, String);

#[async_trait]
impl Handler for Counted {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        let backend = self.0.get_database_backend();
        let sql = match backend {
            sea_orm::DbBackend::Postgres => {
                "INSERT INTO job_runs (job_id, dedupe_key, worker) VALUES ($1, $2, $3)"
            }
            _ => "INSERT INTO job_runs (job_id, dedupe_key, worker) VALUES (?, ?, ?)",
        };
        self.0
            .execute_raw(Statement::from_sql_and_values(
                backend,
                sql,
                [
                    job.id.clone().into(),
                    job.dedupe_key.clone().into(),
                    self.1.clone().into(),
                ],
            ))
            .await
            .map(|_| ())
            .map_err(|e| JobError::retry(e.to_string()))
    }
}

struct AlwaysFails;

#[async_trait]
impl Handler for AlwaysFails {
    async fn run(&self, _job: &Job) -> Result<(), JobError> {
        Err(JobError::retry("the tax office's system is down"))
    }
}

async fn job_runs_table(db: &DatabaseConnection) {
    db.execute_unprepared(
        "CREATE TABLE job_runs (job_id VARCHAR(64), dedupe_key VARCHAR(200), worker VARCHAR(64))",
    )
    .await
    .unwrap();
}

fn config(app: &TestApp) -> SchedulerConfig {
    let mut c = SchedulerConfig::new(MailConfig {
        smtp_url: None,
        outbox_dir: app.data_dir.join("outbox"),
        from: "征纳互动 <noreply@taxdesk.local>".into(),
    });
    c.cron.clear();
    c
}

/// A workflow of its own on the test's database: a separate connection pool on PostgreSQL
/// (another instance), the same one on SQLite (one instance per database).
async fn instance(app: &TestApp) -> Workflow {
    let db = if app.is_postgres() {
        taxdesk::db::connect(&app.database_url).await.unwrap()
    } else {
        app.db().clone()
    };
    Workflow::new(db, WorkflowConfig::default())
}

async fn schedule(wf: &Workflow, kind: &str, key: &str, in_ms: i64) -> DateTime<Utc> {
    let at = Utc::now() + chrono::Duration::milliseconds(in_ms);
    jobs::schedule(
        wf.db(),
        NewJob::new(kind, key.into(), at, json!({})),
        Utc::now(),
    )
    .await
    .unwrap();
    wf.jobs_written();
    at
}

async fn wait_until(mut done: impl FnMut() -> bool, timeout: Duration) {
    let end = std::time::Instant::now() + timeout;
    while !done() && std::time::Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn jobs_run_on_time_even_when_a_sooner_one_is_written_later() {
    let app = TestApp::spawn_with(&[("TAXDESK_SCHEDULER", "off")]).await;
    let wf = instance(&app).await;
    let runs = Clocked::default();
    let mut s = Scheduler::new(wf.clone(), config(&app)).unwrap();
    s.register("test.clock", runs.clone());
    let stop = s.start();
    // Let the worker go to sleep with nothing due (its safety-net sleep is a minute).
    tokio::time::sleep(Duration::from_millis(200)).await;

    let due_1s = schedule(&wf, "test.clock", "one-second", 1000).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let later = schedule(&wf, "test.clock", "three-seconds", 3000).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Written last, due first: the worker sleeping for the 1 s job must wake for it.
    let sooner = schedule(&wf, "test.clock", "half-second", 500).await;

    wait_until(|| runs.0.lock().unwrap().len() == 3, Duration::from_secs(6)).await;
    let got = runs.0.lock().unwrap().clone();
    stop.stop().await;
    let order: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(order, ["half-second", "one-second", "three-seconds"]);
    for ((key, ran), due) in got.iter().zip([sooner, due_1s, later]) {
        let late = *ran - due;
        assert!(
            late >= chrono::Duration::zero(),
            "{key} ran early by {late}"
        );
        assert!(late < chrono::Duration::seconds(1), "{key} ran {late} late");
    }
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_and_the_late_completion_refused() {
    let app = TestApp::spawn_with(&[("TAXDESK_SCHEDULER", "off")]).await;
    let wf = instance(&app).await;
    job_runs_table(wf.db()).await;
    let mut a = Scheduler::new(wf.clone(), config(&app)).unwrap();
    a.set_lease(chrono::Duration::milliseconds(800))
        .register("test.count", Counted(wf.db().clone(), "a".into()));
    let mut b = Scheduler::new(wf.clone(), config(&app)).unwrap();
    b.register("test.count", Counted(wf.db().clone(), "b".into()));
    schedule(&wf, "test.count", "leased", 0).await;

    // A claims and "dies" holding the lease.
    let held = a.claim().await.unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(b.tick().await.unwrap(), 0, "the lease holds");
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(
        b.tick().await.unwrap(),
        1,
        "taken over after the lease ran out"
    );
    assert!(
        !a.complete(&held[0]).await.unwrap(),
        "A's late completion is refused"
    );

    assert_eq!(
        app.count("SELECT job_id FROM job_runs WHERE worker = 'b'")
            .await,
        1
    );
    assert_eq!(app.count("SELECT job_id FROM job_runs").await, 1);
    assert_eq!(
        app.count("SELECT id FROM jobs WHERE state = 'DONE' AND attempts = 2")
            .await,
        1
    );

    // A batch finishes in one statement, row by row on its own lease: of three jobs A held,
    // the one B took over stays B's.
    for key in ["batch-1", "batch-2", "batch-3"] {
        schedule(&wf, "test.count", key, 0).await;
    }
    let held = a.claim().await.unwrap();
    assert_eq!(held.len(), 3);
    tokio::time::sleep(Duration::from_millis(900)).await;
    let mut c = Scheduler::new(wf.clone(), config(&app)).unwrap();
    c.set_lease(chrono::Duration::milliseconds(1)).set_batch(1);
    let taken = c.claim().await.unwrap();
    assert_eq!(taken.len(), 1, "one taken over");
    assert_eq!(
        a.complete_all(&held).await.unwrap(),
        2,
        "A finishes the two still its own"
    );
    assert_eq!(
        app.count("SELECT id FROM jobs WHERE dedupe_key LIKE '%batch-%' AND state = 'DONE'")
            .await,
        2
    );
}

#[tokio::test]
async fn three_workers_run_a_thousand_jobs_exactly_once() {
    let app = TestApp::spawn_with(&[("TAXDESK_SCHEDULER", "off")]).await;
    let first = instance(&app).await;
    job_runs_table(first.db()).await;
    let now = Utc::now();
    let txn = first.db().begin().await.unwrap();
    for i in 0..1000 {
        let job = NewJob::new("test.count", format!("bulk:{i}"), now, json!({}));
        jobs::schedule(&txn, job, now).await.unwrap();
    }
    txn.commit().await.unwrap();

    let mut stoppers = vec![];
    for w in 0..3 {
        let wf = if w == 0 {
            first.clone()
        } else {
            instance(&app).await
        };
        let mut s = Scheduler::new(wf.clone(), config(&app)).unwrap();
        s.register("test.count", Counted(wf.db().clone(), format!("w{w}")));
        stoppers.push(s.start());
    }
    let ran = app
        .wait_for_count(
            "SELECT job_id FROM job_runs",
            1000,
            Duration::from_secs(120),
        )
        .await;
    for s in stoppers {
        s.stop().await;
    }
    assert_eq!(ran, 1000);
    assert_eq!(
        app.count("SELECT DISTINCT job_id FROM job_runs").await,
        1000,
        "none twice"
    );
    assert_eq!(
        app.count("SELECT id FROM jobs WHERE state = 'DONE'").await,
        1000
    );
}

#[tokio::test]
async fn a_failing_job_backs_off_then_dies_with_its_error() {
    let app = TestApp::spawn_with(&[("TAXDESK_SCHEDULER", "off")]).await;
    let wf = instance(&app).await;
    let mut c = config(&app);
    c.retry_base = chrono::Duration::milliseconds(100);
    let mut s = Scheduler::new(wf.clone(), c).unwrap();
    s.register("test.fail", AlwaysFails);
    let mut job = NewJob::new("test.fail", "doomed".into(), Utc::now(), json!({}));
    job.max_attempts = 3;
    jobs::schedule(wf.db(), job, Utc::now()).await.unwrap();

    // First attempt: back to PENDING, later, with the error kept.
    let before_tick = Utc::now();
    assert_eq!(s.tick().await.unwrap(), 1);
    let retry = app.count("SELECT id FROM jobs WHERE state = 'PENDING' AND attempts = 1 AND last_error LIKE '%system is down%'").await;
    assert_eq!(retry, 1);
    let failed_at = Utc::now();
    let row = <taxdesk_workflow::entities::job::Entity as sea_orm::EntityTrait>::find()
        .one(wf.db())
        .await
        .unwrap()
        .unwrap();
    assert!(
        row.run_at >= before_tick + chrono::Duration::milliseconds(10),
        "retried later, not at once"
    );
    assert!(
        row.run_at <= failed_at + chrono::Duration::milliseconds(100),
        "within the first back-off"
    );
    let stop = s.start();
    let dead = app
        .wait_for_count(
            "SELECT id FROM jobs WHERE state = 'DEAD' AND attempts = 3",
            1,
            Duration::from_secs(10),
        )
        .await;
    stop.stop().await;
    assert_eq!(dead, 1);
    assert_eq!(
        app.count("SELECT id FROM jobs WHERE last_error = 'the tax office''s system is down'")
            .await,
        1
    );

    // An admin sees it and retries it.
    let admin = app.user("admin", "a1");
    let list = admin
        .gql(
            "{ jobs(state: DEAD) { totalCount edges { node { id kind attempts lastError } } } }",
            json!({}),
        )
        .await
        .ok();
    assert_eq!(list["jobs"]["totalCount"], 1);
    let id = list["jobs"]["edges"][0]["node"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let retried = admin
        .gql(
            "mutation($id: ID!) { retryJob(id: $id) { state attempts } }",
            json!({"id": id}),
        )
        .await
        .ok();
    assert_eq!(
        retried["retryJob"],
        json!({"state": "PENDING", "attempts": 0})
    );
    let again = admin
        .gql(
            "mutation($id: ID!) { retryJob(id: $id) { state } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(again.code(), Some("INVALID_TRANSITION"));
    let staff = app
        .user("staff", "s1")
        .gql("{ jobs { totalCount } }", json!({}))
        .await;
    assert_eq!(staff.code(), Some("FORBIDDEN"));
}

#[tokio::test]
async fn a_cron_job_runs_once_per_tick_with_two_workers() {
    let app = TestApp::spawn_with(&[("TAXDESK_SCHEDULER", "off")]).await;
    let first = instance(&app).await;
    job_runs_table(first.db()).await;
    let mut stoppers = vec![];
    for w in 0..2 {
        let wf = if w == 0 {
            first.clone()
        } else {
            instance(&app).await
        };
        let mut s = Scheduler::new(wf.clone(), config(&app)).unwrap();
        s.register("test.tick", Counted(wf.db().clone(), format!("w{w}")));
        s.add_cron("test.tick", "* * * * * *").unwrap();
        stoppers.push(s.start());
    }
    let ran = app
        .wait_for_count("SELECT job_id FROM job_runs", 3, Duration::from_secs(10))
        .await;
    for s in stoppers {
        s.stop().await;
    }
    let total = app.count("SELECT job_id FROM job_runs").await;
    assert!(ran >= 3, "three ticks ran");
    assert_eq!(
        app.count("SELECT DISTINCT dedupe_key FROM job_runs").await,
        total,
        "no tick ran twice"
    );
    // Each tick is a second after the previous.
    let keys = app
        .count("SELECT dedupe_key FROM jobs WHERE kind = 'test.tick' AND state = 'DONE'")
        .await;
    assert_eq!(keys, total);
}

#[tokio::test]
async fn a_completed_order_emails_the_taxpayer_once_as_an_eml_file() {
    let app = TestApp::spawn().await;
    let tp = app.user("taxpayer", "tp1");
    let staff = app.user("staff", "s1");
    staff.gql("{ me { id } }", json!({})).await.ok();
    let id = create(&tp, "邮件").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    for q in [
        "mutation($id: ID!) { dispatchWorkOrder(input: {id: $id, handlerId: \"s1\"}) { id } }",
        "mutation($id: ID!) { acceptWorkOrder(id: $id) { id } }",
        "mutation($id: ID!) { completeWorkOrder(input: {id: $id, resolution: \"已处理完毕\"}) { id } }",
    ] {
        staff.gql(q, json!({"id": id})).await.ok();
    }
    let sent = app
        .wait_for_count(
            "SELECT id FROM outbox_emails WHERE state = 'SENT'",
            1,
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(sent, 1);
    let dir = app.data_dir.join("outbox");
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let eml = std::fs::read_to_string(&files[0]).unwrap();
    assert!(eml.contains("To: tp1@example.com"), "{eml}");
    assert!(eml.contains("Message-ID: <"), "{eml}");
    assert!(eml.contains("text/html"));
    // Running the delivery again changes nothing. (The email is SENT before its job is marked
    // DONE with the rest of its batch: reset the job only once the server is done with it.)
    let done = app
        .wait_for_count(
            "SELECT id FROM jobs WHERE kind = 'email.deliver' AND state = 'DONE'",
            1,
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(done, 1);
    let wf = instance(&app).await;
    let s = Scheduler::new(wf, config(&app)).unwrap();
    app.db()
        .execute_unprepared(
            "UPDATE jobs SET state = 'PENDING', attempts = 0 WHERE kind = 'email.deliver'",
        )
        .await
        .unwrap();
    // This worker or the server's own may take it: either way it runs again, and sends nothing.
    let ran_here = s.tick().await.unwrap();
    let again = app
        .wait_for_count(
            "SELECT id FROM jobs WHERE kind = 'email.deliver' AND state = 'DONE' AND attempts = 1",
            1,
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(again, 1, "the delivery ran again ({ran_here} here)");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);

    let admin = app.user("admin", "a1");
    let outbox = admin
        .gql(
            "{ outboxEmails { edges { node { toAddress state subject } } } }",
            json!({}),
        )
        .await
        .ok();
    assert_eq!(outbox["outboxEmails"]["edges"][0]["node"]["state"], "SENT");
}

#[tokio::test]
async fn an_email_reaches_an_smtp_server_exactly_once() {
    let smtp = FakeSmtp::start().await;
    let url = format!("smtp://127.0.0.1:{}", smtp.port);
    let app = TestApp::spawn_with(&[("TAXDESK_SMTP_URL", &url)]).await;
    let tp = app.user("taxpayer", "tp1");
    let staff = app.user("staff", "s1");
    staff.gql("{ me { id } }", json!({})).await.ok();
    let id = create(&tp, "SMTP").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    for q in [
        "mutation($id: ID!) { dispatchWorkOrder(input: {id: $id, handlerId: \"s1\"}) { id } }",
        "mutation($id: ID!) { acceptWorkOrder(id: $id) { id } }",
        "mutation($id: ID!) { completeWorkOrder(input: {id: $id, resolution: \"已办结\"}) { id } }",
    ] {
        staff.gql(q, json!({"id": id})).await.ok();
    }
    let sent = app
        .wait_for_count(
            "SELECT id FROM outbox_emails WHERE state = 'SENT'",
            1,
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(sent, 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = smtp.received();
    assert_eq!(got.len(), 1);
    assert!(got[0].contains("To: tp1@example.com"));
    assert!(
        !app.data_dir.join("outbox").exists(),
        "no .eml files when SMTP is configured"
    );
}

#[tokio::test]
async fn an_overdue_order_escalates_once_and_tells_handler_and_supervisors() {
    let app = TestApp::spawn_with(&[("TAXDESK_DEFAULT_DEADLINE", "1s")]).await;
    let tp = app.user("taxpayer", "tp1");
    let staff = app.user("staff", "s1");
    let admin = app.user("admin", "a1");
    for c in [&staff, &admin] {
        c.gql("{ me { id } }", json!({})).await.ok();
    }
    let id = create(&tp, "超期").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    staff
        .gql(
            "mutation($id: ID!) { dispatchWorkOrder(input: {id: $id, handlerId: \"s1\"}) { id } }",
            json!({"id": id}),
        )
        .await
        .ok();
    let escalated = app
        .wait_for_count(&format!("SELECT id FROM work_order_history WHERE work_order_id = '{id}' AND event = 'OVERDUE'"), 1, Duration::from_secs(10))
        .await;
    assert_eq!(escalated, 1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let wo = admin
        .gql("query($id: ID!) { workOrder(id: $id) { priority overdue history { event actor { role } } } workOrders(filter: {overdue: true}) { totalCount } }", json!({"id": id}))
        .await
        .ok();
    assert_eq!(wo["workOrder"]["priority"], "HIGH");
    assert_eq!(wo["workOrder"]["overdue"], true);
    assert_eq!(wo["workOrders"]["totalCount"], 1);
    let overdue_events = wo["workOrder"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["event"] == "OVERDUE")
        .count();
    assert_eq!(overdue_events, 1, "once per deadline");
    for user in ["s1", "a1"] {
        assert_eq!(
            app.count(&format!("SELECT id FROM notifications WHERE user_id = '{user}' AND kind = 'WORK_ORDER_OVERDUE'")).await,
            1,
            "{user} told once"
        );
    }
}

#[tokio::test]
async fn a_taxpayer_without_an_email_claim_sets_one() {
    let app = TestApp::spawn().await;
    let c = crate::helpers::Client {
        token: Some(app.token_with("taxpayer", "tp7", Duration::from_secs(600), false)),
        ..app.anonymous()
    };
    let bad = c
        .gql(
            "mutation { updateMyContact(input: {email: \"not an email\"}) { email } }",
            json!({}),
        )
        .await;
    assert_eq!(bad.code(), Some("INVALID_INPUT"));
    let ok = c
        .gql(
            "mutation { updateMyContact(input: {email: \"tp7@example.com\"}) { id email } }",
            json!({}),
        )
        .await
        .ok();
    assert_eq!(ok["updateMyContact"]["email"], "tp7@example.com");
    // Seen again with a token that carries no email: the address stays.
    c.gql("{ me { id } }", json!({})).await.ok();
    assert_eq!(
        app.count("SELECT id FROM users WHERE id = 'tp7' AND email = 'tp7@example.com'")
            .await,
        1
    );
}
