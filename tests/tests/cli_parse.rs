//! `hoist parse` under the real, pinned `wasmtime` CLI.

use hoist_tests::hoist;
use serde_json::Value;

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn parse_prints_the_normalised_reference() {
    for (input, want) in [
        ("nginx", "docker.io/library/nginx:latest"),
        ("user/app:1.2", "docker.io/user/app:1.2"),
        ("ghcr.io/owner/repo:v1.0.0", "ghcr.io/owner/repo:v1.0.0"),
        (
            "index.docker.io/library/busybox",
            "docker.io/library/busybox:latest",
        ),
        ("[::1]:5000/ns/img:v2", "[::1]:5000/ns/img:v2"),
    ] {
        let out = hoist(&["parse", input]);
        assert!(out.status.success(), "{input}: {}", stderr(&out));
        assert_eq!(stdout(&out), format!("{want}\n"), "{input}");
        assert_eq!(stderr(&out), "", "{input}: nothing on stderr on success");
    }
}

#[test]
fn parse_json_has_every_key() {
    let digest = format!("sha256:{}", "b".repeat(64));
    let out = hoist(&["parse", "--json", &format!("localhost:5000/a/b@{digest}")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(
        text.lines().count(),
        1,
        "one JSON object on one line: {text}"
    );
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["registry"], "localhost:5000");
    assert_eq!(v["repository"], "a/b");
    assert_eq!(v["tag"], Value::Null);
    assert_eq!(v["digest"], digest.as_str());
    assert_eq!(v["familiar"], format!("localhost:5000/a/b@{digest}"));
    assert_eq!(v["canonical"], format!("localhost:5000/a/b@{digest}"));

    let out = hoist(&["parse", "--json", "nginx"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["digest"], Value::Null, "digest is null, not missing");
    assert_eq!(v["tag"], "latest");
    assert_eq!(v["familiar"], "nginx:latest");
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 6, "{keys:?}");
}

#[test]
fn an_invalid_reference_exits_non_zero_with_one_line() {
    for (input, phrase) in [
        ("docker.io/Library/nginx", "lowercase"),
        ("nginx@sha256:abc", "64"),
        ("nginx:", "tag"),
        ("https://ghcr.io/o/r", "URL scheme"),
    ] {
        let out = hoist(&["parse", input]);
        // WASI 0.2.12's `exit-with-code`, which a plain `wasmtime run` grants, carries the
        // usage class's own code.
        assert_eq!(out.status.code(), Some(2), "{input}: the usage exit code");
        assert_eq!(stdout(&out), "", "{input}: nothing on stdout");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{input}: one line: {err}");
        assert!(
            err.starts_with("usage: "),
            "{input}: the class first: {err}"
        );
        assert!(err.contains(phrase), "{input}: {err}");
    }
}

#[test]
fn a_missing_argument_is_a_one_line_usage_error() {
    let out = hoist(&["parse"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "usage: the following required arguments were not provided: <REFERENCE>; see \
         `hoist parse --help`\n"
    );
}
