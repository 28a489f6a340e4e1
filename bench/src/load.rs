//! A closed-loop load driver: `concurrency` workers each run one operation after another for
//! a fixed time; every operation's latency goes into one HdrHistogram.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use hdrhistogram::Histogram;
use serde_json::{Value, json};

/// Microseconds, 1 µs … 120 s at three significant figures.
pub fn histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, 120_000_000, 3).context("histogram")
}

pub fn record(h: &mut Histogram<u64>, d: Duration) {
    h.saturating_record(u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1));
}

pub fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    if h.is_empty() {
        0.0
    } else {
        h.value_at_quantile(q) as f64 / 1000.0
    }
}

/// Latency quantiles of a histogram as JSON fields (`p50_ms` …).
pub fn quantiles(h: &Histogram<u64>) -> Value {
    json!({
        "p50_ms": ms(h, 0.50),
        "p90_ms": ms(h, 0.90),
        "p99_ms": ms(h, 0.99),
        "p999_ms": ms(h, 0.999),
        "max_ms": if h.is_empty() { 0.0 } else { h.max() as f64 / 1000.0 },
    })
}

pub struct LoadResult {
    pub histogram: Histogram<u64>,
    /// Operations that succeeded (an operation may count several units, see `run`).
    pub ok: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
}

impl LoadResult {
    pub fn per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Runs `op(worker, iteration)` in `concurrency` closed loops for `duration`. `op` returns
/// how many units it completed (e.g. 1 request) and records its own latencies in the
/// histogram it is given. Errors are counted, not fatal.
pub async fn run<F, Fut>(
    concurrency: usize,
    duration: Duration,
    op: F,
) -> anyhow::Result<LoadResult>
where
    F: Fn(usize, u64, Histogram<u64>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = (Histogram<u64>, anyhow::Result<u64>)> + Send + 'static,
{
    let op = Arc::new(op);
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..concurrency)
        .map(|w| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut h = histogram()?;
                let (mut ok, mut errors, mut first_error) = (0u64, 0u64, None::<String>);
                let mut i = 0u64;
                while Instant::now() < deadline {
                    let (back, r) = op(w, i, h).await;
                    h = back;
                    match r {
                        Ok(n) => ok += n,
                        Err(e) => {
                            errors += 1;
                            first_error.get_or_insert_with(|| format!("{e:#}"));
                        }
                    }
                    i += 1;
                }
                anyhow::Ok((h, ok, errors, first_error))
            })
        })
        .collect();
    let mut total = LoadResult {
        histogram: histogram()?,
        ok: 0,
        errors: 0,
        first_error: None,
        elapsed: Duration::ZERO,
    };
    for t in tasks {
        let (h, ok, errors, first) = t.await.context("a load worker")??;
        total
            .histogram
            .add(&h)
            .map_err(|e| anyhow!("merging histograms: {e:?}"))?;
        total.ok += ok;
        total.errors += errors;
        if total.first_error.is_none() {
            total.first_error = first;
        }
    }
    total.elapsed = started.elapsed();
    Ok(total)
}
