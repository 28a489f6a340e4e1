//! `taxdesk-bench`: load scenarios against taxdesk servers it starts itself (in-process, or
//! a child process for memory, on loopback, each with a fresh SQLite file or a fresh
//! PostgreSQL database), reported as Markdown + JSON under `bench/results/`. Every figure of
//! issue #7 is set beside a limit measured in the same run, with its target.
//!
//! ```sh
//! cargo run --release -p taxdesk-bench -- ALL
//! cargo run --release -p taxdesk-bench -- chat --pairs 100,1000 --messages 10
//! ```
//!
//! A scenario is a module with an async `run(&Options, ..) -> ScenarioReport`; adding one is
//! a new module, an entry in `SCENARIOS` and an arm in `run_scenario`.

mod bot;
mod chat;
mod client;
mod handover;
mod idle;
mod load;
mod pg;
mod query;
mod report;
mod scheduler;
mod server;
mod sys;
mod workorder;

use std::path::PathBuf;

use anyhow::{Context, bail};

use report::{Machine, Report, ScenarioReport};

/// Every scenario, in the order `ALL` runs them, with a line for `--help`.
const SCENARIOS: &[(&str, &str)] = &[
    (
        workorder::NAME,
        "work-order transitions/s via GraphQL vs the database ceiling (pgbench / raw sea-orm)",
    ),
    (
        query::NAME,
        "trivial authenticated GraphQL query req/s and p99 vs a bare axum handler",
    ),
    (
        chat::NAME,
        "send → receive latency (p50/p99/p99.9/max) and msg/s for N chat pairs over WebSocket",
    ),
    (
        idle::NAME,
        "idle WebSocket connections held and server memory per connection",
    ),
    (
        scheduler::NAME,
        "N due jobs: drain time, lateness, exactly-once on 3 instances; lone job lateness",
    ),
    (
        bot::NAME,
        "askBot / index ask p50/p99 with the seed base and N generated entries",
    ),
    (
        handover::NAME,
        "N requestHuman at once (N / 2N agents online), W waiting + G agents ONLINE in 1 s",
    ),
];

const USAGE: &str = "\
usage: taxdesk-bench [SCENARIO… | ALL] [options]

Starts its own taxdesk server(s) on 127.0.0.1 (temporary SQLite files, or fresh PostgreSQL
databases that are dropped afterwards), loads them, prints the results and writes
<timestamp>-<scenarios>.{md,json} and latest.{md,json}.

options:
  --pg URL            PostgreSQL to create bench databases in
                      (default $TAXDESK_BENCH_PG or postgres://postgres@127.0.0.1:5432/test);
                      unreachable: PostgreSQL parts are reported as skipped
  --seconds S         workorder, query: seconds per measured phase (default 15)
  --clients C         workorder: concurrent orders / pgbench clients (default 16)
  --concurrency C     query: requests in flight (default 32)
  --pairs N[,N…]      chat: concurrent taxpayer–agent pairs, one run each (default 100,1000)
  --messages M        chat: messages per pair, alternating directions (default 10)
  --chat-db D[,D…]    chat: sqlite and/or postgres (default postgres)
  --interval-ms MS    chat: paced phase, one message per pair every MS (default 2000),
                      then a closed-loop phase; 0: closed loop only
  --connections N     idle: WebSocket connections to hold (default 10000)
  --jobs N            scheduler: jobs due in the same second (default 10000)
  --lone N            scheduler: lone due jobs, one after another (default 100)
  --instances N       scheduler: instances on one PostgreSQL (default 3)
  --entries N         bot: generated knowledge-base entries (default 10000)
  --passes N          bot: in-process passes over the dev-set questions (default 5)
  --burst N           handover-burst: simultaneous requestHuman (default 500)
  --burst-agents A[,A…]  handover-burst: agents online, one run each (default 500,1000)
  --waiting W         handover-burst: taxpayers queued when agents arrive (default 2000)
  --arriving G        handover-burst: agents going ONLINE within 1 s (default 200)
  --burst-db D[,D…]   handover-burst: sqlite and/or postgres (default both)
  --out DIR           where reports go (default: bench/results of this workspace)
  --no-save         print only, write no files
  -h, --help        this text

scenarios:";

struct Args {
    scenarios: Vec<String>,
    pg: pg::Pg,
    workorder: workorder::Options,
    query: query::Options,
    chat: chat::Options,
    idle: idle::Options,
    scheduler: scheduler::Options,
    bot: bot::Options,
    handover: handover::Options,
    out: PathBuf,
    save: bool,
}

fn usage() -> String {
    let mut s = USAGE.to_string();
    for (name, what) in SCENARIOS {
        s.push_str(&format!("\n  {name:<16}  {what}"));
    }
    s.push_str("\n  ALL               every scenario above\n");
    s
}

fn number(flag: &str, v: Option<String>) -> anyhow::Result<usize> {
    let v = v.with_context(|| format!("{flag} needs a value"))?;
    let n: usize = v
        .trim()
        .parse()
        .with_context(|| format!("{flag} {v}: not a number"))?;
    if n == 0 {
        bail!("{flag} must be at least 1");
    }
    Ok(n)
}

/// `None`: help was asked for.
fn parse(mut it: impl Iterator<Item = String>) -> anyhow::Result<Option<Args>> {
    let mut args = Args {
        scenarios: vec![],
        pg: pg::Pg {
            admin_url: std::env::var("TAXDESK_BENCH_PG").unwrap_or_else(|_| pg::DEFAULT_URL.into()),
        },
        workorder: workorder::Options {
            clients: 16,
            seconds: 15,
        },
        query: query::Options {
            concurrency: 32,
            seconds: 15,
        },
        chat: chat::Options {
            pairs: vec![100, 1000],
            messages: 10,
            databases: vec![chat::Db::Postgres],
            interval: Some(std::time::Duration::from_secs(2)),
        },
        idle: idle::Options {
            connections: 10_000,
        },
        scheduler: scheduler::Options {
            jobs: 10_000,
            lone: 100,
            instances: 3,
        },
        bot: bot::Options {
            entries: 10_000,
            passes: 5,
        },
        handover: handover::Options {
            taxpayers: 500,
            agents: vec![500, 1000],
            waiting: 2000,
            arriving: 200,
            databases: vec![chat::Db::Postgres, chat::Db::Sqlite],
        },
        out: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("results"),
        save: true,
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "-h" | "--help" => return Ok(None),
            "--pairs" => {
                let v = it.next().context("--pairs needs a value")?;
                args.chat.pairs = v
                    .split(',')
                    .map(|p| number("--pairs", Some(p.to_string())))
                    .collect::<anyhow::Result<_>>()?;
            }
            "--messages" => args.chat.messages = number("--messages", it.next())?,
            "--pg" => args.pg.admin_url = it.next().context("--pg needs a URL")?,
            "--seconds" => {
                let s = number("--seconds", it.next())? as u64;
                args.workorder.seconds = s;
                args.query.seconds = s;
            }
            "--clients" => args.workorder.clients = number("--clients", it.next())?,
            "--concurrency" => args.query.concurrency = number("--concurrency", it.next())?,
            "--chat-db" => {
                let v = it
                    .next()
                    .context("--chat-db needs sqlite and/or postgres")?;
                args.chat.databases = v
                    .split(',')
                    .map(|d| match d.trim() {
                        "sqlite" => Ok(chat::Db::Sqlite),
                        "postgres" | "pg" => Ok(chat::Db::Postgres),
                        other => Err(anyhow::anyhow!("--chat-db {other}: sqlite or postgres")),
                    })
                    .collect::<anyhow::Result<_>>()?;
            }
            "--interval-ms" => {
                let v = it.next().context("--interval-ms needs a value")?;
                let ms: u64 = v.parse().with_context(|| format!("--interval-ms {v}"))?;
                args.chat.interval = (ms > 0).then(|| std::time::Duration::from_millis(ms));
            }
            "--connections" => args.idle.connections = number("--connections", it.next())?,
            "--jobs" => args.scheduler.jobs = number("--jobs", it.next())?,
            "--lone" => args.scheduler.lone = number("--lone", it.next())?,
            "--instances" => args.scheduler.instances = number("--instances", it.next())?,
            "--entries" => args.bot.entries = number("--entries", it.next())?,
            "--passes" => args.bot.passes = number("--passes", it.next())?,
            "--burst" => args.handover.taxpayers = number("--burst", it.next())?,
            "--burst-agents" => {
                let v = it.next().context("--burst-agents needs a value")?;
                args.handover.agents = v
                    .split(',')
                    .map(|p| number("--burst-agents", Some(p.to_string())))
                    .collect::<anyhow::Result<_>>()?;
            }
            "--waiting" => args.handover.waiting = number("--waiting", it.next())?,
            "--arriving" => args.handover.arriving = number("--arriving", it.next())?,
            "--burst-db" => {
                let v = it
                    .next()
                    .context("--burst-db needs sqlite and/or postgres")?;
                args.handover.databases = v
                    .split(',')
                    .map(|d| match d.trim() {
                        "sqlite" => Ok(chat::Db::Sqlite),
                        "postgres" | "pg" => Ok(chat::Db::Postgres),
                        other => Err(anyhow::anyhow!("--burst-db {other}: sqlite or postgres")),
                    })
                    .collect::<anyhow::Result<_>>()?;
            }
            "--out" => args.out = PathBuf::from(it.next().context("--out needs a folder")?),
            "--no-save" => args.save = false,
            "ALL" | "all" => args
                .scenarios
                .extend(SCENARIOS.iter().map(|(n, _)| n.to_string())),
            s if SCENARIOS.iter().any(|(n, _)| *n == s) => args.scenarios.push(s.to_string()),
            other => bail!("unknown argument {other:?}\n\n{}", usage()),
        }
    }
    if args.scenarios.is_empty() {
        args.scenarios = SCENARIOS.iter().map(|(n, _)| n.to_string()).collect();
    }
    let mut seen = std::collections::HashSet::new();
    args.scenarios.retain(|s| seen.insert(s.clone()));
    Ok(Some(args))
}

async fn run_scenario(name: &str, args: &Args) -> anyhow::Result<ScenarioReport> {
    match name {
        workorder::NAME => workorder::run(&args.workorder, &args.pg).await,
        query::NAME => query::run(&args.query).await,
        chat::NAME => chat::run(&args.chat, &args.pg).await,
        idle::NAME => idle::run(&args.idle).await,
        scheduler::NAME => scheduler::run(&args.scheduler, &args.pg).await,
        bot::NAME => bot::run(&args.bot).await,
        handover::NAME => handover::run(&args.handover, &args.pg).await,
        other => bail!("no scenario {other}"),
    }
}

fn commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    let c = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !c.is_empty()).then_some(c)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Thousands of sockets on each side of loopback.
    let nofile = sys::raise_nofile();
    if std::env::args().nth(1).as_deref() == Some("__serve") {
        return server::serve_child().await;
    }
    let Some(args) = parse(std::env::args().skip(1))? else {
        print!("{}", usage());
        return Ok(());
    };
    if std::env::var_os("RUST_LOG").is_some() {
        taxdesk::telemetry::init(taxdesk::config::LogFormat::Text);
    }
    if nofile < 10_500 {
        eprintln!(
            "note: RLIMIT_NOFILE is {nofile}; the idle scenario needs about one descriptor per connection"
        );
    }
    let started = chrono::Utc::now();
    let clock = std::time::Instant::now();
    let mut report = Report {
        tool: "taxdesk-bench",
        started_at: started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        finished_at: String::new(),
        command: format!(
            "cargo run {}-p taxdesk-bench -- {}",
            if cfg!(debug_assertions) {
                ""
            } else {
                "--release "
            },
            std::env::args().skip(1).collect::<Vec<_>>().join(" ")
        )
        .trim_end()
        .to_string(),
        build: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        machine: Machine::this(),
        commit: commit(),
        scenarios: vec![],
        seconds: 0.0,
    };
    for name in &args.scenarios {
        let t = std::time::Instant::now();
        // A failing scenario is reported, and the others still run.
        let mut sc = match run_scenario(name, &args).await {
            Ok(sc) => sc,
            Err(e) => {
                eprintln!("scenario {name} failed: {e:#}");
                let mut sc = ScenarioReport::new(name, "FAILED", String::new(), vec![]);
                sc.notes.push(format!("the scenario failed: {e:#}"));
                sc.checks
                    .push(report::Check::skipped(name, "—", &format!("failed: {e:#}")));
                sc
            }
        };
        sc.notes
            .push(format!("scenario time {:.0} s", t.elapsed().as_secs_f64()));
        println!("\n## {}: {}\n\n{}", sc.name, sc.title, sc.table());
        for n in &sc.notes {
            println!("- {n}");
        }
        report.scenarios.push(sc);
    }
    report.finished_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    report.seconds = clock.elapsed().as_secs_f64();
    println!(
        "\n## Targets\n\n{}",
        report::checks_table(report.scenarios.iter().flat_map(|s| s.checks.iter()))
    );
    if args.save {
        let stamp = started.format("%Y%m%dT%H%M%SZ").to_string();
        let path = report.write(&args.out, &stamp)?;
        println!("\nreport: {} (and latest.md, latest.json)", path.display());
    }
    Ok(())
}
