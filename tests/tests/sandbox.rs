//! The host's side of the sandbox: credentials the plugin never holds, added only where
//! they belong, and an egress policy that keeps imports off addresses the admin did not
//! allow.

use hoist_imports::PluginRuntime;
use hoist_imports::boundary::client::Clients;
use hoist_imports::boundary::credentials::{HostCredential, Secret};
use hoist_imports::contract::{Phase, PluginError, Status};
use hoist_imports::egress::{Cidr, EgressPolicy};
use hoist_imports::settings::{RegistrySettings, SourceSettings};
use hoist_tests::fake_registry::{self, FakeRegistry, Fault};
use hoist_tests::guest_memory::RecordingMemories;
use hoist_tests::images::{Format, Pusher};
use hoist_tests::registry::{Auth, Registry};
use hoist_tests::token_server::{TokenField, token_registry};
use hoist_tests::{
    PLUGIN_WASM, assert_done, basic, loopback_clients, request, run_import_holding, skopeo,
};
use std::collections::HashMap;
use std::time::Duration;

const LAYERS: &[usize] = &[200_000, 600_000];

/// A plugin runtime whose guest memories the test can scan afterwards.
fn recording_runtime(clients: Clients) -> (PluginRuntime, RecordingMemories) {
    let memories = RecordingMemories::default();
    let bytes = std::fs::read(PLUGIN_WASM).unwrap();
    let runtime =
        PluginRuntime::with_engine_config(&bytes, clients, |c| memories.install(c)).unwrap();
    (runtime, memories)
}

fn credential(registry: &str, user: &str, password: &str) -> HostCredential {
    HostCredential {
        endpoints: {
            let mut settings = RegistrySettings::default();
            let insecure = SourceSettings {
                insecure: true,
                ..Default::default()
            };
            settings.insert(registry, insecure);
            settings.endpoints(registry)
        },
        username: user.into(),
        password: Secret::new(password),
    }
}

#[test]
fn basic_credentials_held_by_the_host_work_and_never_enter_the_guest() {
    let password = "host-held-basic-pw-5d1c";
    let src = Registry::start(Auth::Basic {
        user: "alice".into(),
        password: password.into(),
    });
    let dst = Registry::start(Auth::None);
    Pusher::new(&src.url())
        .with_auth(basic("alice", password))
        .image(
            "private/app",
            Some("v1"),
            Format::Oci,
            LAYERS,
            ("linux", "amd64"),
        );
    let source = format!("{}/private/app:v1", src.host());
    let target = format!("{}/proj/app:v1", dst.host());
    let insecure = [src.host(), dst.host()];
    let insecure: Vec<&str> = insecure.iter().map(String::as_str).collect();
    let (runtime, memories) = recording_runtime(loopback_clients());

    // Without the host's credential the registry refuses: the plugin holds none.
    let refused = run_import_holding(&runtime, &request(&source, &target, &insecure), Vec::new());
    assert!(
        matches!(refused.error, Some(PluginError::Unauthorized(_))),
        "{:?}",
        refused.error
    );

    let status = run_import_holding(
        &runtime,
        &request(&source, &target, &insecure),
        vec![credential(&src.host(), "alice", password)],
    );
    assert_done(&status);
    assert!(skopeo::exists(&target));

    assert!(memories.count() > 0, "the guest's memories were recorded");
    assert!(
        memories.contains(b"private/app"),
        "the scan sees what the guest held"
    );
    assert!(
        !memories.contains(password.as_bytes()),
        "the password reached the guest's memory"
    );
    assert!(
        !memories.contains(basic_b64(password).as_bytes()),
        "the Authorization header reached the guest's memory"
    );
}

fn basic_b64(password: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("alice:{password}"))
}

#[test]
fn token_credentials_held_by_the_host_go_to_the_announced_realm_only() {
    let password = "host-held-token-pw-91ab";
    let (tokens, src) = token_registry("bob", password, TokenField::Token);
    let dst = Registry::start(Auth::None);
    Pusher::new(&src.url())
        .with_auth(format!(
            "Bearer {}",
            tokens.mint("private/app", &["pull", "push"])
        ))
        .image(
            "private/app",
            Some("v1"),
            Format::Oci,
            LAYERS,
            ("linux", "amd64"),
        );
    let source = format!("{}/private/app:v1", src.host());
    let target = format!("{}/proj/app:v1", dst.host());
    let insecure = [src.host(), dst.host()];
    let insecure: Vec<&str> = insecure.iter().map(String::as_str).collect();
    let (runtime, memories) = recording_runtime(loopback_clients());

    let status = run_import_holding(
        &runtime,
        &request(&source, &target, &insecure),
        vec![credential(&src.host(), "bob", password)],
    );
    assert_done(&status);
    let requests = tokens.requests();
    assert!(
        requests
            .iter()
            .any(|(_, with_credentials)| *with_credentials),
        "the host added the credential at the realm: {requests:?}"
    );
    assert!(!memories.contains(password.as_bytes()));
    assert_eq!(
        skopeo::inspect_raw(&source, Some(&format!("bob:{password}"))),
        skopeo::inspect_raw(&target, None)
    );
}

#[test]
fn a_redirect_target_never_gets_the_hosts_credentials() {
    let fake = FakeRegistry::start(Fault::RedirectToCdn);
    let dst = Registry::start(Auth::None);
    let status = run_import_holding(
        &hoist_tests::plugin().clone(),
        &request(
            &format!("{}/fake:v1", fake.host()),
            &format!("{}/proj/fake:v1", dst.host()),
            &[&fake.host(), &dst.host()],
        ),
        vec![credential(
            &fake.host(),
            fake_registry::USER,
            fake_registry::PASSWORD,
        )],
    );
    assert_done(&status);
    let seen = fake.cdn_authorization();
    assert!(!seen.is_empty(), "the layer came from the CDN");
    assert!(seen.iter().all(Option::is_none), "{seen:?}");
}

fn default_policy_runtime() -> PluginRuntime {
    hoist_tests::plugin().clone().with_network(
        Clients::new(
            EgressPolicy::default(),
            &HashMap::new(),
            Duration::from_secs(5),
        )
        .unwrap(),
    )
}

fn assert_denied(status: &Status, class: &str) {
    assert_eq!(status.phase, Phase::Failed);
    match &status.error {
        Some(PluginError::DeniedByPolicy(m)) => assert!(m.contains(class), "{m}"),
        other => panic!("expected a policy refusal naming {class}, got {other:?}"),
    }
}

#[test]
fn the_default_policy_refuses_loopback_by_address_and_by_name() {
    let src = Registry::start(Auth::None);
    Pusher::new(&src.url()).image("app", Some("v1"), Format::Oci, LAYERS, ("linux", "amd64"));
    let runtime = default_policy_runtime();
    let by_address = run_import_holding(
        &runtime,
        &request(
            &format!("{}/app:v1", src.host()),
            "registry.invalid/proj/app:v1",
            &[&src.host()],
        ),
        Vec::new(),
    );
    assert_denied(&by_address, "loopback");

    // A name is judged by what it resolves to.
    let name = format!("localhost:{}", src.port);
    let by_name = run_import_holding(
        &runtime,
        &request(
            &format!("{name}/app:v1"),
            "registry.invalid/proj/app:v1",
            &[&name],
        ),
        Vec::new(),
    );
    assert_denied(&by_name, "loopback");
}

#[test]
fn the_metadata_service_is_refused_without_a_connection_attempt() {
    let runtime = default_policy_runtime();
    let status = run_import_holding(
        &runtime,
        &request(
            "169.254.169.254/latest/meta-data:v1",
            "registry.invalid/proj/x:v1",
            &["169.254.169.254"],
        ),
        Vec::new(),
    );
    assert_denied(&status, "metadata");
}

#[test]
fn a_redirect_to_an_address_the_policy_refuses_is_refused() {
    let fake = FakeRegistry::start(Fault::RedirectToOtherAddress);
    let dst = Registry::start(Auth::None);
    // The admin allowed exactly the registries' address, not the CDN's.
    let runtime = hoist_tests::plugin().clone().with_network(
        Clients::new(
            EgressPolicy {
                allowed: vec![Cidr::parse("127.0.0.1/32").unwrap()],
                ..Default::default()
            },
            &HashMap::new(),
            Duration::from_secs(5),
        )
        .unwrap(),
    );
    let target = format!("{}/proj/fake:v1", dst.host());
    let status = run_import_holding(
        &runtime,
        &request(
            &format!("{}/fake:v1", fake.host()),
            &target,
            &[&fake.host(), &dst.host(), "127.0.0.2"],
        ),
        Vec::new(),
    );
    assert_denied(&status, "127.0.0.2");
    assert!(
        fake.cdn_authorization().is_empty(),
        "the CDN was never reached"
    );
    assert!(!skopeo::exists(&target), "no tag was written");
}
