//! `hoist copy`, `inspect`, `batch` and `sync` under the real, pinned `wasmtime` CLI, between real
//! Debian `docker-registry` instances; skopeo checks what the registries hold.

use base64::Engine;
use hoist_tests::fake_registry::{FakeRegistry, Fault};
use hoist_tests::images::{Format, Pusher, two_registries_with_image, two_registries_with_index};
use hoist_tests::registry::{Auth, Registry};
use hoist_tests::token_server::{TokenField, token_registry};
use hoist_tests::{CLI_WASM, basic, free_port, skopeo, wasmtime};
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};

const LAYERS: &[usize] = &[200_000, 600_000];
const PLATFORMS: [(&str, &str, Option<&str>); 2] =
    [("linux", "amd64", None), ("linux", "arm64", Some("v8"))];

/// What one run of the CLI left.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn assert_ok(&self) -> &Self {
        assert_eq!(self.code, Some(0), "stderr: {}", self.stderr);
        self
    }

    /// The stdout lines, each parsed as one JSON event.
    fn events(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
            .collect()
    }
}

/// `wasmtime run -S http [WASMTIME_ARGS…] hoist.wasm ARGS…`, with `stdin` fed in.
fn run_with(wasmtime_args: &[&str], args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(wasmtime())
        .args(["run", "-S", "http"])
        .args(wasmtime_args)
        .arg(CLI_WASM)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wasmtime runs; scripts/install-deps.sh installs it");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn run(args: &[&str]) -> Run {
    run_with(&[], args, "")
}

fn same_manifest(a: &str, a_creds: Option<&str>, b: &str, b_creds: Option<&str>) {
    assert_eq!(
        skopeo::inspect_raw(a, a_creds),
        skopeo::inspect_raw(b, b_creds),
        "{a} and {b} differ"
    );
}

#[test]
fn copies_a_single_arch_image_and_prints_only_its_digest_reference() {
    let (src, dst, pushed) = two_registries_with_image("team/app", "v1", Format::Docker, LAYERS);
    let source = format!("{}/team/app:v1", src.host());
    let target = format!("{}/proj/app:v1", dst.host());
    let out = run(&[
        "copy",
        "--plain-http",
        &src.host(),
        "--plain-http",
        &dst.host(),
        &source,
        &target,
    ]);
    out.assert_ok();
    // stdout is the result alone, for scripts; the progress went to stderr.
    assert_eq!(
        out.stdout,
        format!("{}/proj/app@{}\n", dst.host(), pushed.digest)
    );
    assert!(out.stderr.contains("copied"), "{}", out.stderr);
    assert!(
        !out.stderr.contains('\x1b'),
        "no terminal codes when stderr is not a terminal: {:?}",
        out.stderr
    );
    same_manifest(&source, None, &target, None);
    skopeo::pull_all(&target);
}

#[test]
fn copies_a_multi_arch_index_whole_or_one_platform() {
    let (src, dst, pushed) =
        two_registries_with_index("multi", "v1", Format::Oci, LAYERS, &PLATFORMS);
    let source = format!("{}/multi:v1", src.host());
    let target = format!("{}/proj/multi:v1", dst.host());
    let (s, d) = (src.host(), dst.host());
    let plain = ["--plain-http", &s, "--plain-http", &d];

    let out = run(&[&["copy"], &plain[..], &[&source, &target]].concat());
    out.assert_ok();
    assert_eq!(
        out.stdout.trim(),
        format!("{}/proj/multi@{}", dst.host(), pushed.digest)
    );
    same_manifest(&source, None, &target, None);
    skopeo::pull_all(&target);

    // One platform: that platform's manifest alone, byte for byte.
    let one = format!("{}/proj/arm:v1", dst.host());
    let out = run(&[
        &["copy", "--platform", "linux/arm64"],
        &plain[..],
        &[&source, &one],
    ]
    .concat());
    out.assert_ok();
    let index: Value = serde_json::from_slice(&pushed.manifest).unwrap();
    let arm = index["manifests"][1]["digest"].as_str().unwrap();
    assert_eq!(out.stdout.trim(), format!("{}/proj/arm@{arm}", dst.host()));
}

#[test]
fn json_events_parse_and_end_with_the_result() {
    let (src, dst, pushed) =
        two_registries_with_index("multi", "v1", Format::Oci, LAYERS, &PLATFORMS);
    let (s, d) = (src.host(), dst.host());
    let out = run(&[
        "copy",
        "--json",
        "--plain-http",
        &s,
        "--plain-http",
        &d,
        &format!("{s}/multi:v1"),
        &format!("{d}/proj/multi:v1"),
    ]);
    out.assert_ok();
    assert_eq!(out.stderr, "", "with --json everything is on stdout");
    let events = out.events();
    assert_eq!(events[0]["event"], "resolved");
    assert_eq!(events[0]["digest"], pushed.digest.as_str());
    let manifests = events[0]["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 3, "two platforms and the index");
    assert_eq!(manifests[0]["platform"], "linux/amd64");
    assert_eq!(manifests[1]["platform"], "linux/arm64/v8");
    let blobs: Vec<&Value> = events.iter().filter(|e| e["event"] == "blob").collect();
    assert_eq!(blobs.len(), pushed.blobs.len());
    assert!(blobs.iter().all(|b| b["state"] == "done"), "{blobs:?}");
    let last = events.last().unwrap();
    assert_eq!(last["event"], "done");
    assert_eq!(
        last["reference"],
        format!("{d}/proj/multi@{}", pushed.digest).as_str()
    );
    assert_eq!(
        last["bytes_transferred"],
        pushed.blobs.iter().map(|b| b.1).sum::<u64>()
    );
}

#[test]
fn dry_run_prints_the_plan_and_writes_nothing() {
    let (src, dst, pushed) =
        two_registries_with_index("multi", "v1", Format::Oci, LAYERS, &PLATFORMS);
    let (s, d) = (src.host(), dst.host());
    let source = format!("{s}/multi:v1");
    let target = format!("{d}/proj/multi:v1");
    let dry_run = |extra: &[&str]| {
        let mut args = vec!["copy", "--dry-run", "--plain-http", &s, "--plain-http", &d];
        args.extend(extra);
        args.extend([source.as_str(), target.as_str()]);
        run(&args)
    };

    let out = dry_run(&[]);
    out.assert_ok();
    for platform in ["linux/amd64", "linux/arm64/v8"] {
        assert!(out.stdout.contains(platform), "{}", out.stdout);
    }
    for (digest, _) in &pushed.blobs {
        let line = out
            .stdout
            .lines()
            .find(|l| l.contains(digest.as_str()))
            .unwrap_or_else(|| panic!("{digest} is in the plan: {}", out.stdout));
        assert!(line.ends_with("copy"), "{line}");
    }
    assert!(
        out.stdout
            .contains(&format!("would copy {} blobs", pushed.blobs.len())),
        "{}",
        out.stdout
    );
    // Nothing reached the destination: no manifest, and no blob either.
    assert!(!skopeo::exists(&target));
    let catalog: Value = ureq::get(&format!("{}/v2/_catalog", dst.url()))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(catalog["repositories"], serde_json::json!([]), "{catalog}");

    // Once one platform is there, the plan skips what the destination has.
    run(&[
        "copy",
        "--platform",
        "linux/amd64",
        "--plain-http",
        &s,
        "--plain-http",
        &d,
        &source,
        &target,
    ])
    .assert_ok();
    let out = dry_run(&["--json"]);
    out.assert_ok();
    let plan = out.events().pop().unwrap();
    assert_eq!(plan["event"], "plan");
    let actions: Vec<&str> = plan["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["action"].as_str().unwrap())
        .collect();
    let per_platform = LAYERS.len() + 1;
    assert_eq!(actions.len(), 2 * per_platform);
    assert!(
        actions[..per_platform].iter().all(|a| *a == "skip"),
        "{actions:?}"
    );
    assert!(
        actions[per_platform..].iter().all(|a| *a == "copy"),
        "{actions:?}"
    );
    assert_eq!(
        plan["reference"],
        format!("{d}/proj/multi@{}", pushed.digest).as_str()
    );
    // The tag still names the one platform copied before.
    let raw = skopeo::inspect_raw(&target, None);
    assert!(serde_json::from_slice::<Value>(&raw).unwrap()["layers"].is_array());
}

#[test]
fn basic_auth_from_the_environment_and_a_docker_config_file() {
    let src = Registry::start(Auth::Basic {
        user: "alice".into(),
        password: "s3cret-a".into(),
    });
    let dst = Registry::start(Auth::Basic {
        user: "carol".into(),
        password: "s3cret-c".into(),
    });
    Pusher::new(&src.url())
        .with_auth(basic("alice", "s3cret-a"))
        .image(
            "private/app",
            Some("v1"),
            Format::Oci,
            LAYERS,
            ("linux", "amd64"),
        );
    let (s, d) = (src.host(), dst.host());
    let source = format!("{s}/private/app:v1");
    let target = format!("{d}/proj/app:v1");
    let args = [
        "copy",
        "--plain-http",
        &s,
        "--plain-http",
        &d,
        &source,
        &target,
    ];

    // No credentials: the line names the registry and where credentials go.
    let out = run(&args);
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    assert_eq!(
        out.stderr,
        format!(
            "unauthorized: {s} requires credentials; pass --src-creds or set HOIST_SRC_CREDS\n"
        )
    );

    // The source's from the environment, the destination's from a docker config.json in
    // a preopened directory that DOCKER_CONFIG names.
    let docker = tempfile::tempdir().unwrap();
    let config = serde_json::json!({"auths": {
        d.clone(): {"auth": base64::engine::general_purpose::STANDARD.encode("carol:s3cret-c")},
        "gcr.io": {},
    }, "credHelpers": {s.clone(): "secretservice"}});
    std::fs::write(docker.path().join("config.json"), config.to_string()).unwrap();
    let dir = format!("{}::/docker", docker.path().display());
    let out = run_with(
        &[
            "--dir",
            &dir,
            "--env",
            "DOCKER_CONFIG=/docker",
            "--env",
            "HOIST_SRC_CREDS=alice:s3cret-a",
        ],
        &args,
        "",
    );
    out.assert_ok();
    same_manifest(
        &source,
        Some("alice:s3cret-a"),
        &target,
        Some("carol:s3cret-c"),
    );

    // The file leaves the source to a credential helper, which cannot run inside WASI:
    // the error says so.
    let out = run_with(
        &["--dir", &dir, "--env", "DOCKER_CONFIG=/docker"],
        &args,
        "",
    );
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    assert!(
        out.stderr.contains("docker-credential-secretservice")
            && out.stderr.contains("cannot run inside WASI"),
        "{}",
        out.stderr
    );

    // A wrong password says where it came from.
    let out = run(&[&args[..], &["--src-creds", "alice:wrong"]].concat());
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("refused the credentials; check the credentials from --src-creds"),
        "{}",
        out.stderr
    );
}

#[test]
fn token_auth_on_both_sides() {
    let (src_tokens, src) = token_registry("bob", "s3cret-token", TokenField::Token);
    let (_dst_tokens, dst) = token_registry("bob", "s3cret-token", TokenField::Token);
    Pusher::new(&src.url())
        .with_auth(format!(
            "Bearer {}",
            src_tokens.mint("private/app", &["pull", "push"])
        ))
        .index("private/app", "v1", Format::Docker, LAYERS, &PLATFORMS);
    let (s, d) = (src.host(), dst.host());
    let source = format!("{s}/private/app:v1");
    let target = format!("{d}/proj/app:v1");
    let creds = "bob:s3cret-token";
    let out = run(&[
        "copy",
        "--plain-http",
        &s,
        "--plain-http",
        &d,
        "--src-creds",
        creds,
        "--dest-creds",
        creds,
        &source,
        &target,
    ]);
    out.assert_ok();
    same_manifest(&source, Some(creds), &target, Some(creds));

    // Without the destination's credentials the push is refused, and the hint names
    // the flag for the destination.
    let out = run(&[
        "copy",
        "--plain-http",
        &s,
        "--plain-http",
        &d,
        "--src-creds",
        creds,
        &source,
        &format!("{d}/proj/other:v1"),
    ]);
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    // Progress lines came before it; the error is the last line.
    assert_eq!(
        out.stderr.lines().last().unwrap(),
        format!(
            "unauthorized: {d} requires credentials; pass --dest-creds or set HOIST_DEST_CREDS"
        )
    );
}

#[test]
fn a_mirror_stands_in_for_docker_hub() {
    let (mirror, dst, pushed) =
        two_registries_with_image("library/nginx", "latest", Format::Docker, LAYERS);
    let d = dst.host();
    let mirror_arg = format!("docker.io={}", mirror.url());
    let out = run(&[
        "copy",
        "--mirror",
        &mirror_arg,
        "--plain-http",
        &d,
        "nginx",
        &format!("{d}/proj/nginx:latest"),
    ]);
    out.assert_ok();
    assert_eq!(
        out.stdout.trim(),
        format!("{d}/proj/nginx@{}", pushed.digest)
    );
    same_manifest(
        &format!("{}/library/nginx:latest", mirror.host()),
        None,
        &format!("{d}/proj/nginx:latest"),
        None,
    );
}

#[test]
fn inspect_summarises_an_index_and_an_image() {
    let src = Registry::start(Auth::None);
    let pusher = Pusher::new(&src.url());
    let index = pusher.index("multi", "v1", Format::Oci, LAYERS, &PLATFORMS);
    let image = pusher.image(
        "single",
        Some("v1"),
        Format::Docker,
        LAYERS,
        ("linux", "s390x"),
    );
    let s = src.host();

    let out = run(&["inspect", "--plain-http", &s, &format!("{s}/multi:v1")]);
    out.assert_ok();
    assert!(out.stdout.contains(&index.digest), "{}", out.stdout);
    assert!(out.stdout.contains("linux/arm64/v8"), "{}", out.stdout);
    assert!(out.stdout.contains("platforms:   2"), "{}", out.stdout);

    let out = run(&[
        "inspect",
        "--json",
        "--plain-http",
        &s,
        &format!("{s}/multi:v1"),
    ]);
    out.assert_ok();
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["digest"], index.digest.as_str());
    assert_eq!(v["kind"], "index");
    let platforms: Vec<&str> = v["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["platform"].as_str().unwrap())
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64/v8"]);
    assert_eq!(v["size"], index.blobs.iter().map(|b| b.1).sum::<u64>());

    // A lone image names its platform in its config.
    let out = run(&[
        "inspect",
        "--json",
        "--plain-http",
        &s,
        &format!("{s}/single:v1"),
    ]);
    let v: Value = serde_json::from_str(&out.assert_ok().stdout).unwrap();
    assert_eq!(v["kind"], "image");
    assert_eq!(v["platforms"][0]["platform"], "linux/s390x");

    let out = run(&[
        "inspect",
        "--raw",
        "--plain-http",
        &s,
        &format!("{s}/single:v1"),
    ]);
    assert_eq!(out.assert_ok().stdout.as_bytes(), image.manifest.as_slice());
}

/// The class of a failure: its exit code, the first word of its one stderr line, and the
/// `code` of the final `--json` event.
fn assert_class(args: &[&str], exit: i32, prefix: &str, json_code: &str) {
    let out = run(args);
    assert_eq!(out.code, Some(exit), "{args:?}: {}", out.stderr);
    assert_eq!(out.stdout, "", "{args:?}: nothing on stdout");
    assert_eq!(
        out.stderr.lines().count(),
        1,
        "{args:?}: one line: {}",
        out.stderr
    );
    assert!(
        out.stderr.starts_with(prefix),
        "{args:?}: starts with {prefix:?}: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains("; "),
        "{args:?}: a hint follows: {}",
        out.stderr
    );

    let mut with_json = vec![args[0], "--json"];
    with_json.extend(&args[1..]);
    let out = run(&with_json);
    assert_eq!(out.code, Some(exit), "{with_json:?}: {}", out.stderr);
    let last = out.events().pop().expect("an error event");
    assert_eq!(last["event"], "error");
    assert_eq!(last["code"], json_code, "{last}");
    assert_eq!(last["exit_code"], exit);
}

#[test]
fn each_class_of_error_has_its_own_exit_code() {
    let src = Registry::start(Auth::Basic {
        user: "alice".into(),
        password: "pw".into(),
    });
    let dst = Registry::start(Auth::None);
    let (s, d) = (src.host(), dst.host());
    let target = format!("{d}/p/app:v1");
    Pusher::new(&src.url())
        .with_auth(basic("alice", "pw"))
        .image("app", Some("v1"), Format::Oci, &[1000], ("linux", "amd64"));
    let plain = ["--plain-http", s.as_str(), "--plain-http", d.as_str()];
    let copy = |extra: &[&str], source: &str| -> Vec<String> {
        let mut v = vec!["copy".to_owned()];
        v.extend(plain.iter().chain(extra).map(|a| a.to_string()));
        v.push(source.into());
        v.push(target.clone());
        v
    };
    let check = |args: Vec<String>, exit, prefix, code| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_class(&args, exit, prefix, code);
    };

    check(
        copy(&[], &format!("{s}/Bad/Name:v1")),
        2,
        "usage: ",
        "usage",
    );
    check(
        copy(&[], &format!("{s}/app:v1")),
        3,
        "unauthorized: ",
        "unauthorized",
    );
    check(
        copy(&["--src-creds", "alice:pw"], &format!("{s}/app:nope")),
        4,
        "not found: ",
        "not_found",
    );
    let closed = format!("127.0.0.1:{}", free_port());
    check(
        copy(
            &["--retry", "1", "--plain-http", &closed],
            &format!("{closed}/app:v1"),
        ),
        5,
        "network: ",
        "network",
    );
    let fake = FakeRegistry::start(Fault::AlwaysServerError);
    check(
        copy(
            &["--retry", "1", "--plain-http", &fake.host()],
            &format!("{}/fake:v1", fake.host()),
        ),
        5,
        "registry: ",
        "registry_error",
    );
    // Credentials for a registry elsewhere on plain HTTP are refused before any request.
    check(
        copy(
            &[
                "--plain-http",
                "registry.invalid:5000",
                "--src-creds",
                "u:p",
            ],
            "registry.invalid:5000/app:v1",
        ),
        6,
        "denied by policy: ",
        "denied_by_policy",
    );
}

#[test]
fn a_batch_with_bad_lines_reports_them_and_copies_the_rest() {
    let src = Registry::start(Auth::None);
    let dst = Registry::start(Auth::None);
    let pusher = Pusher::new(&src.url());
    let app = pusher.image(
        "team/app",
        Some("v1"),
        Format::Oci,
        LAYERS,
        ("linux", "amd64"),
    );
    let tool = pusher.image(
        "team/tool",
        Some("v2"),
        Format::Oci,
        LAYERS,
        ("linux", "amd64"),
    );
    let (s, d) = (src.host(), dst.host());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("images.txt"),
        format!(
            "# what to mirror\n\
             {s}/team/app:v1\n\
             {s}/team/Bad:v1\n\
             \n\
             {s}/team/missing:v1\n\
             {s}/team/tool:v2 {d}/other/tool:stable\n"
        ),
    )
    .unwrap();
    let preopen = format!("{}::/work", dir.path().display());
    let out = run_with(
        &["--dir", &preopen],
        &[
            "batch",
            "--dest",
            &format!("{d}/mirror"),
            "--plain-http",
            &s,
            "--plain-http",
            &d,
            "/work/images.txt",
        ],
        "",
    );
    // A usage error and a not-found: two classes, so the general failure code.
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert_eq!(
        out.stdout,
        format!(
            "{d}/mirror/app@{}\n{d}/other/tool@{}\n",
            app.digest, tool.digest
        )
    );
    let line = |n: usize| {
        out.stderr
            .lines()
            .find(|l| l.starts_with(&format!("line {n}: ")))
            .unwrap_or_else(|| panic!("line {n} is reported: {}", out.stderr))
            .to_owned()
    };
    assert!(
        line(3).contains("usage: ") && line(3).contains("team/Bad"),
        "{}",
        line(3)
    );
    assert!(line(5).contains("not found: "), "{}", line(5));
    assert!(
        out.stderr
            .lines()
            .last()
            .unwrap()
            .starts_with("batch: 2 copied, 2 failed (line 3, line 5)"),
        "{}",
        out.stderr
    );
    same_manifest(
        &format!("{s}/team/app:v1"),
        None,
        &format!("{d}/mirror/app:v1"),
        None,
    );
    same_manifest(
        &format!("{s}/team/tool:v2"),
        None,
        &format!("{d}/other/tool:stable"),
        None,
    );
}

#[test]
fn a_yaml_batch_from_stdin_copies_listed_and_all_tags() {
    let src = Registry::start(Auth::None);
    let dst = Registry::start(Auth::None);
    let pusher = Pusher::new(&src.url());
    let a1 = pusher.image(
        "team/app",
        Some("v1"),
        Format::Oci,
        &[1000],
        ("linux", "amd64"),
    );
    pusher.image(
        "team/app",
        Some("v2"),
        Format::Oci,
        &[1000],
        ("linux", "amd64"),
    );
    for tag in ["1.0", "2.0"] {
        pusher.image(
            "team/tool",
            Some(tag),
            Format::Oci,
            &[1000],
            ("linux", "amd64"),
        );
    }
    let (s, d) = (src.host(), dst.host());
    let yaml =
        format!("{s}:\n  images:\n    team/app: [v1]\n    team/tool: []\n  tls-verify: false\n");
    let out = run_with(
        &[],
        &[
            "batch",
            "--json",
            "--dest",
            &format!("{d}/sync"),
            "--plain-http",
            &d,
            "-",
        ],
        &yaml,
    );
    out.assert_ok();
    let events = out.events();
    let summary = events.last().unwrap();
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["copied"], 3);
    assert_eq!(summary["failed"], 0);
    let done: Vec<&Value> = events.iter().filter(|e| e["event"] == "done").collect();
    assert_eq!(
        done[0]["reference"],
        format!("{d}/sync/app@{}", a1.digest).as_str()
    );
    assert!(
        !skopeo::exists(&format!("{d}/sync/app:v2")),
        "v2 was not listed"
    );
    for tag in ["1.0", "2.0"] {
        same_manifest(
            &format!("{s}/team/tool:{tag}"),
            None,
            &format!("{d}/sync/tool:{tag}"),
            None,
        );
    }
}

#[test]
fn a_terminal_gets_progress_bars_on_stderr() {
    let (src, dst, pushed) = two_registries_with_image("app", "v1", Format::Oci, LAYERS);
    let (s, d) = (src.host(), dst.host());
    // `script` gives the command a pseudo-terminal, as an interactive shell would.
    let command = format!(
        "{} run -S http {CLI_WASM} copy --plain-http {s} --plain-http {d} {s}/app:v1 \
         {d}/p/app:v1",
        wasmtime().display()
    );
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("script (util-linux) is installed");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert!(screen.contains("\x1b[2K"), "redrawn in place: {screen:?}");
    let last_draw = screen.rsplit("\x1b[2Kdone: ").next().unwrap();
    for (digest, _) in &pushed.blobs {
        let short = &digest["sha256:".len()..][..12];
        assert!(
            last_draw.contains(&format!("{short} [")),
            "a bar for {short}: {last_draw:?}"
        );
    }
    assert!(last_draw.contains("\x1b[2Ktotal"), "{last_draw:?}");
    assert!(
        screen.contains(&format!("{d}/p/app@{}", pushed.digest)),
        "{screen:?}"
    );
}

#[test]
fn every_command_has_help_with_examples() {
    for command in ["copy", "inspect", "batch", "parse"] {
        let out = run(&[command, "--help"]);
        out.assert_ok();
        assert!(
            out.stdout.contains("Examples:"),
            "{command}: {}",
            out.stdout
        );
    }
    let out = run(&["--help"]);
    assert!(out.assert_ok().stdout.contains("Exit codes:"));
}

/// The summary event of a `sync --json` run.
fn sync_summary(run: &Run) -> Value {
    run.events()
        .into_iter()
        .find(|e| e["event"] == "summary")
        .unwrap_or_else(|| panic!("no summary: {}", run.stdout))
}

#[test]
fn sync_copies_what_a_rule_selects_then_only_what_changed() {
    let src = Registry::start(Auth::None);
    let dst = Registry::start(Auth::None);
    let push = |tag: &str| {
        Pusher::new(&src.url()).image(
            "library/app",
            Some(tag),
            Format::Oci,
            &[20_000],
            ("linux", "amd64"),
        )
    };
    for tag in [
        "1.0.0",
        "1.1.0",
        "1.2.0",
        "1.3.0",
        "1.4.0-rc.1",
        "latest",
        "edge",
    ] {
        push(tag);
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rule.yaml"),
        format!(
            "source: {{registry: docker.io, repositories: [library/app]}}\n\
             target: {}/hub\n\
             tags: {{semver: '>=1.1 <2', newest: 2}}\n",
            dst.host()
        ),
    )
    .unwrap();
    let preopen = format!("{}::/work", dir.path().display());
    let mirror = format!("docker.io={}", src.url());
    let d = dst.host();
    let sync = |extra: &[&str]| {
        let mut args = vec!["sync", "--mirror", &mirror, "--plain-http", &d, "--json"];
        args.extend_from_slice(extra);
        args.push("/work/rule.yaml");
        run_with(&["--dir", &preopen], &args, "")
    };
    let tags = || {
        let list: Value = ureq::get(&format!("{}/v2/hub/app/tags/list", dst.url()))
            .call()
            .map(|r| r.into_json().unwrap())
            .unwrap_or(Value::Null);
        let mut tags: Vec<String> = list["tags"]
            .as_array()
            .map(|a| a.iter().map(|t| t.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default();
        tags.sort();
        tags
    };

    // A dry run says what it would copy and copies nothing.
    let dry = sync(&["--dry-run"]);
    dry.assert_ok();
    assert_eq!(sync_summary(&dry)["copied"], 2, "{}", dry.stdout);
    assert!(tags().is_empty());

    let first = sync(&[]);
    first.assert_ok();
    let summary = sync_summary(&first);
    assert_eq!(summary["copied"], 2, "{}", first.stdout);
    assert_eq!(summary["filtered"], 5, "{}", first.stdout);
    assert_eq!(tags(), ["1.2.0", "1.3.0"]);
    // Each copy's event names the digest reference it landed at.
    let copied: Vec<Value> = first
        .events()
        .into_iter()
        .filter(|e| e["event"] == "item" && e["outcome"] == "copied")
        .collect();
    assert_eq!(copied.len(), 2, "{}", first.stdout);
    for event in copied {
        let reference = event["reference"].as_str().unwrap_or_default();
        assert!(reference.contains("/hub/app@sha256:"), "{event}");
    }

    push("1.4.0");
    let second = sync(&[]);
    second.assert_ok();
    let summary = sync_summary(&second);
    assert_eq!(summary["copied"], 1, "{}", second.stdout);
    assert_eq!(summary["unchanged"], 1, "{}", second.stdout);
    assert_eq!(tags(), ["1.2.0", "1.3.0", "1.4.0"]);

    // A rule the engine refuses is one usage line and exit code 2.
    std::fs::write(
        dir.path().join("rule.yaml"),
        "source: {registry: docker.io, repositories: [library/app]}\ntarget: nowhere\n",
    )
    .unwrap();
    let bad = sync(&[]);
    assert_eq!(bad.code, Some(2), "{}", bad.stderr);
    assert!(bad.stderr.contains("REGISTRY/PROJECT"), "{}", bad.stderr);
}
