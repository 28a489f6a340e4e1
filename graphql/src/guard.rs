//! Checks on a query's text made before the parser sees it. The parser recurses per level of
//! nesting, so a deeply nested list or object literal could exhaust the stack; counting
//! brackets first turns that into a clean `QUERY_TOO_COMPLEX`.

/// The deepest bracket nesting (`{`, `[`, `(`) in a GraphQL document, ignoring strings and
/// comments.
pub fn nesting_depth(query: &str) -> usize {
    let b = query.as_bytes();
    let (mut depth, mut max, mut i) = (0usize, 0usize, 0usize);
    while i < b.len() {
        match b[i] {
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' if b[i..].starts_with(b"\"\"\"") => {
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
                i += 1;
                while i < b.len() && b[i] != b'"' && b[i] != b'\n' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    max
}

/// The most nesting a query may have; far above any real query of this schema.
pub const MAX_NESTING: usize = 64;

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
}
