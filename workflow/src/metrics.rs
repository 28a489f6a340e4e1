//! Process-wide counters, rendered as Prometheus text by the binary's `/metrics`.
//!
//! Small on purpose: a handful of labelled counters and gauges, no histograms library.

use std::collections::BTreeMap;
use std::sync::{LazyLock, Mutex};

type Key = (&'static str, Vec<(&'static str, String)>);

static COUNTERS: LazyLock<Mutex<BTreeMap<Key, u64>>> = LazyLock::new(Default::default);
static GAUGES: LazyLock<Mutex<BTreeMap<Key, f64>>> = LazyLock::new(Default::default);
static HELP: LazyLock<Mutex<BTreeMap<&'static str, &'static str>>> =
    LazyLock::new(Default::default);
static HISTOGRAMS: LazyLock<Mutex<BTreeMap<&'static str, Histogram>>> =
    LazyLock::new(Default::default);

/// Upper bounds (seconds) of the buckets of every histogram.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];

#[derive(Clone, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Records one observation (in seconds) in a histogram.
pub fn observe(name: &'static str, value: f64) {
    if let Ok(mut h) = HISTOGRAMS.lock() {
        let h = h.entry(name).or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if value <= *b {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += value;
    }
}

/// Sets a gauge to a current value.
pub fn set_gauge(name: &'static str, labels: &[(&'static str, &str)], value: f64) {
    let key = (
        name,
        labels.iter().map(|(k, v)| (*k, (*v).to_string())).collect(),
    );
    if let Ok(mut g) = GAUGES.lock() {
        g.insert(key, value);
    }
}

/// Declares a counter so it is exported (at zero) before its first increment.
pub fn describe(name: &'static str, help: &'static str) {
    if let Ok(mut h) = HELP.lock() {
        h.insert(name, help);
    }
}

pub fn inc(name: &'static str, labels: &[(&'static str, &str)]) {
    add(name, labels, 1);
}

pub fn add(name: &'static str, labels: &[(&'static str, &str)], n: u64) {
    let key = (
        name,
        labels.iter().map(|(k, v)| (*k, (*v).to_string())).collect(),
    );
    if let Ok(mut c) = COUNTERS.lock() {
        *c.entry(key).or_default() += n;
    }
}

/// Counts one applied state-machine transition.
pub fn transition(machine: &str, event: &str) {
    inc(
        "taxdesk_transitions_total",
        &[("machine", machine), ("event", event)],
    );
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Prometheus text exposition format, version 0.0.4.
pub fn render() -> String {
    let help = HELP.lock().map(|h| h.clone()).unwrap_or_default();
    let counters = COUNTERS.lock().map(|c| c.clone()).unwrap_or_default();
    let mut out = String::new();
    for (name, text) in &help {
        out.push_str(&format!("# HELP {name} {text}\n# TYPE {name} counter\n"));
        let mut any = false;
        for ((n, labels), v) in counters.iter().filter(|((n, _), _)| n == name) {
            any = true;
            out.push_str(&format!("{n}{} {v}\n", label_text(labels)));
        }
        if !any {
            out.push_str(&format!("{name} 0\n"));
        }
    }
    let gauges = GAUGES.lock().map(|g| g.clone()).unwrap_or_default();
    let mut last = "";
    for ((name, labels), v) in &gauges {
        if *name != last {
            out.push_str(&format!("# TYPE {name} gauge\n"));
            last = name;
        }
        out.push_str(&format!("{name}{} {v}\n", label_text(labels)));
    }
    let histograms = HISTOGRAMS.lock().map(|h| h.clone()).unwrap_or_default();
    for (name, h) in &histograms {
        out.push_str(&format!("# TYPE {name} histogram\n"));
        for (i, b) in BUCKETS.iter().enumerate() {
            out.push_str(&format!("{name}_bucket{{le=\"{b}\"}} {}\n", h.counts[i]));
        }
        out.push_str(&format!(
            "{name}_bucket{{le=\"+Inf\"}} {}\n{name}_sum {}\n{name}_count {}\n",
            h.count, h.sum, h.count
        ));
    }
    out
}

fn label_text(labels: &[(&'static str, String)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let l: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    format!("{{{}}}", l.join(","))
}

/// The counters every instance exports.
pub fn describe_defaults() {
    describe(
        "taxdesk_http_requests_total",
        "HTTP requests served, by route and status class",
    );
    describe(
        "taxdesk_graphql_operations_total",
        "GraphQL operations executed, by kind and outcome",
    );
    describe(
        "taxdesk_transitions_total",
        "State-machine transitions applied, by machine and event",
    );
    describe("taxdesk_jobs_run_total", "Scheduled jobs run, by kind");
    describe(
        "taxdesk_jobs_failed_total",
        "Scheduled jobs failed, by kind",
    );
    describe(
        "taxdesk_outbox_sent_total",
        "Emails delivered from the outbox",
    );
    describe(
        "taxdesk_outbox_failed_total",
        "Email delivery attempts that failed",
    );
}
