//! The host side of the contract: loading the compiled plugin, refusing components it does
//! not understand, and getting the same answers from the wasm build as from native code.

use hoist_imports::boundary::client::Clients;
use hoist_imports::contract::{InvalidInput, PluginError, RequestField};
use hoist_imports::{BUILTIN, PluginRuntime};
use hoist_plugin::reference::Reference;
use serde::Deserialize;
use wasmtime::component::Component;
use wasmtime::{Engine, component::types::ComponentItem};

/// The built-in plugin, with the default egress policy (public addresses only).
fn builtin() -> PluginRuntime {
    PluginRuntime::new(BUILTIN, Clients::public_only()).unwrap()
}

fn from_bytes(bytes: &[u8]) -> anyhow::Result<PluginRuntime> {
    PluginRuntime::new(bytes, Clients::public_only())
}

#[derive(Deserialize)]
struct Case {
    input: String,
}

fn parse_cases() -> Vec<Case> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../plugin/tests/data/parse-cases.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test]
async fn the_wasm_build_parses_like_the_native_build() {
    let plugin = builtin();
    let cases = parse_cases();
    // Every tenth row, plus the seed's examples at the head of the table.
    let sample: Vec<&Case> = cases
        .iter()
        .enumerate()
        .filter(|(i, _)| *i < 12 || i % 10 == 0)
        .map(|(_, c)| c)
        .collect();
    assert!(sample.len() >= 20);
    for case in sample {
        let wasm = plugin.parse(&case.input).await.unwrap();
        match (Reference::parse(&case.input), wasm) {
            (Ok(native), Ok(wasm)) => {
                assert_eq!(wasm.registry, native.registry(), "{}", case.input);
                assert_eq!(wasm.repository, native.repository(), "{}", case.input);
                assert_eq!(wasm.tag.as_deref(), native.tag(), "{}", case.input);
                assert_eq!(wasm.digest.as_deref(), native.digest(), "{}", case.input);
                assert_eq!(wasm.familiar, native.familiar(), "{}", case.input);
                assert_eq!(wasm.canonical, native.canonical(), "{}", case.input);
            }
            (Err(native), Err(PluginError::InvalidInput(input))) => {
                assert_eq!(input.message, native.to_string(), "{}", case.input);
                assert_eq!(input.field, Some(RequestField::Source), "{}", case.input);
            }
            (native, wasm) => panic!("{}: native {native:?}, wasm {wasm:?}", case.input),
        }
    }
}

#[tokio::test]
async fn parse_normalises_and_names_the_wrong_part() {
    let plugin = builtin();
    let nginx = plugin.parse("nginx").await.unwrap().unwrap();
    assert_eq!(nginx.canonical, "docker.io/library/nginx:latest");
    assert_eq!(nginx.familiar, "nginx:latest");

    let err = plugin
        .parse("ghcr.io/Owner/repo")
        .await
        .unwrap()
        .unwrap_err();
    let PluginError::InvalidInput(InvalidInput { message, .. }) = err else {
        panic!("wrong error case: {err:?}");
    };
    assert!(
        message.contains("\"Owner\"") && message.contains("lowercase"),
        "{message}"
    );
}

#[tokio::test]
async fn one_call_parses_the_source_and_names_the_target_with_the_field_at_fault() {
    let plugin = builtin();
    let names = plugin
        .name_import("web", "ghcr.io/owner/repo:v1.0.0", None, None, "reg:5000")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(names.source.canonical, "ghcr.io/owner/repo:v1.0.0");
    assert_eq!(names.target.repository, "web/repo");
    assert_eq!(names.target.tag.as_deref(), Some("v1.0.0"));
    assert_eq!(names.target_reference, "reg:5000/web/repo:v1.0.0");
    for (image, tag, field) in [
        (None, Some("-bad"), RequestField::TargetTag),
        (Some("Up"), None, RequestField::TargetImage),
    ] {
        let err = plugin
            .name_import("web", "nginx", image, tag, "reg")
            .await
            .unwrap()
            .unwrap_err();
        let PluginError::InvalidInput(input) = &err else {
            panic!("{err:?}");
        };
        assert_eq!(input.field, Some(field), "{err:?}");
        assert!(
            !input.message.starts_with("target"),
            "the message does not carry the field as a prefix: {}",
            input.message
        );
    }
}

/// A component that exports the contract's interface names at another version.
fn component_exporting(name: &str) -> Vec<u8> {
    // wasmtime compiles the text format directly.
    format!(
        r#"(component
             (instance $i)
             (export "{name}" (instance $i)))"#
    )
    .into_bytes()
}

#[test]
fn a_plugin_of_an_unknown_contract_version_is_refused() {
    for old_or_new in ["0.2.0", "0.4.0"] {
        let bytes = component_exporting(&format!("hoist:plugin/reference@{old_or_new}"));
        let err = from_bytes(&bytes)
            .err()
            .unwrap_or_else(|| panic!("{old_or_new} must be refused"));
        let message = format!("{err:#}");
        assert!(
            message.contains(&format!("hoist:plugin@{old_or_new}")),
            "{message}"
        );
        assert!(message.contains("hoist:plugin@0.3.x"), "{message}");
    }

    let bytes = component_exporting("hoist:plugin/reference@1.0.0");
    assert!(from_bytes(&bytes).is_err());
}

#[test]
fn a_component_that_is_not_a_plugin_is_refused() {
    let bytes = component_exporting("example:other/thing@0.1.0");
    let message = format!("{:#}", from_bytes(&bytes).err().unwrap());
    assert!(message.contains("not a Hoist plugin"), "{message}");
    assert!(message.contains("example:other/thing@0.1.0"), "{message}");

    let message = format!("{:#}", from_bytes(b"not wasm").err().unwrap());
    assert!(
        message.contains("not a valid WebAssembly component"),
        "{message}"
    );
}

/// The plugin must run under any WASI 0.2 host, so it may import WASI 0.2 interfaces and
/// nothing else, and no more of them than it needs.
#[test]
fn the_plugin_imports_only_wasi_0_2() {
    let engine = Engine::default();
    let component = Component::new(&engine, BUILTIN).unwrap();
    let mut imports = Vec::new();
    let allowed_packages = [
        "wasi:http/",
        "wasi:io/",
        "wasi:clocks/",
        "wasi:random/",
        "wasi:cli/",
    ];
    for (name, item) in component.component_type().imports(&engine) {
        assert!(
            matches!(item.ty, ComponentItem::ComponentInstance(_)),
            "{name} is not an interface"
        );
        // The contract's `types` interface holds only types; exports that use them make
        // it a type-only import, which needs nothing from a host.
        if name == "hoist:plugin/types@0.3.0" {
            continue;
        }
        let version = name.rsplit_once('@').map(|(_, v)| v).unwrap_or("");
        assert!(
            version.starts_with("0.2."),
            "{name} is not a WASI 0.2 interface"
        );
        assert!(
            allowed_packages.iter().any(|p| name.starts_with(p)),
            "{name} is outside http, io, clocks, random and cli"
        );
        imports.push(name.to_owned());
    }
    assert!(
        imports
            .iter()
            .any(|i| i.starts_with("wasi:http/outgoing-handler@")),
        "the plugin speaks HTTP through wasi:http: {imports:?}"
    );
}

#[tokio::test]
async fn the_compiled_plugin_is_cached_and_a_broken_cache_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let load = || PluginRuntime::load(None, dir.path(), Clients::public_only()).unwrap();
    let first = load();
    assert!(first.compiled_fresh(), "an empty cache means compiling");
    drop(first);
    let artifacts: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    assert_eq!(artifacts.len(), 1, "{artifacts:?}");

    let cached = load();
    assert!(
        !cached.compiled_fresh(),
        "the second start loads the cached artifact"
    );
    assert_eq!(
        cached.parse("nginx").await.unwrap().unwrap().canonical,
        "docker.io/library/nginx:latest"
    );

    // The artifact is mapped while a runtime uses it; it is only ever replaced by a
    // rename, as the host itself does, never rewritten in place.
    drop(cached);
    let broken = dir.path().join("broken");
    std::fs::write(&broken, b"garbage").unwrap();
    std::fs::rename(&broken, &artifacts[0]).unwrap();
    let rebuilt = load();
    assert!(
        rebuilt.compiled_fresh(),
        "a broken artifact is compiled again"
    );
    assert!(rebuilt.parse("nginx").await.unwrap().is_ok());
    drop(rebuilt);
    assert!(
        !load().compiled_fresh(),
        "and the rebuilt artifact is used next time"
    );
}
