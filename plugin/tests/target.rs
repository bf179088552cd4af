//! The seed's target naming rule: `<project>/<last path component>`, the source's tag.

use hoist_plugin::progress::Field;
use hoist_plugin::target::{TargetError, TargetName, name_import};

/// The target of `source` in `project`, as a host names it.
fn default_target(
    project: &str,
    source: &str,
    image: Option<&str>,
    tag: Option<&str>,
) -> Result<TargetName, TargetError> {
    name_import(project, source, image, tag, "registry.example").map(|n| n.target)
}

fn name(repository: &str, tag: Option<&str>) -> TargetName {
    TargetName {
        repository: repository.into(),
        tag: tag.map(Into::into),
    }
}

#[test]
fn defaults_come_from_the_source() {
    let cases = [
        ("nginx", name("web/nginx", Some("latest"))),
        ("nginx:1.25", name("web/nginx", Some("1.25"))),
        (
            "docker.io/library/nginx:latest",
            name("web/nginx", Some("latest")),
        ),
        ("user/app:1.2", name("web/app", Some("1.2"))),
        (
            "ghcr.io/owner/repo:v1.0.0",
            name("web/repo", Some("v1.0.0")),
        ),
        (
            "quay.io/prometheus/prometheus:latest",
            name("web/prometheus", Some("latest")),
        ),
        ("registry.k8s.io/pause:3.9", name("web/pause", Some("3.9"))),
        ("localhost:5000/a/b/c:x", name("web/c", Some("x"))),
    ];
    for (source, want) in cases {
        assert_eq!(
            default_target("web", source, None, None).unwrap(),
            want,
            "{source}"
        );
    }
}

#[test]
fn a_digest_only_source_keeps_no_tag() {
    let source = format!("nginx@sha256:{}", "a".repeat(64));
    assert_eq!(
        default_target("web", &source, None, None).unwrap(),
        name("web/nginx", None)
    );
    // With both, the tag is kept.
    let source = format!("nginx:1.25@sha256:{}", "a".repeat(64));
    assert_eq!(
        default_target("web", &source, None, None).unwrap(),
        name("web/nginx", Some("1.25"))
    );
}

#[test]
fn overrides_replace_the_defaults() {
    assert_eq!(
        default_target("web", "nginx:1.25", Some("team/proxy"), Some("stable")).unwrap(),
        name("web/team/proxy", Some("stable"))
    );
    let source = format!("nginx@sha256:{}", "a".repeat(64));
    assert_eq!(
        default_target("web", &source, None, Some("pinned")).unwrap(),
        name("web/nginx", Some("pinned"))
    );
}

#[test]
fn each_bad_field_is_named() {
    let cases = [
        ("Web", "nginx", None, None, Field::Project, "lowercase"),
        ("", "nginx", None, None, Field::Project, "empty"),
        ("web", "nginx:", None, None, Field::Source, "tag"),
        ("web", "NGINX", None, None, Field::Source, "lowercase"),
        (
            "web",
            "nginx",
            Some("Proxy"),
            None,
            Field::TargetImage,
            "lowercase",
        ),
        (
            "web",
            "nginx",
            Some("a//b"),
            None,
            Field::TargetImage,
            "path component 2",
        ),
        ("web", "nginx", Some(""), None, Field::TargetImage, "empty"),
        (
            "web",
            "nginx",
            Some("proxy:1"),
            None,
            Field::TargetImage,
            "':'",
        ),
        (
            "web",
            "nginx",
            None,
            Some("-x"),
            Field::TargetTag,
            "must start",
        ),
        ("web", "nginx", None, Some(""), Field::TargetTag, "empty"),
    ];
    for (project, source, image, tag, field, phrase) in cases {
        let err = default_target(project, source, image, tag).unwrap_err();
        assert_eq!(
            err.field, field,
            "{project} {source} {image:?} {tag:?}: {err}"
        );
        assert!(err.message.contains(phrase), "{err} lacks {phrase:?}");
    }
    let long = "a".repeat(260);
    let err = default_target("web", "nginx", Some(&long), None).unwrap_err();
    assert_eq!(err.field, Field::TargetImage);
    assert!(err.message.contains("at most 255"), "{err}");
}

#[test]
fn the_target_reference_is_fully_qualified_and_by_digest_for_a_digest_source() {
    let names = name_import("web", "ghcr.io/owner/repo:v1", None, None, "reg:5000").unwrap();
    assert_eq!(names.target_reference, "reg:5000/web/repo:v1");
    assert_eq!(names.source.canonical(), "ghcr.io/owner/repo:v1");
    let digest = format!("sha256:{}", "a".repeat(64));
    let names = name_import("web", &format!("nginx@{digest}"), None, None, "reg").unwrap();
    assert_eq!(names.target_reference, format!("reg/web/nginx@{digest}"));
    assert_eq!(names.target.tag, None);
    let pinned = name_import("web", &format!("nginx@{digest}"), None, Some("v1"), "reg");
    assert_eq!(pinned.unwrap().target_reference, "reg/web/nginx:v1");
}
