//! `taxdesk-bench`: load scenarios against taxdesk servers it starts itself (in-process, on
//! loopback, each with a fresh SQLite database), reported as Markdown + JSON under
//! `bench/results/`.
//!
//! ```sh
//! cargo run --release -p taxdesk-bench -- chat [--pairs 100[,1000]] [--messages 50]
//! cargo run --release -p taxdesk-bench -- ALL
//! ```
//!
//! A scenario is a module with an async `run(&Options) -> ScenarioReport`; adding one is a
//! new module, an entry in `SCENARIOS` and an arm in `run_scenario`.

mod chat;
mod client;
mod report;
mod server;

use std::path::PathBuf;

use anyhow::{Context, bail};

use report::{Machine, Report, ScenarioReport};

/// Every scenario, in the order `ALL` runs them, with a line for `--help`.
const SCENARIOS: &[(&str, &str)] = &[(
    chat::NAME,
    "send → receive latency (p50/p99/p99.9/max) and msg/s for N chat pairs over WebSocket",
)];

const USAGE: &str = "\
usage: taxdesk-bench [SCENARIO… | ALL] [options]

Starts its own taxdesk server(s) on 127.0.0.1 with a temporary SQLite database, loads them,
prints the results and writes <timestamp>-<scenarios>.{md,json} and latest.{md,json}.

options:
  --pairs N[,N…]    chat: concurrent taxpayer–agent pairs, one run each (default 100)
  --messages M      chat: messages per pair, alternating directions (default 50)
  --out DIR         where reports go (default: bench/results of this workspace)
  --no-save         print only, write no files
  -h, --help        this text

scenarios:";

struct Args {
    scenarios: Vec<String>,
    chat: chat::Options,
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
        chat: chat::Options {
            pairs: vec![100],
            messages: 50,
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
        chat::NAME => chat::run(&args.chat).await,
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
    let Some(args) = parse(std::env::args().skip(1))? else {
        print!("{}", usage());
        return Ok(());
    };
    if std::env::var_os("RUST_LOG").is_some() {
        taxdesk::telemetry::init(taxdesk::config::LogFormat::Text);
    }
    let started = chrono::Utc::now();
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
    };
    for name in &args.scenarios {
        let sc = run_scenario(name, &args)
            .await
            .with_context(|| format!("scenario {name}"))?;
        println!("\n## {}: {}\n\n{}", sc.name, sc.title, sc.table());
        for n in &sc.notes {
            println!("- {n}");
        }
        report.scenarios.push(sc);
    }
    report.finished_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    if args.save {
        let stamp = started.format("%Y%m%dT%H%M%SZ").to_string();
        let path = report.write(&args.out, &stamp)?;
        println!("\nreport: {} (and latest.md, latest.json)", path.display());
    }
    Ok(())
}
