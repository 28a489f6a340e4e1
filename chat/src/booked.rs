//! Sessions opened by a booking's start, and the no-show check after it.

use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use taxdesk_workflow::booking::machine::Event as BookingEvent;
use taxdesk_workflow::booking::service::OpenBookedSession;
use taxdesk_workflow::error::{Error, Result};
use taxdesk_workflow::{Actor, Role};

use crate::chat::Chat;
use crate::entities::{message, session};
use crate::session::{Event, Status};

impl Chat {
    /// Opens (or takes over) the taxpayer's session for a booking that starts now: ACTIVE
    /// with the booking's agent if they can take it, else QUEUED at the front of the group.
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
        self.wf
            .bookings()
            .bind_session(&o.booking_id, &s.id)
            .await?;
        if s.status != Status::Bot.as_ref() {
            // Already queued or with an agent: the booking joins that conversation.
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
        let applied = self
            .transition(
                &Actor::system(),
                &s.id,
                Event::BookingStarts {
                    agent_id: agent,
                    available,
                },
            )
            .await?;
        self.after(&applied).await;
        tracing::info!(booking.id = %o.booking_id, session.id = %s.id, status = %applied.session.status, "booked session opened");
        Ok(applied.session)
    }

    /// The no-show check: if the taxpayer has not written since the start, the booking is a
    /// no-show and its session is closed.
    pub async fn booking_no_show(&self, booking_id: &str) -> Result<()> {
        let bureau = Actor::new("system", Role::Admin);
        let b = match self.wf.bookings().get(&bureau, booking_id).await {
            Ok(b) => b,
            Err(Error::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        if b.status != "IN_SESSION" {
            return Ok(());
        }
        let spoke = match &b.chat_session_id {
            Some(sid) => {
                message::Entity::find()
                    .filter(message::Column::SessionId.eq(sid.as_str()))
                    .filter(message::Column::SenderId.eq(b.taxpayer_id.as_str()))
                    .filter(message::Column::CreatedAt.gte(b.start_at))
                    .count(self.wf.db())
                    .await?
                    > 0
            }
            None => false,
        };
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
        if let Some(sid) = &b.chat_session_id {
            // The session may change under us (a message, a timer): read it again and retry.
            for _ in 0..3 {
                let s = self.session(&bureau, sid).await?;
                let close = match s.status.as_str() {
                    "QUEUED" => Event::QueueTimeout,
                    "BOT" | "ACTIVE" => Event::IdleTimeout,
                    _ => break,
                };
                match self.apply(&Actor::system(), sid, close).await {
                    Ok(_) | Err(Error::Refused(_)) => break,
                    Err(Error::Conflict { .. }) => continue,
                    Err(e) => return Err(e),
                }
            }
        }
        tracing::info!(booking.id = %booking_id, "booking: no-show");
        Ok(())
    }
}
