//! `hoist copy SRC DST`: the import, run by the plugin's engine inside this component and
//! driven exactly as the host drives it: `start`, then `advance` slices until it ends.

use crate::failure::{self, Failure, Side};
use crate::options::{Access, Output, SideSpec};
use crate::report::{self, Mode, Reporter, size};
use hoist_plugin::copy::{Import, ImportSpec};
use hoist_plugin::manifest::PlatformFilter;
use hoist_plugin::progress::{BlobState, Phase, Status};
use hoist_plugin::reference::Reference;
use serde_json::json;

#[derive(clap::Args, Clone, Debug)]
#[command(after_help = "Examples:\n  \
    hoist copy nginx:1.27 registry.example/proj/nginx:1.27\n  \
    hoist copy --platform linux/amd64 --platform linux/arm64 \\\n      \
      ghcr.io/owner/repo:v1 registry.example/proj/repo:v1\n  \
    hoist copy --plain-http 127.0.0.1:5000 --mirror docker.io=http://127.0.0.1:5001 \\\n      \
      nginx 127.0.0.1:5000/proj/nginx:latest\n  \
    hoist copy --dry-run ghcr.io/owner/repo:v1 registry.example/proj/repo:v1\n  \
    wasmtime run -S http --env HOIST_SRC_CREDS hoist.wasm copy \\\n      \
      ghcr.io/owner/private:v1 127.0.0.1:5000/proj/private:v1 --plain-http 127.0.0.1:5000\n\n\
    stdout gets one line, the copy's digest reference (REGISTRY/REPO@sha256:…); progress and \
    errors go to stderr.")]
pub struct Args {
    /// The image to copy, as `docker pull` takes it.
    source: String,
    /// Where to write it: REGISTRY/REPOSITORY:TAG (or @DIGEST).
    destination: String,
    #[command(flatten)]
    pub copy: CopyOptions,
    #[command(flatten)]
    pub access: Access,
    #[command(flatten)]
    pub output: Output,
}

/// The options of one import, shared with `batch`.
#[derive(clap::Args, Clone, Debug)]
pub struct CopyOptions {
    /// Copy only this platform (OS/ARCH[/VARIANT]); repeat for several. Default: every
    /// platform, with the index unchanged. A filter writes a NEW index with a NEW digest
    /// (or, for one platform, that platform's manifest alone).
    #[arg(long = "platform", value_name = "OS/ARCH[/VARIANT]")]
    pub platforms: Vec<String>,
    /// Blob transfers in flight at once.
    #[arg(long, default_value_t = hoist_plugin::copy::DEFAULT_CONCURRENCY,
          value_parser = clap::value_parser!(u32).range(1..=32))]
    pub jobs: u32,
    /// Upload blobs in chunks of this many bytes (PATCH), instead of one PUT each.
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    pub chunk_size: Option<u64>,
    /// Credentials for the source, as USER:PASS.
    #[arg(
        long,
        env = "HOIST_SRC_CREDS",
        hide_env_values = true,
        value_name = "USER:PASS"
    )]
    pub src_creds: Option<String>,
    /// Credentials for the destination, as USER:PASS.
    #[arg(
        long,
        env = "HOIST_DEST_CREDS",
        hide_env_values = true,
        value_name = "USER:PASS"
    )]
    pub dest_creds: Option<String>,
    /// Resolve and print the plan (manifests, platforms, each blob with its size, what
    /// the destination already has), and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Leave the image's referrers (signatures, SBOMs, attestations) behind. By default
    /// they are copied with it: OCI 1.1 referrers, the referrers tag schema, and cosign's
    /// `sha256-<hex>.sig`/`.att`/`.sbom` tags.
    #[arg(long)]
    pub no_referrers: bool,
    /// Copy only referrers of this artifact type; repeat for several.
    #[arg(long = "referrer-type", value_name = "ARTIFACT-TYPE")]
    pub referrer_types: Vec<String>,
    /// Refuse an image that has no signature (a signature referrer or a cosign `.sig`
    /// tag), before writing anything.
    #[arg(long)]
    pub require_signature: bool,
    /// Read from the source at most this fast, in bytes per second for the whole copy;
    /// K, M and G suffixes count in 1024s, as curl's --limit-rate does (16M).
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub limit_rate: Option<u64>,
}

/// A rate as curl's `--limit-rate` writes it: `500000`, `512K`, `16M`, `1G`.
fn parse_rate(s: &str) -> Result<u64, String> {
    let (digits, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s[..i], c.to_ascii_uppercase()),
        _ => (s, 'B'),
    };
    let shift = match unit {
        'B' => 0,
        'K' => 10,
        'M' => 20,
        'G' => 30,
        _ => {
            return Err(format!(
                "{s:?}: the unit must be K, M or G (16M is 16 MiB/s)"
            ));
        }
    };
    match digits.parse::<u64>() {
        Ok(n) if n > 0 => n
            .checked_mul(1 << shift)
            .ok_or_else(|| format!("{s:?} is too large")),
        _ => Err(format!(
            "{s:?} is not a rate: write bytes per second, as 500K or 16M"
        )),
    }
}

pub fn run(args: Args) -> u8 {
    let mode = Mode::pick(&args.output);
    let auth_file = match args.access.auth_file() {
        Ok(f) => f,
        Err(f) => return fail(&f, mode),
    };
    let title = format!("{} → {}", args.source, args.destination);
    let mut reporter = Reporter::new(mode, title);
    // A dry run's result is its plan; bars of blobs that will never move would only
    // push it off the screen.
    reporter.keep_bars = !args.copy.dry_run;
    match copy_one(
        &args.source,
        &args.destination,
        &args.copy,
        &args.access,
        auth_file.as_ref(),
        &mut reporter,
    ) {
        Ok(outcome) => {
            outcome.print(&reporter);
            crate::exit::OK
        }
        Err(f) => fail(&f, mode),
    }
}

/// Prints a failure: one line on stderr always, and the error event with `--json`.
pub fn fail(f: &Failure, mode: Mode) -> u8 {
    if mode == Mode::Json {
        report::emit(f.event());
    }
    eprintln!("{f}");
    f.exit_code()
}

/// The engine's request for SRC → DST, and what the hints need to know.
pub fn prepare(
    source: &str,
    destination: &str,
    options: &CopyOptions,
    access: &Access,
    auth_file: Option<&crate::creds::AuthFile>,
) -> Result<(ImportSpec, Vec<Side>), Failure> {
    let hint = "a reference reads [REGISTRY/]REPOSITORY[:TAG][@DIGEST], as `docker pull` takes it";
    let src = Reference::parse(source).map_err(|e| Failure::usage(format!("source: {e}"), hint))?;
    let dst = Reference::parse(destination)
        .map_err(|e| Failure::usage(format!("destination: {e}"), hint))?;
    let platforms = options
        .platforms
        .iter()
        .map(|p| PlatformFilter::parse(p).map_err(|e| Failure::usage(e, "see --help")))
        .collect::<Result<Vec<_>, _>>()?;
    let resolved = access.resolve(
        &[
            SideSpec {
                registry: src.registry().into(),
                flag: "--src-creds",
                env: "HOIST_SRC_CREDS",
                action: "pull from",
                given: options.src_creds.as_deref(),
            },
            SideSpec {
                registry: dst.registry().into(),
                flag: "--dest-creds",
                env: "HOIST_DEST_CREDS",
                action: "push to",
                given: options.dest_creds.as_deref(),
            },
        ],
        auth_file,
    )?;
    let spec = ImportSpec {
        source: source.into(),
        target: destination.into(),
        platforms,
        endpoints: resolved.endpoints,
        insecure: resolved.insecure,
        concurrency: options.jobs,
        max_retries: access.retry,
        chunk_size: options.chunk_size,
        mount_from: Vec::new(),
        copy_foreign_layers: false,
        timeouts: Default::default(),
        credentials: resolved.credentials,
        host_credentials: Vec::new(),
        referrers: hoist_plugin::referrer::ReferrerOptions {
            skip: options.no_referrers,
            artifact_types: options.referrer_types.clone(),
            require_signature: options.require_signature,
        },
        max_bytes_per_second: options.limit_rate,
        max_retry_wait_ms: 0,
        dry_run: options.dry_run,
    };
    Ok((spec, resolved.sides))
}

/// What a finished copy (or dry run) reports.
pub struct Outcome {
    pub status: Status,
    pub dry_run: bool,
    pub source: String,
    pub destination: String,
    pub seconds: f64,
}

/// Runs SRC → DST to its end, reporting progress.
pub fn copy_one(
    source: &str,
    destination: &str,
    options: &CopyOptions,
    access: &Access,
    auth_file: Option<&crate::creds::AuthFile>,
    reporter: &mut Reporter,
) -> Result<Outcome, Failure> {
    let (spec, sides) = prepare(source, destination, options, access, auth_file)?;
    let dry_run = spec.dry_run;
    let mut import = Import::start(spec).map_err(|e| failure::from_import(e, &sides))?;
    let status = loop {
        let status = import.advance(reporter.slice_ms());
        if status.phase.is_finished() {
            reporter.finish(&status);
            break status;
        }
        reporter.update(&status);
    };
    if status.phase != Phase::Done {
        let error = status.error.clone().unwrap_or_else(|| {
            hoist_plugin::progress::ImportError::Registry(
                "the import stopped without a reason".into(),
            )
        });
        return Err(failure::from_import(error, &sides));
    }
    Ok(Outcome {
        seconds: reporter.elapsed().as_secs_f64(),
        status,
        dry_run,
        source: source.into(),
        destination: destination.into(),
    })
}

impl Outcome {
    /// The digest reference the destination now has (for a dry run: would have).
    pub fn reference(&self) -> String {
        let dst = Reference::parse(&self.destination).expect("checked before the import");
        let digest = self
            .status
            .manifests
            .last()
            .map(|m| m.digest.as_str())
            .unwrap_or_default();
        self.status
            .target_reference
            .clone()
            .unwrap_or_else(|| format!("{}/{}@{digest}", dst.registry(), dst.repository()))
    }

    fn count(&self, f: impl Fn(&BlobState) -> bool) -> (usize, u64) {
        let blobs: Vec<_> = self.status.blobs.iter().filter(|b| f(&b.state)).collect();
        (blobs.len(), blobs.iter().map(|b| b.size).sum())
    }

    /// Prints the result: the digest reference on stdout (a dry run's plan), a summary
    /// on stderr, or the `done`/`plan` event.
    pub fn print(&self, reporter: &Reporter) {
        if self.dry_run {
            return self.print_plan(reporter);
        }
        let (skipped, _) = self.count(|s| *s == BlobState::Skipped);
        let (mounted, _) = self.count(|s| *s == BlobState::Mounted);
        let (copied, _) = self.count(|s| *s == BlobState::Done);
        let moved = self.status.bytes_transferred();
        match reporter.mode {
            Mode::Json => reporter.emit(json!({
                "event": "done",
                "reference": self.reference(),
                "digest": self.status.digest,
                "blobs": self.status.blobs.len(),
                "blobs_copied": copied,
                "blobs_skipped": skipped,
                "blobs_mounted": mounted,
                "bytes_transferred": moved,
                "referrers": report::referrers_json(&self.status),
                "seconds": self.seconds,
            })),
            Mode::Bars | Mode::Lines => eprintln!(
                "copied {} in {:.1} s: {copied} blobs moved ({}), {skipped} already there, \
                 {mounted} mounted{}",
                self.source,
                self.seconds,
                size(moved),
                report::referrers_line(&self.status),
            ),
            Mode::Quiet => {}
        }
        if reporter.mode != Mode::Json {
            println!("{}", self.reference());
        }
    }

    fn print_plan(&self, reporter: &Reporter) {
        let s = &self.status;
        let action = |state: &BlobState| match state {
            BlobState::Skipped => "skip",
            BlobState::Foreign => "foreign",
            _ => "copy",
        };
        let (to_copy, copy_bytes) = self.count(|s| action(s) == "copy");
        let (to_skip, skip_bytes) = self.count(|s| action(s) != "copy");
        if reporter.mode == Mode::Json {
            let blobs: Vec<_> = s
                .blobs
                .iter()
                .map(|b| {
                    json!({
                        "digest": b.digest,
                        "media_type": b.media_type,
                        "size": b.size,
                        "action": action(&b.state),
                    })
                })
                .collect();
            reporter.emit(json!({
                "event": "plan",
                "source": self.source,
                "target": self.destination,
                "reference": self.reference(),
                "manifests": report::manifests_json(s),
                "referrers": report::referrers_json(s),
                "blobs": blobs,
                "copy_blobs": to_copy,
                "copy_bytes": copy_bytes,
                "skip_blobs": to_skip,
                "skip_bytes": skip_bytes,
            }));
            return;
        }
        let mut out = format!(
            "dry run: {} → {} (nothing was written)\nmanifests, pushed in this order (the \
             tag names the last):\n",
            self.source, self.destination
        );
        for m in &s.manifests {
            let what = m.platform.clone().unwrap_or_else(|| {
                if m.media_type.contains("index") || m.media_type.contains("list") {
                    "index".into()
                } else {
                    "image".into()
                }
            });
            out += &format!(
                "  {}  {what:<16} {:>10}  {}\n",
                m.digest,
                size(m.size),
                m.media_type
            );
        }
        for r in &s.referrers {
            out += &format!(
                "  {}  {:<16} of {}  {}\n",
                r.digest,
                r.kind.name(),
                r.subject,
                r.tag.as_deref().unwrap_or(&r.artifact_type)
            );
        }
        out += &format!("blobs ({}, {}):\n", s.blobs.len(), size(s.bytes_total()));
        for b in &s.blobs {
            let note = match b.state {
                BlobState::Skipped => "skip: the destination has it",
                BlobState::Foreign => "skip: foreign layer, not distributable",
                _ => "copy",
            };
            out += &format!("  {}  {:>10}  {note}\n", b.digest, size(b.size));
        }
        out += &format!(
            "would copy {to_copy} blobs ({}) and skip {to_skip} ({})\nresult: {}",
            size(copy_bytes),
            size(skip_bytes),
            self.reference()
        );
        println!("{out}");
    }
}
