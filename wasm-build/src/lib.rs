//! Used from build scripts to compile a workspace crate to a `wasm32-wasip2` component, so
//! that a plain `cargo build` of the host or the tests also builds the wasm they embed or
//! run. The same pattern as wasmtime's own test-programs: a nested cargo, in a target
//! directory of its own so that it never waits on the outer build's lock.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The target triple of every Hoist component.
pub const WASM_TARGET: &str = "wasm32-wasip2";

/// Builds `package` (a workspace member) for `wasm32-wasip2` in release mode and returns
/// the path of `artifact` (`<name>.wasm`). Tells cargo to rerun when the sources change.
pub fn build_component(package: &str, artifact: &str) -> PathBuf {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .parent()
        .expect("a workspace member sits one level below the workspace root")
        .to_path_buf();
    for watched in ["plugin", "cli", "wit", "Cargo.lock"] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");
    // Cargo keys a workspace member's outputs by its path relative to the workspace, so two
    // checkouts sharing a target directory share this script's last run too, whose
    // `rerun-if-changed` paths name the other checkout: a change here would go unseen and
    // the other checkout's component would be embedded. `scripts/env.sh` names the
    // checkout, and a different one reruns the script.
    println!("cargo:rerun-if-env-changed=HOIST_CHECKOUT");

    let target_dir = outer_target_dir(&workspace)
        .join("wasm")
        .join(checkout_folder(&workspace));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&workspace)
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            WASM_TARGET,
            "-p",
            package,
        ])
        .arg("--target-dir")
        .arg(&target_dir);
    // The outer build's flags and wrappers (clippy-driver, host RUSTFLAGS, coverage) are
    // meant for native code, not for this nested wasm build.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("could not run cargo to build {package}: {e}"));
    assert!(
        status.success(),
        "building {package} for {WASM_TARGET} failed; run `cargo build --release --target \
         {WASM_TARGET} -p {package}` to see why"
    );
    let path = target_dir.join(WASM_TARGET).join("release").join(artifact);
    assert!(path.exists(), "{} was not produced", path.display());
    path
}

/// A folder name of this checkout's own. Two checkouts that share one target directory (a
/// CI clone and a working tree on the same machine) would otherwise write their
/// components to the same unhashed path (`wasm32-wasip2/release/hoist_plugin.wasm`), and
/// a build could embed the other checkout's plugin.
fn checkout_folder(workspace: &Path) -> String {
    use std::hash::{DefaultHasher, Hash as _, Hasher as _};
    let mut hasher = DefaultHasher::new();
    workspace.hash(&mut hasher);
    format!("checkout-{:016x}", hasher.finish())
}

/// The outer build's target directory: `CARGO_TARGET_DIR` when set, else `target/`.
fn outer_target_dir(workspace: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace.join(dir),
        None => workspace.join("target"),
    }
}

fn env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set; call this from a build script"))
}
