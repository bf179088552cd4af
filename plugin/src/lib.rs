//! Hoist's import engine. Compiled to `wasm32-wasip2`, it is a component that exports the
//! `hoist:plugin` contract in `wit/`; compiled natively, its pure parts (reference parsing,
//! target naming, auth challenges, manifests, retries, sync tag selection) are tested with
//! `cargo test`, and the CLI links it.

pub mod auth;
pub mod manifest;
pub mod progress;
pub mod reference;
pub mod referrer;
pub mod retry;
pub mod rule;
pub mod select;
pub mod sync;
pub mod target;
pub mod throttle;
pub mod url;

#[cfg(target_arch = "wasm32")]
pub mod copy;
#[cfg(target_arch = "wasm32")]
mod executor;
#[cfg(target_arch = "wasm32")]
mod http;
#[cfg(target_arch = "wasm32")]
pub mod inspect;
#[cfg(target_arch = "wasm32")]
pub mod plan;
#[cfg(target_arch = "wasm32")]
mod referrers;
#[cfg(target_arch = "wasm32")]
mod registry;

#[cfg(target_arch = "wasm32")]
mod component;
