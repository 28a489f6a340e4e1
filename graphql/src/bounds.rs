//! Every request, over HTTP or WebSocket, is bounded before the library parses or validates
//! it: its text (bytes, tokens, nesting), its document once parsed (fields after fragment
//! expansion, aliases, directives, mutations) and its values (list lengths, string lengths,
//! control characters). Each check is linear in the request's size, which is itself bounded,
//! so no request can keep a worker busy for long: the library's own walks, which expand
//! fragments anew at each spread, then run over at most the budgeted number of fields.

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest,
};
use async_graphql::parser::parse_query;
use async_graphql::{Request, ServerResult};
use std::sync::Arc;

use crate::Limits;
use crate::budget::{self, Budget};
use crate::guard;
use crate::input_bounds::InputBounds;
use crate::refusal::Refusal;

pub struct RequestBounds {
    limits: Arc<Limits>,
}

impl RequestBounds {
    pub fn new(limits: &Limits) -> RequestBounds {
        RequestBounds {
            limits: Arc::new(limits.clone()),
        }
    }
}

impl ExtensionFactory for RequestBounds {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Checker {
            limits: self.limits.clone(),
        })
    }
}

struct Checker {
    limits: Arc<Limits>,
}

/// Checks one request; on success the parsed document is kept in it, so it is parsed once.
pub fn check(limits: &Limits, request: &mut Request) -> Result<(), Refusal> {
    guard::check_text(&request.query, limits.query_bytes, limits.tokens)?;
    let inputs = InputBounds {
        max_list_items: limits.list_items,
        max_string_chars: limits.string_chars,
    };
    for (i, upload) in request.uploads.iter().enumerate() {
        inputs.file_name(i, &upload.filename)?;
    }
    // A syntax error is left to the library, which reports it as it always has.
    let Ok(doc) = parse_query(&request.query) else {
        return Ok(());
    };
    budget::check(
        &doc,
        Budget {
            max_selections: limits.selections as u64,
            max_aliases: limits.aliases as u64,
            max_directives: limits.document_directives as u64,
            max_mutations: limits.mutations as u64,
        },
    )?;
    inputs.check(&doc, &request.variables)?;
    request.set_parsed_query(doc);
    Ok(())
}

#[async_trait::async_trait]
impl Extension for Checker {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        if let Err(refusal) = check(&self.limits, &mut request) {
            tracing::debug!(code = refusal.code.as_ref(), en = %refusal.en, "request refused before parsing");
            return Err(refusal.into_server_error());
        }
        next.run(ctx, request).await
    }
}
