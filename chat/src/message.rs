//! Messages: a total order per session (`seq`), idempotent resends by `clientMessageId`,
//! history pages newest-last, read marks and typing (never stored).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect, Statement, TransactionTrait,
};
use strum::{AsRefStr, EnumString};
use taxdesk_workflow::error::{Error, Result, check};
use taxdesk_workflow::{Actor, RefusalCode, Role};

use crate::bot::asks_for_human;
use crate::chat::Chat;
use crate::entities::{attachment, chat_read, message, session};
use crate::hub::{ChatEvent, ChatEventKind};
use crate::session::Status;
use crate::session::service::{new_id, participants, visible};

#[derive(Debug, Clone, Copy, PartialEq, Eq, AsRefStr, EnumString)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum MessageKind {
    Text,
    Emoji,
    Image,
    File,
    System,
}

#[derive(Debug, Clone)]
pub struct SendMessage {
    pub session_id: String,
    pub kind: MessageKind,
    pub text: Option<String>,
    pub attachment_id: Option<String>,
    /// The client's own id for this message: sending it again returns the first one.
    pub client_message_id: Option<String>,
}

/// A page of history, oldest first.
#[derive(Debug, Clone)]
pub struct MessagePage {
    pub items: Vec<message::Model>,
    /// Older messages exist (load more with `before` = the first item's seq).
    pub has_previous: bool,
    pub has_next: bool,
}

/// Appends a message: takes the session's next `seq` and marks activity, in `db`'s
/// transaction.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn insert_message(
    db: &impl ConnectionTrait,
    session_id: &str,
    sender_id: &str,
    sender_role: &str,
    kind: &str,
    text: Option<String>,
    attachment_id: Option<String>,
    client_message_id: Option<String>,
    now: DateTime<Utc>,
) -> Result<message::Model> {
    let m = message::Model {
        id: new_id(),
        session_id: session_id.to_string(),
        seq: next_seq(db, session_id, now).await?,
        sender_id: sender_id.to_string(),
        sender_role: sender_role.to_string(),
        kind: kind.to_string(),
        text,
        attachment_id,
        client_message_id,
        faq_id: None,
        suggestion_ids: None,
        created_at: now,
    };
    message::Entity::insert(m.clone().into_active_model())
        .exec_without_returning(db)
        .await?;
    Ok(m)
}

/// The session's next message `seq`, marking activity (in `db`'s transaction).
async fn next_seq(db: &impl ConnectionTrait, session_id: &str, now: DateTime<Utc>) -> Result<i64> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "UPDATE chat_sessions SET last_seq = last_seq + 1, last_activity_at = $1 WHERE id = $2 RETURNING last_seq"
        }
        _ => {
            "UPDATE chat_sessions SET last_seq = last_seq + 1, last_activity_at = ? WHERE id = ? RETURNING last_seq"
        }
    };
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [now.into(), session_id.into()],
        ))
        .await?
        .ok_or_else(|| Error::not_found("chat session", session_id))?;
    Ok(row.try_get("", "last_seq")?)
}

/// What a bot reply is based on (kept with the message).
struct BotBasis {
    faq_id: Option<String>,
    suggestion_ids: Vec<String>,
}

/// What the virtual agent says in the chat: the answer, or related questions and the way
/// to a human.
fn reply_text(r: &crate::faq::AskResult) -> String {
    match &r.faq {
        Some(f) => f.answer.clone(),
        None if r.suggestions.is_empty() => {
            "抱歉，这个问题我暂时无法回答。您可以输入“转人工”联系人工客服，或在线留言。".into()
        }
        None => {
            let list: Vec<String> = r
                .suggestions
                .iter()
                .enumerate()
                .map(|(i, f)| format!("{}. {}", i + 1, f.question))
                .collect();
            format!(
                "您是不是想问：\n{}\n如仍未解决，可输入“转人工”。",
                list.join("\n")
            )
        }
    }
}

fn unique_violation(e: &Error) -> bool {
    matches!(e, Error::Database(db) if matches!(db.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))))
}

impl Chat {
    async fn previous_send(
        &self,
        session_id: &str,
        sender: &str,
        cmid: &str,
    ) -> Result<Option<message::Model>> {
        Ok(message::Entity::find()
            .filter(message::Column::SessionId.eq(session_id))
            .filter(message::Column::SenderId.eq(sender))
            .filter(message::Column::ClientMessageId.eq(cmid))
            .one(self.wf.db())
            .await?)
    }

    /// `sendMessage`. In a BOT session the virtual agent answers, and 转人工 asks for a human.
    pub async fn send_message(&self, actor: &Actor, input: SendMessage) -> Result<message::Model> {
        let cmid = check::optional_text("clientMessageId", input.client_message_id.as_deref(), 64)?;
        let s = self.session(actor, &input.session_id).await?;
        if let Some(c) = &cmid
            && let Some(m) = self.previous_send(&s.id, &actor.id, c).await?
        {
            return Ok(m);
        }
        let status: Status = s.status.parse().unwrap_or(Status::Ended);
        let may = match actor.role {
            Role::Taxpayer => status.is_open(),
            _ => status == Status::Active && s.agent_id.as_deref() == Some(actor.id.as_str()),
        };
        if !may {
            return Err(Error::Refused(taxdesk_workflow::Refusal::new(
                RefusalCode::InvalidTransition,
                "当前会话状态不能发送消息",
                format!(
                    "messages cannot be sent in this chat now (status {})",
                    s.status
                ),
            )));
        }
        let (text, attachment_id) = self.checked_content(actor, &s, &input).await?;
        let now = self.wf.now();
        let txn = self.wf.db().begin().await?;
        let written = insert_message(
            &txn,
            &s.id,
            &actor.id,
            actor.role.as_ref(),
            input.kind.as_ref(),
            text.clone(),
            attachment_id,
            cmid.clone(),
            now,
        )
        .await;
        let m = match written {
            Ok(m) => m,
            // The same client id raced in twice: the first one stands.
            Err(e) if unique_violation(&e) && cmid.is_some() => {
                drop(txn);
                let c = cmid.as_deref().unwrap_or_default();
                return self
                    .previous_send(&s.id, &actor.id, c)
                    .await?
                    .ok_or_else(|| Error::Conflict {
                        what: "message",
                        id: c.to_string(),
                    });
            }
            Err(e) => return Err(e),
        };
        if actor.role == Role::Taxpayer
            && input.kind == MessageKind::Text
            && s.first_question.is_none()
        {
            session::Entity::update_many()
                .col_expr(
                    session::Column::FirstQuestion,
                    sea_orm::sea_query::Expr::value(text.clone()),
                )
                .filter(session::Column::Id.eq(s.id.as_str()))
                .exec(&txn)
                .await?;
        }
        if actor.role != Role::Taxpayer && s.agent_replied_at.is_none() {
            session::Entity::update_many()
                .col_expr(
                    session::Column::AgentRepliedAt,
                    sea_orm::sea_query::Expr::value(now),
                )
                .filter(session::Column::Id.eq(s.id.as_str()))
                .exec(&txn)
                .await?;
        }
        // No idle timer per message: the session's one pending idle check looks at
        // `last_activity_at` when it fires and re-arms itself (see `timers.rs`).
        txn.commit().await?;
        self.publish_message(&s, m.clone());
        if status == Status::Bot
            && actor.role == Role::Taxpayer
            && let Some(t) = &text
        {
            self.bot_turn(actor, &s, t).await;
        }
        Ok(m)
    }

    /// The virtual agent's reply, or the hand-over when the taxpayer asked for a human.
    async fn bot_turn(&self, actor: &Actor, s: &session::Model, text: &str) {
        let reply = if asks_for_human(text) {
            match self.request_human(actor, &s.id, None).await {
                Ok(_) => return,
                Err(Error::Refused(r)) => r.zh,
                Err(e) => {
                    tracing::error!(error = %e, "hand-over from a message");
                    return;
                }
            }
        } else {
            match self.ask(Some(actor), Some(&s.id), text).await {
                Ok(r) => {
                    let basis = BotBasis {
                        faq_id: r.faq.as_ref().map(|f| f.id.clone()),
                        suggestion_ids: r.suggestions.iter().map(|f| f.id.clone()).collect(),
                    };
                    if let Err(e) = self.post_bot_reply(s, reply_text(&r), basis).await {
                        tracing::error!(error = %e, "posting the bot's reply");
                    }
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, "the virtual agent failed");
                    self.bot.answer(Some(&s.id), text).await.text
                }
            }
        };
        if let Err(e) = self.post_as(s, "bot", "BOT", reply).await {
            tracing::error!(error = %e, "posting the bot's reply");
        }
    }

    /// The bot's answer from the knowledge base, with what it is based on.
    async fn post_bot_reply(
        &self,
        s: &session::Model,
        text: String,
        basis: BotBasis,
    ) -> Result<message::Model> {
        let now = self.wf.now();
        let txn = self.wf.db().begin().await?;
        let m = message::Model {
            id: new_id(),
            session_id: s.id.clone(),
            seq: next_seq(&txn, &s.id, now).await?,
            sender_id: "bot".into(),
            sender_role: "BOT".into(),
            kind: "TEXT".into(),
            text: Some(text),
            attachment_id: None,
            client_message_id: None,
            faq_id: basis.faq_id,
            suggestion_ids: (!basis.suggestion_ids.is_empty())
                .then(|| serde_json::to_string(&basis.suggestion_ids).unwrap_or_default()),
            created_at: now,
        };
        message::Entity::insert(m.clone().into_active_model())
            .exec_without_returning(&txn)
            .await?;
        txn.commit().await?;
        self.publish_message(s, m.clone());
        Ok(m)
    }

    /// A message from the bot or the system.
    pub(crate) async fn post_as(
        &self,
        s: &session::Model,
        sender: &str,
        role: &str,
        text: String,
    ) -> Result<message::Model> {
        let now = self.wf.now();
        let kind = if role == "SYSTEM" { "SYSTEM" } else { "TEXT" };
        let m = insert_message(
            self.wf.db(),
            &s.id,
            sender,
            role,
            kind,
            Some(text),
            None,
            None,
            now,
        )
        .await?;
        self.publish_message(s, m.clone());
        Ok(m)
    }

    async fn checked_content(
        &self,
        actor: &Actor,
        s: &session::Model,
        input: &SendMessage,
    ) -> Result<(Option<String>, Option<String>)> {
        match input.kind {
            MessageKind::Text => Ok((
                Some(check::text(
                    "text",
                    input.text.as_deref().unwrap_or(""),
                    1,
                    5000,
                )?),
                None,
            )),
            MessageKind::Emoji => Ok((
                Some(check::text(
                    "text",
                    input.text.as_deref().unwrap_or(""),
                    1,
                    32,
                )?),
                None,
            )),
            MessageKind::Image | MessageKind::File => {
                let id = input.attachment_id.as_deref().unwrap_or("");
                let a = attachment::Entity::find_by_id(id)
                    .one(self.wf.db())
                    .await?
                    .filter(|a| {
                        a.uploader_id == actor.id
                            && a.session_id.as_deref().is_none_or(|sid| sid == s.id)
                    })
                    .ok_or_else(|| {
                        Error::input(
                            "attachmentId",
                            "请先上传附件（uploadAttachment），再发送",
                            "upload the file first (uploadAttachment) and send its id",
                        )
                    })?;
                if input.kind == MessageKind::Image && !a.content_type.starts_with("image/") {
                    return Err(Error::input(
                        "attachmentId",
                        "该附件不是图片",
                        "that attachment is not an image",
                    ));
                }
                let caption = check::optional_text("text", input.text.as_deref(), 500)?;
                Ok((caption, Some(a.id)))
            }
            MessageKind::System => Err(Error::input(
                "kind",
                "不能发送系统消息",
                "SYSTEM messages are the server's",
            )),
        }
    }

    /// History, newest last: up to `last` messages before `before` (a `seq`).
    pub async fn messages(
        &self,
        actor: &Actor,
        session_id: &str,
        last: Option<i32>,
        before: Option<i64>,
    ) -> Result<MessagePage> {
        // On the reader, the session too: history never waits behind a write.
        let s = session::Entity::find_by_id(session_id)
            .one(self.wf.reader())
            .await?
            .filter(|s| visible(actor, s))
            .ok_or_else(|| Error::not_found("chat session", session_id))?;
        let n = match last {
            None => 20,
            Some(n) if (1..=100).contains(&n) => n as u64,
            Some(n) => {
                return Err(Error::input(
                    "last",
                    format!("last 须在 1 到 100 之间（现为 {n}）"),
                    format!("last must be between 1 and 100 (got {n})"),
                ));
            }
        };
        let mut q = message::Entity::find().filter(message::Column::SessionId.eq(s.id.as_str()));
        if let Some(b) = before {
            q = q.filter(message::Column::Seq.lt(b));
        }
        let mut items = q
            .order_by_desc(message::Column::Seq)
            .limit(n + 1)
            .all(self.wf.reader())
            .await?;
        let has_previous = items.len() as u64 > n;
        items.truncate(n as usize);
        items.reverse();
        Ok(MessagePage {
            items,
            has_previous,
            has_next: before.is_some_and(|b| b <= s.last_seq),
        })
    }

    /// Read receipt: the viewer has read up to `seq`.
    pub async fn mark_read(&self, actor: &Actor, session_id: &str, seq: i64) -> Result<i64> {
        let s = self.session(actor, session_id).await?;
        if !participants(&s).contains(&actor.id) {
            return Err(Error::not_found("chat session", session_id));
        }
        let seq = seq.clamp(0, s.last_seq);
        let row = chat_read::ActiveModel {
            session_id: Set(s.id.clone()),
            user_id: Set(actor.id.clone()),
            last_read_seq: Set(seq),
            updated_at: Set(self.wf.now()),
        };
        chat_read::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([chat_read::Column::SessionId, chat_read::Column::UserId])
                    .update_columns([chat_read::Column::LastReadSeq, chat_read::Column::UpdatedAt])
                    .to_owned(),
            )
            .exec_without_returning(self.wf.db())
            .await?;
        self.hub.publish(ChatEvent {
            session_id: s.id.clone(),
            audience: participants(&s),
            kind: ChatEventKind::Read {
                user_id: actor.id.clone(),
                seq,
            },
        });
        Ok(seq)
    }

    /// How far each participant has read.
    pub async fn reads(&self, session_id: &str) -> Result<Vec<chat_read::Model>> {
        Ok(chat_read::Entity::find()
            .filter(chat_read::Column::SessionId.eq(session_id))
            .all(self.wf.db())
            .await?)
    }

    /// Typing indicator: pushed to the other participant, never stored.
    pub async fn typing(&self, actor: &Actor, session_id: &str) -> Result<()> {
        let s = self.session(actor, session_id).await?;
        if !participants(&s).contains(&actor.id) || !visible(actor, &s) {
            return Err(Error::not_found("chat session", session_id));
        }
        let audience = participants(&s)
            .into_iter()
            .filter(|u| *u != actor.id)
            .collect();
        self.hub.publish(ChatEvent {
            session_id: s.id.clone(),
            audience,
            kind: ChatEventKind::Typing {
                user_id: actor.id.clone(),
            },
        });
        Ok(())
    }
}
