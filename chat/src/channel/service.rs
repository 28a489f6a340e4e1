//! Applies the remote-assistance and call machines to `chat_channels` rows (one row per
//! request or invitation), and relays WebRTC signalling between the two participants.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseTransaction, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    TransactionTrait,
};
use taxdesk_workflow::error::{Error, Result};
use taxdesk_workflow::jobs::{self, NewJob};
use taxdesk_workflow::{Actor, Refusal, Role, metrics};

use super::{ChannelKind, Effect, Media, SignalKind, assist, call};
use crate::chat::Chat;
use crate::entities::{channel, channel_history, session};
use crate::hub::{ChatEvent, ChatEventKind};
use crate::session::Status as SessionStatus;
use crate::session::service::{new_id, participants};

/// An event for one of the two machines.
#[derive(Debug, Clone)]
pub enum ChannelEvent {
    Assist(assist::Event),
    Call(call::Event),
}

impl ChannelEvent {
    fn kind(&self) -> ChannelKind {
        match self {
            ChannelEvent::Assist(_) => ChannelKind::RemoteAssist,
            ChannelEvent::Call(_) => ChannelKind::Call,
        }
    }

    fn name(&self) -> String {
        match self {
            ChannelEvent::Assist(e) => e.kind().as_ref().to_string(),
            ChannelEvent::Call(e) => e.kind().as_ref().to_string(),
        }
    }

    fn note(&self) -> Option<String> {
        match self {
            ChannelEvent::Assist(e) => e.note(),
            ChannelEvent::Call(e) => e.note(),
        }
    }
}

/// One decision, whichever machine made it.
struct Outcome {
    to: String,
    effects: Vec<Effect>,
}

fn decide(
    policy: &call::Policy,
    row: Option<&channel::Model>,
    s: &session::Model,
    actor: &Actor,
    event: &ChannelEvent,
    now: DateTime<Utc>,
) -> std::result::Result<Outcome, Refusal> {
    match event {
        ChannelEvent::Assist(e) => {
            let d = assist::decide(&assist_snapshot(row, s), actor, e, now)?;
            Ok(Outcome {
                to: d.to.as_ref().to_string(),
                effects: d.effects,
            })
        }
        ChannelEvent::Call(e) => {
            let d = call::decide(policy, &call_snapshot(row, s), actor, e, now)?;
            Ok(Outcome {
                to: d.to.as_ref().to_string(),
                effects: d.effects,
            })
        }
    }
}

fn assist_snapshot(row: Option<&channel::Model>, s: &session::Model) -> assist::Snapshot {
    let active = s.status == SessionStatus::Active.as_ref();
    let mut snap = assist::Snapshot::new(&s.taxpayer_id, s.agent_id.clone(), active);
    if let Some(r) = row {
        snap.status = assist::Status::from_str(&r.status).ok();
        snap.requested_at = Some(r.created_at);
        snap.ended_at = r.ended_at;
    }
    snap
}

fn call_snapshot(row: Option<&channel::Model>, s: &session::Model) -> call::Snapshot {
    let active = s.status == SessionStatus::Active.as_ref();
    let mut snap = call::Snapshot::new(&s.taxpayer_id, s.agent_id.clone(), active);
    if let Some(r) = row {
        snap.status = call::Status::from_str(&r.status).ok();
        snap.media = r.media.as_deref().and_then(|m| Media::from_str(m).ok());
        snap.invited_at = Some(r.created_at);
        snap.ended_at = r.ended_at;
    }
    snap
}

fn media_of(e: &ChannelEvent) -> Option<String> {
    match e {
        ChannelEvent::Call(call::Event::Invite { media }) => Some(media.as_ref().to_string()),
        _ => None,
    }
}

fn is_unique_violation(e: &sea_orm::DbErr) -> bool {
    matches!(
        e.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

const FINAL: [&str; 5] = ["ENDED", "DECLINED", "CANCELLED", "EXPIRED", "REJECTED"];

/// The session's channels not yet in a final status, newest first.
fn in_play(session_id: &str) -> sea_orm::Select<channel::Entity> {
    channel::Entity::find()
        .filter(channel::Column::SessionId.eq(session_id))
        .filter(channel::Column::Status.is_not_in(FINAL))
        .order_by_desc(channel::Column::CreatedAt)
}

impl Chat {
    async fn open_channel(
        &self,
        session_id: &str,
        kind: ChannelKind,
    ) -> Result<Option<channel::Model>> {
        Ok(in_play(session_id)
            .filter(channel::Column::Kind.eq(kind.as_ref()))
            .one(self.wf.db())
            .await?)
    }

    /// Opens a channel (a request or an invitation) in a session.
    pub async fn open_channel_in(
        &self,
        actor: &Actor,
        session_id: &str,
        event: ChannelEvent,
    ) -> Result<channel::Model> {
        let s = self.session(actor, session_id).await?;
        if !participants(&s).contains(&actor.id) {
            return Err(Error::not_found("chat session", session_id));
        }
        let existing = self.open_channel(&s.id, event.kind()).await?;
        self.apply_channel(actor, &s, existing, event).await
    }

    /// The channels of session `s` still in play (requested, invited or active), newest first.
    pub async fn open_channels(&self, s: &session::Model) -> Result<Vec<channel::Model>> {
        Ok(in_play(&s.id).all(self.wf.db()).await?)
    }

    /// What `actor` may do with the channel now (drives `Channel.allowedActions`): the
    /// machine's events other than opening one, e.g. `ACCEPT`, `DECLINE`, `CANCEL`, `END`.
    pub async fn channel_allowed(
        &self,
        actor: &Actor,
        row: &channel::Model,
    ) -> Result<Vec<String>> {
        let Some(s) = session::Entity::find_by_id(row.session_id.as_str())
            .one(self.wf.db())
            .await?
        else {
            return Ok(vec![]);
        };
        let now = self.wf.now();
        Ok(if row.kind == ChannelKind::Call.as_ref() {
            let policy = call::Policy {
                answer_timeout: self.config.call_answer_timeout,
            };
            call::allowed(&policy, &call_snapshot(Some(row), &s), actor, now)
                .into_iter()
                .filter(|k| *k != call::EventKind::Invite)
                .map(|k| k.as_ref().to_string())
                .collect()
        } else {
            assist::allowed(&assist_snapshot(Some(row), &s), actor, now)
                .into_iter()
                .filter(|k| *k != assist::EventKind::Request)
                .map(|k| k.as_ref().to_string())
                .collect()
        })
    }

    /// An event on an existing channel.
    pub async fn channel_event(
        &self,
        actor: &Actor,
        channel_id: &str,
        event: ChannelEvent,
    ) -> Result<channel::Model> {
        let row = channel::Entity::find_by_id(channel_id)
            .one(self.wf.db())
            .await?
            .ok_or_else(|| Error::not_found("channel", channel_id))?;
        let s = session::Entity::find_by_id(row.session_id.as_str())
            .one(self.wf.db())
            .await?
            .ok_or_else(|| Error::not_found("channel", channel_id))?;
        if actor.role != Role::System && !participants(&s).contains(&actor.id) {
            return Err(Error::not_found("channel", channel_id));
        }
        self.apply_channel(actor, &s, Some(row), event).await
    }

    /// `endRemoteAssist` / `endCall`: a request or invitation that was never answered is
    /// withdrawn (its initiator cancels it); an active one ends.
    pub async fn end_channel(&self, actor: &Actor, channel_id: &str) -> Result<channel::Model> {
        let row = channel::Entity::find_by_id(channel_id)
            .one(self.wf.db())
            .await?
            .ok_or_else(|| Error::not_found("channel", channel_id))?;
        let pending = matches!(row.status.as_str(), "REQUESTED" | "INVITED");
        let event = match (row.kind.as_str(), pending) {
            ("CALL", true) => ChannelEvent::Call(call::Event::Cancel),
            ("CALL", false) => ChannelEvent::Call(call::Event::End),
            (_, true) => ChannelEvent::Assist(assist::Event::Cancel),
            (_, false) => ChannelEvent::Assist(assist::Event::End),
        };
        self.channel_event(actor, channel_id, event).await
    }

    async fn apply_channel(
        &self,
        actor: &Actor,
        s: &session::Model,
        row: Option<channel::Model>,
        event: ChannelEvent,
    ) -> Result<channel::Model> {
        let now = self.wf.now();
        let policy = call::Policy {
            answer_timeout: self.config.call_answer_timeout,
        };
        let out = decide(&policy, row.as_ref(), s, actor, &event, now).inspect_err(|r| {
            tracing::info!(code = r.code.as_ref(), event = %event.name(), "channel event refused: {}", r.en);
        })?;
        let txn = self.wf.db().begin().await?;
        let after = match &row {
            None => {
                let c = channel::Model {
                    id: new_id(),
                    session_id: s.id.clone(),
                    kind: event.kind().as_ref().into(),
                    media: media_of(&event),
                    status: out.to.clone(),
                    initiator_id: actor.id.clone(),
                    version: 1,
                    created_at: now,
                    updated_at: now,
                    ended_at: None,
                };
                let inserted = channel::Entity::insert(c.clone().into_active_model())
                    .exec_without_returning(&txn)
                    .await;
                match inserted {
                    Ok(_) => c,
                    Err(e) if is_unique_violation(&e) => {
                        txn.rollback().await?;
                        return Err(self.lost_opening_race(&policy, s, actor, &event).await);
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Some(r) => {
                let final_now = FINAL.contains(&out.to.as_str());
                let res = channel::Entity::update_many()
                    .col_expr(channel::Column::Status, Expr::value(out.to.clone()))
                    .col_expr(channel::Column::Version, Expr::value(r.version + 1))
                    .col_expr(channel::Column::UpdatedAt, Expr::value(now))
                    .col_expr(
                        channel::Column::EndedAt,
                        Expr::value(if final_now { Some(now) } else { r.ended_at }),
                    )
                    .filter(channel::Column::Id.eq(r.id.as_str()))
                    .filter(channel::Column::Version.eq(r.version))
                    .exec(&txn)
                    .await?;
                if res.rows_affected != 1 {
                    return Err(Error::Conflict {
                        what: "channel",
                        id: r.id.clone(),
                    });
                }
                channel::Model {
                    status: out.to.clone(),
                    version: r.version + 1,
                    updated_at: now,
                    ended_at: if final_now { Some(now) } else { r.ended_at },
                    ..r.clone()
                }
            }
        };
        record(
            &txn,
            &after,
            row.as_ref().map(|r| r.status.clone()),
            actor,
            &event,
            now,
        )
        .await?;
        for e in &out.effects {
            match e {
                Effect::ScheduleExpiry { at } => {
                    let job = NewJob::new(
                        call::EXPIRE_JOB_KIND,
                        format!("{}:{}", call::EXPIRE_JOB_KIND, after.id),
                        *at,
                        serde_json::json!({ "channelId": after.id }),
                    );
                    jobs::schedule(&txn, job, now).await?;
                }
                Effect::CancelExpiry => {
                    jobs::cancel(
                        &txn,
                        &format!("{}:{}", call::EXPIRE_JOB_KIND, after.id),
                        now,
                    )
                    .await?;
                }
                Effect::Publish(_) => {}
            }
        }
        txn.commit().await?;
        self.wf.jobs_written();
        metrics::transition(
            if after.kind == "CALL" {
                "call"
            } else {
                "remote_assist"
            },
            &event.name(),
        );
        tracing::info!(channel.id = %after.id, kind = %after.kind, to = %after.status, "channel transition");
        let kind = if after.kind == "CALL" {
            ChatEventKind::Call(after.clone())
        } else {
            ChatEventKind::RemoteAssist(after.clone())
        };
        self.hub.publish(ChatEvent {
            session_id: s.id.clone(),
            audience: participants(s),
            kind,
        });
        Ok(after)
    }

    /// Another request or invitation of the same kind was opened in the session between our
    /// check and our insert (the database keeps one in play): decided again against it, the
    /// event gets the refusal it would have had in turn ("already requested"), nothing written.
    async fn lost_opening_race(
        &self,
        policy: &call::Policy,
        s: &session::Model,
        actor: &Actor,
        event: &ChannelEvent,
    ) -> Error {
        tracing::info!(session.id = %s.id, event = %event.name(), "lost a race to open a channel");
        let winner = match self.open_channel(&s.id, event.kind()).await {
            Ok(w) => w,
            Err(e) => return e,
        };
        match decide(policy, winner.as_ref(), s, actor, event, self.wf.now()) {
            Err(refusal) => refusal.into(),
            Ok(_) => Error::Conflict {
                what: "chat session",
                id: s.id.clone(),
            },
        }
    }

    /// `sendSignal`: relays an OFFER, ANSWER or ICE payload to the other participant while
    /// the channel is ACTIVE. Nothing else is relayed (remote assistance is view only).
    pub async fn send_signal(
        &self,
        actor: &Actor,
        channel_id: &str,
        kind: SignalKind,
        payload: &str,
    ) -> Result<()> {
        if payload.len() > self.config.signal_limit {
            return Err(Error::input(
                "payload",
                format!("信令内容超过 {} 字节上限", self.config.signal_limit),
                format!(
                    "the payload is larger than {} bytes",
                    self.config.signal_limit
                ),
            ));
        }
        let row = channel::Entity::find_by_id(channel_id)
            .one(self.wf.db())
            .await?
            .ok_or_else(|| Error::not_found("channel", channel_id))?;
        let s = session::Entity::find_by_id(row.session_id.as_str())
            .one(self.wf.db())
            .await?
            .ok_or_else(|| Error::not_found("channel", channel_id))?;
        if !participants(&s).contains(&actor.id) {
            return Err(Error::not_found("channel", channel_id));
        }
        let active = s.status == SessionStatus::Active.as_ref();
        let relay = if row.kind == "CALL" {
            let mut snap = call::Snapshot::new(&s.taxpayer_id, s.agent_id.clone(), active);
            snap.status = call::Status::from_str(&row.status).ok();
            call::signal(&snap, actor, kind)?
        } else {
            let mut snap = assist::Snapshot::new(&s.taxpayer_id, s.agent_id.clone(), active);
            snap.status = assist::Status::from_str(&row.status).ok();
            assist::signal(&snap, actor, kind)?
        };
        self.hub.publish(ChatEvent {
            session_id: s.id.clone(),
            audience: vec![relay.to],
            kind: ChatEventKind::Signal {
                channel_id: row.id.clone(),
                from: actor.id.clone(),
                kind: kind.as_ref().to_string(),
                payload: payload.to_string(),
            },
        });
        Ok(())
    }

    /// The `call.expire` job: an invitation nobody answered.
    pub async fn expire_call(&self, channel_id: &str) -> Result<()> {
        match self
            .channel_event(
                &Actor::system(),
                channel_id,
                ChannelEvent::Call(call::Event::Expire),
            )
            .await
        {
            Ok(_) | Err(Error::Refused(_)) | Err(Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub async fn channel_history(&self, channel_id: &str) -> Result<Vec<channel_history::Model>> {
        Ok(channel_history::Entity::find()
            .filter(channel_history::Column::ChannelId.eq(channel_id))
            .order_by_asc(channel_history::Column::Seq)
            .all(self.wf.db())
            .await?)
    }
}

async fn record(
    txn: &DatabaseTransaction,
    c: &channel::Model,
    from: Option<String>,
    actor: &Actor,
    event: &ChannelEvent,
    now: DateTime<Utc>,
) -> Result<()> {
    let h = channel_history::Model {
        id: new_id(),
        channel_id: c.id.clone(),
        seq: c.version,
        event: event.name(),
        from_status: from,
        to_status: c.status.clone(),
        actor_id: actor.id.clone(),
        actor_role: actor.role.as_ref().to_string(),
        note: event.note(),
        at: now,
    };
    channel_history::Entity::insert(h.into_active_model())
        .exec_without_returning(txn)
        .await?;
    Ok(())
}
