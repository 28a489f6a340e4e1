//! Users as the e-tax bureau's tokens describe them. A row is upserted when a user is first
//! seen or their claims change; a small in-memory map keeps that off the hot path.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
};

use crate::actor::Role;
use crate::entities::user;
use crate::error::{Error, Result};
use crate::refusal::Refusal;
use crate::workflow::Workflow;

/// What a verified token says about its bearer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub id: String,
    pub role: Role,
    pub display_name: String,
    pub taxpayer_id: Option<String>,
    pub email: Option<String>,
}

/// Claims last written per user id. Bounded: cleared when it grows past `CAPACITY`, which
/// only costs one upsert per user on their next request.
#[derive(Default)]
pub(crate) struct Directory {
    seen: Mutex<HashMap<String, Claims>>,
}

const CAPACITY: usize = 50_000;

impl Directory {
    fn is_current(&self, c: &Claims) -> bool {
        self.seen
            .lock()
            .map(|m| m.get(&c.id) == Some(c))
            .unwrap_or(false)
    }

    fn remember(&self, c: &Claims) {
        if let Ok(mut m) = self.seen.lock() {
            if m.len() >= CAPACITY {
                m.clear();
            }
            m.insert(c.id.clone(), c.clone());
        }
    }
}

fn role_name_zh(role: Role) -> &'static str {
    match role {
        Role::Taxpayer => "纳税人",
        Role::Staff => "工作人员",
        Role::Admin => "管理员",
        Role::System => "系统",
    }
}

pub fn role_of(row: &user::Model) -> Role {
    Role::from_str(&row.role).unwrap_or(Role::Taxpayer)
}

impl Workflow {
    /// Records the bearer of a verified token, writing only when something changed.
    ///
    /// A user keeps the role their row has: a token claiming another one (a taxpayer token
    /// whose `sub` is a staff member's id, say) is refused with `FORBIDDEN` and logged,
    /// unless `follow_role_changes` lets the identity provider move users between roles.
    pub async fn see_user(&self, claims: &Claims) -> Result<()> {
        if self.users.is_current(claims) {
            return Ok(());
        }
        let follow = self.config.follow_role_changes;
        // Following, the old role is read only to log the change (claims rarely change).
        let before = if follow {
            self.user(&claims.id).await?.map(|u| role_of(&u))
        } else {
            None
        };
        let now = self.now();
        let row = user::ActiveModel {
            id: Set(claims.id.clone()),
            role: Set(claims.role.as_ref().to_string()),
            display_name: Set(claims.display_name.clone()),
            taxpayer_id: Set(claims.taxpayer_id.clone()),
            email: Set(claims.email.clone()),
            created_at: Set(now),
            updated_at: Set(now),
        };
        let mut columns = vec![
            user::Column::Role,
            user::Column::DisplayName,
            user::Column::TaxpayerId,
            user::Column::UpdatedAt,
        ];
        // A token without an email keeps the address the user gave (`updateMyContact`).
        if claims.email.is_some() {
            columns.push(user::Column::Email);
        }
        let mut on_conflict = OnConflict::column(user::Column::Id)
            .update_columns(columns)
            .to_owned();
        if !follow {
            // One statement decides: the row is updated only while its role is the claimed
            // one, so nothing is written for a token claiming another role.
            on_conflict.action_and_where(
                Expr::col((user::Entity, user::Column::Role)).eq(claims.role.as_ref()),
            );
        }
        let written = user::Entity::insert(row)
            .on_conflict(on_conflict)
            .exec_without_returning(&self.db)
            .await?;
        if written == 0 {
            let held = self.user(&claims.id).await?.map(|u| role_of(&u));
            if let Some(held) = held.filter(|h| *h != claims.role) {
                tracing::warn!(
                    user.id = %claims.id,
                    role.held = held.as_ref(),
                    role.claimed = claims.role.as_ref(),
                    "refused a token claiming another role than the user's"
                );
                return Err(Error::Refused(Refusal::forbidden(
                    format!(
                        "用户 {} 的角色是{}，不能以{}身份登录；如角色确已变更，请联系管理员",
                        claims.id,
                        role_name_zh(held),
                        role_name_zh(claims.role)
                    ),
                    format!(
                        "user {} is {} and may not sign in as {}; if the role really changed, ask an administrator",
                        claims.id,
                        held.as_ref(),
                        claims.role.as_ref()
                    ),
                )));
            }
        }
        if let Some(before) = before.filter(|b| *b != claims.role) {
            tracing::warn!(
                user.id = %claims.id,
                role.before = before.as_ref(),
                role.after = claims.role.as_ref(),
                "user's role changed, following the identity provider (TAXDESK_ROLE_CHANGES=follow)"
            );
        }
        tracing::debug!(user.id = %claims.id, role = claims.role.as_ref(), "user recorded");
        self.users.remember(claims);
        Ok(())
    }

    /// Sets the address emails are sent to (a taxpayer's token may carry none).
    pub async fn update_contact(&self, user_id: &str, email: &str) -> Result<user::Model> {
        let email = crate::error::check::text("email", email, 3, 254)?;
        let valid = email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.')
        }) && !email.chars().any(char::is_whitespace);
        if !valid {
            return Err(Error::input(
                "email",
                format!("「{email}」不是有效的邮箱地址"),
                format!("{email:?} is not an email address"),
            ));
        }
        let now = self.now();
        user::Entity::update_many()
            .col_expr(
                user::Column::Email,
                sea_orm::sea_query::Expr::value(email.clone()),
            )
            .col_expr(
                user::Column::UpdatedAt,
                sea_orm::sea_query::Expr::value(now),
            )
            .filter(user::Column::Id.eq(user_id))
            .exec(&self.db)
            .await?;
        user::Entity::find_by_id(user_id)
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::not_found("user", user_id))
    }

    pub async fn user(&self, id: &str) -> Result<Option<user::Model>> {
        Ok(user::Entity::find_by_id(id).one(&self.db).await?)
    }

    pub async fn users_by_ids(&self, ids: &[String]) -> Result<Vec<user::Model>> {
        Ok(user::Entity::find()
            .filter(user::Column::Id.is_in(ids.iter().cloned()))
            .all(self.reader())
            .await?)
    }

    /// Staff and admins who have signed in at least once, for choosing a handler.
    pub async fn staff_members(&self) -> Result<Vec<user::Model>> {
        Ok(user::Entity::find()
            .filter(user::Column::Role.is_in([Role::Staff.as_ref(), Role::Admin.as_ref()]))
            .order_by_asc(user::Column::DisplayName)
            .all(&self.db)
            .await?)
    }
}

/// The user a bureau member names (a handler, an invited taxpayer) must have the right role.
pub(crate) fn expect_role(
    row: Option<&user::Model>,
    field: &str,
    id: &str,
    bureau: bool,
) -> Result<()> {
    let ok = row.is_some_and(|u| role_of(u).is_bureau() == bureau);
    if ok {
        return Ok(());
    }
    let (zh, en) = if bureau {
        (
            "不是已登录过的工作人员",
            "is not a staff member who has signed in",
        )
    } else {
        ("不是纳税人", "is not a taxpayer")
    };
    Err(Error::input(
        field,
        format!("{id} {zh}"),
        format!("{id} {en}"),
    ))
}

/// A taxpayer named by staff may not have used the service yet: create their row with what
/// is known. A bureau member cannot own a work order.
pub(crate) async fn ensure_taxpayer(
    txn: &DatabaseTransaction,
    id: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    match user::Entity::find_by_id(id).one(txn).await? {
        Some(u) => expect_role(Some(&u), "taxpayerId", id, false),
        None => {
            let row = user::ActiveModel {
                id: Set(id.to_string()),
                role: Set(Role::Taxpayer.as_ref().to_string()),
                display_name: Set(id.to_string()),
                taxpayer_id: Set(None),
                email: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
            };
            user::Entity::insert(row)
                .exec_without_returning(txn)
                .await?;
            Ok(())
        }
    }
}
