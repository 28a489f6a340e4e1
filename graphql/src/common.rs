//! Types shared by every part of the schema: roles, people, history rows, and cursor pages.

use async_graphql::connection::{Connection, Edge};
use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, Enum, ID, SimpleObject};
use chrono::{DateTime, Utc};
use taxdesk_workflow::entities::user;
use taxdesk_workflow::page::{Page, PageRequest};
use taxdesk_workflow::users::role_of;

use crate::error::load_failed;
use crate::loaders::Users;

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Taxpayer,
    Staff,
    Admin,
    /// The scheduler and other automatic processes.
    System,
}

impl From<taxdesk_workflow::Role> for Role {
    fn from(r: taxdesk_workflow::Role) -> Self {
        match r {
            taxdesk_workflow::Role::Taxpayer => Role::Taxpayer,
            taxdesk_workflow::Role::Staff => Role::Staff,
            taxdesk_workflow::Role::Admin => Role::Admin,
            taxdesk_workflow::Role::System => Role::System,
        }
    }
}

impl Role {
    pub fn parse(s: &str) -> Role {
        s.parse::<taxdesk_workflow::Role>()
            .map(Role::from)
            .unwrap_or(Role::System)
    }
}

/// A person (or the system) as others see them.
#[derive(SimpleObject, Debug, Clone)]
pub struct User {
    pub id: ID,
    pub role: Role,
    pub display_name: String,
}

impl From<user::Model> for User {
    fn from(u: user::Model) -> Self {
        User {
            role: role_of(&u).into(),
            id: ID(u.id),
            display_name: u.display_name,
        }
    }
}

/// Loads a user by id through the batching loader; unknown ids (the system) still resolve.
pub(crate) async fn user(
    ctx: &Context<'_>,
    id: &str,
    role: Option<&str>,
) -> async_graphql::Result<User> {
    let loaded = ctx
        .data_unchecked::<DataLoader<Users>>()
        .load_one(id.to_string())
        .await
        .map_err(|e| load_failed(ctx, "users", &e))?;
    Ok(match loaded {
        Some(u) => u.into(),
        None => User {
            id: ID(id.to_string()),
            role: role.map(Role::parse).unwrap_or(Role::System),
            display_name: match id {
                "system" => "系统".into(),
                // The virtual agent goes by its configured name (悦悦), never "bot".
                "bot" => ctx
                    .data_opt::<taxdesk_chat::Chat>()
                    .map(|c| c.bot_profile().name.clone())
                    .unwrap_or_else(|| taxdesk_chat::bot::DEFAULT_BOT_NAME.into()),
                _ => id.to_string(),
            },
        },
    })
}

/// One step in a machine's history.
#[derive(SimpleObject, Debug, Clone)]
#[graphql(complex)]
pub struct HistoryEntry {
    pub at: DateTime<Utc>,
    #[graphql(skip)]
    pub actor_id: String,
    #[graphql(skip)]
    pub actor_role: String,
    pub event: String,
    pub from_status: Option<String>,
    pub to_status: String,
    pub note: Option<String>,
}

#[async_graphql::ComplexObject]
impl HistoryEntry {
    async fn actor(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        user(ctx, &self.actor_id, Some(&self.actor_role)).await
    }
}

/// Every machine's history table has the same columns; each row becomes one entry.
macro_rules! history_from {
    ($($model:ty),* $(,)?) => {
        $(impl From<$model> for HistoryEntry {
            fn from(h: $model) -> Self {
                HistoryEntry {
                    at: h.at,
                    actor_id: h.actor_id,
                    actor_role: h.actor_role,
                    event: h.event,
                    from_status: h.from_status,
                    to_status: h.to_status,
                    note: h.note,
                }
            }
        })*
    };
}

history_from!(
    taxdesk_workflow::entities::work_order_history::Model,
    taxdesk_workflow::entities::booking_history::Model,
    taxdesk_workflow::entities::leave_message_history::Model,
    taxdesk_chat::entities::session_history::Model,
    taxdesk_chat::entities::channel_history::Model,
    taxdesk_chat::entities::asked_question_history::Model,
);

/// Extra fields on every connection.
#[derive(SimpleObject, Debug, Clone, Copy)]
pub struct Totals {
    /// How many rows match, on all pages.
    pub total_count: u64,
}

pub type Conn<N> = Connection<String, N, Totals>;

/// A page costs its children once per row it may return.
pub(crate) fn page_cost(first: Option<i32>, last: Option<i32>, child: usize) -> usize {
    let rows = first.or(last).unwrap_or(20).clamp(1, 100) as usize;
    1 + rows * child
}

pub(crate) fn page_request(
    first: Option<i32>,
    after: Option<String>,
    last: Option<i32>,
    before: Option<String>,
) -> PageRequest {
    PageRequest {
        first,
        after,
        last,
        before,
    }
}

pub(crate) fn connection<T, N>(
    page: Page<T>,
    key: impl Fn(&T) -> String,
    node: impl Fn(T) -> N,
) -> Conn<N>
where
    N: async_graphql::OutputType,
{
    let mut c = Connection::with_additional_fields(
        page.has_previous,
        page.has_next,
        Totals {
            total_count: page.total,
        },
    );
    c.edges = page
        .items
        .into_iter()
        .map(|t| Edge::new(key(&t), node(t)))
        .collect();
    c
}
