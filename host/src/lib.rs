//! Hoist's registry host. It embeds the plugin component with wasmtime and serves the API.

pub mod api;
pub mod auth;
pub mod config;
pub mod gc;
pub mod metadata;
pub mod metrics;
pub mod outbound;
pub mod plugin;
pub mod registry;
pub mod secrets;
pub mod server;
pub mod storage;
pub mod tasks;
pub mod ui;
