//! Exit codes, one per class of failure, so that scripts can tell them apart.
//!
//! WASI 0.2's `wasi:cli/exit` carries only success or failure: under a stock
//! `wasmtime run` every non-zero code below is reported as 1. Hosts that grant the
//! unstable `exit-with-code` API pass them through unchanged.

#[cfg(target_arch = "wasm32")]
use hoist_plugin::progress::ImportError;

pub const OK: u8 = 0;
/// A bad command line or a reference that does not parse.
pub const USAGE: u8 = 2;
#[cfg(target_arch = "wasm32")]
const AUTH: u8 = 3;
#[cfg(target_arch = "wasm32")]
const NOT_FOUND: u8 = 4;
#[cfg(target_arch = "wasm32")]
const REMOTE: u8 = 5;
#[cfg(target_arch = "wasm32")]
const POLICY: u8 = 6;

#[cfg(target_arch = "wasm32")]
pub fn for_error(e: &ImportError) -> u8 {
    match e {
        ImportError::InvalidReference(_) => USAGE,
        ImportError::Unauthorized(_) => AUTH,
        ImportError::NotFound(_) => NOT_FOUND,
        ImportError::DeniedByPolicy(_) => POLICY,
        _ => REMOTE,
    }
}
