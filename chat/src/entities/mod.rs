//! sea-orm entities of live chat, one file per table.

pub mod agent_presence;
pub mod ask_log;
pub mod asked_question;
pub mod asked_question_history;
pub mod attachment;
pub mod channel;
pub mod channel_history;
pub mod chat_read;
pub mod faq;
pub mod faq_favorite;
pub mod faq_vote;
pub mod hot_question;
pub mod message;
pub mod qa_package;
pub mod quick_link;
pub mod session;
pub mod session_history;
