//! Hoist's import engine. Compiled to `wasm32-wasip2`, it is a component that exports the
//! `hoist:plugin` contract in `wit/`; compiled natively, it is an ordinary library, so its
//! logic is tested with `cargo test` and linked into the CLI.

pub mod reference;
pub mod target;

#[cfg(target_arch = "wasm32")]
mod component;
