//! Bounds on every value a request carries — literal arguments, directive arguments,
//! variable defaults and the variables — checked once, before any resolver or transaction:
//! no list longer than `max_list_items`, no string longer than `max_string_chars`, and no
//! control character but tab, newline and carriage return in any string or ID (a NUL is
//! an error on PostgreSQL and stored as is by SQLite). One walk over the values, whatever
//! the field, so a new argument is bounded without anyone remembering to.

use async_graphql::parser::types::{Directive, ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Positioned, Value as ConstValue, Variables};
use async_graphql_value::Value;

use crate::refusal::Refusal;

#[derive(Debug, Clone, Copy)]
pub struct InputBounds {
    pub max_list_items: usize,
    pub max_string_chars: usize,
}

/// A control character a text field never needs (tab, newline and CR are allowed).
fn is_forbidden_char(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\n' | '\r')
}

impl InputBounds {
    fn string(&self, path: &str, s: &str) -> Result<(), Refusal> {
        if let Some(c) = s.chars().find(|c| is_forbidden_char(*c)) {
            let code = format!("U+{:04X}", c as u32);
            return Err(Refusal::invalid_input(
                path.to_owned(),
                format!("{path} 含有不允许的控制字符 {code}"),
                format!("{path} contains the control character {code}, which is not allowed"),
            ));
        }
        // Bytes bound chars from above: only a long string needs counting.
        let max = self.max_string_chars;
        if s.len() > max && s.chars().count() > max {
            return Err(Refusal::invalid_input(
                path.to_owned(),
                format!("{path} 超过 {max} 个字符"),
                format!("{path} is longer than {max} characters"),
            ));
        }
        Ok(())
    }

    fn list_len(&self, path: &str, n: usize) -> Result<(), Refusal> {
        let max = self.max_list_items;
        if n > max {
            return Err(Refusal::invalid_input(
                path.to_owned(),
                format!("{path} 最多 {max} 项（现为 {n} 项）"),
                format!("{path} may hold at most {max} items (got {n})"),
            ));
        }
        Ok(())
    }

    /// A value of the query text; variables inside it are checked with the variables.
    fn literal(&self, path: &str, v: &Value) -> Result<(), Refusal> {
        match v {
            Value::String(s) => self.string(path, s),
            Value::List(items) => {
                self.list_len(path, items.len())?;
                for (i, item) in items.iter().enumerate() {
                    self.literal(&format!("{path}[{i}]"), item)?;
                }
                Ok(())
            }
            Value::Object(fields) => {
                for (name, item) in fields {
                    self.literal(&format!("{path}.{name}"), item)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// A variable's value or a default.
    fn constant(&self, path: &str, v: &ConstValue) -> Result<(), Refusal> {
        match v {
            ConstValue::String(s) => self.string(path, s),
            ConstValue::List(items) => {
                self.list_len(path, items.len())?;
                for (i, item) in items.iter().enumerate() {
                    self.constant(&format!("{path}[{i}]"), item)?;
                }
                Ok(())
            }
            ConstValue::Object(fields) => {
                for (name, item) in fields {
                    self.constant(&format!("{path}.{name}"), item)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn directives(&self, at: &str, list: &[Positioned<Directive>]) -> Result<(), Refusal> {
        for d in list {
            for (name, value) in &d.node.arguments {
                let path = format!("{at}@{}.{}", d.node.name.node, name.node);
                self.literal(&path, &value.node)?;
            }
        }
        Ok(())
    }

    /// Each selection set is walked once as written (spreads are not followed: every
    /// fragment definition is walked on its own).
    fn selection_set(&self, set: &SelectionSet) -> Result<(), Refusal> {
        for item in &set.items {
            match &item.node {
                Selection::Field(f) => {
                    let f = &f.node;
                    let key = f.response_key().node.as_str();
                    for (name, value) in &f.arguments {
                        self.literal(&format!("{key}.{}", name.node), &value.node)?;
                    }
                    self.directives(key, &f.directives)?;
                    self.selection_set(&f.selection_set.node)?;
                }
                Selection::FragmentSpread(s) => {
                    self.directives(
                        &format!("...{}", s.node.fragment_name.node),
                        &s.node.directives,
                    )?;
                }
                Selection::InlineFragment(i) => {
                    self.directives("...", &i.node.directives)?;
                    self.selection_set(&i.node.selection_set.node)?;
                }
            }
        }
        Ok(())
    }

    /// Checks every value of a request: its variables, then the document's literals.
    pub fn check(&self, doc: &ExecutableDocument, variables: &Variables) -> Result<(), Refusal> {
        for (name, value) in variables.iter() {
            self.constant(&format!("${name}"), value)?;
        }
        for (_, op) in doc.operations.iter() {
            let op = &op.node;
            for var in &op.variable_definitions {
                if let Some(default) = &var.node.default_value {
                    self.constant(&format!("${}", var.node.name.node), &default.node)?;
                }
            }
            self.directives("", &op.directives)?;
            self.selection_set(&op.selection_set.node)?;
        }
        for (_, fragment) in doc.fragments.iter() {
            self.directives("", &fragment.node.directives)?;
            self.selection_set(&fragment.node.selection_set.node)?;
        }
        Ok(())
    }

    /// An uploaded file's name is stored like any string.
    pub fn file_name(&self, index: usize, name: &str) -> Result<(), Refusal> {
        self.string(&format!("upload[{index}].filename"), name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Code;
    use async_graphql::parser::parse_query;
    use serde_json::json;

    const BOUNDS: InputBounds = InputBounds {
        max_list_items: 100,
        max_string_chars: 1_000,
    };

    fn run(q: &str, vars: serde_json::Value) -> Result<(), Refusal> {
        BOUNDS.check(
            &parse_query(q).expect("parses"),
            &Variables::from_json(vars),
        )
    }

    #[test]
    fn control_characters_are_refused_in_literals_and_variables() {
        let e = run(r#"{ faq(id: "a\u0000b") { id } }"#, json!({})).unwrap_err();
        assert_eq!(e.code, Code::InvalidInput);
        assert_eq!(e.field.as_deref(), Some("faq.id"));
        let q = "mutation($input: LeaveMessageInput!) { leaveMessage(input: $input) { id } }";
        let e = run(
            q,
            json!({"input": {"content": "hi", "contact": "x\u{1b}[31m"}}),
        )
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("$input.contact"));
        for bad in ["\u{7f}", "\u{85}", "\u{0}"] {
            assert!(run("{ a }", json!({"v": bad})).is_err(), "{bad:?}");
        }
        // Tab, newline and CR are text; so is any printable Unicode.
        assert!(run("{ a }", json!({"v": "第一行\r\n\t第二行 😀"})).is_ok());
    }

    #[test]
    fn long_lists_and_strings_are_refused_with_their_path() {
        let ids: Vec<String> = (0..101).map(|i| format!("a{i}")).collect();
        let q = "mutation($input: LeaveMessageInput!) { leaveMessage(input: $input) { id } }";
        let e = run(q, json!({"input": {"content": "x", "attachmentIds": ids}})).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("$input.attachmentIds"));
        let ok: Vec<String> = (0..100).map(|i| format!("a{i}")).collect();
        assert!(run(q, json!({"input": {"content": "x", "attachmentIds": ok}})).is_ok());

        let literal: Vec<String> = (0..101).map(|i| format!("\"{i}\"")).collect();
        let q = format!(
            "mutation {{ markNotificationsRead(ids: [{}]) {{ id }} }}",
            literal.join(",")
        );
        let e = run(&q, json!({})).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("markNotificationsRead.ids"));

        let e = run("{ a }", json!({"s": "字".repeat(1_001)})).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("$s"));
        assert!(run("{ a }", json!({"s": "字".repeat(1_000)})).is_ok());
        // Nested lists are each bounded.
        assert!(run("{ a }", json!({ "l": [vec![0; 101]] })).is_err());
    }
}
