//! The virtual agent's learning loop in GraphQL: the staff review queue
//! (`unansweredQuestions`), linking a question to an FAQ and dismissing it.

use async_graphql::{Context, Enum, ID, InputObject, Object};
use chrono::{DateTime, Utc};
use taxdesk_chat::Chat;
use taxdesk_chat::entities::asked_question as row;
use taxdesk_chat::review::{EventKind, Reason, Status, service::snapshot};

use crate::common::{Conn, HistoryEntry, connection, page_request};
use crate::error::OrGql;
use crate::identity::bureau;
use crate::kb::Faq;

/// Why a question is in the review queue.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum AskedQuestionReason {
    /// The virtual agent did not answer it (it offered related questions at most).
    Unanswered,
    /// It was answered, and the answer was voted 无用.
    Useless,
    /// The chat it was asked in went on to a human agent.
    HandedOver,
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum AskedQuestionStatus {
    Open,
    /// Made a phrasing of an FAQ (`linkedFaq`).
    Linked,
    Dismissed,
}

/// What the viewer may do with a question now.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum AskedQuestionAction {
    Link,
    Dismiss,
}

impl From<Reason> for AskedQuestionReason {
    fn from(r: Reason) -> Self {
        match r {
            Reason::Unanswered => AskedQuestionReason::Unanswered,
            Reason::Useless => AskedQuestionReason::Useless,
            Reason::HandedOver => AskedQuestionReason::HandedOver,
        }
    }
}

impl From<AskedQuestionReason> for Reason {
    fn from(r: AskedQuestionReason) -> Self {
        match r {
            AskedQuestionReason::Unanswered => Reason::Unanswered,
            AskedQuestionReason::Useless => Reason::Useless,
            AskedQuestionReason::HandedOver => Reason::HandedOver,
        }
    }
}

impl From<Status> for AskedQuestionStatus {
    fn from(s: Status) -> Self {
        match s {
            Status::Open => AskedQuestionStatus::Open,
            Status::Linked => AskedQuestionStatus::Linked,
            Status::Dismissed => AskedQuestionStatus::Dismissed,
        }
    }
}

impl From<AskedQuestionStatus> for Status {
    fn from(s: AskedQuestionStatus) -> Self {
        match s {
            AskedQuestionStatus::Open => Status::Open,
            AskedQuestionStatus::Linked => Status::Linked,
            AskedQuestionStatus::Dismissed => Status::Dismissed,
        }
    }
}

impl From<EventKind> for AskedQuestionAction {
    fn from(k: EventKind) -> Self {
        match k {
            EventKind::Link => AskedQuestionAction::Link,
            EventKind::Dismiss => AskedQuestionAction::Dismiss,
        }
    }
}

fn chat<'a>(ctx: &Context<'a>) -> &'a Chat {
    ctx.data_unchecked::<Chat>()
}

/// A question put to the virtual agent that staff should look at, and why.
pub struct AskedQuestion(pub row::Model);

#[Object]
impl AskedQuestion {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// As the taxpayer typed it (the first time).
    async fn text(&self) -> &str {
        &self.0.text
    }
    async fn reason(&self) -> AskedQuestionReason {
        self.0
            .reason
            .parse::<Reason>()
            .map(Into::into)
            .unwrap_or(AskedQuestionReason::Unanswered)
    }
    async fn status(&self, ctx: &Context<'_>) -> async_graphql::Result<AskedQuestionStatus> {
        Ok(snapshot(&self.0).or_gql(ctx)?.status.into())
    }
    /// The FAQ the bot found closest (its answer, or its first suggestion).
    async fn closest_faq_id(&self) -> Option<ID> {
        self.0.closest_faq_id.clone().map(ID)
    }
    /// The FAQ the question was made a phrasing of (LINKED).
    async fn linked_faq(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Faq>> {
        let Some(id) = &self.0.linked_faq_id else {
            return Ok(None);
        };
        Ok(chat(ctx).faq(id).await.or_gql(ctx)?.map(Faq::from))
    }
    /// The bot's confidence, 0..1, at the last ask.
    async fn confidence(&self) -> f64 {
        self.0.confidence
    }
    /// When it was first asked.
    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }
    /// How often the same question (folded text) was asked for the same reason while open.
    async fn count(&self) -> i32 {
        self.0.ask_count
    }
    async fn last_asked_at(&self) -> DateTime<Utc> {
        self.0.last_asked_at
    }
    /// The chat it was asked in, if any.
    async fn session_id(&self) -> Option<ID> {
        self.0.session_id.clone().map(ID)
    }
    async fn version(&self) -> i32 {
        self.0.version
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// Who linked or dismissed it, when.
    async fn history(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<HistoryEntry>> {
        let rows = chat(ctx)
            .asked_question_history(&self.0.id)
            .await
            .or_gql(ctx)?;
        Ok(rows.into_iter().map(HistoryEntry::from).collect())
    }
    async fn allowed_actions(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<AskedQuestionAction>> {
        let a = crate::identity::actor(ctx)?;
        let snap = snapshot(&self.0).or_gql(ctx)?;
        Ok(taxdesk_chat::review::machine::allowed(&snap, &a)
            .into_iter()
            .map(Into::into)
            .collect())
    }
}

#[derive(InputObject)]
pub struct LinkAskedQuestionInput {
    pub asked_question_id: ID,
    /// The FAQ the question becomes a phrasing of.
    pub faq_id: ID,
}

#[derive(Default)]
pub struct ReviewQuery;

#[Object]
impl ReviewQuery {
    /// Staff: the review queue, newest first — questions the bot did not answer, answers
    /// voted 无用, chats handed over. OPEN ones unless `status` says otherwise (null = all).
    #[graphql(complexity = "crate::common::page_cost(first, last, child_complexity)")]
    #[allow(clippy::too_many_arguments)]
    async fn unanswered_questions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        #[graphql(default_with = "Some(AskedQuestionStatus::Open)")] status: Option<
            AskedQuestionStatus,
        >,
        reason: Option<AskedQuestionReason>,
    ) -> async_graphql::Result<Conn<AskedQuestion>> {
        let a = bureau(ctx)?;
        let page = chat(ctx)
            .asked_questions(
                &a,
                status.map(Into::into),
                reason.map(Into::into),
                &page_request(first, after, last, before),
            )
            .await
            .or_gql(ctx)?;
        Ok(connection(page, |q| q.id.clone(), AskedQuestion))
    }

    /// Staff: one question of the review queue.
    async fn asked_question(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<AskedQuestion>> {
        let a = bureau(ctx)?;
        Ok(chat(ctx)
            .asked_question(&a, &id)
            .await
            .or_gql(ctx)?
            .map(AskedQuestion))
    }
}

#[derive(Default)]
pub struct ReviewMutation;

#[Object]
impl ReviewMutation {
    /// Staff: the question becomes a phrasing of the FAQ, answerable at once (on every
    /// instance within seconds). Returns the FAQ.
    async fn link_asked_question(
        &self,
        ctx: &Context<'_>,
        input: LinkAskedQuestionInput,
    ) -> async_graphql::Result<Faq> {
        let a = bureau(ctx)?;
        Ok(chat(ctx)
            .link_asked_question(&a, &input.asked_question_id, &input.faq_id)
            .await
            .or_gql(ctx)?
            .into())
    }

    /// Staff: out of the OPEN queue, nothing learnt.
    async fn dismiss_asked_question(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<AskedQuestion> {
        let a = bureau(ctx)?;
        Ok(AskedQuestion(
            chat(ctx)
                .dismiss_asked_question(&a, &id)
                .await
                .or_gql(ctx)?,
        ))
    }
}
