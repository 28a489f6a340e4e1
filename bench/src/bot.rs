//! `bot`: the virtual agent's ask latency with the seed knowledge base (160 FAQs) and with
//! N generated entries on top — in-process (`KnowledgeIndex::ask`, what the bot itself costs)
//! and through GraphQL (`askBot`: HTTP, the index, the FAQ rows and the ask log).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use serde_json::json;
use taxdesk_chat::kb::{FaqDoc, KnowledgeIndex, dev_set, seed_faqs};

use crate::client::Gql;
use crate::load;
use crate::report::{Check, Column, ScenarioReport};
use crate::server::BenchServer;

pub const NAME: &str = "bot";
const ASK: &str = "mutation($t: String!) { askBot(input: {text: $t}) { answered confidence faq { id } suggestions { id } } }";

pub struct Options {
    /// Generated FAQs added to the seed base for the large run.
    pub entries: usize,
    /// Passes over the dev-set questions, in-process and through GraphQL.
    pub passes: usize,
}

pub async fn run(opts: &Options) -> anyhow::Result<ScenarioReport> {
    let questions: Vec<String> = dev_set().into_iter().map(|l| l.text).collect();
    let seed = seed_faqs();
    let generated = generate(&seed, opts.entries);
    let mut report = ScenarioReport::new(
        NAME,
        "virtual agent: ask latency with the seed base and a large base",
        format!(
            "The {q} questions of the bundled dev set (colloquial phrasings of the seed FAQs), asked \
             one at a time. In-process: `KnowledgeIndex::ask` ({p} passes, after one warm-up pass) \
             on an index built from the {s} seed FAQs, then from the seed plus {e} generated \
             entries (each a seed FAQ recast for a city, a kind of taxpayer or a year, with the \
             answer, keywords and similar questions to match). GraphQL: `askBot` over HTTP \
             (the same passes, one client) on a server with the seed base, then after `importFaqs` \
             uploaded the {e} entries.",
            q = questions.len(),
            p = opts.passes,
            s = seed.len(),
            e = opts.entries
        ),
        vec![
            Column::int("path", "path"),
            Column::int("faqs", "FAQs"),
            Column::int("asks", "asks"),
            Column::float("p50_ms", "p50 ms", 3),
            Column::float("p99_ms", "p99 ms", 3),
            Column::float("max_ms", "max ms", 3),
            Column::float("answered_share", "answered", 2),
        ],
    );

    // In-process, on this runtime's blocking pool (tantivy search is synchronous).
    let mut all = seed.clone();
    all.extend(generated.iter().cloned());
    for (label, docs) in [("seed", seed.clone()), ("large", all)] {
        eprintln!("bot: in-process index with {} FAQs", docs.len());
        let qs = questions.clone();
        let passes = opts.passes;
        let (built, h, answered) = tokio::task::spawn_blocking(move || {
            let t = Instant::now();
            let index = KnowledgeIndex::build(&docs)?;
            let built = t.elapsed();
            let mut h = load::histogram()?;
            let mut answered = 0usize;
            for q in &qs {
                index.ask(q);
            }
            for _ in 0..passes {
                for q in &qs {
                    let t = Instant::now();
                    let a = index.ask(q);
                    load::record(&mut h, t.elapsed());
                    answered += usize::from(a.best.is_some());
                }
            }
            anyhow::Ok((
                built,
                h,
                answered as f64 / (qs.len() * passes).max(1) as f64,
            ))
        })
        .await??;
        let faqs = if label == "seed" {
            seed.len()
        } else {
            seed.len() + opts.entries
        };
        let mut row = load::quantiles(&h);
        row["path"] = json!("KnowledgeIndex::ask (in-process)");
        row["faqs"] = json!(faqs);
        row["asks"] = json!(h.len());
        row["answered_share"] = json!(answered);
        row["build_seconds"] = json!(built.as_secs_f64());
        report.rows.push(row);
        let p99 = load::ms(&h, 0.99);
        if label == "seed" {
            report.checks.push(Check::info(
                &format!("bot ask p99, in-process, {faqs} FAQs"),
                p99,
                "ms",
            ));
        } else {
            report.checks.push(Check::at_most(
                &format!("bot ask p99, in-process, {faqs} FAQs"),
                p99,
                "ms",
                5.0,
            ));
        }
    }

    // Through GraphQL.
    eprintln!("bot: GraphQL askBot, seed base");
    let server = BenchServer::start(&[]).await?;
    let r = graphql(&server, &questions, &generated, opts.passes).await;
    server.stop().await;
    let (seed_h, seed_answered, import, large_h, large_answered) = r?;
    for (faqs, h, answered) in [
        (seed.len(), &seed_h, seed_answered),
        (seed.len() + opts.entries, &large_h, large_answered),
    ] {
        let mut row = load::quantiles(h);
        row["path"] = json!("GraphQL askBot");
        row["faqs"] = json!(faqs);
        row["asks"] = json!(h.len());
        row["answered_share"] = json!(answered);
        report.rows.push(row);
        let p99 = load::ms(h, 0.99);
        if faqs == seed.len() {
            report.checks.push(Check::info(
                &format!("bot askBot p99, GraphQL, {faqs} FAQs"),
                p99,
                "ms",
            ));
        } else {
            report.checks.push(Check::at_most(
                &format!("bot askBot p99, GraphQL, {faqs} FAQs"),
                p99,
                "ms",
                5.0,
            ));
        }
    }
    report.notes.push(format!(
        "importFaqs of {} entries through GraphQL took {:.1} s",
        opts.entries,
        import.as_secs_f64()
    ));
    Ok(report)
}

async fn graphql(
    server: &BenchServer,
    questions: &[String],
    generated: &[FaqDoc],
    passes: usize,
) -> anyhow::Result<(Histogram<u64>, f64, Duration, Histogram<u64>, f64)> {
    let gql = Gql::new(server.graphql_url())?;
    let tp = server.token("taxpayer", "bench-bot-tp")?;
    let admin = server.token("admin", "bench-bot-admin")?;
    let (seed_h, seed_answered) = ask_all(&gql, &tp, questions, passes).await?;
    eprintln!(
        "bot: importing {} generated FAQs through GraphQL",
        generated.len()
    );
    let t = Instant::now();
    import(server, &admin, generated).await?;
    let import = t.elapsed();
    eprintln!(
        "bot:   imported in {:.1} s; asking again",
        import.as_secs_f64()
    );
    let (large_h, large_answered) = ask_all(&gql, &tp, questions, passes).await?;
    Ok((seed_h, seed_answered, import, large_h, large_answered))
}

async fn ask_all(
    gql: &Gql,
    token: &str,
    questions: &[String],
    passes: usize,
) -> anyhow::Result<(Histogram<u64>, f64)> {
    // Warm-up: the first few connect and fill caches.
    for q in questions.iter().take(20) {
        gql.run(token, ASK, json!({"t": q})).await?;
    }
    let mut h = load::histogram()?;
    let mut answered = 0usize;
    for _ in 0..passes {
        for q in questions {
            let t = Instant::now();
            let v = gql
                .run(token, ASK, json!({"t": q}))
                .await
                .context("askBot")?;
            load::record(&mut h, t.elapsed());
            answered += usize::from(v["askBot"]["answered"] == true);
        }
    }
    Ok((
        h,
        answered as f64 / (questions.len() * passes).max(1) as f64,
    ))
}

/// `importFaqs(upload)` by the GraphQL multipart request spec, the body built by hand.
async fn import(server: &BenchServer, admin: &str, docs: &[FaqDoc]) -> anyhow::Result<()> {
    let mut file = String::new();
    for d in docs {
        file.push_str(&serde_json::to_string(d)?);
        file.push('\n');
    }
    let boundary = "taxdeskbenchboundary7c1f";
    let operations = json!({
        "query": "mutation($f: Upload!) { importFaqs(upload: $f) { inserted updated } }",
        "variables": {"f": null}
    });
    let mut body = String::new();
    for (name, value, filename) in [
        ("operations", operations.to_string(), None),
        ("map", json!({"0": ["variables.f"]}).to_string(), None),
        ("0", file, Some("generated.jsonl")),
    ] {
        body.push_str(&format!("--{boundary}\r\n"));
        match filename {
            Some(f) => body.push_str(&format!(
                "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/x-ndjson\r\n\r\n"
            )),
            None => body.push_str(&format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n")),
        }
        body.push_str(&value);
        body.push_str("\r\n");
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    let resp = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()?
        .post(server.graphql_url())
        .bearer_auth(admin)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await?;
    let v: serde_json::Value = resp.json().await?;
    if v.get("errors").is_some() || v["data"]["importFaqs"]["inserted"].is_null() {
        bail!("importFaqs failed: {v}");
    }
    Ok(())
}

const CITIES: &[&str] = &[
    "杭州", "宁波", "温州", "嘉兴", "湖州", "绍兴", "金华", "衢州", "舟山", "台州", "丽水", "义乌",
];
const WHO: &[&str] = &[
    "小规模纳税人",
    "一般纳税人",
    "个体工商户",
    "外贸企业",
    "小微企业",
    "新办企业",
    "高新技术企业",
    "建筑企业",
    "跨区域经营企业",
    "个人独资企业",
];

/// `n` plausible FAQ variants: a seed FAQ recast for a city, a kind of taxpayer or a year.
fn generate(seed: &[FaqDoc], n: usize) -> Vec<FaqDoc> {
    (0..n)
        .map(|i| {
            let base = &seed[i % seed.len()];
            let round = i / seed.len();
            let city = CITIES[round % CITIES.len()];
            let who = WHO[(round / CITIES.len() + i) % WHO.len()];
            let year = 2024 + (round % 3);
            let q = base.question.trim_end_matches(['？', '?']);
            let (question, lead) = match round % 4 {
                0 => (
                    format!("{city}的{who}{q}？"),
                    format!("{city}市税务局提示："),
                ),
                1 => (
                    format!("{year}年{who}{q}？"),
                    format!("按{year}年现行规定："),
                ),
                2 => (
                    format!("在{city}办理时，{q}？"),
                    format!("{city}地区办理时："),
                ),
                _ => (format!("{who}想了解：{q}？"), format!("对{who}而言：")),
            };
            FaqDoc {
                id: format!("gen-{i:05}"),
                category: base.category.clone(),
                question,
                answer: format!("{lead}{}", base.answer),
                keywords: base
                    .keywords
                    .iter()
                    .cloned()
                    .chain([city.to_string(), who.to_string()])
                    .collect(),
                similar: base
                    .similar
                    .iter()
                    .map(|s| format!("{city}{who}{s}"))
                    .collect(),
                enabled: true,
            }
        })
        .collect()
}
