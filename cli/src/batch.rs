//! `hoist batch FILE`: many copies, one after another. Each entry stands alone: a bad or
//! failing one is reported with its line and the rest still run; a summary ends the run.

use crate::batch_file::{self, Entry, Format, Item};
use crate::copy::{CopyOptions, copy_one, fail};
use crate::creds::AuthFile;
use crate::failure::{self, Failure};
use crate::options::{Access, Output};
use crate::report::{Mode, Reporter, emit, size};
use hoist_plugin::reference::Reference;
use serde_json::{Value, json};
use std::io::Read;

#[derive(clap::Args, Clone, Debug)]
#[command(after_help = "Examples:\n  \
    hoist batch --dest 127.0.0.1:5000/proj --plain-http 127.0.0.1:5000 /work/images.txt\n  \
    hoist batch --dest registry.example/mirror - < images.txt\n  \
    wasmtime run -S http --dir .::/work hoist.wasm batch --dest r.example/p /work/sync.yaml\n\n\
    Text: one `SRC [DST]` a line; `#` starts a comment. Without DST the image goes to \
    --dest/<last path component>:<tag>.\n\
    YAML, in the spirit of `skopeo sync` (every entry goes under --dest):\n  \
    registry.example:\n    \
      images:\n      \
        team/app: [v1, v2]     # tags or digests\n      \
        team/tool: []          # every tag\n    \
      credentials: {username: bob, password: secret}\n    \
      tls-verify: false        # plain HTTP\n\n\
    stdout gets the digest reference of each image copied, one a line; stderr gets a line \
    per image and a summary. The exit code is 0 when every entry was copied, the class's \
    code when every failure is of one class, else 1.")]
pub struct Args {
    /// The batch file (inside a directory preopened with `wasmtime run --dir`), or `-`
    /// for stdin.
    file: String,
    /// Where entries without a DST go: REGISTRY/NAMESPACE.
    #[arg(long, value_name = "REGISTRY/NAMESPACE")]
    dest: Option<String>,
    /// The file's format.
    #[arg(long, value_enum, default_value_t = Format::Auto)]
    format: Format,
    #[command(flatten)]
    copy: CopyOptions,
    #[command(flatten)]
    access: Access,
    #[command(flatten)]
    output: Output,
}

/// One failed entry, for the summary.
struct Failed {
    origin: String,
    line: Option<usize>,
    failure: Failure,
}

pub fn run(args: Args) -> u8 {
    let mode = Mode::pick(&args.output);
    let (items, auth_file) = match load(&args) {
        Ok(x) => x,
        Err(f) => return fail(&f, mode),
    };
    let mut copied = 0usize;
    let mut failed: Vec<Failed> = Vec::new();
    let mut queue: std::collections::VecDeque<Item> = items.into();
    while let Some(item) = queue.pop_front() {
        let entry = match item {
            Item::Bad {
                origin,
                line,
                message,
            } => {
                let failure = Failure::usage(message, "see `hoist batch --help` for the format");
                report_failure(mode, &origin, line, &failure);
                failed.push(Failed {
                    origin,
                    line,
                    failure,
                });
                continue;
            }
            Item::Entry(e) => e,
        };
        if entry.all_tags {
            // Expanded in place, so the copies keep the file's order.
            match expand_tags(&entry, &args.access, auth_file.as_ref()) {
                Ok(tagged) => {
                    for e in tagged.into_iter().rev() {
                        queue.push_front(Item::Entry(e));
                    }
                }
                Err(failure) => {
                    report_failure(mode, &entry.origin, entry.line, &failure);
                    failed.push(Failed {
                        origin: entry.origin,
                        line: entry.line,
                        failure,
                    });
                }
            }
            continue;
        }
        match copy_entry(&entry, &args, auth_file.as_ref(), mode) {
            Ok(()) => copied += 1,
            Err(failure) => {
                report_failure(mode, &entry.origin, entry.line, &failure);
                failed.push(Failed {
                    origin: entry.origin,
                    line: entry.line,
                    failure,
                });
            }
        }
    }
    summary(mode, copied, &failed)
}

fn load(args: &Args) -> Result<(Vec<Item>, Option<AuthFile>), Failure> {
    let text = if args.file == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).map_err(|e| {
            Failure::usage(
                format!("cannot read the batch from stdin: {e}"),
                "pipe a file in",
            )
        })?;
        s
    } else {
        std::fs::read_to_string(&args.file).map_err(|e| {
            Failure::usage(
                format!("cannot read the batch file {}: {e}", args.file),
                "under wasmtime, share its directory with `wasmtime run --dir \
                 HOST_DIR::GUEST_DIR` and give the path inside GUEST_DIR, or pass `-` and \
                 pipe it to stdin",
            )
        })?
    };
    let items = batch_file::parse(&args.file, &text, args.format)?;
    Ok((items, args.access.auth_file()?))
}

/// The access options for one entry: the shared ones plus what its YAML block says.
fn entry_access(entry: &Entry, access: &Access) -> Access {
    let mut access = access.clone();
    if entry.plain_http
        && let Ok(r) = Reference::parse(&entry.source)
    {
        access.plain_http.push(r.registry().to_owned());
    }
    access
}

fn entry_options(entry: &Entry, options: &CopyOptions) -> CopyOptions {
    let mut options = options.clone();
    if let Some(c) = &entry.creds {
        options.src_creds = Some(format!("{}:{}", c.username, c.password));
    }
    options
}

fn expand_tags(
    entry: &Entry,
    access: &Access,
    auth_file: Option<&AuthFile>,
) -> Result<Vec<Entry>, Failure> {
    let usage = |e: String| Failure::usage(e, "a repository reads REGISTRY/REPOSITORY");
    let reference = Reference::parse(&entry.source).map_err(|e| usage(e.to_string()))?;
    let access = entry_access(entry, access);
    let creds = entry
        .creds
        .as_ref()
        .map(|c| format!("{}:{}", c.username, c.password));
    let resolved = access.resolve(
        &[crate::options::SideSpec {
            registry: reference.registry().into(),
            flag: "--src-creds",
            env: "HOIST_SRC_CREDS",
            action: "pull from",
            given: creds.as_deref(),
        }],
        auth_file,
    )?;
    let tags = hoist_plugin::inspect::list_tags(hoist_plugin::inspect::InspectSpec {
        reference: entry.source.clone(),
        endpoints: resolved.endpoints,
        insecure: resolved.insecure,
        credentials: resolved.credentials,
        max_retries: access.retry,
        timeouts: Default::default(),
    })
    .map_err(|e| failure::from_import(e, &resolved.sides))?;
    let base = format!("{}/{}", reference.registry(), reference.repository());
    Ok(tags
        .into_iter()
        .map(|tag| Entry {
            origin: format!("{base}:{tag}"),
            source: format!("{base}:{tag}"),
            all_tags: false,
            ..entry.clone()
        })
        .collect())
}

fn copy_entry(
    entry: &Entry,
    args: &Args,
    auth_file: Option<&AuthFile>,
    mode: Mode,
) -> Result<(), Failure> {
    let destination = match (&entry.destination, &args.dest) {
        (Some(d), _) => d.clone(),
        (None, Some(prefix)) => {
            let source = Reference::parse(&entry.source).map_err(|e| {
                Failure::usage(
                    format!("source: {e}"),
                    "a reference reads [REGISTRY/]REPOSITORY[:TAG][@DIGEST]",
                )
            })?;
            batch_file::destination_under(prefix, &source)
        }
        (None, None) => {
            return Err(Failure::usage(
                format!("no destination for {}", entry.source),
                "give DST on the line, or --dest REGISTRY/NAMESPACE",
            ));
        }
    };
    let access = entry_access(entry, &args.access);
    let options = entry_options(entry, &args.copy);
    let mut reporter = Reporter::new(mode, format!("{} → {destination}", entry.source));
    reporter.context = context(&entry.origin, entry.line);
    reporter.keep_bars = false;
    let outcome = copy_one(
        &entry.source,
        &destination,
        &options,
        &access,
        auth_file,
        &mut reporter,
    )?;
    match mode {
        Mode::Json => {}
        Mode::Bars | Mode::Lines => eprintln!(
            "{}: {} → {} ({} moved, {:.1} s)",
            entry.origin,
            entry.source,
            outcome.reference(),
            size(outcome.status.bytes_transferred()),
            outcome.seconds
        ),
        Mode::Quiet => {}
    }
    if options.dry_run || mode == Mode::Json {
        outcome.print(&reporter);
    } else {
        println!("{}", outcome.reference());
    }
    Ok(())
}

fn context(origin: &str, line: Option<usize>) -> serde_json::Map<String, Value> {
    let mut map = serde_json::Map::new();
    map.insert("entry".into(), origin.into());
    if let Some(n) = line {
        map.insert("line".into(), n.into());
    }
    map
}

fn report_failure(mode: Mode, origin: &str, line: Option<usize>, failure: &Failure) {
    if mode == Mode::Json {
        let mut event = failure.event();
        for (k, v) in context(origin, line) {
            event[k] = v;
        }
        emit(event);
    }
    eprintln!("{origin}: {failure}");
}

fn summary(mode: Mode, copied: usize, failed: &[Failed]) -> u8 {
    let code = match failed.first() {
        None => crate::exit::OK,
        Some(first) => {
            let code = first.failure.exit_code();
            if failed.iter().all(|f| f.failure.exit_code() == code) {
                code
            } else {
                crate::exit::FAILED
            }
        }
    };
    if mode == Mode::Json {
        let failures: Vec<Value> = failed
            .iter()
            .map(|f| {
                json!({
                    "entry": f.origin,
                    "line": f.line,
                    "code": f.failure.code,
                    "message": f.failure.to_string(),
                })
            })
            .collect();
        emit(json!({
            "event": "summary",
            "copied": copied,
            "failed": failed.len(),
            "failures": failures,
            "exit_code": code,
        }));
    }
    let list: Vec<&str> = failed.iter().map(|f| f.origin.as_str()).collect();
    if failed.is_empty() {
        eprintln!("batch: {copied} copied, 0 failed");
    } else {
        eprintln!(
            "batch: {copied} copied, {} failed ({})",
            failed.len(),
            list.join(", ")
        );
    }
    code
}
