//! The selection engine against tables: each case is a selection, the tags a registry
//! listed, the tags kept in copy order, and some of the reasons given for dropped tags.

use super::*;

/// A `TagSelection` built in one line per case.
#[derive(Clone, Default)]
struct S(TagSelection);

fn sel() -> S {
    S::default()
}

impl S {
    fn include(mut self, pattern: Pattern) -> Self {
        self.0.include.push(pattern);
        self
    }
    fn exclude(mut self, pattern: Pattern) -> Self {
        self.0.exclude.push(pattern);
        self
    }
    fn range(mut self, range: &str) -> Self {
        self.0.semver = Some(range.into());
        self
    }
    fn pre(mut self) -> Self {
        self.0.prereleases = true;
        self
    }
    fn newest(mut self, n: u32) -> Self {
        self.0.newest = Some(n);
        self
    }
    fn digest(mut self, digest: &str) -> Self {
        self.0.digests.push(digest.into());
        self
    }
}

fn glob(value: &str) -> Pattern {
    Pattern::glob(value)
}

fn re(value: &str) -> Pattern {
    Pattern::regex(value)
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

const NOT_INCLUDED: &str = "not matched by any include pattern";
const NOT_A_VERSION: &str = "not a version";
const PRE: &str = "a pre-release (allow pre-releases to include it)";

struct Case {
    name: &'static str,
    spec: S,
    /// As the registry listed them.
    tags: &'static str,
    /// In copy order.
    kept: &'static str,
    /// Dropped tags and their exact reasons.
    reasons: &'static [(&'static str, &'static str)],
}

fn case(name: &'static str, spec: S, tags: &'static str, kept: &'static str) -> Case {
    Case {
        name,
        spec,
        tags,
        kept,
        reasons: &[],
    }
}

impl Case {
    fn why(mut self, reasons: &'static [(&'static str, &'static str)]) -> Self {
        self.reasons = reasons;
        self
    }
}

fn cases() -> Vec<Case> {
    vec![
        // ---- include and exclude ----
        case(
            "no filter keeps every tag, in registry order when mixed",
            sel(),
            "latest 1.0 edge",
            "latest 1.0 edge",
        ),
        case(
            "glob * keeps every tag",
            sel().include(glob("*")),
            "a 1.0 latest",
            "a 1.0 latest",
        ),
        case(
            "glob 1.* is anchored at both ends",
            sel().include(glob("1.*")),
            "1.0 1.2.3 2.0 1 11.0",
            "1.0 1.2.3",
        )
        .why(&[
            ("2.0", NOT_INCLUDED),
            ("1", NOT_INCLUDED),
            ("11.0", NOT_INCLUDED),
        ]),
        case(
            "glob ? is exactly one character",
            sel().include(glob("v1.?")),
            "v1.2 v1.10 v1.",
            "v1.2",
        ),
        case(
            "glob class of a range",
            sel().include(glob("[0-9]*")),
            "1.0 latest 9x",
            "1.0 9x",
        ),
        case(
            "glob class negated with !",
            sel().include(glob("[!l]*")),
            "latest 1.0 edge",
            "1.0 edge",
        ),
        case(
            "glob class negated with ^",
            sel().include(glob("[^l]*")),
            "latest 1.0 edge",
            "1.0 edge",
        ),
        case(
            "glob class of letters",
            sel().include(glob("[abc]*")),
            "alpha beta delta cat",
            "alpha beta cat",
        ),
        case(
            "glob ] first in a class is a member",
            sel().include(glob("[]x]")),
            "] x y",
            "] x",
        ),
        case(
            "glob ** matches any run",
            sel().include(glob("**-alpine")),
            "1.2-alpine 1.2 alpine",
            "1.2-alpine",
        ),
        case(
            "glob exclude names the pattern",
            sel().exclude(glob("*-rc*")),
            "1.0 1.1-rc1 1.1",
            "1.0 1.1",
        )
        .why(&[("1.1-rc1", "excluded by glob \"*-rc*\"")]),
        case(
            "any include pattern may match",
            sel().include(glob("1.*")).include(glob("latest")),
            "latest 1.0 2.0 edge",
            "latest 1.0",
        ),
        case(
            "exclude wins over include",
            sel().include(glob("*")).exclude(glob("latest")),
            "latest 1.0",
            "1.0",
        )
        .why(&[("latest", "excluded by glob \"latest\"")]),
        case(
            "the first matching exclude is named",
            sel().exclude(glob("*-rc*")).exclude(re(".*rc.*")),
            "1.0-rc1 rc",
            "",
        )
        .why(&[
            ("1.0-rc1", "excluded by glob \"*-rc*\""),
            ("rc", "excluded by regex \".*rc.*\""),
        ]),
        case(
            "regex include is anchored",
            sel().include(re(r"v?\d+\.\d+\.\d+")),
            "1.2.3 v1.2.3 1.2.3-rc 11.2.3x",
            "1.2.3 v1.2.3",
        )
        .why(&[("1.2.3-rc", NOT_INCLUDED)]),
        case(
            "regex does not match a substring",
            sel().include(re(r"1\.2")),
            "1.2 11.2 1.23",
            "1.2",
        ),
        case(
            "regex alternatives are anchored as a group",
            sel().include(re("a|b")),
            "a b ab",
            "a b",
        ),
        case(
            "regex exclude names the pattern",
            sel().exclude(re(r".*-(rc|beta)\.\d+")),
            "1.0 1.1-rc.1 1.1-beta.2",
            "1.0",
        )
        .why(&[("1.1-beta.2", r#"excluded by regex ".*-(rc|beta)\.\d+""#)]),
        case(
            "regex case-insensitive flag",
            sel().include(re("(?i)LATEST")),
            "latest edge",
            "latest",
        ),
        case(
            "regex in (?x) mode with a trailing comment",
            sel().include(re(r"(?x) \d+ \. \d+  # major.minor")),
            "1.2 1.2.3",
            "1.2",
        ),
        // ---- semver ranges ----
        case(
            "range >=1.25 <2",
            sel().range(">=1.25 <2"),
            "1.24.0 1.25.0 1.27.3 2.0.0 latest",
            "1.25.0 1.27.3",
        )
        .why(&[
            ("2.0.0", "outside the range \">=1.25 <2\""),
            ("latest", NOT_A_VERSION),
        ]),
        case(
            "range with commas",
            sel().range(">=1.25, <2"),
            "1.24.0 1.25.0 1.27.3 2.0.0",
            "1.25.0 1.27.3",
        ),
        case(
            "range with a space after the operator",
            sel().range(">= 1.25 < 2"),
            "1.24.0 1.25.0 1.27.3 2.0.0",
            "1.25.0 1.27.3",
        ),
        case(
            "caret ^1.2",
            sel().range("^1.2"),
            "1.1.9 1.2.0 1.9.9 2.0.0",
            "1.2.0 1.9.9",
        ),
        case(
            "caret ^0.2.3 stays below 0.3",
            sel().range("^0.2.3"),
            "0.2.2 0.2.3 0.2.9 0.3.0",
            "0.2.3 0.2.9",
        ),
        case(
            "caret ^0.0.3 is exact in effect",
            sel().range("^0.0.3"),
            "0.0.2 0.0.3 0.0.4",
            "0.0.3",
        ),
        case(
            "tilde ~1.27",
            sel().range("~1.27"),
            "1.26.9 1.27.0 1.27.5 1.28.0",
            "1.27.0 1.27.5",
        ),
        case(
            "tilde ~1.2.3",
            sel().range("~1.2.3"),
            "1.2.2 1.2.3 1.2.9 1.3.0",
            "1.2.3 1.2.9",
        ),
        case(
            "wildcard 1.27.*",
            sel().range("1.27.*"),
            "1.27.0 1.27.4 1.28.0 1.2.7",
            "1.27.0 1.27.4",
        ),
        case(
            "wildcard 1.27.x",
            sel().range("1.27.x"),
            "1.27.0 1.27.4 1.28.0 1.2.7",
            "1.27.0 1.27.4",
        ),
        case(
            "wildcard 1.x",
            sel().range("1.x"),
            "0.9 1.0 1.99.1 2.0",
            "1.0 1.99.1",
        ),
        case(
            "* keeps every version and drops the rest",
            sel().range("*"),
            "1.0 latest 3",
            "1.0 3",
        )
        .why(&[("latest", NOT_A_VERSION)]),
        case(
            "=1.2.3 is exact; equal versions keep registry order",
            sel().range("=1.2.3"),
            "v1.2.3 1.2.4 1.2.3",
            "v1.2.3 1.2.3",
        ),
        case(
            "a bare full version is exact, not a caret",
            sel().range("1.2.3"),
            "1.2.3 1.2.4 1.3.0",
            "1.2.3",
        ),
        case(
            "a bare partial version is every version it names",
            sel().range("1.2"),
            "1.2 1.2.5 1.3",
            "1.2 1.2.5",
        ),
        case(
            "|| alternatives",
            sel().range("^1.2 || ^2.0"),
            "1.1.0 1.2.0 2.0.0 2.5.1 3.0.0",
            "1.2.0 2.0.0 2.5.1",
        ),
        case(
            "tags with a v prefix",
            sel().range(">=1.2"),
            "v1.1.0 v1.2.0 v1.3",
            "v1.2.0 v1.3",
        ),
        case(
            "partial tags read as .0",
            sel().range(">=1.25 <2"),
            "1 1.25 1.26.1 2",
            "1.25 1.26.1",
        ),
        case(
            ">1.2 is past every 1.2",
            sel().range(">1.2"),
            "1.2.0 1.2.9 1.3.0",
            "1.3.0",
        ),
        case(
            "<=1.2 includes every 1.2",
            sel().range("<=1.2"),
            "1.2.9 1.3.0",
            "1.2.9",
        ),
        case(
            "<1.2.3 is strict",
            sel().range("<1.2.3"),
            "1.2.2 1.2.3",
            "1.2.2",
        ),
        case(
            "four numbers are not a version",
            sel().range("*"),
            "1.2.3.4 1.2",
            "1.2",
        )
        .why(&[("1.2.3.4", NOT_A_VERSION)]),
        case(
            "calendar versions with leading zeros",
            sel().range(">=22.04"),
            "20.04 22.04 24.04",
            "22.04 24.04",
        ),
        case(
            "versions order by number, not text",
            sel().range("*"),
            "1.10 1.9 1.2",
            "1.2 1.9 1.10",
        ),
        // ---- pre-releases ----
        case(
            "pre-releases are dropped by default",
            sel().range(">=1.0"),
            "1.0.0 1.1.0-rc.1 1.1.0",
            "1.0.0 1.1.0",
        )
        .why(&[("1.1.0-rc.1", PRE)]),
        case(
            "pre-releases are kept when allowed",
            sel().range(">=1.0").pre(),
            "1.0.0 1.1.0-rc.1 1.1.0",
            "1.0.0 1.1.0-rc.1 1.1.0",
        ),
        case(
            "a pre-release outside the range says so",
            sel().range(">=1.1 <2"),
            "0.9.0-rc.1",
            "",
        )
        .why(&[("0.9.0-rc.1", "outside the range \">=1.1 <2\"")]),
        case(
            "<2 keeps 2.0.0 pre-releases out",
            sel().range(">=1.25 <2").pre(),
            "1.26.0-rc.1 2.0.0-rc.1 1.25.0",
            "1.25.0 1.26.0-rc.1",
        ),
        case(
            "1.2.3-alpine is a pre-release",
            sel().range("^1.2"),
            "1.2.3 1.2.3-alpine 1.2-alpine",
            "1.2.3",
        )
        // 1.2.0-alpine precedes 1.2.0 in semver, so it is below ^1.2 whatever the flag.
        .why(&[
            ("1.2.3-alpine", PRE),
            ("1.2-alpine", "outside the range \"^1.2\""),
        ]),
        case(
            "variant tags with pre-releases allowed",
            sel().include(glob("*-alpine")).range("^1.2").pre(),
            "1.2.3 1.2.3-alpine 1.2-alpine 1.3-alpine",
            "1.2.3-alpine 1.3-alpine",
        ),
        case(
            "pre-releases order by semver precedence",
            sel().range("*").pre(),
            "1.0.0-rc.10 1.0.0 1.0.0-rc.2 1.0.0-alpha",
            "1.0.0-alpha 1.0.0-rc.2 1.0.0-rc.10 1.0.0",
        ),
        case(
            "an exact pre-release needs pre-releases allowed",
            sel().range("=1.4.0-rc.1"),
            "1.4.0-rc.1 1.4.0",
            "",
        )
        .why(&[("1.4.0-rc.1", PRE)]),
        case(
            "an exact pre-release",
            sel().range("=1.4.0-rc.1").pre(),
            "1.4.0-rc.1 1.4.0",
            "1.4.0-rc.1",
        ),
        case(
            "without a range, pre-releases are ordinary tags",
            sel(),
            "1.0.0 1.1.0-rc.1",
            "1.0.0 1.1.0-rc.1",
        ),
        // ---- newest ----
        case(
            "newest by version order",
            sel().newest(2),
            "1.10.0 1.9.0 1.2.0",
            "1.9.0 1.10.0",
        )
        .why(&[("1.2.0", "older than the newest 2")]),
        case(
            "newest by registry order when a tag is not a version",
            sel().newest(2),
            "b latest 1.0 a",
            "1.0 a",
        )
        .why(&[
            ("b", "older than the newest 2"),
            ("latest", "older than the newest 2"),
        ]),
        case(
            "newest 1 by registry order",
            sel().newest(1),
            "2.0 latest 1.0",
            "1.0",
        ),
        case(
            "newest larger than the list keeps all",
            sel().newest(10),
            "1.0 0.9",
            "0.9 1.0",
        ),
        case("newest on an empty list", sel().newest(3), "", ""),
        case(
            "newest with tied versions: the later listed is newer",
            sel().newest(2),
            "1.2.0 1.2 1.1",
            "1.2.0 1.2",
        ),
        case(
            "newest 1 among tied versions",
            sel().newest(1),
            "1.2 1.2.0",
            "1.2.0",
        ),
        case(
            "newest counts after exclude; the rest are versions",
            sel().include(glob("*")).exclude(glob("latest")).newest(1),
            "1.0 latest 0.5",
            "1.0",
        )
        .why(&[
            ("0.5", "older than the newest 1"),
            ("latest", "excluded by glob \"latest\""),
        ]),
        case(
            "the issue's scenario",
            sel().range(">=1.1 <2").newest(2),
            "1.0.0 1.1.0 1.2.0 1.3.0 1.4.0-rc.1 latest edge",
            "1.2.0 1.3.0",
        )
        .why(&[
            ("1.0.0", "outside the range \">=1.1 <2\""),
            ("1.1.0", "older than the newest 2"),
            ("1.4.0-rc.1", PRE),
            ("latest", NOT_A_VERSION),
            ("edge", NOT_A_VERSION),
        ]),
        case(
            "the issue's scenario after 1.4.0 is pushed",
            sel().range(">=1.1 <2").newest(2),
            "1.0.0 1.1.0 1.2.0 1.3.0 1.4.0-rc.1 latest edge 1.4.0",
            "1.3.0 1.4.0",
        )
        .why(&[("1.2.0", "older than the newest 2")]),
    ]
}

#[test]
fn selections() {
    let cases = cases();
    assert!(cases.len() >= 45, "{} cases", cases.len());
    for case in cases {
        let name = case.name;
        let selection = Selection::new(&case.spec.0)
            .unwrap_or_else(|e| panic!("{name}: the selection is invalid: {e}"));
        let tags = words(case.tags);
        let decisions = selection.decide(&tags);
        assert_eq!(decisions.kept, words(case.kept), "{name}: kept");
        // One decision per input tag, in input order, and kept ones carry no reason.
        let listed: Vec<&str> = decisions.tags.iter().map(|d| d.tag.as_str()).collect();
        assert_eq!(
            listed,
            case.tags.split_whitespace().collect::<Vec<_>>(),
            "{name}"
        );
        for d in &decisions.tags {
            assert_eq!(
                d.dropped.is_none(),
                decisions.kept.contains(&d.tag),
                "{name}: {} is kept exactly when it has no reason",
                d.tag
            );
        }
        for (tag, reason) in case.reasons {
            assert_eq!(
                decisions.reason(tag),
                Some(*reason),
                "{name}: reason for {tag}"
            );
        }
        assert_eq!(
            select_tags(&case.spec.0, &tags).unwrap(),
            decisions.kept,
            "{name}: select_tags"
        );
    }
}

#[test]
fn digests_are_added_to_the_tags() {
    let a = format!("sha256:{}", "a".repeat(64));
    let b = format!("sha512:{}", "b".repeat(128));
    let spec = sel().include(glob("1.*")).digest(&a).digest(&b).digest(&a);
    let decisions = Selection::new(&spec.0)
        .unwrap()
        .decide(&words("1.0 latest"));
    assert_eq!(decisions.kept, ["1.0"]);
    assert_eq!(decisions.digests, [a.clone(), b]);
    // Even when no tag is kept.
    let spec = sel().include(glob("nothing")).digest(&a);
    let decisions = Selection::new(&spec.0).unwrap().decide(&words("1.0"));
    assert!(decisions.kept.is_empty());
    assert_eq!(decisions.digests, [a]);
}

#[test]
fn invalid_selections_fail_with_the_field_and_what_to_fix() {
    let cases: Vec<(&str, S, &str)> = vec![
        (
            "invalid regex",
            sel().include(re("[a-")),
            "the include regex \"[a-\" (pattern 1) does not compile: ",
        ),
        (
            "regex trying to escape the anchors",
            sel().include(re("a)|(b")),
            "the include regex \"a)|(b\" (pattern 1) does not compile",
        ),
        (
            "empty include pattern",
            sel().include(glob("")),
            "include pattern 1 is empty",
        ),
        (
            "empty exclude pattern",
            sel().exclude(glob("x")).exclude(re("")),
            "exclude pattern 2 is empty",
        ),
        (
            "unclosed glob class",
            sel().include(glob("1.[0-9")),
            "the include glob \"1.[0-9\" (pattern 1) opens a class with '[' at character 3 but \
             never closes it",
        ),
        (
            "empty glob class never closes",
            sel().exclude(glob("[]")),
            "never closes it",
        ),
        (
            "backwards glob range",
            sel().include(glob("[z-a]")),
            "the range z-a, which runs backwards",
        ),
        (
            "range with a word",
            sel().range(">=1.25 <two"),
            "the semver range \">=1.25 <two\" does not parse: the comparator \"<two\" has \"two\"",
        ),
        (
            "range with a number after a wildcard",
            sel().range("1.x.3"),
            "a number after a wildcard",
        ),
        ("hyphen range", sel().range("1.2 - 1.4"), "hyphen range"),
        ("empty range", sel().range(" "), "the semver range is empty"),
        (
            "empty alternative",
            sel().range("^1 ||"),
            "empty alternative",
        ),
        (
            "unknown operator",
            sel().range("=>1"),
            "the comparator \"=>1\" has the unknown operator \"=>\"",
        ),
        (
            "operator with no version",
            sel().range(">="),
            "the comparator \">=\" has no version",
        ),
        (
            "four numbers in a range",
            sel().range("1.2.3.4"),
            "more than three numbers",
        ),
        (
            "nothing is below *",
            sel().range("<*"),
            "matches no version",
        ),
        (
            "pre-release on a partial version",
            sel().range(">=1.4-rc.1"),
            "needs all three numbers",
        ),
        ("newest 0", sel().newest(0), "newest is 0"),
        (
            "short digest",
            sel().digest("sha256:abc"),
            "digest 1 (\"sha256:abc\") is malformed: the sha256 digest has 3 hex digits",
        ),
        (
            "unknown digest algorithm",
            sel().digest(&format!("md5:{}", "a".repeat(32))),
            "is not supported",
        ),
    ];
    for (name, spec, fragment) in cases {
        let err = Selection::new(&spec.0).expect_err(name);
        assert_eq!(err.field, Field::Tags, "{name}: {err}");
        assert!(
            err.message.contains(fragment),
            "{name}: {:?} lacks {fragment:?}",
            err.message
        );
        assert!(select_tags(&spec.0, &[]).is_err(), "{name}");
    }
}

#[test]
fn tag_versions() {
    let v = |s: &str| tag_version(s).map(|v| v.to_string());
    assert_eq!(v("1.2.3").as_deref(), Some("1.2.3"));
    assert_eq!(v("v1.2").as_deref(), Some("1.2.0"));
    assert_eq!(v("1").as_deref(), Some("1.0.0"));
    assert_eq!(v("1.2.3-alpine").as_deref(), Some("1.2.3-alpine"));
    assert_eq!(v("1.2-alpine").as_deref(), Some("1.2.0-alpine"));
    assert_eq!(v("22.04").as_deref(), Some("22.4.0"));
    for not in [
        "latest",
        "edge",
        "v",
        "1.2.3.4",
        "1.2.",
        ".1",
        "1.2.3-",
        "1.2.3-a_b",
        "1..2",
        "V1.2",
        "1.2.3-rc.01",
    ] {
        assert_eq!(v(not), None, "{not}");
    }
}

#[test]
fn repository_patterns() {
    let cases = [
        ("library/*", "library/nginx", true),
        ("library/*", "library/a/b", false),
        ("library/*", "library", false),
        ("prometheus/**", "prometheus/node-exporter", true),
        ("prometheus/**", "prometheus/a/b/c", true),
        ("prometheus/**", "prometheusx/a", false),
        ("library/ng?nx", "library/nginx", true),
        ("library/?", "library/ab", false),
        ("a?b", "a/b", false),
        ("library/[a-m]*", "library/nginx", false),
        ("library/[!a-m]*", "library/nginx", true),
        ("a[!x]b", "a/b", false),
        ("*", "nginx", true),
        ("*", "library/nginx", false),
        ("library/nginx", "library/nginx", true),
        ("library/nginx", "library/nginx2", false),
    ];
    for (pattern, name, want) in cases {
        let compiled = RepositoryPattern::new(pattern).unwrap();
        assert_eq!(compiled.matches(name), want, "{pattern} ~ {name}");
        assert_eq!(compiled.is_glob(), is_glob(pattern), "{pattern}");
        assert_eq!(compiled.as_str(), pattern);
    }
    let only_slash = RepositoryPattern::new("a[/]b").unwrap_err();
    assert!(
        only_slash.message.contains("only '/'"),
        "{}",
        only_slash.message
    );
    assert!(is_glob("library/*") && is_glob("a?") && is_glob("a[b]"));
    assert!(!is_glob("library/nginx"));

    for (pattern, fragment) in [
        (
            "library/[ng",
            "the repository glob \"library/[ng\" opens a class",
        ),
        ("Library/Nginx", "has uppercase letters"),
        (
            "library//nginx",
            "path component 2 of the repository \"library//nginx\" is empty",
        ),
        ("", "a repository entry is empty"),
    ] {
        let err = RepositoryPattern::new(pattern).expect_err(pattern);
        assert_eq!(err.field, Field::Repositories, "{pattern}");
        assert!(
            err.message.contains(fragment),
            "{pattern}: {:?}",
            err.message
        );
    }
}

fn naming(project: &str, strip: Option<&str>, add: Option<&str>, path: bool) -> Naming {
    Naming {
        project: project.into(),
        path: path.then(|| PathNaming {
            strip_prefix: strip.map(Into::into),
            add_prefix: add.map(Into::into),
        }),
    }
}

#[test]
fn target_repositories() {
    let ok = [
        (
            naming("web", None, None, false),
            "library/nginx",
            "web/nginx",
        ),
        (naming("web", None, None, false), "a/b/c", "web/c"),
        (
            naming("web", None, None, true),
            "library/nginx",
            "web/library/nginx",
        ),
        (
            naming("web", Some("library"), None, true),
            "library/nginx",
            "web/nginx",
        ),
        (
            naming("web", Some("prometheus"), None, true),
            "prometheus/exporters/node",
            "web/exporters/node",
        ),
        (naming("web", Some("a/b"), None, true), "a/b/c/d", "web/c/d"),
        (
            naming("web", None, Some("mirror/hub"), true),
            "library/nginx",
            "web/mirror/hub/library/nginx",
        ),
        (
            naming("web", Some("library"), Some("hub"), true),
            "library/nginx",
            "web/hub/nginx",
        ),
    ];
    for (naming, source, want) in ok {
        assert_eq!(
            target_repository(&naming, source).as_deref(),
            Ok(want),
            "{naming:?} {source}"
        );
        assert_eq!(check_naming(&naming), Ok(()));
    }

    let long = format!("a/{}", "b".repeat(NAME_MAX));
    let fail = [
        (
            naming("web", Some("library"), None, true),
            "quay/nginx",
            Field::Naming,
            "the source repository \"quay/nginx\" does not start with the strip prefix \"library\"",
        ),
        (
            naming("web", Some("lib"), None, true),
            "library/nginx",
            Field::Naming,
            "does not start with the strip prefix \"lib\"",
        ),
        (
            naming("web", Some("library/nginx"), None, true),
            "library/nginx",
            Field::Naming,
            "leaves nothing",
        ),
        (
            naming("Web", None, None, false),
            "library/nginx",
            Field::Naming,
            "the project \"Web\" has uppercase letters",
        ),
        (
            naming("", None, None, false),
            "library/nginx",
            Field::Naming,
            "the project is empty",
        ),
        (
            naming("web/x", None, None, false),
            "library/nginx",
            Field::Naming,
            "one path component",
        ),
        (
            naming("web", None, Some("a//b"), true),
            "library/nginx",
            Field::Naming,
            "path component 2 of the add prefix \"a//b\" is empty",
        ),
        (
            naming("web", Some(""), None, true),
            "library/nginx",
            Field::Naming,
            "the strip prefix is empty",
        ),
        (
            naming("web", None, None, true),
            &long,
            Field::Naming,
            "characters long",
        ),
        (
            naming("web", None, None, false),
            "Library/nginx",
            Field::Repositories,
            "of the source repository \"Library/nginx\" has uppercase letters",
        ),
    ];
    for (naming, source, field, fragment) in fail {
        let err = target_repository(&naming, source).expect_err(source);
        assert_eq!(err.field, field, "{naming:?} {source}: {err}");
        assert!(
            err.message.contains(fragment),
            "{source}: {:?} lacks {fragment:?}",
            err.message
        );
    }
}

#[test]
fn errors_display_the_field() {
    let err = Selection::new(&sel().newest(0).0).unwrap_err();
    assert!(err.to_string().starts_with("tags: newest is 0"), "{err}");
}
