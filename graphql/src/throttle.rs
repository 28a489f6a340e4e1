//! Charges each limited mutation against the rate limits of its user and client address
//! before its resolver runs, so aliases in one request count one by one. A refusal is
//! `RATE_LIMITED` with `extensions.retryAfter` (whole seconds); the transport turns that
//! into a `Retry-After` header.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextResolve, ResolveInfo,
};
use async_graphql::{Context, ErrorExtensions, PathSegment, Pos, ServerResult, Value};

use crate::error::{Code, coded};
use crate::identity::Identity;
use crate::rate_limit::{Action, RateLimiter};

/// The client's address, attached to each request by the transport.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

/// Which root mutation spends which limit.
pub fn action_of(mutation: &str) -> Option<Action> {
    Some(match mutation {
        "askBot" => Action::Ask,
        "sendMessage" | "leaveMessage" | "replyLeaveMessage" => Action::Message,
        "uploadAttachment" | "importFaqs" | "transcribeSpeech" => Action::Upload,
        "createWorkOrder" => Action::WorkOrder,
        _ => return None,
    })
}

/// `RATE_LIMITED`, with the seconds to wait (rounded up, at least one).
pub fn rate_limited(wait: Duration) -> async_graphql::Error {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let secs = secs.max(1);
    coded(
        Code::RateLimited,
        format!("操作过于频繁，请 {secs} 秒后再试"),
        format!("too many requests; retry in {secs} s"),
    )
    .extend_with(|_, e| e.set("retryAfter", secs))
}

fn user_of(identity: Option<&Identity>) -> Option<&str> {
    match identity {
        Some(Identity::User(v)) => Some(v.id.as_str()),
        _ => None,
    }
}

/// Charges `action` to the requester of a resolver (e.g. a chat message that is a question
/// to the bot also counts as an ask).
pub fn charge(ctx: &Context<'_>, action: Action) -> async_graphql::Result<()> {
    let Some(limiter) = ctx.data_opt::<RateLimiter>() else {
        return Ok(());
    };
    let user = user_of(ctx.data_opt::<Identity>());
    let addr = ctx.data_opt::<ClientAddr>().map(|a| a.0);
    limiter.take(action, user, addr).map_err(rate_limited)
}

pub struct Throttle {
    limiter: RateLimiter,
}

impl Throttle {
    pub fn new(limiter: RateLimiter) -> Throttle {
        Throttle { limiter }
    }
}

impl ExtensionFactory for Throttle {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Throttle {
            limiter: self.limiter.clone(),
        })
    }
}

#[async_trait::async_trait]
impl Extension for Throttle {
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        let root_mutation = info.path_node.parent.is_none() && info.parent_type == "Mutation";
        if let (true, Some(action)) = (root_mutation, action_of(info.name)) {
            let user = user_of(ctx.data_opt::<Identity>());
            let addr = ctx.data_opt::<ClientAddr>().map(|a| a.0);
            if let Err(wait) = self.limiter.take(action, user, addr) {
                tracing::info!(
                    action = action.as_ref(),
                    user = user.unwrap_or("-"),
                    ?addr,
                    "rate limited"
                );
                let mut e = rate_limited(wait).into_server_error(Pos::default());
                e.locations.clear();
                e.path = vec![PathSegment::Field(
                    info.alias.unwrap_or(info.name).to_owned(),
                )];
                return Err(e);
            }
        }
        next.run(ctx, info).await
    }
}
