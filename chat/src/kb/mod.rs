//! The knowledge base behind the virtual agent: FAQ documents, text folding and
//! tax-vocabulary synonyms, character n-gram retrieval, the fusion with the semantic layer's
//! scores and the answer decision, the quality harness, and [`KbBot`], the
//! [`Bot`](crate::bot::Bot) that answers from it.
//!
//! ```no_run
//! use std::sync::Arc;
//! use taxdesk_chat::kb::{KbBot, KnowledgeIndex, seed_faqs};
//!
//! let index = Arc::new(KnowledgeIndex::build(&seed_faqs()).unwrap());
//! let answer = index.ask("个税汇算什么时候办？");
//! if let Some(best) = &answer.best {
//!     println!("{} ({:.2})", best.id, best.confidence);
//! }
//! let bot = KbBot::new(index);
//! ```

pub mod decide;
pub mod embed;
mod eval;
pub mod grams;
mod index;
pub mod synonyms;
pub mod text;

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::bot::{Bot, BotAnswer};

pub use decide::{
    FUSED_THRESHOLD, Hit, HitFeatures, LEXICAL_THRESHOLD, MAX_SUGGESTIONS, Mode, NOTHING_RELEVANT,
    SemanticScores,
};
pub use eval::{
    EvalLine, EvalReport, HANDOVER, Miss, TARGET_HANDOVER_RECALL, TARGET_MAX_FALSE_ANSWERS,
    TARGET_TOP1, TARGET_TOP3, eval, eval_by_style, eval_with, parse_eval_lines, side_by_side,
    style_table,
};
pub use index::{Answer, KnowledgeIndex};

const SEED_FAQS: &str = include_str!("../../data/kb/faqs.jsonl");
const DEV_SET: &str = include_str!("../../data/kb/dev-set.jsonl");
const EVAL_DEV: &str = include_str!("../../data/kb/eval/dev.jsonl");
const EVAL_TEST: &str = include_str!("../../data/kb/eval/test.jsonl");

/// One FAQ as the index sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaqDoc {
    pub id: String,
    #[serde(default)]
    pub category: String,
    pub question: String,
    pub answer: String,
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Other phrasings of the question.
    #[serde(default)]
    pub similar: Vec<String>,
    /// Disabled FAQs are kept but not searchable.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

/// Errors of the knowledge base.
#[derive(Debug, thiserror::Error)]
pub enum KbError {
    #[error("search index: {0}")]
    Index(#[from] tantivy::TantivyError),
    #[error("line {line}: {message}")]
    Parse { line: usize, message: String },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The 160 seed FAQs bundled with the crate (`chat/data/kb/faqs.jsonl`).
pub fn seed_faqs() -> Vec<FaqDoc> {
    parse_faqs_jsonl(SEED_FAQS).expect("bundled faqs.jsonl parses")
}

/// FAQs from JSON lines (`{"id", "category", "question", "answer", "keywords", "similar"}`,
/// `enabled` optional); blank lines are skipped.
pub fn parse_faqs_jsonl(text: &str) -> Result<Vec<FaqDoc>, KbError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| {
            serde_json::from_str(l).map_err(|e| KbError::Parse {
                line: n + 1,
                message: e.to_string(),
            })
        })
        .collect()
}

/// The old development set (`chat/data/kb/dev-set.jsonl`, written from the FAQ wording):
/// a regression check now, and the questions the bench asks.
pub fn dev_set() -> Vec<EvalLine> {
    parse_eval_lines(DEV_SET).expect("bundled dev-set.jsonl parses")
}

/// The dev part of the evaluation set (`chat/data/kb/eval/dev.jsonl`): tune on it.
pub fn eval_dev() -> Vec<EvalLine> {
    parse_eval_lines(EVAL_DEV).expect("bundled eval/dev.jsonl parses")
}

/// The frozen test part (`chat/data/kb/eval/test.jsonl`): report its aggregate figures only;
/// never read its lines while tuning (see `chat/data/kb/eval/PROVENANCE.md`).
pub fn eval_test() -> Vec<EvalLine> {
    parse_eval_lines(EVAL_TEST).expect("bundled eval/test.jsonl parses")
}

/// The virtual agent answering from a [`KnowledgeIndex`].
pub struct KbBot {
    index: Arc<KnowledgeIndex>,
}

impl KbBot {
    pub fn new(index: Arc<KnowledgeIndex>) -> KbBot {
        KbBot { index }
    }

    /// The index it answers from (shared: `upsert` on it is seen at once).
    pub fn index(&self) -> &Arc<KnowledgeIndex> {
        &self.index
    }

    /// The reply to `question`, synchronously.
    pub fn reply(&self, question: &str) -> BotAnswer {
        let answer = self.index.ask(question);
        if let Some(best) = &answer.best
            && let Some(faq) = self.index.get(&best.id)
        {
            return BotAnswer {
                text: faq.answer,
                handover_suggested: answer.handover,
            };
        }
        if answer.handover {
            return BotAnswer {
                text: "好的，正在为您申请转接人工客服，请稍候。".into(),
                handover_suggested: true,
            };
        }
        let related: Vec<String> = answer
            .suggestions
            .iter()
            .filter_map(|h| self.index.get(&h.id))
            .map(|f| f.question)
            .collect();
        let text = if related.is_empty() {
            "抱歉，这个问题我暂时无法回答。您可以换个说法再问，或输入“转人工”联系人工客服。"
                .to_string()
        } else {
            let mut t = String::from("抱歉，我没有找到完全匹配的答案。您是不是想问：");
            for (i, q) in related.iter().enumerate() {
                t.push_str(&format!("\n{}. {q}", i + 1));
            }
            t.push_str("\n也可以输入“转人工”联系人工客服。");
            t
        };
        BotAnswer {
            text,
            handover_suggested: true,
        }
    }
}

#[async_trait]
impl Bot for KbBot {
    async fn answer(&self, _session_id: Option<&str>, question: &str) -> BotAnswer {
        self.reply(question)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_and_dev_set_parse() {
        let faqs = seed_faqs();
        assert_eq!(faqs.len(), 160);
        assert!(faqs.iter().all(|f| f.enabled && !f.question.is_empty()));
        assert!(dev_set().len() >= 150);
        assert_eq!(eval_dev().len(), 380);
        assert_eq!(eval_test().len(), 380);
        assert!(parse_faqs_jsonl("{\"id\": 1}").is_err());
    }

    #[tokio::test]
    async fn kb_bot_answers_suggests_and_hands_over() {
        let bot = KbBot::new(Arc::new(KnowledgeIndex::build(&seed_faqs()).unwrap()));
        let a = bot.answer(None, "个人所得税的起征点是多少？").await;
        assert!(a.text.contains("5000"), "{}", a.text);
        assert!(!a.handover_suggested);

        let a = bot.answer(Some("s1"), "今天天气怎么样").await;
        assert!(a.handover_suggested);
        assert!(a.text.contains("转人工"));

        let a = bot.answer(Some("s1"), "转人工").await;
        assert!(a.handover_suggested);
    }
}
