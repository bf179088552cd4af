//! The plugin shipped as an OCI artifact (config `application/vnd.wasm.config.v0+json`, one
//! `application/wasm` layer): `hoist-host plugin push` puts it into a host, a second host
//! configured with `plugin = "oci://…@sha256:…"` pulls it at start and runs imports with
//! it; a digest that does not match, a plugin of an unknown contract version and a bare
//! tag are refused with messages that say what to do.

use hoist_host::config::Config;
use hoist_tests::hoist_server::{ADMIN_PASSWORD, HoistServer, over_plain_http, test_config};
use hoist_tests::host_process;
use hoist_tests::images::{Format, Pusher};
use hoist_tests::registry::{Auth, Registry};
use hoist_tests::{PLUGIN_WASM, serve, skopeo};
use serde_json::{Value, json};
use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// `hoist-host plugin push FILE REFERENCE --plain-http`, as the admin when `login`; the
/// pinned reference it prints.
fn push(file: &Path, reference: &str, login: bool) -> String {
    let mut cmd = host_process::command();
    cmd.args(["plugin", "push"])
        .arg(file)
        .args([reference, "--plain-http"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if login {
        cmd.args(["--username", "admin", "--password-stdin"]);
    }
    let mut child = cmd.spawn().expect("hoist-host runs");
    writeln!(child.stdin.take().unwrap(), "{ADMIN_PASSWORD}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "plugin push failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pinned = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(
        pinned.starts_with("oci://") && pinned.contains("@sha256:"),
        "{pinned}"
    );
    pinned
}

/// Builds a host from `config` and returns why it refused to start.
fn start_error(config: &Config) -> String {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    match rt.block_on(hoist_host::server::build(
        config,
        Some(ADMIN_PASSWORD.into()),
    )) {
        Ok(_) => panic!("the host started"),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn a_plugin_pushed_to_one_host_runs_the_imports_of_another() {
    // The first host holds the plugin in a public project, so the second pulls it anonymously
    // (through the first host's token flow).
    let first_dir = tempfile::tempdir().unwrap();
    let first = HoistServer::start(test_config(first_dir.path(), &[]));
    first.project("plugins", true);
    let tagged = format!("{}/plugins/hoist-plugin:0.3.0", first.host());
    let pinned = push(Path::new(PLUGIN_WASM), &tagged, true);

    // The layout WebAssembly components ship in, as skopeo reads it.
    let manifest: Value = serde_json::from_slice(&skopeo::inspect_raw(
        &tagged,
        Some(&format!("admin:{ADMIN_PASSWORD}")),
    ))
    .unwrap();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.wasm.config.v0+json"
    );
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{manifest}");
    assert_eq!(layers[0]["mediaType"], "application/wasm");
    let plugin_bytes = std::fs::read(PLUGIN_WASM).unwrap();
    assert_eq!(
        layers[0]["digest"],
        hoist_tests::images::sha256(&plugin_bytes)
    );

    let source = Registry::start(Auth::None);
    let image = Pusher::new(&source.url()).image(
        "lib/app",
        Some("v1"),
        Format::Oci,
        &[300_000, 500_000],
        ("linux", "amd64"),
    );
    let second_dir = tempfile::tempdir().unwrap();
    let mut config = test_config(second_dir.path(), &[]);
    over_plain_http(&mut config, &first.host());
    over_plain_http(&mut config, &source.host());
    config.imports.plugin = Some(pinned.clone());
    let second = HoistServer::start(config.clone());
    second.project("web", false);
    let (status, accepted) = second.admin(
        "POST",
        "/api/v1/projects/web/images/import",
        Some(json!({"source_url": format!("{}/lib/app:v1", source.host())})),
    );
    assert_eq!(status, 202, "{accepted}");
    let task = second.wait_task(
        accepted["task_id"].as_str().unwrap(),
        Duration::from_secs(120),
    );
    assert_eq!(task["state"], "succeeded", "{task}");
    assert_eq!(task["digest"], image.digest.as_str());

    // The pinned artifact is kept: the second host starts again with the first one gone.
    drop(second);
    drop(first);
    let again = HoistServer::start(config.clone());
    drop(again);

    // A tag alone is refused, unless the configuration trusts tags.
    let mut tag_only = config;
    tag_only.imports.plugin = Some(format!("oci://{tagged}"));
    let refused = start_error(&tag_only);
    assert!(
        refused.contains("names no digest") && refused.contains("plugin_allow_tag"),
        "{refused}"
    );
}

#[test]
fn a_plugin_whose_manifest_is_not_the_pinned_one_is_refused() {
    let registry = Registry::start(Auth::None);
    let reference = format!("{}/hoist/hoist-plugin:0.3.0", registry.host());
    let pinned = push(Path::new(PLUGIN_WASM), &reference, false);

    // A mirror that answers with other content under the pinned digest: the same
    // artifact with one more annotation, which a registry (or a man in the middle) might
    // send. The host must see that the bytes are not the ones pinned.
    let mut manifest: Value =
        serde_json::from_slice(&skopeo::inspect_raw(&reference, None)).unwrap();
    manifest["annotations"]["org.example.tampered"] = json!("yes");
    let tampered = serde_json::to_vec(&manifest).unwrap();
    let mirror = serve(axum::Router::new().fallback(move || {
        let tampered = tampered.clone();
        async move {
            (
                [("content-type", "application/vnd.oci.image.manifest.v1+json")],
                tampered,
            )
        }
    }));
    let dir = tempfile::tempdir().unwrap();
    let (host, mirror) = (registry.host(), format!("http://127.0.0.1:{mirror}"));
    let mut config = test_config(dir.path(), &[(host.as_str(), mirror.as_str())]);
    config.imports.plugin = Some(pinned.clone());
    let refused = start_error(&config);
    let digest = pinned.split_once('@').unwrap().1;
    assert!(
        refused.contains(&format!("not the pinned {digest}")) && refused.contains(&pinned),
        "{refused}"
    );

    // A digest the registry does not hold at all says so.
    let unknown = format!(
        "oci://{}/hoist/hoist-plugin@sha256:{}",
        registry.host(),
        "0".repeat(64)
    );
    let mut config = test_config(dir.path(), &[]);
    over_plain_http(&mut config, &registry.host());
    config.imports.plugin = Some(unknown);
    let refused = start_error(&config);
    assert!(refused.contains("does not exist"), "{refused}");
}

#[test]
fn a_plugin_artifact_of_an_unknown_contract_version_is_refused() {
    let registry = Registry::start(Auth::None);
    let dir = tempfile::tempdir().unwrap();
    // A component exporting the contract's old version (wasmtime compiles the text format).
    let old = dir.path().join("old-plugin.wat");
    std::fs::write(
        &old,
        r#"(component (instance $i) (export "hoist:plugin/reference@0.2.0" (instance $i)))"#,
    )
    .unwrap();
    let pinned = push(
        &old,
        &format!("{}/hoist/hoist-plugin:0.3.0", registry.host()),
        false,
    );
    let mut config = test_config(&dir.path().join("data"), &[]);
    over_plain_http(&mut config, &registry.host());
    config.imports.plugin = Some(pinned.clone());
    let refused = start_error(&config);
    assert!(
        refused.contains(&format!("loading the plugin {pinned}"))
            && refused.contains("hoist:plugin@0.2.0")
            && refused.contains("hoist:plugin@0.3.x"),
        "{refused}"
    );
}
