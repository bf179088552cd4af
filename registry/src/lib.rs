//! Hoist's own registry: the OCI Distribution Spec v1.1 under `/v2/` (DESIGN.md §4).
//!
//! Pull, push (monolithic and chunked, with `Content-Range` and upload status),
//! cross-repository mount, tag listing and the catalog with `n`/`last`, deletion, and the
//! referrers API. Repositories are `<project>/<name…>`; pushing into a project that does
//! not exist is refused unless the host creates projects on first push.
//!
//! Blob bytes go through [`Storage`]; which repository may see which blob, manifests,
//! tags and upload sessions are rows in [`Metadata`]. Bodies are streamed to and from
//! disk: no handler holds a blob in memory (manifests, at most 4 MiB, are the exception).
//!
//! **The seam for authentication.** Every request is first classified into a [`Target`]
//! (a repository and an action: pull, push or delete; or the catalog), and the host's
//! [`Authorizer`] is asked before anything else happens. A mount also asks for pull on
//! the repository it mounts from. This crate knows no users, tokens or sessions.
//!
//! **Blob links.** A blob is visible in a repository only when linked to it: an upload
//! finishing there, or a mount into it, makes the link. Pulls, HEADs and the blobs a
//! pushed manifest refers to are checked against the repository's links, never against
//! the global store, so knowing a digest from a private project gives nothing elsewhere.
//!
//! **What this crate depends on.** No other Hoist crate but `hoist-common`: the host
//! plugs in authentication, and imports reach the registry over its HTTP routes.

mod access;
mod digest;
mod errors;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod gc;
mod http;
mod layers;
mod manifest;
mod metadata;
mod metrics;
mod names;
mod ops;
mod options;
mod state;
mod storage;

pub use access::{Action, Authorizer, Target};
pub use errors::RegistryError;
pub use gc::{GcReport, collect as collect_garbage, sweep_uploads};
pub use http::router;
pub use layers::{service, with_layers};
pub use manifest::{RefKind, Summary};
pub use metadata::{ImportedTag, ManifestRecord, Metadata, Project, TagDetail, sql};
pub use metrics::Metrics;
pub use names::{check_project, project_of};
pub use ops::{admin_router, readiness_router};
pub use options::{GcOptions, RegistryOptions};
pub use state::{Registry, database_path};
pub use storage::{FsStorage, S3Options, S3Storage, Storage};
