//! Who is asking. The binary verifies the token and attaches an [`Identity`]; resolvers ask
//! for a [`Viewer`] and get `UNAUTHENTICATED` without one.

use async_graphql::{Context, Object, SimpleObject};
use taxdesk_workflow::Actor;

use crate::common::Role;
use crate::error::{Code, coded};

/// Attached to every request by the transport.
#[derive(Debug, Clone)]
pub enum Identity {
    Anonymous,
    /// A token was sent but refused; the reason is shown to the client.
    Rejected {
        zh: String,
        en: String,
    },
    /// A valid token whose bearer may not act as it says (it claims another role than
    /// the user's); `FORBIDDEN`.
    Forbidden {
        zh: String,
        en: String,
    },
    User(Viewer),
}

/// Correlates a request's logs with the error a client sees.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

#[derive(Debug, Clone, SimpleObject)]
#[graphql(complex)]
pub struct Viewer {
    pub id: String,
    #[graphql(skip)]
    pub role_: taxdesk_workflow::Role,
    pub display_name: String,
    /// 纳税人识别号, for taxpayers.
    pub taxpayer_id: Option<String>,
    pub email: Option<String>,
}

#[async_graphql::ComplexObject]
impl Viewer {
    async fn role(&self) -> Role {
        self.role_.into()
    }
}

impl Viewer {
    pub fn actor(&self) -> Actor {
        Actor::new(self.id.clone(), self.role_)
    }
}

pub(crate) fn viewer<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Viewer> {
    match ctx.data_opt::<Identity>() {
        Some(Identity::User(v)) => Ok(v),
        Some(Identity::Rejected { zh, en }) => Err(coded(Code::Unauthenticated, zh, en)),
        Some(Identity::Forbidden { zh, en }) => Err(coded(Code::Forbidden, zh, en)),
        _ => Err(coded(
            Code::Unauthenticated,
            "请先登录（缺少 Authorization: Bearer 令牌）",
            "sign in first: send Authorization: Bearer <token>",
        )),
    }
}

pub(crate) fn actor(ctx: &Context<'_>) -> async_graphql::Result<Actor> {
    viewer(ctx).map(Viewer::actor)
}

/// Staff and admins only.
pub(crate) fn bureau(ctx: &Context<'_>) -> async_graphql::Result<Actor> {
    let a = actor(ctx)?;
    if a.role.is_bureau() {
        Ok(a)
    } else {
        Err(coded(Code::Forbidden, "仅限工作人员", "staff only"))
    }
}

#[derive(Default)]
pub struct MeQuery;

#[Object]
impl MeQuery {
    /// The signed-in user, as their token describes them.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<Viewer> {
        viewer(ctx).cloned()
    }
}
