//! What a job kind does when its time comes.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// A claimed job as its handler sees it.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    pub kind: String,
    pub payload: serde_json::Value,
    pub dedupe_key: String,
    pub run_at: DateTime<Utc>,
    /// This attempt's number, from 1.
    pub attempt: i32,
    pub max_attempts: i32,
}

impl Job {
    pub fn is_last_attempt(&self) -> bool {
        self.attempt >= self.max_attempts
    }

    /// A string field of the payload.
    pub fn field(&self, name: &str) -> Result<&str, JobError> {
        self.payload
            .get(name)
            .and_then(|v| v.as_str())
            .ok_or_else(|| JobError::permanent(format!("payload has no {name:?}")))
    }
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct JobError {
    pub message: String,
    /// Retrying cannot help: the job goes straight to DEAD.
    pub permanent: bool,
}

impl JobError {
    pub fn retry(message: impl Into<String>) -> Self {
        JobError {
            message: message.into(),
            permanent: false,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        JobError {
            message: message.into(),
            permanent: true,
        }
    }
}

/// Handlers must be idempotent: a job whose worker died mid-run is run again.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn run(&self, job: &Job) -> Result<(), JobError>;
}
