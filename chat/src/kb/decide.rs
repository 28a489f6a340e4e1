//! The answer decision: from the lexical ranking (character n-gram BM25) and, when the
//! semantic layer is on, the FAQs' semantic scores, a ranking and a calibrated confidence
//! that the first FAQ answers the question. Pure: no I/O, no model; the caller computes the
//! semantic scores (off the async runtime) and passes them in.
//!
//! Both rankings are fused by reciprocal rank fusion (a rank counts, not a score, so the two
//! scales need no calibration against each other). The confidence is a logistic model of
//! the top hit's signals, one model per mode, fitted on the dev part of the evaluation set
//! (`chat/data/kb/eval/dev.jsonl`) with 5-fold cross-validation and rounded; the thresholds
//! were chosen there so that at most about one in ten unanswerable dev questions is answered.

use std::collections::HashMap;

use super::grams::GramHit;

/// Confidence from which the lexical-only engine answers outright.
pub const LEXICAL_THRESHOLD: f32 = 0.75;
/// Confidence from which the fused engine answers outright.
pub const FUSED_THRESHOLD: f32 = 0.65;
/// Below this confidence of the best FAQ nothing is relevant: no suggestions, the taxpayer
/// is told so and offered hot questions and 转人工.
pub const NOTHING_RELEVANT: f32 = 0.05;
/// 您是不是想问: at most this many related questions.
pub const MAX_SUGGESTIONS: usize = 3;

/// A question of at most this many distinct grams (about five characters: 社保, 发票怎么弄)
/// whose lexical runner-up scores within [`TIE_RATIO`] of the top and covers as much of it is
/// a bare topic: answering the first FAQ would be a guess, so it gets suggestions, unless it
/// covers one of the top FAQ's phrasings whole (数电发票 asked as written).
pub const SHORT_QUESTION_GRAMS: usize = 10;
pub const TIE_RATIO: f32 = 0.8;

/// … and so is one with at most this many grams of content (发票怎么弄: 发, 票, 发票) whose
/// runner-up is that close, whatever it covers.
pub const BARE_CONTENT_GRAMS: usize = 6;

/// Is this lexical ranking of a short question a tie between FAQs (see
/// [`SHORT_QUESTION_GRAMS`])? `content_grams`: the question's grams that are not function
/// words only (怎么, 弄 …).
pub fn bare_topic(lexical: &[GramHit], question_grams: usize, content_grams: usize) -> bool {
    match lexical {
        [first, second, ..] => {
            let close = second.score > TIE_RATIO * first.score;
            close
                && (content_grams <= BARE_CONTENT_GRAMS
                    || (question_grams <= SHORT_QUESTION_GRAMS
                        && second.core_coverage >= first.core_coverage - 0.01))
        }
        _ => false,
    }
}

/// Candidates taken from each ranking before fusion.
pub const CANDIDATES: usize = 50;
/// Reciprocal rank fusion constant: a small k lets first places weigh (dev: flat 10–60).
const RRF_K: f32 = 10.0;

/// The semantic layer's score of each FAQ for one question (best question/phrasing cosine +
/// 0.5 × answer cosine), in any order.
pub type SemanticScores = [(String, f32)];

/// Which engine ranked and decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Lexical,
    Fused,
}

/// One search result.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The FAQ id (`kb-0042`).
    pub id: String,
    /// The ranking score: character n-gram BM25 (lexical) or the fused reciprocal-rank score.
    pub score: f32,
    /// Calibrated confidence in 0..1 that this FAQ answers the question.
    pub confidence: f32,
}

/// The signals behind a hit's confidence (for tuning and for staff reviewing a miss).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct HitFeatures {
    /// Character n-gram BM25 (0 when not among the lexical candidates).
    pub bm25: f32,
    /// The next hit's ranking score / this one's (1 = a tie).
    pub runner_up_ratio: f32,
    /// IDF-weighted share of the question's grams in the FAQ's question, phrasings, keywords.
    pub core_coverage: f32,
    /// IDF-weighted share of the question's character pairs found anywhere in the FAQ.
    pub pair_coverage: f32,
    /// Distinct grams of the question.
    pub question_grams: usize,
    /// The semantic score, when the layer is on.
    pub semantic: Option<f32>,
    /// This semantic score − the best other FAQ's.
    pub semantic_margin: f32,
    /// Both rankings put this FAQ first.
    pub agree: bool,
}

/// Lexical model: weights of (runner-up ratio, core coverage, pair coverage, ln(1 + BM25),
/// ln(1 + question grams)) and the bias.
const LEXICAL_WEIGHTS: [f32; 5] = [-5.2, 1.1, 6.1, 1.6, -0.3];
const LEXICAL_BIAS: f32 = -2.8;
/// Fused model: weights of (semantic score, semantic margin, core coverage, runner-up ratio
/// of the fused score, both rankings agree) and the bias.
const FUSED_WEIGHTS: [f32; 5] = [10.5, 73.6, 6.2, 3.4, 0.8];
const FUSED_BIAS: f32 = -18.7;

fn logistic(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

fn dot(w: &[f32; 5], x: [f32; 5]) -> f32 {
    w.iter().zip(x).map(|(w, x)| w * x).sum()
}

/// A hit's confidence in `mode`.
pub fn confidence(mode: Mode, f: &HitFeatures) -> f32 {
    let z = match mode {
        Mode::Lexical => {
            LEXICAL_BIAS
                + dot(
                    &LEXICAL_WEIGHTS,
                    [
                        f.runner_up_ratio,
                        f.core_coverage,
                        f.pair_coverage,
                        f.bm25.ln_1p(),
                        (f.question_grams as f32).ln_1p(),
                    ],
                )
        }
        Mode::Fused => {
            FUSED_BIAS
                + dot(
                    &FUSED_WEIGHTS,
                    [
                        f.semantic.unwrap_or(0.0),
                        f.semantic_margin,
                        f.core_coverage,
                        f.runner_up_ratio,
                        f32::from(u8::from(f.agree)),
                    ],
                )
        }
    };
    logistic(z)
}

/// The threshold of `mode`.
pub fn threshold(mode: Mode) -> f32 {
    match mode {
        Mode::Lexical => LEXICAL_THRESHOLD,
        Mode::Fused => FUSED_THRESHOLD,
    }
}

/// How many of the leading lexical hits must have semantic scores for the fusion to run.
const UNEMBEDDED_LOOKAHEAD: usize = 3;

/// Ranks the FAQs: the lexical hits alone, or fused with `semantic` (only FAQs `known`
/// accepts are kept from it). Each hit gets its confidence; no hit is more confident than
/// the one before it.
pub fn rank(
    lexical: &[GramHit],
    question_grams: usize,
    semantic: Option<&SemanticScores>,
    known: impl Fn(&str) -> bool,
) -> (Mode, Vec<(Hit, HitFeatures)>) {
    rank_inner(lexical, question_grams, semantic, known)
}

fn rank_inner(
    lexical: &[GramHit],
    question_grams: usize,
    semantic: Option<&SemanticScores>,
    known: impl Fn(&str) -> bool,
) -> (Mode, Vec<(Hit, HitFeatures)>) {
    let semantic: Vec<(&str, f32)> = semantic
        .map(|s| {
            let mut best: Vec<(&str, f32)> = s
                .iter()
                .filter(|(id, _)| known(id))
                .map(|(id, v)| (id.as_str(), *v))
                .collect();
            best.sort_by(|a, b| b.1.total_cmp(&a.1));
            best
        })
        .unwrap_or_default();
    // An FAQ saved a moment ago is searchable lexically at once but has no vectors until the
    // background embedding reaches it: while one of the leading lexical hits lacks them, the
    // fusion would bury it, so the lexical ranking decides alone.
    let semantic = if lexical
        .iter()
        .take(UNEMBEDDED_LOOKAHEAD)
        .any(|h| !semantic.iter().any(|(id, _)| *id == h.id))
    {
        vec![]
    } else {
        semantic
    };
    let mut hits = if semantic.is_empty() {
        lexical_ranking(lexical, question_grams)
    } else {
        fused_ranking(lexical, question_grams, &semantic)
    };
    let mode = if semantic.is_empty() {
        Mode::Lexical
    } else {
        Mode::Fused
    };
    let mut cap = 1.0f32;
    for (hit, f) in &mut hits {
        hit.confidence = confidence(mode, f).min(cap);
        cap = hit.confidence;
    }
    (mode, hits)
}

fn lexical_ranking(lexical: &[GramHit], question_grams: usize) -> Vec<(Hit, HitFeatures)> {
    lexical
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let next = lexical.get(i + 1).map_or(0.0, |n| n.score);
            let f = HitFeatures {
                bm25: h.score,
                runner_up_ratio: if h.score > 0.0 { next / h.score } else { 1.0 },
                core_coverage: h.core_coverage,
                pair_coverage: h.pair_coverage,
                question_grams,
                ..HitFeatures::default()
            };
            let hit = Hit {
                id: h.id.clone(),
                score: h.score,
                confidence: 0.0,
            };
            (hit, f)
        })
        .collect()
}

/// `semantic` sorted best first.
fn fused_ranking(
    lexical: &[GramHit],
    question_grams: usize,
    semantic: &[(&str, f32)],
) -> Vec<(Hit, HitFeatures)> {
    let mut fused: HashMap<&str, f32> = HashMap::new();
    for (rank, h) in lexical.iter().take(CANDIDATES).enumerate() {
        *fused.entry(h.id.as_str()).or_default() += 1.0 / (RRF_K + rank as f32 + 1.0);
    }
    for (rank, (id, _)) in semantic.iter().take(CANDIDATES).enumerate() {
        *fused.entry(id).or_default() += 1.0 / (RRF_K + rank as f32 + 1.0);
    }
    let mut order: Vec<(&str, f32)> = fused.into_iter().collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let lex: HashMap<&str, &GramHit> = lexical.iter().map(|h| (h.id.as_str(), h)).collect();
    let sem: HashMap<&str, f32> = semantic.iter().copied().collect();
    let lexical_first = lexical.first().map(|h| h.id.as_str());
    let semantic_first = semantic.first().map(|s| s.0);
    order
        .iter()
        .enumerate()
        .map(|(i, &(id, score))| {
            let next = order.get(i + 1).map_or(0.0, |n| n.1);
            let own = sem.get(id).copied();
            // The best semantic score of another FAQ.
            let other = semantic
                .iter()
                .take(2)
                .find(|(o, _)| *o != id)
                .map_or(0.0, |o| o.1);
            let l = lex.get(id);
            let f = HitFeatures {
                bm25: l.map_or(0.0, |h| h.score),
                runner_up_ratio: if score > 0.0 { next / score } else { 1.0 },
                core_coverage: l.map_or(0.0, |h| h.core_coverage),
                pair_coverage: l.map_or(0.0, |h| h.pair_coverage),
                question_grams,
                semantic: own,
                semantic_margin: own.map_or(0.0, |s| s - other),
                agree: lexical_first == Some(id) && semantic_first == Some(id),
            };
            let hit = Hit {
                id: id.to_string(),
                score,
                confidence: 0.0,
            };
            (hit, f)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex(id: &str, score: f32, coverage: f32) -> GramHit {
        GramHit {
            id: id.into(),
            score,
            core_coverage: coverage,
            pair_coverage: coverage,
        }
    }

    #[test]
    fn lexical_confidence_rises_with_coverage_and_a_clear_lead() {
        let clear = [lex("a", 200.0, 0.8), lex("b", 60.0, 0.2)];
        let (mode, hits) = rank(&clear, 30, None, |_| true);
        assert_eq!(mode, Mode::Lexical);
        assert_eq!(hits[0].0.id, "a");
        assert!(hits[0].0.confidence >= LEXICAL_THRESHOLD, "{hits:?}");

        let tied = [lex("a", 100.0, 0.3), lex("b", 98.0, 0.3)];
        let (_, hits) = rank(&tied, 30, None, |_| true);
        assert!(hits[0].0.confidence < LEXICAL_THRESHOLD, "{hits:?}");
        assert!(hits[1].0.confidence <= hits[0].0.confidence);
    }

    #[test]
    fn semantic_scores_reorder_and_decide_when_given() {
        // Lexically b leads a little; semantically a is far ahead.
        let lexical = [
            lex("b", 120.0, 0.3),
            lex("a", 110.0, 0.4),
            lex("c", 50.0, 0.1),
        ];
        let semantic = vec![
            ("a".to_string(), 1.34),
            ("c".to_string(), 1.22),
            ("b".to_string(), 1.21),
            ("gone".to_string(), 1.40),
        ];
        let (mode, hits) = rank(&lexical, 30, Some(&semantic), |id| id != "gone");
        assert_eq!(mode, Mode::Fused);
        assert_eq!(hits[0].0.id, "a", "{hits:?}");
        assert!(hits.iter().all(|h| h.0.id != "gone"));
        let f = hits[0].1;
        assert_eq!(f.semantic, Some(1.34));
        assert!((f.semantic_margin - 0.12).abs() < 1e-4, "{f:?}");
        assert!(!f.agree);
        assert!(hits[0].0.confidence >= FUSED_THRESHOLD, "{hits:?}");

        // The same lexical hits with semantic scores that cannot tell them apart: no answer.
        let flat = vec![
            ("a".to_string(), 1.20),
            ("b".to_string(), 1.20),
            ("c".to_string(), 1.19),
        ];
        let (_, hits) = rank(&lexical, 30, Some(&flat), |_| true);
        assert!(hits[0].0.confidence < FUSED_THRESHOLD, "{hits:?}");
    }

    #[test]
    fn a_leading_faq_not_yet_embedded_is_ranked_lexically() {
        // "new" was saved a moment ago: no vectors yet, semantically others lead.
        let lexical = [lex("new", 200.0, 0.8), lex("a", 60.0, 0.2)];
        let semantic = vec![("a".to_string(), 1.34), ("b".to_string(), 1.30)];
        let (mode, hits) = rank(&lexical, 30, Some(&semantic), |_| true);
        assert_eq!(mode, Mode::Lexical);
        assert_eq!(hits[0].0.id, "new", "{hits:?}");
        // Once embedded, the fusion runs.
        let embedded = vec![
            ("new".to_string(), 1.36),
            ("a".to_string(), 1.34),
            ("b".to_string(), 1.30),
        ];
        let (mode, _) = rank(&lexical, 30, Some(&embedded), |_| true);
        assert_eq!(mode, Mode::Fused);
    }

    #[test]
    fn empty_semantic_scores_fall_back_to_lexical() {
        let lexical = [lex("a", 200.0, 0.8)];
        let (mode, _) = rank(&lexical, 10, Some(&[]), |_| true);
        assert_eq!(mode, Mode::Lexical);
    }
}
