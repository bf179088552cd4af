//! Imports: the plugin component under wasmtime, the `wasi:http` boundary that holds what
//! the sandbox must not (the egress policy, credentials, the in-process route to the
//! host's own registry), and the runner that keeps import tasks in a store and drives
//! them to their end.
//!
//! **What this crate depends on.** The plugin crate (natively, for its URL and challenge
//! parsers) and `hoist-common`; not the registry. It reaches the host's own registry
//! through the registry's HTTP routes ([`tasks::OwnRegistry`]) and asks which
//! repository holds a blob through [`BlobIndex`], which the host
//! implements.

pub mod artifact;
pub mod boundary;
mod compiled;
pub mod contract;
pub mod egress;
mod runtime;
pub mod sealed;
pub mod settings;
mod shared_blobs;
pub mod tasks;

pub use runtime::{BUILTIN, ImportAccess, PluginRuntime};
pub use shared_blobs::BlobIndex;
