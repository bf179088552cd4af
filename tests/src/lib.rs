//! Shared helpers for the end-to-end tests: where the built components and the pinned
//! tools are, real registries, test images, a token server, a fault-injecting fake
//! registry, a private Docker daemon, and skopeo as the independent checker.

pub mod docker;
pub mod fake_registry;
pub mod fault_proxy;
pub mod guest_memory;
pub mod hoist_server;
pub mod host_process;
pub mod images;
pub mod ready_host;
pub mod registry;
pub mod scale_out;
pub mod skopeo;
pub mod token_server;

use hoist_imports::boundary::client::Clients;
use hoist_imports::boundary::credentials::HostCredential;
use hoist_imports::contract::{
    Credential, ImportRequest, Options, Phase, RegistryEndpoints, Status,
};
use hoist_imports::egress::{Cidr, EgressPolicy};
use hoist_imports::{ImportAccess, PluginRuntime};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The CLI component, built by this crate's build script.
pub const CLI_WASM: &str = env!("HOIST_CLI_WASM");
/// The plugin component, built by this crate's build script.
pub const PLUGIN_WASM: &str = env!("HOIST_PLUGIN_WASM");

/// Where `scripts/install-deps.sh` keeps the pinned tools: `$HOIST_CACHE`, else
/// `$HOME/.cache/hoist`.
pub fn hoist_cache() -> PathBuf {
    std::env::var_os("HOIST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/hoist")
        })
}

/// The `wasmtime` CLI that `scripts/install-deps.sh` pins: `$HOIST_WASMTIME`, else the one
/// under the cache, else whatever is on PATH.
pub fn wasmtime() -> PathBuf {
    if let Some(path) = std::env::var_os("HOIST_WASMTIME") {
        return path.into();
    }
    let pinned = hoist_cache().join("tools/bin/wasmtime");
    if pinned.exists() {
        pinned
    } else {
        "wasmtime".into()
    }
}

/// Runs `wasmtime run -S http hoist.wasm ARGS…` and returns what it printed.
pub fn hoist(args: &[&str]) -> Output {
    Command::new(wasmtime())
        .args(["run", "-S", "http"])
        .arg(CLI_WASM)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e}; run scripts/install-deps.sh",
                wasmtime().display()
            )
        })
}

/// An `Authorization` header with Basic credentials.
pub fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `ready` until it holds, failing the test after `deadline`.
pub fn wait_until(deadline: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while !ready() {
        assert!(
            Instant::now() < end,
            "timed out after {deadline:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Serves `app` on a loopback port from a thread and runtime of its own, so test servers
/// keep answering whatever the test's own runtime is doing. Returns the port.
pub fn serve(app: axum::Router) -> u16 {
    serve_on("127.0.0.1", app)
}

/// [`serve`], on another loopback address (`127.0.0.2`, …).
pub fn serve_on(ip: &str, app: axum::Router) -> u16 {
    let listener = TcpListener::bind((ip, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    port
}

/// The plugin, loaded once per test binary.
pub fn plugin() -> &'static PluginRuntime {
    static PLUGIN: OnceLock<PluginRuntime> = OnceLock::new();
    PLUGIN.get_or_init(|| {
        let bytes = std::fs::read(PLUGIN_WASM).expect("the plugin was built");
        PluginRuntime::new(&bytes, loopback_clients()).expect("the plugin loads")
    })
}

/// The pooled client with the test registries' loopback addresses allowed, as an admin
/// would allow a registry on their own network.
pub fn loopback_clients() -> Clients {
    Clients::new(
        EgressPolicy {
            allowed: vec![Cidr::parse("127.0.0.0/8").unwrap()],
            ..Default::default()
        },
        &Default::default(),
        Duration::from_secs(15),
    )
    .unwrap()
}

/// An import request from `source` to `target`, with the given registries reached over
/// plain HTTP on loopback.
pub fn request(source: &str, target: &str, insecure: &[&str]) -> ImportRequest {
    ImportRequest {
        source: source.into(),
        target: target.into(),
        platforms: Vec::new(),
        options: Options {
            insecure_registries: insecure.iter().map(|s| s.to_string()).collect(),
            ..hoist_imports::contract::default_options()
        },
        credentials: Vec::new(),
    }
}

/// Adds a mirror: `registry` is reached at `url`.
pub fn with_mirror(mut req: ImportRequest, registry: &str, url: &str) -> ImportRequest {
    req.options.endpoints.push(RegistryEndpoints {
        registry: registry.into(),
        endpoints: vec![url.into()],
    });
    req
}

pub fn with_credentials(
    mut req: ImportRequest,
    registry: &str,
    user: &str,
    password: &str,
) -> ImportRequest {
    req.credentials.push(Credential {
        registry: registry.into(),
        username: user.into(),
        password: password.into(),
    });
    req
}

/// Runs an import through the compiled plugin under wasmtime, to its end.
pub fn run_import(req: &ImportRequest) -> Status {
    run_import_with(plugin(), req)
}

/// [`run_import`] with a runtime of the caller's (another network, say).
pub fn run_import_with(runtime: &PluginRuntime, req: &ImportRequest) -> Status {
    run_import_holding(runtime, req, Vec::new())
}

/// [`run_import_with`], the host holding `credentials` for the plugin.
pub fn run_import_holding(
    runtime: &PluginRuntime,
    req: &ImportRequest,
    credentials: Vec<HostCredential>,
) -> Status {
    let access = ImportAccess {
        credentials,
        own_registry: None,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(runtime.import_with(req, access, |_| true))
        .expect("the plugin runs without trapping")
}

/// Fails the test unless the import finished, naming its error and warnings.
pub fn assert_done(status: &Status) {
    assert_eq!(
        status.phase,
        Phase::Done,
        "the import failed: {:?} (warnings: {:?})",
        status.error,
        status.warnings
    );
}
