//! Several host replicas on one PostgreSQL database and one S3 bucket (DESIGN.md §8):
//! what a client of either sees, and that the replicas share their work without doing
//! it twice.

use hoist_tests::hoist_server::{
    HoistServer, admin_basic, admin_creds, over_plain_http, test_config,
};
use hoist_tests::images::{Format, Pusher};
use hoist_tests::registry::{Auth, Registry};
use hoist_tests::scale_out::SharedStores;
use hoist_tests::skopeo;
use serde_json::json;
use std::time::Duration;

/// Two replicas on different ports: skopeo pushes through one and pulls through the
/// other with the same digests; a token the first issued is honoured by the second; 20
/// imports submitted to the two in turn all succeed, and no blob is written twice.
#[test]
fn two_replicas_serve_one_registry() {
    let stores = SharedStores::start();
    let hub = Registry::start(Auth::None);
    let replica = |name: &str| {
        let data = tempfile::tempdir().unwrap();
        let mut config = test_config(data.path(), &[]);
        over_plain_http(&mut config, &hub.host());
        let host = HoistServer::start(stores.replica(config));
        eprintln!("replica {name} on {}", host.host());
        (host, data)
    };
    let (a, _a_data) = replica("a");
    let (b, _b_data) = replica("b");

    // A project made through one exists on the other.
    a.project("team", false);
    let (status, body) = b.admin("GET", "/api/v1/projects/team", None);
    assert_eq!(status, 200, "{body}");

    // Push through a, pull through b.
    let pushed = Pusher::new(&hub.url()).image(
        "library/app",
        Some("v1"),
        Format::Oci,
        &[3 << 20, 7 << 20],
        ("linux", "amd64"),
    );
    let creds = admin_creds();
    skopeo::copy_with(
        &format!("{}/library/app:v1", hub.host()),
        &format!("{}/team/app:v1", a.host()),
        &["--dest-creds", &creds],
    )
    .unwrap();
    let through_b = skopeo::inspect_raw(&format!("{}/team/app:v1", b.host()), Some(&creds));
    assert_eq!(
        hoist_tests::images::sha256(&through_b),
        pushed.digest,
        "b serves the manifest a took, byte for byte"
    );
    skopeo::pull_all_with(&format!("{}/team/app:v1", b.host()), &creds);

    // A token from a opens b.
    let token: serde_json::Value = ureq::get(&a.url("/token"))
        .query("service", &a.host())
        .query("scope", "repository:team/app:pull")
        .set("authorization", &admin_basic())
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    let token = token["token"].as_str().unwrap();
    let answer = ureq::get(&b.url("/v2/team/app/manifests/v1"))
        .set("authorization", &format!("Bearer {token}"))
        .set("accept", "application/vnd.oci.image.manifest.v1+json")
        .call()
        .unwrap();
    assert_eq!(answer.status(), 200);

    // 20 imports, each of its own image, submitted to a and b in turn.
    for i in 0..20 {
        Pusher::new(&hub.url()).image(
            &format!("library/img{i}"),
            Some("v1"),
            Format::Oci,
            &[1 << 20, 2 << 20],
            ("linux", "amd64"),
        );
    }
    let tasks: Vec<(usize, String)> = (0..20)
        .map(|i| {
            let host = if i % 2 == 0 { &a } else { &b };
            let id = host.start_import(
                "team",
                json!({
                    "source_url": format!("{}/library/img{i}:v1", hub.host()),
                    "target_image": format!("img{i}"),
                }),
            );
            (i, id)
        })
        .collect();
    for (i, id) in &tasks {
        // Each replica answers for every task, whichever ran it.
        let other = if i % 2 == 0 { &b } else { &a };
        let task = other.wait_task(id, Duration::from_secs(180));
        assert_eq!(task["state"], "succeeded", "{task}");
        assert!(skopeo::exists_with(
            &format!("{}/team/img{i}:v1", other.host()),
            &creds
        ));
    }
    let writes = stores.blob_writes();
    assert!(writes.len() >= 2 + 20 * 3, "{writes:?}");
    let twice: Vec<_> = writes.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "blobs written more than once: {twice:?}");
}
