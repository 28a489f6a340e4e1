//! Character unigrams and bigrams of the FAQs, ranked by BM25 per field.
//!
//! Chinese questions rarely use the FAQ's words (口语, typos, a story before the point), but
//! they share characters and character pairs with it: 开错 / 作废 / 红字 survive a rephrasing
//! that defeats a word segmenter. Each FAQ's question, phrasings, keywords and answer are
//! separate fields with their own BM25 statistics; a question's score is the weighted sum
//! over its distinct grams. A long question is not penalised for its length: every gram adds,
//! none divides. Grams found in more than half of a large base (税, 的 …) carry almost no
//! information and are skipped, which keeps a long question cheap on 10,000 FAQs.

use std::collections::HashMap;

/// Question, phrasings, keywords, answer.
pub const FIELDS: usize = 4;
/// Field weights (equal: a plateau on the dev part, no field needed favouring).
const WEIGHTS: [f32; FIELDS] = [1.0, 1.0, 1.0, 1.0];
const K1: f32 = 1.2;
const B: f32 = 0.75;
/// Grams in more than this share of the FAQs are skipped …
const COMMON_SHARE: f32 = 0.5;
/// … once the base has this many FAQs (a tiny base has no reliable frequencies).
const COMMON_MIN_DOCS: u32 = 50;

/// One gram: a character, or two adjacent characters of one segment.
pub type Gram = u64;

fn gram(a: char, b: Option<char>) -> Gram {
    (u64::from(a as u32) << 32) | u64::from(b.map_or(0, |c| c as u32))
}

/// Is `g` a pair of characters?
pub fn is_bigram(g: Gram) -> bool {
    g & 0xFFFF_FFFF != 0
}

/// The grams of already-normalized text (segments separated by spaces), in order, repeated.
pub fn grams(text: &str) -> Vec<Gram> {
    let mut out = Vec::new();
    for segment in text.split(' ') {
        let chars: Vec<char> = segment.chars().collect();
        for (i, &c) in chars.iter().enumerate() {
            out.push(gram(c, None));
            if let Some(&next) = chars.get(i + 1) {
                out.push(gram(c, Some(next)));
            }
        }
    }
    out
}

/// The distinct grams of `text`, in order of first appearance.
pub fn distinct_grams(text: &str) -> Vec<Gram> {
    let mut seen = std::collections::HashSet::new();
    grams(text)
        .into_iter()
        .filter(|g| seen.insert(*g))
        .collect()
}

#[derive(Clone, Copy)]
struct Posting {
    slot: u32,
    tf: [u16; FIELDS],
}

#[derive(Default)]
struct Term {
    /// FAQs having the gram, per field.
    df: [u32; FIELDS],
    postings: Vec<Posting>,
}

struct Slot {
    id: String,
    len: [u32; FIELDS],
    grams: Vec<Gram>,
}

/// Scores of one question over the FAQs.
pub struct Scored {
    /// (FAQ id, BM25, coverage) of the best `limit`, best first.
    pub hits: Vec<GramHit>,
    /// Distinct grams of the question.
    pub grams: usize,
}

/// One FAQ's score for a question.
#[derive(Debug, Clone, PartialEq)]
pub struct GramHit {
    pub id: String,
    pub score: f32,
    /// IDF-weighted share of the question's grams found in the FAQ's question, phrasings or
    /// keywords (a gram no FAQ has counts as not found).
    pub core_coverage: f32,
    /// IDF-weighted share of the question's character pairs found anywhere in the FAQ.
    pub pair_coverage: f32,
}

/// The inverted index of grams. Not synchronised: the owner locks it.
#[derive(Default)]
pub struct GramIndex {
    terms: HashMap<Gram, Term>,
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
    by_id: HashMap<String, u32>,
    total_len: [u64; FIELDS],
    docs: u32,
}

impl GramIndex {
    /// Adds or replaces the FAQ `id` with its normalized field texts (the phrasings field
    /// holds every phrasing, the keywords field every keyword).
    pub fn upsert(&mut self, id: &str, fields: [&[String]; FIELDS]) {
        self.remove(id);
        let mut tf: HashMap<Gram, [u16; FIELDS]> = HashMap::new();
        let mut len = [0u32; FIELDS];
        for (f, texts) in fields.iter().enumerate() {
            for text in texts.iter() {
                for g in grams(text) {
                    let e = tf.entry(g).or_default();
                    e[f] = e[f].saturating_add(1);
                    len[f] += 1;
                }
            }
        }
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(None);
                (self.slots.len() - 1) as u32
            }
        };
        for (&g, counts) in &tf {
            let term = self.terms.entry(g).or_default();
            for (df, &n) in term.df.iter_mut().zip(counts) {
                *df += u32::from(n > 0);
            }
            term.postings.push(Posting { slot, tf: *counts });
        }
        for (total, &n) in self.total_len.iter_mut().zip(&len) {
            *total += u64::from(n);
        }
        self.docs += 1;
        self.by_id.insert(id.to_string(), slot);
        self.slots[slot as usize] = Some(Slot {
            id: id.to_string(),
            len,
            grams: tf.into_keys().collect(),
        });
    }

    /// Takes the FAQ `id` out, if it is in.
    pub fn remove(&mut self, id: &str) {
        let Some(slot) = self.by_id.remove(id) else {
            return;
        };
        let Some(old) = self.slots[slot as usize].take() else {
            return;
        };
        for g in &old.grams {
            if let Some(term) = self.terms.get_mut(g) {
                if let Some(i) = term.postings.iter().position(|p| p.slot == slot) {
                    let p = term.postings.swap_remove(i);
                    for f in 0..FIELDS {
                        term.df[f] -= u32::from(p.tf[f] > 0);
                    }
                }
                if term.postings.is_empty() {
                    self.terms.remove(g);
                }
            }
        }
        for f in 0..FIELDS {
            self.total_len[f] -= u64::from(old.len[f]);
        }
        self.docs -= 1;
        self.free.push(slot);
    }

    /// FAQs in the index.
    pub fn len(&self) -> usize {
        self.docs as usize
    }

    pub fn is_empty(&self) -> bool {
        self.docs == 0
    }

    fn idf(&self, df: u32) -> f32 {
        let n = self.docs as f32;
        let df = df as f32;
        (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
    }

    /// The best `limit` FAQs for the distinct grams `query`.
    pub fn score(&self, query: &[Gram], limit: usize) -> Scored {
        let mut scored = Scored {
            hits: Vec::new(),
            grams: query.len(),
        };
        if self.docs == 0 || limit == 0 {
            return scored;
        }
        let avg: Vec<f32> = (0..FIELDS)
            .map(|f| (self.total_len[f] as f32 / self.docs as f32).max(1.0))
            .collect();
        let n = self.slots.len();
        let mut score = vec![0f32; n];
        let mut core = vec![0f32; n];
        let mut pairs = vec![0f32; n];
        let mut core_total = 0f32;
        let mut pair_total = 0f32;
        let common = (self.docs as f32 * COMMON_SHARE) as usize;
        for g in query {
            let Some(term) = self.terms.get(g) else {
                continue;
            };
            let any_idf = self.idf(term.postings.len() as u32);
            core_total += any_idf;
            let pair = is_bigram(*g);
            if pair {
                pair_total += any_idf;
            }
            if self.docs >= COMMON_MIN_DOCS && term.postings.len() > common {
                continue;
            }
            let idf: [f32; FIELDS] = std::array::from_fn(|f| WEIGHTS[f] * self.idf(term.df[f]));
            for p in &term.postings {
                let Some(slot) = &self.slots[p.slot as usize] else {
                    continue;
                };
                let s = p.slot as usize;
                let mut in_core = false;
                for f in 0..FIELDS {
                    let tf = f32::from(p.tf[f]);
                    if tf > 0.0 {
                        let norm = K1 * (1.0 - B + B * slot.len[f] as f32 / avg[f]);
                        score[s] += idf[f] * tf * (K1 + 1.0) / (tf + norm);
                        in_core |= f < 3;
                    }
                }
                if in_core {
                    core[s] += any_idf;
                }
                if pair {
                    pairs[s] += any_idf;
                }
            }
        }
        // Grams no FAQ has count as uncovered, with the idf of a gram no FAQ has.
        for g in query.iter().filter(|g| !self.terms.contains_key(g)) {
            let idf = self.idf(0);
            core_total += idf;
            if is_bigram(*g) {
                pair_total += idf;
            }
        }
        let mut best: Vec<usize> = (0..n).filter(|&s| score[s] > 0.0).collect();
        let by_score = |a: &usize, b: &usize| score[*b].total_cmp(&score[*a]);
        if best.len() > limit {
            best.select_nth_unstable_by(limit - 1, by_score);
            best.truncate(limit);
        }
        best.sort_by(by_score);
        scored.hits = best
            .into_iter()
            .filter_map(|s| {
                let slot = self.slots[s].as_ref()?;
                Some(GramHit {
                    id: slot.id.clone(),
                    score: score[s],
                    core_coverage: if core_total > 0.0 {
                        core[s] / core_total
                    } else {
                        0.0
                    },
                    pair_coverage: if pair_total > 0.0 {
                        pairs[s] / pair_total
                    } else {
                        0.0
                    },
                })
            })
            .collect();
        scored
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(ix: &mut GramIndex, id: &str, q: &str, a: &str) {
        ix.upsert(id, [&[q.to_string()], &[], &[], &[a.to_string()]]);
    }

    #[test]
    fn grams_are_characters_and_pairs_within_a_segment() {
        let g = grams("开票 额度");
        assert_eq!(g.len(), 6, "开 开票 票 额 额度 度");
        assert_eq!(g.iter().filter(|g| is_bigram(**g)).count(), 2);
        assert_eq!(distinct_grams("票票").len(), 2);
    }

    #[test]
    fn ranks_by_shared_characters_and_forgets_removed_faqs() {
        let mut ix = GramIndex::default();
        add(
            &mut ix,
            "void",
            "数电发票开错了怎么作废",
            "未交付的可以直接作废",
        );
        add(&mut ix, "quota", "开票额度不够怎么办", "申请调整授信额度");
        let s = ix.score(&distinct_grams("金额开多了能作废重开吗"), 5);
        assert_eq!(s.hits[0].id, "void");
        assert!(s.hits[0].core_coverage > 0.0 && s.hits[0].core_coverage <= 1.0);

        ix.remove("void");
        assert_eq!(ix.len(), 1);
        let s = ix.score(&distinct_grams("作废"), 5);
        assert!(s.hits.is_empty(), "{:?}", s.hits);
        add(&mut ix, "void", "发票作废", "作废");
        assert_eq!(ix.score(&distinct_grams("作废"), 5).hits[0].id, "void");
        assert_eq!(ix.len(), 2);
    }

    #[test]
    fn a_long_question_finds_its_point() {
        let mut ix = GramIndex::default();
        add(&mut ix, "void", "发票开错了怎么作废", "作废");
        add(&mut ix, "reg", "小规模纳税人怎么登记", "登记");
        let story =
            "我们是一家小公司，上个月给客户开票的时候把金额写错了，客户还没收到，这张发票能作废吗";
        assert_eq!(ix.score(&distinct_grams(story), 2).hits[0].id, "void");
    }
}
