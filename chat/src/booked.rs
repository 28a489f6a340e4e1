//! Sessions opened by a booking's start, and the no-show check after it.

use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use taxdesk_workflow::booking::machine::{Event as BookingEvent, Status as BookingStatus};
use taxdesk_workflow::booking::service::OpenBookedSession;
use taxdesk_workflow::error::{Error, Result};
use taxdesk_workflow::{Actor, Role};

use crate::chat::Chat;
use crate::entities::{message, session};
use crate::session::{Event, Status};

impl Chat {
    /// The booking's start job: the booking goes IN_SESSION and its chat session opens. Run
    /// again after a failure (the job's retry, or another worker once a crashed one's lease
    /// ran out), it finishes what the first run left undone: the machine refuses a second
    /// start, and a started booking without a bound session still gets its session (bound in
    /// the transaction that opens it, so a bound one is open).
    pub async fn start_booking(&self, booking_id: &str) -> Result<()> {
        let bookings = self.wf.bookings();
        let system = Actor::system();
        match bookings
            .apply(&system, booking_id, BookingEvent::Start)
            .await
        {
            Ok((_, Some(open))) => self.open_booked(&open).await.map(|_| ()),
            Ok((_, None)) | Err(Error::NotFound { .. }) => Ok(()),
            Err(Error::Refused(_)) => {
                let b = match bookings.get(&system, booking_id).await {
                    Ok(b) => b,
                    Err(Error::NotFound { .. }) => return Ok(()),
                    Err(e) => return Err(e),
                };
                if b.status != BookingStatus::InSession.as_ref() || b.chat_session_id.is_some() {
                    return Ok(());
                }
                tracing::info!(booking.id = %booking_id, "booking started earlier without its session: opening it now");
                self.open_booked(&bookings.session_to_open(&b))
                    .await
                    .map(|_| ())
            }
            Err(e) => Err(e),
        }
    }

    /// Opens (or takes over) the taxpayer's session for a booking that starts now: ACTIVE
    /// with the booking's agent if they can take it, else QUEUED at the front of the group.
    /// Safe to run again after a failure part-way: the booking is bound to its session in the
    /// transaction that opens it.
    pub async fn open_booked(&self, o: &OpenBookedSession) -> Result<session::Model> {
        let taxpayer = Actor::new(o.taxpayer_id.clone(), Role::Taxpayer);
        let s = self.open(&taxpayer).await?;
        session::Entity::update_many()
            .col_expr(
                session::Column::BookingId,
                sea_orm::sea_query::Expr::value(o.booking_id.clone()),
            )
            .col_expr(
                session::Column::SkillGroup,
                sea_orm::sea_query::Expr::value(if o.skill_group.is_empty() {
                    s.skill_group.clone()
                } else {
                    o.skill_group.clone()
                }),
            )
            .filter(session::Column::Id.eq(s.id.as_str()))
            .exec(self.wf.db())
            .await?;
        let bookings = self.wf.bookings();
        if s.status != Status::Bot.as_ref() {
            // Already queued or with an agent: the booking joins that conversation.
            bookings
                .bind_session(self.wf.db(), &o.booking_id, &s.id)
                .await?;
            tracing::info!(booking.id = %o.booking_id, session.id = %s.id, status = %s.status, "booked session joined the open one");
            return self.session(&taxpayer, &s.id).await;
        }
        let agent = o.agent_id.clone();
        let available = match &agent {
            Some(a) => {
                let _guard = self.agent_lock(a).await;
                self.can_take(a, &o.skill_group, true).await?
            }
            None => false,
        };
        // Bound in the transaction that opens the session: a bound booking's session
        // is open, so a retried start knows whether there is still work to do.
        let applied = self
            .transition_then(
                &Actor::system(),
                &s.id,
                Event::BookingStarts {
                    agent_id: agent,
                    available,
                },
                async |txn, staged| {
                    bookings
                        .bind_session(txn, &o.booking_id, &staged.after.id)
                        .await
                },
            )
            .await?;
        self.after(&applied).await;
        tracing::info!(booking.id = %o.booking_id, session.id = %applied.session.id, status = %applied.session.status, "booked session opened");
        Ok(applied.session)
    }

    /// The no-show check: if the taxpayer has not written since the start, the booking is a
    /// no-show and its session is closed.
    pub async fn booking_no_show(&self, booking_id: &str) -> Result<()> {
        let system = Actor::system();
        let b = match self.wf.bookings().get(&system, booking_id).await {
            Ok(b) => b,
            Err(Error::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        if b.status != BookingStatus::InSession.as_ref() {
            return Ok(());
        }
        let Some(sid) = b.chat_session_id.clone() else {
            // The bureau's side failed to open the session (the start job is retrying it):
            // the taxpayer had nowhere to come to.
            tracing::warn!(booking.id = %booking_id, "not a no-show: the booked session never opened");
            return Ok(());
        };
        let spoke = message::Entity::find()
            .filter(message::Column::SessionId.eq(sid.as_str()))
            .filter(message::Column::SenderId.eq(b.taxpayer_id.as_str()))
            .filter(message::Column::CreatedAt.gte(b.start_at))
            .count(self.wf.db())
            .await?
            > 0;
        if spoke {
            return Ok(());
        }
        match self
            .wf
            .bookings()
            .apply(&Actor::system(), booking_id, BookingEvent::NoShow)
            .await
        {
            Ok(_) | Err(Error::Refused(_)) => {}
            Err(e) => return Err(e),
        }
        // The session may change under us (a message, a timer): read it again and retry.
        for _ in 0..3 {
            let s = self.session(&system, &sid).await?;
            let close = match s.status.parse::<Status>() {
                Ok(Status::Queued) => Event::QueueTimeout,
                Ok(Status::Bot | Status::Active) => Event::IdleTimeout,
                _ => break,
            };
            match self.apply(&system, &sid, close).await {
                Ok(_) | Err(Error::Refused(_)) => break,
                Err(Error::Conflict { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        tracing::info!(booking.id = %booking_id, "booking: no-show");
        Ok(())
    }
}
