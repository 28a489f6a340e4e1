//! `idle`: how many idle WebSocket connections one server holds, and its resident memory per
//! connection. The server runs in a child process (this binary, `__serve`), so its VmRSS is
//! its own; each connection is authenticated (`connection_init` with a token of its own user)
//! and holds a `notifications` subscription, as an open taxpayer portal does, then stays quiet.

use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::{StreamExt, stream};
use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::client::Subscription;
use crate::report::{Check, Column, ScenarioReport};
use crate::server::{self, ChildServer};

pub const NAME: &str = "idle";
const CONNECT_CONCURRENCY: usize = 64;

pub struct Options {
    pub connections: usize,
}

pub async fn run(opts: &Options) -> anyhow::Result<ScenarioReport> {
    let n = opts.connections;
    let mut report = ScenarioReport::new(
        NAME,
        "idle WebSocket connections and resident memory per connection",
        format!(
            "A server in a child process (the bench binary's `__serve`: the same in-process \
             server, SQLite); {n} WebSocket connections to `/graphql/ws` ({CONNECT_CONCURRENCY} \
             opening at a time), each authenticated at `connection_init` as a taxpayer of its own \
             and subscribed to `notifications`, then idle. Memory: the child's VmRSS after one \
             connection has come and gone, and again with all {n} open (2 s after the last); \
             per connection = the difference ÷ connections held. The clients (this process) use \
             4 KiB tungstenite buffers so {n} of them fit beside the server."
        ),
        vec![
            Column::int("connections", "asked"),
            Column::int("held", "held"),
            Column::int("failed", "failed"),
            Column::float("open_seconds", "open s", 1),
            Column::int("rss_before_kib", "RSS before KiB"),
            Column::int("rss_after_kib", "RSS after KiB"),
            Column::float("kib_per_connection", "KiB/conn", 1),
        ],
    );
    let limit = crate::sys::nofile();
    if limit < n as u64 + 200 {
        report.notes.push(format!(
            "RLIMIT_NOFILE is {limit}: fewer than {n} connections can be opened on one side (raise `ulimit -Hn`)"
        ));
    }

    let child = ChildServer::start().await?;
    let pid = child.pid().context("server process id")?;
    let keys = server::keys()?;
    let url = format!("ws://{}/graphql/ws", child.addr);
    let cfg = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(4096);
    const SUB: &str = "subscription { notifications { id } }";
    // Warm-up: one connection opens and closes, so lazily built server state is in the baseline.
    let t = server::token(&keys, "taxpayer", "bench-idle-warm")?;
    Subscription::open_with(&url, &t, Some(SUB), json!({}), Some(cfg))
        .await?
        .close()
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = server::rss_kib(pid).context("reading the server's VmRSS")?;

    eprintln!("idle: opening {n} connections");
    let started = Instant::now();
    let results: Vec<anyhow::Result<Subscription>> = stream::iter(0..n)
        .map(|i| {
            let (url, keys) = (url.clone(), &keys);
            async move {
                // BENCH_IDLE_SAME_USER / BENCH_IDLE_NO_SUB: variants for finding where the
                // memory goes (one user for all; `connection_init` only).
                let user = if std::env::var_os("BENCH_IDLE_SAME_USER").is_some() {
                    "bench-idle-0".to_string()
                } else {
                    format!("bench-idle-{i}")
                };
                let t = server::token(keys, "taxpayer", &user)?;
                let sub = if std::env::var_os("BENCH_IDLE_NO_SUB").is_some() {
                    None
                } else {
                    Some(SUB)
                };
                Subscription::open_with(&url, &t, sub, json!({}), Some(cfg)).await
            }
        })
        .buffer_unordered(CONNECT_CONCURRENCY)
        .collect()
        .await;
    let open_seconds = started.elapsed().as_secs_f64();
    let mut held = vec![];
    let mut failed = 0usize;
    let mut first_error = None;
    for r in results {
        match r {
            Ok(s) => held.push(s),
            Err(e) => {
                failed += 1;
                first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = server::rss_kib(pid).context("reading the server's VmRSS")?;
    let held_n = held.len();
    eprintln!("idle: {held_n} held, {failed} failed; RSS {before} → {after} KiB");
    // Closing 10,000 sockets politely takes a while and measures nothing: drop them.
    drop(held);
    child.stop().await;

    let per = if held_n > 0 {
        after.saturating_sub(before) as f64 / held_n as f64
    } else {
        0.0
    };
    report.rows.push(json!({
        "connections": n,
        "held": held_n,
        "failed": failed,
        "open_seconds": open_seconds,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "kib_per_connection": per,
    }));
    if let Some(e) = first_error {
        report
            .notes
            .push(format!("{failed} connections failed; first: {e}"));
    }
    report.checks.push(Check::at_least(
        "idle WebSocket connections held",
        held_n as f64,
        "conns",
        n as f64,
    ));
    report.checks.push(Check::at_most(
        "server resident memory per idle connection",
        per,
        "KiB",
        40.0,
    ));
    Ok(report)
}
