//! Progress while an import runs. On a terminal: bars on stderr, one per blob and one for
//! the total, redrawn in place. Elsewhere: a plain line every few seconds. With `--json`:
//! newline-delimited events on stdout. stdout otherwise holds only the result.
//!
//! The bars are drawn by hand (cursor-up and erase-line sequences) rather than with
//! indicatif: its terminal layer (console) has no WASI support for terminal detection or
//! size, and a redraw of a handful of lines is a few lines of code.

use crate::options::Output;
use hoist_plugin::progress::{BlobState, Phase, Status};
use serde_json::{Map, Value, json};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Blob bars shown before they are summarised, so the display fits a terminal.
const MAX_BLOB_LINES: usize = 10;
const BAR_REDRAW: Duration = Duration::from_millis(100);
const LINE_INTERVAL: Duration = Duration::from_secs(2);
const JSON_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Json,
    Bars,
    Lines,
    Quiet,
}

impl Mode {
    /// `--json`, else `--quiet`, else bars when stderr is a terminal (`isatty` works under
    /// wasmtime: std asks `wasi:cli/terminal-stderr`), else lines.
    pub fn pick(output: &Output) -> Self {
        if output.json {
            Mode::Json
        } else if output.quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Bars
        } else {
            Mode::Lines
        }
    }
}

/// Prints one JSON event on stdout.
pub fn emit(event: Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{event}");
    let _ = out.flush();
}

/// Adds the reporter's context (a batch's line number) to an event.
fn with_context(mut event: Value, context: &Map<String, Value>) -> Value {
    if let Value::Object(map) = &mut event {
        for (k, v) in context {
            map.insert(k.clone(), v.clone());
        }
    }
    event
}

pub struct Reporter {
    pub mode: Mode,
    /// Fields added to every JSON event.
    pub context: Map<String, Value>,
    /// Whether the final bars stay on screen; a batch erases them and prints one line
    /// per image instead.
    pub keep_bars: bool,
    /// What the header line says is going on.
    title: String,
    width: usize,
    started: Instant,
    last_tick: Option<Instant>,
    drawn: usize,
    settled: Vec<bool>,
    warnings_seen: usize,
    resolved: bool,
}

impl Reporter {
    pub fn new(mode: Mode, title: String) -> Self {
        // WASI has no terminal-size call; COLUMNS reaches the guest when passed with
        // `wasmtime run --env COLUMNS`.
        let width = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.parse().ok())
            .filter(|&w: &usize| w >= 40)
            .unwrap_or(80);
        Self {
            mode,
            context: Map::new(),
            keep_bars: true,
            title,
            width,
            started: Instant::now(),
            last_tick: None,
            drawn: 0,
            settled: Vec::new(),
            warnings_seen: 0,
            resolved: false,
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// How long one `advance` call may run: short enough for smooth bars.
    pub fn slice_ms(&self) -> u32 {
        if self.mode == Mode::Bars { 100 } else { 250 }
    }

    pub fn emit(&self, event: Value) {
        emit(with_context(event, &self.context));
    }

    /// Reports what changed since the last call.
    pub fn update(&mut self, status: &Status) {
        self.warnings(status);
        if !self.resolved && !status.manifests.is_empty() {
            self.resolved = true;
            self.on_resolved(status);
        }
        if self.mode == Mode::Json {
            self.blob_events(status);
        }
        let now = Instant::now();
        let interval = match self.mode {
            Mode::Bars => BAR_REDRAW,
            Mode::Lines => LINE_INTERVAL,
            Mode::Json => JSON_INTERVAL,
            Mode::Quiet => return,
        };
        let due = match self.last_tick {
            None => self.mode == Mode::Bars,
            Some(t) => now.duration_since(t) >= interval,
        };
        if self.last_tick.is_none() {
            self.last_tick = Some(now);
        }
        if !due && !status.phase.is_finished() {
            return;
        }
        self.last_tick = Some(now);
        match self.mode {
            Mode::Bars => self.draw(status),
            Mode::Lines if !status.phase.is_finished() => eprintln!(
                "{}: {}/{} blobs, {} of {}, {}",
                phase_name(status.phase),
                status.blobs_done(),
                status.blobs.len(),
                size(status.bytes_done()),
                size(status.bytes_total()),
                rate(status.bytes_transferred(), self.elapsed()),
            ),
            Mode::Json if !status.phase.is_finished() => self.emit(json!({
                "event": "progress",
                "phase": phase_name(status.phase),
                "blobs_done": status.blobs_done(),
                "blobs_total": status.blobs.len(),
                "bytes_done": status.bytes_done(),
                "bytes_total": status.bytes_total(),
            })),
            _ => {}
        }
    }

    /// The import ended: the final bars (drawn by this last update) stay on screen, or
    /// are erased.
    pub fn finish(&mut self, status: &Status) {
        self.update(status);
        if self.mode == Mode::Bars && !self.keep_bars {
            self.erase();
        }
        self.drawn = 0;
    }

    fn warnings(&mut self, status: &Status) {
        for warning in status.warnings.iter().skip(self.warnings_seen) {
            match self.mode {
                Mode::Json => self.emit(json!({"event": "warning", "message": warning})),
                Mode::Bars => {
                    self.erase();
                    eprintln!("warning: {warning}");
                }
                Mode::Lines | Mode::Quiet => eprintln!("warning: {warning}"),
            }
        }
        self.warnings_seen = status.warnings.len();
    }

    fn on_resolved(&mut self, status: &Status) {
        let top = status.manifests.last().expect("resolved means manifests");
        match self.mode {
            Mode::Json => self.emit(json!({
                "event": "resolved",
                "digest": top.digest,
                "media_type": top.media_type,
                "manifests": manifests_json(status),
                "blobs": status.blobs.len(),
                "bytes_total": status.bytes_total(),
            })),
            Mode::Lines => eprintln!(
                "resolved {}: {} manifest(s), {} blobs, {}",
                top.digest,
                status.manifests.len(),
                status.blobs.len(),
                size(status.bytes_total())
            ),
            Mode::Bars | Mode::Quiet => {}
        }
    }

    fn blob_events(&mut self, status: &Status) {
        self.settled.resize(status.blobs.len(), false);
        for (i, blob) in status.blobs.iter().enumerate() {
            if self.settled[i] || !blob.state.is_settled() {
                continue;
            }
            self.settled[i] = true;
            let mut event = json!({
                "event": "blob",
                "digest": blob.digest,
                "size": blob.size,
                "state": state_name(&blob.state),
            });
            if let BlobState::Failed(why) = &blob.state {
                event["error"] = why.clone().into();
            }
            self.emit(event);
        }
    }

    fn draw(&mut self, status: &Status) {
        let lines = bar_lines(&self.title, status, self.width, self.elapsed());
        let mut text = String::new();
        if self.drawn > 0 {
            // To the start of the first line drawn last time.
            text += &format!("\x1b[{}F", self.drawn);
        }
        for line in &lines {
            text += "\x1b[2K";
            text += line;
            text += "\n";
        }
        if lines.len() < self.drawn {
            text += "\x1b[J";
        }
        self.drawn = lines.len();
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(text.as_bytes());
        let _ = err.flush();
    }

    fn erase(&mut self) {
        if self.drawn > 0 {
            eprint!("\x1b[{}F\x1b[J", self.drawn);
            self.drawn = 0;
        }
    }
}

pub fn manifests_json(status: &Status) -> Value {
    status
        .manifests
        .iter()
        .map(|m| {
            json!({
                "digest": m.digest,
                "media_type": m.media_type,
                "size": m.size,
                "platform": m.platform,
            })
        })
        .collect()
}

/// The referrers an import found (and, once written, copied), for `--json` events.
pub fn referrers_json(status: &Status) -> Value {
    status
        .referrers
        .iter()
        .map(|r| {
            json!({
                "digest": r.digest,
                "subject": r.subject,
                "artifact_type": r.artifact_type,
                "kind": r.kind.name(),
                "tag": r.tag,
                "copied": r.copied,
            })
        })
        .collect()
}

/// `; referrers: signed, SBOM (3)` for the closing line, or nothing.
pub fn referrers_line(status: &Status) -> String {
    if status.referrers.is_empty() {
        return String::new();
    }
    format!(
        "; referrers: {} ({})",
        hoist_plugin::referrer::summary(status.referrers.iter().map(|r| r.kind)),
        status.referrers.len()
    )
}

pub fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Resolving => "resolving",
        Phase::Copying => "copying",
        Phase::PushingManifests => "pushing manifests",
        Phase::Done => "done",
        Phase::Failed => "failed",
        Phase::Cancelled => "cancelled",
    }
}

pub fn state_name(state: &BlobState) -> &'static str {
    match state {
        BlobState::Pending => "waiting",
        BlobState::Skipped => "skipped",
        BlobState::Mounted => "mounted",
        BlobState::Copying => "copying",
        BlobState::Done => "done",
        BlobState::Foreign => "foreign",
        BlobState::Failed(_) => "failed",
        BlobState::Cancelled => "cancelled",
    }
}

/// `1.5 MiB`: binary units, one decimal.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

fn rate(bytes: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(0.001);
    format!("{}/s", size((bytes as f64 / secs) as u64))
}

/// The short form of a digest that the bars show.
fn short(digest: &str) -> &str {
    let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
    &hex[..hex.len().min(12)]
}

fn bar(done: u64, total: u64, width: usize) -> String {
    let filled = if total == 0 {
        width
    } else {
        ((done.min(total) as u128 * width as u128) / total as u128) as usize
    };
    let mut s = String::with_capacity(width + 2);
    s.push('[');
    s.push_str(&"=".repeat(filled));
    if filled < width {
        s.push('>');
        s.push_str(&" ".repeat(width - filled - 1));
    }
    s.push(']');
    s
}

/// Columns of a bar line besides the bar: the label, brackets and spaces, the sizes, and
/// a tail (`copying`, or the total's `3/12 41.5 MiB/s`). Every line gets the same bar
/// width, so the bars line up.
const FIXED_COLUMNS: usize = 12 + 1 + 2 + 1 + 23 + 1 + 16;

fn bar_line(label: &str, done: u64, total: u64, tail: &str, width: usize) -> String {
    let sizes = format!("{:>10} / {:<10}", size(done), size(total));
    let bar_width = width.saturating_sub(FIXED_COLUMNS + 1).clamp(10, 50);
    let line = format!("{label:<12} {} {sizes} {tail}", bar(done, total, bar_width));
    // A line that wraps would break the cursor-up arithmetic of the redraw.
    line.chars().take(width - 1).collect()
}

/// The lines of the bar display: a header, the blobs, and the total.
pub fn bar_lines(title: &str, status: &Status, width: usize, elapsed: Duration) -> Vec<String> {
    let mut lines = vec![
        format!("{}: {title}", phase_name(status.phase))
            .chars()
            .take(width - 1)
            .collect::<String>(),
    ];
    let shown: Vec<_> = if status.blobs.len() <= MAX_BLOB_LINES {
        status.blobs.iter().collect()
    } else {
        status
            .blobs
            .iter()
            .filter(|b| b.state == BlobState::Copying)
            .take(MAX_BLOB_LINES)
            .collect()
    };
    for blob in &shown {
        let done = match blob.state {
            BlobState::Copying | BlobState::Failed(_) | BlobState::Pending => blob.bytes_done,
            _ => blob.size,
        };
        lines.push(bar_line(
            short(&blob.digest),
            done,
            blob.size,
            state_name(&blob.state),
            width,
        ));
    }
    if shown.len() < status.blobs.len() {
        let count = |f: fn(&BlobState) -> bool| status.blobs.iter().filter(|b| f(&b.state)).count();
        lines.push(format!(
            "{:<12} … {} more: {} done, {} skipped or mounted, {} waiting",
            "",
            status.blobs.len() - shown.len(),
            count(|s| *s == BlobState::Done),
            count(|s| matches!(s, BlobState::Skipped | BlobState::Mounted)),
            count(|s| *s == BlobState::Pending),
        ));
    }
    if !status.blobs.is_empty() {
        let tail = format!(
            "{}/{} {}",
            status.blobs_done(),
            status.blobs.len(),
            rate(status.bytes_transferred(), elapsed)
        );
        lines.push(bar_line(
            "total",
            status.bytes_done(),
            status.bytes_total(),
            &tail,
            width,
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoist_plugin::progress::BlobProgress;

    fn blob(n: u8, size: u64, done: u64, state: BlobState) -> BlobProgress {
        BlobProgress {
            digest: format!("sha256:{}", format!("{n:02x}").repeat(32)),
            media_type: "x".into(),
            size,
            bytes_done: done,
            state,
        }
    }

    #[test]
    fn sizes_read_like_a_person_writes_them() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(300 << 20), "300.0 MiB");
        assert_eq!(size(3 << 30), "3.0 GiB");
    }

    #[test]
    fn one_bar_per_blob_and_one_for_the_total_within_the_width() {
        let mut status = Status::new();
        status.phase = Phase::Copying;
        status.blobs = vec![
            blob(1, 1000, 1000, BlobState::Done),
            blob(2, 4 << 20, 1 << 20, BlobState::Copying),
            blob(3, 2000, 0, BlobState::Skipped),
        ];
        let lines = bar_lines("a → b", &status, 80, Duration::from_secs(1));
        assert_eq!(lines.len(), 5, "{lines:#?}");
        assert!(lines[0].starts_with("copying: a → b"));
        assert!(lines[2].starts_with("020202020202 [") && lines[2].ends_with("copying"));
        assert!(
            lines[2].contains("1.0 MiB") && lines[2].contains("4.0 MiB"),
            "{}",
            lines[2]
        );
        assert!(lines[4].starts_with("total") && lines[4].contains("2/3 "));
        let bar_at = |l: &str| l.find(']').unwrap();
        assert!(
            lines[1..].iter().all(|l| bar_at(l) == bar_at(&lines[1])),
            "aligned"
        );
        assert!(lines.iter().all(|l| l.chars().count() < 80), "{lines:#?}");
        // A quarter done is a quarter of the bar.
        let inner: String = lines[2]
            .split('[')
            .nth(1)
            .unwrap()
            .split(']')
            .next()
            .unwrap()
            .into();
        let filled = inner.chars().filter(|&c| c == '=').count();
        assert_eq!(filled, inner.chars().count() / 4);
    }

    #[test]
    fn many_blobs_show_those_in_flight_and_a_summary() {
        let mut status = Status::new();
        status.phase = Phase::Copying;
        status.blobs = (0..30)
            .map(|i| {
                let state = match i % 3 {
                    0 => BlobState::Copying,
                    1 => BlobState::Done,
                    _ => BlobState::Pending,
                };
                blob(i, 100, 50, state)
            })
            .collect();
        let lines = bar_lines("x", &status, 60, Duration::from_secs(1));
        // Header, ten in flight, the summary, the total.
        assert_eq!(lines.len(), 13, "{lines:#?}");
        assert!(lines[11].contains("20 more: 10 done, 0 skipped or mounted, 10 waiting"));
    }
}
