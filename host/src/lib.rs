//! Hoist's registry host. It embeds the plugin component with wasmtime and serves the API.

pub mod api;
pub mod auth;
pub mod outbound;
pub mod plugin;
pub mod secrets;
pub mod storage;
pub mod tasks;
