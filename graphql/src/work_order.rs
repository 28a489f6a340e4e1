//! Work orders (工单) in GraphQL: the object, its inputs, and the operations of API.md.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use taxdesk_workflow::Workflow;
use taxdesk_workflow::entities::work_order as row;
use taxdesk_workflow::work_order::{self as wo, CreateWorkOrder, Event};

use crate::common::{Conn, HistoryEntry, User, connection, page_request, user};
use crate::error::OrGql;
use crate::identity::{actor, bureau};

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkOrderStatus {
    Submitted,
    Dispatched,
    InProgress,
    Completed,
    Terminated,
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkOrderPriority {
    Normal,
    High,
    Urgent,
}

/// What the viewer may do with a work order now; a front end draws its buttons from these.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkOrderAction {
    Dispatch,
    Accept,
    Progress,
    Complete,
    Urge,
    Terminate,
    Rate,
    Overdue,
}

macro_rules! same_variants {
    ($from:ty => $to:ty { $($v:ident),* }) => {
        impl From<$from> for $to {
            fn from(x: $from) -> Self {
                match x { $(<$from>::$v => <$to>::$v),* }
            }
        }
    };
}
same_variants!(wo::Status => WorkOrderStatus { Submitted, Dispatched, InProgress, Completed, Terminated });
same_variants!(WorkOrderStatus => wo::Status { Submitted, Dispatched, InProgress, Completed, Terminated });
same_variants!(wo::Priority => WorkOrderPriority { Normal, High, Urgent });
same_variants!(WorkOrderPriority => wo::Priority { Normal, High, Urgent });
same_variants!(wo::EventKind => WorkOrderAction { Dispatch, Accept, Progress, Complete, Urge, Terminate, Rate, Overdue });

#[derive(SimpleObject, Debug, Clone)]
pub struct WorkOrderRating {
    pub score: i32,
    pub comment: Option<String>,
    pub rated_at: DateTime<Utc>,
}

/// 工单.
pub struct WorkOrder(pub row::Model);

/// A row the machine cannot read (an unknown status) is the server's fault: INTERNAL, logged.
fn snapshot(ctx: &Context<'_>, o: &row::Model) -> async_graphql::Result<wo::Snapshot> {
    wo::service::snapshot(o).or_gql(ctx)
}

#[Object]
impl WorkOrder {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// Human-readable number, e.g. GD202611260001.
    async fn number(&self) -> &str {
        &self.0.number
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn description(&self) -> &str {
        &self.0.description
    }
    async fn category(&self) -> &str {
        &self.0.category
    }
    async fn status(&self, ctx: &Context<'_>) -> async_graphql::Result<WorkOrderStatus> {
        Ok(snapshot(ctx, &self.0)?.status.into())
    }
    async fn priority(&self, ctx: &Context<'_>) -> async_graphql::Result<WorkOrderPriority> {
        Ok(snapshot(ctx, &self.0)?.priority.into())
    }
    async fn urge_count(&self) -> i32 {
        self.0.urge_count
    }
    async fn last_urged_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_urged_at
    }
    /// The taxpayer who owns the order.
    async fn taxpayer(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        user(ctx, &self.0.taxpayer_id, Some("TAXPAYER")).await
    }
    async fn created_by(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        user(ctx, &self.0.created_by, None).await
    }
    async fn handler(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        match &self.0.handler_id {
            Some(h) => user(ctx, h, Some("STAFF")).await.map(Some),
            None => Ok(None),
        }
    }
    async fn resolution(&self) -> Option<&str> {
        self.0.resolution.as_deref()
    }
    async fn rating(&self) -> Option<WorkOrderRating> {
        match (self.0.rating_score, self.0.rated_at) {
            (Some(score), Some(rated_at)) => Some(WorkOrderRating {
                score: score.into(),
                comment: self.0.rating_comment.clone(),
                rated_at,
            }),
            _ => None,
        }
    }
    /// When it is due (办理期限).
    async fn deadline(&self) -> Option<DateTime<Utc>> {
        self.0.deadline
    }
    /// Open and past its deadline.
    async fn overdue(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        let now = ctx.data_unchecked::<Workflow>().now();
        Ok(snapshot(ctx, &self.0)?.status.is_open() && self.0.deadline.is_some_and(|d| d < now))
    }
    /// When it was completed or terminated.
    async fn closed_at(&self) -> Option<DateTime<Utc>> {
        self.0.closed_at
    }
    async fn source_session_id(&self) -> Option<ID> {
        self.0.source_session_id.clone().map(ID)
    }
    async fn source_leave_message_id(&self) -> Option<ID> {
        self.0.source_leave_message_id.clone().map(ID)
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
            .work_orders()
            .history(&self.0.id)
            .await
            .or_gql(ctx)?;
        Ok(rows.into_iter().map(HistoryEntry::from).collect())
    }
    async fn allowed_actions(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<WorkOrderAction>> {
        let a = actor(ctx)?;
        let wf = ctx.data_unchecked::<Workflow>();
        Ok(wf
            .work_orders()
            .allowed(&a, &self.0)
            .into_iter()
            .map(Into::into)
            .collect())
    }
}

#[derive(InputObject)]
pub struct CreateWorkOrderInput {
    /// 1–200 characters.
    pub title: String,
    /// 1–5000 characters.
    pub description: String,
    /// One of `workOrderCategories`.
    pub category: String,
    /// The taxpayer's user id; required when staff create an order, omitted by a taxpayer.
    pub taxpayer_id: Option<ID>,
    pub source_session_id: Option<ID>,
    pub source_leave_message_id: Option<ID>,
}

#[derive(InputObject)]
pub struct DispatchWorkOrderInput {
    pub id: ID,
    /// The staff member's user id (token subject).
    pub handler_id: ID,
    pub note: Option<String>,
}

#[derive(InputObject)]
pub struct AddWorkOrderProgressInput {
    pub id: ID,
    pub note: String,
}

#[derive(InputObject)]
pub struct CompleteWorkOrderInput {
    pub id: ID,
    pub resolution: String,
}

#[derive(InputObject)]
pub struct UrgeWorkOrderInput {
    pub id: ID,
    pub reason: Option<String>,
}

#[derive(InputObject)]
pub struct TerminateWorkOrderInput {
    pub id: ID,
    pub reason: Option<String>,
}

#[derive(InputObject)]
pub struct RateWorkOrderInput {
    pub id: ID,
    /// 1 (worst) to 5 (best).
    pub score: i32,
    pub comment: Option<String>,
}

#[derive(InputObject, Default)]
pub struct WorkOrderFilter {
    pub status: Option<WorkOrderStatus>,
    pub handler_id: Option<ID>,
    pub category: Option<String>,
    pub taxpayer_id: Option<ID>,
    pub priority: Option<WorkOrderPriority>,
    /// `true`: open and past the deadline; `false`: the rest.
    pub overdue: Option<bool>,
}

#[derive(Default)]
pub struct WorkOrderQuery;

#[Object]
impl WorkOrderQuery {
    /// One work order; a taxpayer may only see their own (`NOT_FOUND` otherwise).
    async fn work_order(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<WorkOrder>> {
        let a = actor(ctx)?;
        let wf = ctx.data_unchecked::<Workflow>();
        Ok(Some(WorkOrder(
            wf.work_orders().get(&a, &id).await.or_gql(ctx)?,
        )))
    }

    /// 我的工单: a taxpayer's own orders, newest first; for staff, the orders they handle.
    #[graphql(complexity = "crate::common::page_cost(first, last, child_complexity)")]
    async fn my_work_orders(
        &self,
        ctx: &Context<'_>,
        status: Option<WorkOrderStatus>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Conn<WorkOrder>> {
        let a = actor(ctx)?;
        let wf = ctx.data_unchecked::<Workflow>();
        let page = wf
            .work_orders()
            .mine(
                &a,
                status.map(Into::into),
                &page_request(first, after, last, before),
            )
            .await
            .or_gql(ctx)?;
        Ok(connection(page, |o| o.id.clone(), WorkOrder))
    }

    /// Staff: all work orders, filtered, newest first.
    #[graphql(complexity = "crate::common::page_cost(first, last, child_complexity)")]
    async fn work_orders(
        &self,
        ctx: &Context<'_>,
        filter: Option<WorkOrderFilter>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Conn<WorkOrder>> {
        let a = bureau(ctx)?;
        let f = filter.unwrap_or_default();
        let filter = wo::WorkOrderFilter {
            status: f.status.map(Into::into),
            handler_id: f.handler_id.map(|i| i.0),
            category: f.category,
            taxpayer_id: f.taxpayer_id.map(|i| i.0),
            priority: f.priority.map(Into::into),
            overdue: f.overdue,
        };
        let wf = ctx.data_unchecked::<Workflow>();
        let page = wf
            .work_orders()
            .list(&a, &filter, &page_request(first, after, last, before))
            .await
            .or_gql(ctx)?;
        Ok(connection(page, |o| o.id.clone(), WorkOrder))
    }

    /// The categories a work order may have (also the chat skill groups).
    async fn work_order_categories(&self, ctx: &Context<'_>) -> Vec<String> {
        ctx.data_unchecked::<Workflow>().config().categories.clone()
    }

    /// Staff: the staff and admins who can be chosen as handlers.
    async fn staff_members(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<User>> {
        bureau(ctx)?;
        let wf = ctx.data_unchecked::<Workflow>();
        Ok(wf
            .staff_members()
            .await
            .or_gql(ctx)?
            .into_iter()
            .map(User::from)
            .collect())
    }
}

async fn apply(ctx: &Context<'_>, id: ID, event: Event) -> async_graphql::Result<WorkOrder> {
    let a = actor(ctx)?;
    let wf = ctx.data_unchecked::<Workflow>();
    Ok(WorkOrder(
        wf.work_orders().apply(&a, &id, event).await.or_gql(ctx)?,
    ))
}

#[derive(Default)]
pub struct WorkOrderMutation;

#[Object]
impl WorkOrderMutation {
    /// A taxpayer files a work order for themselves; staff file one for a taxpayer.
    async fn create_work_order(
        &self,
        ctx: &Context<'_>,
        input: CreateWorkOrderInput,
    ) -> async_graphql::Result<WorkOrder> {
        let a = actor(ctx)?;
        let wf = ctx.data_unchecked::<Workflow>();
        let created = wf
            .work_orders()
            .create(
                &a,
                CreateWorkOrder {
                    title: input.title,
                    description: input.description,
                    category: input.category,
                    taxpayer_id: input.taxpayer_id.map(|i| i.0),
                    source_session_id: input.source_session_id.map(|i| i.0),
                    source_leave_message_id: input.source_leave_message_id.map(|i| i.0),
                },
            )
            .await
            .or_gql(ctx)?;
        Ok(WorkOrder(created))
    }

    /// Staff: (re-)dispatch to a handler.
    async fn dispatch_work_order(
        &self,
        ctx: &Context<'_>,
        input: DispatchWorkOrderInput,
    ) -> async_graphql::Result<WorkOrder> {
        let event = Event::Dispatch {
            handler_id: input.handler_id.0,
            note: input.note,
        };
        apply(ctx, input.id, event).await
    }

    /// The handler takes the order on.
    async fn accept_work_order(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<WorkOrder> {
        apply(ctx, id, Event::Accept).await
    }

    async fn add_work_order_progress(
        &self,
        ctx: &Context<'_>,
        input: AddWorkOrderProgressInput,
    ) -> async_graphql::Result<WorkOrder> {
        apply(ctx, input.id, Event::Progress { note: input.note }).await
    }

    async fn complete_work_order(
        &self,
        ctx: &Context<'_>,
        input: CompleteWorkOrderInput,
    ) -> async_graphql::Result<WorkOrder> {
        apply(
            ctx,
            input.id,
            Event::Complete {
                resolution: input.resolution,
            },
        )
        .await
    }

    /// 催办: once per cool-down.
    async fn urge_work_order(
        &self,
        ctx: &Context<'_>,
        input: UrgeWorkOrderInput,
    ) -> async_graphql::Result<WorkOrder> {
        apply(
            ctx,
            input.id,
            Event::Urge {
                reason: input.reason,
            },
        )
        .await
    }

    /// 终止.
    async fn terminate_work_order(
        &self,
        ctx: &Context<'_>,
        input: TerminateWorkOrderInput,
    ) -> async_graphql::Result<WorkOrder> {
        apply(
            ctx,
            input.id,
            Event::Terminate {
                reason: input.reason,
            },
        )
        .await
    }

    /// 评价: once, within the rating window.
    async fn rate_work_order(
        &self,
        ctx: &Context<'_>,
        input: RateWorkOrderInput,
    ) -> async_graphql::Result<WorkOrder> {
        apply(
            ctx,
            input.id,
            Event::Rate {
                score: input.score,
                comment: input.comment,
            },
        )
        .await
    }
}
