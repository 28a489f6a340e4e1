//! `chat`: send → receive latency of chat messages over WebSocket with N concurrent
//! taxpayer–agent pairs.
//!
//! For each N, on a fresh server: N agents go ONLINE with `maxConcurrent: 1`; N taxpayers open
//! a chat and type 转人工, so each is routed to an agent of their own (checked: ACTIVE, one
//! session per agent); both sides subscribe to `chatEvents(sessionId)` over `/graphql/ws`;
//! one warm-up message each way proves both subscriptions live. Then, all pairs at once, each
//! pair exchanges M messages, alternating taxpayer → agent and agent → taxpayer, one at a time
//! (closed loop): the sender POSTs `sendMessage` while the receiver's socket is read, and the
//! latency is from just before the POST to the frame carrying that message arriving at the
//! receiver's WebSocket. A message not received within 30 s counts as lost.

use std::collections::HashSet;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow, bail};
use futures_util::{StreamExt, TryStreamExt, stream};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::sync::Barrier;

use crate::client::{Gql, Subscription};
use crate::pg::Pg;
use crate::report::{Check, Column, ScenarioReport};
use crate::server::BenchServer;

pub const NAME: &str = "chat";

/// Requests in flight at once while setting up (agents, sockets).
const SETUP_CONCURRENCY: usize = 32;
/// Hand-overs run one at a time: concurrent 转人工 requests all race to route the head of the
/// same queue and retry on conflict, which at 100 pairs takes minutes (see the README). The
/// set-up is not what is measured.
const HAND_OVER_CONCURRENCY: usize = 1;
/// A message not seen by the receiver within this long is counted as lost.
const RECEIVE_TIMEOUT: Duration = Duration::from_secs(30);

const SUBSCRIPTION: &str = "subscription($id: ID!) { chatEvents(sessionId: $id) { kind message { seq text senderRole } } }";
const SEND: &str = "mutation($input: SendMessageInput!) { sendMessage(input: $input) { seq } }";

pub struct Options {
    /// One run per entry, each on a fresh server.
    pub pairs: Vec<usize>,
    /// Messages per pair, alternating directions.
    pub messages: usize,
    /// The databases to run on (each `pairs` value on each).
    pub databases: Vec<Db>,
    /// Paced phase: each pair sends one message per interval (then a closed-loop phase);
    /// `None`: closed loop only.
    pub interval: Option<Duration>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

impl Db {
    pub fn name(self) -> &'static str {
        match self {
            Db::Sqlite => "SQLite",
            Db::Postgres => "PostgreSQL",
        }
    }
}

pub async fn run(opts: &Options, pg: &Pg) -> anyhow::Result<ScenarioReport> {
    let mut report = ScenarioReport {
        name: NAME.into(),
        title: "send → receive latency over WebSocket".into(),
        description: format!(
            "N taxpayer–agent pairs, each routed by 转人工 to its own agent (maxConcurrent 1), both \
             sides subscribed to `chatEvents` over `/graphql/ws`. Each pair sends {m} messages, \
             alternating taxpayer → agent and agent → taxpayer, each by `POST /graphql \
             sendMessage`, in two phases on the same sessions: **paced** — each pair sends one \
             message every {iv} (first sends spread over the first interval; N pairs offer N ÷ \
             interval msg/s), the latency figure; then **closed loop** — every pair sends its \
             next message as soon as the last arrived, the throughput figure (its latency is \
             ≈ pairs ÷ msg/s once saturated). Latency: from just before the POST to the MESSAGE \
             frame arriving at the other side's WebSocket (HdrHistogram, µs). msg/s: messages \
             received ÷ wall time of the phase. Lost: not received within {t} s.",
            m = opts.messages,
            iv = opts
                .interval
                .map(|d| format!("{:.1} s", d.as_secs_f64()))
                .unwrap_or("— (off)".into()),
            t = RECEIVE_TIMEOUT.as_secs()
        ),
        columns: vec![
            Column::int("database", "database"),
            Column::int("pairs", "pairs"),
            Column::int("mode", "phase"),
            Column::int("messages_per_pair", "msgs/pair"),
            Column::int("delivered", "delivered"),
            Column::int("lost", "lost"),
            Column::float("p50_ms", "p50 ms", 2),
            Column::float("p99_ms", "p99 ms", 2),
            Column::float("p999_ms", "p99.9 ms", 2),
            Column::float("max_ms", "max ms", 2),
            Column::float("messages_per_second", "msg/s", 0),
        ],
        rows: vec![],
        notes: vec![],
        checks: vec![],
    };
    let pg_ok = pg.check().await;
    for &db in &opts.databases {
        for &n in &opts.pairs {
            let figure = format!("chat send→receive p99, {n} pairs, {}", db.name());
            if db == Db::Postgres
                && let Err(why) = &pg_ok
            {
                report.notes.push(format!("{}: skipped: {why}", db.name()));
                report.checks.push(Check::skipped(
                    &figure,
                    if n >= 1000 { "≤ 20 ms" } else { "—" },
                    why,
                ));
                continue;
            }
            eprintln!(
                "chat: {n} pairs × {} messages on {}",
                opts.messages,
                db.name()
            );
            let outcomes = match db {
                Db::Sqlite => run_once(n, opts.messages, opts.interval, None).await?,
                Db::Postgres => {
                    let bench_db = pg.create_db("chat").await?;
                    let r = run_once(n, opts.messages, opts.interval, Some(&bench_db.url)).await;
                    bench_db.drop_db().await;
                    r?
                }
            };
            for outcome in outcomes {
                let mode = match outcome.paced {
                    Some(iv) => format!("paced, 1 msg/{:.1} s per pair", iv.as_secs_f64()),
                    None => "closed loop".to_string(),
                };
                let p99 = outcome.histogram.value_at_quantile(0.99) as f64 / 1000.0;
                let rate = outcome.delivered as f64 / outcome.elapsed.as_secs_f64().max(1e-9);
                let figure = format!("{figure} ({mode})");
                // The target is for latency at a person's rhythm; a closed loop measures
                // throughput (its latency is queueing: pairs ÷ msg/s).
                if n >= 1000 && (outcome.paced.is_some() || opts.interval.is_none()) {
                    report.checks.push(Check::at_most(&figure, p99, "ms", 20.0));
                } else {
                    report.checks.push(Check::info(&figure, p99, "ms"));
                }
                if outcome.paced.is_none() {
                    report.checks.push(Check::info(
                        &format!("chat msg/s, {n} pairs, {} (closed loop)", db.name()),
                        rate,
                        "msg/s",
                    ));
                }
                if outcome.errors > 0 {
                    report.notes.push(format!(
                        "{} {n} pairs, {mode}: {} send errors; first: {}",
                        db.name(),
                        outcome.errors,
                        outcome.first_error.as_deref().unwrap_or("?")
                    ));
                }
                if outcome.lost > 0 {
                    report.notes.push(format!(
                        "{} {n} pairs, {mode}: {} messages not received within {} s",
                        db.name(),
                        outcome.lost,
                        RECEIVE_TIMEOUT.as_secs()
                    ));
                }
                let mut row = outcome.row(n, opts.messages);
                row["database"] = json!(db.name());
                row["mode"] = json!(mode);
                report.rows.push(row);
            }
        }
    }
    Ok(report)
}

/// One measured run on a fresh server.
async fn run_once(
    pairs: usize,
    messages: usize,
    interval: Option<Duration>,
    database_url: Option<&str>,
) -> anyhow::Result<Vec<Outcome>> {
    // Nothing times out underneath the benchmark: setting up 1,000 pairs takes a while.
    let mut extra = vec![];
    if let Some(url) = database_url {
        extra.push(("DATABASE_URL", url));
    }
    let server = BenchServer::start(
        &[
            extra.as_slice(),
            &[
                ("TAXDESK_ANSWER_TIMEOUT", "4h"),
                ("TAXDESK_IDLE_TIMEOUT", "4h"),
                ("TAXDESK_QUEUE_TIMEOUT", "4h"),
                ("TAXDESK_QUEUE_OFFER_AFTER", "4h"),
            ],
        ]
        .concat(),
    )
    .await?;
    let result = drive(&server, pairs, messages, interval).await;
    server.stop().await;
    result
}

struct Pair {
    index: usize,
    session: String,
    taxpayer: String,
    agent: String,
}

async fn drive(
    server: &BenchServer,
    n: usize,
    messages: usize,
    interval: Option<Duration>,
) -> anyhow::Result<Vec<Outcome>> {
    let gql = Gql::new(server.graphql_url())?;
    let setup_started = Instant::now();

    // Agents at work, one chat each. Each agent goes ONLINE just before its taxpayer asks
    // for a human and AWAY once routed (an away agent keeps chatting, gets no new chats):
    // routing scans every online agent with a query each, so with all N online the set-up
    // is O(N²) (1,000 pairs on PostgreSQL: ~7 min); this way it is O(N).
    let agents: Vec<(String, String)> = (0..n)
        .map(|i| {
            let id = format!("bench-agent-{i}");
            server.token("staff", &id).map(|t| (id, t))
        })
        .collect::<anyhow::Result<_>>()?;
    const STATUS: &str = "mutation($s: AgentPresence!) { setAgentStatus(input: {status: $s, maxConcurrent: 1}) { status } }";

    // Taxpayers ask for a human and are routed, one at a time.
    let routed: Vec<(usize, String, String, String)> = stream::iter(0..n)
        .map(|i| {
            let gql = gql.clone();
            let token = server.token("taxpayer", &format!("bench-tp-{i}"));
            let agent = agents[i].1.clone();
            async move {
                let token = token?;
                gql.run(&agent, STATUS, json!({"s": "ONLINE"}))
                    .await
                    .context("agent going online")?;
                let (session, agent_id) = hand_over(&gql, &token).await?;
                gql.run(&agent, STATUS, json!({"s": "AWAY"}))
                    .await
                    .context("agent going away")?;
                anyhow::Ok((i, session, token, agent_id))
            }
        })
        .buffer_unordered(HAND_OVER_CONCURRENCY)
        .try_collect()
        .await
        .context("routing taxpayers to agents")?;
    let distinct: HashSet<&str> = routed.iter().map(|r| r.3.as_str()).collect();
    if distinct.len() != n {
        bail!(
            "{n} sessions went to {} distinct agents (maxConcurrent 1 broken?)",
            distinct.len()
        );
    }
    let agent_tokens: std::collections::HashMap<&str, &str> = agents
        .iter()
        .map(|(id, t)| (id.as_str(), t.as_str()))
        .collect();
    let mut pairs: Vec<Pair> = routed
        .into_iter()
        .map(|(index, session, taxpayer, agent_id)| {
            let agent = agent_tokens
                .get(agent_id.as_str())
                .ok_or_else(|| anyhow!("session {session} went to unknown agent {agent_id}"))?
                .to_string();
            anyhow::Ok(Pair {
                index,
                session,
                taxpayer,
                agent,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    pairs.sort_by_key(|p| p.index);
    eprintln!(
        "chat:   {n} sessions ACTIVE, each with its own agent ({:.1} s)",
        setup_started.elapsed().as_secs_f64()
    );

    // Both sides subscribe; a warm-up message each way proves the subscriptions live.
    let ws_url = server.ws_url();
    let ready: Vec<(Pair, Subscription, Subscription)> = stream::iter(pairs)
        .map(|p| {
            let gql = gql.clone();
            let ws_url = ws_url.clone();
            async move {
                let vars = json!({"id": p.session});
                let mut tp = Subscription::open(&ws_url, &p.taxpayer, SUBSCRIPTION, vars.clone())
                    .await
                    .context("taxpayer subscription")?;
                let mut ag = Subscription::open(&ws_url, &p.agent, SUBSCRIPTION, vars)
                    .await
                    .context("agent subscription")?;
                warm_up(&gql, &p, &mut tp, &mut ag).await?;
                anyhow::Ok((p, tp, ag))
            }
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .try_collect()
        .await
        .context("subscribing")?;
    let setup = setup_started.elapsed();
    eprintln!(
        "chat:   {} sockets subscribed and warm; setup took {:.1} s; measuring",
        2 * n,
        setup.as_secs_f64()
    );

    // The measured phases, every pair at once: paced at a person's rhythm (latency), then
    // closed loop (throughput), on the same sessions and sockets.
    let mut ready = ready;
    let mut outcomes = vec![];
    for pace in [interval, None] {
        if pace.is_none() && interval.is_none() && !outcomes.is_empty() {
            break;
        }
        let barrier = Arc::new(Barrier::new(n + 1));
        let start = Instant::now() + Duration::from_millis(200);
        let tasks: Vec<_> = ready
            .into_iter()
            .map(|(p, mut tp, mut ag)| {
                let gql = gql.clone();
                let barrier = barrier.clone();
                // Pair k's first message at k/n of the way through the first interval.
                let slot = pace.map(|iv| (start + iv.mul_f64(p.index as f64 / n as f64), iv));
                tokio::spawn(async move {
                    barrier.wait().await;
                    let o = exchange(&gql, &p, &mut tp, &mut ag, messages, slot).await;
                    o.map(|o| (o, (p, tp, ag)))
                })
            })
            .collect();
        barrier.wait().await;
        let started = Instant::now();
        let mut total = Outcome::new()?;
        let mut back = vec![];
        for t in tasks {
            let (o, pair) = t.await.context("a pair's task")??;
            total.merge(o)?;
            back.push(pair);
        }
        total.elapsed = started.elapsed();
        total.setup = setup;
        total.paced = pace;
        outcomes.push(total);
        ready = back;
    }
    for (_, tp, ag) in ready {
        tp.close().await;
        ag.close().await;
    }
    Ok(outcomes)
}

/// Opens a chat and types 转人工; returns the session and its agent once it is ACTIVE.
async fn hand_over(gql: &Gql, token: &str) -> anyhow::Result<(String, String)> {
    let open = gql
        .run(token, "mutation { openChat { id status } }", json!({}))
        .await?;
    let session = open["openChat"]["id"]
        .as_str()
        .ok_or_else(|| anyhow!("openChat gave no id: {open}"))?
        .to_string();
    gql.run(
        token,
        SEND,
        json!({"input": {"sessionId": session, "kind": "TEXT", "text": "转人工"}}),
    )
    .await
    .context("typing 转人工")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = gql
            .run(
                token,
                "query($id: ID!) { chatSession(id: $id) { status agent { id } } }",
                json!({"id": session}),
            )
            .await?;
        let s = &s["chatSession"];
        if s["status"] == "ACTIVE"
            && let Some(agent) = s["agent"]["id"].as_str()
        {
            return Ok((session, agent.to_string()));
        }
        if Instant::now() > deadline {
            bail!("session {session} not ACTIVE after 30 s: {s}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends one message each way (retrying while a subscription is not yet registered).
async fn warm_up(
    gql: &Gql,
    p: &Pair,
    tp: &mut Subscription,
    ag: &mut Subscription,
) -> anyhow::Result<()> {
    for (from, to, side) in [
        (&p.taxpayer, &mut *ag, "agent"),
        (&p.agent, &mut *tp, "taxpayer"),
    ] {
        let mut live = false;
        for attempt in 0..10 {
            let text = format!("warm-up {} {side} {attempt}", p.index);
            let input = json!({"input": {"sessionId": p.session, "kind": "TEXT", "text": text}});
            gql.run(from, SEND, input).await.context("warm-up send")?;
            if tokio::time::timeout(Duration::from_secs(2), receive(to, &text))
                .await
                .is_ok_and(|r| r.is_ok())
            {
                live = true;
                break;
            }
        }
        if !live {
            bail!(
                "pair {}: the {side}'s subscription got no warm-up message",
                p.index
            );
        }
    }
    Ok(())
}

/// Reads `sub` until the MESSAGE event with exactly `text`; returns when its frame arrived.
async fn receive(sub: &mut Subscription, text: &str) -> anyhow::Result<Instant> {
    loop {
        let e = sub.next_event().await?;
        let ev = &e.data["chatEvents"];
        if ev["kind"] == "MESSAGE" && ev["message"]["text"] == text {
            return Ok(e.at);
        }
    }
}

/// One pair's measured exchange.
async fn exchange(
    gql: &Gql,
    p: &Pair,
    tp: &mut Subscription,
    ag: &mut Subscription,
    messages: usize,
    pace: Option<(Instant, Duration)>,
) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new()?;
    for i in 0..messages {
        // Paced: message i of the pair is due at its first slot + i × interval (slots spread
        // over the first interval); a send that is behind goes at once.
        if let Some((first, interval)) = pace {
            tokio::time::sleep_until((first + interval * i as u32).into()).await;
        }
        let (from, to) = if i % 2 == 0 {
            (&p.taxpayer, &mut *ag)
        } else {
            (&p.agent, &mut *tp)
        };
        let epoch_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros();
        let mode = if pace.is_some() { "paced" } else { "closed" };
        let text = format!("bench {mode} {}/{i} sent_at_us={epoch_us}", p.index);
        let input = json!({"input": {"sessionId": p.session, "kind": "TEXT", "text": text}});
        let started = Instant::now();
        let mut send = pin!(gql.run(from, SEND, input));
        let mut recv = pin!(tokio::time::timeout(RECEIVE_TIMEOUT, receive(to, &text)));
        let mut sent = false;
        let mut got: Option<Instant> = None;
        o.sent += 1;
        loop {
            tokio::select! {
                r = &mut send, if !sent => match r {
                    Ok(_) => sent = true,
                    Err(e) => {
                        o.errors += 1;
                        o.first_error.get_or_insert_with(|| format!("{e:#}"));
                        break;
                    }
                },
                r = &mut recv, if got.is_none() => match r {
                    Ok(Ok(at)) => got = Some(at),
                    Ok(Err(e)) => return Err(e.context(format!("pair {} socket", p.index))),
                    Err(_) => {
                        o.lost += 1;
                        break;
                    }
                },
            }
            if sent && got.is_some() {
                break;
            }
        }
        if let Some(at) = got {
            let us = at.saturating_duration_since(started).as_micros();
            o.histogram
                .saturating_record(u64::try_from(us).unwrap_or(u64::MAX));
            o.delivered += 1;
        }
    }
    Ok(o)
}

pub(crate) struct Outcome {
    histogram: Histogram<u64>,
    sent: u64,
    delivered: u64,
    lost: u64,
    errors: u64,
    first_error: Option<String>,
    elapsed: Duration,
    setup: Duration,
    /// The pacing interval per pair; `None`: closed loop.
    paced: Option<Duration>,
}

impl Outcome {
    fn new() -> anyhow::Result<Outcome> {
        Ok(Outcome {
            // 1 µs … 60 s at three significant figures.
            histogram: Histogram::new_with_bounds(1, 60_000_000, 3).context("histogram")?,
            sent: 0,
            delivered: 0,
            lost: 0,
            errors: 0,
            first_error: None,
            elapsed: Duration::ZERO,
            setup: Duration::ZERO,
            paced: None,
        })
    }

    fn merge(&mut self, o: Outcome) -> anyhow::Result<()> {
        self.histogram
            .add(&o.histogram)
            .map_err(|e| anyhow!("merging histograms: {e:?}"))?;
        self.sent += o.sent;
        self.delivered += o.delivered;
        self.lost += o.lost;
        self.errors += o.errors;
        if self.first_error.is_none() {
            self.first_error = o.first_error;
        }
        Ok(())
    }

    fn row(&self, pairs: usize, messages: usize) -> Value {
        let h = &self.histogram;
        let ms = |us: u64| us as f64 / 1000.0;
        let (p50, p90, p99, p999, max, mean) = if h.is_empty() {
            (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        } else {
            (
                ms(h.value_at_quantile(0.50)),
                ms(h.value_at_quantile(0.90)),
                ms(h.value_at_quantile(0.99)),
                ms(h.value_at_quantile(0.999)),
                ms(h.max()),
                h.mean() / 1000.0,
            )
        };
        let secs = self.elapsed.as_secs_f64();
        json!({
            "pairs": pairs,
            "messages_per_pair": messages,
            "sent": self.sent,
            "delivered": self.delivered,
            "lost": self.lost,
            "errors": self.errors,
            "p50_ms": p50,
            "p90_ms": p90,
            "p99_ms": p99,
            "p999_ms": p999,
            "max_ms": max,
            "mean_ms": mean,
            "messages_per_second": if secs > 0.0 { self.delivered as f64 / secs } else { 0.0 },
            "measured_seconds": secs,
            "setup_seconds": self.setup.as_secs_f64(),
        })
    }
}
