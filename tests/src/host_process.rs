//! The real `hoist-host` binary as a child process: for what only a separate process can
//! show (a SIGKILL mid-request, the command line's subcommands).
//!
//! Cargo gives integration tests the path of their own package's binaries only, so
//! [`hoist_host_bin`] asks cargo to build `hoist-host` (a no-op when it is up to date, so
//! a changed host is never tested through a stale binary) and takes the path cargo reports.

use crate::hoist_server::ADMIN_PASSWORD;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The `hoist-host` executable, built by cargo on first use in this test binary
/// (`$HOIST_HOST_BIN` overrides it).
pub fn hoist_host_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| workspace_binary("HOIST_HOST_BIN", "hoist-host", "hoist-host"))
}

/// `embed-rust`, the minimal wasmtime embedding in `examples/embed-rust`, built by cargo on
/// first use (`$HOIST_EMBED_RUST_BIN`, which `scripts/test.sh` sets, overrides it).
pub fn embed_rust_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        workspace_binary("HOIST_EMBED_RUST_BIN", "hoist-embed-example", "embed-rust")
    })
}

/// The binary `bin` of the workspace package `package`: `$env_var` when set, else built by
/// cargo now (a no-op when it is up to date) and found where cargo reports it.
pub fn workspace_binary(env_var: &str, package: &str, bin: &str) -> PathBuf {
    {
        if let Some(path) = std::env::var_os(env_var) {
            return path.into();
        }
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the tests crate sits in the workspace");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(workspace).args([
            "build",
            "--locked",
            "-p",
            package,
            "--bin",
            bin,
            "--message-format=json-render-diagnostics",
        ]);
        // The same profile as this test binary, so the build shares its artifacts.
        if !cfg!(debug_assertions) {
            cmd.arg("--release");
        }
        // What cargo set for this test process describes this package; build scripts
        // that watch those variables (ring's) would otherwise see a change and rebuild.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            let ours = [
                "CARGO_PKG_",
                "CARGO_MANIFEST_",
                "CARGO_CRATE_",
                "CARGO_BIN_",
            ]
            .iter()
            .any(|p| name.starts_with(p))
                || matches!(
                    name.as_ref(),
                    "OUT_DIR"
                        | "CARGO_PRIMARY_PACKAGE"
                        | "CARGO_TARGET_TMPDIR"
                        | "CARGO_RUSTC_CURRENT_DIR"
                );
            if ours {
                cmd.env_remove(name.as_ref());
            }
        }
        let out = cmd
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("cargo runs to build {package}: {e}"));
        assert!(out.status.success(), "building {package} failed");
        out.stdout
            .split(|&b| b == b'\n')
            .filter_map(|line| serde_json::from_slice::<serde_json::Value>(line).ok())
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == bin)
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .unwrap_or_else(|| panic!("cargo reports the {bin} executable"))
    }
}

/// `hoist-host` running as a child process on a loopback port, with the test admin
/// password. Killed (SIGKILL) when dropped.
pub struct HostProcess {
    pub port: u16,
    pub data_dir: PathBuf,
    child: Child,
    log: PathBuf,
}

/// A `hoist-host` command with none of the caller's `HOIST_*` settings, so that only
/// what the test passes counts.
pub fn command() -> Command {
    let mut cmd = Command::new(hoist_host_bin());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("HOIST_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

impl HostProcess {
    /// Starts the host on `data_dir` and waits until `/healthz` answers.
    pub fn start(data_dir: &Path) -> Self {
        Self::start_with(data_dir, &[])
    }

    /// [`HostProcess::start`] with extra command-line arguments. The host binds port 0
    /// itself and prints the address it got, so no other test can take the port between
    /// a pick and a bind.
    pub fn start_with(data_dir: &Path, args: &[&str]) -> Self {
        Self::start_on(0, data_dir, args)
    }

    /// [`HostProcess::start_with`] on `port` (0: any): a host restarted on the address it
    /// had, as clients and import targets that name it expect.
    pub fn start_on(port: u16, data_dir: &Path, args: &[&str]) -> Self {
        static STARTS: AtomicUsize = AtomicUsize::new(0);
        let log = data_dir.with_extension(format!(
            "host-{}.log",
            STARTS.fetch_add(1, Ordering::Relaxed)
        ));
        let log_file = std::fs::File::create(&log).unwrap();
        let child = command()
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(data_dir)
            .args(args)
            .env("HOIST_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", hoist_host_bin().display()));
        let mut host = Self {
            port,
            data_dir: data_dir.to_owned(),
            child,
            log,
        };
        host.wait_ready(Duration::from_secs(180));
        host
    }

    /// Polls `/healthz` until it answers 200; fails if the process exits first or the
    /// deadline passes. The first start on a data folder compiles the plugin.
    fn wait_ready(&mut self, deadline: Duration) {
        let end = Instant::now() + deadline;
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(2))
            .build();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "hoist-host exited with {status} while starting:\n{}",
                    self.log()
                );
            }
            if self.port == 0 {
                // The address the host prints once it listens.
                self.port = self
                    .log()
                    .lines()
                    .find_map(|l| {
                        l.strip_prefix("Hoist is running: open http://127.0.0.1:")?
                            .strip_suffix('/')?
                            .parse()
                            .ok()
                    })
                    .unwrap_or(0);
            }
            if self.port != 0
                && agent
                    .get(&self.url("/healthz"))
                    .call()
                    .is_ok_and(|r| r.status() == 200)
            {
                return;
            }
            assert!(
                Instant::now() < end,
                "hoist-host did not answer /healthz within {deadline:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the host printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills the host with SIGKILL, as a crash or the OOM killer would, and reaps it.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
