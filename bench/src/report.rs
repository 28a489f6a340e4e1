//! The report: one JSON document and one Markdown page per run, each scenario a table whose
//! rows are JSON objects (the JSON keeps every field; the Markdown shows the chosen columns).

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Serialize)]
pub struct Report {
    pub tool: &'static str,
    pub started_at: String,
    pub finished_at: String,
    pub command: String,
    /// `release` or `debug`.
    pub build: &'static str,
    pub machine: Machine,
    /// `git rev-parse --short HEAD` of the working tree, when there is one.
    pub commit: Option<String>,
    pub scenarios: Vec<ScenarioReport>,
    /// Wall time of the whole run.
    pub seconds: f64,
}

#[derive(Debug, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub os: &'static str,
    pub arch: &'static str,
    /// `/proc/loadavg`'s 1, 5 and 15 minute figures when the run started: anything else busy
    /// on the machine shows here.
    pub load_average: Option<String>,
}

impl Machine {
    pub fn this() -> Machine {
        Machine {
            cores: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            os: std::env::consts::OS,
            arch: std::env::consts::ARCH,
            load_average: std::fs::read_to_string("/proc/loadavg")
                .ok()
                .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ScenarioReport {
    pub name: String,
    pub title: String,
    /// What is measured and how, in a paragraph.
    pub description: String,
    /// The Markdown table's columns, in order (the JSON rows carry every field).
    #[serde(skip)]
    pub columns: Vec<Column>,
    pub rows: Vec<Value>,
    /// Anything the reader should know: errors, losses, missed targets.
    pub notes: Vec<String>,
    /// The targets: each figure beside its same-run limit, met or missed.
    pub checks: Vec<Check>,
}

impl ScenarioReport {
    pub fn new(name: &str, title: &str, description: String, columns: Vec<Column>) -> Self {
        ScenarioReport {
            name: name.into(),
            title: title.into(),
            description,
            columns,
            rows: vec![],
            notes: vec![],
            checks: vec![],
        }
    }
}

/// One figure of the issue: its value, the limit measured in the same run (when there is
/// one) as a ratio, the target and whether it is met — and by how much it is missed.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub figure: String,
    pub value: Option<f64>,
    pub unit: String,
    /// What the figure is compared with, measured in the same run.
    pub limit_label: Option<String>,
    pub limit: Option<f64>,
    pub ratio: Option<f64>,
    pub target: String,
    /// `None`: informational, or skipped.
    pub met: Option<bool>,
    /// How far from the target, when missed (or why skipped).
    pub miss: Option<String>,
}

impl Check {
    fn base(figure: &str, value: f64, unit: &str, target: String) -> Check {
        Check {
            figure: figure.into(),
            value: Some(value),
            unit: unit.into(),
            limit_label: None,
            limit: None,
            ratio: None,
            target,
            met: None,
            miss: None,
        }
    }

    /// `value / limit >= min_ratio`.
    pub fn ratio_at_least(
        figure: &str,
        value: f64,
        unit: &str,
        limit_label: &str,
        limit: f64,
        min_ratio: f64,
    ) -> Check {
        let ratio = if limit > 0.0 { value / limit } else { 0.0 };
        let met = ratio >= min_ratio;
        Check {
            limit_label: Some(limit_label.into()),
            limit: Some(limit),
            ratio: Some(ratio),
            met: Some(met),
            miss: (!met).then(|| {
                format!(
                    "ratio {ratio:.2} < {min_ratio}: {:.0} % short ({:.0} {unit} more needed)",
                    (1.0 - ratio / min_ratio) * 100.0,
                    min_ratio * limit - value
                )
            }),
            ..Check::base(figure, value, unit, format!("≥ {min_ratio} × limit"))
        }
    }

    /// `value <= max`.
    pub fn at_most(figure: &str, value: f64, unit: &str, max: f64) -> Check {
        let met = value <= max;
        Check {
            met: Some(met),
            miss: (!met).then(|| {
                format!(
                    "{:.2} {unit} over ({:.1} × the target)",
                    value - max,
                    value / max
                )
            }),
            ..Check::base(figure, value, unit, format!("≤ {max} {unit}"))
        }
    }

    /// `value >= min`.
    pub fn at_least(figure: &str, value: f64, unit: &str, min: f64) -> Check {
        let met = value >= min;
        Check {
            met: Some(met),
            miss: (!met).then(|| {
                format!(
                    "{:.2} {unit} short ({:.0} % of the target)",
                    min - value,
                    value / min * 100.0
                )
            }),
            ..Check::base(figure, value, unit, format!("≥ {min} {unit}"))
        }
    }

    /// A figure without a target of its own (shown for context).
    pub fn info(figure: &str, value: f64, unit: &str) -> Check {
        Check::base(figure, value, unit, "—".into())
    }

    /// A figure beside a same-run limit, without a target.
    pub fn info_ratio(
        figure: &str,
        value: f64,
        unit: &str,
        limit_label: &str,
        limit: f64,
    ) -> Check {
        Check {
            limit_label: Some(limit_label.into()),
            limit: Some(limit),
            ratio: (limit > 0.0).then(|| value / limit),
            ..Check::base(figure, value, unit, "—".into())
        }
    }

    /// Not measured in this run, and why.
    pub fn skipped(figure: &str, target: &str, why: &str) -> Check {
        Check {
            figure: figure.into(),
            value: None,
            unit: String::new(),
            limit_label: None,
            limit: None,
            ratio: None,
            target: target.into(),
            met: None,
            miss: Some(format!("skipped: {why}")),
        }
    }

    fn row(&self) -> String {
        let num = |v: f64| {
            if v.abs() >= 100.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.2}")
            }
        };
        let value = self
            .value
            .map(|v| format!("{} {}", num(v), self.unit))
            .unwrap_or_else(|| "—".into());
        let limit = match (&self.limit_label, self.limit) {
            (Some(l), Some(v)) => format!("{} {} ({l})", num(v), self.unit),
            _ => "—".into(),
        };
        let ratio = self.ratio.map(|r| format!("{r:.2}")).unwrap_or("—".into());
        let met = match self.met {
            Some(true) => "✅ met",
            Some(false) => "❌ missed",
            None if self.value.is_none() => "skipped",
            None => "—",
        };
        format!(
            "| {} | {value} | {limit} | {ratio} | {} | {met} | {} |\n",
            self.figure,
            self.target,
            self.miss.as_deref().unwrap_or("")
        )
    }
}

/// The targets of every scenario in one table.
pub fn checks_table<'a>(checks: impl Iterator<Item = &'a Check>) -> String {
    let mut s = String::from(
        "| figure | value | same-run limit | ratio | target | verdict | miss |\n|---|---:|---:|---:|---|---|---|\n",
    );
    for c in checks {
        s.push_str(&c.row());
    }
    s
}

#[derive(Debug)]
pub struct Column {
    pub key: &'static str,
    pub label: &'static str,
    /// Decimals for a number; `None`: shown as it is.
    pub decimals: Option<usize>,
}

impl Column {
    pub fn int(key: &'static str, label: &'static str) -> Column {
        Column {
            key,
            label,
            decimals: None,
        }
    }

    pub fn float(key: &'static str, label: &'static str, decimals: usize) -> Column {
        Column {
            key,
            label,
            decimals: Some(decimals),
        }
    }

    fn cell(&self, row: &Value) -> String {
        match (&row[self.key], self.decimals) {
            (Value::Number(n), Some(d)) => match n.as_f64() {
                Some(f) => format!("{f:.d$}"),
                None => n.to_string(),
            },
            (Value::String(s), _) => s.clone(),
            (Value::Null, _) => "—".into(),
            (v, _) => v.to_string(),
        }
    }
}

impl ScenarioReport {
    pub fn table(&self) -> String {
        let mut s = String::new();
        let labels: Vec<&str> = self.columns.iter().map(|c| c.label).collect();
        s.push_str(&format!("| {} |\n", labels.join(" | ")));
        s.push_str(&format!("|{}\n", "---:|".repeat(self.columns.len())));
        for row in &self.rows {
            let cells: Vec<String> = self.columns.iter().map(|c| c.cell(row)).collect();
            s.push_str(&format!("| {} |\n", cells.join(" | ")));
        }
        s
    }
}

impl Report {
    pub fn markdown(&self) -> String {
        let mut s = format!("# taxdesk benchmark, {}\n\n", self.started_at);
        s.push_str(&format!(
            "`{}` · {} build · {} cores ({} {}){}{} · finished {} ({:.0} s)\n",
            self.command,
            self.build,
            self.machine.cores,
            self.machine.os,
            self.machine.arch,
            self.machine
                .load_average
                .as_deref()
                .map(|l| format!(", load average {l} at the start"))
                .unwrap_or_default(),
            self.commit
                .as_deref()
                .map(|c| format!(" · commit {c}"))
                .unwrap_or_default(),
            self.finished_at,
            self.seconds,
        ));
        s.push_str("\n## Targets (issue #7)\n\n");
        s.push_str(&checks_table(
            self.scenarios.iter().flat_map(|sc| sc.checks.iter()),
        ));
        for sc in &self.scenarios {
            s.push_str(&format!("\n## {}: {}\n\n", sc.name, sc.title));
            s.push_str(&sc.description);
            s.push_str("\n\n");
            s.push_str(&sc.table());
            if !sc.notes.is_empty() {
                s.push('\n');
                for n in &sc.notes {
                    s.push_str(&format!("- {n}\n"));
                }
            }
        }
        s
    }

    /// Writes `<stamp>-<scenarios>.{md,json}` and `latest.{md,json}` into `dir`; returns the
    /// stamped Markdown file.
    pub fn write(&self, dir: &Path, stamp: &str) -> anyhow::Result<PathBuf> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let names: Vec<&str> = self.scenarios.iter().map(|s| s.name.as_str()).collect();
        let base = format!("{stamp}-{}", names.join("-"));
        let md = self.markdown();
        let json = serde_json::to_string_pretty(self)? + "\n";
        let stamped = dir.join(format!("{base}.md"));
        for (path, text) in [
            (stamped.clone(), &md),
            (dir.join(format!("{base}.json")), &json),
            (dir.join("latest.md"), &md),
            (dir.join("latest.json"), &json),
        ] {
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(stamped)
    }
}
