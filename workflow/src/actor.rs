//! Who asks for a change: a signed-in user, or the system itself (the scheduler).

use serde::{Deserialize, Serialize};
use strum::{AsRefStr, EnumIter, EnumString};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, AsRefStr, EnumString, EnumIter,
)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Taxpayer,
    Staff,
    /// A supervisor: dispatches, sees escalations, keeps the knowledge base. Can do what staff can.
    Admin,
    /// The scheduler and other automatic processes.
    System,
}

impl Role {
    /// Staff and admins work for the bureau.
    pub fn is_bureau(self) -> bool {
        matches!(self, Role::Staff | Role::Admin)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub id: String,
    pub role: Role,
}

impl Actor {
    pub fn new(id: impl Into<String>, role: Role) -> Self {
        Actor {
            id: id.into(),
            role,
        }
    }

    pub fn system() -> Self {
        Actor::new("system", Role::System)
    }
}
