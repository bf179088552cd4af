//! The real `docker` CLI against Hoist's host: Debian's `dockerd` (started here, see
//! `hoist_tests::docker`) logs in through the host's token flow, pushes, pulls, pulls
//! anonymously from a public project, and a robot account pushes where its scope allows.
//! Images are made with `docker import` of a tarball: nothing comes from the internet.
//!
//! What the host saw is printed with the test's output when `RUST_LOG` is set (for
//! example `RUST_LOG=hoist_registry=info,tower_http=debug`: one line per request with its
//! method, path and status); dockerd's own debug log comes with every failed docker
//! command.

use hoist_tests::docker::{DockerClient, Dockerd, show};
use hoist_tests::hoist_server::{ADMIN_PASSWORD, HoistServer, test_config};
use hoist_tests::images::sha256;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The host's log in the test's output, when asked for with `RUST_LOG`.
fn host_logs() {
    if let Ok(filter) = std::env::var("RUST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    }
}

/// A tarball of a root file system with a couple of random files, so every test run
/// pushes layers the host has never seen. Over 100 KB, so that docker tries up to three
/// cross-repository mounts for its layer (one only for a smaller layer), cancelling the
/// upload sessions of the mounts that did not happen.
fn rootfs_tar(dir: &Path) -> PathBuf {
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    std::fs::write(
        rootfs.join("etc/hello.txt"),
        format!("hello from docker {:x}\n", rand::random::<u128>()),
    )
    .unwrap();
    let noise: Vec<u8> = (0..256 * 1024).map(|_| rand::random::<u8>()).collect();
    std::fs::write(rootfs.join("noise.bin"), noise).unwrap();
    let tar = dir.join("rootfs.tar");
    let status = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    tar
}

/// `docker import` of a fresh root file system as `reference`; returns the image ID.
fn import_image(docker: &DockerClient, reference: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let tar = rootfs_tar(dir.path());
    let id = docker.ok(&["import", tar.to_str().unwrap(), reference]);
    assert!(id.starts_with("sha256:"), "docker import printed {id:?}");
    id
}

fn image_id(docker: &DockerClient, reference: &str) -> String {
    docker.ok(&["image", "inspect", "--format", "{{.Id}}", reference])
}

/// The `sha256:…` after `label` in docker's output (`digest: ` in a push's last line,
/// `Digest: ` in a pull's).
fn digest_after(label: &str, out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .split(label)
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .filter(|d| d.starts_with("sha256:") && d.len() == 71)
        .unwrap_or_else(|| panic!("no {label:?} with a digest in docker's output:\n{stdout}"))
        .to_owned()
}

/// `docker push`, which must succeed; returns the manifest digest docker printed and its
/// progress lines (`Pushed`, `Mounted from …`).
fn push(docker: &DockerClient, reference: &str) -> (String, String) {
    let args = ["push", reference];
    let out = docker.run(&args);
    docker.expect_success(&args, &out);
    let digest = digest_after("digest: ", &out);
    (digest, String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `docker pull`, which must succeed; returns the manifest digest docker printed.
fn pull(docker: &DockerClient, reference: &str) -> String {
    let args = ["pull", reference];
    let out = docker.run(&args);
    docker.expect_success(&args, &out);
    digest_after("Digest: ", &out)
}

/// Removes the image and every tag of it from the daemon, so the next pull downloads it.
fn forget(docker: &DockerClient, id: &str) {
    docker.ok(&["rmi", "--force", id]);
    let left = docker.run(&["image", "inspect", id]);
    assert!(!left.status.success(), "{id} is gone from the daemon");
}

/// What the host serves for `repo:tag`, asked as the admin: the tags of `repo` and the
/// manifest digest (checked against the bytes served).
fn served(host: &HoistServer, repo: &str, tag: &str) -> (serde_json::Value, String) {
    let (status, tags) = host.admin("GET", &format!("/v2/{repo}/tags/list"), None);
    assert_eq!(status, 200, "{repo}: {tags}");
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("admin:{ADMIN_PASSWORD}"));
    let response = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .build()
        .get(&host.url(&format!("/v2/{repo}/manifests/{tag}")))
        .set("authorization", &format!("Basic {basic}"))
        .set(
            "accept",
            "application/vnd.docker.distribution.manifest.v2+json, \
             application/vnd.oci.image.manifest.v1+json",
        )
        .call()
        .unwrap_or_else(|e| panic!("GET the manifest of {repo}:{tag}: {e}"));
    let digest = response
        .header("docker-content-digest")
        .expect("the host names the manifest's digest")
        .to_owned();
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut response.into_reader(), &mut body).unwrap();
    assert_eq!(
        sha256(&body),
        digest,
        "{repo}:{tag}: the digest of the bytes served"
    );
    (tags["tags"].clone(), digest)
}

/// Whether docker's error says that access was refused.
fn refused(out: &Output) -> bool {
    let stderr = String::from_utf8_lossy(&out.stderr).to_lowercase();
    !out.status.success() && (stderr.contains("denied") || stderr.contains("unauthorized"))
}

#[test]
fn docker_logs_in_pushes_pulls_and_pulls_anonymously_from_a_public_project() {
    host_logs();
    let data = tempfile::tempdir().unwrap();
    let host = HoistServer::start(test_config(data.path(), &[]));
    host.project("team", false);
    host.project("open", true);
    let registry = host.host();
    // The host listens first: dockerd is told its address as an insecure registry.
    let dockerd = Dockerd::start(&[&registry]);
    let docker = dockerd.client();

    // A wrong password is refused, and nothing is stored.
    let wrong = docker.login(&registry, "admin", "not-the-password");
    assert!(
        !wrong.status.success(),
        "a wrong password logs in:\n{}",
        show(&wrong)
    );
    assert!(docker.config()["auths"][&registry].is_null());
    let login = docker.login(&registry, "admin", ADMIN_PASSWORD);
    docker.expect_success(&["login"], &login);
    assert!(String::from_utf8_lossy(&login.stdout).contains("Login Succeeded"));
    assert!(
        docker.config()["auths"][&registry]["auth"].is_string(),
        "the login is kept in the client's own config.json: {}",
        docker.config()
    );

    // Push into the private project: the host serves the tag with docker's digest.
    let private = format!("{registry}/team/hello:1");
    let id = import_image(&docker, &private);
    let (digest, _) = push(&docker, &private);
    let (tags, served_digest) = served(&host, "team/hello", "1");
    assert_eq!(tags, json!(["1"]));
    assert_eq!(served_digest, digest);
    let repo_digests = docker.ok(&["image", "inspect", "--format", "{{json .RepoDigests}}", &id]);
    assert!(
        repo_digests.contains(&format!("{registry}/team/hello@{digest}")),
        "{repo_digests}"
    );

    // The same image into the public project: docker mounts the layer from team/hello
    // instead of uploading it again.
    let public = format!("{registry}/open/hello:1");
    docker.ok(&["tag", &private, &public]);
    let (public_digest, progress) = push(&docker, &public);
    assert_eq!(public_digest, digest, "the same manifest");
    assert!(progress.contains("Mounted from team/hello"), "{progress}");
    let (tags, served_digest) = served(&host, "open/hello", "1");
    assert_eq!((tags, served_digest), (json!(["1"]), digest.clone()));

    // Pulled back after the daemon forgot it: the same manifest and image ID.
    forget(&docker, &id);
    assert_eq!(pull(&docker, &private), digest);
    assert_eq!(image_id(&docker, &private), id);

    // Logged out: the public project serves anyone, the private one refuses.
    docker.ok(&["logout", &registry]);
    assert!(docker.config()["auths"][&registry].is_null());
    forget(&docker, &id);
    assert_eq!(pull(&docker, &public), digest);
    assert_eq!(image_id(&docker, &public), id);
    let anonymous = docker.run(&["pull", &private]);
    assert!(
        refused(&anonymous),
        "an anonymous pull from a private project:\n{}",
        show(&anonymous)
    );
    // And an anonymous push, even into the public project.
    let anonymous = docker.run(&["push", &public]);
    assert!(
        refused(&anonymous),
        "an anonymous push:\n{}",
        show(&anonymous)
    );
}

#[test]
fn a_robot_pushes_with_docker_where_its_scope_allows_and_is_denied_elsewhere() {
    host_logs();
    let data = tempfile::tempdir().unwrap();
    let host = HoistServer::start(test_config(data.path(), &[]));
    host.project("ci", false);
    host.project("team", false);
    let (status, robot) = host.admin(
        "POST",
        "/api/v1/robots",
        Some(
            json!({"name": "builder", "scopes": [{"project": "ci", "actions": ["pull", "push"]}]}),
        ),
    );
    assert_eq!(status, 201, "{robot}");
    let (user, secret) = (
        robot["username"].as_str().unwrap(),
        robot["secret"].as_str().unwrap(),
    );
    assert_eq!(user, "robot$builder");
    let registry = host.host();
    let dockerd = Dockerd::start(&[&registry]);

    // The admin, on the same daemon, pushes the image into two repositories of a project
    // the robot may not read. The daemon remembers where its layer went, so the robot's
    // push below asks to mount it from there.
    let admin = dockerd.client();
    admin.expect_success(&["login"], &admin.login(&registry, "admin", ADMIN_PASSWORD));
    let base = format!("{registry}/team/base:1");
    let id = import_image(&admin, &base);
    let (digest, _) = push(&admin, &base);
    let base2 = format!("{registry}/team/base2:1");
    admin.ok(&["tag", &id, &base2]);
    assert_eq!(push(&admin, &base2).0, digest);

    let docker = dockerd.client();
    let wrong = docker.login(&registry, user, "not-the-secret");
    assert!(
        !wrong.status.success(),
        "a wrong secret logs in:\n{}",
        show(&wrong)
    );
    let login = docker.login(&registry, user, secret);
    docker.expect_success(&["login"], &login);

    // Where the robot may push. docker asks to mount the layer from team/base and
    // team/base2; the host starts a plain upload instead (202), docker cancels the
    // sessions it does not use, and uploads the layer: nothing is read from team.
    let allowed = format!("{registry}/ci/app:1");
    docker.ok(&["tag", &id, &allowed]);
    let (pushed, progress) = push(&docker, &allowed);
    assert_eq!(pushed, digest);
    assert!(
        !progress.contains("Mounted from"),
        "the robot mounted a layer from a project it may not read:\n{progress}"
    );
    let (tags, served_digest) = served(&host, "ci/app", "1");
    assert_eq!((tags, served_digest), (json!(["1"]), digest.clone()));
    forget(&docker, &id);
    assert_eq!(pull(&docker, &allowed), digest);
    assert_eq!(image_id(&docker, &allowed), id);

    // Where it may not: refused, and nothing lands there.
    let not_readable = docker.run(&["pull", &base]);
    assert!(
        refused(&not_readable),
        "the robot pulls from outside its project:\n{}",
        show(&not_readable)
    );
    let elsewhere = format!("{registry}/team/app:1");
    docker.ok(&["tag", &id, &elsewhere]);
    let denied = docker.run(&["push", &elsewhere]);
    assert!(
        refused(&denied),
        "the robot pushes outside its project:\n{}\n{}",
        show(&denied),
        docker.daemon_log_tail()
    );
    let (status, tags) = host.admin("GET", "/v2/team/app/tags/list", None);
    assert!(
        status == 404 || tags["tags"] == json!([]),
        "{status} {tags}"
    );
}

/// A push to a repository with no project part (`127.0.0.1:PORT/hello`) is refused with
/// 404 `NAME_UNKNOWN`, which docker does not retry (it retried the 400 `NAME_INVALID` this
/// used to be for about 50 s), and the error names what is missing.
#[test]
fn docker_push_without_a_project_is_refused_at_once() {
    let data = tempfile::tempdir().unwrap();
    let host = HoistServer::start(test_config(data.path(), &[]));
    let registry = host.host();
    let dockerd = Dockerd::start(&[&registry]);
    let docker = dockerd.client();
    docker.expect_success(
        &["login"],
        &docker.login(&registry, "admin", ADMIN_PASSWORD),
    );
    let reference = format!("{registry}/hello:1");
    import_image(&docker, &reference);
    let started = Instant::now();
    let out = docker.run(&["push", &reference]);
    let took = started.elapsed();
    assert!(!out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("project"),
        "the error names what is missing:\n{}",
        show(&out)
    );
    assert!(
        took < Duration::from_secs(10),
        "docker gave up only after {took:?} (it retried):\n{}",
        show(&out)
    );
}
