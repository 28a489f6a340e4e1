//! `handover-burst`: hundreds of 转人工 at once (issue #17), each taxpayer its own HTTP
//! client, agents already online with `maxConcurrent: 1`; and agents arriving while the
//! queue is full.
//!
//! Burst: on a fresh server, A agents go ONLINE and N taxpayers open a chat (set-up, not
//! measured); then all N send `requestHuman` at the same instant. Measured: each answer's
//! latency (POST → response), and the time from the burst's start until every session is
//! ACTIVE (the server's database polled every 5 ms). Checked: N sessions went to N distinct
//! agents and each was assigned once.
//!
//! Arrival: W taxpayers wait in the queue (one agent AWAY, so hand-overs are accepted); a
//! sample of them watch `chatEvents`; then G agents go ONLINE, one every 1 s ÷ G. Measured:
//! the time from the first ONLINE until G sessions are ACTIVE (the queue drained to
//! capacity), and whether each watcher's last pushed place equals its place in
//! `waitingQueue` once the queue has settled.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use futures_util::{StreamExt, TryStreamExt, stream};
use hdrhistogram::Histogram;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use serde_json::json;
use tokio::sync::Barrier;

use crate::chat::Db;
use crate::client::{Gql, Subscription};
use crate::load::{histogram, ms, record};
use crate::pg::Pg;
use crate::report::{Check, Column, ScenarioReport};
use crate::server::BenchServer;

pub const NAME: &str = "handover-burst";

/// Requests in flight at once while setting up.
const SETUP_CONCURRENCY: usize = 32;
/// How long to wait for every session to be ACTIVE before giving up.
const ACTIVE_TIMEOUT: Duration = Duration::from_secs(120);
/// Waiting taxpayers that watch their place in the arrival case.
const WATCHERS: usize = 100;

const REQUEST: &str =
    "mutation($id: ID!) { requestHuman(input: {sessionId: $id}) { status queuePosition } }";
const STATUS: &str = "mutation($s: AgentPresence!) { setAgentStatus(input: {status: $s, maxConcurrent: 1}) { status } }";
const WATCH: &str = "subscription($id: ID!) { chatEvents(sessionId: $id) { kind queuePosition } }";

pub struct Options {
    /// Simultaneous hand-overs in the burst case.
    pub taxpayers: usize,
    /// Agents online during the burst, one run each.
    pub agents: Vec<usize>,
    /// Taxpayers waiting when agents arrive.
    pub waiting: usize,
    /// Agents going ONLINE within one second.
    pub arriving: usize,
    pub databases: Vec<Db>,
}

pub async fn run(opts: &Options, pg: &Pg) -> anyhow::Result<ScenarioReport> {
    let mut report = ScenarioReport::new(
        NAME,
        "hand-over bursts: many 转人工 at once, agents arriving at a full queue",
        format!(
            "**Burst**: A agents ONLINE (maxConcurrent 1), N taxpayers with an open chat, each \
             its own HTTP client; all N send `requestHuman` at once. Answer: POST → response of \
             each request (HdrHistogram). All ACTIVE: from the burst's start until the server's \
             database shows N ACTIVE sessions (polled every 5 ms). Checked: N distinct agents, \
             one ASSIGN per session. **Arrival**: W taxpayers queued (one agent AWAY), {WATCHERS} \
             of them subscribed to `chatEvents`; G agents go ONLINE, one every 1 s ÷ G. Drained: \
             from the first ONLINE until G sessions are ACTIVE; places: each watcher's last \
             pushed `queuePosition` against its place in `waitingQueue` after the queue settled."
        ),
        vec![
            Column::int("database", "database"),
            Column::int("case", "case"),
            Column::int("taxpayers", "taxpayers"),
            Column::int("agents", "agents"),
            Column::float("p50_ms", "answer p50 ms", 1),
            Column::float("p99_ms", "answer p99 ms", 1),
            Column::float("max_ms", "answer max ms", 1),
            Column::float("all_active_s", "all ACTIVE s", 2),
            Column::int("places_wrong", "places wrong"),
            Column::int("errors", "errors"),
        ],
    );
    let pg_ok = pg.check().await;
    for &db in &opts.databases {
        let (active_target, name) = match db {
            Db::Postgres => (2.0, "PostgreSQL"),
            Db::Sqlite => (5.0, "SQLite"),
        };
        if db == Db::Postgres
            && let Err(why) = &pg_ok
        {
            report.notes.push(format!("{name}: skipped: {why}"));
            report.checks.push(Check::skipped(
                &format!("hand-over burst, {name}"),
                "≤ 200 ms / ≤ 2 s",
                why,
            ));
            continue;
        }
        let mut first_active: Option<(usize, f64)> = None;
        for &agents in &opts.agents {
            let n = opts.taxpayers;
            eprintln!("{NAME}: {n} hand-overs at once, {agents} agents online, {name}");
            let b = with_database(db, pg, "burst", |url| burst(n, agents, url)).await?;
            let figure = format!("{n} requestHuman at once, {agents} agents, {name}");
            report.checks.push(Check::at_most(
                &format!("{figure}: answer p99"),
                ms(&b.answers, 0.99),
                "ms",
                200.0,
            ));
            report.checks.push(Check::at_most(
                &format!("{figure}: every session ACTIVE"),
                b.all_active,
                "s",
                active_target,
            ));
            match first_active {
                None => first_active = Some((agents, b.all_active)),
                Some((base_agents, base)) => report.checks.push(Check {
                    limit_label: Some(format!("{base_agents} agents")),
                    limit: Some(base),
                    ratio: Some(b.all_active / base.max(1e-9)),
                    ..Check::at_most(
                        &format!("{figure}: all ACTIVE vs {base_agents} agents"),
                        b.all_active / base.max(1e-9),
                        "×",
                        1.2,
                    )
                }),
            }
            report.notes.extend(
                b.notes
                    .iter()
                    .map(|n| format!("{name}, {agents} agents: {n}")),
            );
            report.rows.push(json!({
                "database": name,
                "case": "burst",
                "taxpayers": n,
                "agents": agents,
                "p50_ms": ms(&b.answers, 0.50),
                "p99_ms": ms(&b.answers, 0.99),
                "max_ms": if b.answers.is_empty() { 0.0 } else { b.answers.max() as f64 / 1000.0 },
                "all_active_s": b.all_active,
                "places_wrong": 0,
                "errors": b.errors,
            }));
        }
        eprintln!(
            "{NAME}: {} waiting, {} agents arriving within 1 s, {name}",
            opts.waiting, opts.arriving
        );
        let a = with_database(db, pg, "arrival", |url| {
            arrival(opts.waiting, opts.arriving, url)
        })
        .await?;
        let figure = format!(
            "{} waiting, {} agents ONLINE within 1 s, {name}",
            opts.waiting, opts.arriving
        );
        report.checks.push(Check::at_most(
            &format!("{figure}: drained to capacity"),
            a.all_active,
            "s",
            2.0,
        ));
        report.checks.push(Check::at_most(
            &format!("{figure}: watchers told a wrong place"),
            a.places_wrong as f64,
            "",
            0.0,
        ));
        report
            .notes
            .extend(a.notes.iter().map(|n| format!("{name}, arrival: {n}")));
        report.rows.push(json!({
            "database": name,
            "case": "arrival",
            "taxpayers": opts.waiting,
            "agents": opts.arriving,
            "p50_ms": ms(&a.answers, 0.50),
            "p99_ms": ms(&a.answers, 0.99),
            "max_ms": if a.answers.is_empty() { 0.0 } else { a.answers.max() as f64 / 1000.0 },
            "all_active_s": a.all_active,
            "places_wrong": a.places_wrong,
            "errors": a.errors,
        }));
    }
    Ok(report)
}

/// Runs `case` on a fresh SQLite server (`None`) or a fresh PostgreSQL database.
async fn with_database<F, Fut>(db: Db, pg: &Pg, what: &str, case: F) -> anyhow::Result<Outcome>
where
    F: FnOnce(Option<String>) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Outcome>>,
{
    match db {
        Db::Sqlite => case(None).await,
        Db::Postgres => {
            let bench_db = pg.create_db(what).await?;
            let r = case(Some(bench_db.url.clone())).await;
            bench_db.drop_db().await;
            r
        }
    }
}

struct Outcome {
    answers: Histogram<u64>,
    /// Seconds until every session that could be served was ACTIVE.
    all_active: f64,
    places_wrong: u64,
    errors: u64,
    notes: Vec<String>,
}

async fn server(database_url: Option<&str>) -> anyhow::Result<BenchServer> {
    let mut env = vec![
        ("TAXDESK_ANSWER_TIMEOUT", "4h"),
        ("TAXDESK_IDLE_TIMEOUT", "4h"),
        ("TAXDESK_QUEUE_TIMEOUT", "4h"),
        ("TAXDESK_QUEUE_OFFER_AFTER", "4h"),
    ];
    if let Some(url) = database_url {
        env.push(("DATABASE_URL", url));
    }
    BenchServer::start(&env).await
}

async fn count(db: &DatabaseConnection, sql: &str) -> anyhow::Result<i64> {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(Statement::from_string(
            backend,
            format!("SELECT COUNT(*) AS n FROM ({sql}) t"),
        ))
        .await?
        .context("a count")?;
    Ok(row.try_get::<i64>("", "n")?)
}

/// Polls until `sql` counts `n` rows; the seconds since `from`.
async fn until_count(
    db: &DatabaseConnection,
    sql: &str,
    n: i64,
    from: Instant,
) -> anyhow::Result<f64> {
    loop {
        if count(db, sql).await? >= n {
            return Ok(from.elapsed().as_secs_f64());
        }
        if from.elapsed() > ACTIVE_TIMEOUT {
            bail!("{sql}: not {n} rows after {} s", ACTIVE_TIMEOUT.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Agents ONLINE with `maxConcurrent: 1` (set-up).
async fn agents_online(
    gql: &Gql,
    server: &BenchServer,
    ids: impl Iterator<Item = String>,
    status: &str,
) -> anyhow::Result<()> {
    stream::iter(ids)
        .map(|id| {
            let gql = gql.clone();
            let token = server.token("staff", &id);
            async move {
                gql.run(&token?, STATUS, json!({"s": status}))
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await
        .context("agents going online")?;
    Ok(())
}

/// A taxpayer with a client of their own and an open chat.
struct Taxpayer {
    gql: Gql,
    token: String,
    session: String,
}

async fn taxpayers(server: &BenchServer, n: usize, prefix: &str) -> anyhow::Result<Vec<Taxpayer>> {
    stream::iter(0..n)
        .map(|i| {
            let token = server.token("taxpayer", &format!("{prefix}-{i}"));
            let url = server.graphql_url();
            async move {
                let token = token?;
                let gql = Gql::new(url)?;
                let open = gql
                    .run(&token, "mutation { openChat { id } }", json!({}))
                    .await?;
                let session = open["openChat"]["id"]
                    .as_str()
                    .ok_or_else(|| anyhow!("openChat gave no id: {open}"))?
                    .to_string();
                anyhow::Ok(Taxpayer {
                    gql,
                    token,
                    session,
                })
            }
        })
        .buffered(SETUP_CONCURRENCY)
        .try_collect()
        .await
        .context("taxpayers opening chats")
}

async fn burst(n: usize, agents: usize, database_url: Option<String>) -> anyhow::Result<Outcome> {
    let server = server(database_url.as_deref()).await?;
    let r = burst_on(&server, n, agents).await;
    server.stop().await;
    r
}

async fn burst_on(server: &BenchServer, n: usize, agents: usize) -> anyhow::Result<Outcome> {
    let setup = Gql::new(server.graphql_url())?;
    agents_online(
        &setup,
        server,
        (0..agents).map(|i| format!("bench-agent-{i}")),
        "ONLINE",
    )
    .await?;
    let people = taxpayers(server, n, "bench-tp").await?;
    let db = Database::connect(server.database_url())
        .await
        .context("the server's database")?;

    let barrier = Arc::new(Barrier::new(n + 1));
    let tasks: Vec<_> = people
        .into_iter()
        .map(|t| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                let started = Instant::now();
                let r = t.gql.run(&t.token, REQUEST, json!({"id": t.session})).await;
                (started.elapsed(), r)
            })
        })
        .collect();
    barrier.wait().await;
    let start = Instant::now();
    let active = "SELECT id FROM chat_sessions WHERE status = 'ACTIVE'";
    let all_active = until_count(&db, active, n as i64, start).await;
    let mut answers = histogram()?;
    let mut errors = 0;
    let mut notes = vec![];
    for t in tasks {
        let (took, r) = t.await.context("a taxpayer's task")?;
        match r {
            Ok(v)
                if v["requestHuman"]["status"] == "QUEUED"
                    || v["requestHuman"]["status"] == "ACTIVE" =>
            {
                record(&mut answers, took)
            }
            Ok(v) => {
                errors += 1;
                if notes.is_empty() {
                    notes.push(format!("unexpected answer: {v}"));
                }
            }
            Err(e) => {
                errors += 1;
                if notes.is_empty() {
                    notes.push(format!("first error: {e:#}"));
                }
            }
        }
    }
    let all_active = all_active?;
    let distinct = count(
        &db,
        "SELECT DISTINCT agent_id FROM chat_sessions WHERE status = 'ACTIVE'",
    )
    .await?;
    let assigns = count(
        &db,
        "SELECT id FROM chat_session_history WHERE event = 'ASSIGN'",
    )
    .await?;
    if distinct != n as i64 || assigns != n as i64 {
        bail!(
            "{n} sessions: {distinct} distinct agents, {assigns} assignments (expected {n} each)"
        );
    }
    db.close().await.ok();
    Ok(Outcome {
        answers,
        all_active,
        places_wrong: 0,
        errors,
        notes,
    })
}

async fn arrival(
    waiting: usize,
    arriving: usize,
    database_url: Option<String>,
) -> anyhow::Result<Outcome> {
    let server = server(database_url.as_deref()).await?;
    let r = arrival_on(&server, waiting, arriving).await;
    server.stop().await;
    r
}

async fn arrival_on(
    server: &BenchServer,
    waiting: usize,
    arriving: usize,
) -> anyhow::Result<Outcome> {
    let setup = Gql::new(server.graphql_url())?;
    // Someone is at work (away), so hand-overs are accepted and wait.
    agents_online(
        &setup,
        server,
        std::iter::once("bench-agent-away".to_string()),
        "AWAY",
    )
    .await?;
    let people = taxpayers(server, waiting, "bench-wait").await?;
    stream::iter(&people)
        .map(|t| async move {
            t.gql
                .run(&t.token, REQUEST, json!({"id": t.session}))
                .await
                .map(|_| ())
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await
        .context("taxpayers queueing")?;
    let db = Database::connect(server.database_url())
        .await
        .context("the server's database")?;
    let queued = "SELECT id FROM chat_sessions WHERE status = 'QUEUED'";
    if count(&db, queued).await? != waiting as i64 {
        bail!("not every taxpayer is queued");
    }

    // Watchers spread over the queue, each noting the last place pushed to it.
    let places: Arc<Mutex<HashMap<String, i64>>> = Arc::default();
    let step = (waiting / WATCHERS).max(1);
    let mut watchers = vec![];
    for t in people.iter().step_by(step).take(WATCHERS) {
        let mut sub =
            Subscription::open(&server.ws_url(), &t.token, WATCH, json!({"id": t.session}))
                .await
                .context("a watcher's subscription")?;
        let places = places.clone();
        let session = t.session.clone();
        watchers.push(tokio::spawn(async move {
            while let Ok(e) = sub.next_event().await {
                let e = &e.data["chatEvents"];
                if e["kind"] == "QUEUE_POSITION"
                    && let Some(p) = e["queuePosition"].as_i64()
                    && let Ok(mut m) = places.lock()
                {
                    m.insert(session.clone(), p);
                }
            }
        }));
    }
    // Let the subscriptions register.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let agents: Vec<(Gql, String)> = (0..arriving)
        .map(|i| {
            Ok((
                Gql::new(server.graphql_url())?,
                server.token("staff", &format!("bench-arriving-{i}"))?,
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    let spacing = Duration::from_secs(1) / arriving.max(1) as u32;
    let start = Instant::now();
    let tasks: Vec<_> = agents
        .into_iter()
        .enumerate()
        .map(|(i, (gql, token))| {
            tokio::spawn(async move {
                tokio::time::sleep_until((start + spacing * i as u32).into()).await;
                let sent = Instant::now();
                let r = gql.run(&token, STATUS, json!({"s": "ONLINE"})).await;
                (sent.elapsed(), r)
            })
        })
        .collect();
    let active = "SELECT id FROM chat_sessions WHERE status = 'ACTIVE'";
    let drained = until_count(&db, active, arriving as i64, start).await;
    let mut answers = histogram()?;
    let mut errors = 0;
    let mut notes = vec![];
    for t in tasks {
        let (took, r) = t.await.context("an agent's task")?;
        match r {
            Ok(_) => record(&mut answers, took),
            Err(e) => {
                errors += 1;
                if notes.is_empty() {
                    notes.push(format!("first error: {e:#}"));
                }
            }
        }
    }
    let drained = drained?;

    // The queue has settled: each watcher's last place against the queue as staff see it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let order = setup
        .run(
            &server.token("staff", "bench-agent-away")?,
            "{ waitingQueue { id } }",
            json!({}),
        )
        .await?;
    let place_of: HashMap<String, i64> = order["waitingQueue"]
        .as_array()
        .context("waitingQueue")?
        .iter()
        .enumerate()
        .filter_map(|(i, s)| Some((s["id"].as_str()?.to_string(), i as i64 + 1)))
        .collect();
    let heard = places.lock().map(|m| m.clone()).unwrap_or_default();
    let mut wrong = 0;
    for t in people.iter().step_by(step).take(WATCHERS) {
        let expected = place_of.get(&t.session).copied();
        let got = heard.get(&t.session).copied();
        // A watcher served meanwhile is no longer told a place.
        if expected.is_some() && got != expected {
            wrong += 1;
            if wrong == 1 {
                notes.push(format!(
                    "watcher {}: last place pushed {got:?}, place {expected:?}",
                    t.session
                ));
            }
        }
    }
    for w in watchers {
        w.abort();
    }
    db.close().await.ok();
    Ok(Outcome {
        answers,
        all_active: drained,
        places_wrong: wrong,
        errors,
        notes,
    })
}
