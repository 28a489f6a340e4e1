//! The GraphQL schema of taxdesk. Resolvers are thin: they read the viewer, call a service in
//! `taxdesk-workflow`, and map the result. Nothing here knows HTTP; the binary attaches the
//! viewer's [`Identity`] and a [`RequestId`] to each request.

mod admin;
mod appointment_slots;
mod attachment;
mod booking;
mod chat;
mod common;
pub mod error;
pub mod guard;
mod hours;
pub mod identity;
mod kb;
mod leave_message;
mod loaders;
mod personal;
mod review;
mod work_order;

use async_graphql::dataloader::DataLoader;
use async_graphql::{MergedObject, MergedSubscription, Schema};
use taxdesk_workflow::Workflow;

pub use error::{Code, ErrorCodes};
pub use identity::{Identity, RequestId, Viewer};

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
    pub directives: usize,
    pub introspection: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            depth: 12,
            complexity: 2_000,
            recursive_depth: 32,
            directives: 16,
            introspection: true,
        }
    }
}

pub fn build_schema(
    workflow: Workflow,
    chat: taxdesk_chat::Chat,
    limits: &Limits,
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
    .extension(ErrorCodes)
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
