//! The smallest complete wasmtime embedding of Hoist's plugin: load `hoist_plugin.wasm`,
//! check its contract version, run one import, print its progress and the digest.
//!
//! `embed-rust PLUGIN.wasm SRC DST [--plain-http HOST]…`
//!
//! It needs nothing of Hoist but `wit/`. What a production host adds (an egress check on
//! every address dialled, credentials added at the `wasi:http` boundary rather than
//! passed in the request) is in `docs/embedding.md`.

use anyhow::{Context, Result, bail};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

// Rust types and typed calls for the contract, from the WIT files themselves.
wasmtime::component::bindgen!({
    path: "../../wit",
    world: "plugin",
    exports: { default: async },
});

use hoist::plugin::types::{ImportRequest, Options, Phase, ReferrerOptions};

/// The contract this host speaks. For 0.x the minor version is the breaking one, so any
/// `hoist:plugin@0.3.*` will do and nothing else.
const CONTRACT: &str = "hoist:plugin/";
const VERSION: &str = "0.3.";
/// How long one `advance` call may work before it reports, in milliseconds.
const BUDGET_MS: u32 = 200;

/// What one plugin instance owns: WASI's context, `wasi:http`'s, and their resources.
struct Host {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for Host {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            // wasmtime's own client: one connection per request, no egress check. A host
            // that runs imports for other people replaces it (docs/embedding.md).
            hooks: Default::default(),
        }
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: embed-rust PLUGIN.wasm SRC DST [--plain-http HOST]…";
    let (Some(plugin), Some(source), Some(target)) = (args.next(), args.next(), args.next()) else {
        bail!("{usage}");
    };
    let mut plain_http = Vec::new();
    while let Some(flag) = args.next() {
        match (flag.as_str(), args.next()) {
            ("--plain-http", Some(host)) => plain_http.push(host),
            _ => bail!("{usage}"),
        }
    }

    // Compile once; each import gets a store (an instance) of its own.
    let engine = Engine::default();
    let component = Component::from_file(&engine, &plugin)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("loading the plugin component {plugin}"))?;
    check_contract(&engine, &component)?;
    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    let pre = PluginPre::new(linker.instantiate_pre(&component)?)?;

    let host = Host {
        wasi: WasiCtx::builder().inherit_stderr().build(),
        http: WasiHttpCtx::new(),
        table: ResourceTable::new(),
    };
    let mut store = Store::new(&engine, host);
    let plugin = pre.instantiate_async(&mut store).await?;
    let task = plugin.hoist_plugin_importer().task();

    let request = ImportRequest {
        source,
        target,
        platforms: Vec::new(),
        options: Options {
            endpoints: Vec::new(),
            insecure_registries: plain_http,
            concurrency: 0,
            max_retries: 0,
            chunk_size: None,
            mount_from: Vec::new(),
            copy_foreign_layers: false,
            timeouts: None,
            host_credentials: Vec::new(),
            // Signatures, SBOMs and attestations travel with the image by default.
            referrers: ReferrerOptions {
                skip: false,
                artifact_types: Vec::new(),
                require_signature: false,
            },
            max_bytes_per_second: 0,
            max_retry_wait_ms: 0,
        },
        // Standalone use: credentials would go here, one per registry.
        credentials: Vec::new(),
    };
    let handle = match task.call_start(&mut store, &request).await? {
        Ok(handle) => handle,
        Err(e) => bail!("the plugin refused the request: {e:?}"),
    };

    // Ctrl-C cancels: the plugin stops every transfer and writes no tag.
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = interrupted.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            flag.store(true, Ordering::Relaxed);
        }
    });

    // Pull progress: each `advance` works for about its budget, then reports.
    let started = std::time::Instant::now();
    let status = loop {
        let status = task.call_advance(&mut store, handle, BUDGET_MS).await?;
        eprintln!(
            "{:>6.1}s {}: {}/{} bytes, {}/{} blobs",
            started.elapsed().as_secs_f64(),
            name(status.phase),
            status.bytes_done,
            status.bytes_total,
            status.blobs_done,
            status.blobs_total,
        );
        if matches!(status.phase, Phase::Done | Phase::Failed | Phase::Cancelled) {
            break status;
        }
        if interrupted.swap(false, Ordering::Relaxed) {
            task.call_cancel(&mut store, handle).await?;
        }
    };
    // Dropping the handle frees the task; had it still been running, this would abort it.
    handle.resource_drop_async(&mut store).await?;

    match (status.phase, status.target_reference, status.error) {
        (Phase::Done, Some(reference), _) => {
            println!("{reference}");
            Ok(())
        }
        (phase, _, Some(error)) => bail!("the import ended {}: {error:?}", name(phase)),
        (phase, _, None) => bail!("the import ended {} without a digest", name(phase)),
    }
}

/// `copying`, `done`, …: the phase as the WIT names it.
fn name(phase: Phase) -> String {
    format!("{phase:?}").replace("Phase::", "").to_lowercase()
}

/// Refuses a component that does not export the contract at a version this host knows,
/// with a message that says what it found, instead of wasmtime's "missing export".
fn check_contract(engine: &Engine, component: &Component) -> Result<()> {
    let ty = component.component_type();
    let exports = ty.exports(engine).map(|(name, _)| name.to_owned());
    let found: Vec<String> = exports.filter(|n| n.starts_with(CONTRACT)).collect();
    let known = |name: &String| {
        name.split_once('@')
            .is_some_and(|(_, v)| v.starts_with(VERSION))
    };
    if found.is_empty() || !found.iter().all(known) {
        bail!(
            "this host needs a plugin exporting hoist:plugin@{VERSION}x; this one exports {found:?}"
        );
    }
    Ok(())
}
