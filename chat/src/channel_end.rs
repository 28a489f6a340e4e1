//! Ends the remote-assistance and call channels of a session that lost its agent or ended,
//! in the session's transaction, with a history row each.

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, DatabaseTransaction, EntityTrait, IntoActiveModel, QueryFilter, sea_query::Expr,
};
use taxdesk_workflow::Actor;
use taxdesk_workflow::error::Result;

use crate::entities::{channel, channel_history};
use crate::session::service::new_id;

/// Statuses in which a channel is over.
pub const FINAL: [&str; 5] = ["ENDED", "DECLINED", "CANCELLED", "EXPIRED", "REJECTED"];

pub(crate) async fn end_all(
    txn: &DatabaseTransaction,
    session_id: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<()> {
    let open = channel::Entity::find()
        .filter(channel::Column::SessionId.eq(session_id))
        .filter(channel::Column::Status.is_not_in(FINAL))
        .all(txn)
        .await?;
    for c in open {
        // Not yet answered: it never started, so it is cancelled rather than ended.
        let to = if c.status == "ACTIVE" {
            "ENDED"
        } else {
            "CANCELLED"
        };
        let r = channel::Entity::update_many()
            .col_expr(channel::Column::Status, Expr::value(to))
            .col_expr(channel::Column::Version, Expr::value(c.version + 1))
            .col_expr(channel::Column::UpdatedAt, Expr::value(now))
            .col_expr(channel::Column::EndedAt, Expr::value(now))
            .filter(channel::Column::Id.eq(c.id.as_str()))
            .filter(channel::Column::Version.eq(c.version))
            .exec(txn)
            .await?;
        if r.rows_affected == 1 {
            let h = channel_history::Model {
                id: new_id(),
                channel_id: c.id.clone(),
                seq: c.version + 1,
                event: "SESSION_ENDED".into(),
                from_status: Some(c.status.clone()),
                to_status: to.into(),
                actor_id: actor.id.clone(),
                actor_role: actor.role.as_ref().into(),
                note: None,
                at: now,
            };
            channel_history::Entity::insert(h.into_active_model())
                .exec_without_returning(txn)
                .await?;
        }
    }
    Ok(())
}
