//! `hoist sync FILE`: one pass of a sync rule, meant for cron. The plugin's plan lists the
//! source's tags, selects them as the host's sync does, and compares each with the target
//! by manifest `HEAD` only; each tag that is new or moved is then copied like `hoist copy`.
//! The counts of copied, unchanged and failed tags end the run; any failure makes the
//! exit code non-zero.

use crate::copy::{CopyOptions, copy_one, fail};
use crate::failure::{self, Failure, Side};
use crate::options::{Access, Output, SideSpec};
use crate::report::{Mode, Reporter, emit, size};
use crate::sync_file::SyncFile;
use hoist_plugin::plan::{Plan, Reach};
use hoist_plugin::sync::{PlanAction, PlanItem};
use serde_json::json;

#[derive(clap::Args, Clone, Debug)]
#[command(after_help = "Examples:\n  \
    wasmtime run -S http --dir .::/work hoist.wasm sync /work/nginx.yaml\n  \
    wasmtime run -S http --dir .::/work hoist.wasm sync --dry-run --json /work/rule.toml\n\n\
    The rule file (YAML or TOML, the same rule as the host's sync API):\n  \
    source: {registry: docker.io, repositories: [library/nginx]}\n  \
    target: registry.example/mirror        # REGISTRY/PROJECT\n  \
    tags: {include: [\"1.*\"], exclude: [{regex: '.*-rc.*'}], semver: \">=1.25 <2\", newest: 5}\n  \
    platforms: [linux/amd64]\n  \
    destination: {strip_prefix: library}   # default: <project>/<last path component>\n\n\
    Unchanged tags cost one manifest HEAD at the source and one at the target. stdout \
    gets the digest reference of each image copied; stderr a line per tag and the \
    counts. The exit code is 0 when nothing failed.")]
pub struct Args {
    /// The rule file (inside a directory preopened with `wasmtime run --dir`).
    file: String,
    #[command(flatten)]
    copy: CopyOptions,
    #[command(flatten)]
    access: Access,
    #[command(flatten)]
    output: Output,
}

pub fn run(args: Args) -> u8 {
    let mode = Mode::pick(&args.output);
    match sync(&args, mode) {
        Ok(code) => code,
        Err(f) => fail(&f, mode),
    }
}

fn sync(args: &Args, mode: Mode) -> Result<u8, Failure> {
    let text = std::fs::read_to_string(&args.file).map_err(|e| {
        Failure::usage(
            format!("cannot read the rule file {}: {e}", args.file),
            "under wasmtime, share its directory with `wasmtime run --dir HOST_DIR::GUEST_DIR` \
             and give the path inside GUEST_DIR",
        )
    })?;
    let rule = SyncFile::parse(&args.file, &text)?;
    let dry_run = args.copy.dry_run;
    let spec = rule.plan_spec(dry_run)?;
    let mut options = args.copy.clone();
    options.platforms.extend(rule.platforms.iter().cloned());
    let auth_file = args.access.auth_file()?;
    let resolved = args.access.resolve(
        &[
            SideSpec {
                registry: spec.registry.clone(),
                flag: "--src-creds",
                env: "HOIST_SRC_CREDS",
                action: "pull from",
                given: options.src_creds.as_deref(),
            },
            SideSpec {
                registry: spec.target_registry.clone(),
                flag: "--dest-creds",
                env: "HOIST_DEST_CREDS",
                action: "push to",
                given: options.dest_creds.as_deref(),
            },
        ],
        auth_file.as_ref(),
    )?;
    let sides: Vec<Side> = resolved.sides.clone();
    let reach = Reach {
        endpoints: resolved.endpoints,
        insecure: resolved.insecure,
        credentials: resolved.credentials,
        max_retries: args.access.retry,
    };
    let mut plan =
        Plan::start_standalone(spec, &reach).map_err(|e| failure::from_import(e, &sides))?;
    let status = loop {
        let status = plan.advance(100);
        if status.phase.is_finished() {
            break status;
        }
    };
    if let Some(error) = status.error {
        return Err(failure::from_import(error, &sides));
    }

    let mut counts = Counts::default();
    let mut failures = Vec::new();
    for item in &status.items {
        let name = item_name(item);
        match &item.action {
            PlanAction::Copy if dry_run => {
                counts.copy += 1;
                counts.bytes += item.bytes.unwrap_or(0);
                report(mode, item, "would copy", None, None);
            }
            PlanAction::Copy => {
                let Some(source) = &item.source_reference else {
                    continue;
                };
                let mut reporter =
                    Reporter::new(mode, format!("{source} → {}", item.target_reference));
                reporter.keep_bars = false;
                match copy_one(
                    source,
                    &item.target_reference,
                    &options,
                    &args.access,
                    auth_file.as_ref(),
                    &mut reporter,
                ) {
                    Ok(outcome) => {
                        counts.copy += 1;
                        counts.bytes += outcome.status.bytes_transferred();
                        let reference = outcome.reference();
                        // In JSON mode stdout holds events only; the item event names it.
                        if mode != Mode::Json {
                            println!("{reference}");
                        }
                        report(mode, item, "copied", Some(&reference), None);
                    }
                    Err(failure) => {
                        counts.failed += 1;
                        report(mode, item, "failed", None, Some(&failure.to_string()));
                        failures.push((name, failure));
                    }
                }
            }
            PlanAction::Unchanged => {
                counts.unchanged += 1;
                report(mode, item, "unchanged", None, None);
            }
            PlanAction::Filtered => counts.filtered += 1,
            PlanAction::Prune => {}
            PlanAction::Failed(e) => {
                counts.failed += 1;
                let failure = failure::from_import(e.clone(), &sides);
                report(mode, item, "failed", None, Some(&failure.to_string()));
                failures.push((name, failure));
            }
        }
    }
    let code = match failures.first() {
        None => crate::exit::OK,
        Some((_, first))
            if failures
                .iter()
                .all(|(_, f)| f.exit_code() == first.exit_code()) =>
        {
            first.exit_code()
        }
        Some(_) => crate::exit::FAILED,
    };
    let verb = if dry_run { "to copy" } else { "copied" };
    if mode == Mode::Json {
        emit(json!({
            "event": "summary",
            "dry_run": dry_run,
            "copied": counts.copy,
            "unchanged": counts.unchanged,
            "filtered": counts.filtered,
            "failed": counts.failed,
            "bytes": counts.bytes,
            "requests": status.requests.total(),
            "exit_code": code,
        }));
    }
    if mode == Mode::Quiet {
        return Ok(code);
    }
    eprintln!(
        "sync: {} {verb} ({}), {} unchanged, {} filtered, {} failed; {} requests to the source",
        counts.copy,
        size(counts.bytes),
        counts.unchanged,
        counts.filtered,
        counts.failed,
        status.requests.total()
    );
    Ok(code)
}

#[derive(Default)]
struct Counts {
    copy: usize,
    unchanged: usize,
    filtered: usize,
    failed: usize,
    bytes: u64,
}

fn item_name(item: &PlanItem) -> String {
    match (&item.tag, &item.source_digest) {
        (Some(tag), _) => format!("{}:{tag}", item.source_repository),
        (None, Some(digest)) => format!("{}@{digest}", item.source_repository),
        (None, None) => item.source_repository.clone(),
    }
}

/// One tag's outcome; `reference` is the digest reference of a copy.
fn report(
    mode: Mode,
    item: &PlanItem,
    outcome: &str,
    reference: Option<&str>,
    error: Option<&str>,
) {
    match mode {
        Mode::Json => emit(json!({
            "event": "item",
            "source": item_name(item),
            "target": item.target_reference,
            "outcome": outcome,
            "reference": reference,
            "reason": item.reason,
            "bytes": item.bytes,
            "error": error,
        })),
        Mode::Bars | Mode::Lines => match error {
            Some(e) => eprintln!("{}: {outcome}: {e}", item_name(item)),
            None => eprintln!("{}: {outcome} ({})", item_name(item), item.reason),
        },
        // Quiet still names what failed: a silent non-zero exit would leave the admin guessing.
        Mode::Quiet => {
            if let Some(e) = error {
                eprintln!("{}: {outcome}: {e}", item_name(item));
            }
        }
    }
}
