//! Loading the plugin component and calling it.
//!
//! The component is compiled once per process; every call gets a fresh `Store` made from a
//! pre-instantiated template, with a memory cap and an epoch deadline, so a misbehaving
//! plugin can fail one call and nothing else.

use crate::outbound::client::Clients;
use crate::outbound::egress::EgressPolicy;
use crate::outbound::{HostCredential, ImportNet, Internal};
use anyhow::{Context, Result, anyhow, bail};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
    exports: { default: async },
});

pub use exports::hoist::plugin::reference::{ImageReference, TargetName};
pub use hoist::plugin::types::{
    BlobProgress, BlobState, Credential, Error as PluginError, ImportRequest, Options, Phase,
    Platform, RegistryEndpoints, Status, Timeouts,
};

/// The WIT package the host speaks. A plugin must export its interfaces at a version
/// that is semver-compatible with this one.
pub const WIT_PACKAGE: &str = "hoist:plugin";
pub const WIT_VERSION: (u64, u64, u64) = (0, 1, 0);

/// The plugin built with this host, embedded at compile time.
pub static BUILTIN: &[u8] = include_bytes!(env!("HOIST_BUILTIN_PLUGIN"));

/// How often the epoch ticks, and so the granularity of every deadline below.
const EPOCH_TICK: Duration = Duration::from_millis(10);
/// A parse is a few microseconds of work; anything near this is a runaway plugin.
const CALL_DEADLINE: Duration = Duration::from_secs(2);
/// How long one `advance` call works before it reports progress.
const ADVANCE_BUDGET_MS: u32 = 200;
/// How far past its budget an `advance` call may run before it counts as a runaway.
const ADVANCE_GRACE: Duration = Duration::from_secs(10);
/// The most linear memory one plugin instance may grow to.
const MEMORY_LIMIT: usize = 64 << 20;
/// Connecting to a registry; the plugin's own timeouts cover everything after.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// A loaded plugin, ready to be instantiated for each call.
#[derive(Clone)]
pub struct PluginRuntime {
    engine: Engine,
    pre: Arc<PluginPre<PluginState>>,
    /// The pooled client and egress policy every import's requests go through.
    clients: Clients,
}

/// What the host lends one import: credentials it adds at the `wasi:http` boundary, and
/// the in-process route to its own registry.
#[derive(Default)]
pub struct ImportAccess {
    pub credentials: Vec<HostCredential>,
    pub internal: Option<Internal>,
}

/// What one instance of the plugin owns in the host.
pub struct PluginState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    limits: StoreLimits,
    net: ImportNet,
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for PluginState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.net,
        }
    }
}

impl PluginRuntime {
    /// Loads the built-in plugin.
    pub fn builtin() -> Result<Self> {
        Self::from_bytes(BUILTIN).context("loading the built-in plugin")
    }

    /// Loads a plugin component from a file, for admins who run a newer plugin than the
    /// one built in.
    pub fn from_file(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("reading the plugin component {}", path.display()))?;
        Self::from_bytes(&bytes).with_context(|| format!("loading the plugin {}", path.display()))
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Self::from_bytes_with_config(bytes, |_| {})
    }

    /// Loads the plugin given by path, or the built-in one, keeping its compiled form in
    /// `cache_dir`: compiling takes seconds, loading the compiled artifact milliseconds.
    pub fn load(path: Option<&Path>, cache_dir: &Path) -> Result<Self> {
        let bytes = match path {
            Some(path) => std::fs::read(path)
                .with_context(|| format!("reading the plugin component {}", path.display()))?,
            None => BUILTIN.to_vec(),
        };
        Self::build(&bytes, Some(cache_dir), |_| {}).with_context(|| match path {
            Some(path) => format!("loading the plugin {}", path.display()),
            None => "loading the built-in plugin".into(),
        })
    }

    /// [`PluginRuntime::from_bytes`], with a say in the engine's configuration: tests use
    /// it to give the guest memory they can inspect afterwards.
    pub fn from_bytes_with_config(
        bytes: &[u8],
        configure: impl FnOnce(&mut Config),
    ) -> Result<Self> {
        Self::build(bytes, None, configure)
    }

    fn build(
        bytes: &[u8],
        cache_dir: Option<&Path>,
        configure: impl FnOnce(&mut Config),
    ) -> Result<Self> {
        let mut config = Config::new();
        configure(&mut config);
        config.epoch_interruption(true);
        let engine = Engine::new(&config)?;
        let component = match cache_dir {
            Some(dir) => compile_cached(&engine, bytes, dir)?,
            None => compile(&engine, bytes)?,
        };
        check_contract_version(&engine, &component)?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        let pre = PluginPre::new(linker.instantiate_pre(&component)?)?;

        // The ticker only holds a weak engine handle, so it ends with the last runtime.
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("hoist-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })?;
        let clients = Clients::new(
            EgressPolicy::default(),
            &HashMap::new(),
            DEFAULT_CONNECT_TIMEOUT,
        )
        .map_err(|e| anyhow!(e))?;
        Ok(Self {
            engine,
            pre: Arc::new(pre),
            clients,
        })
    }

    /// Sends the plugin's requests through `clients`: their egress policy, their
    /// trusted CAs. Without this, only public addresses are reachable.
    pub fn with_network(mut self, clients: Clients) -> Self {
        self.clients = clients;
        self
    }

    fn store(&self, access: ImportAccess) -> Store<PluginState> {
        let state = PluginState {
            wasi: WasiCtx::builder().build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            net: ImportNet::new(self.clients.clone(), access.credentials, access.internal),
            limits: StoreLimitsBuilder::new()
                .memory_size(MEMORY_LIMIT)
                .instances(4)
                .build(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(ticks(CALL_DEADLINE));
        store.epoch_deadline_trap();
        store
    }

    /// Parses an image reference with the plugin.
    pub async fn parse(&self, input: &str) -> Result<Result<ImageReference, PluginError>> {
        let mut store = self.store(ImportAccess::default());
        let plugin = self.pre.instantiate_async(&mut store).await?;
        plugin
            .hoist_plugin_reference()
            .call_parse(&mut store, input)
            .await
            .map_err(anyhow::Error::from)
            .context("the plugin failed while parsing a reference")
    }

    /// The default target of `source` inside `project`, with optional overrides.
    pub async fn default_target(
        &self,
        project: &str,
        source: &str,
        target_image: Option<&str>,
        target_tag: Option<&str>,
    ) -> Result<Result<TargetName, PluginError>> {
        let mut store = self.store(ImportAccess::default());
        let plugin = self.pre.instantiate_async(&mut store).await?;
        plugin
            .hoist_plugin_reference()
            .call_default_target(&mut store, project, source, target_image, target_tag)
            .await
            .map_err(anyhow::Error::from)
            .context("the plugin failed while naming a target")
    }
}

impl PluginRuntime {
    /// Runs one import to its end in a store of its own, calling `on_status` after every
    /// slice of work. When `on_status` returns false the import is cancelled.
    pub async fn import(
        &self,
        request: &ImportRequest,
        on_status: impl FnMut(&Status) -> bool,
    ) -> Result<Status> {
        self.import_with(request, ImportAccess::default(), on_status)
            .await
    }

    /// [`PluginRuntime::import`], with credentials and routes lent by the host.
    pub async fn import_with(
        &self,
        request: &ImportRequest,
        access: ImportAccess,
        on_status: impl FnMut(&Status) -> bool,
    ) -> Result<Status> {
        let mut store = self.store(access);
        let mut status = self.drive(&mut store, request, on_status).await?;
        // The plugin knows a request was refused; the host knows why. Name the class of
        // address, which is what an admin needs to decide.
        if let Some(PluginError::DeniedByPolicy(message)) = &mut status.error
            && let Some(denied) = store.data().net.denials().first()
        {
            *message = format!("{message}: {denied}");
        }
        Ok(status)
    }

    async fn drive(
        &self,
        mut store: &mut Store<PluginState>,
        request: &ImportRequest,
        mut on_status: impl FnMut(&Status) -> bool,
    ) -> Result<Status> {
        let plugin = self.pre.instantiate_async(&mut store).await?;
        let api = plugin.hoist_plugin_importer().task();
        let task = match api.call_start(&mut store, request).await? {
            Ok(task) => task,
            Err(error) => return Ok(failed_before_start(error)),
        };
        let slice = Duration::from_millis(u64::from(ADVANCE_BUDGET_MS)) + ADVANCE_GRACE;
        loop {
            store.set_epoch_deadline(ticks(slice));
            let status = api
                .call_advance(&mut store, task, ADVANCE_BUDGET_MS)
                .await
                .map_err(anyhow::Error::from)
                .context("the plugin failed during an import")?;
            let finished = matches!(status.phase, Phase::Done | Phase::Failed | Phase::Cancelled);
            if finished {
                task.resource_drop_async(&mut store).await?;
                return Ok(status);
            }
            if !on_status(&status) {
                api.call_cancel(&mut store, task).await?;
                let status = api.call_status(&mut store, task).await?;
                task.resource_drop_async(&mut store).await?;
                return Ok(status);
            }
        }
    }
}

fn compile(engine: &Engine, bytes: &[u8]) -> Result<Component> {
    Component::new(engine, bytes)
        .map_err(anyhow::Error::from)
        .context("the file is not a valid WebAssembly component")
}

/// Compiles `bytes`, or loads the artifact an earlier start compiled from the same bytes
/// with a compatible engine. The artifact is native code that is loaded without checks,
/// so the cache folder must be as trusted as the host's binary: it lives in the data
/// folder, which only the host writes.
fn compile_cached(engine: &Engine, bytes: &[u8], dir: &Path) -> Result<Component> {
    use sha2::{Digest as _, Sha256};
    use std::hash::{Hash as _, Hasher as _};
    let mut engine_hash = std::collections::hash_map::DefaultHasher::new();
    engine
        .precompile_compatibility_hash()
        .hash(&mut engine_hash);
    let content: String = Sha256::digest(bytes)[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let path = dir.join(format!(
        "plugin-{content}-{:016x}.cwasm",
        engine_hash.finish()
    ));
    if path.exists() {
        // SAFETY: the file was written by `Component::serialize` of this host (see the
        // trust note above), and its name binds it to these bytes and this engine.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => return Ok(component),
            Err(e) => tracing::warn!(
                path = %path.display(),
                error = %e,
                "the compiled plugin cache is unusable; compiling again"
            ),
        }
    }
    let component = compile(engine, bytes)?;
    let written = component
        .serialize()
        .map_err(anyhow::Error::from)
        .and_then(|artifact| {
            std::fs::create_dir_all(dir)?;
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, artifact)?;
            std::fs::rename(&tmp, &path)?;
            Ok(())
        });
    if let Err(e) = written {
        tracing::warn!(error = %e, "cannot cache the compiled plugin; the next start compiles again");
    }
    Ok(component)
}

/// The status of an import that `start` refused.
fn failed_before_start(error: PluginError) -> Status {
    Status {
        phase: Phase::Failed,
        bytes_done: 0,
        bytes_total: 0,
        blobs_done: 0,
        blobs_total: 0,
        blobs: Vec::new(),
        digest: None,
        target_reference: None,
        error: Some(error),
        warnings: Vec::new(),
    }
}

fn ticks(d: Duration) -> u64 {
    (d.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
}

/// Refuses a component that does not speak a `hoist:plugin` version this host knows,
/// with a message that says which version it found and which one would work, instead of
/// the linker's "missing export" error.
fn check_contract_version(engine: &Engine, component: &Component) -> Result<()> {
    let ty = component.component_type();
    let prefix = format!("{WIT_PACKAGE}/");
    let mut found = Vec::new();
    for (name, _) in ty.exports(engine) {
        let Some(rest) = name.strip_prefix(&prefix) else {
            continue;
        };
        let version = rest.split_once('@').map(|(_, v)| v).unwrap_or("");
        found.push((name.to_owned(), version.to_owned()));
    }
    let (want_major, want_minor, _) = WIT_VERSION;
    let wanted = format!("{WIT_PACKAGE}@{want_major}.{want_minor}.x");
    if found.is_empty() {
        let exports: Vec<_> = ty.exports(engine).map(|(n, _)| n.to_owned()).collect();
        bail!(
            "this component is not a Hoist plugin: it exports no {WIT_PACKAGE} interface \
             (it exports: {}); build one from plugin/ or use the built-in plugin",
            if exports.is_empty() {
                "nothing".into()
            } else {
                exports.join(", ")
            }
        );
    }
    for (name, version) in &found {
        let parsed = parse_version(version).ok_or_else(|| {
            anyhow!("the plugin exports {name} with no usable version; it needs {wanted}")
        })?;
        // Semver for 0.x: the minor version is the breaking one.
        let compatible = if want_major == 0 {
            parsed.0 == 0 && parsed.1 == want_minor
        } else {
            parsed.0 == want_major
        };
        if !compatible {
            bail!(
                "the plugin implements {WIT_PACKAGE}@{version}, but this host understands \
                 {wanted}; load a plugin built for {wanted}, or upgrade the host"
            );
        }
    }
    Ok(())
}

fn parse_version(v: &str) -> Option<(u64, u64, u64)> {
    let core = v.split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
    Some((parts.next()??, parts.next()??, parts.next()??))
}
