//! Hoist's registry host: configuration, wiring, authentication (tokens, sessions,
//! robots), the JSON API and the web UI, around the registry (`hoist-registry`) and the
//! imports (`hoist-imports`). The binary (`main.rs`) only parses its command line.

mod api;
mod auth;
pub mod config;
mod listen;
pub mod server;
mod store;
mod sync;
mod ui;
mod upload_sessions;
