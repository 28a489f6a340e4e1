//! `taxdesk kb import FILE`: FAQs from a JSONL or CSV file into the configured database,
//! idempotently by id (an imported FAQ keeps its source id). Running servers pick the
//! change up within seconds (they follow the `faqs` table), without a restart.

use std::path::Path;

use anyhow::Context;
use taxdesk_chat::Chat;
use taxdesk_chat::faq::{ImportReport, parse_faqs};
use taxdesk_workflow::Workflow;

use crate::app::{chat_config, workflow_config};
use crate::config::Config;
use crate::db;

/// Imports `path` into the database of `config` (migrating and seeding it first, as `serve`
/// would).
pub async fn import_file(config: &Config, path: &Path) -> anyhow::Result<ImportReport> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading {} (UTF-8 text expected)", path.display()))?;
    let docs = parse_faqs(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let conn = db::connect(&config.database_url).await?;
    db::migrate(&conn).await?;
    let workflow = Workflow::new(conn, workflow_config(config)?);
    let chat = Chat::new(workflow, chat_config(config)).context("building the knowledge index")?;
    // An empty database gets the seed first, as `serve` would give it: an import adds to it.
    chat.seed_if_empty()
        .await
        .context("seeding the knowledge base")?;
    let report = chat
        .import_docs(docs)
        .await
        .with_context(|| format!("importing {}", path.display()))?;
    tracing::info!(
        file = %path.display(),
        inserted = report.inserted,
        updated = report.updated,
        "FAQs imported"
    );
    Ok(report)
}
