//! The taxdesk binary's library half: configuration, identity, the HTTP server and its
//! wiring. `main.rs` is only the command line; tests start the same server in-process.

pub mod app;
pub mod auth;
pub mod config;
pub mod db;
mod http;
pub mod kb_import;
pub mod kb_model;
pub mod telemetry;

pub use app::{Running, start};
pub use config::Config;
