//! The one place where errors become GraphQL error codes (`extensions.code`).

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextRequest, NextValidation,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{
    Context, ErrorExtensions, Response, ServerError, ServerResult, ValidationResult, Variables,
};
use std::sync::Arc;
use strum::AsRefStr;
use taxdesk_workflow::{Error, RefusalCode};

use crate::identity::RequestId;

/// Every code a client may see. Stable: clients switch on these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, AsRefStr)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum Code {
    Unauthenticated,
    Forbidden,
    NotFound,
    InvalidInput,
    InvalidTransition,
    Conflict,
    CoolDown,
    AlreadyRated,
    SlotFull,
    TooLateToCancel,
    OffHours,
    NoAgent,
    RateLimited,
    PayloadTooLarge,
    UnsupportedMediaType,
    GraphqlParseFailed,
    GraphqlValidationFailed,
    QueryTooComplex,
    BadRequest,
    Internal,
}

impl Code {
    /// Codes of requests refused before any resolver ran.
    pub fn is_request_error(self) -> bool {
        matches!(
            self,
            Code::GraphqlParseFailed
                | Code::GraphqlValidationFailed
                | Code::QueryTooComplex
                | Code::BadRequest
        )
    }
}

/// An error with a code and a message in Chinese and English.
pub fn coded(code: Code, zh: impl AsRef<str>, en: impl AsRef<str>) -> async_graphql::Error {
    let (zh, en) = (zh.as_ref(), en.as_ref());
    async_graphql::Error::new(format!("{zh} / {en}")).extend_with(|_, e| {
        e.set("code", code.as_ref());
        e.set("zh", zh);
        e.set("en", en);
    })
}

fn refusal_code(c: RefusalCode) -> Code {
    match c {
        RefusalCode::InvalidTransition => Code::InvalidTransition,
        RefusalCode::Forbidden => Code::Forbidden,
        RefusalCode::CoolDown => Code::CoolDown,
        RefusalCode::AlreadyRated => Code::AlreadyRated,
        RefusalCode::InvalidInput => Code::InvalidInput,
        RefusalCode::OffHours => Code::OffHours,
        RefusalCode::NoAgent => Code::NoAgent,
        RefusalCode::TooLateToCancel => Code::TooLateToCancel,
        RefusalCode::SlotFull => Code::SlotFull,
    }
}

/// Maps a service error. Internal faults are logged in full and shown only as a request id.
pub(crate) fn to_gql(ctx: &Context<'_>, e: Error) -> async_graphql::Error {
    match e {
        Error::NotFound { what, id } => coded(
            Code::NotFound,
            format!("未找到（{what} {id}）"),
            format!("{what} {id} not found"),
        ),
        Error::Forbidden(why) => coded(Code::Forbidden, "无权执行此操作", why),
        Error::InvalidInput(i) => coded(Code::InvalidInput, &i.zh, &i.en)
            .extend_with(|_, ext| ext.set("field", i.field.as_str())),
        Error::Refused(r) => coded(refusal_code(r.code), &r.zh, &r.en),
        Error::Conflict { what, id } => coded(
            Code::Conflict,
            "数据已被他人修改，请刷新后重试",
            format!("{what} {id} was changed by someone else; reload and retry"),
        ),
        Error::Database(db) => {
            let rid = ctx
                .data_opt::<RequestId>()
                .map(|r| r.0.clone())
                .unwrap_or_default();
            tracing::error!(request.id = %rid, error = %db, "database error");
            internal(&rid)
        }
    }
}

/// A batching loader's database failure: logged with the request id, `INTERNAL` outside.
pub(crate) fn load_failed(
    ctx: &Context<'_>,
    what: &str,
    e: &dyn std::fmt::Display,
) -> async_graphql::Error {
    let rid = ctx
        .data_opt::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    tracing::error!(request.id = %rid, error = %e, "loading {what}");
    internal(&rid)
}

pub fn internal(request_id: &str) -> async_graphql::Error {
    coded(
        Code::Internal,
        format!("服务器内部错误，请稍后重试（请求号 {request_id}）"),
        format!("internal error; please retry later (request id {request_id})"),
    )
    .extend_with(|_, e| e.set("requestId", request_id))
}

/// `?` for service results inside resolvers.
pub(crate) trait OrGql<T> {
    fn or_gql(self, ctx: &Context<'_>) -> async_graphql::Result<T>;
}

impl<T> OrGql<T> for Result<T, Error> {
    fn or_gql(self, ctx: &Context<'_>) -> async_graphql::Result<T> {
        self.map_err(|e| to_gql(ctx, e))
    }
}

fn with_code(mut e: ServerError, code: Code) -> ServerError {
    let has = e
        .extensions
        .as_ref()
        .is_some_and(|x| x.get("code").is_some());
    if !has {
        e.extensions
            .get_or_insert_with(Default::default)
            .set("code", code.as_ref());
    }
    e
}

fn limit_error(message: &str) -> bool {
    message.contains("too complex")
        || message.contains("nested too deep")
        || message.contains("recursion")
        || message.contains("recursive")
        || message.contains("directives")
}

/// Gives the library's own errors (parse, validation, limits) a stable code, so every error
/// a client sees has one.
pub struct ErrorCodes;

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodes)
    }
}

#[async_trait::async_trait]
impl Extension for ErrorCodes {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        next.run(ctx, query, variables).await.map_err(|e| {
            let code = if limit_error(&e.message) {
                Code::QueryTooComplex
            } else {
                Code::GraphqlParseFailed
            };
            with_code(e, code)
        })
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|e| {
                    let code = if limit_error(&e.message) {
                        Code::QueryTooComplex
                    } else {
                        Code::GraphqlValidationFailed
                    };
                    with_code(e, code)
                })
                .collect()
        })
    }

    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut resp = next.run(ctx).await;
        for e in resp.errors.iter_mut() {
            if e.extensions
                .as_ref()
                .is_some_and(|x| x.get("code").is_some())
            {
                continue;
            }
            // Without a path the request failed before execution (an unknown operation name,
            // a variable of the wrong type): the client's request was invalid.
            let code = if e.path.is_empty() {
                Code::GraphqlValidationFailed
            } else if e.message.starts_with("Failed to parse")
                || e.message.starts_with("Invalid value")
            {
                Code::InvalidInput
            } else {
                tracing::error!(error = %e.message, path = ?e.path, "uncoded resolver error");
                Code::Internal
            };
            *e = with_code(e.clone(), code);
        }
        resp
    }
}
