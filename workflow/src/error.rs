//! The errors a workflow service returns. The GraphQL layer maps each to one stable code.

use crate::refusal::Refusal;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The row does not exist, or the viewer may not see it (a taxpayer asking for another's).
    #[error("not found: {what} {id}")]
    NotFound { what: &'static str, id: String },
    /// The actor's role may never do this, whatever the state.
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("invalid input: {0}")]
    InvalidInput(InputError),
    /// The state machine refused the event.
    #[error("refused: {0}")]
    Refused(Refusal),
    /// Someone else changed the row between our read and our write; nothing was written.
    #[error("conflict: {what} {id} was changed concurrently")]
    Conflict { what: &'static str, id: String },
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
}

/// Input a person can correct: which field, and what is wrong with it in both languages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    pub field: String,
    pub zh: String,
    pub en: String,
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} / {}", self.field, self.zh, self.en)
    }
}

impl Error {
    pub fn input(field: impl Into<String>, zh: impl Into<String>, en: impl Into<String>) -> Self {
        Error::InvalidInput(InputError {
            field: field.into(),
            zh: zh.into(),
            en: en.into(),
        })
    }

    pub fn not_found(what: &'static str, id: impl Into<String>) -> Self {
        Error::NotFound {
            what,
            id: id.into(),
        }
    }
}

impl From<Refusal> for Error {
    fn from(r: Refusal) -> Self {
        Error::Refused(r)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Checks shared by every service's input: trimmed, non-empty when required, bounded length.
pub mod check {
    use super::{Error, Result};

    pub fn text(field: &str, value: &str, min: usize, max: usize) -> Result<String> {
        let v = value.trim();
        let n = v.chars().count();
        if n < min {
            return Err(Error::input(
                field,
                format!("{field} 不能为空"),
                format!("{field} must not be empty"),
            ));
        }
        if n > max {
            return Err(Error::input(
                field,
                format!("{field} 不能超过 {max} 个字符（现为 {n}）"),
                format!("{field} must be at most {max} characters (got {n})"),
            ));
        }
        Ok(v.to_string())
    }

    pub fn optional_text(field: &str, value: Option<&str>, max: usize) -> Result<Option<String>> {
        match value.map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => text(field, v, 1, max).map(Some),
        }
    }
}
