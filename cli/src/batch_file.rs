//! The input of `hoist batch`: plain text, one `SRC [DST]` a line, or YAML in the spirit
//! of `skopeo sync`:
//!
//! ```yaml
//! registry.example:          # the source registry
//!   images:
//!     team/app: [v1, v2]     # tags (or digests) to copy
//!     team/tool: []          # every tag
//!   credentials: {username: bob, password: secret}
//!   tls-verify: false        # plain HTTP
//! ```
//!
//! Every entry stands alone: a bad one is reported (with its line, for text) and the
//! others still run. Only a YAML file that does not parse at all stops the batch.

use crate::creds::Creds;
use crate::failure::Failure;
use hoist_plugin::reference::Reference;
use serde_norway::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// YAML when the file is named *.yaml or *.yml or its first entry is a `key:`.
    Auto,
    Text,
    Yaml,
}

/// One image to copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Where it came from, for messages: `line 3`, or `registry.example/team/app`.
    pub origin: String,
    /// The text file's line number.
    pub line: Option<usize>,
    pub source: String,
    /// None: derived from `--dest`.
    pub destination: Option<String>,
    /// Reach the source over plain HTTP (YAML `tls-verify: false`).
    pub plain_http: bool,
    /// The source's credentials (YAML `credentials`).
    pub creds: Option<Creds>,
    /// The source names a repository whose every tag is to be copied.
    pub all_tags: bool,
}

/// An entry, or why it cannot be one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    Entry(Entry),
    Bad {
        origin: String,
        line: Option<usize>,
        message: String,
    },
}

/// Reads the batch file's text.
pub fn parse(name: &str, text: &str, format: Format) -> Result<Vec<Item>, Failure> {
    let yaml = match format {
        Format::Text => false,
        Format::Yaml => true,
        Format::Auto => {
            name.ends_with(".yaml")
                || name.ends_with(".yml")
                // A reference never ends with ':', a YAML mapping key does.
                || significant_lines(text).next().is_some_and(|(_, l)| l.ends_with(':'))
        }
    };
    if yaml {
        parse_yaml(name, text)
    } else {
        Ok(parse_text(text))
    }
}

/// Lines without comments or blanks, with their numbers (from 1).
fn significant_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().filter_map(|(i, line)| {
        // `#` starts a comment at the start of a line or after a space; references
        // hold no `#`.
        let line = match line.find('#') {
            Some(0) => "",
            Some(at) if line[..at].ends_with(char::is_whitespace) => &line[..at],
            _ => line,
        };
        let line = line.trim();
        (!line.is_empty()).then_some((i + 1, line))
    })
}

fn parse_text(text: &str) -> Vec<Item> {
    significant_lines(text)
        .map(|(n, line)| {
            let origin = format!("line {n}");
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                [src] | [src, _] => Item::Entry(Entry {
                    origin,
                    line: Some(n),
                    source: (*src).into(),
                    destination: fields.get(1).map(|d| (*d).to_owned()),
                    plain_http: false,
                    creds: None,
                    all_tags: false,
                }),
                _ => Item::Bad {
                    origin,
                    line: Some(n),
                    message: format!(
                        "expected SRC [DST], found {} fields: {line:?}",
                        fields.len()
                    ),
                },
            }
        })
        .collect()
}

fn parse_yaml(name: &str, text: &str) -> Result<Vec<Item>, Failure> {
    let doc: Value = serde_norway::from_str(text).map_err(|e| {
        Failure::usage(
            format!("{name} is not valid YAML: {e}"),
            "see `hoist batch --help` for the format",
        )
    })?;
    let Value::Mapping(registries) = doc else {
        return Err(Failure::usage(
            format!("{name}: expected a mapping of registries at the top"),
            "see `hoist batch --help` for the format",
        ));
    };
    let mut items = Vec::new();
    for (registry, config) in &registries {
        let Some(registry) = registry.as_str() else {
            items.push(bad(
                format!("{registry:?}"),
                "a registry name must be a string",
            ));
            continue;
        };
        let Value::Mapping(config) = config else {
            items.push(bad(
                registry.into(),
                "expected images, credentials or tls-verify",
            ));
            continue;
        };
        let mut creds = None;
        let mut plain_http = false;
        let mut images = None;
        let mut fine = true;
        for (key, value) in config {
            match (key.as_str(), value) {
                (Some("images"), Value::Mapping(m)) => images = Some(m),
                (Some("tls-verify"), Value::Bool(b)) => plain_http = !b,
                (Some("credentials"), Value::Mapping(m)) => {
                    let field = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_owned);
                    match (field("username"), field("password")) {
                        (Some(username), Some(password)) => {
                            creds = Some(Creds { username, password })
                        }
                        _ => {
                            items.push(bad(
                                registry.into(),
                                "credentials need a username and a password",
                            ));
                            fine = false;
                        }
                    }
                }
                (Some(other), _) => {
                    let why = match other {
                        "images-by-tag-regex" | "images-by-semver" => {
                            format!("{other} is not supported; list the tags under images")
                        }
                        "cert-dir" => "cert-dir is not supported: a WASI component uses the \
                                       host's trusted certificates"
                            .into(),
                        _ => format!("{other:?} is not a key Hoist knows, or has the wrong type"),
                    };
                    items.push(bad(registry.into(), &why));
                    fine = false;
                }
                (None, _) => {
                    items.push(bad(registry.into(), "keys must be strings"));
                    fine = false;
                }
            }
        }
        if !fine {
            continue;
        }
        let Some(images) = images else {
            items.push(bad(registry.into(), "no images to copy"));
            continue;
        };
        for (repo, refs) in images {
            let Some(repo) = repo.as_str() else {
                items.push(bad(registry.into(), "an image name must be a string"));
                continue;
            };
            let base = format!("{registry}/{repo}");
            let entry = |source: String, all_tags| {
                Item::Entry(Entry {
                    origin: source.clone(),
                    line: None,
                    source,
                    destination: None,
                    plain_http,
                    creds: creds.clone(),
                    all_tags,
                })
            };
            match refs {
                Value::Null => items.push(entry(base, true)),
                Value::Sequence(list) if list.is_empty() => items.push(entry(base, true)),
                Value::Sequence(list) => {
                    for r in list {
                        // YAML reads `1.0` as a number; the user meant the tag.
                        let r = match r {
                            Value::String(s) => s.clone(),
                            Value::Number(n) => n.to_string(),
                            _ => {
                                items.push(bad(base.clone(), "a tag must be a string"));
                                continue;
                            }
                        };
                        let sep = if r.contains(':') { '@' } else { ':' };
                        items.push(entry(format!("{base}{sep}{r}"), false));
                    }
                }
                _ => items.push(bad(base, "expected a list of tags or digests")),
            }
        }
    }
    Ok(items)
}

fn bad(origin: String, message: &str) -> Item {
    Item::Bad {
        origin,
        line: None,
        message: message.into(),
    }
}

/// The destination of `source` under `prefix` (`registry/namespace`): its last path
/// component and its tag (or digest), as `skopeo sync` names copies.
pub fn destination_under(prefix: &str, source: &Reference) -> String {
    let name = source
        .repository()
        .rsplit('/')
        .next()
        .unwrap_or(source.repository());
    let prefix = prefix.trim_end_matches('/');
    match (source.tag(), source.digest()) {
        (Some(tag), _) => format!("{prefix}/{name}:{tag}"),
        (None, Some(digest)) => format!("{prefix}/{name}@{digest}"),
        (None, None) => format!("{prefix}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(items: &[Item]) -> Vec<&Entry> {
        items
            .iter()
            .filter_map(|i| match i {
                Item::Entry(e) => Some(e),
                Item::Bad { .. } => None,
            })
            .collect()
    }

    #[test]
    fn text_lines_with_comments_blanks_and_a_bad_line() {
        let text = "# images\n\nnginx:1.27 r.example/p/nginx:1.27\n  busybox   # default dest\n\
                    a b c\n";
        let items = parse("list.txt", text, Format::Auto).unwrap();
        assert_eq!(items.len(), 3);
        let e = entries(&items);
        assert_eq!(e[0].line, Some(3));
        assert_eq!(e[0].destination.as_deref(), Some("r.example/p/nginx:1.27"));
        assert_eq!((e[1].line, e[1].source.as_str()), (Some(4), "busybox"));
        assert_eq!(e[1].destination, None);
        assert!(
            matches!(&items[2], Item::Bad { line: Some(5), message, .. } if message.contains("3 fields"))
        );
    }

    #[test]
    fn yaml_in_the_spirit_of_skopeo_sync() {
        let text = "
registry.example:
  images:
    team/app: [v1, '2.0', 1.5, 'sha256:aaaa']
    team/tool: []
  credentials: {username: bob, password: s3cret}
  tls-verify: false
quay.io:
  images-by-tag-regex:
    x: '^v'
";
        let items = parse("sync", text, Format::Auto).unwrap();
        let e = entries(&items);
        let sources: Vec<&str> = e.iter().map(|e| e.source.as_str()).collect();
        assert_eq!(
            sources,
            [
                "registry.example/team/app:v1",
                "registry.example/team/app:2.0",
                "registry.example/team/app:1.5",
                "registry.example/team/app@sha256:aaaa",
                "registry.example/team/tool",
            ]
        );
        assert!(e[4].all_tags && !e[0].all_tags);
        assert!(e.iter().all(|e| e.plain_http));
        assert_eq!(e[0].creds.as_ref().unwrap().username, "bob");
        assert!(
            matches!(items.last().unwrap(), Item::Bad { origin, message, .. }
                if origin == "quay.io" && message.contains("images-by-tag-regex")),
            "{items:?}"
        );
    }

    #[test]
    fn broken_yaml_stops_the_batch_as_a_usage_error() {
        let e = parse("x.yaml", "a: [b", Format::Auto).unwrap_err();
        assert_eq!(e.code, "usage");
        let e = parse("x.yaml", "- a\n- b\n", Format::Auto).unwrap_err();
        assert!(e.message.contains("mapping"), "{e}");
    }

    #[test]
    fn destinations_under_a_prefix_keep_the_last_component_and_tag() {
        let r = Reference::parse("ghcr.io/owner/team/app:v1").unwrap();
        assert_eq!(destination_under("r.example/p/", &r), "r.example/p/app:v1");
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("nginx@{d}")).unwrap();
        assert_eq!(
            destination_under("r.example/p", &r),
            format!("r.example/p/nginx@{d}")
        );
    }
}
