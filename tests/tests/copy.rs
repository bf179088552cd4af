//! The plugin copies images between real registries, through the compiled component under
//! wasmtime, and skopeo checks the result.

use hoist_imports::contract::{
    BlobState, ImportRequest, Phase, Platform, PluginError, RequestField, Status, Timeouts,
};
use hoist_tests::fake_registry::{self, FakeRegistry, Fault};
use hoist_tests::fault_proxy::{FaultProxy, ProxyFault};
use hoist_tests::images::{Format, Pusher, two_registries_with_image, two_registries_with_index};
use hoist_tests::registry::{Auth, Registry};
use hoist_tests::token_server::{TokenField, token_registry};
use hoist_tests::{assert_done, basic, request, run_import, skopeo, with_credentials, with_mirror};
use std::io::Read;
use std::time::Duration;

const LAYERS: &[usize] = &[300_000, 1_200_000, 50_000];
const PLATFORMS: [(&str, &str, Option<&str>); 3] = [
    ("linux", "amd64", None),
    ("linux", "arm64", Some("v8")),
    ("linux", "arm", Some("v7")),
];

/// The byte-identical check: both registries serve the same manifest bytes.
fn assert_same_manifest(a: &str, b: &str) {
    assert_eq!(
        skopeo::inspect_raw(a, None),
        skopeo::inspect_raw(b, None),
        "{a} and {b} differ"
    );
}

#[test]
fn copies_a_single_arch_docker_image_byte_for_byte() {
    let (src, dst, pushed) = two_registries_with_image("team/app", "v1", Format::Docker, LAYERS);

    let source = format!("{}/team/app:v1", src.host());
    let target = format!("{}/proj/app:v1", dst.host());
    let status = run_import(&request(&source, &target, &[&src.host(), &dst.host()]));
    assert_done(&status);
    assert_eq!(status.digest.as_deref(), Some(pushed.digest.as_str()));
    assert_eq!(
        status.target_reference,
        Some(format!("{}/proj/app@{}", dst.host(), pushed.digest))
    );
    assert_eq!(status.blobs_total as usize, pushed.blobs.len());
    assert!(
        status
            .blobs
            .iter()
            .all(|b| matches!(b.state, BlobState::Done)),
        "{:?}",
        status.blobs
    );
    assert_eq!(status.bytes_done, status.bytes_total);
    assert_eq!(
        status.bytes_total,
        pushed.blobs.iter().map(|b| b.1).sum::<u64>()
    );

    assert_same_manifest(&source, &target);
    skopeo::pull_all(&target);
}

#[test]
fn copies_a_multi_arch_index_with_every_platform() {
    let (src, dst, pushed) =
        two_registries_with_index("multi", "latest", Format::Oci, LAYERS, &PLATFORMS);

    let source = format!("{}/multi", src.host());
    let target = format!("{}/proj/multi:latest", dst.host());
    let status = run_import(&request(&source, &target, &[&src.host(), &dst.host()]));
    assert_done(&status);
    assert_eq!(status.digest.as_deref(), Some(pushed.digest.as_str()));
    assert_eq!(status.blobs_total, 12, "3 platforms × (config + 3 layers)");
    assert_same_manifest(&source, &target);
    skopeo::pull_all(&target);
}

#[test]
fn a_platform_filter_writes_only_what_matches() {
    let (src, dst, _) = two_registries_with_index("multi", "v1", Format::Oci, &[1000], &PLATFORMS);
    let source = format!("{}/multi:v1", src.host());
    let platform = |os: &str, arch: &str, variant: Option<&str>| Platform {
        os: os.into(),
        architecture: arch.into(),
        variant: variant.map(Into::into),
    };

    // One platform: the target gets that platform's manifest itself.
    let mut req = request(
        &source,
        &format!("{}/proj/one:v1", dst.host()),
        &[&src.host(), &dst.host()],
    );
    req.platforms = vec![platform("linux", "arm64", None)];
    let status = run_import(&req);
    assert_done(&status);
    let raw = skopeo::inspect_raw(&format!("{}/proj/one:v1", dst.host()), None);
    let doc: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert!(
        doc.get("layers").is_some(),
        "a single image manifest, not an index"
    );
    assert_eq!(status.blobs_total, 2);

    // Two platforms: a new index, with a new digest, holding just those two.
    let mut req = request(
        &source,
        &format!("{}/proj/two:v1", dst.host()),
        &[&src.host(), &dst.host()],
    );
    req.platforms = vec![
        platform("linux", "amd64", None),
        platform("linux", "arm", Some("v7")),
    ];
    let status = run_import(&req);
    assert_done(&status);
    let raw = skopeo::inspect_raw(&format!("{}/proj/two:v1", dst.host()), None);
    let doc: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(doc["manifests"].as_array().unwrap().len(), 2);
    assert_ne!(raw, skopeo::inspect_raw(&source, None));
    skopeo::pull_all(&format!("{}/proj/two:v1", dst.host()));

    // A platform the image lacks is a not-found error that lists what exists.
    let mut req = request(
        &source,
        &format!("{}/proj/none:v1", dst.host()),
        &[&src.host(), &dst.host()],
    );
    req.platforms = vec![platform("windows", "amd64", None)];
    let status = run_import(&req);
    assert!(
        matches!(&status.error, Some(PluginError::NotFound(m)) if m.contains("linux/arm/v7")),
        "{:?}",
        status.error
    );
    assert!(!skopeo::exists(&format!("{}/proj/none:v1", dst.host())));
}

#[test]
fn a_second_import_moves_no_bytes_and_a_second_repository_mounts() {
    let (src, dst, _) = two_registries_with_image("app", "v1", Format::Oci, LAYERS);
    let source = format!("{}/app:v1", src.host());
    let insecure = [src.host(), dst.host()];
    let insecure: Vec<&str> = insecure.iter().map(String::as_str).collect();

    assert_done(&run_import(&request(
        &source,
        &format!("{}/proj/app:v1", dst.host()),
        &insecure,
    )));

    let again = run_import(&request(
        &source,
        &format!("{}/proj/app:v1", dst.host()),
        &insecure,
    ));
    assert_done(&again);
    assert!(
        again
            .blobs
            .iter()
            .all(|b| matches!(b.state, BlobState::Skipped)),
        "{:?}",
        again.blobs
    );
    assert!(
        again.blobs.iter().all(|b| b.bytes_done == 0),
        "no byte moved"
    );

    let mut req = request(&source, &format!("{}/other/app:v1", dst.host()), &insecure);
    req.options.mount_from = vec!["proj/app".into()];
    let mounted = run_import(&req);
    assert_done(&mounted);
    assert!(
        mounted
            .blobs
            .iter()
            .all(|b| matches!(b.state, BlobState::Mounted)),
        "{:?}",
        mounted.blobs
    );
    skopeo::pull_all(&format!("{}/other/app:v1", dst.host()));
}

#[test]
fn chunked_uploads_copy_the_same_bytes() {
    let (src, dst, _) = two_registries_with_image("app", "v1", Format::Oci, LAYERS);
    let source = format!("{}/app:v1", src.host());
    let target = format!("{}/proj/app:v1", dst.host());
    let mut req = request(&source, &target, &[&src.host(), &dst.host()]);
    req.options.chunk_size = Some(256 * 1024);
    assert_done(&run_import(&req));
    assert_same_manifest(&source, &target);
    skopeo::pull_all(&target);
}

#[test]
fn a_mirror_stands_in_for_docker_hub() {
    let (mirror, dst, _) =
        two_registries_with_image("library/nginx", "latest", Format::Docker, &[1000]);
    let req = with_mirror(
        request(
            "nginx",
            &format!("{}/proj/nginx:latest", dst.host()),
            &[&dst.host()],
        ),
        "docker.io",
        &mirror.url(),
    );
    assert_done(&run_import(&req));
    assert_same_manifest(
        &format!("{}/library/nginx:latest", mirror.host()),
        &format!("{}/proj/nginx:latest", dst.host()),
    );
}

#[test]
fn a_source_behind_basic_auth() {
    let src = Registry::start(Auth::Basic {
        user: "alice".into(),
        password: "s3cret-basic".into(),
    });
    let dst = Registry::start(Auth::None);
    Pusher::new(&src.url())
        .with_auth(basic("alice", "s3cret-basic"))
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

    let status = run_import(&with_credentials(
        request(&source, &target, &insecure),
        &src.host(),
        "alice",
        "s3cret-basic",
    ));
    assert_done(&status);
    assert_eq!(
        skopeo::inspect_raw(&source, Some("alice:s3cret-basic")),
        skopeo::inspect_raw(&target, None)
    );

    let wrong = run_import(&with_credentials(
        request(&source, &target, &insecure),
        &src.host(),
        "alice",
        "wrong",
    ));
    match &wrong.error {
        Some(PluginError::Unauthorized(m)) => {
            assert!(m.contains(&src.host()), "names the registry: {m}")
        }
        other => panic!("want unauthorized, got {other:?}"),
    }
    let anonymous = run_import(&request(&source, &target, &insecure));
    assert!(
        matches!(anonymous.error, Some(PluginError::Unauthorized(_))),
        "{:?}",
        anonymous.error
    );
}

#[test]
fn a_source_behind_token_auth_anonymous_and_with_credentials() {
    let (tokens, src) = token_registry("bob", "s3cret-token", TokenField::Token);
    let dst = Registry::start(Auth::None);
    let push = |repo: &str| {
        Pusher::new(&src.url())
            .with_auth(format!("Bearer {}", tokens.mint(repo, &["pull", "push"])))
            .image(repo, Some("v1"), Format::Oci, LAYERS, ("linux", "amd64"))
    };
    push("public/app");
    push("private/app");
    let insecure = [src.host(), dst.host()];
    let insecure: Vec<&str> = insecure.iter().map(String::as_str).collect();

    // A public repository, as Docker Hub serves it: an anonymous token suffices.
    let status = run_import(&request(
        &format!("{}/public/app:v1", src.host()),
        &format!("{}/proj/public:v1", dst.host()),
        &insecure,
    ));
    assert_done(&status);
    assert!(tokens.requests().iter().any(
        |(scopes, creds)| !creds && scopes.contains(&"repository:public/app:pull".to_string())
    ));

    // A private one needs the credentials; they go to the token realm.
    let private = format!("{}/private/app:v1", src.host());
    let status = run_import(&with_credentials(
        request(
            &private,
            &format!("{}/proj/private:v1", dst.host()),
            &insecure,
        ),
        &src.host(),
        "bob",
        "s3cret-token",
    ));
    assert_done(&status);
    skopeo::pull_all(&format!("{}/proj/private:v1", dst.host()));

    let denied = run_import(&request(
        &private,
        &format!("{}/proj/denied:v1", dst.host()),
        &insecure,
    ));
    assert!(
        matches!(denied.error, Some(PluginError::Unauthorized(_))),
        "{:?}",
        denied.error
    );
    let wrong = run_import(&with_credentials(
        request(
            &private,
            &format!("{}/proj/wrong:v1", dst.host()),
            &insecure,
        ),
        &src.host(),
        "bob",
        "nope",
    ));
    match &wrong.error {
        Some(PluginError::Unauthorized(m)) => assert!(m.contains(&src.host()), "{m}"),
        other => panic!("want unauthorized, got {other:?}"),
    }
}

#[test]
fn tokens_in_the_access_token_field_work_too() {
    let (tokens, src) = token_registry("bob", "s3cret-token", TokenField::AccessToken);
    let dst = Registry::start(Auth::None);
    Pusher::new(&src.url())
        .with_auth(format!(
            "Bearer {}",
            tokens.mint("public/x", &["pull", "push"])
        ))
        .image(
            "public/x",
            Some("v1"),
            Format::Oci,
            &[1000],
            ("linux", "amd64"),
        );
    let status = run_import(&request(
        &format!("{}/public/x:v1", src.host()),
        &format!("{}/p/x:v1", dst.host()),
        &[&src.host(), &dst.host()],
    ));
    assert_done(&status);
}

#[test]
fn a_missing_tag_is_not_found_and_a_bad_reference_fails_before_any_request() {
    let (src, dst, _) = two_registries_with_image("app", "v1", Format::Oci, &[1000]);
    let status = run_import(&request(
        &format!("{}/app:nope", src.host()),
        &format!("{}/p/app:v1", dst.host()),
        &[&src.host(), &dst.host()],
    ));
    assert!(
        matches!(&status.error, Some(PluginError::NotFound(m)) if m.contains("app:nope")),
        "{:?}",
        status.error
    );

    let fake = FakeRegistry::start(Fault::Schema1);
    let status = run_import(&request(
        &format!("{}/fake:v1", fake.host()),
        "localhost:1/Bad/Name:v1",
        &[&fake.host()],
    ));
    assert!(
        matches!(
            &status.error,
            Some(PluginError::InvalidInput(i)) if i.field == Some(RequestField::Target)
        ),
        "{:?}",
        status.error
    );
    assert_eq!(fake.manifest_requests(), 0, "no request was made");
}

fn fault_import(fault: Fault, dst: &Registry) -> (FakeRegistry, Status, String) {
    let fake = FakeRegistry::start(fault);
    let target = format!("{}/proj/fake:v1", dst.host());
    let mut req = request(
        &format!("{}/fake:v1", fake.host()),
        &target,
        &[&fake.host(), &dst.host()],
    );
    req.options.max_retries = 3;
    let status = run_import(&req);
    (fake, status, target)
}

#[test]
fn a_body_cut_in_the_middle_resumes_with_range() {
    let dst = Registry::start(Auth::None);
    let (fake, status, target) = fault_import(Fault::TruncateLayerOnce, &dst);
    assert_done(&status);
    let ranges = fake.layer_ranges();
    assert_eq!(ranges.len(), 2, "{ranges:?}");
    assert_eq!(ranges[0], None);
    let resumed_at: u64 = ranges[1]
        .as_deref()
        .unwrap()
        .trim_start_matches("bytes=")
        .trim_end_matches('-')
        .parse()
        .unwrap();
    assert!(resumed_at > 0, "resumed where the cut was, not from zero");
    assert!(
        status.warnings.iter().any(|w| w.contains("resuming")),
        "{:?}",
        status.warnings
    );
    skopeo::pull_all(&target);
}

#[test]
fn a_wrong_digest_is_rejected_and_nothing_is_stored() {
    let dst = Registry::start(Auth::None);
    let (fake, status, target) = fault_import(Fault::WrongLayerDigest, &dst);
    assert!(
        matches!(status.error, Some(PluginError::DigestMismatch(_))),
        "{:?}",
        status.error
    );
    assert!(!skopeo::exists(&target), "no tag");
    let blob = dst
        .data_dir()
        .join("docker/registry/v2/blobs/sha256")
        .join(&fake.layer_digest()[7..9])
        .join(&fake.layer_digest()[7..]);
    assert!(!blob.exists(), "the layer is not stored");
}

#[test]
fn a_429_with_retry_after_is_waited_out() {
    let dst = Registry::start(Auth::None);
    let started = std::time::Instant::now();
    let (fake, status, _) = fault_import(Fault::RateLimitTwice, &dst);
    assert_done(&status);
    assert!(fake.manifest_requests() >= 3);
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(2),
        "Retry-After: 1, twice"
    );
    assert!(
        status.warnings.iter().any(|w| w.contains("429")),
        "{:?}",
        status.warnings
    );
}

#[test]
fn a_storm_of_500s_ends_in_a_clear_error_after_bounded_retries() {
    let dst = Registry::start(Auth::None);
    let (fake, status, _) = fault_import(Fault::AlwaysServerError, &dst);
    assert!(
        matches!(&status.error, Some(PluginError::RegistryError(m)) if m.contains("500")),
        "{:?}",
        status.error
    );
    assert_eq!(fake.manifest_requests(), 4, "one attempt and three retries");
}

#[test]
fn a_redirect_to_another_host_carries_no_credentials() {
    let dst = Registry::start(Auth::None);
    let fake = FakeRegistry::start(Fault::RedirectToCdn);
    let target = format!("{}/proj/fake:v1", dst.host());
    let req = with_credentials(
        request(
            &format!("{}/fake:v1", fake.host()),
            &target,
            &[&fake.host(), &dst.host()],
        ),
        &fake.host(),
        fake_registry::USER,
        fake_registry::PASSWORD,
    );
    let status = run_import(&req);
    assert_done(&status);
    let seen = fake.cdn_authorization();
    assert!(!seen.is_empty(), "the layer came from the CDN");
    assert!(
        seen.iter().all(Option::is_none),
        "no Authorization reached the CDN: {seen:?}"
    );
    skopeo::pull_all(&target);
}

#[test]
fn an_oversized_manifest_and_a_schema1_manifest_are_refused() {
    let dst = Registry::start(Auth::None);
    let (_, status, target) = fault_import(Fault::HugeManifest, &dst);
    assert!(
        matches!(&status.error, Some(PluginError::RegistryError(m)) if m.contains("4 MiB")),
        "{:?}",
        status.error
    );
    assert!(!skopeo::exists(&target));
    let (_, status, _) = fault_import(Fault::Schema1, &dst);
    assert!(
        matches!(&status.error, Some(PluginError::UnsupportedMediaType(m)) if m.contains("schema 1")),
        "{:?}",
        status.error
    );
}

#[test]
fn foreign_layers_are_skipped_and_reported() {
    // distribution accepts a manifest with foreign layers only when their URLs are allowed.
    let dst = Registry::start_with(
        Auth::None,
        "validation:\n  manifests:\n    urls:\n      allow:\n        - ^https?://\n",
    );
    let (fake, status, target) = fault_import(Fault::ForeignLayer, &dst);
    assert_done(&status);
    let foreign = status
        .blobs
        .iter()
        .find(|b| b.digest == fake_registry::FOREIGN_DIGEST)
        .unwrap();
    assert!(
        matches!(foreign.state, BlobState::Foreign),
        "{:?}",
        foreign.state
    );
    assert!(
        status
            .warnings
            .iter()
            .any(|w| w.contains("foreign") && w.contains(fake_registry::FOREIGN_DIGEST)),
        "{:?}",
        status.warnings
    );
    assert_eq!(
        skopeo::inspect_raw(&target, None),
        skopeo::inspect_raw(&format!("{}/fake:v1", fake.host()), None)
    );
}

/// `advance` returns within its slice while a slow transfer goes on across calls, and
/// cancelling stops it at once and leaves no tag.
#[test]
fn advance_keeps_its_slice_and_cancel_leaves_no_tag() {
    let dst = Registry::start(Auth::None);
    let fake = FakeRegistry::start(Fault::SlowLayer);
    let target = format!("{}/proj/slow:v1", dst.host());
    let req = request(
        &format!("{}/fake:v1", fake.host()),
        &target,
        &[&fake.host(), &dst.host()],
    );

    let mut last = std::time::Instant::now();
    let mut gaps = Vec::new();
    let mut progress = Vec::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = rt
        .block_on(hoist_tests::plugin().import(&req, |s| {
            gaps.push(last.elapsed());
            last = std::time::Instant::now();
            if s.phase == Phase::Copying {
                progress.push(s.bytes_done);
            }
            // Cancel once the layer is well under way.
            progress.len() < 4
        }))
        .unwrap();
    let cancelled_in = last.elapsed();

    assert_eq!(status.phase, Phase::Cancelled, "{:?}", status.error);
    assert!(matches!(status.error, Some(PluginError::Cancelled(_))));
    assert!(
        cancelled_in < std::time::Duration::from_secs(1),
        "cancel took {cancelled_in:?}"
    );
    let slowest = gaps.iter().max().unwrap();
    assert!(
        *slowest < std::time::Duration::from_millis(1500),
        "an advance took {slowest:?}: {gaps:?}"
    );
    assert!(
        progress.windows(2).all(|w| w[0] <= w[1]) && progress.last() > progress.first(),
        "bytes kept moving across advance calls: {progress:?}"
    );
    assert!(!skopeo::exists(&target), "no tag after cancel");
}

/// Short timeouts, so that the tests of stalls and slowness take seconds.
fn with_timeouts(mut req: ImportRequest, first_byte_ms: u32, idle_ms: u32) -> ImportRequest {
    req.options.timeouts = Some(Timeouts {
        connect_ms: 0,
        first_byte_ms,
        idle_ms,
    });
    req
}

#[test]
fn an_upload_that_outlasts_the_first_byte_timeout_still_completes() {
    // The layer trickles in for about 4 s; the first-byte timeout is 1 s. It must bound
    // only the wait for an answer, never the upload itself.
    let dst = Registry::start(Auth::None);
    let fake = FakeRegistry::start(Fault::SlowLayer);
    let target = format!("{}/proj/slow:v1", dst.host());
    let req = with_timeouts(
        request(
            &format!("{}/fake:v1", fake.host()),
            &target,
            &[&fake.host(), &dst.host()],
        ),
        1000,
        3000,
    );
    let status = run_import(&req);
    assert_done(&status);
    assert!(
        !status.warnings.iter().any(|w| w.contains("restarting")),
        "the upload went through in one go: {:?}",
        status.warnings
    );
    assert_eq!(
        skopeo::inspect_raw(&target, None).len(),
        skopeo::inspect_raw(&format!("{}/fake:v1", fake.host()), None).len()
    );
    skopeo::pull_all(&target);
}

#[test]
fn a_source_that_goes_silent_is_dropped_after_the_idle_timeout_and_resumed() {
    let dst = Registry::start(Auth::None);
    let fake = FakeRegistry::start(Fault::StallLayerOnce);
    let target = format!("{}/proj/stall:v1", dst.host());
    let req = with_timeouts(
        request(
            &format!("{}/fake:v1", fake.host()),
            &target,
            &[&fake.host(), &dst.host()],
        ),
        0,
        1000,
    );
    let status = run_import(&req);
    assert_done(&status);
    let ranges = fake.layer_ranges();
    assert_eq!(ranges.len(), 2, "{ranges:?}");
    assert_eq!(
        ranges[1].as_deref(),
        Some(format!("bytes={}-", (3 << 20) / 2).as_str()),
        "resumed at the byte where the source went silent"
    );
    assert!(
        status.warnings.iter().any(|w| w.contains("resuming")),
        "{:?}",
        status.warnings
    );
    skopeo::pull_all(&target);
}

#[test]
fn a_resumed_download_with_the_wrong_bytes_is_refused() {
    let dst = Registry::start(Auth::None);
    let (_, status, target) = fault_import(Fault::WrongRangeOnResume, &dst);
    assert_eq!(status.phase, Phase::Failed);
    match &status.error {
        Some(PluginError::RegistryError(m)) => assert!(m.contains("other bytes"), "{m}"),
        other => panic!("expected a registry error, got {other:?}"),
    }
    assert!(!skopeo::exists(&target), "no tag was written");
}

#[test]
fn a_lost_answer_to_a_completed_upload_is_recovered_by_checking_the_blob() {
    // The registry applies the upload's closing PUT, but its answer comes too late; the
    // retried PUT finds the session gone (404). The blob is there, so the import goes on.
    let (src, dst, _) = two_registries_with_image("app", "v1", Format::Oci, LAYERS);
    let proxy = FaultProxy::start(
        &dst.host(),
        ProxyFault::DelayFirstUploadCompletion(Duration::from_secs(3)),
    );
    let target = format!("{}/proj/app:v1", proxy.host());
    let mut req = with_timeouts(
        request(
            &format!("{}/app:v1", src.host()),
            &target,
            &[&src.host(), &proxy.host()],
        ),
        1000,
        0,
    );
    req.options.chunk_size = Some(1 << 20);
    req.options.concurrency = 1;
    let status = run_import(&req);
    assert_done(&status);
    let log = proxy.log();
    assert!(
        log.iter()
            .any(|(m, p, s)| m == "PUT" && p.contains("digest=") && *s == 404),
        "a retried completion found its session gone: {log:?}"
    );
    assert_same_manifest(
        &format!("{}/app:v1", src.host()),
        &format!("{}/proj/app:v1", dst.host()),
    );
    skopeo::pull_all(&format!("{}/proj/app:v1", dst.host()));
}

#[test]
fn a_mount_the_token_does_not_allow_falls_back_to_a_copy() {
    let (tokens, dst) = token_registry("bob", "s3cret-token", TokenField::Token);
    let src = Registry::start(Auth::None);
    let pushed =
        Pusher::new(&src.url()).image("app", Some("v1"), Format::Oci, LAYERS, ("linux", "amd64"));
    // The same blobs sit in a repository of the target that the importing user may not
    // read.
    let secret = Pusher::new(&dst.url()).with_auth(format!(
        "Bearer {}",
        tokens.mint("secret/base", &["pull", "push"])
    ));
    for (digest, _) in &pushed.blobs {
        let mut bytes = Vec::new();
        ureq::get(&format!("{}/v2/app/blobs/{digest}", src.url()))
            .call()
            .unwrap()
            .into_reader()
            .read_to_end(&mut bytes)
            .unwrap();
        secret.push_blob("secret/base", &bytes);
    }
    let mut req = with_credentials(
        request(
            &format!("{}/app:v1", src.host()),
            &format!("{}/team/app:v1", dst.host()),
            &[&src.host(), &dst.host()],
        ),
        &dst.host(),
        "bob",
        "s3cret-token",
    );
    req.options.mount_from = vec!["secret/base".into()];
    let status = run_import(&req);
    assert_done(&status);
    assert!(
        status
            .blobs
            .iter()
            .all(|b| matches!(b.state, BlobState::Done)),
        "copied, not mounted: {:?}",
        status.blobs
    );
    assert!(
        status
            .warnings
            .iter()
            .any(|w| w.contains("could not mount from secret/base")),
        "{:?}",
        status.warnings
    );
}

#[test]
fn a_target_digest_that_the_copy_would_not_produce_is_refused_up_front() {
    let (src, dst, _) = two_registries_with_image("app", "v1", Format::Oci, LAYERS);
    let wrong = format!("sha256:{}", "0".repeat(64));
    let status = run_import(&request(
        &format!("{}/app:v1", src.host()),
        &format!("{}/proj/app@{wrong}", dst.host()),
        &[&src.host(), &dst.host()],
    ));
    assert_eq!(status.phase, Phase::Failed);
    match &status.error {
        Some(PluginError::InvalidInput(i)) => {
            assert_eq!(i.field, Some(RequestField::Target));
            assert!(i.message.contains(&wrong), "{}", i.message);
        }
        other => panic!("expected an invalid-reference error, got {other:?}"),
    }
    assert!(
        status.blobs.iter().all(|b| b.bytes_done == 0),
        "nothing was copied"
    );
}
