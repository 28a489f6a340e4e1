//! The in-memory index of FAQs and `ask`, the virtual agent's answer to one question.
//!
//! Documents and questions go through the same pipeline: [`fold`] (width, script, case,
//! punctuation), then [`Synonyms::canonicalize`] (tax vocabulary). The FAQs are ranked by
//! character unigram + bigram BM25 over their question, phrasings, keywords and answer
//! ([`GramIndex`]); when the semantic layer's scores are passed in, both rankings are fused,
//! and [`decide`](super::decide) turns the top hit's signals into a calibrated confidence.
//! Jieba words (tantivy-jieba, stop words dropped) remain for telling a bare request for a
//! human from one that also asks something.

use std::collections::HashMap;
use std::sync::RwLock;

use tantivy::tokenizer::{StopWordFilter, TextAnalyzer};

use super::decide::{
    self, CANDIDATES, Hit, HitFeatures, MAX_SUGGESTIONS, Mode, NOTHING_RELEVANT, SemanticScores,
};
use super::grams::{FIELDS, Gram, GramIndex, distinct_grams};
use super::synonyms::Synonyms;
use super::text::fold;
use super::{FaqDoc, KbError};
use crate::bot::asks_for_human;

/// Function words and question words, dropped from documents and questions.
#[rustfmt::skip]
const STOP_WORDS: &[&str] = &[
    " ", "的", "了", "吗", "呢", "吧", "啊", "呀", "么", "嘛", "哦", "哈", "是", "我", "我们", "你",
    "你们", "您", "他", "她", "它", "这", "那", "这个", "那个", "这样", "那样", "怎么", "怎样",
    "怎么样", "怎么办", "如何", "什么", "啥", "咋", "咋办", "咋整", "咋弄", "怎么弄", "哪", "哪里",
    "哪儿", "哪个", "哪些", "在哪", "在哪里", "请问", "请", "一下", "能", "能否", "可以", "要",
    "需要", "想", "还", "还是", "就", "都", "也", "和", "跟", "与", "及", "或", "或者", "在", "去",
    "到", "给", "把", "被", "让", "会", "为什么", "为何", "个", "一个", "自己", "时候", "吗", "弄",
    "搞", "整", "不", "没", "有", "没有", "得", "地", "着", "过", "又", "再", "呗", "嗯", "额",
    "到底", "究竟", "东西", "一张", "这张", "那张", "是不是", "不是", "知道", "不知道", "现在",
    "目前", "里", "上", "用", "做", "帮", "帮忙", "告诉", "问", "问问", "想问", "麻烦", "谢谢",
    "你好", "您好", "要不要", "能不能", "可不可以", "需不需要", "是否", "该", "应该", "具体",
    "大概", "已经", "了解", "啥时候", "什么时候",
];

/// Function and question characters (怎么, 什么, 可以, 弄 …): a gram made only of them says
/// how a question is asked, not what about.
const FUNCTION_CHARS: &str = "的了吗呢吧啊呀么嘛哦哈是我你您他她它这那怎样如何什啥咋哪请问下能可以要想还就都也和跟与及或在去到给把被让会为自己得地着过又再呗嗯额们该弄搞整";

/// The grams of a question that say what it is about: function-only grams left out.
fn content_grams(normalized: &str) -> Vec<Gram> {
    let function = |c: u32| char::from_u32(c).is_some_and(|c| FUNCTION_CHARS.contains(c));
    distinct_grams(normalized)
        .into_iter()
        .filter(|&g| {
            let (a, b) = ((g >> 32) as u32, (g & 0xFFFF_FFFF) as u32);
            !(function(a) && (b == 0 || function(b)))
        })
        .collect()
}

/// What the virtual agent makes of one question.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Answer {
    /// The FAQ to answer with, only when confident enough for the mode.
    pub best: Option<Hit>,
    /// 您是不是想问: related questions, at most [`MAX_SUGGESTIONS`], best first, without
    /// `best`; empty when nothing is relevant.
    pub suggestions: Vec<Hit>,
    /// The text asks for a human (转人工, 人工客服, 找真人 …): always handed over.
    pub handover: bool,
    /// Confidence of the top hit (0 when nothing matched).
    pub confidence: f32,
    /// Whether the semantic scores took part.
    pub fused: bool,
}

#[derive(Default)]
struct Store {
    docs: HashMap<String, FaqDoc>,
    grams: GramIndex,
    enabled: usize,
}

impl Store {
    fn insert(&mut self, faq: FaqDoc, fields: Option<[Vec<String>; FIELDS]>) {
        self.remove(&faq.id);
        if let Some(fields) = fields {
            let [q, s, k, a] = &fields;
            self.grams.upsert(&faq.id, [q, s, k, a]);
            self.enabled += 1;
        }
        self.docs.insert(faq.id.clone(), faq);
    }

    fn remove(&mut self, id: &str) {
        if let Some(old) = self.docs.remove(id)
            && old.enabled
        {
            self.grams.remove(id);
            self.enabled -= 1;
        }
    }
}

/// The in-memory index of the FAQs. Cheap to share behind an `Arc`; `upsert` makes a change
/// searchable at once.
pub struct KnowledgeIndex {
    analyzer: TextAnalyzer,
    synonyms: &'static Synonyms,
    store: RwLock<Store>,
}

impl KnowledgeIndex {
    /// Indexes `faqs` (disabled ones are kept for `get` but not searchable). A later FAQ with
    /// the id of an earlier one replaces it.
    pub fn build(faqs: &[FaqDoc]) -> Result<KnowledgeIndex, KbError> {
        let analyzer = TextAnalyzer::builder(tantivy_jieba::JiebaTokenizer::with_hmm(false))
            .filter(StopWordFilter::remove(
                STOP_WORDS.iter().map(|s| s.to_string()),
            ))
            .build();
        let kb = KnowledgeIndex {
            analyzer,
            synonyms: Synonyms::builtin(),
            store: RwLock::new(Store::default()),
        };
        kb.upsert_many(faqs)?;
        Ok(kb)
    }

    /// Adds or replaces the FAQ with `faq.id`; a disabled FAQ leaves the search results.
    pub fn upsert(&self, faq: &FaqDoc) -> Result<(), KbError> {
        self.upsert_many(std::slice::from_ref(faq))
    }

    /// [`upsert`](Self::upsert) for a batch; a later FAQ with the id of an earlier one wins.
    pub fn upsert_many(&self, faqs: &[FaqDoc]) -> Result<(), KbError> {
        // Normalize outside the lock: asks go on meanwhile.
        let prepared: Vec<(FaqDoc, Option<[Vec<String>; FIELDS]>)> = faqs
            .iter()
            .map(|f| (f.clone(), f.enabled.then(|| self.fields(f))))
            .collect();
        let mut store = self.store.write().unwrap_or_else(|e| e.into_inner());
        for (faq, fields) in prepared {
            store.insert(faq, fields);
        }
        Ok(())
    }

    /// The FAQ with `id`, enabled or not.
    pub fn get(&self, id: &str) -> Option<FaqDoc> {
        let store = self.store.read().unwrap_or_else(|e| e.into_inner());
        store.docs.get(id).cloned()
    }

    /// Number of searchable (enabled) FAQs.
    pub fn len(&self) -> usize {
        self.store.read().unwrap_or_else(|e| e.into_inner()).enabled
    }

    /// No searchable FAQ.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Up to `limit` FAQs for `text`, best first, each with its calibrated confidence
    /// (lexical only).
    pub fn search(&self, text: &str, limit: usize) -> Vec<Hit> {
        self.search_with(text, None, limit)
    }

    /// [`search`](Self::search), fused with the semantic layer's scores when given.
    pub fn search_with(
        &self,
        text: &str,
        semantic: Option<&SemanticScores>,
        limit: usize,
    ) -> Vec<Hit> {
        let (_, mut hits) = self.explain_with(text, semantic);
        hits.truncate(limit);
        hits.into_iter().map(|(h, _)| h).collect()
    }

    /// What the virtual agent makes of `text`, lexical only: see [`ask_with`](Self::ask_with).
    pub fn ask(&self, text: &str) -> Answer {
        self.ask_with(text, None)
    }

    /// What the virtual agent makes of `text`: the FAQ to answer with when confident, else
    /// up to three related questions (none when nothing is relevant), and whether a human is
    /// asked for. `semantic` holds the semantic layer's scores for `text` when it is on:
    /// the caller computes them off the async runtime (they cost an embedding), this is
    /// cheap and synchronous.
    pub fn ask_with(&self, text: &str, semantic: Option<&SemanticScores>) -> Answer {
        let handover = asks_for_human(text);
        if handover && self.only_asks_for_human(text) {
            return Answer {
                handover,
                ..Answer::default()
            };
        }
        let normalized = self.normalize(text);
        let grams = distinct_grams(&normalized);
        let content = content_grams(&normalized).len();
        let (mode, explained, tie) = {
            let store = self.store.read().unwrap_or_else(|e| e.into_inner());
            let lexical = store.grams.score(&grams, CANDIDATES);
            let (mode, explained) = decide::rank(&lexical.hits, lexical.grams, semantic, |id| {
                store.docs.get(id).is_some_and(|d| d.enabled)
            });
            let tie = decide::bare_topic(&lexical.hits, lexical.grams, content)
                && !explained.first().is_some_and(|(top, _)| {
                    store
                        .docs
                        .get(&top.id)
                        .is_some_and(|faq| self.covers_a_phrasing(&grams, faq))
                });
            (mode, explained, tie)
        };
        let confidence = explained.first().map_or(0.0, |h| h.0.confidence);
        let mut hits = explained.into_iter().map(|(h, _)| h);
        let best = if confidence >= decide::threshold(mode) && !tie {
            hits.next()
        } else {
            None
        };
        let suggestions = if confidence >= NOTHING_RELEVANT {
            hits.take(MAX_SUGGESTIONS).collect()
        } else {
            Vec::new()
        };
        Answer {
            best,
            suggestions,
            handover,
            confidence,
            fused: mode == Mode::Fused,
        }
    }

    /// The ranking of `text` with the signals behind each confidence, and the mode used.
    pub fn explain_with(
        &self,
        text: &str,
        semantic: Option<&SemanticScores>,
    ) -> (Mode, Vec<(Hit, HitFeatures)>) {
        let grams = distinct_grams(&self.normalize(text));
        let store = self.store.read().unwrap_or_else(|e| e.into_inner());
        let lexical = store.grams.score(&grams, CANDIDATES);
        decide::rank(&lexical.hits, lexical.grams, semantic, |id| {
            store.docs.get(id).is_some_and(|d| d.enabled)
        })
    }

    /// The text through the shared pipeline: folded, synonyms made canonical.
    pub fn normalize(&self, text: &str) -> String {
        self.synonyms.canonicalize(&fold(text))
    }

    /// Distinct jieba words of `text`, stop words dropped, in order.
    pub fn terms(&self, text: &str) -> Vec<String> {
        let normalized = self.normalize(text);
        let mut analyzer = self.analyzer.clone();
        let mut stream = analyzer.token_stream(&normalized);
        let mut out: Vec<String> = Vec::new();
        while let Some(token) = stream.next() {
            let t = &token.text;
            if t.chars().any(char::is_alphanumeric) && !out.contains(t) {
                out.push(t.clone());
            }
        }
        out
    }

    /// `grams` (of a question) hold every gram of one of `faq`'s question or phrasings.
    fn covers_a_phrasing(&self, grams: &[Gram], faq: &FaqDoc) -> bool {
        std::iter::once(&faq.question).chain(&faq.similar).any(|p| {
            let own = distinct_grams(&self.normalize(p));
            !own.is_empty() && own.iter().all(|g| grams.contains(g))
        })
    }

    /// The normalized texts of the four fields: question, phrasings, keywords, answer.
    fn fields(&self, faq: &FaqDoc) -> [Vec<String>; FIELDS] {
        let all = |v: &[String]| v.iter().map(|t| self.normalize(t)).collect();
        [
            vec![self.normalize(&faq.question)],
            all(&faq.similar),
            all(&faq.keywords),
            vec![self.normalize(&faq.answer)],
        ]
    }

    /// After taking out the words that ask for a human, nothing of substance is left.
    fn only_asks_for_human(&self, text: &str) -> bool {
        #[rustfmt::skip]
        const HANDOVER_TERMS: &[&str] = &[
            "人工", "客服", "人工客服", "转", "转人工", "真人", "坐席", "座席", "转接", "接",
            "找", "叫", "出来", "机器", "机器人", "聊", "聊天", "回答", "服务", "不想", "来",
            "有没有", "我要", "麻烦", "帮", "帮我", "赶紧", "快", "马上", "人", "谢谢", "你好",
            "在线", "联系", "打", "电话", "工作人员", "工作", "人员", "活人", "换", "换个",
            "说", "说话", "跟", "别", "懂", "不懂", "看不懂", "明白", "不明白", "专员", "咨询",
            "老师", "懂行", "答非所问", "急事", "有急事", "半天", "你们", "吧", "rg",
        ];
        self.terms(text)
            .iter()
            .all(|t| HANDOVER_TERMS.contains(&t.as_str()) || t.chars().count() == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kb::seed_faqs;

    fn faq(id: &str, question: &str, answer: &str) -> FaqDoc {
        FaqDoc {
            id: id.into(),
            category: "测试".into(),
            question: question.into(),
            answer: answer.into(),
            keywords: vec![],
            similar: vec![],
            enabled: true,
        }
    }

    #[test]
    fn is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<KnowledgeIndex>();
    }

    #[test]
    fn finds_seed_questions_through_synonyms_and_folding() {
        let kb = KnowledgeIndex::build(&seed_faqs()).unwrap();
        assert_eq!(kb.len(), 160);
        let top = |q: &str| kb.search(q, 3).first().map(|h| h.id.clone());
        assert_eq!(top("个税起征点是多少").as_deref(), Some("kb-0044"));
        assert_eq!(top("個人所得稅起徵點").as_deref(), Some("kb-0044"));
        assert_eq!(top("全电发票开错了怎么作废").as_deref(), Some("kb-0004"));
        let a = kb.ask("什么是数电发票？");
        assert_eq!(a.best.as_ref().map(|h| h.id.as_str()), Some("kb-0001"));
        assert!(a.confidence >= decide::LEXICAL_THRESHOLD && a.confidence <= 1.0);
        assert!(a.suggestions.len() <= MAX_SUGGESTIONS);
        assert!(a.suggestions.iter().all(|h| h.id != "kb-0001"));
    }

    #[test]
    fn unrelated_questions_are_not_answered() {
        let kb = KnowledgeIndex::build(&seed_faqs()).unwrap();
        for q in ["今天天气怎么样", "给我讲个笑话", "", "？？？"] {
            let a = kb.ask(q);
            assert!(a.best.is_none(), "{q}: {a:?}");
            assert!(!a.handover);
            assert!((0.0..=1.0).contains(&a.confidence));
        }
    }

    #[test]
    fn bare_topic_words_get_related_questions_not_a_guess() {
        let kb = KnowledgeIndex::build(&seed_faqs()).unwrap();
        for q in [
            "退税",
            "发票怎么弄",
            "社保",
            "个税",
            "申报",
            "汇算",
            "数电发票",
        ] {
            let a = kb.ask(q);
            assert!(a.best.is_none(), "{q}: {a:?}");
            assert!(a.suggestions.len() >= 3, "{q}: {a:?}");
            assert!(a.confidence >= NOTHING_RELEVANT, "{q}: {a:?}");
        }
        // A seed question asked as written is still answered, though close FAQs tie with it.
        for (q, id) in [("什么是数电发票", "kb-0001"), ("什么是数电票？", "kb-0001")]
        {
            assert_eq!(kb.ask(q).best.map(|h| h.id).as_deref(), Some(id), "{q}");
        }
    }

    #[test]
    fn hand_over_requests_are_flagged_not_answered() {
        let kb = KnowledgeIndex::build(&seed_faqs()).unwrap();
        for q in ["转人工", "人工客服", "我要找真人"] {
            let a = kb.ask(q);
            assert!(a.handover, "{q}");
            assert!(a.best.is_none(), "{q}: {a:?}");
        }
        let a = kb.ask("我要人工，另外问下数电发票开错了怎么作废");
        assert!(a.handover);
        assert_eq!(a.best.map(|h| h.id).as_deref(), Some("kb-0004"));
    }

    #[test]
    fn upsert_adds_replaces_and_disables_without_a_rebuild() {
        let kb = KnowledgeIndex::build(&[faq("a", "发票怎么开具", "在开票业务里开具。")]).unwrap();
        assert!(kb.search("车船", 5).is_empty());

        let mut new = faq("b", "车船税怎么申报缴纳？", "在财产和行为税里申报。");
        kb.upsert(&new).unwrap();
        assert_eq!(kb.len(), 2);
        let a = kb.ask("车船税怎么申报");
        assert_eq!(a.best.map(|h| h.id).as_deref(), Some("b"));

        new.question = "环境保护税怎么申报？".into();
        kb.upsert(&new).unwrap();
        assert!(kb.search("车船", 5).is_empty());
        assert_eq!(kb.search("环境保护税", 5)[0].id, "b");

        new.enabled = false;
        kb.upsert(&new).unwrap();
        assert!(kb.search("环境保护税", 5).is_empty());
        assert_eq!(kb.len(), 1);
        assert!(!kb.get("b").unwrap().enabled);
    }

    #[test]
    fn upsert_many_commits_a_batch_last_one_winning() {
        let kb = KnowledgeIndex::build(&[]).unwrap();
        assert!(kb.is_empty());
        kb.upsert_many(&[
            faq("a", "车船税怎么申报", "旧"),
            faq("b", "契税怎么申报", "契"),
            faq("a", "环境保护税怎么申报", "新"),
        ])
        .unwrap();
        assert_eq!(kb.len(), 2);
        assert!(kb.search("车船", 5).is_empty());
        assert_eq!(kb.search("环境保护税", 5)[0].id, "a");
        assert_eq!(kb.search("契税", 5)[0].id, "b");
        assert_eq!(kb.get("a").unwrap().answer, "新");
    }

    #[test]
    fn build_keeps_the_last_faq_of_an_id() {
        let kb = KnowledgeIndex::build(&[
            faq("a", "车船税怎么申报", "旧"),
            faq("a", "契税怎么申报", "新"),
        ])
        .unwrap();
        assert_eq!(kb.len(), 1);
        assert!(kb.search("车船", 5).is_empty());
        assert_eq!(kb.get("a").unwrap().answer, "新");
    }
}
