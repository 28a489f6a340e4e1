//! Synonym groups for tax vocabulary (`chat/data/kb/synonyms.txt`). Every variant is rewritten
//! to its group's canonical term, leftmost-longest, in FAQ text and questions alike, so that
//! 个税 / 个人所得税 or 数电票 / 全电发票 / 数字化电子发票 index and search as one term.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use super::KbError;
use super::text::fold;

const BUILTIN: &str = include_str!("../../data/kb/synonyms.txt");

/// A parsed synonym list.
#[derive(Debug, Clone, Default)]
pub struct Synonyms {
    /// Folded variant → canonical term (canonical and protected terms map to themselves).
    map: HashMap<String, String>,
    /// First characters of every entry, to skip positions quickly.
    starts: HashSet<char>,
    /// Longest entry, in characters.
    max_chars: usize,
    groups: usize,
}

impl Synonyms {
    /// The list bundled with the crate.
    pub fn builtin() -> &'static Synonyms {
        static S: OnceLock<Synonyms> = OnceLock::new();
        S.get_or_init(|| Synonyms::parse(BUILTIN).expect("bundled synonyms.txt parses"))
    }

    /// Parses the `a = b = c` format (one group a line, `#` comments, `,` also separates).
    pub fn parse(text: &str) -> Result<Synonyms, KbError> {
        let mut s = Synonyms::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let terms: Vec<String> = line
                .split(['=', ',', '，'])
                .map(|t| fold(t.trim()))
                .filter(|t| !t.is_empty())
                .collect();
            let Some(canonical) = terms.first().cloned() else {
                continue;
            };
            if terms.len() == 1 && s.map.contains_key(&canonical) {
                continue; // a protected word that is already in a group
            }
            if terms.len() > 1 {
                s.groups += 1;
            }
            for t in terms {
                if let Some(prev) = s.map.get(&t)
                    && *prev != canonical
                {
                    return Err(KbError::Parse {
                        line: n + 1,
                        message: format!("“{t}” is already a synonym of “{prev}”"),
                    });
                }
                s.max_chars = s.max_chars.max(t.chars().count());
                if let Some(c) = t.chars().next() {
                    s.starts.insert(c);
                }
                s.map.insert(t, canonical.clone());
            }
        }
        Ok(s)
    }

    /// Number of groups with at least two terms.
    pub fn groups(&self) -> usize {
        self.groups
    }

    /// The canonical term of `term` (folded), if it is in the list.
    pub fn canonical(&self, term: &str) -> Option<&str> {
        self.map.get(&fold(term)).map(String::as_str)
    }

    /// Rewrites every variant in already-folded `text` to its canonical term, leftmost-longest.
    pub fn canonicalize(&self, text: &str) -> String {
        let chars: Vec<(usize, char)> = text.char_indices().collect();
        let mut out = String::with_capacity(text.len() + 16);
        let mut i = 0;
        'outer: while i < chars.len() {
            let (start, c) = chars[i];
            if self.starts.contains(&c) {
                let longest = self.max_chars.min(chars.len() - i);
                for len in (1..=longest).rev() {
                    let end = chars.get(i + len).map_or(text.len(), |&(b, _)| b);
                    if let Some(canonical) = self.map.get(&text[start..end]) {
                        out.push_str(canonical);
                        i += len;
                        continue 'outer;
                    }
                }
            }
            out.push(c);
            i += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_list_has_enough_groups() {
        let s = Synonyms::builtin();
        assert!(s.groups() >= 30, "{} groups", s.groups());
        assert_eq!(s.canonical("个税"), Some("个人所得税"));
        assert_eq!(s.canonical("全电发票"), Some("数电发票"));
        assert_eq!(s.canonical("数字化电子发票"), Some("数电发票"));
        assert_eq!(s.canonical("社保"), Some("社会保险费"));
        assert_eq!(s.canonical("汇算"), Some("汇算清缴"));
        assert_eq!(s.canonical("增值税专票"), Some("增值税专用发票"));
        assert_eq!(s.canonical("电子税务局网站"), Some("电子税务局"));
    }

    #[test]
    fn rewrites_leftmost_longest() {
        let s = Synonyms::builtin();
        assert_eq!(s.canonicalize("个税汇算"), "个人所得税汇算清缴");
        assert_eq!(s.canonicalize("汇算清缴"), "汇算清缴");
        assert_eq!(s.canonicalize("社保费怎么交"), "社会保险费怎么交");
        assert_eq!(s.canonicalize("电子税务局网站打不开"), "电子税务局打不开");
        assert_eq!(s.canonicalize("税务局发的文书"), "税务机关发的文书");
        assert_eq!(s.canonicalize("提交税务文书"), "提交税务文书");
        assert_eq!(s.canonicalize("交税"), "缴税");
    }

    #[test]
    fn rejects_a_term_in_two_groups() {
        assert!(Synonyms::parse("a = b\nc = b").is_err());
        assert!(Synonyms::parse("a = b\n# c = b\nb").is_ok());
    }
}
