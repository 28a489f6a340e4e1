//! What may be booked and when: `serviceTypes` and `availableSlots` (the slots of a service
//! type from its skill group's working hours, holidays and 调休 honoured, with the places
//! left in each).

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use taxdesk_workflow::Workflow;
use taxdesk_workflow::booking::service_type::{Method, ServiceType as Type};
use taxdesk_workflow::booking::slots;

use crate::error::OrGql;
use crate::identity::viewer;

/// How an appointment is held.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookingMethod {
    /// 文字.
    Text,
    /// 语音.
    Voice,
    /// 视频.
    Video,
}

impl From<Method> for BookingMethod {
    fn from(m: Method) -> Self {
        match m {
            Method::Text => BookingMethod::Text,
            Method::Voice => BookingMethod::Voice,
            Method::Video => BookingMethod::Video,
        }
    }
}

impl From<BookingMethod> for Method {
    fn from(m: BookingMethod) -> Self {
        match m {
            BookingMethod::Text => Method::Text,
            BookingMethod::Voice => Method::Voice,
            BookingMethod::Video => Method::Video,
        }
    }
}

/// A bookable service (预约服务类型).
#[derive(SimpleObject, Debug, Clone)]
pub struct ServiceType {
    /// Stable id, as given to `bookAppointment` and `availableSlots`.
    pub code: String,
    pub name: String,
    /// The methods offered.
    pub methods: Vec<BookingMethod>,
    /// The skill group that hosts it; its working hours give the slots.
    pub skill_group: String,
    /// The length of one slot.
    pub slot_minutes: i32,
    /// Places per slot.
    pub capacity: i32,
    /// How many days ahead a taxpayer may book.
    pub bookable_days: i32,
}

impl From<&Type> for ServiceType {
    fn from(t: &Type) -> Self {
        ServiceType {
            code: t.code.clone(),
            name: t.name.clone(),
            methods: t.methods.iter().copied().map(Into::into).collect(),
            skill_group: t.skill_group.clone(),
            slot_minutes: i32::try_from(t.slot_minutes).unwrap_or(i32::MAX),
            capacity: t.capacity,
            bookable_days: i32::try_from(t.bookable_days).unwrap_or(i32::MAX),
        }
    }
}

#[derive(InputObject, Debug)]
pub struct AvailableSlotsInput {
    /// A service type's code.
    pub service_type: String,
    /// When given, the type must offer it.
    pub method: Option<BookingMethod>,
    /// Slots lying wholly inside `[from, to]` (at most 31 days are answered for).
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// A bookable slot, end exclusive.
#[derive(SimpleObject, Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Places left; a full slot is listed with 0.
    pub remaining: i32,
}

impl From<slots::Slot> for Slot {
    fn from(s: slots::Slot) -> Self {
        Slot {
            start: s.start,
            end: s.end,
            remaining: s.remaining,
        }
    }
}

#[derive(Default)]
pub struct SlotQuery;

#[Object]
impl SlotQuery {
    /// The service types that may be booked, for any signed-in user.
    async fn service_types(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ServiceType>> {
        viewer(ctx)?;
        let wf = ctx.data_unchecked::<Workflow>();
        Ok(wf.config().service_types.iter().map(Into::into).collect())
    }

    /// The slots of a service type that may be booked now (in the future, within its
    /// bookable days, inside its skill group's working hours), in order, with the places
    /// left. An unknown type, a method it does not offer, or `to` not after `from` is
    /// `INVALID_INPUT`.
    async fn available_slots(
        &self,
        ctx: &Context<'_>,
        input: AvailableSlotsInput,
    ) -> async_graphql::Result<Vec<Slot>> {
        viewer(ctx)?;
        let wf = ctx.data_unchecked::<Workflow>();
        let found = wf
            .available_slots(
                &input.service_type,
                input.method.map(Into::into),
                input.from,
                input.to,
            )
            .await
            .or_gql(ctx)?;
        Ok(found.into_iter().map(Into::into).collect())
    }
}
