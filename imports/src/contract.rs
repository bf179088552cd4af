//! The contract with the plugin: the bindings generated from `wit/`, the version this
//! host speaks (and the check that refuses any other), and the stable codes of the
//! plugin's errors.

use anyhow::{Result, anyhow, bail};
use wasmtime::Engine;
use wasmtime::component::Component;

wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
    exports: { default: async },
});

pub use exports::hoist::plugin::reference::{ImageReference, ImportNames};
pub use hoist::plugin::types::{
    BlobProgress, BlobState, Credential, Error as PluginError, ImportRequest, InvalidInput,
    KnownTag, Naming, Options, PathNaming, Pattern, PatternKind, Phase, PlanAction, PlanItem,
    PlanPhase, PlanStatus, Platform, ReferrerKind, ReferrerOptions, RegistryEndpoints,
    RequestCounts, RequestField, Status, SyncRequest, TagSelection, TargetName, Timeouts,
};

/// The WIT package the host speaks. A plugin must export its interfaces at a version
/// that is semver-compatible with this one.
pub(crate) const WIT_PACKAGE: &str = "hoist:plugin";
pub(crate) const WIT_VERSION: (u64, u64, u64) = (0, 3, 0);

/// Options with every value at its default (zero values mean "the default" in the
/// contract): every referrer copied, no cap, no endpoint overrides.
pub fn default_options() -> Options {
    Options {
        endpoints: Vec::new(),
        insecure_registries: Vec::new(),
        concurrency: 0,
        max_retries: 0,
        chunk_size: None,
        mount_from: Vec::new(),
        copy_foreign_layers: false,
        timeouts: None,
        host_credentials: Vec::new(),
        referrers: ReferrerOptions {
            skip: false,
            artifact_types: Vec::new(),
            require_signature: false,
        },
        max_bytes_per_second: 0,
        max_retry_wait_ms: 0,
    }
}

/// The machine-readable code and the human message of a plugin error, as the API, the
/// task records and the logs name them. An invalid reference (the source, the target
/// and their parts, the project) is `invalid_reference`; another invalid input (the
/// platforms, an option) is `invalid_request`.
pub fn error_parts(e: &PluginError) -> (&'static str, &str) {
    match e {
        PluginError::InvalidInput(InvalidInput {
            field:
                Some(
                    RequestField::Platforms
                    | RequestField::Options
                    | RequestField::Repositories
                    | RequestField::Tags
                    | RequestField::Naming,
                ),
            message,
        }) => ("invalid_request", message),
        PluginError::InvalidInput(i) => ("invalid_reference", &i.message),
        PluginError::Unauthorized(m) => ("unauthorized", m),
        PluginError::NotFound(m) => ("not_found", m),
        PluginError::RateLimited(m) => ("rate_limited", m),
        PluginError::DigestMismatch(m) => ("digest_mismatch", m),
        PluginError::UnsupportedMediaType(m) => ("unsupported_media_type", m),
        PluginError::Network(m) => ("network", m),
        PluginError::RegistryError(m) => ("registry_error", m),
        PluginError::DeniedByPolicy(m) => ("denied_by_policy", m),
        PluginError::Cancelled(m) => ("cancelled", m),
        PluginError::Unsigned(m) => ("unsigned", m),
    }
}

/// Refuses a component that does not speak a `hoist:plugin` version this host knows,
/// with a message that says which version it found and which one would work, instead of
/// the linker's "missing export" error.
pub(crate) fn check_contract_version(engine: &Engine, component: &Component) -> Result<()> {
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
