//! 个人中心: 我的消息 (notifications), 我的待办 (to-dos) and unread counts, with the
//! `notifications` subscription.

use std::collections::{HashSet, VecDeque};

use async_graphql::{Context, Enum, ID, Object, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures_util::Stream;
use taxdesk_workflow::Workflow;
use taxdesk_workflow::entities::notification;
use taxdesk_workflow::fanout::RecvError;
use taxdesk_workflow::todo::TodoKind as Kind;

use crate::common::{Conn, connection, page_request};
use crate::error::OrGql;
use crate::identity::viewer;

#[derive(SimpleObject, Debug, Clone)]
pub struct Notification {
    pub id: ID,
    /// e.g. `WORK_ORDER_COMPLETED`.
    pub kind: String,
    pub title: String,
    pub body: String,
    /// What it is about (`WORK_ORDER`, ...) and its id, for a link.
    pub target_kind: Option<String>,
    pub target_id: Option<ID>,
    pub read: bool,
    pub read_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<notification::Model> for Notification {
    fn from(n: notification::Model) -> Self {
        Notification {
            id: ID(n.id),
            kind: n.kind,
            title: n.title,
            body: n.body,
            target_kind: n.target_kind,
            target_id: n.target_id.map(ID),
            read: n.read_at.is_some(),
            read_at: n.read_at,
            created_at: n.created_at,
        }
    }
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TodoKind {
    AnswerInvitation,
    RateWorkOrder,
    RateChat,
    BookingSoon,
    ReadReply,
}

impl From<Kind> for TodoKind {
    fn from(k: Kind) -> Self {
        match k {
            Kind::AnswerInvitation => TodoKind::AnswerInvitation,
            Kind::RateWorkOrder => TodoKind::RateWorkOrder,
            Kind::RateChat => TodoKind::RateChat,
            Kind::BookingSoon => TodoKind::BookingSoon,
            Kind::ReadReply => TodoKind::ReadReply,
        }
    }
}

#[derive(SimpleObject, Debug, Clone)]
pub struct Todo {
    pub kind: TodoKind,
    pub title: String,
    pub target_id: ID,
    pub due_at: Option<DateTime<Utc>>,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct UnreadCounts {
    pub notifications: u64,
    pub todos: u64,
    pub leave_message_replies: u64,
}

#[derive(Default)]
pub struct PersonalQuery;

#[Object]
impl PersonalQuery {
    /// 我的消息, newest first.
    #[graphql(complexity = "crate::common::page_cost(first, last, child_complexity)")]
    async fn my_notifications(
        &self,
        ctx: &Context<'_>,
        unread_only: Option<bool>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Conn<Notification>> {
        let v = viewer(ctx)?;
        let wf = ctx.data_unchecked::<Workflow>();
        let page = wf
            .notifications(
                &v.id,
                unread_only.unwrap_or(false),
                &page_request(first, after, last, before),
            )
            .await
            .or_gql(ctx)?;
        Ok(connection(page, |n| n.id.clone(), Notification::from))
    }

    /// 我的待办.
    async fn my_todos(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Todo>> {
        let v = viewer(ctx)?;
        let wf = ctx.data_unchecked::<Workflow>();
        let mut todos = wf.todos(&v.id).await.or_gql(ctx)?;
        todos.extend(
            ctx.data_unchecked::<taxdesk_chat::Chat>()
                .rate_todos(&v.id)
                .await
                .or_gql(ctx)?,
        );
        Ok(todos
            .into_iter()
            .map(|t| Todo {
                kind: t.kind.into(),
                title: t.title,
                target_id: ID(t.target_id),
                due_at: t.due_at,
            })
            .collect())
    }

    /// The badges of the personal centre.
    async fn unread_counts(&self, ctx: &Context<'_>) -> async_graphql::Result<UnreadCounts> {
        let v = viewer(ctx)?;
        let wf = ctx.data_unchecked::<Workflow>();
        Ok(UnreadCounts {
            notifications: wf.unread_notifications(&v.id).await.or_gql(ctx)?,
            todos: (wf.todos(&v.id).await.or_gql(ctx)?.len()
                + ctx
                    .data_unchecked::<taxdesk_chat::Chat>()
                    .rate_todos(&v.id)
                    .await
                    .or_gql(ctx)?
                    .len()) as u64,
            leave_message_replies: wf
                .leave_messages()
                .unread_replies(&v.id)
                .await
                .or_gql(ctx)?,
        })
    }
}

#[derive(Default)]
pub struct PersonalMutation;

#[Object]
impl PersonalMutation {
    /// Marks the viewer's notifications read and returns them; ids that are not the viewer's
    /// are ignored.
    async fn mark_notifications_read(
        &self,
        ctx: &Context<'_>,
        ids: Vec<ID>,
    ) -> async_graphql::Result<Vec<Notification>> {
        let v = viewer(ctx)?;
        if ids.len() > 500 {
            return Err(crate::error::coded(
                crate::Code::InvalidInput,
                "一次最多标记 500 条",
                "at most 500 ids at a time",
            ));
        }
        let ids: Vec<String> = ids.into_iter().map(|i| i.0).collect();
        let wf = ctx.data_unchecked::<Workflow>();
        let rows = wf.mark_notifications_read(&v.id, &ids).await.or_gql(ctx)?;
        Ok(rows.into_iter().map(Notification::from).collect())
    }

    /// Marks every notification of the viewer read; returns how many changed.
    async fn mark_all_notifications_read(&self, ctx: &Context<'_>) -> async_graphql::Result<u64> {
        let v = viewer(ctx)?;
        let wf = ctx.data_unchecked::<Workflow>();
        wf.mark_all_notifications_read(&v.id).await.or_gql(ctx)
    }
}

#[derive(Default)]
pub struct PersonalSubscription;

/// How far back before the last delivered notification a catch-up reads: notifications of
/// other instances commit out of `created_at` order by up to a transaction's length.
const CATCH_UP_MARGIN_SECONDS: i64 = 30;

/// The ids a subscriber delivered lately, so a catch-up never sends one twice.
struct Delivered {
    order: VecDeque<String>,
    ids: HashSet<String>,
}

impl Delivered {
    const KEEP: usize = 1000;

    fn new() -> Delivered {
        Delivered {
            order: VecDeque::new(),
            ids: HashSet::new(),
        }
    }

    /// Records `id`; false if it was delivered already.
    fn first_time(&mut self, id: &str) -> bool {
        if !self.ids.insert(id.to_string()) {
            return false;
        }
        self.order.push_back(id.to_string());
        if self.order.len() > Self::KEEP
            && let Some(old) = self.order.pop_front()
        {
            self.ids.remove(&old);
        }
        true
    }
}

#[Subscription]
impl PersonalSubscription {
    /// The viewer's notifications, pushed as they are written on any instance, each once.
    /// After a resync (events from other instances may have been lost) the ones written
    /// since the last delivered are read from the database.
    async fn notifications(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = Notification>> {
        let me = viewer(ctx)?.id.clone();
        let wf = ctx.data_unchecked::<Workflow>().clone();
        let mut feed = wf.notifications_of(&me);
        let mut resyncs = wf.notification_resyncs();
        resyncs.mark_unchanged();
        // Nothing older than the subscription itself is sent.
        let started = wf.now();
        let mut since = started;
        let mut delivered = Delivered::new();
        Ok(async_stream::stream! {
            let mut resync_open = true;
            loop {
                let wake = if resync_open {
                    tokio::select! {
                        n = feed.recv() => Some(n),
                        r = resyncs.changed() => {
                            resync_open = r.is_ok();
                            None
                        }
                    }
                } else {
                    Some(feed.recv().await)
                };
                match wake {
                    Some(Ok(n)) => {
                        if delivered.first_time(&n.id) {
                            since = since.max(n.created_at);
                            yield Notification::from(n);
                        }
                    }
                    Some(Err(RecvError::Closed)) => break,
                    Some(Err(RecvError::Lagged(_))) | None => {
                        let from = (since - chrono::Duration::seconds(CATCH_UP_MARGIN_SECONDS)).max(started);
                        match wf.notifications_since(&me, from).await {
                            Ok(missed) => {
                                for n in missed {
                                    if delivered.first_time(&n.id) {
                                        since = since.max(n.created_at);
                                        yield Notification::from(n);
                                    }
                                }
                            }
                            Err(e) => tracing::warn!(user.id = %me, error = %e, "notification subscriber: catching up"),
                        }
                    }
                }
            }
        })
    }
}
