//! Compiling the plugin, and keeping its compiled form: compiling takes seconds,
//! loading the compiled artifact milliseconds.

use anyhow::{Context, Result};
use std::path::Path;
use wasmtime::Engine;
use wasmtime::component::Component;

/// A compiled plugin, and whether it was compiled now (rather than loaded from the cache).
pub(crate) struct Compiled {
    pub component: Component,
    pub fresh: bool,
}

pub(crate) fn compile(engine: &Engine, bytes: &[u8]) -> Result<Component> {
    Component::new(engine, bytes)
        .map_err(anyhow::Error::from)
        .context("the file is not a valid WebAssembly component")
}

/// Compiles `bytes`, or loads the artifact an earlier start compiled from the same bytes
/// with a compatible engine. The artifact is native code that is loaded without checks,
/// so the cache folder must be as trusted as the host's binary: it lives in the data
/// folder, which only the host writes.
pub(crate) fn compile_cached(engine: &Engine, bytes: &[u8], dir: &Path) -> Result<Compiled> {
    use sha2::{Digest as _, Sha256};
    use std::hash::{Hash as _, Hasher as _};
    let mut engine_hash = std::collections::hash_map::DefaultHasher::new();
    engine
        .precompile_compatibility_hash()
        .hash(&mut engine_hash);
    let content = hoist_common::hex(&Sha256::digest(bytes)[..16]);
    let path = dir.join(format!(
        "plugin-{content}-{:016x}.cwasm",
        engine_hash.finish()
    ));
    if path.exists() {
        // SAFETY: the file was written by `Component::serialize` of this host (see the
        // trust note above), and its name binds it to these bytes and this engine.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => {
                return Ok(Compiled {
                    component,
                    fresh: false,
                });
            }
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
    Ok(Compiled {
        component,
        fresh: true,
    })
}
