//! Live chat in GraphQL: sessions, messages, the queue, agent presence and the `chatEvents`
//! and `agentEvents` subscriptions.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures_util::Stream;
use taxdesk_chat::Chat;
use taxdesk_chat::channel::service::ChannelEvent;
use taxdesk_chat::channel::{Media, SignalKind as Kind2, assist, call};
use taxdesk_chat::entities::{agent_presence, message as msg, session as row};
use taxdesk_chat::hub::order::{Admit, MessageOrder};
use taxdesk_chat::hub::{AgentEventKind, ChatEventKind as HubKind};
use taxdesk_chat::message::{MessageKind as Kind, SendMessage};
use taxdesk_chat::presence::{Presence, groups_of};
use taxdesk_chat::session::{Event, EventKind, Status, TransferTarget};
use tokio::sync::broadcast::error::RecvError;

use crate::common::{Conn, HistoryEntry, User, connection, page_request, user};
use crate::error::{Code, OrGql, coded};
use crate::identity::{actor, bureau};
use crate::rate_limit::{Action, RateLimiter};
use crate::throttle;

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatSessionStatus {
    Bot,
    Queued,
    Active,
    Ended,
    Abandoned,
}

/// What the viewer may do with a chat session now.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatAction {
    Ask,
    RequestHuman,
    Assign,
    Leave,
    QueueTimeout,
    Transfer,
    Requeue,
    End,
    IdleTimeout,
    Rate,
    BookingStarts,
}

impl From<EventKind> for ChatAction {
    fn from(k: EventKind) -> Self {
        match k {
            EventKind::Ask => ChatAction::Ask,
            EventKind::RequestHuman => ChatAction::RequestHuman,
            EventKind::Assign => ChatAction::Assign,
            EventKind::Leave => ChatAction::Leave,
            EventKind::QueueTimeout => ChatAction::QueueTimeout,
            EventKind::Transfer => ChatAction::Transfer,
            EventKind::Requeue => ChatAction::Requeue,
            EventKind::End => ChatAction::End,
            EventKind::IdleTimeout => ChatAction::IdleTimeout,
            EventKind::Rate => ChatAction::Rate,
            EventKind::BookingStarts => ChatAction::BookingStarts,
        }
    }
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Text,
    Emoji,
    Image,
    File,
    /// From the service itself (hand-over, farewell); cannot be sent.
    System,
}

impl From<MessageKind> for Kind {
    fn from(k: MessageKind) -> Self {
        match k {
            MessageKind::Text => Kind::Text,
            MessageKind::Emoji => Kind::Emoji,
            MessageKind::Image => Kind::Image,
            MessageKind::File => Kind::File,
            MessageKind::System => Kind::System,
        }
    }
}

#[derive(SimpleObject, Debug, Clone)]
pub struct ChatRating {
    pub resolved: bool,
    pub satisfaction: i32,
    pub comment: Option<String>,
    pub rated_at: DateTime<Utc>,
}

/// The appointment a session was opened for.
#[derive(SimpleObject, Debug, Clone)]
pub struct BookingRef {
    pub id: ID,
}

/// 会话.
pub struct ChatSession(pub row::Model);

fn chat<'a>(ctx: &Context<'a>) -> &'a Chat {
    ctx.data_unchecked::<Chat>()
}

#[Object]
impl ChatSession {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn status(&self) -> ChatSessionStatus {
        match self.0.status.parse::<Status>() {
            Ok(Status::Bot) => ChatSessionStatus::Bot,
            Ok(Status::Queued) => ChatSessionStatus::Queued,
            Ok(Status::Active) => ChatSessionStatus::Active,
            Ok(Status::Abandoned) => ChatSessionStatus::Abandoned,
            Ok(Status::Ended) | Err(_) => ChatSessionStatus::Ended,
        }
    }
    async fn skill_group(&self) -> &str {
        &self.0.skill_group
    }
    async fn taxpayer(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        user(ctx, &self.0.taxpayer_id, Some("TAXPAYER")).await
    }
    async fn agent(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        match &self.0.agent_id {
            Some(a) => user(ctx, a, Some("STAFF")).await.map(Some),
            None => Ok(None),
        }
    }
    /// 1-based place in the queue while QUEUED.
    async fn queue_position(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<i64>> {
        Ok(chat(ctx)
            .queue_place(&self.0)
            .await
            .or_gql(ctx)?
            .map(|(p, _)| p))
    }
    async fn estimated_wait_seconds(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<i64>> {
        Ok(chat(ctx)
            .queue_place(&self.0)
            .await
            .or_gql(ctx)?
            .map(|(_, w)| w))
    }
    async fn booking(&self) -> Option<BookingRef> {
        self.0
            .booking_id
            .clone()
            .map(|id| BookingRef { id: ID(id) })
    }
    async fn rating(&self) -> Option<ChatRating> {
        Some(ChatRating {
            resolved: self.0.rating_resolved?,
            satisfaction: self.0.rating_satisfaction?.into(),
            comment: self.0.rating_comment.clone(),
            rated_at: self.0.rated_at?,
        })
    }
    /// The taxpayer's first question, carried over to a message or work order.
    async fn first_question(&self) -> Option<&str> {
        self.0.first_question.as_deref()
    }
    /// The `seq` of the newest message.
    async fn last_seq(&self) -> i64 {
        self.0.last_seq
    }
    async fn queued_at(&self) -> Option<DateTime<Utc>> {
        self.0.queued_at
    }
    async fn assigned_at(&self) -> Option<DateTime<Utc>> {
        self.0.assigned_at
    }
    async fn ended_at(&self) -> Option<DateTime<Utc>> {
        self.0.ended_at
    }
    async fn version(&self) -> i32 {
        self.0.version
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    async fn history(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<HistoryEntry>> {
        let rows = chat(ctx).history(&self.0.id).await.or_gql(ctx)?;
        Ok(rows.into_iter().map(HistoryEntry::from).collect())
    }
    async fn allowed_actions(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ChatAction>> {
        let a = actor(ctx)?;
        Ok(chat(ctx)
            .allowed(&a, &self.0)
            .into_iter()
            .map(Into::into)
            .collect())
    }
    /// Remote assistance and calls still in play (requested, invited or active), newest
    /// first: what a reloaded page must show.
    async fn channels(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Channel>> {
        let rows = chat(ctx).open_channels(&self.0).await.or_gql(ctx)?;
        Ok(rows.into_iter().map(Channel).collect())
    }
    /// How far each participant has read (read receipts).
    async fn reads(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ReadMark>> {
        let rows = chat(ctx).reads(&self.0.id).await.or_gql(ctx)?;
        Ok(rows
            .into_iter()
            .map(|r| ReadMark {
                user_id: ID(r.user_id),
                seq: r.last_read_seq,
                at: r.updated_at,
            })
            .collect())
    }
}

#[derive(SimpleObject, Debug, Clone)]
pub struct ReadMark {
    pub user_id: ID,
    pub seq: i64,
    pub at: DateTime<Utc>,
}

/// One chat message.
pub struct Message(pub msg::Model);

#[Object]
impl Message {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn session_id(&self) -> ID {
        ID(self.0.session_id.clone())
    }
    /// Position in the session: 1, 2, 3 …
    async fn seq(&self) -> i64 {
        self.0.seq
    }
    async fn kind(&self) -> MessageKind {
        match self.0.kind.as_str() {
            "EMOJI" => MessageKind::Emoji,
            "IMAGE" => MessageKind::Image,
            "FILE" => MessageKind::File,
            "SYSTEM" => MessageKind::System,
            _ => MessageKind::Text,
        }
    }
    async fn text(&self) -> Option<&str> {
        self.0.text.as_deref()
    }
    /// `TAXPAYER`, `STAFF`, `ADMIN`, `BOT` or `SYSTEM`.
    async fn sender_role(&self) -> &str {
        &self.0.sender_role
    }
    async fn sender(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        user(ctx, &self.0.sender_id, Some(&self.0.sender_role)).await
    }
    async fn attachment_id(&self) -> Option<ID> {
        self.0.attachment_id.clone().map(ID)
    }
    /// The image or file of an IMAGE or FILE message.
    async fn attachment(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<crate::attachment::Attachment>> {
        let Some(id) = &self.0.attachment_id else {
            return Ok(None);
        };
        let a = actor(ctx)?;
        let wf = ctx.data_unchecked::<taxdesk_workflow::Workflow>();
        match taxdesk_chat::attachment::get_for(wf.db(), &a, id).await {
            Ok(row) => Ok(Some(row.into())),
            Err(_) => Ok(None),
        }
    }
    async fn client_message_id(&self) -> Option<&str> {
        self.0.client_message_id.as_deref()
    }
    /// A bot reply's FAQ: the answer it gave (for 有用/无用 and 收藏).
    async fn faq(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<crate::kb::Faq>> {
        let Some(id) = &self.0.faq_id else {
            return Ok(None);
        };
        Ok(crate::kb::faqs_by_ids(ctx, std::slice::from_ref(id))
            .await?
            .pop())
    }
    /// A bot reply's related questions (推送相关问题).
    async fn suggestions(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<crate::kb::Faq>> {
        let Some(ids) = &self.0.suggestion_ids else {
            return Ok(vec![]);
        };
        let ids: Vec<String> = serde_json::from_str(ids).unwrap_or_default();
        crate::kb::faqs_by_ids(ctx, &ids).await
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

#[derive(SimpleObject, Debug, Clone)]
pub struct AgentStatus {
    pub status: AgentPresence,
    pub skill_groups: Vec<String>,
    pub max_concurrent: i32,
    pub updated_at: DateTime<Utc>,
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentPresence {
    Online,
    Away,
    Offline,
}

impl From<agent_presence::Model> for AgentStatus {
    fn from(p: agent_presence::Model) -> Self {
        AgentStatus {
            status: match p.status.as_str() {
                "ONLINE" => AgentPresence::Online,
                "AWAY" => AgentPresence::Away,
                _ => AgentPresence::Offline,
            },
            skill_groups: groups_of(&p),
            max_concurrent: p.max_concurrent,
            updated_at: p.updated_at,
        }
    }
}

#[derive(InputObject)]
pub struct SendMessageInput {
    pub session_id: ID,
    pub kind: MessageKind,
    pub text: Option<String>,
    pub attachment_id: Option<ID>,
    /// The client's id for this message; a resend with the same id returns the first.
    pub client_message_id: Option<String>,
}

#[derive(InputObject)]
pub struct RequestHumanInput {
    pub session_id: ID,
    /// Omitted: the default group.
    pub skill_group: Option<String>,
}

#[derive(InputObject)]
pub struct RateChatInput {
    pub session_id: ID,
    pub resolved: bool,
    /// 1–5.
    pub satisfaction: i32,
    pub comment: Option<String>,
}

#[derive(InputObject)]
pub struct SetAgentStatusInput {
    pub status: AgentPresence,
    /// Groups served; empty = every group; omitted = unchanged.
    pub skill_groups: Option<Vec<String>>,
    pub max_concurrent: Option<i32>,
}

#[derive(InputObject)]
pub struct TransferChatInput {
    pub session_id: ID,
    pub to_agent_id: Option<ID>,
    pub to_skill_group: Option<String>,
}

#[derive(InputObject)]
pub struct MarkMessagesReadInput {
    pub session_id: ID,
    /// Read up to and including this `seq`.
    pub seq: i64,
}

#[derive(Default)]
pub struct ChatQuery;

#[Object]
impl ChatQuery {
    async fn chat_session(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<ChatSession>> {
        let a = actor(ctx)?;
        Ok(Some(ChatSession(
            chat(ctx).session(&a, &id).await.or_gql(ctx)?,
        )))
    }

    /// A taxpayer's chats (or the chats a staff member served), newest first.
    #[graphql(complexity = "crate::common::page_cost(first, last, child_complexity)")]
    async fn my_chats(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Conn<ChatSession>> {
        let a = actor(ctx)?;
        let page = chat(ctx)
            .my_chats(&a, &page_request(first, after, last, before))
            .await
            .or_gql(ctx)?;
        Ok(connection(page, |s| s.id.clone(), ChatSession))
    }

    /// History, newest last; "load more" with `before` = the first edge's cursor.
    #[graphql(complexity = "crate::common::page_cost(last, None, child_complexity)")]
    async fn messages(
        &self,
        ctx: &Context<'_>,
        session_id: ID,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Connection<String, Message>> {
        let a = actor(ctx)?;
        let before = match before {
            None => None,
            Some(b) => Some(b.parse::<i64>().map_err(|_| {
                coded(
                    Code::InvalidInput,
                    "before 不是有效的游标",
                    "before is not a cursor from this list",
                )
            })?),
        };
        let page = chat(ctx)
            .messages(&a, &session_id, last, before)
            .await
            .or_gql(ctx)?;
        let mut c = Connection::new(page.has_previous, page.has_next);
        c.edges = page
            .items
            .into_iter()
            .map(|m| Edge::new(m.seq.to_string(), Message(m)))
            .collect();
        Ok(c)
    }

    /// Staff: sessions waiting for an agent, in serving order.
    async fn waiting_queue(
        &self,
        ctx: &Context<'_>,
        skill_group: Option<String>,
    ) -> async_graphql::Result<Vec<ChatSession>> {
        bureau(ctx)?;
        let q = chat(ctx).queue(skill_group.as_deref()).await.or_gql(ctx)?;
        Ok(q.into_iter().map(ChatSession).collect())
    }

    /// Staff: the viewer's chats in progress.
    async fn my_active_chats(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ChatSession>> {
        let a = bureau(ctx)?;
        let rows = chat(ctx).active_chats_of(&a.id).await.or_gql(ctx)?;
        Ok(rows.into_iter().map(ChatSession).collect())
    }

    /// Staff: the viewer's presence.
    async fn my_agent_status(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<AgentStatus>> {
        let a = bureau(ctx)?;
        Ok(chat(ctx).presence(&a.id).await.or_gql(ctx)?.map(Into::into))
    }
}

async fn apply(ctx: &Context<'_>, id: &str, event: Event) -> async_graphql::Result<ChatSession> {
    let a = actor(ctx)?;
    Ok(ChatSession(
        chat(ctx).apply(&a, id, event).await.or_gql(ctx)?,
    ))
}

#[derive(Default)]
pub struct ChatMutation;

#[Object]
impl ChatMutation {
    /// The taxpayer's open session, or a new one with the virtual agent (status BOT).
    async fn open_chat(&self, ctx: &Context<'_>) -> async_graphql::Result<ChatSession> {
        let a = actor(ctx)?;
        Ok(ChatSession(chat(ctx).open(&a).await.or_gql(ctx)?))
    }

    async fn send_message(
        &self,
        ctx: &Context<'_>,
        input: SendMessageInput,
    ) -> async_graphql::Result<Message> {
        let a = actor(ctx)?;
        // A message in a chat with the bot is a question to it: it spends an ask too.
        if ctx.data_opt::<RateLimiter>().is_some_and(|l| !l.is_off()) {
            let session = chat(ctx).session(&a, &input.session_id).await.or_gql(ctx)?;
            if session.status == Status::Bot.as_ref() {
                throttle::charge(ctx, Action::Ask)?;
            }
        }
        let m = chat(ctx)
            .send_message(
                &a,
                SendMessage {
                    session_id: input.session_id.0,
                    kind: input.kind.into(),
                    text: input.text,
                    attachment_id: input.attachment_id.map(|i| i.0),
                    client_message_id: input.client_message_id,
                },
            )
            .await
            .or_gql(ctx)?;
        Ok(Message(m))
    }

    /// 转人工: queued, or refused with OFF_HOURS / NO_AGENT, the refusal carrying
    /// `extensions.offer` (a leave message pre-filled from the chat, and `nextOpenAt`).
    async fn request_human(
        &self,
        ctx: &Context<'_>,
        input: RequestHumanInput,
    ) -> async_graphql::Result<ChatSession> {
        use taxdesk_workflow::{Error, RefusalCode};
        let a = actor(ctx)?;
        let c = chat(ctx);
        let group = input.skill_group.as_deref();
        match c.request_human(&a, &input.session_id, group).await {
            Ok(s) => Ok(ChatSession(s)),
            Err(Error::Refused(r))
                if matches!(r.code, RefusalCode::OffHours | RefusalCode::NoAgent) =>
            {
                let error = crate::error::to_gql(ctx, Error::Refused(r));
                let offer = c.leave_message_offer(&a, &input.session_id, group).await;
                Err(match offer {
                    Ok(offer) => with_offer(error, &offer),
                    Err(e) => {
                        tracing::warn!(error = %e, "no leave-message offer for a refused hand-over");
                        error
                    }
                })
            }
            Err(e) => Err(e).or_gql(ctx),
        }
    }

    async fn leave_queue(
        &self,
        ctx: &Context<'_>,
        session_id: ID,
    ) -> async_graphql::Result<ChatSession> {
        apply(ctx, &session_id, Event::Leave).await
    }

    async fn end_chat(
        &self,
        ctx: &Context<'_>,
        session_id: ID,
    ) -> async_graphql::Result<ChatSession> {
        apply(ctx, &session_id, Event::End).await
    }

    async fn rate_chat(
        &self,
        ctx: &Context<'_>,
        input: RateChatInput,
    ) -> async_graphql::Result<ChatSession> {
        let comment = input
            .comment
            .map(|c| c.trim().chars().take(1000).collect::<String>())
            .filter(|c| !c.is_empty());
        let event = Event::Rate {
            resolved: input.resolved,
            satisfaction: input.satisfaction,
            comment,
        };
        apply(ctx, &input.session_id, event).await
    }

    /// Staff: presence, groups and capacity.
    async fn set_agent_status(
        &self,
        ctx: &Context<'_>,
        input: SetAgentStatusInput,
    ) -> async_graphql::Result<AgentStatus> {
        let a = bureau(ctx)?;
        let status = match input.status {
            AgentPresence::Online => Presence::Online,
            AgentPresence::Away => Presence::Away,
            AgentPresence::Offline => Presence::Offline,
        };
        let p = chat(ctx)
            .set_agent_status(&a, status, input.skill_groups, input.max_concurrent)
            .await
            .or_gql(ctx)?;
        Ok(p.into())
    }

    /// Staff: take a waiting session.
    async fn accept_chat(
        &self,
        ctx: &Context<'_>,
        session_id: ID,
    ) -> async_graphql::Result<ChatSession> {
        let a = bureau(ctx)?;
        let event = Event::Assign {
            agent_id: a.id.clone(),
            available: true,
        };
        let s = chat(ctx).accept(&a, &session_id, event).await.or_gql(ctx)?;
        Ok(ChatSession(s))
    }

    /// The agent hands the chat to another agent or back to a group's queue.
    async fn transfer_chat(
        &self,
        ctx: &Context<'_>,
        input: TransferChatInput,
    ) -> async_graphql::Result<ChatSession> {
        let a = actor(ctx)?;
        let c = chat(ctx);
        let to = match (input.to_agent_id, input.to_skill_group) {
            (Some(agent), None) => TransferTarget::Agent(agent.0),
            (None, Some(g)) => TransferTarget::Group(g),
            _ => {
                return Err(coded(
                    Code::InvalidInput,
                    "请指定 toAgentId 或 toSkillGroup 之一",
                    "give exactly one of toAgentId and toSkillGroup",
                ));
            }
        };
        Ok(ChatSession(
            c.transfer(&a, &input.session_id, to).await.or_gql(ctx)?,
        ))
    }

    /// Read receipt.
    async fn mark_messages_read(
        &self,
        ctx: &Context<'_>,
        input: MarkMessagesReadInput,
    ) -> async_graphql::Result<i64> {
        let a = actor(ctx)?;
        chat(ctx)
            .mark_read(&a, &input.session_id, input.seq)
            .await
            .or_gql(ctx)
    }

    /// Typing indicator (not stored).
    async fn send_typing(&self, ctx: &Context<'_>, session_id: ID) -> async_graphql::Result<bool> {
        let a = actor(ctx)?;
        chat(ctx).typing(&a, &session_id).await.or_gql(ctx)?;
        Ok(true)
    }
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatEventKind {
    Message,
    Status,
    QueuePosition,
    Typing,
    Signal,
    RemoteAssist,
    Call,
    Read,
    QueueOffer,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct Signal {
    pub channel_id: ID,
    pub from: ID,
    /// OFFER, ANSWER or ICE.
    pub kind: String,
    pub payload: String,
}

/// One realtime event of a session.
pub struct ChatEvent {
    session_id: String,
    kind: HubKind,
}

#[Object]
impl ChatEvent {
    async fn kind(&self) -> ChatEventKind {
        match &self.kind {
            HubKind::Message(_) => ChatEventKind::Message,
            HubKind::Status => ChatEventKind::Status,
            HubKind::QueuePosition { .. } => ChatEventKind::QueuePosition,
            HubKind::Typing { .. } => ChatEventKind::Typing,
            HubKind::Read { .. } => ChatEventKind::Read,
            HubKind::Signal { .. } => ChatEventKind::Signal,
            HubKind::RemoteAssist(_) => ChatEventKind::RemoteAssist,
            HubKind::Call(_) => ChatEventKind::Call,
            HubKind::QueueOffer { .. } => ChatEventKind::QueueOffer,
        }
    }
    async fn session_id(&self) -> ID {
        ID(self.session_id.clone())
    }
    async fn message(&self) -> Option<Message> {
        match &self.kind {
            HubKind::Message(m) => Some(Message(m.clone())),
            _ => None,
        }
    }
    /// The session as it is now.
    async fn session(&self, ctx: &Context<'_>) -> async_graphql::Result<ChatSession> {
        let a = actor(ctx)?;
        Ok(ChatSession(
            chat(ctx).session(&a, &self.session_id).await.or_gql(ctx)?,
        ))
    }
    async fn queue_position(&self) -> Option<i64> {
        match &self.kind {
            HubKind::QueuePosition { position, .. } => Some(*position),
            _ => None,
        }
    }
    async fn estimated_wait_seconds(&self) -> Option<i64> {
        match &self.kind {
            HubKind::QueuePosition {
                estimated_wait_seconds,
                ..
            } => Some(*estimated_wait_seconds),
            _ => None,
        }
    }
    /// TYPING and READ: who.
    async fn user_id(&self) -> Option<ID> {
        match &self.kind {
            HubKind::Typing { user_id } | HubKind::Read { user_id, .. } => {
                Some(ID(user_id.clone()))
            }
            _ => None,
        }
    }
    /// READ: up to which `seq`.
    async fn read_seq(&self) -> Option<i64> {
        match &self.kind {
            HubKind::Read { seq, .. } => Some(*seq),
            _ => None,
        }
    }
    async fn signal(&self) -> Option<Signal> {
        match &self.kind {
            HubKind::Signal {
                channel_id,
                from,
                kind,
                payload,
            } => Some(Signal {
                channel_id: ID(channel_id.clone()),
                from: ID(from.clone()),
                kind: kind.clone(),
                payload: payload.clone(),
            }),
            _ => None,
        }
    }
    /// REMOTE_ASSIST and CALL: the channel's id and status.
    async fn channel_id(&self) -> Option<ID> {
        match &self.kind {
            HubKind::RemoteAssist(c) | HubKind::Call(c) => Some(ID(c.id.clone())),
            _ => None,
        }
    }
    async fn channel_status(&self) -> Option<String> {
        match &self.kind {
            HubKind::RemoteAssist(c) | HubKind::Call(c) => Some(c.status.clone()),
            _ => None,
        }
    }
    /// QUEUE_OFFER: the question to carry over into an offline message.
    async fn offer_question(&self) -> Option<String> {
        match &self.kind {
            HubKind::QueueOffer { question } => question.clone(),
            _ => None,
        }
    }
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "AgentEventKind")]
pub enum AgentEventKind2 {
    Assigned,
    Released,
    QueueLength,
}

#[derive(SimpleObject, Debug, Clone)]
#[graphql(name = "AgentEvent")]
pub struct AgentEventObject {
    #[graphql(name = "kind")]
    pub kind: AgentEventKind2,
    pub session_id: Option<ID>,
    pub skill_group: Option<String>,
    pub queue_length: Option<i64>,
}

#[derive(Default)]
pub struct ChatSubscription;

/// What woke a subscription.
enum Wake<T> {
    Event(Result<T, RecvError>),
    /// Events from other instances may have been lost: catch up from the database.
    Resync,
}

/// Waits for the next event or resync; a hub gone for good (never in a running server)
/// stops the resync signal, not the subscription.
async fn next_wake<T, F>(
    events: F,
    resyncs: &mut tokio::sync::watch::Receiver<u64>,
    resync_open: &mut bool,
) -> Wake<T>
where
    F: std::future::Future<Output = Result<T, RecvError>>,
{
    tokio::pin!(events);
    if *resync_open {
        tokio::select! {
            e = &mut events => return Wake::Event(e),
            r = resyncs.changed() => {
                if r.is_ok() {
                    return Wake::Resync;
                }
                *resync_open = false;
            }
        }
    }
    Wake::Event(events.await)
}

/// Reads the messages after the last delivered (up to `before`) and records them delivered:
/// the holes a subscriber fills in `seq` order before going on.
async fn catch_up(
    c: &Chat,
    a: &taxdesk_workflow::Actor,
    session_id: &str,
    order: &mut MessageOrder,
    before: Option<i64>,
) -> Vec<ChatEvent> {
    let mut out = vec![];
    // Several reads when far behind: each returns a bounded page.
    loop {
        let page = match c.missed_messages(a, session_id, order.last(), before).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(session.id = %session_id, error = %e, "chat subscriber: catching up");
                return out;
            }
        };
        let mut progressed = false;
        for m in page {
            if order.deliver(m.seq) {
                progressed = true;
                out.push(ChatEvent {
                    session_id: session_id.to_string(),
                    kind: HubKind::Message(m),
                });
            }
        }
        if !progressed {
            return out;
        }
    }
}

#[Subscription]
impl ChatSubscription {
    /// Everything that happens in one session the viewer takes part in. Messages arrive once
    /// and in `seq` order, from whichever instance they were sent on: a message that skips
    /// ahead brings the ones before it from the database first, and after a resync (events
    /// from other instances may have been lost) the subscription reads what it missed and
    /// sends the session's status again.
    async fn chat_events(
        &self,
        ctx: &Context<'_>,
        session_id: ID,
    ) -> async_graphql::Result<impl Stream<Item = ChatEvent>> {
        let a = actor(ctx)?;
        let c = chat(ctx).clone();
        let s = c.session(&a, &session_id).await.or_gql(ctx)?;
        let mut rx = c.hub().session_events(&s.id);
        let mut resyncs = c.hub().resyncs();
        resyncs.mark_unchanged();
        let me = a.id.clone();
        let id = s.id;
        // Messages committed after this point are delivered, whenever their events arrive.
        let mut order = MessageOrder::after(s.last_seq);
        Ok(async_stream::stream! {
            // Anything sent between reading the session and subscribing above.
            for e in catch_up(&c, &a, &id, &mut order, None).await {
                yield e;
            }
            let mut resync_open = true;
            loop {
                match next_wake(rx.recv(), &mut resyncs, &mut resync_open).await {
                    Wake::Event(Ok(e)) if e.audience.contains(&me) => {
                        if let HubKind::Message(m) = &e.kind {
                            match order.admit(m.seq) {
                                Admit::Duplicate => continue,
                                Admit::Next => {}
                                Admit::Gap { .. } => {
                                    for missed in catch_up(&c, &a, &id, &mut order, Some(m.seq)).await {
                                        yield missed;
                                    }
                                }
                            }
                            if !order.deliver(m.seq) {
                                continue;
                            }
                        }
                        yield ChatEvent { session_id: e.session_id.clone(), kind: e.kind.clone() };
                    }
                    Wake::Event(Ok(_)) => {}
                    Wake::Event(Err(RecvError::Closed)) => break,
                    // Lagged here (or a resync): what was dropped is in the database.
                    Wake::Event(Err(RecvError::Lagged(_))) | Wake::Resync => {
                        tracing::info!(session.id = %id, user.id = %me, after = order.last(), "chat subscriber catching up");
                        for missed in catch_up(&c, &a, &id, &mut order, None).await {
                            yield missed;
                        }
                        yield ChatEvent { session_id: id.clone(), kind: HubKind::Status };
                    }
                }
            }
        })
    }

    /// Staff: sessions assigned to (or taken from) the viewer, and queue lengths. After a
    /// resync the current assignments and queue lengths are sent again.
    async fn agent_events(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = AgentEventObject>> {
        let a = bureau(ctx)?;
        let c = chat(ctx).clone();
        let me = a.id;
        let mut rx = c.hub().agent_events(&me);
        let mut resyncs = c.hub().resyncs();
        resyncs.mark_unchanged();
        Ok(async_stream::stream! {
            let mut resync_open = true;
            loop {
                match next_wake(rx.recv(), &mut resyncs, &mut resync_open).await {
                    Wake::Event(Ok(e)) => yield AgentEventObject::from(&e.kind),
                    Wake::Event(Err(RecvError::Closed)) => break,
                    Wake::Event(Err(RecvError::Lagged(_))) | Wake::Resync => {
                        match c.agent_state(&me).await {
                            Ok(now) => {
                                for e in now {
                                    yield AgentEventObject::from(&e.kind);
                                }
                            }
                            Err(e) => tracing::warn!(user.id = %me, error = %e, "agent subscriber: reading the current state"),
                        }
                    }
                }
            }
        })
    }
}

impl From<&AgentEventKind> for AgentEventObject {
    fn from(k: &AgentEventKind) -> Self {
        match k.clone() {
            AgentEventKind::Assigned { session_id } => AgentEventObject {
                kind: AgentEventKind2::Assigned,
                session_id: Some(ID(session_id)),
                skill_group: None,
                queue_length: None,
            },
            AgentEventKind::Released { session_id } => AgentEventObject {
                kind: AgentEventKind2::Released,
                session_id: Some(ID(session_id)),
                skill_group: None,
                queue_length: None,
            },
            AgentEventKind::QueueLength {
                skill_group,
                length,
            } => AgentEventObject {
                kind: AgentEventKind2::QueueLength,
                session_id: None,
                skill_group: Some(skill_group),
                queue_length: Some(length),
            },
        }
    }
}

/// A remote-assistance request (远程协助) or an audio/video call (音视频) in a session.
pub struct Channel(pub taxdesk_chat::entities::channel::Model);

#[Object]
impl Channel {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn session_id(&self) -> ID {
        ID(self.0.session_id.clone())
    }
    /// `REMOTE_ASSIST` or `CALL`.
    async fn kind(&self) -> &str {
        &self.0.kind
    }
    /// `AUDIO` or `VIDEO` for calls.
    async fn media(&self) -> Option<&str> {
        self.0.media.as_deref()
    }
    /// REQUESTED/INVITED, ACTIVE, DECLINED, CANCELLED, EXPIRED or ENDED.
    async fn status(&self) -> &str {
        &self.0.status
    }
    async fn initiator(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        user(ctx, &self.0.initiator_id, None).await
    }
    async fn version(&self) -> i32 {
        self.0.version
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    async fn ended_at(&self) -> Option<DateTime<Utc>> {
        self.0.ended_at
    }
    async fn history(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<HistoryEntry>> {
        let rows = chat(ctx).channel_history(&self.0.id).await.or_gql(ctx)?;
        Ok(rows.into_iter().map(HistoryEntry::from).collect())
    }
    /// What this viewer may do now: `ACCEPT`, `DECLINE`, `CANCEL`, `END` (respond with
    /// `respondRemoteAssist`/`respondCall`, withdraw or hang up with `endRemoteAssist`/`endCall`).
    async fn allowed_actions(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<String>> {
        let a = actor(ctx)?;
        chat(ctx).channel_allowed(&a, &self.0).await.or_gql(ctx)
    }
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallMedia {
    Audio,
    Video,
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalKind {
    Offer,
    Answer,
    Ice,
}

#[derive(InputObject)]
pub struct RespondRemoteAssistInput {
    pub id: ID,
    pub accept: bool,
}

#[derive(InputObject)]
pub struct InviteCallInput {
    pub session_id: ID,
    pub media: CallMedia,
}

#[derive(InputObject)]
pub struct RespondCallInput {
    pub id: ID,
    /// 同意 (true) or decline.
    pub accept: bool,
}

#[derive(InputObject)]
pub struct SendSignalInput {
    pub channel_id: ID,
    pub kind: SignalKind,
    /// SDP or ICE candidate, as the browser produced it (size-limited).
    pub payload: String,
}

/// `extensions.offer` of a refused hand-over: `{ leaveMessage: { sourceSessionId, category,
/// content }, nextOpenAt }`, ready to pass to `leaveMessage`.
fn with_offer(
    error: async_graphql::Error,
    offer: &taxdesk_chat::offer::LeaveMessageOffer,
) -> async_graphql::Error {
    let value = serde_json::json!({
        "leaveMessage": {
            "sourceSessionId": offer.source_session_id,
            "category": offer.category,
            "content": offer.content,
        },
        "nextOpenAt": offer.next_open_at.map(|t| t.to_rfc3339()),
    });
    async_graphql::ErrorExtensions::extend_with(error, |_, e| {
        if let Ok(v) = async_graphql::Value::from_json(value.clone()) {
            e.set("offer", v);
        }
    })
}

#[derive(Default)]
pub struct ChannelMutation;

#[Object]
impl ChannelMutation {
    /// The taxpayer asks the agent to watch their screen (view only).
    async fn request_remote_assist(
        &self,
        ctx: &Context<'_>,
        session_id: ID,
    ) -> async_graphql::Result<Channel> {
        let a = actor(ctx)?;
        let e = ChannelEvent::Assist(assist::Event::Request);
        Ok(Channel(
            chat(ctx)
                .open_channel_in(&a, &session_id, e)
                .await
                .or_gql(ctx)?,
        ))
    }

    async fn respond_remote_assist(
        &self,
        ctx: &Context<'_>,
        input: RespondRemoteAssistInput,
    ) -> async_graphql::Result<Channel> {
        let a = actor(ctx)?;
        let e = ChannelEvent::Assist(if input.accept {
            assist::Event::Accept
        } else {
            assist::Event::Decline
        });
        Ok(Channel(
            chat(ctx)
                .channel_event(&a, &input.id, e)
                .await
                .or_gql(ctx)?,
        ))
    }

    async fn end_remote_assist(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Channel> {
        let a = actor(ctx)?;
        Ok(Channel(chat(ctx).end_channel(&a, &id).await.or_gql(ctx)?))
    }

    /// The agent proposes an audio or video call.
    async fn invite_call(
        &self,
        ctx: &Context<'_>,
        input: InviteCallInput,
    ) -> async_graphql::Result<Channel> {
        let a = actor(ctx)?;
        let media = match input.media {
            CallMedia::Audio => Media::Audio,
            CallMedia::Video => Media::Video,
        };
        let e = ChannelEvent::Call(call::Event::Invite { media });
        Ok(Channel(
            chat(ctx)
                .open_channel_in(&a, &input.session_id, e)
                .await
                .or_gql(ctx)?,
        ))
    }

    async fn respond_call(
        &self,
        ctx: &Context<'_>,
        input: RespondCallInput,
    ) -> async_graphql::Result<Channel> {
        let a = actor(ctx)?;
        let e = ChannelEvent::Call(if input.accept {
            call::Event::Accept
        } else {
            call::Event::Decline
        });
        Ok(Channel(
            chat(ctx)
                .channel_event(&a, &input.id, e)
                .await
                .or_gql(ctx)?,
        ))
    }

    async fn end_call(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Channel> {
        let a = actor(ctx)?;
        Ok(Channel(chat(ctx).end_channel(&a, &id).await.or_gql(ctx)?))
    }

    /// Relays WebRTC signalling to the other participant of an ACTIVE channel.
    async fn send_signal(
        &self,
        ctx: &Context<'_>,
        input: SendSignalInput,
    ) -> async_graphql::Result<bool> {
        let a = actor(ctx)?;
        let kind = match input.kind {
            SignalKind::Offer => Kind2::Offer,
            SignalKind::Answer => Kind2::Answer,
            SignalKind::Ice => Kind2::Ice,
        };
        chat(ctx)
            .send_signal(&a, &input.channel_id, kind, &input.payload)
            .await
            .or_gql(ctx)?;
        Ok(true)
    }
}
