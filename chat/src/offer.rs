//! The offer that goes with a refused hand-over (`OFF_HOURS`, `NO_AGENT`): leave the
//! question as an offline message (在线留言), pre-filled from the chat, so the taxpayer does
//! not type it again.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use taxdesk_workflow::Actor;
use taxdesk_workflow::error::Result;

use crate::bot::asks_for_human;
use crate::chat::Chat;
use crate::entities::message;

/// A leave message ready to send: `leaveMessage(input: {category, content, sourceSessionId})`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveMessageOffer {
    pub source_session_id: String,
    /// The skill group asked for (a work-order category).
    pub category: String,
    /// The taxpayer's last question in the chat, if they asked one.
    pub content: Option<String>,
    /// When the group's human service opens next (none within the calendar's horizon).
    pub next_open_at: Option<DateTime<Utc>>,
}

/// How far back the question is looked for.
const LOOK_BACK: u64 = 20;

impl Chat {
    /// The offer for `actor`'s session `session_id`; the category is the skill group asked
    /// for (or the default group).
    pub async fn leave_message_offer(
        &self,
        actor: &Actor,
        session_id: &str,
        skill_group: Option<&str>,
    ) -> Result<LeaveMessageOffer> {
        let category = self.skill_group(skill_group)?;
        let recent = message::Entity::find()
            .filter(message::Column::SessionId.eq(session_id))
            .filter(message::Column::SenderId.eq(actor.id.as_str()))
            .filter(message::Column::Kind.eq("TEXT"))
            .order_by_desc(message::Column::Seq)
            .limit(LOOK_BACK)
            .all(self.wf.db())
            .await?;
        // "转人工" itself is not the question.
        let content = recent
            .into_iter()
            .filter_map(|m| m.text)
            .map(|t| t.trim().to_string())
            .find(|t| !t.is_empty() && !asks_for_human(t));
        let next_open_at = self
            .wf
            .config()
            .calendar
            .next_open(Some(&category), self.wf.now());
        Ok(LeaveMessageOffer {
            source_session_id: session_id.to_string(),
            category,
            content,
            next_open_at,
        })
    }
}
