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
            "`{}` · {} build · {} cores ({} {}){}{} · finished {}\n",
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
