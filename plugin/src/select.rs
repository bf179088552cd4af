//! Which tags of a repository a sync rule keeps, and where a synced repository lands: the
//! pure part of scheduled sync, with no network, so the plan can check a rule before its
//! first request and tests can run it natively.
//!
//! The types mirror the `tag-selection`, `pattern` and `naming` records of the WIT contract;
//! the component glue converts between them one field for one field.
//!
//! A selection applies, in order: `include` (a tag must match one pattern; none keeps every
//! tag), `exclude` (a match drops it), the semver range, then `newest` N. Every dropped tag
//! gets a reason a person can read. Digests are added to what the tags pick.

#[cfg(test)]
mod tests;

use std::fmt;

use regex_lite::Regex;
use semver::{BuildMetadata, Prerelease, Version};

use crate::reference::{NAME_MAX, check_digest, check_path_component};

// ---- the contract's records ----

/// How a pattern is read (WIT `pattern-kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatternKind {
    /// Shell style, anchored at both ends: `*` any run of characters but `/`, `**` any run
    /// including `/`, `?` one character but `/`, `[abc]`, `[a-z]`, `[!x]` (or `[^x]`) one
    /// character of a class (never `/`). There are no escapes: no tag or repository name
    /// contains `*`, `?`, `[` or `\`.
    Glob,
    /// A regular expression in Rust's regex syntax without Unicode classes (as
    /// `regex-lite` reads it: `\d`, `\w` and `(?i)` are ASCII), anchored at both ends.
    Regex,
}

impl fmt::Display for PatternKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PatternKind::Glob => "glob",
            PatternKind::Regex => "regex",
        })
    }
}

/// A tag pattern (WIT `pattern`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    pub kind: PatternKind,
    pub value: String,
}

impl Pattern {
    pub fn glob(value: impl Into<String>) -> Self {
        Self {
            kind: PatternKind::Glob,
            value: value.into(),
        }
    }

    pub fn regex(value: impl Into<String>) -> Self {
        Self {
            kind: PatternKind::Regex,
            value: value.into(),
        }
    }
}

/// Which tags a sync rule keeps (WIT `tag-selection`). The default keeps every tag.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TagSelection {
    /// A tag must match one of these; empty keeps every tag.
    pub include: Vec<Pattern>,
    /// A tag matching any of these is dropped.
    pub exclude: Vec<Pattern>,
    /// A semver range (`>=1.25 <2`, `^1.2`, `~1.27`, `1.27.*`, `^1 || ^2`). When given,
    /// tags that are not versions are dropped.
    pub semver: Option<String>,
    /// Let pre-releases match the range. Off, they never do. Without a range there is no
    /// version filter, and this has no effect.
    pub prereleases: bool,
    /// Keep only the newest N of what the other filters keep.
    pub newest: Option<u32>,
    /// Manifests to copy by digest whatever the tags say.
    pub digests: Vec<String>,
}

/// Where a synced repository lands (WIT `naming`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Naming {
    /// The target project: the first path component of every target repository.
    pub project: String,
    /// None: `<project>/<last path component>`. Some: the whole source path, less
    /// `strip_prefix`, under `<project>/<add_prefix>/`.
    pub path: Option<PathNaming>,
}

/// WIT `path-naming`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PathNaming {
    /// Whole path components removed from the front of the source repository (`library`).
    pub strip_prefix: Option<String>,
    /// Path components put in front, inside the project (`mirror/hub`).
    pub add_prefix: Option<String>,
}

/// Which part of a sync rule an error is about. These are the cases of the WIT
/// `request-field` enum this module reports; the glue maps each to the case of that name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// `sync-request.repositories` (a repository name or glob, or a listed repository).
    Repositories,
    /// `sync-request.tags`: patterns, the semver range, `newest`, digests.
    Tags,
    /// `sync-request.naming`: the project and the prefixes.
    Naming,
}

impl Field {
    /// The field's name in the WIT contract.
    pub fn wit_name(self) -> &'static str {
        match self {
            Field::Repositories => "repositories",
            Field::Tags => "tags",
            Field::Naming => "naming",
        }
    }
}

/// An invalid rule: the field at fault, and what is wrong with it and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectError {
    pub field: Field,
    pub message: String,
}

impl SelectError {
    fn new(field: Field, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

impl fmt::Display for SelectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field.wit_name(), self.message)
    }
}

impl std::error::Error for SelectError {}

// ---- patterns ----

/// Whether a repository entry is a glob (lists the catalog) rather than an exact name.
pub fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Translates a glob into an anchored regex. Globs are compiled by the regex crate (already
/// needed for regex patterns) rather than matched by hand: that keeps matching linear
/// whatever the pattern (`*a*a*a*b` backtracks exponentially in a naive matcher). The
/// error is a predicate that follows the glob's name.
fn glob_to_regex(glob: &str) -> Result<String, String> {
    let chars: Vec<char> = glob.chars().collect();
    let mut out = String::from("^");
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' if chars.get(i + 1) == Some(&'*') => {
                out.push_str("(?s:.*)");
                while chars.get(i) == Some(&'*') {
                    i += 1;
                }
            }
            '*' => {
                out.push_str("[^/]*");
                i += 1;
            }
            '?' => {
                out.push_str("[^/]");
                i += 1;
            }
            '[' => i = glob_class(&chars, i, &mut out)?,
            c => {
                out.push_str(&regex_lite::escape(c.encode_utf8(&mut [0; 4])));
                i += 1;
            }
        }
    }
    out.push('$');
    Ok(out)
}

/// Translates the class that opens at `chars[start]`, returning the index after it. As in
/// POSIX, a `]` right after the `[` (or `[!`) is a member, not the end.
fn glob_class(chars: &[char], start: usize, out: &mut String) -> Result<usize, String> {
    let mut i = start + 1;
    let negated = matches!(chars.get(i), Some('!' | '^'));
    if negated {
        i += 1;
    }
    let first = i;
    // Every member as `\x{…}`: valid in a regex class whatever the character, so a glob
    // cannot smuggle in the regex's own class syntax (`&&`, `--`, nested `[`). A class
    // never matches '/', like `*` and `?`: a glob's classes stay inside one path
    // component. So '/' is left out of a positive class (a range across it is split in
    // two) and added to a negated one.
    let mut members = String::new();
    let mut push_range = |lo: char, hi: char| {
        let pieces = if lo <= '/' && '/' <= hi {
            vec![(lo, '.'), ('0', hi)]
        } else {
            vec![(lo, hi)]
        };
        for (lo, hi) in pieces.into_iter().filter(|(lo, hi)| lo <= hi) {
            members.push_str(&format!("\\x{{{:X}}}", lo as u32));
            if hi != lo {
                members.push_str(&format!("-\\x{{{:X}}}", hi as u32));
            }
        }
    };
    loop {
        let Some(&c) = chars.get(i) else {
            return Err(format!(
                "opens a class with '[' at character {} but never closes it; add the ']' \
                 (or use '?' for any one character)",
                start + 1
            ));
        };
        if c == ']' && i > first {
            i += 1;
            break;
        }
        if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|&hi| hi != ']') {
            let hi = chars[i + 2];
            if hi < c {
                return Err(format!(
                    "has the range {c}-{hi}, which runs backwards; write {hi}-{c}"
                ));
            }
            push_range(c, hi);
            i += 3;
        } else {
            push_range(c, c);
            i += 1;
        }
    }
    if negated {
        out.push_str(&format!("[^/{members}]"));
    } else if members.is_empty() {
        return Err(format!(
            "has the class at character {} that holds only '/', which no class matches \
             (a class stays inside one path component)",
            start + 1
        ));
    } else {
        out.push_str(&format!("[{members}]"));
    }
    Ok(i)
}

/// Compiles a user's regex anchored at both ends.
fn anchored_regex(value: &str) -> Result<Regex, regex_lite::Error> {
    // Alone first: the error then points into what the user wrote, and a regex that compiles
    // alone has balanced parentheses, so `a)|(b` cannot escape the anchors below.
    Regex::new(value)?;
    Regex::new(&format!("^(?:{value})$"))
        // In `(?x)` mode a trailing `# comment` swallows the closing `)$`; a newline ends
        // the comment. (Only tried then: outside `(?x)` a newline would be a literal.)
        .or_else(|_| Regex::new(&format!("^(?:{value}\n)$")))
}

/// The last line of a regex error (`unclosed character class`), without the multi-line
/// picture the crate draws above it.
fn regex_error(error: &regex_lite::Error) -> String {
    let text = error.to_string();
    let last = text.lines().last().unwrap_or(&text);
    last.strip_prefix("error: ").unwrap_or(last).to_owned()
}

/// A pattern in double quotes for a message, as written: `{:?}` would double a regex's
/// backslashes (`"\\d+"`), which a person would then copy back wrongly.
fn quoted(pattern: &str) -> String {
    format!("\"{pattern}\"")
}

/// A compiled include or exclude pattern.
#[derive(Clone, Debug)]
struct Matcher {
    pattern: Pattern,
    regex: Regex,
}

impl Matcher {
    /// `list` is `include` or `exclude` and `index` counts from 0, for the message.
    fn new(pattern: &Pattern, list: &str, index: usize) -> Result<Self, SelectError> {
        let fail = |why: String| SelectError::new(Field::Tags, why);
        let (kind, value) = (pattern.kind, &pattern.value);
        let shown = quoted(value);
        let n = index + 1;
        if value.is_empty() {
            return Err(fail(format!(
                "{list} pattern {n} is empty, and an empty pattern matches no tag; remove it \
                 (the glob \"*\" matches every tag)"
            )));
        }
        let regex = match kind {
            PatternKind::Glob => {
                let translated = glob_to_regex(value)
                    .map_err(|why| fail(format!("the {list} glob {shown} (pattern {n}) {why}")))?;
                Regex::new(&translated).map_err(|e| {
                    fail(format!(
                        "the {list} glob {shown} (pattern {n}) is too complex: {}",
                        regex_error(&e)
                    ))
                })?
            }
            PatternKind::Regex => anchored_regex(value).map_err(|e| {
                fail(format!(
                    "the {list} regex {shown} (pattern {n}) does not compile: {}; fix it \
                     (Rust regex syntax, ASCII classes) or use a glob",
                    regex_error(&e)
                ))
            })?,
        };
        Ok(Self {
            pattern: pattern.clone(),
            regex,
        })
    }

    fn matches(&self, tag: &str) -> bool {
        self.regex.is_match(tag)
    }
}

/// One entry of a sync rule's `repositories`: an exact name, or a glob matched against the
/// catalog with the same glob rules as tags (`library/*` matches `library/nginx` but not
/// `library/a/b`; `prometheus/**` matches any depth below `prometheus/`).
#[derive(Clone, Debug)]
pub struct RepositoryPattern {
    text: String,
    /// None for an exact name.
    regex: Option<Regex>,
}

impl RepositoryPattern {
    /// Checks an entry: a glob's syntax, or an exact name's path components.
    pub fn new(text: &str) -> Result<Self, SelectError> {
        let fail = |why: String| SelectError::new(Field::Repositories, why);
        if text.is_empty() {
            return Err(fail(
                "a repository entry is empty; name a repository (library/nginx) or a glob \
                 (library/*)"
                    .into(),
            ));
        }
        let regex = if is_glob(text) {
            let translated = glob_to_regex(text)
                .map_err(|why| fail(format!("the repository glob {text:?} {why}")))?;
            let regex = Regex::new(&translated).map_err(|e| {
                fail(format!(
                    "the repository glob {text:?} is too complex: {}",
                    regex_error(&e)
                ))
            })?;
            Some(regex)
        } else {
            check_path(text, "the repository", Field::Repositories)?;
            None
        };
        Ok(Self {
            text: text.to_owned(),
            regex,
        })
    }

    /// Whether the entry is a glob, which needs the registry's catalog.
    pub fn is_glob(&self) -> bool {
        self.regex.is_some()
    }

    /// Whether the repository `name` is selected by this entry.
    pub fn matches(&self, name: &str) -> bool {
        match &self.regex {
            Some(regex) => regex.is_match(name),
            None => self.text == name,
        }
    }

    /// The entry as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

// ---- versions ----

/// Reads a tag as a version: an optional leading `v`, one to three dot-separated numbers
/// (missing ones read as 0: `1.2` is `1.2.0`, `1` is `1.0.0`), then an optional
/// `-pre-release` of semver's identifiers. Anything else (`latest`, `1.2.3.4`,
/// `1.2.3-alpine_3`) is not a version.
///
/// `1.2.3-alpine` is a version with the pre-release `alpine`, as semver reads it (and
/// `1.2-alpine` is `1.2.0-alpine`): so a range keeps variant tags out unless pre-releases
/// are allowed, and `^1.2` never mixes `1.3.0-alpine` in with `1.3.0`. To mirror a variant,
/// include it by glob (`*-alpine`) and allow pre-releases.
///
/// Leading zeros in the numbers are accepted (`22.04` is `22.4.0`), unlike strict semver:
/// calendar versions like Ubuntu's are common tags.
fn tag_version(tag: &str) -> Option<Version> {
    let text = tag.strip_prefix('v').unwrap_or(tag);
    let (core, pre) = match text.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (text, None),
    };
    let mut numbers = [0u64; 3];
    for (index, part) in core.split('.').enumerate() {
        if index == 3 || part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        numbers[index] = part.parse().ok()?;
    }
    let pre = match pre {
        Some("") => return None,
        Some(pre) => Prerelease::new(pre).ok()?,
        None => Prerelease::EMPTY,
    };
    let [major, minor, patch] = numbers;
    Some(Version {
        major,
        minor,
        patch,
        pre,
        build: BuildMetadata::EMPTY,
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

/// One bound of a range, after `^`, `~`, wildcards and partial versions are desugared.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Comparator {
    op: Op,
    version: Version,
}

impl Comparator {
    fn matches(&self, v: &Version) -> bool {
        match self.op {
            Op::Eq => *v == self.version,
            Op::Lt => *v < self.version,
            Op::Le => *v <= self.version,
            Op::Gt => *v > self.version,
            Op::Ge => *v >= self.version,
        }
    }
}

/// A range as admins write it, npm style: comparators separated by spaces or commas must
/// all hold; `||` separates alternatives of which one must. Written by hand because the
/// `semver` crate's `VersionReq` has Cargo's meaning (a bare `1.2.3` is `^1.2.3`, commas
/// are required, there is no `||`).
#[derive(Clone, Debug)]
struct Range {
    /// Each alternative's comparators; an empty one is `*`.
    alternatives: Vec<Vec<Comparator>>,
}

impl Range {
    /// Whether `v` satisfies every comparator of one alternative, under plain semver
    /// ordering. Whether a pre-release may match at all is the caller's decision.
    fn contains(&self, v: &Version) -> bool {
        self.alternatives
            .iter()
            .any(|alternative| alternative.iter().all(|c| c.matches(v)))
    }

    fn parse(text: &str) -> Result<Self, String> {
        const HINT: &str = "write comparators such as >=1.25, <2, ^1.2, ~1.27, 1.27.* or \
                            =1.2.3, separated by spaces (all must hold) or || (one must)";
        if text.trim().is_empty() {
            return Err(
                "the semver range is empty; leave it out to keep tags whatever their \
                        version, or write * for every version"
                    .into(),
            );
        }
        let mut alternatives = Vec::new();
        for alternative in text.split("||") {
            if alternative.trim().is_empty() {
                return Err(format!(
                    "the semver range {text:?} has an empty alternative around ||; {HINT}"
                ));
            }
            let mut comparators = Vec::new();
            let mut rest = alternative;
            loop {
                rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ',');
                if rest.is_empty() {
                    break;
                }
                let op_len = rest
                    .find(|c| !matches!(c, '<' | '>' | '=' | '^' | '~'))
                    .unwrap_or(rest.len());
                let (op, after) = rest.split_at(op_len);
                // `>= 1.25` is read as `>=1.25`.
                let after = after.trim_start();
                let end = after
                    .find(|c: char| c.is_whitespace() || c == ',')
                    .unwrap_or(after.len());
                let (version, tail) = after.split_at(end);
                let written = rest[..rest.len() - tail.len()].trim_end();
                rest = tail;
                let bad = |why: String| {
                    format!(
                        "the semver range {text:?} does not parse: the comparator {written:?} \
                         {why}; {HINT}"
                    )
                };
                if version == "-" {
                    return Err(bad(
                        "makes a hyphen range (1.2 - 1.4), which is not supported; \
                                    write >=1.2 <=1.4 instead"
                            .into(),
                    ));
                }
                if version.is_empty() {
                    return Err(bad("has no version after its operator".into()));
                }
                let partial = Partial::parse(version).map_err(bad)?;
                comparators.extend(desugar(op, &partial).map_err(bad)?);
            }
            alternatives.push(comparators);
        }
        Ok(Self { alternatives })
    }
}

/// A version in a range, where trailing parts may be missing or wildcards (`1.2`, `1.x`,
/// `1.2.*`, `*`): None.
#[derive(Debug)]
struct Partial {
    major: Option<u64>,
    minor: Option<u64>,
    patch: Option<u64>,
    pre: Prerelease,
}

impl Partial {
    /// The error is a predicate that follows the comparator's name.
    fn parse(text: &str) -> Result<Self, String> {
        let text = text.strip_prefix('v').unwrap_or(text);
        let (core, pre) = match text.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (text, None),
        };
        let mut parts = [None; 3];
        let mut wildcard = false;
        for (index, part) in core.split('.').enumerate() {
            if index == 3 {
                return Err("has more than three numbers".into());
            }
            if matches!(part, "x" | "X" | "*") {
                wildcard = true;
                continue;
            }
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("has {part:?} where a number, x or * belongs"));
            }
            if wildcard {
                return Err("has a number after a wildcard (write 1.x, not 1.x.3)".into());
            }
            parts[index] = Some(
                part.parse()
                    .map_err(|_| format!("has the number {part}, which is too large"))?,
            );
        }
        let [major, minor, patch] = parts;
        let pre = match pre {
            None => Prerelease::EMPTY,
            Some(_) if patch.is_none() => {
                return Err(
                    "has a pre-release on a partial version; a pre-release needs all three \
                     numbers (1.4.0-rc.1)"
                        .into(),
                );
            }
            Some(pre) => Prerelease::new(pre)
                .ok()
                .filter(|pre| !pre.is_empty())
                .ok_or_else(|| format!("has an invalid pre-release {pre:?}"))?,
        };
        Ok(Self {
            major,
            minor,
            patch,
            pre,
        })
    }

    /// The lowest version the partial names: missing parts are 0.
    fn floor(&self) -> Version {
        Version {
            major: self.major.unwrap_or(0),
            minor: self.minor.unwrap_or(0),
            patch: self.patch.unwrap_or(0),
            pre: self.pre.clone(),
            build: BuildMetadata::EMPTY,
        }
    }

    /// The first version past everything the partial names (`1` → 2.0.0, `1.2` → 1.3.0),
    /// None for a full version or `*`.
    fn next(&self) -> Option<(u64, u64, u64)> {
        match (self.major, self.minor, self.patch) {
            (Some(major), None, _) => Some((major.saturating_add(1), 0, 0)),
            (Some(major), Some(minor), None) => Some((major, minor.saturating_add(1), 0)),
            _ => None,
        }
    }
}

/// `major.minor.patch-0`, the lowest version with that number: an exclusive upper bound
/// written this way keeps that number's pre-releases out too (`<2` must not admit
/// `2.0.0-rc.1`), as npm does.
fn before(major: u64, minor: u64, patch: u64) -> Version {
    Version {
        major,
        minor,
        patch,
        pre: Prerelease::new("0").expect("0 is a valid pre-release"),
        build: BuildMetadata::EMPTY,
    }
}

/// Turns one comparator as written into plain bounds, with npm's meanings.
fn desugar(op: &str, p: &Partial) -> Result<Vec<Comparator>, String> {
    use Op::*;
    let c = |op, version| Comparator { op, version };
    let Some(major) = p.major else {
        // `*`, `x`: any version, whatever the operator, but the two that exclude them all.
        return match op {
            ">" | "<" => Err("matches no version".into()),
            "" | "=" | ">=" | "<=" | "^" | "~" => Ok(Vec::new()),
            _ => Err(format!("has the unknown operator {op:?}")),
        };
    };
    let floor = p.floor();
    let to_next = || {
        let (ma, mi, pa) = p.next().expect("a partial version");
        c(Lt, before(ma, mi, pa))
    };
    Ok(match op {
        // A bare version is exact (npm), not Cargo's `^`; a partial one is every version it
        // names.
        "" | "=" if p.patch.is_some() => vec![c(Eq, floor)],
        "" | "=" => vec![c(Ge, floor), to_next()],
        ">=" => vec![c(Ge, floor)],
        ">" if p.patch.is_some() => vec![c(Gt, floor)],
        ">" => {
            let (ma, mi, pa) = p.next().expect("a partial version");
            vec![c(Ge, Version::new(ma, mi, pa))]
        }
        "<" if p.patch.is_some() => vec![c(Lt, floor)],
        "<" => {
            let Version {
                major,
                minor,
                patch,
                ..
            } = floor;
            vec![c(Lt, before(major, minor, patch))]
        }
        "<=" if p.patch.is_some() => vec![c(Le, floor)],
        "<=" => vec![to_next()],
        // ~1 is 1.x; ~1.2 and ~1.2.3 stay below 1.3.
        "~" => {
            let minor = p.minor.unwrap_or(0);
            let upper = match p.minor {
                None => before(major.saturating_add(1), 0, 0),
                Some(_) => before(major, minor.saturating_add(1), 0),
            };
            vec![c(Ge, floor), c(Lt, upper)]
        }
        // ^ keeps the first non-zero number of what was written: ^1.2 < 2, ^0.2 < 0.3,
        // ^0.0.3 < 0.0.4, ^0.0 < 0.1, ^0 < 1.
        "^" => {
            let upper = match (major, p.minor, p.patch) {
                (_, None, _) => before(major.saturating_add(1), 0, 0),
                (0, Some(minor), None) => before(0, minor.saturating_add(1), 0),
                (0, Some(0), Some(patch)) => before(0, 0, patch.saturating_add(1)),
                (0, Some(minor), Some(_)) => before(0, minor.saturating_add(1), 0),
                _ => before(major.saturating_add(1), 0, 0),
            };
            vec![c(Ge, floor), c(Lt, upper)]
        }
        _ => return Err(format!("has the unknown operator {op:?}")),
    })
}

// ---- selection ----

/// A tag selection, checked and compiled once, applied to each repository's tag list.
#[derive(Clone, Debug)]
pub struct Selection {
    include: Vec<Matcher>,
    exclude: Vec<Matcher>,
    /// The range as written (for reasons) and parsed.
    range: Option<(String, Range)>,
    prereleases: bool,
    newest: Option<usize>,
    digests: Vec<String>,
}

/// What a selection decided for one tag list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decisions {
    /// Every input tag, in input order, with what became of it.
    pub tags: Vec<TagDecision>,
    /// The tags kept, in the order a run copies them: oldest first, the newest last.
    pub kept: Vec<String>,
    /// The selection's digests, to copy whatever the tags say: in the order given, without
    /// repeats.
    pub digests: Vec<String>,
}

/// One input tag and, when it was dropped, why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagDecision {
    pub tag: String,
    /// None when the tag is kept; else the reason, for a person: `excluded by glob "*-rc*"`.
    pub dropped: Option<String>,
}

impl Decisions {
    /// Why `tag` was dropped; None when it was kept or was not in the input.
    pub fn reason(&self, tag: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|d| d.tag == tag)
            .and_then(|d| d.dropped.as_deref())
    }
}

impl Selection {
    /// Checks and compiles `spec`. Every fault is reported here, before any tag is seen,
    /// with the field at fault.
    pub fn new(spec: &TagSelection) -> Result<Self, SelectError> {
        let compile = |patterns: &[Pattern], list| {
            patterns
                .iter()
                .enumerate()
                .map(|(index, pattern)| Matcher::new(pattern, list, index))
                .collect::<Result<Vec<_>, _>>()
        };
        let include = compile(&spec.include, "include")?;
        let exclude = compile(&spec.exclude, "exclude")?;
        let range = match &spec.semver {
            Some(text) => Some((
                text.clone(),
                Range::parse(text).map_err(|why| SelectError::new(Field::Tags, why))?,
            )),
            None => None,
        };
        let newest = match spec.newest {
            Some(0) => {
                return Err(SelectError::new(
                    Field::Tags,
                    "newest is 0, which keeps no tag; give 1 or more, or leave it out to keep \
                     every selected tag",
                ));
            }
            Some(n) => Some(usize::try_from(n).unwrap_or(usize::MAX)),
            None => None,
        };
        let mut digests: Vec<String> = Vec::new();
        for (index, digest) in spec.digests.iter().enumerate() {
            check_digest(digest).map_err(|why| {
                SelectError::new(
                    Field::Tags,
                    format!("digest {} ({digest:?}) is malformed: {why}", index + 1),
                )
            })?;
            if !digests.contains(digest) {
                digests.push(digest.clone());
            }
        }
        Ok(Self {
            include,
            exclude,
            range,
            prereleases: spec.prereleases,
            newest,
            digests,
        })
    }

    /// Applies the selection to `tags`, in the order the registry listed them.
    ///
    /// The kept tags come out oldest first. "Oldest" is judged as `newest` judges it: by
    /// version when every kept tag is a version, else by the registry's order (the last
    /// listed is the newest); ties between equal versions (`1.2`, `1.2.0`) keep the
    /// registry's order. The same order applies with no `newest`, so a run always copies
    /// the newest tag last.
    pub fn decide(&self, tags: &[String]) -> Decisions {
        let versions: Vec<Option<Version>> = tags.iter().map(|t| tag_version(t)).collect();
        let mut dropped: Vec<Option<String>> = tags
            .iter()
            .zip(&versions)
            .map(|(tag, version)| self.filter(tag, version.as_ref()))
            .collect();

        let mut remaining: Vec<usize> = (0..tags.len()).filter(|&i| dropped[i].is_none()).collect();
        if remaining.iter().all(|&i| versions[i].is_some()) {
            // Stable: equal versions keep the registry's order.
            remaining.sort_by(|&a, &b| versions[a].cmp(&versions[b]));
        }
        if let Some(n) = self.newest
            && remaining.len() > n
        {
            let older = remaining.len() - n;
            for &i in &remaining[..older] {
                dropped[i] = Some(format!("older than the newest {n}"));
            }
            remaining.drain(..older);
        }

        Decisions {
            kept: remaining.iter().map(|&i| tags[i].clone()).collect(),
            tags: tags
                .iter()
                .zip(dropped)
                .map(|(tag, dropped)| TagDecision {
                    tag: tag.clone(),
                    dropped,
                })
                .collect(),
            digests: self.digests.clone(),
        }
    }

    /// The filters before `newest`: None when `tag` passes them, else why it does not.
    fn filter(&self, tag: &str, version: Option<&Version>) -> Option<String> {
        if !self.include.is_empty() && !self.include.iter().any(|m| m.matches(tag)) {
            return Some("not matched by any include pattern".into());
        }
        if let Some(m) = self.exclude.iter().find(|m| m.matches(tag)) {
            return Some(format!(
                "excluded by {} {}",
                m.pattern.kind,
                quoted(&m.pattern.value)
            ));
        }
        let (text, range) = self.range.as_ref()?;
        let Some(version) = version else {
            return Some("not a version".into());
        };
        // The range first, so that the pre-release hint is only given when following it
        // would keep the tag.
        if !range.contains(version) {
            return Some(format!("outside the range {text:?}"));
        }
        if !version.pre.is_empty() && !self.prereleases {
            return Some("a pre-release (allow pre-releases to include it)".into());
        }
        None
    }
}

/// The WIT `select-tags`: the tags `spec` keeps of `tags`, in the order a run copies them.
/// Digests are not tags and are not in the list; `Decisions::digests` has them.
pub fn select_tags(spec: &TagSelection, tags: &[String]) -> Result<Vec<String>, SelectError> {
    Ok(Selection::new(spec)?.decide(tags).kept)
}

// ---- naming ----

/// Checks a repository path (`a/b/c`): each component as references require it. `what`
/// names it for the message (`the add prefix`).
fn check_path(path: &str, what: &str, field: Field) -> Result<(), SelectError> {
    if path.is_empty() {
        return Err(SelectError::new(
            field,
            format!("{what} is empty; leave it out, or name at least one path component"),
        ));
    }
    for (index, component) in path.split('/').enumerate() {
        check_path_component(component).map_err(|why| {
            let n = index + 1;
            SelectError::new(
                field,
                if component.is_empty() {
                    format!("path component {n} of {what} {path:?} is empty; remove the extra '/'")
                } else {
                    format!("path component {n} ({component:?}) of {what} {path:?} {why}")
                },
            )
        })?;
    }
    Ok(())
}

/// Checks a rule's naming before any repository is known: the project and the prefixes.
pub fn check_naming(naming: &Naming) -> Result<(), SelectError> {
    if naming.project.is_empty() {
        return Err(SelectError::new(
            Field::Naming,
            "the project is empty; name the target project",
        ));
    }
    check_path_component(&naming.project).map_err(|why| {
        SelectError::new(
            Field::Naming,
            format!(
                "the project {:?} {why}; a project is one path component",
                naming.project
            ),
        )
    })?;
    if let Some(path) = &naming.path {
        if let Some(strip) = &path.strip_prefix {
            check_path(strip, "the strip prefix", Field::Naming)?;
        }
        if let Some(add) = &path.add_prefix {
            check_path(add, "the add prefix", Field::Naming)?;
        }
    }
    Ok(())
}

/// The target repository (inside the target registry) of `source_repository` under
/// `naming`: `<project>/<last component>` by default, else
/// `<project>/<add_prefix>/<source less strip_prefix>`.
pub fn target_repository(naming: &Naming, source_repository: &str) -> Result<String, SelectError> {
    check_naming(naming)?;
    let source = source_repository;
    check_path(source, "the source repository", Field::Repositories)?;
    let image = match &naming.path {
        None => source.rsplit('/').next().unwrap_or(source).to_owned(),
        Some(path) => {
            let rest = match path.strip_prefix.as_deref() {
                None => source,
                // Whole components only: `lib` is no prefix of `library/nginx`.
                Some(strip) if strip == source => {
                    return Err(SelectError::new(
                        Field::Naming,
                        format!(
                            "stripping {strip:?} from the source repository {source:?} leaves \
                             nothing; strip fewer path components"
                        ),
                    ));
                }
                Some(strip) => match source
                    .strip_prefix(strip)
                    .and_then(|rest| rest.strip_prefix('/'))
                {
                    Some(rest) => rest,
                    None => {
                        return Err(SelectError::new(
                            Field::Naming,
                            format!(
                                "the source repository {source:?} does not start with the strip \
                                 prefix {strip:?} (whole path components); change the prefix, \
                                 or select only repositories under {strip:?}"
                            ),
                        ));
                    }
                },
            };
            match path.add_prefix.as_deref() {
                Some(add) => format!("{add}/{rest}"),
                None => rest.to_owned(),
            }
        }
    };
    let repository = format!("{}/{image}", naming.project);
    if repository.len() > NAME_MAX {
        return Err(SelectError::new(
            Field::Naming,
            format!(
                "the target repository {repository:?} (from {source:?}) is {} characters long; \
                 at most {NAME_MAX} are allowed, so strip more of the source path or shorten the \
                 prefix",
                repository.len()
            ),
        ));
    }
    Ok(repository)
}
