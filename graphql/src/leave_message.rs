//! Offline messages (在线留言) in GraphQL: the object, its inputs, and the operations of
//! API.md. The mutation `leaveMessage(input)` and the query `leaveMessage(id)` share a name
//! on different root types.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use taxdesk_workflow::Workflow;
use taxdesk_workflow::entities::{leave_message as row, leave_message_reply as reply_row};
use taxdesk_workflow::leave_message::{
    self as lm, LeaveMessageFilter as Filter, SubmitLeaveMessage,
};

use crate::attachment::Attachment;
use crate::common::{Conn, HistoryEntry, User, connection, page_request, user};
use crate::error::OrGql;
use crate::identity::{actor, bureau};
use crate::work_order::WorkOrder;

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaveMessageStatus {
    /// Waiting for the bureau's answer.
    Submitted,
    /// Answered; the taxpayer may follow up.
    Replied,
    Closed,
}

/// What the viewer may do with a message now; a front end draws its buttons from these.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaveMessageAction {
    Reply,
    FollowUp,
    Close,
    Convert,
}

impl From<lm::Status> for LeaveMessageStatus {
    fn from(s: lm::Status) -> Self {
        match s {
            lm::Status::Submitted => LeaveMessageStatus::Submitted,
            lm::Status::Replied => LeaveMessageStatus::Replied,
            lm::Status::Closed => LeaveMessageStatus::Closed,
        }
    }
}

impl From<LeaveMessageStatus> for lm::Status {
    fn from(s: LeaveMessageStatus) -> Self {
        match s {
            LeaveMessageStatus::Submitted => lm::Status::Submitted,
            LeaveMessageStatus::Replied => lm::Status::Replied,
            LeaveMessageStatus::Closed => lm::Status::Closed,
        }
    }
}

impl From<lm::EventKind> for LeaveMessageAction {
    fn from(k: lm::EventKind) -> Self {
        match k {
            lm::EventKind::Reply => LeaveMessageAction::Reply,
            lm::EventKind::FollowUp => LeaveMessageAction::FollowUp,
            lm::EventKind::Close => LeaveMessageAction::Close,
            lm::EventKind::Convert => LeaveMessageAction::Convert,
        }
    }
}

/// One entry of the conversation: a staff reply, or the taxpayer's follow-up.
#[derive(SimpleObject, Debug, Clone)]
#[graphql(complex)]
pub struct LeaveMessageReply {
    pub id: ID,
    pub at: DateTime<Utc>,
    pub content: String,
    /// When the taxpayer read it (their own follow-ups are read when written).
    pub read_at: Option<DateTime<Utc>>,
    #[graphql(skip)]
    pub author_id: String,
    #[graphql(skip)]
    pub author_role: String,
}

#[async_graphql::ComplexObject]
impl LeaveMessageReply {
    async fn author(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        user(ctx, &self.author_id, Some(&self.author_role)).await
    }
}

impl From<reply_row::Model> for LeaveMessageReply {
    fn from(r: reply_row::Model) -> Self {
        LeaveMessageReply {
            id: ID(r.id),
            at: r.created_at,
            content: r.content,
            read_at: r.read_at,
            author_id: r.author_id,
            author_role: r.author_role,
        }
    }
}

/// 留言.
pub struct LeaveMessage(pub row::Model);

/// A row the machine cannot read (an unknown status) is the server's fault: INTERNAL, logged.
fn status(ctx: &Context<'_>, m: &row::Model) -> async_graphql::Result<lm::Status> {
    lm::service::snapshot(m).map(|s| s.status).or_gql(ctx)
}

#[Object]
impl LeaveMessage {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// One of `workOrderCategories`.
    async fn category(&self) -> &str {
        &self.0.category
    }
    async fn content(&self) -> &str {
        &self.0.content
    }
    /// How to reach the taxpayer, as they wrote it.
    async fn contact(&self) -> Option<&str> {
        self.0.contact.as_deref()
    }
    async fn attachment_ids(&self) -> Vec<ID> {
        self.0.attachment_ids().into_iter().map(ID).collect()
    }
    /// The attached uploads the viewer may open (its taxpayer and admins; staff download
    /// rights follow the attachment's own rules), in the order given.
    async fn attachments(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Attachment>> {
        let a = actor(ctx)?;
        let wf = ctx.data_unchecked::<Workflow>();
        let mut out = vec![];
        for id in self.0.attachment_ids() {
            if let Ok(row) = taxdesk_chat::attachment::get_for(wf.db(), &a, &id).await {
                out.push(row.into());
            }
        }
        Ok(out)
    }
    async fn status(&self, ctx: &Context<'_>) -> async_graphql::Result<LeaveMessageStatus> {
        Ok(status(ctx, &self.0)?.into())
    }
    /// The taxpayer who left it.
    async fn taxpayer(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        user(ctx, &self.0.taxpayer_id, Some("TAXPAYER")).await
    }
    /// The staff replies and the taxpayer's follow-ups, oldest first.
    async fn replies(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<LeaveMessageReply>> {
        let rows = ctx
            .data_unchecked::<Workflow>()
            .leave_messages()
            .replies(&self.0.id)
            .await
            .or_gql(ctx)?;
        Ok(rows.into_iter().map(LeaveMessageReply::from).collect())
    }
    /// The chat whose hand-over was refused, if the message came from one.
    async fn source_session_id(&self) -> Option<ID> {
        self.0.source_session_id.clone().map(ID)
    }
    /// The work order it was turned into.
    async fn work_order_id(&self) -> Option<ID> {
        self.0.work_order_id.clone().map(ID)
    }
    async fn work_order(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<WorkOrder>> {
        let Some(id) = &self.0.work_order_id else {
            return Ok(None);
        };
        let a = actor(ctx)?;
        let wf = ctx.data_unchecked::<Workflow>();
        Ok(Some(WorkOrder(
            wf.work_orders().get(&a, id).await.or_gql(ctx)?,
        )))
    }
    async fn closed_at(&self) -> Option<DateTime<Utc>> {
        self.0.closed_at
    }
    async fn closed_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        match &self.0.closed_by {
            Some(c) => user(ctx, c, None).await.map(Some),
            None => Ok(None),
        }
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
        let rows = ctx
            .data_unchecked::<Workflow>()
            .leave_messages()
            .history(&self.0.id)
            .await
            .or_gql(ctx)?;
        Ok(rows.into_iter().map(HistoryEntry::from).collect())
    }
    async fn allowed_actions(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<LeaveMessageAction>> {
        let a = actor(ctx)?;
        let wf = ctx.data_unchecked::<Workflow>();
        Ok(wf
            .leave_messages()
            .allowed(&a, &self.0)
            .into_iter()
            .map(Into::into)
            .collect())
    }
}

#[derive(InputObject)]
pub struct LeaveMessageInput {
    /// One of `workOrderCategories`.
    pub category: String,
    /// 1–2000 characters.
    pub content: String,
    /// How to reach the taxpayer (phone, email); at most 100 characters.
    pub contact: Option<String>,
    /// Up to 5 of the taxpayer's own uploads (`uploadAttachment`).
    pub attachment_ids: Option<Vec<ID>>,
    /// The taxpayer's chat whose hand-over was refused (`OFF_HOURS`, `NO_AGENT`).
    pub source_session_id: Option<ID>,
}

#[derive(InputObject)]
pub struct ReplyLeaveMessageInput {
    pub id: ID,
    /// 1–5000 characters.
    pub content: String,
}

#[derive(InputObject)]
pub struct FollowUpLeaveMessageInput {
    pub id: ID,
    /// 1–2000 characters.
    pub content: String,
}

#[derive(InputObject)]
pub struct ConvertLeaveMessageInput {
    pub id: ID,
    /// The work order's category; by default the message's.
    pub category: Option<String>,
}

#[derive(Default)]
pub struct LeaveMessageQuery;

#[Object]
impl LeaveMessageQuery {
    /// One message; a taxpayer may only see their own (`NOT_FOUND` otherwise). When its
    /// taxpayer opens it, the staff replies in it count as read.
    async fn leave_message(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<LeaveMessage>> {
        let a = actor(ctx)?;
        let wf = ctx.data_unchecked::<Workflow>();
        Ok(Some(LeaveMessage(
            wf.leave_messages().read(&a, &id).await.or_gql(ctx)?,
        )))
    }

    /// 我的留言: a taxpayer's own messages, newest first; for staff, the ones they answered
    /// last.
    #[graphql(complexity = "crate::common::page_cost(first, last, child_complexity)")]
    async fn my_leave_messages(
        &self,
        ctx: &Context<'_>,
        status: Option<LeaveMessageStatus>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Conn<LeaveMessage>> {
        let a = actor(ctx)?;
        let wf = ctx.data_unchecked::<Workflow>();
        let page = wf
            .leave_messages()
            .mine(
                &a,
                status.map(Into::into),
                &page_request(first, after, last, before),
            )
            .await
            .or_gql(ctx)?;
        Ok(connection(page, |m| m.id.clone(), LeaveMessage))
    }

    /// Staff: every message, by status, category and taxpayer, newest first.
    #[graphql(complexity = "crate::common::page_cost(first, last, child_complexity)")]
    #[allow(clippy::too_many_arguments)]
    async fn leave_messages(
        &self,
        ctx: &Context<'_>,
        status: Option<LeaveMessageStatus>,
        category: Option<String>,
        taxpayer_id: Option<ID>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Conn<LeaveMessage>> {
        let a = bureau(ctx)?;
        let filter = Filter {
            status: status.map(Into::into),
            category,
            taxpayer_id: taxpayer_id.map(|i| i.0),
        };
        let wf = ctx.data_unchecked::<Workflow>();
        let page = wf
            .leave_messages()
            .list(&a, &filter, &page_request(first, after, last, before))
            .await
            .or_gql(ctx)?;
        Ok(connection(page, |m| m.id.clone(), LeaveMessage))
    }
}

#[derive(Default)]
pub struct LeaveMessageMutation;

#[Object]
impl LeaveMessageMutation {
    /// 在线留言: a taxpayer leaves a message, e.g. when 转人工 is refused out of hours.
    async fn leave_message(
        &self,
        ctx: &Context<'_>,
        input: LeaveMessageInput,
    ) -> async_graphql::Result<LeaveMessage> {
        let a = actor(ctx)?;
        let wf = ctx.data_unchecked::<Workflow>();
        let submitted = wf
            .leave_messages()
            .submit(
                &a,
                SubmitLeaveMessage {
                    category: input.category,
                    content: input.content,
                    contact: input.contact,
                    attachment_ids: input
                        .attachment_ids
                        .unwrap_or_default()
                        .into_iter()
                        .map(|i| i.0)
                        .collect(),
                    source_session_id: input.source_session_id.map(|i| i.0),
                },
            )
            .await
            .or_gql(ctx)?;
        Ok(LeaveMessage(submitted))
    }

    /// Staff: answer a message; the taxpayer is notified and emailed.
    async fn reply_leave_message(
        &self,
        ctx: &Context<'_>,
        input: ReplyLeaveMessageInput,
    ) -> async_graphql::Result<LeaveMessage> {
        let a = actor(ctx)?;
        let wf = ctx.data_unchecked::<Workflow>();
        Ok(LeaveMessage(
            wf.leave_messages()
                .reply(&a, &input.id, input.content)
                .await
                .or_gql(ctx)?,
        ))
    }

    /// The taxpayer asks again after a reply (追问); the message waits for staff again.
    async fn follow_up_leave_message(
        &self,
        ctx: &Context<'_>,
        input: FollowUpLeaveMessageInput,
    ) -> async_graphql::Result<LeaveMessage> {
        let a = actor(ctx)?;
        let wf = ctx.data_unchecked::<Workflow>();
        Ok(LeaveMessage(
            wf.leave_messages()
                .follow_up(&a, &input.id, input.content)
                .await
                .or_gql(ctx)?,
        ))
    }

    /// The taxpayer or staff close a message.
    async fn close_leave_message(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<LeaveMessage> {
        let a = actor(ctx)?;
        let wf = ctx.data_unchecked::<Workflow>();
        Ok(LeaveMessage(
            wf.leave_messages().close(&a, &id).await.or_gql(ctx)?,
        ))
    }

    /// Staff: turn a message into a work order for its taxpayer (citing the message); the
    /// message is closed and names the order in `workOrderId` / `workOrder`.
    async fn convert_leave_message(
        &self,
        ctx: &Context<'_>,
        input: ConvertLeaveMessageInput,
    ) -> async_graphql::Result<LeaveMessage> {
        let a = actor(ctx)?;
        let wf = ctx.data_unchecked::<Workflow>();
        Ok(LeaveMessage(
            wf.leave_messages()
                .convert(&a, &input.id, input.category)
                .await
                .or_gql(ctx)?,
        ))
    }

    /// The taxpayer has read the replies to a message (as opening it with `leaveMessage(id)`
    /// does); clears its READ_REPLY to-do.
    async fn mark_leave_message_read(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<LeaveMessage> {
        let a = actor(ctx)?;
        let wf = ctx.data_unchecked::<Workflow>();
        Ok(LeaveMessage(
            wf.leave_messages().read(&a, &id).await.or_gql(ctx)?,
        ))
    }
}
