//! Loading the plugin component and calling it.
//!
//! The component is compiled once per process; every call gets a fresh `Store` made from a
//! pre-instantiated template, with a memory cap and an epoch deadline, so a misbehaving
//! plugin can fail one call and nothing else.

use crate::boundary::ImportNet;
use crate::boundary::client::Clients;
use crate::boundary::credentials::{Credentials, HostCredential};
use crate::boundary::own_registry::OwnRegistryRoute;
use crate::compiled::{compile, compile_cached};
use crate::contract::{
    ImageReference, ImportNames, ImportRequest, Phase, PlanPhase, PlanStatus, PluginError,
    PluginPre, RequestCounts, Status, SyncRequest, check_contract_version,
};
use anyhow::{Context, Result};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

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

/// A loaded plugin, ready to be instantiated for each call.
#[derive(Clone)]
pub struct PluginRuntime {
    engine: Engine,
    pre: Arc<PluginPre<PluginState>>,
    /// The pooled client and egress policy every import's requests go through.
    clients: Clients,
    /// Whether this runtime compiled the component, rather than loading the compiled form
    /// an earlier start cached.
    compiled_fresh: bool,
}

/// What the host lends one import: credentials it adds at the `wasi:http` boundary, and
/// the in-process route to its own registry.
#[derive(Default)]
pub struct ImportAccess {
    pub credentials: Vec<HostCredential>,
    pub own_registry: Option<OwnRegistryRoute>,
}

/// What one instance of the plugin owns in the host.
pub(crate) struct PluginState {
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
    /// Loads the plugin component at `path`, or the built-in one, keeping its compiled
    /// form in `cache_dir`. Every import's requests go through `network`: its egress
    /// policy and its trusted CAs.
    pub fn load(path: Option<&Path>, cache_dir: &Path, network: Clients) -> Result<Self> {
        let bytes = match path {
            Some(path) => std::fs::read(path)
                .with_context(|| format!("reading the plugin component {}", path.display()))?,
            None => BUILTIN.to_vec(),
        };
        Self::build(&bytes, Some(cache_dir), network, |_| {}).with_context(|| match path {
            Some(path) => format!("loading the plugin {}", path.display()),
            None => "loading the built-in plugin".into(),
        })
    }

    /// Loads the component `bytes` (a pulled artifact), named `origin` in messages, keeping
    /// its compiled form in `cache_dir`.
    pub fn load_bytes(
        bytes: &[u8],
        origin: &str,
        cache_dir: &Path,
        network: Clients,
    ) -> Result<Self> {
        Self::build(bytes, Some(cache_dir), network, |_| {})
            .with_context(|| format!("loading the plugin {origin}"))
    }

    /// Loads the component `bytes` without a cache.
    pub fn new(bytes: &[u8], network: Clients) -> Result<Self> {
        Self::build(bytes, None, network, |_| {})
    }

    /// [`PluginRuntime::new`], with a say in the engine's configuration: tests use it to
    /// give the guest memory they can inspect afterwards.
    pub fn with_engine_config(
        bytes: &[u8],
        network: Clients,
        configure: impl FnOnce(&mut Config),
    ) -> Result<Self> {
        Self::build(bytes, None, network, configure)
    }

    fn build(
        bytes: &[u8],
        cache_dir: Option<&Path>,
        network: Clients,
        configure: impl FnOnce(&mut Config),
    ) -> Result<Self> {
        let mut config = Config::new();
        configure(&mut config);
        config.epoch_interruption(true);
        let engine = Engine::new(&config)?;
        let (component, compiled_fresh) = match cache_dir {
            Some(dir) => {
                let compiled = compile_cached(&engine, bytes, dir)?;
                (compiled.component, compiled.fresh)
            }
            None => (compile(&engine, bytes)?, true),
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
        Ok(Self {
            engine,
            pre: Arc::new(pre),
            clients: network,
            compiled_fresh,
        })
    }

    /// The same compiled plugin, its imports sent through another network (another
    /// egress policy or set of trusted CAs).
    pub fn with_network(&self, network: Clients) -> Self {
        Self {
            clients: network,
            ..self.clone()
        }
    }

    /// The request ceilings and the quotas sources reported, shared by every import.
    pub(crate) fn pacing(&self) -> &Arc<crate::boundary::pacing::Pacing> {
        self.clients.pacing()
    }

    /// Whether loading this runtime compiled the component (no usable cached form).
    pub fn compiled_fresh(&self) -> bool {
        self.compiled_fresh
    }

    fn store(&self, access: ImportAccess) -> Store<PluginState> {
        let state = PluginState {
            wasi: WasiCtx::builder().build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            net: ImportNet::new(
                self.clients.clone(),
                Credentials::new(access.credentials),
                access.own_registry,
            ),
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

    /// Parses `source` and names its target inside `project` of `target_registry`, with
    /// optional overrides: one parse for everything an import request needs.
    pub async fn name_import(
        &self,
        project: &str,
        source: &str,
        target_image: Option<&str>,
        target_tag: Option<&str>,
        target_registry: &str,
    ) -> Result<Result<ImportNames, PluginError>> {
        let mut store = self.store(ImportAccess::default());
        let plugin = self.pre.instantiate_async(&mut store).await?;
        plugin
            .hoist_plugin_reference()
            .call_name_import(
                &mut store,
                project,
                source,
                target_image,
                target_tag,
                target_registry,
            )
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

    /// Runs one sync plan to its end in a store of its own, with what the host lends it,
    /// calling `on_status` after every slice. When it returns false the plan is cancelled.
    pub async fn plan(
        &self,
        request: &SyncRequest,
        access: ImportAccess,
        mut on_status: impl FnMut(&PlanStatus) -> bool,
    ) -> Result<PlanStatus> {
        let mut store = self.store(access);
        let plugin = self.pre.instantiate_async(&mut store).await?;
        let api = plugin.hoist_plugin_sync().plan();
        let plan = match api.call_start(&mut store, request).await? {
            Ok(plan) => plan,
            Err(error) => return Ok(plan_failed_before_start(error)),
        };
        let slice = Duration::from_millis(u64::from(ADVANCE_BUDGET_MS)) + ADVANCE_GRACE;
        loop {
            store.set_epoch_deadline(ticks(slice));
            let status = api
                .call_advance(&mut store, plan, ADVANCE_BUDGET_MS)
                .await
                .map_err(anyhow::Error::from)
                .context("the plugin failed during a sync plan")?;
            if matches!(
                status.phase,
                PlanPhase::Done | PlanPhase::Failed | PlanPhase::Cancelled
            ) {
                plan.resource_drop_async(&mut store).await?;
                return Ok(status);
            }
            if !on_status(&status) {
                api.call_cancel(&mut store, plan).await?;
                let status = api.call_status(&mut store, plan).await?;
                plan.resource_drop_async(&mut store).await?;
                return Ok(status);
            }
        }
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

/// The status of an import that `start` refused.
fn failed_before_start(error: PluginError) -> Status {
    Status {
        phase: Phase::Failed,
        bytes_done: 0,
        bytes_total: 0,
        blobs_done: 0,
        blobs_total: 0,
        blobs: Vec::new(),
        referrers: Vec::new(),
        digest: None,
        target_reference: None,
        error: Some(error),
        warnings: Vec::new(),
    }
}

/// The status of a plan that `start` refused.
fn plan_failed_before_start(error: PluginError) -> PlanStatus {
    PlanStatus {
        phase: PlanPhase::Failed,
        items: Vec::new(),
        repositories_done: 0,
        repositories_total: 0,
        requests: RequestCounts {
            manifest_head: 0,
            manifest_get: 0,
            blob: 0,
            tag_list: 0,
            catalog: 0,
            referrers: 0,
            token: 0,
        },
        target_requests: 0,
        error: Some(error),
        warnings: Vec::new(),
    }
}

fn ticks(d: Duration) -> u64 {
    (d.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
}
