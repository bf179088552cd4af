//! How a registry behaves: what an admin configures.

use std::time::Duration;

/// How the registry behaves.
#[derive(Clone, Debug, Default)]
pub struct RegistryOptions {
    /// Create a (private) project on the first push into it, instead of refusing.
    pub auto_create_projects: bool,
    /// The garbage collector's defaults.
    pub gc: GcOptions,
}

/// The garbage collector's settings.
#[derive(Clone, Debug)]
pub struct GcOptions {
    /// Blobs and links younger than this are kept.
    pub grace: Duration,
    /// Upload sessions idle for longer than this are removed.
    pub upload_max_age: Duration,
}

impl Default for GcOptions {
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(60 * 60),
            upload_max_age: Duration::from_secs(24 * 60 * 60),
        }
    }
}
