//! Admins: the scheduler's jobs and the email outbox; everyone: their own contact address.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use taxdesk_workflow::entities::{job, outbox_email};
use taxdesk_workflow::jobs::JobState as State;
use taxdesk_workflow::{Role, Workflow};

use crate::common::{Conn, connection, page_request};
use crate::error::{Code, OrGql, coded};
use crate::identity::{Viewer, actor, viewer};

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Pending,
    Running,
    Done,
    Dead,
    Cancelled,
}

impl From<JobState> for State {
    fn from(s: JobState) -> Self {
        match s {
            JobState::Pending => State::Pending,
            JobState::Running => State::Running,
            JobState::Done => State::Done,
            JobState::Dead => State::Dead,
            JobState::Cancelled => State::Cancelled,
        }
    }
}

/// A scheduled job (timed work: deadlines, emails, recurring jobs).
#[derive(SimpleObject, Debug, Clone)]
pub struct Job {
    pub id: ID,
    pub kind: String,
    /// JSON.
    pub payload: String,
    pub dedupe_key: String,
    pub run_at: DateTime<Utc>,
    /// `PENDING`, `RUNNING`, `DONE`, `DEAD` or `CANCELLED`.
    pub state: String,
    pub attempts: i32,
    pub max_attempts: i32,
    pub locked_by: Option<String>,
    pub locked_until: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<job::Model> for Job {
    fn from(j: job::Model) -> Self {
        Job {
            id: ID(j.id),
            kind: j.kind,
            payload: j.payload,
            dedupe_key: j.dedupe_key,
            run_at: j.run_at,
            state: j.state,
            attempts: j.attempts,
            max_attempts: j.max_attempts,
            locked_by: j.locked_by,
            locked_until: j.locked_until,
            last_error: j.last_error,
            created_at: j.created_at,
            finished_at: j.finished_at,
        }
    }
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxState {
    Pending,
    Sending,
    Sent,
    Failed,
}

/// An email in the outbox.
#[derive(SimpleObject, Debug, Clone)]
pub struct OutboxEmail {
    pub id: ID,
    pub user_id: Option<ID>,
    pub to_address: String,
    pub kind: String,
    pub subject: String,
    pub state: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

impl From<outbox_email::Model> for OutboxEmail {
    fn from(e: outbox_email::Model) -> Self {
        OutboxEmail {
            id: ID(e.id),
            user_id: e.user_id.map(ID),
            to_address: e.to_address,
            kind: e.kind,
            subject: e.subject,
            state: e.state,
            attempts: e.attempts,
            last_error: e.last_error,
            created_at: e.created_at,
            sent_at: e.sent_at,
        }
    }
}

fn admin(ctx: &Context<'_>) -> async_graphql::Result<()> {
    if actor(ctx)?.role == Role::Admin {
        Ok(())
    } else {
        Err(coded(Code::Forbidden, "仅限管理员", "admins only"))
    }
}

#[derive(InputObject)]
pub struct UpdateMyContactInput {
    /// Where notification emails go.
    pub email: String,
}

#[derive(Default)]
pub struct AdminQuery;

#[Object]
impl AdminQuery {
    /// Admins: scheduled jobs, newest first.
    #[graphql(complexity = "crate::common::page_cost(first, last, child_complexity)")]
    #[allow(clippy::too_many_arguments)] // one parameter per GraphQL argument
    async fn jobs(
        &self,
        ctx: &Context<'_>,
        state: Option<JobState>,
        kind: Option<String>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Conn<Job>> {
        admin(ctx)?;
        let wf = ctx.data_unchecked::<Workflow>();
        let page = wf
            .jobs(
                state.map(Into::into),
                kind.as_deref(),
                &page_request(first, after, last, before),
            )
            .await
            .or_gql(ctx)?;
        Ok(connection(page, |j| j.id.clone(), Job::from))
    }

    /// Admins: the email outbox, newest first; `FAILED` ones were given up on.
    #[graphql(complexity = "crate::common::page_cost(first, last, child_complexity)")]
    async fn outbox_emails(
        &self,
        ctx: &Context<'_>,
        state: Option<OutboxState>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Conn<OutboxEmail>> {
        admin(ctx)?;
        let state = state.map(|s| match s {
            OutboxState::Pending => "PENDING",
            OutboxState::Sending => "SENDING",
            OutboxState::Sent => "SENT",
            OutboxState::Failed => "FAILED",
        });
        let wf = ctx.data_unchecked::<Workflow>();
        let page = wf
            .outbox(state, &page_request(first, after, last, before))
            .await
            .or_gql(ctx)?;
        Ok(connection(page, |e| e.id.clone(), OutboxEmail::from))
    }
}

#[derive(Default)]
pub struct AdminMutation;

#[Object]
impl AdminMutation {
    /// Admins: runs a `DEAD` or `CANCELLED` job again now.
    async fn retry_job(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Job> {
        admin(ctx)?;
        let wf = ctx.data_unchecked::<Workflow>();
        Ok(wf.retry_job(&id).await.or_gql(ctx)?.into())
    }

    /// Sets the viewer's email address for notification emails.
    async fn update_my_contact(
        &self,
        ctx: &Context<'_>,
        input: UpdateMyContactInput,
    ) -> async_graphql::Result<Viewer> {
        let v = viewer(ctx)?;
        let wf = ctx.data_unchecked::<Workflow>();
        let row = wf.update_contact(&v.id, &input.email).await.or_gql(ctx)?;
        Ok(Viewer {
            email: row.email,
            ..v.clone()
        })
    }
}
