//! A request refused before any resolver runs, with its code, its message in Chinese and
//! English, and (for bad input) the path of the offending value.

use async_graphql::ServerError;

use crate::error::Code;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: Code,
    pub zh: String,
    pub en: String,
    /// Where the bad value is: `leaveMessage.input.attachmentIds` for a literal argument,
    /// `$input.attachmentIds` for a variable.
    pub field: Option<String>,
}

impl Refusal {
    pub fn new(code: Code, zh: impl Into<String>, en: impl Into<String>) -> Refusal {
        Refusal {
            code,
            zh: zh.into(),
            en: en.into(),
            field: None,
        }
    }

    pub fn invalid_input(field: String, zh: impl Into<String>, en: impl Into<String>) -> Refusal {
        Refusal {
            field: Some(field),
            ..Refusal::new(Code::InvalidInput, zh, en)
        }
    }

    pub fn into_server_error(self) -> ServerError {
        let mut e = ServerError::new(format!("{} / {}", self.zh, self.en), None);
        let ext = e.extensions.get_or_insert_with(Default::default);
        ext.set("code", self.code.as_ref());
        ext.set("zh", self.zh);
        ext.set("en", self.en);
        if let Some(field) = self.field {
            ext.set("field", field);
        }
        e
    }
}
