//! Exit codes, one per class of failure, so that scripts can tell them apart.
//!
//! WASI 0.2.0's `wasi:cli/exit#exit` carries only success or failure, and Rust's std maps
//! every non-zero `ExitCode` onto it, so a plain return from `main` exits 1 whatever the
//! code. WASI 0.2.12 added `exit-with-code(u8)`. Checked with the pinned wasmtime 48.0.8:
//! a component importing it instantiates under a plain `wasmtime run -S http` and exits
//! with the code it gives; `-S cli-exit-with-code=n` is refused with "cannot disable
//! `-Scli-exit-with-code` any more", so no flag is needed. Hence [`exit`] calls it for
//! every non-zero code. A WASI host older than 0.2.12 lacks the function and would not
//! instantiate `hoist.wasm` at all; for scripts on such hosts (and for humans) the class
//! is also the first word of the one-line error and the `code` of the `--json` error event.

use std::process::ExitCode;

pub const OK: u8 = 0;
/// A failure that fits no single class: a batch whose failed lines differ in class, or a
/// cancelled import.
pub const FAILED: u8 = 1;
/// A bad command line, option value, reference or input file.
pub const USAGE: u8 = 2;
/// A registry refused to let us in: credentials missing, wrong, or lacking the rights.
pub const AUTH: u8 = 3;
/// The image, tag, platform or repository does not exist.
pub const NOT_FOUND: u8 = 4;
/// The network or a registry failed: unreachable, 5xx past the retries, rate limits, a
/// digest mismatch, a manifest type Hoist does not copy.
pub const REMOTE: u8 = 5;
/// A policy refused the request: credentials in clear text, a token realm on plain HTTP
/// for a registry on HTTPS, a host's egress rules, or `--require-signature` on an image
/// without a signature.
pub const POLICY: u8 = 6;

/// Ends the program with `code`. On wasm32 a failure goes through `exit-with-code`, the
/// only way to report a code other than 1 (see the module's notes).
pub fn exit(code: u8) -> ExitCode {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    #[cfg(target_arch = "wasm32")]
    if code != OK {
        wasip2::cli::exit::exit_with_code(code);
    }
    ExitCode::from(code)
}
