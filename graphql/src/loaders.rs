//! Batches the look-ups of a page into one query each: users (handlers, actors) and the FAQs
//! that the bot's messages in a transcript name.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use taxdesk_chat::Chat;
use taxdesk_chat::entities::faq;
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

/// Enabled FAQs by id (a disabled or unknown id loads nothing).
pub struct Faqs(pub Chat);

impl Loader<String> for Faqs {
    type Value = faq::Model;
    type Error = Arc<taxdesk_workflow::Error>;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Self::Error> {
        let rows = self.0.faqs_by_ids(keys).await.map_err(Arc::new)?;
        Ok(rows.into_iter().map(|f| (f.id.clone(), f)).collect())
    }
}
