//! Why a state machine said no, with a stable code and a message in Chinese and English.

use strum::{AsRefStr, Display};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, AsRefStr, Display)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum RefusalCode {
    InvalidTransition,
    Forbidden,
    CoolDown,
    AlreadyRated,
    InvalidInput,
    /// Outside the service hours of the skill group.
    OffHours,
    /// No agent of the skill group is online.
    NoAgent,
    /// Too close to the start to cancel or move a booking.
    TooLateToCancel,
    /// No place left in the slot.
    SlotFull,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: RefusalCode,
    pub zh: String,
    pub en: String,
}

impl Refusal {
    pub fn new(code: RefusalCode, zh: impl Into<String>, en: impl Into<String>) -> Self {
        Refusal {
            code,
            zh: zh.into(),
            en: en.into(),
        }
    }

    pub fn forbidden(zh: impl Into<String>, en: impl Into<String>) -> Self {
        Refusal::new(RefusalCode::Forbidden, zh, en)
    }

    pub fn invalid_transition(status: &str, event: &str) -> Self {
        Refusal::new(
            RefusalCode::InvalidTransition,
            format!("当前状态（{status}）不能执行此操作（{event}）"),
            format!("{event} is not possible while the status is {status}"),
        )
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} / {}", self.zh, self.en)
    }
}
