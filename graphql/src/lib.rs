//! The GraphQL schema of taxdesk. Resolvers are thin: they read the viewer, call a service in
//! `taxdesk-workflow`, and map the result. Nothing here knows HTTP; the binary attaches the
//! viewer's [`Identity`] and a [`RequestId`] to each request.

mod admin;
mod appointment_slots;
mod attachment;
mod booking;
pub mod bounds;
mod budget;
mod chat;
mod common;
pub mod error;
pub mod guard;
mod hours;
pub mod identity;
mod input_bounds;
mod kb;
mod leave_message;
mod loaders;
mod personal;
pub mod rate_limit;
pub mod refusal;
mod review;
pub mod throttle;
mod work_order;

use async_graphql::dataloader::DataLoader;
use async_graphql::{MergedObject, MergedSubscription, Schema};
use taxdesk_workflow::Workflow;

pub use error::{Code, ErrorCodes};
pub use identity::{Identity, RequestId, Viewer};
pub use rate_limit::{RateLimiter, RatePolicy};
pub use throttle::ClientAddr;

#[derive(MergedObject, Default)]
pub struct Query(
    identity::MeQuery,
    work_order::WorkOrderQuery,
    leave_message::LeaveMessageQuery,
    personal::PersonalQuery,
    admin::AdminQuery,
    hours::HoursQuery,
    appointment_slots::SlotQuery,
    chat::ChatQuery,
    booking::BookingQuery,
    kb::KbQuery,
    review::ReviewQuery,
);

#[derive(MergedObject, Default)]
pub struct Mutation(
    work_order::WorkOrderMutation,
    leave_message::LeaveMessageMutation,
    personal::PersonalMutation,
    admin::AdminMutation,
    chat::ChatMutation,
    chat::ChannelMutation,
    booking::BookingMutation,
    kb::KbMutation,
    review::ReviewMutation,
    attachment::AttachmentMutation,
);

#[derive(MergedSubscription, Default)]
pub struct Subscription(personal::PersonalSubscription, chat::ChatSubscription);

pub type TaxdeskSchema = Schema<Query, Mutation, Subscription>;

/// Bounds on what one request may ask for.
#[derive(Debug, Clone)]
pub struct Limits {
    pub depth: usize,
    pub complexity: usize,
    pub recursive_depth: usize,
    /// Directives on one field (the library's check).
    pub directives: usize,
    pub introspection: bool,
    /// Bytes of query text.
    pub query_bytes: usize,
    /// Lexical tokens of query text.
    pub tokens: usize,
    /// Fields (and spreads) once every fragment is expanded.
    pub selections: usize,
    pub aliases: usize,
    /// Directives in the whole document, fragments expanded.
    pub document_directives: usize,
    /// Root fields of one mutation operation.
    pub mutations: usize,
    /// Items of any list in an argument or variable.
    pub list_items: usize,
    /// Characters of any string or ID in an argument or variable.
    pub string_chars: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            depth: 12,
            complexity: 2_000,
            recursive_depth: 32,
            directives: 16,
            introspection: true,
            query_bytes: 65_536,
            tokens: 5_000,
            selections: 2_000,
            aliases: 50,
            document_directives: 50,
            mutations: 10,
            list_items: 100,
            string_chars: 32_768,
        }
    }
}

pub fn build_schema(
    workflow: Workflow,
    chat: taxdesk_chat::Chat,
    limits: &Limits,
    limiter: RateLimiter,
    links: taxdesk_chat::download_link::DownloadLinks,
) -> TaxdeskSchema {
    let users = DataLoader::new(loaders::Users(workflow.clone()), tokio::spawn);
    let faqs = DataLoader::new(loaders::Faqs(chat.clone()), tokio::spawn);
    let mut b = Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .data(workflow)
    .data(users)
    .data(faqs)
    .data(chat)
    .data(limiter.clone())
    .data(links)
    .extension(ErrorCodes)
    .extension(bounds::RequestBounds::new(limits))
    .extension(throttle::Throttle::new(limiter))
    .limit_depth(limits.depth)
    .limit_complexity(limits.complexity)
    .limit_recursive_depth(limits.recursive_depth)
    .limit_directives(limits.directives);
    if !limits.introspection {
        b = b.disable_introspection();
    }
    b.finish()
}

/// The schema's SDL, as `taxdesk schema` prints it.
pub fn sdl() -> String {
    Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .finish()
    .sdl()
}
