//! `query`: a trivial authenticated GraphQL query (`{ me { id } }`) in requests per second and
//! latency, against a bare axum handler in the same process answering the same request with
//! the same JSON, driven by the same client at the same concurrency.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use serde_json::{Value, json};

use crate::client::Gql;
use crate::load::{self, LoadResult};
use crate::report::{Check, Column, ScenarioReport};
use crate::server::BenchServer;

pub const NAME: &str = "query";
const QUERY: &str = "{ me { id } }";

pub struct Options {
    /// Requests in flight at once (one closed loop each).
    pub concurrency: usize,
    /// Seconds of measurement per target (after a short warm-up).
    pub seconds: u64,
}

pub async fn run(opts: &Options) -> anyhow::Result<ScenarioReport> {
    let mut report = ScenarioReport::new(
        NAME,
        "trivial authenticated GraphQL query vs a bare axum handler",
        format!(
            "{c} closed loops for {s} s each POST `{QUERY}` with a taxpayer's bearer token to \
             `/graphql` (JWT checked, user from the in-memory cache, async-graphql executes), then \
             the same requests to a bare axum handler (`Json<Value>` in, a fixed `Json` out) on a \
             runtime of its own in the same process. One reqwest client (keep-alive, \
             TCP_NODELAY); latency per request in an HdrHistogram. Load generator and server \
             share the 2 cores.",
            c = opts.concurrency,
            s = opts.seconds
        ),
        vec![
            Column::int("target", "target"),
            Column::int("requests", "requests"),
            Column::int("errors", "errors"),
            Column::float("requests_per_second", "req/s", 0),
            Column::float("p50_ms", "p50 ms", 2),
            Column::float("p99_ms", "p99 ms", 2),
            Column::float("p999_ms", "p99.9 ms", 2),
        ],
    );
    let duration = Duration::from_secs(opts.seconds);

    let server = BenchServer::start(&[]).await?;
    let token = server.token("taxpayer", "bench-query")?;
    let gql = Gql::new(server.graphql_url())?;
    // The first request upserts the user; the rest hit the cache.
    gql.run(&token, QUERY, json!({}))
        .await
        .context("first query")?;
    let body = json!({"query": QUERY, "variables": {}}).to_string();
    let graphql = drive(
        &server.graphql_url(),
        &token,
        &body,
        opts.concurrency,
        duration,
        true,
    )
    .await;
    server.stop().await;
    let graphql = graphql?;

    let bare = Bare::start()?;
    let bare_url = format!("http://{}/graphql", bare.addr);
    let bare_result = drive(&bare_url, &token, &body, opts.concurrency, duration, false).await;
    drop(bare);
    let bare_result = bare_result?;

    for (name, r) in [
        ("GraphQL `{ me { id } }`", &graphql),
        ("bare axum handler", &bare_result),
    ] {
        let mut row = load::quantiles(&r.histogram);
        row["target"] = json!(name);
        row["requests"] = json!(r.ok);
        row["errors"] = json!(r.errors);
        row["requests_per_second"] = json!(r.per_second());
        report.rows.push(row);
        if r.errors > 0 {
            report.notes.push(format!(
                "{name}: {} errors; first: {}",
                r.errors,
                r.first_error.as_deref().unwrap_or("?")
            ));
        }
    }
    report.checks.push(Check::ratio_at_least(
        "trivial query req/s",
        graphql.per_second(),
        "req/s",
        "bare axum",
        bare_result.per_second(),
        0.4,
    ));
    report.checks.push(Check::info_ratio(
        "trivial query p99",
        load::ms(&graphql.histogram, 0.99),
        "ms",
        "bare axum p99",
        load::ms(&bare_result.histogram, 0.99),
    ));
    Ok(report)
}

/// Warm-up (2 s, not recorded), then the measured closed loops.
async fn drive(
    url: &str,
    token: &str,
    body: &str,
    concurrency: usize,
    duration: Duration,
    graphql: bool,
) -> anyhow::Result<LoadResult> {
    let http = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(30))
        .build()?;
    let (url, token, body) = (url.to_string(), token.to_string(), body.to_string());
    let op = move |_w: usize, _i: u64, mut h: hdrhistogram::Histogram<u64>| {
        let (http, url, token, body) = (
            http.clone(),
            url.to_string(),
            token.to_string(),
            body.to_string(),
        );
        async move {
            let started = Instant::now();
            let r = async {
                let resp = http
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await?;
                let v: Value = resp.json().await?;
                if graphql && v["data"]["me"]["id"].is_null() {
                    return Err(anyhow!("unexpected answer {v}"));
                }
                anyhow::Ok(1)
            }
            .await;
            if r.is_ok() {
                load::record(&mut h, started.elapsed());
            }
            (h, r)
        }
    };
    let op = std::sync::Arc::new(op);
    let warm = op.clone();
    load::run(concurrency, Duration::from_secs(2), move |w, i, h| {
        warm(w, i, h)
    })
    .await?;
    load::run(concurrency, duration, move |w, i, h| op(w, i, h)).await
}

/// A bare axum server on a runtime (and thread) of its own, like the taxdesk server.
struct Bare {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Bare {
    fn start() -> anyhow::Result<Bare> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::io::Result<SocketAddr>>();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("bare-axum".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build();
                let rt = match rt {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(async move {
                    async fn handler(axum::Json(_v): axum::Json<Value>) -> axum::Json<Value> {
                        axum::Json(json!({"data": {"me": {"id": "bench-query"}}}))
                    }
                    let app = axum::Router::new().route("/graphql", axum::routing::post(handler));
                    let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(listener.local_addr());
                    // Same as taxdesk: NODELAY on accepted sockets.
                    use axum::serve::ListenerExt;
                    let listener = listener.tap_io(|tcp| {
                        let _ = tcp.set_nodelay(true);
                    });
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async {
                            let _ = stop_rx.await;
                        })
                        .await;
                });
            })?;
        let addr = ready_rx.recv().context("bare axum thread")??;
        Ok(Bare {
            addr,
            stop: Some(stop_tx),
        })
    }
}

impl Drop for Bare {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}
