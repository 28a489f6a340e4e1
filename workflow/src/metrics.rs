//! Process-wide counters, rendered as Prometheus text by the binary's `/metrics`.
//!
//! Small on purpose: a handful of labelled counters and gauges, no histograms library.

use std::collections::BTreeMap;
use std::sync::{LazyLock, Mutex};

type Key = (&'static str, Vec<(&'static str, String)>);

static COUNTERS: LazyLock<Mutex<BTreeMap<Key, u64>>> = LazyLock::new(Default::default);
static HELP: LazyLock<Mutex<BTreeMap<&'static str, &'static str>>> =
    LazyLock::new(Default::default);

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
            if labels.is_empty() {
                out.push_str(&format!("{n} {v}\n"));
            } else {
                let l: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                    .collect();
                out.push_str(&format!("{n}{{{}}} {v}\n", l.join(",")));
            }
        }
        if !any {
            out.push_str(&format!("{name} 0\n"));
        }
    }
    out
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
