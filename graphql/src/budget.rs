//! The work a document asks for, counted before the library validates it. The library's
//! own checks (recursion depth, directives, complexity) walk every fragment spread anew, so
//! spreads that double at each level cost 2^levels; here each fragment is counted once and
//! its cost reused, and counting stops as soon as the budget is spent. A document within
//! the budget expands to at most `max_selections` selections, which bounds every later walk.

use std::collections::HashMap;

use async_graphql::parser::types::{
    ExecutableDocument, FragmentDefinition, OperationType, Selection, SelectionSet,
};

use crate::error::Code;
use crate::refusal::Refusal;

/// What one document may ask for, after fragment expansion.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub max_selections: u64,
    pub max_aliases: u64,
    pub max_directives: u64,
    /// Root fields of a mutation: each is a separate write.
    pub max_mutations: u64,
}

/// Fragment expansion nested deeper than this is refused without going further; the
/// library refuses far less (its recursion depth) anyway. It bounds this walk's stack.
const MAX_EXPANSION_DEPTH: usize = 64;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Cost {
    /// Fields, fragment spreads and inline fragments, each spread expanded.
    selections: u64,
    aliases: u64,
    directives: u64,
    /// Fields at the top of the selection set (through spreads and inline fragments).
    top_fields: u64,
}

impl Cost {
    fn add(&mut self, o: Cost) {
        self.selections = self.selections.saturating_add(o.selections);
        self.aliases = self.aliases.saturating_add(o.aliases);
        self.directives = self.directives.saturating_add(o.directives);
        self.top_fields = self.top_fields.saturating_add(o.top_fields);
    }
}

enum Mark {
    Counting,
    Counted(Cost),
}

struct Counter<'a> {
    doc: &'a ExecutableDocument,
    budget: Budget,
    fragments: HashMap<&'a str, Mark>,
}

fn too_complex(zh: String, en: String) -> Refusal {
    Refusal::new(Code::QueryTooComplex, zh, en)
}

impl<'a> Counter<'a> {
    fn over_budget(&self) -> Refusal {
        let n = self.budget.max_selections;
        too_complex(
            format!("展开片段后查询超过 {n} 个字段上限"),
            format!("the query selects more than {n} fields once its fragments are expanded"),
        )
    }

    fn selection_set(&mut self, set: &'a SelectionSet, depth: usize) -> Result<Cost, Refusal> {
        if depth > MAX_EXPANSION_DEPTH {
            return Err(too_complex(
                "查询或片段嵌套过深".into(),
                format!("fields and fragments nest deeper than {MAX_EXPANSION_DEPTH} levels"),
            ));
        }
        let mut cost = Cost::default();
        for item in &set.items {
            let mut one = Cost {
                selections: 1,
                ..Cost::default()
            };
            match &item.node {
                Selection::Field(f) => {
                    let f = &f.node;
                    one.aliases = u64::from(f.alias.is_some());
                    one.directives = f.directives.len() as u64;
                    one.top_fields = 1;
                    let inner = self.selection_set(&f.selection_set.node, depth + 1)?;
                    one.selections = one.selections.saturating_add(inner.selections);
                    one.aliases = one.aliases.saturating_add(inner.aliases);
                    one.directives = one.directives.saturating_add(inner.directives);
                }
                Selection::FragmentSpread(s) => {
                    one.directives = s.node.directives.len() as u64;
                    one.add(self.fragment(&s.node.fragment_name.node, depth + 1)?);
                }
                Selection::InlineFragment(i) => {
                    one.directives = i.node.directives.len() as u64;
                    one.add(self.selection_set(&i.node.selection_set.node, depth + 1)?);
                }
            }
            cost.add(one);
            // Stop expanding as soon as the budget is spent.
            if cost.selections > self.budget.max_selections {
                return Err(self.over_budget());
            }
        }
        Ok(cost)
    }

    fn fragment(&mut self, name: &'a str, depth: usize) -> Result<Cost, Refusal> {
        match self.fragments.get(name) {
            Some(Mark::Counted(c)) => return Ok(*c),
            Some(Mark::Counting) => {
                // As the library's recursion limit has always answered it.
                return Err(too_complex(
                    format!("片段 {name} 引用了自身"),
                    format!("fragment {name} spreads itself (a cycle)"),
                ));
            }
            None => {}
        }
        // An unknown fragment costs nothing here; validation reports it.
        let Some(def) = self.doc.fragments.get(name) else {
            return Ok(Cost::default());
        };
        let def: &'a FragmentDefinition = &def.node;
        self.fragments.insert(name, Mark::Counting);
        let mut cost = self.selection_set(&def.selection_set.node, depth)?;
        cost.directives = cost.directives.saturating_add(def.directives.len() as u64);
        self.fragments.insert(name, Mark::Counted(cost));
        Ok(cost)
    }
}

/// Counts every operation of the document (each fragment once) against the budget.
pub fn check(doc: &ExecutableDocument, budget: Budget) -> Result<(), Refusal> {
    let mut counter = Counter {
        doc,
        budget,
        fragments: HashMap::new(),
    };
    let mut total = Cost::default();
    for (_, op) in doc.operations.iter() {
        let op = &op.node;
        let mut cost = counter.selection_set(&op.selection_set.node, 1)?;
        cost.directives = cost.directives.saturating_add(op.directives.len() as u64);
        if op.ty == OperationType::Mutation && cost.top_fields > budget.max_mutations {
            let n = budget.max_mutations;
            return Err(too_complex(
                format!("一次请求最多执行 {n} 个变更操作"),
                format!("one request may run at most {n} mutations"),
            ));
        }
        total.add(cost);
        if total.selections > budget.max_selections {
            return Err(counter.over_budget());
        }
    }
    // Fragments no operation uses are still walked by validation: count them too.
    let names: Vec<&str> = doc.fragments.keys().map(|n| n.as_str()).collect();
    for name in names {
        if !counter.fragments.contains_key(name) {
            total.add(counter.fragment(name, 1)?);
            if total.selections > budget.max_selections {
                return Err(counter.over_budget());
            }
        }
    }
    if total.aliases > budget.max_aliases {
        let n = budget.max_aliases;
        return Err(too_complex(
            format!("查询的别名超过 {n} 个"),
            format!("the query uses more than {n} aliases"),
        ));
    }
    if total.directives > budget.max_directives {
        let n = budget.max_directives;
        return Err(too_complex(
            format!("查询的指令超过 {n} 个"),
            format!("the query uses more than {n} directives"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;

    const BUDGET: Budget = Budget {
        max_selections: 2_000,
        max_aliases: 50,
        max_directives: 50,
        max_mutations: 10,
    };

    fn run(q: &str) -> Result<(), Refusal> {
        check(&parse_query(q).expect("parses"), BUDGET)
    }

    /// `query { ...F0 } fragment F0 on Query { ...F1 ...F1 } … fragment F{n} { me { id } }`.
    fn doubling(levels: usize) -> String {
        let mut q = String::from("query { ...F0 }");
        for i in 0..levels {
            q.push_str(&format!(
                " fragment F{i} on Query {{ ...F{n} ...F{n} }}",
                n = i + 1
            ));
        }
        q.push_str(&format!(" fragment F{levels} on Query {{ me {{ id }} }}"));
        q
    }

    #[test]
    fn doubling_fragments_are_refused_without_expanding_them() {
        for levels in [25, 30, 60] {
            let started = std::time::Instant::now();
            let e = run(&doubling(levels)).unwrap_err();
            assert_eq!(e.code, Code::QueryTooComplex, "{levels}: {e:?}");
            // Not a timing assert: 2^30 spreads could not be walked in a test's lifetime.
            println!(
                "{levels} doubling levels refused in {:?}",
                started.elapsed()
            );
        }
        assert!(run(&doubling(5)).is_ok(), "32 copies of `me {{ id }}` fit");
    }

    #[test]
    fn cycles_are_refused_not_followed() {
        let e = run("{ ...A } fragment A on Query { ...A ...A }").unwrap_err();
        assert_eq!(e.code, Code::QueryTooComplex);
        assert!(e.en.contains("cycle"), "{e:?}");
        let e = run("{ me { id } } fragment A on Query { ...B } fragment B on Query { ...A }");
        assert!(
            e.unwrap_err().en.contains("cycle"),
            "unused fragments are walked too"
        );
    }

    #[test]
    fn aliases_directives_and_mutations_are_counted_after_expansion() {
        let aliases: String = (0..51).map(|i| format!("a{i}: me {{ id }} ")).collect();
        assert!(run(&format!("{{ {aliases} }}")).is_err());
        // 10 aliases in a fragment spread 6 times: 60 aliases.
        let ten: String = (0..10).map(|i| format!("a{i}: me {{ id }} ")).collect();
        let q = format!("{{ ...F ...F ...F ...F ...F ...F }} fragment F on Query {{ {ten} }}");
        assert!(run(&q).is_err());
        let q = format!("{{ ...F ...F ...F ...F }} fragment F on Query {{ {ten} }}");
        assert!(run(&q).is_ok());

        let dirs: String = (0..51)
            .map(|i| format!("a{i}: me @skip(if: false) {{ id }} "))
            .collect();
        assert!(run(&format!("{{ {dirs} }}")).is_err());

        let create = |i: usize| format!("c{i}: createWorkOrder(input: {{title: \"t\"}}) {{ id }} ");
        let ten: String = (0..10).map(create).collect();
        assert!(run(&format!("mutation {{ {ten} }}")).is_ok());
        let eleven: String = (0..11).map(create).collect();
        let e = run(&format!("mutation {{ {eleven} }}")).unwrap_err();
        assert_eq!(e.code, Code::QueryTooComplex);
        // Through a fragment on Mutation, too.
        let q = format!(
            "mutation {{ ...M ...M }} fragment M on Mutation {{ {} }}",
            (0..6).map(create).collect::<String>()
        );
        assert!(run(&q).is_err());
    }

    #[test]
    fn a_wide_query_stops_at_the_budget() {
        let wide: String = (0..700)
            .map(|i| format!("a{i}: me {{ id role }} "))
            .collect();
        let e = run(&format!("{{ {wide} }}")).unwrap_err();
        assert_eq!(e.code, Code::QueryTooComplex);
    }
}
