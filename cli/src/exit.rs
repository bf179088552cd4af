//! Exit codes, one per class of failure, so that scripts can tell them apart.
//!
//! WASI 0.2's `wasi:cli/exit` carries only success or failure: under a stock
//! `wasmtime run` every non-zero code below is reported as 1. Hosts that grant the
//! unstable `exit-with-code` API pass them through unchanged.

pub const OK: u8 = 0;
/// A bad command line or a reference that does not parse.
pub const USAGE: u8 = 2;
