//! Checks on a query's text made before the parser sees it. The parser recurses per level of
//! nesting, so a deeply nested list or object literal could exhaust the stack; counting
//! brackets first turns that into a clean `QUERY_TOO_COMPLEX`. Bounding the bytes and the
//! tokens bounds the parser's work, whatever the text.

use crate::error::Code;
use crate::refusal::Refusal;

/// What one linear scan of a document's text finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextShape {
    /// Lexical tokens (names, numbers, strings, punctuators); commas, spaces and comments
    /// are not tokens.
    pub tokens: usize,
    /// The deepest bracket nesting (`{`, `[`, `(`).
    pub nesting: usize,
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.' || b == b'+'
}

/// Scans a GraphQL document once, ignoring what is inside strings and comments.
pub fn shape(query: &str) -> TextShape {
    let b = query.as_bytes();
    let (mut depth, mut nesting, mut tokens, mut i) = (0usize, 0usize, 0usize, 0usize);
    while i < b.len() {
        match b[i] {
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b' ' | b'\t' | b'\n' | b'\r' | b',' => {}
            b'"' if b[i..].starts_with(b"\"\"\"") => {
                tokens += 1;
                i += 3;
                while i < b.len() && !b[i..].starts_with(b"\"\"\"") {
                    i += if b[i..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                i += 2;
            }
            b'"' => {
                tokens += 1;
                i += 1;
                while i < b.len() && b[i] != b'"' && b[i] != b'\n' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' | b'(' => {
                tokens += 1;
                depth += 1;
                nesting = nesting.max(depth);
            }
            b'}' | b']' | b')' => {
                tokens += 1;
                depth = depth.saturating_sub(1);
            }
            c if is_name_byte(c) => {
                tokens += 1;
                while i + 1 < b.len() && is_name_byte(b[i + 1]) {
                    i += 1;
                }
            }
            _ => tokens += 1,
        }
        i += 1;
    }
    TextShape { tokens, nesting }
}

/// The deepest bracket nesting (`{`, `[`, `(`) in a GraphQL document, ignoring strings and
/// comments.
pub fn nesting_depth(query: &str) -> usize {
    shape(query).nesting
}

/// The most nesting a query may have; far above any real query of this schema.
pub const MAX_NESTING: usize = 64;

/// Refuses a document whose text alone is too big to be worth parsing.
pub fn check_text(query: &str, max_bytes: usize, max_tokens: usize) -> Result<(), Refusal> {
    let too_complex = |zh: String, en: String| Err(Refusal::new(Code::QueryTooComplex, zh, en));
    if query.len() > max_bytes {
        return too_complex(
            format!("查询文本超过 {max_bytes} 字节上限"),
            format!("the query is longer than {max_bytes} bytes"),
        );
    }
    let s = shape(query);
    if s.nesting > MAX_NESTING {
        return too_complex(
            "查询嵌套过深".into(),
            format!("the query nests deeper than {MAX_NESTING} levels"),
        );
    }
    if s.tokens > max_tokens {
        return too_complex(
            format!("查询超过 {max_tokens} 个词法单元上限"),
            format!("the query has more than {max_tokens} tokens"),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_brackets_outside_strings_and_comments() {
        assert_eq!(nesting_depth("{ me { id } }"), 2);
        assert_eq!(nesting_depth(r#"{ a(x: "{{{[[[") }"#), 2);
        assert_eq!(nesting_depth("# {{{{\n{ a }"), 1);
        assert_eq!(nesting_depth("{ a(x: \"\"\" {{{ \\\"\"\" {{ \"\"\") }"), 2);
        let deep = format!("{{ a(x: {}1{}) }}", "[".repeat(3000), "]".repeat(3000));
        assert_eq!(nesting_depth(&deep), 3002);
    }

    #[test]
    fn counts_tokens_not_commas_spaces_or_comments() {
        // { me { id } } = 6 tokens.
        assert_eq!(shape("{ me { id } }").tokens, 6);
        assert_eq!(shape("{ me,,,, { id } } # a b c d").tokens, 6);
        // query ( $a : [ID!] ) { x ( a : $a , s : "a b c" ) }
        let q = r#"query($a: [ID!]) { x(a: $a, s: "a b c", f: -1.5e3) }"#;
        assert_eq!(
            shape(q).tokens,
            25,
            "a number and a spread are one token each"
        );
        assert_eq!(shape("fragment F on Query { ...G }").tokens, 7);
    }

    #[test]
    fn refuses_long_deep_or_token_heavy_text() {
        assert!(check_text("{ me { id } }", 100, 10).is_ok());
        let long = check_text(&"#".repeat(101), 100, 10).unwrap_err();
        assert_eq!(long.code, Code::QueryTooComplex);
        assert!(check_text("{ a b c d e f g h i j k }", 100, 10).is_err());
        let deep = format!("{}{}", "{".repeat(65), "}".repeat(65));
        assert!(check_text(&deep, 1000, 1000).is_err());
    }
}
