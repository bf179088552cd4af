//! skopeo (Debian's) as the independent checker of what registries hold.

use std::process::Command;

fn run(args: &[&str]) -> Result<Vec<u8>, String> {
    let out = Command::new("skopeo")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run skopeo: {e}"))?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The raw manifest bytes at `reference` (`host:port/repo:tag`), over plain HTTP.
pub fn inspect_raw(reference: &str, creds: Option<&str>) -> Vec<u8> {
    let target = format!("docker://{reference}");
    let mut args = vec!["inspect", "--raw", "--tls-verify=false"];
    if let Some(c) = creds {
        args.extend(["--creds", c]);
    }
    args.push(&target);
    run(&args).unwrap_or_else(|e| panic!("skopeo inspect --raw {reference}: {e}"))
}

/// Whether the reference exists.
pub fn exists(reference: &str) -> bool {
    run(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{reference}"),
    ])
    .is_ok()
}

/// Whether the reference exists, asked with credentials.
pub fn exists_with(reference: &str, creds: &str) -> bool {
    run(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        creds,
        &format!("docker://{reference}"),
    ])
    .is_ok()
}

/// `skopeo copy --all` from one registry to another over plain HTTP, with extra arguments
/// (`--src-creds`, `--dest-creds`); the error is skopeo's stderr.
pub fn copy_with(from: &str, to: &str, extra: &[&str]) -> Result<(), String> {
    let (src, dst) = (format!("docker://{from}"), format!("docker://{to}"));
    let mut args = vec![
        "copy",
        "--all",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
    ];
    args.extend(extra);
    args.extend([src.as_str(), dst.as_str()]);
    run(&args).map(drop)
}

/// [`copy_with`], which must succeed.
pub fn copy(from: &str, to: &str) {
    copy_with(from, to, &[]).unwrap_or_else(|e| panic!("skopeo copy {from} {to}: {e}"));
}

/// Pulls every platform of `reference` into a directory, which makes skopeo fetch and
/// verify every blob.
pub fn pull_all(reference: &str) {
    pull(reference, &[]);
}

/// [`pull_all`], with `user:password` credentials.
pub fn pull_all_with(reference: &str, creds: &str) {
    pull(reference, &["--src-creds", creds]);
}

fn pull(reference: &str, extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["copy", "--all", "--src-tls-verify=false"];
    args.extend(extra);
    let (src, dst) = (
        format!("docker://{reference}"),
        format!("dir:{}", dir.path().display()),
    );
    args.extend([src.as_str(), dst.as_str()]);
    run(&args).unwrap_or_else(|e| panic!("skopeo copy {reference}: {e}"));
}
