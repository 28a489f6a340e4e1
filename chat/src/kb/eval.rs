//! The quality harness: runs `ask` over `{"text", "expected"}` lines, where `expected` is an
//! FAQ id, `null` (should not be answered) or `"HANDOVER"` (asks for a human).

use std::fmt;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::{KbError, KnowledgeIndex};

/// The `expected` value of a line that asks for a human.
pub const HANDOVER: &str = "HANDOVER";

/// One line: the text and the expected FAQ id, `None` or `Some("HANDOVER")`.
pub type EvalLine = (String, Option<String>);

/// The targets the development set must meet.
pub const TARGET_TOP1: f64 = 0.85;
pub const TARGET_TOP3: f64 = 0.95;
pub const TARGET_MAX_FALSE_ANSWERS: f64 = 0.10;
pub const TARGET_HANDOVER_RECALL: f64 = 1.0;

#[derive(Deserialize)]
struct RawLine {
    text: String,
    expected: Option<String>,
}

/// Lines of `{"text": "...", "expected": "kb-0001" | null | "HANDOVER"}`; blank lines and
/// lines starting with `#` or `//` are skipped.
pub fn parse_eval_lines(text: &str) -> Result<Vec<EvalLine>, KbError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            let l = l.trim();
            !(l.is_empty() || l.starts_with('#') || l.starts_with("//"))
        })
        .map(|(n, l)| {
            serde_json::from_str::<RawLine>(l)
                .map(|r| (r.text, r.expected))
                .map_err(|e| KbError::Parse {
                    line: n + 1,
                    message: e.to_string(),
                })
        })
        .collect()
}

/// A line the engine got wrong.
#[derive(Debug, Clone)]
pub struct Miss {
    pub text: String,
    pub expected: Option<String>,
    /// Top-3 ids with confidences.
    pub got: Vec<(String, f32)>,
    pub answered: Option<String>,
    pub handover: bool,
}

/// Figures of one evaluation.
#[derive(Debug, Clone, Default)]
pub struct EvalReport {
    pub lines: usize,
    /// Lines expecting an FAQ id.
    pub faq_lines: usize,
    /// … whose first hit is that FAQ.
    pub top1: usize,
    /// … with that FAQ among the first three hits.
    pub top3: usize,
    /// … that `ask` answered (confidence over the threshold), and answered with that FAQ.
    pub answered: usize,
    pub answered_right: usize,
    /// Lines expecting `null`, and how many of them `ask` answered anyway.
    pub null_lines: usize,
    pub null_answered: usize,
    /// Lines expecting a hand-over, and how many `ask` flagged.
    pub handover_lines: usize,
    pub handover_detected: usize,
    /// Other lines flagged as a hand-over.
    pub false_handovers: usize,
    /// `ask` latency over all lines.
    pub latency_mean: Duration,
    pub latency_p50: Duration,
    pub latency_p99: Duration,
    pub latency_max: Duration,
    pub misses: Vec<Miss>,
}

fn ratio(n: usize, d: usize) -> f64 {
    if d == 0 { 1.0 } else { n as f64 / d as f64 }
}

impl EvalReport {
    pub fn top1_rate(&self) -> f64 {
        ratio(self.top1, self.faq_lines)
    }
    pub fn top3_rate(&self) -> f64 {
        ratio(self.top3, self.faq_lines)
    }
    /// Share of `null` lines answered.
    pub fn false_answer_rate(&self) -> f64 {
        if self.null_lines == 0 {
            0.0
        } else {
            ratio(self.null_answered, self.null_lines)
        }
    }
    pub fn handover_recall(&self) -> f64 {
        ratio(self.handover_detected, self.handover_lines)
    }
    /// Share of FAQ lines answered outright.
    pub fn answer_rate(&self) -> f64 {
        ratio(self.answered, self.faq_lines)
    }
    /// Share of answered FAQ lines answered with the right FAQ.
    pub fn answer_precision(&self) -> f64 {
        ratio(self.answered_right, self.answered)
    }

    /// The targets not met, described; empty when all are.
    pub fn failed_targets(&self) -> Vec<String> {
        let mut failed = Vec::new();
        if self.top1_rate() < TARGET_TOP1 {
            failed.push(format!(
                "top-1 {:.1}% < {:.0}%",
                self.top1_rate() * 100.0,
                TARGET_TOP1 * 100.0
            ));
        }
        if self.top3_rate() < TARGET_TOP3 {
            failed.push(format!(
                "top-3 {:.1}% < {:.0}%",
                self.top3_rate() * 100.0,
                TARGET_TOP3 * 100.0
            ));
        }
        if self.false_answer_rate() > TARGET_MAX_FALSE_ANSWERS {
            failed.push(format!(
                "false answers {:.1}% > {:.0}%",
                self.false_answer_rate() * 100.0,
                TARGET_MAX_FALSE_ANSWERS * 100.0
            ));
        }
        if self.handover_recall() < TARGET_HANDOVER_RECALL {
            failed.push(format!(
                "hand-over recall {:.1}% < {:.0}%",
                self.handover_recall() * 100.0,
                TARGET_HANDOVER_RECALL * 100.0
            ));
        }
        failed
    }

    pub fn meets_targets(&self) -> bool {
        self.failed_targets().is_empty()
    }
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |x: f64| x * 100.0;
        writeln!(
            f,
            "lines: {} ({} FAQ, {} null, {} hand-over)",
            self.lines, self.faq_lines, self.null_lines, self.handover_lines
        )?;
        writeln!(
            f,
            "top-1 accuracy:     {:5.1}% ({}/{})",
            pct(self.top1_rate()),
            self.top1,
            self.faq_lines
        )?;
        writeln!(
            f,
            "top-3 accuracy:     {:5.1}% ({}/{})",
            pct(self.top3_rate()),
            self.top3,
            self.faq_lines
        )?;
        writeln!(
            f,
            "false-answer rate:  {:5.1}% ({}/{} null lines answered)",
            pct(self.false_answer_rate()),
            self.null_answered,
            self.null_lines
        )?;
        writeln!(
            f,
            "hand-over recall:   {:5.1}% ({}/{}; {} other lines flagged)",
            pct(self.handover_recall()),
            self.handover_detected,
            self.handover_lines,
            self.false_handovers
        )?;
        writeln!(
            f,
            "answered outright:  {:5.1}% of FAQ lines, {:.1}% of those correct",
            pct(self.answer_rate()),
            pct(self.answer_precision())
        )?;
        write!(
            f,
            "ask latency:        mean {:?}, p50 {:?}, p99 {:?}, max {:?}",
            self.latency_mean, self.latency_p50, self.latency_p99, self.latency_max
        )
    }
}

/// Runs `ask` (and `search` for ranks) over `lines`.
pub fn eval(index: &KnowledgeIndex, lines: &[EvalLine]) -> EvalReport {
    let mut r = EvalReport {
        lines: lines.len(),
        ..EvalReport::default()
    };
    let mut latencies = Vec::with_capacity(lines.len());
    for (text, expected) in lines {
        let started = Instant::now();
        let answer = index.ask(text);
        latencies.push(started.elapsed());
        let answered = answer.best.as_ref().map(|h| h.id.clone());
        let hits = index.search(text, 3);
        let miss = |r: &mut EvalReport| {
            r.misses.push(Miss {
                text: text.clone(),
                expected: expected.clone(),
                got: hits.iter().map(|h| (h.id.clone(), h.confidence)).collect(),
                answered: answered.clone(),
                handover: answer.handover,
            })
        };
        match expected.as_deref() {
            Some(HANDOVER) => {
                r.handover_lines += 1;
                if answer.handover {
                    r.handover_detected += 1;
                } else {
                    miss(&mut r);
                }
            }
            None => {
                r.null_lines += 1;
                r.false_handovers += usize::from(answer.handover);
                if answered.is_some() {
                    r.null_answered += 1;
                    miss(&mut r);
                }
            }
            Some(id) => {
                r.faq_lines += 1;
                r.false_handovers += usize::from(answer.handover);
                let first = hits.first().is_some_and(|h| h.id == id);
                r.top1 += usize::from(first);
                r.top3 += usize::from(hits.iter().any(|h| h.id == id));
                if answered.is_some() {
                    r.answered += 1;
                    r.answered_right += usize::from(answered.as_deref() == Some(id));
                }
                if !first || answered.as_deref().is_some_and(|a| a != id) {
                    miss(&mut r);
                }
            }
        }
    }
    if !latencies.is_empty() {
        latencies.sort();
        // Nearest rank.
        let n = latencies.len();
        let at = |q: f64| latencies[((n as f64 * q).ceil() as usize).clamp(1, n) - 1];
        r.latency_mean = latencies.iter().sum::<Duration>() / latencies.len() as u32;
        r.latency_p50 = at(0.5);
        r.latency_p99 = at(0.99);
        r.latency_max = latencies[latencies.len() - 1];
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_kinds_of_line() {
        let lines = parse_eval_lines(
            "{\"text\": \"个税起征点\", \"expected\": \"kb-0044\"}\n\n# note\n{\"text\": \"天气\", \"expected\": null}\n{\"text\": \"转人工\", \"expected\": \"HANDOVER\"}\n",
        )
        .unwrap();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1], ("天气".to_string(), None));
        assert!(parse_eval_lines("{\"text\": 1}").is_err());
    }
}
