//! podman (Debian's, as root, vfs storage, no daemon) pushes to and pulls from Hoist's
//! host through its token flow, and project visibility decides anonymous pulls.

use hoist_tests::hoist_server::{ADMIN_PASSWORD, HoistServer, test_config};
use serde_json::json;
use std::path::Path;
use std::process::{Command, Output};

struct Podman {
    dir: tempfile::TempDir,
}

impl Podman {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        let root = self.dir.path().join("root");
        let runroot = self.dir.path().join("run");
        Command::new("podman")
            .arg("--storage-driver=vfs")
            .arg("--root")
            .arg(&root)
            .arg("--runroot")
            .arg(&runroot)
            .args(args)
            .output()
            .expect("podman runs; scripts/install-deps.sh installs it")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "podman {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

fn rootfs_tar(dir: &Path) -> std::path::PathBuf {
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    std::fs::write(rootfs.join("hello.txt"), format!("{}\n", rand_text())).unwrap();
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

fn rand_text() -> String {
    format!("{:x}", rand::random::<u128>())
}

#[test]
fn podman_pushes_and_pulls_with_login_and_anonymously_from_a_public_project() {
    let data = tempfile::tempdir().unwrap();
    let host = HoistServer::start(test_config(data.path(), &[]));
    host.project("web", false);
    let creds = format!("admin:{ADMIN_PASSWORD}");
    let image = format!("{}/web/hello:1", host.host());

    let pusher = Podman::new();
    let tar = rootfs_tar(pusher.dir.path());
    pusher.ok(&["import", tar.to_str().unwrap(), &image]);
    pusher.ok(&["push", "--tls-verify=false", "--creds", &creds, &image]);
    let pushed = pusher.ok(&["image", "inspect", "--format", "{{.Id}}", &image]);

    // Another machine: pulls with the login, gets the same image.
    let puller = Podman::new();
    puller.ok(&["pull", "--tls-verify=false", "--creds", &creds, &image]);
    assert_eq!(
        puller.ok(&["image", "inspect", "--format", "{{.Id}}", &image]),
        pushed
    );

    // Anonymous: refused while the project is private, served once it is public.
    let anonymous = Podman::new();
    let refused = anonymous.run(&["pull", "--tls-verify=false", &image]);
    assert!(!refused.status.success(), "a private project needs a login");
    let (status, _) = host.admin(
        "PATCH",
        "/api/v1/projects/web",
        Some(json!({"public": true})),
    );
    assert_eq!(status, 200);
    anonymous.ok(&["pull", "--tls-verify=false", &image]);

    // A wrong password is refused outright, not treated as anonymous.
    let wrong = anonymous.run(&[
        "push",
        "--tls-verify=false",
        "--creds",
        "admin:wrong",
        &image,
    ]);
    assert!(!wrong.status.success());
}
