//! Appointments (预约) in GraphQL: book, invite, answer, cancel, reschedule, and the lists.

use async_graphql::{Context, Enum, ID, InputObject, Object};
use chrono::{DateTime, Utc};
use taxdesk_chat::Chat;
use taxdesk_workflow::Workflow;
use taxdesk_workflow::booking::machine::{Event, EventKind, Origin, Status};
use taxdesk_workflow::booking::service::{BookingFilter, NewBooking};
use taxdesk_workflow::entities::booking as row;

use crate::appointment_slots::BookingMethod;
use crate::chat::ChatSession;
use crate::common::{Conn, HistoryEntry, User, connection, page_request, user};
use crate::error::OrGql;
use crate::identity::{actor, bureau};

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookingOrigin {
    /// 我的发起.
    Mine,
    /// 税局邀请.
    BureauInvited,
}

impl From<BookingOrigin> for Origin {
    fn from(o: BookingOrigin) -> Self {
        match o {
            BookingOrigin::Mine => Origin::Mine,
            BookingOrigin::BureauInvited => Origin::BureauInvited,
        }
    }
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookingStatus {
    Invited,
    Confirmed,
    Rejected,
    Expired,
    Cancelled,
    InSession,
    Completed,
    NoShow,
}

impl From<BookingStatus> for Status {
    fn from(s: BookingStatus) -> Self {
        match s {
            BookingStatus::Invited => Status::Invited,
            BookingStatus::Confirmed => Status::Confirmed,
            BookingStatus::Rejected => Status::Rejected,
            BookingStatus::Expired => Status::Expired,
            BookingStatus::Cancelled => Status::Cancelled,
            BookingStatus::InSession => Status::InSession,
            BookingStatus::Completed => Status::Completed,
            BookingStatus::NoShow => Status::NoShow,
        }
    }
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookingAction {
    Accept,
    Reject,
    Expire,
    Cancel,
    Reschedule,
    Start,
    Finish,
    NoShow,
}

impl From<EventKind> for BookingAction {
    fn from(k: EventKind) -> Self {
        match k {
            EventKind::Accept => BookingAction::Accept,
            EventKind::Reject => BookingAction::Reject,
            EventKind::Expire => BookingAction::Expire,
            EventKind::Cancel => BookingAction::Cancel,
            EventKind::Reschedule => BookingAction::Reschedule,
            EventKind::Start => BookingAction::Start,
            EventKind::Finish => BookingAction::Finish,
            EventKind::NoShow => BookingAction::NoShow,
        }
    }
}

fn wf<'a>(ctx: &Context<'a>) -> &'a Workflow {
    ctx.data_unchecked::<Workflow>()
}

/// 预约.
pub struct Booking(pub row::Model);

#[Object]
impl Booking {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn origin(&self) -> BookingOrigin {
        if self.0.origin == "MINE" {
            BookingOrigin::Mine
        } else {
            BookingOrigin::BureauInvited
        }
    }
    async fn status(&self) -> &str {
        &self.0.status
    }
    async fn service_type(&self) -> &str {
        &self.0.service_type
    }
    /// TEXT, VOICE or VIDEO.
    async fn method(&self) -> &str {
        &self.0.method
    }
    async fn start(&self) -> DateTime<Utc> {
        self.0.start_at
    }
    async fn end(&self) -> DateTime<Utc> {
        self.0.end_at
    }
    async fn note(&self) -> Option<&str> {
        self.0.note.as_deref()
    }
    /// Why it was rejected or cancelled.
    async fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }
    async fn taxpayer(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        user(ctx, &self.0.taxpayer_id, Some("TAXPAYER")).await
    }
    /// The staff member who hosts it.
    async fn agent(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        match &self.0.agent_id {
            Some(a) => user(ctx, a, Some("STAFF")).await.map(Some),
            None => Ok(None),
        }
    }
    async fn chat_session(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<ChatSession>> {
        let Some(id) = &self.0.chat_session_id else {
            return Ok(None);
        };
        let a = actor(ctx)?;
        Ok(ctx
            .data_unchecked::<Chat>()
            .session(&a, id)
            .await
            .ok()
            .map(ChatSession))
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
        let rows = wf(ctx).bookings().history(&self.0.id).await.or_gql(ctx)?;
        Ok(rows.into_iter().map(HistoryEntry::from).collect())
    }
    async fn allowed_actions(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<BookingAction>> {
        let a = actor(ctx)?;
        Ok(wf(ctx)
            .bookings()
            .allowed(&a, &self.0)
            .into_iter()
            .map(Into::into)
            .collect())
    }
}

#[derive(InputObject)]
pub struct BookAppointmentInput {
    pub service_type: String,
    pub method: BookingMethod,
    /// A slot start from `availableSlots`.
    pub start: DateTime<Utc>,
    pub note: Option<String>,
}

#[derive(InputObject)]
pub struct InviteTaxpayerInput {
    /// The invited taxpayer's user id (token subject).
    pub taxpayer_id: ID,
    pub service_type: String,
    pub method: BookingMethod,
    /// Any time inside working hours.
    pub start: DateTime<Utc>,
    pub note: Option<String>,
}

#[derive(InputObject)]
pub struct RejectInvitationInput {
    pub id: ID,
    pub reason: Option<String>,
}

#[derive(InputObject)]
pub struct CancelBookingInput {
    pub id: ID,
    /// Required when staff cancel.
    pub reason: Option<String>,
}

#[derive(InputObject)]
pub struct RescheduleBookingInput {
    pub id: ID,
    pub start: DateTime<Utc>,
}

#[derive(InputObject, Default)]
pub struct BookingsInput {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub agent_id: Option<ID>,
    pub status: Option<BookingStatus>,
}

fn method_code(m: BookingMethod) -> String {
    taxdesk_workflow::booking::service_type::Method::from(m)
        .as_ref()
        .to_string()
}

#[derive(Default)]
pub struct BookingQuery;

#[Object]
impl BookingQuery {
    async fn booking(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Booking>> {
        let a = actor(ctx)?;
        Ok(Some(Booking(
            wf(ctx).bookings().get(&a, &id).await.or_gql(ctx)?,
        )))
    }

    /// 我的预约: MINE (我的发起) or BUREAU_INVITED (税局邀请); both when omitted.
    #[graphql(complexity = "crate::common::page_cost(first, last, child_complexity)")]
    async fn my_bookings(
        &self,
        ctx: &Context<'_>,
        origin: Option<BookingOrigin>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Conn<Booking>> {
        let a = actor(ctx)?;
        let page = wf(ctx)
            .bookings()
            .mine(
                &a,
                origin.map(Into::into),
                &page_request(first, after, last, before),
            )
            .await
            .or_gql(ctx)?;
        Ok(connection(page, |b| b.id.clone(), Booking))
    }

    /// Staff: bookings by time, agent and status.
    #[graphql(complexity = "crate::common::page_cost(first, last, child_complexity)")]
    async fn bookings(
        &self,
        ctx: &Context<'_>,
        input: Option<BookingsInput>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Conn<Booking>> {
        let a = bureau(ctx)?;
        let i = input.unwrap_or_default();
        let f = BookingFilter {
            from: i.from,
            to: i.to,
            agent_id: i.agent_id.map(|x| x.0),
            status: i.status.map(Into::into),
        };
        let page = wf(ctx)
            .bookings()
            .list(&a, &f, &page_request(first, after, last, before))
            .await
            .or_gql(ctx)?;
        Ok(connection(page, |b| b.id.clone(), Booking))
    }
}

async fn apply(ctx: &Context<'_>, id: &str, event: Event) -> async_graphql::Result<Booking> {
    let a = actor(ctx)?;
    Ok(Booking(
        wf(ctx).bookings().apply(&a, id, event).await.or_gql(ctx)?.0,
    ))
}

#[derive(Default)]
pub struct BookingMutation;

#[Object]
impl BookingMutation {
    /// A taxpayer books a slot (`SLOT_FULL` when taken).
    async fn book_appointment(
        &self,
        ctx: &Context<'_>,
        input: BookAppointmentInput,
    ) -> async_graphql::Result<Booking> {
        let a = actor(ctx)?;
        let b = wf(ctx)
            .bookings()
            .book(
                &a,
                NewBooking {
                    service_type: input.service_type,
                    method: method_code(input.method),
                    start: input.start,
                    note: input.note,
                    taxpayer_id: None,
                },
            )
            .await
            .or_gql(ctx)?;
        Ok(Booking(b))
    }

    /// Staff invite a taxpayer.
    async fn invite_taxpayer(
        &self,
        ctx: &Context<'_>,
        input: InviteTaxpayerInput,
    ) -> async_graphql::Result<Booking> {
        let a = actor(ctx)?;
        let b = wf(ctx)
            .bookings()
            .invite(
                &a,
                NewBooking {
                    service_type: input.service_type,
                    method: method_code(input.method),
                    start: input.start,
                    note: input.note,
                    taxpayer_id: Some(input.taxpayer_id.0),
                },
            )
            .await
            .or_gql(ctx)?;
        Ok(Booking(b))
    }

    async fn accept_invitation(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Booking> {
        apply(ctx, &id, Event::Accept).await
    }

    async fn reject_invitation(
        &self,
        ctx: &Context<'_>,
        input: RejectInvitationInput,
    ) -> async_graphql::Result<Booking> {
        apply(
            ctx,
            &input.id,
            Event::Reject {
                reason: input.reason,
            },
        )
        .await
    }

    /// The taxpayer before the cut-off (`TOO_LATE_TO_CANCEL` after); staff any time with a reason.
    async fn cancel_booking(
        &self,
        ctx: &Context<'_>,
        input: CancelBookingInput,
    ) -> async_graphql::Result<Booking> {
        apply(
            ctx,
            &input.id,
            Event::Cancel {
                reason: input.reason,
            },
        )
        .await
    }

    async fn reschedule_booking(
        &self,
        ctx: &Context<'_>,
        input: RescheduleBookingInput,
    ) -> async_graphql::Result<Booking> {
        let a = actor(ctx)?;
        Ok(Booking(
            wf(ctx)
                .bookings()
                .reschedule(&a, &input.id, input.start)
                .await
                .or_gql(ctx)?
                .0,
        ))
    }
}
