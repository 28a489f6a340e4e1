//! Batches the user look-ups of a page (handlers, actors) into one query.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use taxdesk_workflow::{Workflow, entities::user};

pub struct Users(pub Workflow);

impl Loader<String> for Users {
    type Value = user::Model;
    type Error = Arc<taxdesk_workflow::Error>;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Self::Error> {
        let rows = self.0.users_by_ids(keys).await.map_err(Arc::new)?;
        Ok(rows.into_iter().map(|u| (u.id.clone(), u)).collect())
    }
}
