//! Exit codes, one per class of failure, so that scripts can tell them apart.

pub const OK: u8 = 0;
/// A bad command line or a reference that does not parse.
pub const USAGE: u8 = 2;
