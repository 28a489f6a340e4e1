//! The virtual agent's quality gate (issue 12). The evaluation set `chat/data/kb/eval` was
//! written from the FAQ answers alone and split once into a dev part (tuned on) and a frozen
//! test part (figures only). The frozen figures must not drop below the ones recorded here
//! (and in README); raise them when a change raises them. The old sets, written from the
//! FAQ wording, stay as regression checks with loose bounds.

use taxdesk_chat::kb::{
    EvalReport, KnowledgeIndex, eval, eval_by_style, eval_dev, eval_test, eval_with,
    parse_eval_lines, seed_faqs, style_table,
};

/// The frozen test part's figures, lexical-only, as last recorded (README shows them):
/// top-1 and top-3 out of 320 FAQ lines, false answers out of 40 `null` lines, hand-overs
/// out of 20 requests. Baseline before issue 12's changes: 91, 197, 0, 10; with character
/// n-grams and the calibrated decision: 175, 282, 1, 15 (one false answer traded for 84 more
/// right answers; the dev part, where the threshold was set, has 4/40).
const TEST_TOP1: usize = 175;
const TEST_TOP3: usize = 282;
const TEST_MAX_FALSE_ANSWERS: usize = 1;
const TEST_HANDOVERS: usize = 15;

/// The dev part's figures as last recorded (same units). Baseline: 74, 179, 0, 12; now
/// 180, 277, 4, 20.
const DEV_TOP1: usize = 180;
const DEV_TOP3: usize = 277;
const DEV_HANDOVERS: usize = 20;

/// `n <= max`, also when the recorded `max` is 0.
fn at_most(n: usize, max: usize) -> bool {
    n <= max
}

fn index() -> KnowledgeIndex {
    KnowledgeIndex::build(&seed_faqs()).unwrap()
}

fn old_set(name: &str) -> EvalReport {
    let path = format!("{}/data/kb/{name}", env!("CARGO_MANIFEST_DIR"));
    let lines = parse_eval_lines(&std::fs::read_to_string(path).unwrap()).unwrap();
    let report = eval(&index(), &lines);
    println!("{name}:\n{report}");
    report
}

#[test]
fn frozen_test_figures_do_not_drop() {
    let lines = eval_test();
    assert_eq!(lines.len(), 380);
    // Aggregate figures only: the frozen part's lines and misses are never printed.
    let report = eval(&index(), &lines);
    println!("frozen test part:\n{report}");
    assert_eq!(
        (report.faq_lines, report.null_lines, report.handover_lines),
        (320, 40, 20)
    );
    assert!(
        report.top1 >= TEST_TOP1,
        "top-1 {} < {TEST_TOP1}",
        report.top1
    );
    assert!(
        report.top3 >= TEST_TOP3,
        "top-3 {} < {TEST_TOP3}",
        report.top3
    );
    assert!(
        at_most(report.null_answered, TEST_MAX_FALSE_ANSWERS),
        "false answers {} > {TEST_MAX_FALSE_ANSWERS}",
        report.null_answered
    );
    assert!(
        report.handover_detected >= TEST_HANDOVERS,
        "hand-overs {} < {TEST_HANDOVERS}",
        report.handover_detected
    );
}

#[test]
fn dev_part_figures() {
    let (report, by_style) = eval_by_style(&index(), &eval_dev());
    println!("dev part:\n{report}\n{}", style_table(&by_style));
    for m in &report.misses {
        println!(
            "  miss [{}] {} expected {:?} answered {:?} suggested {:?}",
            m.style.as_deref().unwrap_or("-"),
            m.text,
            m.expected,
            m.answered,
            m.suggested
        );
    }
    assert_eq!(by_style.len(), 10, "eight styles, unanswerable, handover");
    assert!(
        report.top1 >= DEV_TOP1,
        "top-1 {} < {DEV_TOP1}",
        report.top1
    );
    assert!(
        report.top3 >= DEV_TOP3,
        "top-3 {} < {DEV_TOP3}",
        report.top3
    );
    assert!(report.handover_detected >= DEV_HANDOVERS);
    assert!(report.false_answer_rate() <= 0.10);
}

/// The old sets were written from the FAQ wording (and the first engine was tuned on them),
/// so they measure memory more than understanding: loose bounds only (before issue 12:
/// 87 % / 98 % dev-set, 91 % / 98 % holdout). Their `null` lines are short off-topic
/// questions (房产证怎么办), which the character n-gram engine answers more often than the
/// word engine did (holdout 6/15, was 1/15): a known weakness, reported in README; the
/// false-answer bound is loose for that reason, the new set's dev part sets the threshold.
fn assert_regression_bounds(r: &EvalReport) {
    assert!(r.top1_rate() >= 0.75, "top-1 {:.3}", r.top1_rate());
    assert!(r.top3_rate() >= 0.90, "top-3 {:.3}", r.top3_rate());
    assert!(
        r.false_answer_rate() <= 0.45,
        "false answers {:.3}",
        r.false_answer_rate()
    );
    assert_eq!(r.handover_recall(), 1.0);
}

#[test]
fn old_development_set_regression() {
    assert_regression_bounds(&old_set("dev-set.jsonl"));
}

#[test]
fn old_holdout_set_regression() {
    assert_regression_bounds(&old_set("holdout.jsonl"));
}

/// The frozen test part's figures with the semantic layer on (what `serve` answers once the
/// model is there), recorded when the fusion was wired into askBot (2026-12-05): dev
/// 208, 292, 3, 20; test 218, 300, 3, 15 (lexical alone: 175, 282, 1, 15).
const FUSED_TEST_TOP1: usize = 218;
const FUSED_TEST_TOP3: usize = 300;
const FUSED_TEST_MAX_FALSE_ANSWERS: usize = 3;

/// The fused figures, when `TAXDESK_KB_MODEL` names the model (CI's PostgreSQL suite);
/// skipped, saying so, without it.
#[test]
fn frozen_test_figures_with_the_semantic_layer_do_not_drop() {
    use std::path::PathBuf;
    use std::time::Duration;
    use taxdesk_chat::kb::embed::{Engine, SemanticIndex};

    let Some(model) = std::env::var_os("TAXDESK_KB_MODEL").map(PathBuf::from) else {
        eprintln!("SKIPPED: TAXDESK_KB_MODEL is not set (the embedding model is absent)");
        return;
    };
    if !model.exists() {
        eprintln!("SKIPPED: no model at {}", model.display());
        return;
    }
    let faqs = seed_faqs();
    let index = KnowledgeIndex::build(&faqs).unwrap();
    let layer = SemanticIndex::new();
    layer.upsert(&faqs);
    // Its own cache (content-keyed): the API tests' servers share another one.
    let vectors = std::env::temp_dir().join("taxdesk-test-kb-eval-vectors.bin");
    layer.enable(Engine::shared(&model).unwrap(), vectors);
    assert!(layer.wait_until_on(Duration::from_secs(900)), "layer on");
    let run = |text: &str| {
        let s = layer.scores_blocking(text);
        let answer = index.ask_with(text, s.as_deref());
        let ranked = index.search_with(text, s.as_deref(), 3);
        (answer, ranked, Duration::ZERO)
    };
    let (report, _) = eval_with(&eval_test(), run);
    println!("frozen test part, fused:\n{report}");
    assert!(report.top1 >= FUSED_TEST_TOP1, "top-1 {}", report.top1);
    assert!(report.top3 >= FUSED_TEST_TOP3, "top-3 {}", report.top3);
    assert!(
        at_most(report.null_answered, FUSED_TEST_MAX_FALSE_ANSWERS),
        "false answers {}",
        report.null_answered
    );
    assert!(report.handover_detected >= TEST_HANDOVERS);
}
