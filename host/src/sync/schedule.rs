//! When a sync rule runs: its schedule (a cron expression in a named time zone, an
//! interval with optional jitter, or none), the next due time after a given instant, and
//! what a tick of the runner does with a due slot (run it, or skip it because the last run
//! is still going or because it was missed while the host was down).
//!
//! Pure: the clock comes in as milliseconds since the epoch (UTC), the randomness of the
//! jitter as a function, so that every decision can be tested with plain numbers.
//!
//! Cron times are local times of the schedule's zone, and daylight saving time is done as
//! admins expect: a local time that a spring-forward change skips fires once, at the first
//! instant after the gap (02:30 on the day clocks jump 02:00→03:00 fires at 03:00); a
//! local time that a fall-back change repeats fires once, at its first occurrence. The
//! cron pattern is evaluated on naive local times, and each match is then placed on the
//! time line: a time in a gap moves forward to the gap's end, a repeated time takes its
//! earlier instant, and a match that lands at or before the instant searched from (the
//! second pass of a repeated hour) is passed over.

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::CronParser;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// The shortest interval a schedule may have.
pub(crate) const MIN_INTERVAL: Duration = Duration::from_secs(60);

/// How late a slot may be found due and still count as on time: the runner's tick came a
/// little after the slot. A slot found due later than this was missed (the host was down
/// or stalled) and runs only when the rule catches up.
pub(crate) const ON_TIME_MS: i64 = 60_000;

/// The most cron matches passed over in one search (matches in the second pass of a
/// repeated hour, already fired in the first); far more than any real change needs.
const MAX_PASSED_OVER: usize = 10_000;

/// A sync rule's schedule, validated. Read and written as [`ScheduleSpec`] (JSON:
/// `{"cron": "0 3 * * *", "timezone": "Europe/Berlin"}`, `{"interval": "6h", "jitter":
/// "10m"}`, or `null` for manual runs only).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Option<ScheduleSpec>", into = "Option<ScheduleSpec>")]
pub(crate) enum Schedule {
    /// No schedule: the rule runs only when asked to.
    #[default]
    Manual,
    /// At the times a cron expression names, in a time zone.
    // Boxed: a parsed cron expression is ten times the size of the other variants.
    Cron(Box<CronSchedule>),
    /// Every interval after the last run, plus a random part of the jitter.
    Interval(IntervalSchedule),
}

/// A cron expression and the IANA time zone its times are read in.
#[derive(Clone)]
pub(crate) struct CronSchedule {
    /// The expression as written (trimmed).
    expression: String,
    timezone: Tz,
    cron: Cron,
}

impl fmt::Debug for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CronSchedule")
            .field("expression", &self.expression)
            .field("timezone", &self.timezone.name())
            .finish()
    }
}

impl PartialEq for CronSchedule {
    fn eq(&self, other: &Self) -> bool {
        self.expression == other.expression && self.timezone == other.timezone
    }
}

impl Eq for CronSchedule {}

/// An interval (at least [`MIN_INTERVAL`]) and a jitter shorter than it (zero for none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IntervalSchedule {
    interval: Duration,
    jitter: Duration,
}

/// The schedule as written in a rule (the API's and the database's form). Exactly one of
/// `cron` (with `timezone`) and `interval` (with optional `jitter`) is given; a rule with
/// no schedule has `null` instead of this object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScheduleSpec {
    /// A cron expression: minute hour day-of-month month day-of-week (`0 3 * * *`), the
    /// same with a leading seconds field or a trailing year field, or `@yearly`,
    /// `@monthly`, `@weekly`, `@daily`, `@hourly`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// The IANA time zone the cron times are read in (`Europe/Berlin`, `UTC`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// A duration (`6h`, `90m`, `1h 30m`): the time from one run to the next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// A duration shorter than the interval: a random part of it is added to each wait,
    /// so that rules with the same interval spread out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<String>,
}

/// A schedule that cannot be used: which field, what is wrong, and how to write it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScheduleError {
    field: &'static str,
    message: String,
}

impl ScheduleError {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        ScheduleError {
            field,
            message: message.into(),
        }
    }

    /// The field at fault, as a path in the rule: `schedule.cron`, `schedule.timezone`,
    /// `schedule.interval`, `schedule.jitter`, or `schedule` for the object as a whole.
    pub(crate) fn field(&self) -> &'static str {
        self.field
    }
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for ScheduleError {}

const CRON_FIELDS_HINT: &str =
    "write minute hour day-of-month month day-of-week, e.g. \"0 3 * * *\"";
const TIMEZONE_HINT: &str = "name an IANA time zone such as \"Europe/Berlin\" or \"UTC\"";

impl TryFrom<ScheduleSpec> for Schedule {
    type Error = ScheduleError;

    fn try_from(spec: ScheduleSpec) -> Result<Self, ScheduleError> {
        match spec {
            ScheduleSpec {
                cron: Some(_),
                interval: Some(_),
                ..
            } => Err(ScheduleError::new(
                "schedule",
                "has both \"cron\" and \"interval\"; keep one: \"cron\" with \"timezone\" \
                 for fixed times, or \"interval\" (with optional \"jitter\") for a run every \
                 so often",
            )),
            ScheduleSpec {
                cron: Some(cron),
                timezone,
                interval: None,
                jitter,
            } => {
                if jitter.is_some() {
                    return Err(ScheduleError::new(
                        "schedule.jitter",
                        "only an interval schedule has a jitter; remove it, or replace \
                         \"cron\" and \"timezone\" with \"interval\"",
                    ));
                }
                let Some(timezone) = timezone else {
                    return Err(ScheduleError::new(
                        "schedule.timezone",
                        format!("is missing: the cron times are local times; {TIMEZONE_HINT}"),
                    ));
                };
                let timezone = parse_timezone(&timezone)?;
                let (expression, cron) = parse_cron(&cron)?;
                Ok(Schedule::Cron(Box::new(CronSchedule {
                    expression,
                    timezone,
                    cron,
                })))
            }
            ScheduleSpec {
                cron: None,
                timezone,
                interval: Some(interval),
                jitter,
            } => {
                if timezone.is_some() {
                    return Err(ScheduleError::new(
                        "schedule.timezone",
                        "only a cron schedule has a time zone (an interval counts from the \
                         last run); remove it",
                    ));
                }
                let interval = parse_interval(&interval)?;
                let jitter = match jitter {
                    Some(jitter) => parse_jitter(&jitter, interval)?,
                    None => Duration::ZERO,
                };
                Ok(Schedule::Interval(IntervalSchedule { interval, jitter }))
            }
            ScheduleSpec {
                cron: None,
                interval: None,
                ..
            } => Err(ScheduleError::new(
                "schedule",
                "names no schedule; give \"cron\" and \"timezone\" (e.g. {\"cron\": \"0 3 * * *\", \
                 \"timezone\": \"UTC\"}) or \"interval\" (e.g. {\"interval\": \"6h\"}), or null \
                 for manual runs only",
            )),
        }
    }
}

impl TryFrom<Option<ScheduleSpec>> for Schedule {
    type Error = ScheduleError;

    fn try_from(spec: Option<ScheduleSpec>) -> Result<Self, ScheduleError> {
        spec.map_or(Ok(Schedule::Manual), Schedule::try_from)
    }
}

impl From<Schedule> for Option<ScheduleSpec> {
    fn from(schedule: Schedule) -> Self {
        match schedule {
            Schedule::Manual => None,
            Schedule::Cron(c) => Some(ScheduleSpec {
                cron: Some(c.expression),
                timezone: Some(c.timezone.name().to_owned()),
                ..ScheduleSpec::default()
            }),
            Schedule::Interval(i) => Some(ScheduleSpec {
                interval: Some(humantime::format_duration(i.interval).to_string()),
                jitter: (!i.jitter.is_zero())
                    .then(|| humantime::format_duration(i.jitter).to_string()),
                ..ScheduleSpec::default()
            }),
        }
    }
}

fn parse_timezone(name: &str) -> Result<Tz, ScheduleError> {
    let name = name.trim();
    if let Ok(tz) = name.parse::<Tz>() {
        return Ok(tz);
    }
    let hint = match chrono_tz::TZ_VARIANTS
        .iter()
        .find(|tz| tz.name().eq_ignore_ascii_case(name))
    {
        Some(tz) => format!("did you mean \"{}\"?", tz.name()),
        None => TIMEZONE_HINT.to_owned(),
    };
    Err(ScheduleError::new(
        "schedule.timezone",
        format!("unknown time zone \"{name}\"; {hint}"),
    ))
}

fn parse_cron(expression: &str) -> Result<(String, Cron), ScheduleError> {
    let expression = expression.trim();
    let fields: Vec<&str> = expression.split_whitespace().collect();
    let alias = fields.len() == 1 && expression.starts_with('@');
    if !alias && !(5..=7).contains(&fields.len()) {
        let count = match fields.len() {
            1 => "1 field".to_owned(),
            n => format!("{n} fields"),
        };
        return Err(ScheduleError::new(
            "schedule.cron",
            format!("\"{expression}\" has {count}; {CRON_FIELDS_HINT}"),
        ));
    }
    // With six or seven fields the first is the second of the minute. A rule runs at most
    // once a minute, like an interval, so it must be one number.
    if fields.len() >= 6 && !fields[0].bytes().all(|b| b.is_ascii_digit()) {
        return Err(ScheduleError::new(
            "schedule.cron",
            format!(
                "\"{expression}\" has a seconds field \"{}\" that would run more than once a \
                 minute; make it one second such as \"0\", or {CRON_FIELDS_HINT}",
                fields[0]
            ),
        ));
    }
    let cron = CronParser::new().parse(expression).map_err(|e| {
        let hint = if alias {
            "use @yearly, @monthly, @weekly, @daily or @hourly, or ".to_owned() + CRON_FIELDS_HINT
        } else {
            CRON_FIELDS_HINT.to_owned()
        };
        ScheduleError::new(
            "schedule.cron",
            format!("\"{expression}\" is not a valid cron expression ({e}); {hint}"),
        )
    })?;
    // A pattern such as "0 0 30 2 *" (February 30th) parses but never matches.
    let epoch = DateTime::<Utc>::UNIX_EPOCH.naive_utc();
    if cron.find_next_occurrence(&epoch, true).is_err() {
        return Err(ScheduleError::new(
            "schedule.cron",
            format!("\"{expression}\" never matches a date; {CRON_FIELDS_HINT}"),
        ));
    }
    Ok((expression.to_owned(), cron))
}

fn parse_duration(field: &'static str, text: &str) -> Result<Duration, ScheduleError> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        ScheduleError::new(
            field,
            format!(
                "\"{}\" is not a duration ({e}); write one such as \"6h\", \"30m\" or \
                 \"1h 30m\"",
                text.trim()
            ),
        )
    })
}

fn parse_interval(text: &str) -> Result<Duration, ScheduleError> {
    let interval = parse_duration("schedule.interval", text)?;
    if interval < MIN_INTERVAL {
        return Err(ScheduleError::new(
            "schedule.interval",
            format!(
                "\"{}\" is shorter than the minimum of 1 minute; write \"1m\" or more",
                text.trim()
            ),
        ));
    }
    if i64::try_from(interval.as_millis()).is_err() {
        return Err(ScheduleError::new(
            "schedule.interval",
            format!(
                "\"{}\" is too long; write a duration such as \"30d\"",
                text.trim()
            ),
        ));
    }
    Ok(interval)
}

fn parse_jitter(text: &str, interval: Duration) -> Result<Duration, ScheduleError> {
    let jitter = parse_duration("schedule.jitter", text)?;
    if jitter >= interval {
        return Err(ScheduleError::new(
            "schedule.jitter",
            format!(
                "\"{}\" is not shorter than the interval ({}); write a smaller one such as \
                 \"{}\", or remove it",
                text.trim(),
                humantime::format_duration(interval),
                humantime::format_duration(Duration::from_secs((interval.as_secs() / 10).max(1))),
            ),
        ));
    }
    Ok(jitter)
}

/// What a tick of the runner does with a rule: see [`Schedule::due_runs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// The next due time is still ahead; nothing changes.
    NotDue,
    /// Start one run now.
    Run,
    /// The slot came due while the previous run was still going: record it as skipped.
    SkippedActive,
    /// The slot was missed (found due more than [`ON_TIME_MS`] late) and the rule does not
    /// catch up: no run.
    SkippedMissed,
}

/// The decision for a due slot and the rule's next due time from then on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Due {
    pub decision: Decision,
    /// Milliseconds since the epoch; `None` when the schedule has no more times (a
    /// manual rule, or a cron expression whose last year has passed).
    pub next_due_ms: Option<i64>,
}

impl Schedule {
    /// The first due time strictly after `after_ms` (milliseconds since the epoch, UTC):
    /// for a cron schedule its next match; for an interval, `after_ms + interval + jitter
    /// × rng()`, `after_ms` being the last run (or the rule's creation). `rng` returns
    /// values in [0, 1) and is called only for an interval with a jitter. `None` for a
    /// manual schedule, or when there is no later time.
    pub(crate) fn next_after(&self, after_ms: i64, rng: &mut impl FnMut() -> f64) -> Option<i64> {
        match self {
            Schedule::Manual => None,
            Schedule::Cron(cron) => cron.next_after(after_ms),
            Schedule::Interval(interval) => interval.next_after(after_ms, rng),
        }
    }

    /// What the runner does at `now_ms` with a rule due at `next_due_ms`.
    ///
    /// Not yet due: nothing. Due: one decision however many slots passed since
    /// `next_due_ms` (never one run per missed slot), and the next due time becomes the
    /// first slot after `now_ms`. The decision is [`Decision::SkippedActive`] when the
    /// previous run is still `active`; otherwise a run, unless the slot was missed (more
    /// than [`ON_TIME_MS`] late, as after downtime) and `catch_up` is off.
    pub(crate) fn due_runs(
        &self,
        next_due_ms: i64,
        now_ms: i64,
        catch_up: bool,
        active: bool,
        rng: &mut impl FnMut() -> f64,
    ) -> Due {
        if matches!(self, Schedule::Manual) {
            return Due {
                decision: Decision::NotDue,
                next_due_ms: None,
            };
        }
        if next_due_ms > now_ms {
            return Due {
                decision: Decision::NotDue,
                next_due_ms: Some(next_due_ms),
            };
        }
        let missed = now_ms.saturating_sub(next_due_ms) > ON_TIME_MS;
        let decision = if active {
            Decision::SkippedActive
        } else if missed && !catch_up {
            Decision::SkippedMissed
        } else {
            Decision::Run
        };
        Due {
            decision,
            next_due_ms: self.next_after(now_ms, rng),
        }
    }
}

impl CronSchedule {
    fn next_after(&self, after_ms: i64) -> Option<i64> {
        let after = DateTime::<Utc>::from_timestamp_millis(after_ms)?;
        let mut cursor = after.with_timezone(&self.timezone).naive_local();
        for _ in 0..MAX_PASSED_OVER {
            let slot = self.cron.find_next_occurrence(&cursor, false).ok()?;
            let at = place(self.timezone, slot)?.timestamp_millis();
            if at > after_ms {
                return Some(at);
            }
            // A match in the second pass of a repeated hour: it fired in the first.
            cursor = slot;
        }
        None
    }
}

/// The instant of a local time in `tz`: the earlier of a repeated time, and for a time
/// that a change skips, the first instant after the gap.
fn place(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(at) => Some(at.to_utc()),
        LocalResult::Ambiguous(earlier, _) => Some(earlier.to_utc()),
        LocalResult::None => end_of_gap(tz, local),
    }
}

/// The first instant whose local time in `tz` is at or after `local`, which lies in a gap.
/// Offsets stay within ±26 h, so the local time 26 h before `local` read as UTC is earlier
/// and 26 h after is later; between them the local time only jumps forward (at this gap),
/// and a binary search over whole seconds (the zone database's precision) finds the jump.
fn end_of_gap(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    const SPAN: i64 = 26 * 3600;
    let local_at = |t: i64| {
        DateTime::<Utc>::from_timestamp(t, 0).map(|at| at.with_timezone(&tz).naive_local())
    };
    let guess = local.and_utc().timestamp();
    let (mut before, mut after) = (guess - SPAN, guess + SPAN);
    while after - before > 1 {
        let mid = before + (after - before) / 2;
        if local_at(mid)? >= local {
            after = mid;
        } else {
            before = mid;
        }
    }
    DateTime::<Utc>::from_timestamp(after, 0)
}

impl IntervalSchedule {
    fn next_after(&self, after_ms: i64, rng: &mut impl FnMut() -> f64) -> Option<i64> {
        // Both fit in i64 milliseconds: checked when the schedule was parsed.
        let interval = self.interval.as_millis() as i64;
        let jitter = self.jitter.as_millis() as i64;
        let extra = if jitter > 0 {
            let r = rng();
            let r = if r.is_finite() {
                r.clamp(0.0, 1.0)
            } else {
                0.0
            };
            // In [0, jitter): a value of 1.0 from a careless source stays below the end.
            ((jitter as f64 * r) as i64).min(jitter - 1)
        } else {
            0
        };
        after_ms.checked_add(interval)?.checked_add(extra)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(rfc3339: &str) -> i64 {
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap_or_else(|e| panic!("{rfc3339}: {e}"))
            .timestamp_millis()
    }

    fn show(ms: i64) -> String {
        DateTime::<Utc>::from_timestamp_millis(ms)
            .unwrap()
            .to_rfc3339()
    }

    fn cron(expression: &str, timezone: &str) -> Schedule {
        Schedule::try_from(ScheduleSpec {
            cron: Some(expression.into()),
            timezone: Some(timezone.into()),
            ..ScheduleSpec::default()
        })
        .unwrap_or_else(|e| panic!("{expression} in {timezone}: {e}"))
    }

    fn interval(interval: &str, jitter: Option<&str>) -> Schedule {
        Schedule::try_from(ScheduleSpec {
            interval: Some(interval.into()),
            jitter: jitter.map(Into::into),
            ..ScheduleSpec::default()
        })
        .unwrap()
    }

    fn no_rng() -> f64 {
        panic!("a cron schedule or an interval without jitter draws no random number")
    }

    /// The next `n` due times from `from`, each searched from the one before.
    fn times(schedule: &Schedule, from: &str, n: usize) -> Vec<String> {
        let mut at = ms(from);
        (0..n)
            .map(|_| {
                at = schedule.next_after(at, &mut no_rng).expect("a next time");
                show(at)
            })
            .collect()
    }

    fn next(schedule: &Schedule, from: &str) -> String {
        times(schedule, from, 1).remove(0)
    }

    fn parse_json(json: &str) -> Result<Schedule, String> {
        serde_json::from_str::<Schedule>(json).map_err(|e| e.to_string())
    }

    #[test]
    fn cron_in_utc() {
        let daily = cron("0 3 * * *", "UTC");
        assert_eq!(
            times(&daily, "2026-01-01T00:00:00Z", 2),
            ["2026-01-01T03:00:00+00:00", "2026-01-02T03:00:00+00:00"]
        );
        // Strictly after: from the slot itself, the next one.
        assert_eq!(
            next(&daily, "2026-01-01T03:00:00Z"),
            "2026-01-02T03:00:00+00:00"
        );
        assert_eq!(
            next(&daily, "2026-01-01T02:59:59.999Z"),
            "2026-01-01T03:00:00+00:00"
        );
        assert_eq!(
            times(&cron("*/15 * * * *", "UTC"), "2026-01-01T10:07:30Z", 3),
            [
                "2026-01-01T10:15:00+00:00",
                "2026-01-01T10:30:00+00:00",
                "2026-01-01T10:45:00+00:00"
            ]
        );
        // 2026-01-02 is a Friday.
        assert_eq!(
            times(&cron("0 9 * * MON-FRI", "UTC"), "2026-01-02T10:00:00Z", 2),
            ["2026-01-05T09:00:00+00:00", "2026-01-06T09:00:00+00:00"]
        );
        assert_eq!(
            next(&cron("0 0 1 * *", "UTC"), "2026-01-31T12:00:00Z"),
            "2026-02-01T00:00:00+00:00"
        );
        assert_eq!(
            next(&cron("0 12 29 2 *", "UTC"), "2026-01-01T00:00:00Z"),
            "2028-02-29T12:00:00+00:00"
        );
        assert_eq!(
            next(&cron("@hourly", "UTC"), "2026-01-01T10:00:00Z"),
            "2026-01-01T11:00:00+00:00"
        );
        assert_eq!(
            next(&cron("@daily", "UTC"), "2026-01-01T10:00:00Z"),
            "2026-01-02T00:00:00+00:00"
        );
        // The six-field form with a leading second, and the seven-field one with a year.
        assert_eq!(
            next(&cron("30 0 3 * * *", "UTC"), "2026-01-01T00:00:00Z"),
            "2026-01-01T03:00:30+00:00"
        );
        assert_eq!(
            next(&cron("0 0 3 1 1 * 2030", "UTC"), "2026-01-01T00:00:00Z"),
            "2030-01-01T03:00:00+00:00"
        );
        // Its last year passed: no more times.
        let past = cron("0 0 3 1 1 * 2020", "UTC");
        assert_eq!(
            past.next_after(ms("2026-01-01T00:00:00Z"), &mut no_rng),
            None
        );
    }

    #[test]
    fn cron_spring_forward_fires_once_at_the_end_of_the_gap() {
        // Berlin, 2026-03-29: 02:00 CET becomes 03:00 CEST (01:00Z); 02:30 never happens.
        let berlin = cron("30 2 * * *", "Europe/Berlin");
        assert_eq!(
            times(&berlin, "2026-03-27T12:00:00Z", 3),
            [
                "2026-03-28T01:30:00+00:00", // 02:30 CET
                "2026-03-29T01:00:00+00:00", // 03:00 CEST, the first instant after the gap
                "2026-03-30T00:30:00+00:00", // 02:30 CEST
            ]
        );
        // From the end of the gap itself the skipped slot is behind: the next day.
        assert_eq!(
            next(&berlin, "2026-03-29T01:00:00Z"),
            "2026-03-30T00:30:00+00:00"
        );
        // Every slot inside the gap collapses into one run at its end; none is lost
        // outside it and none repeats.
        assert_eq!(
            times(
                &cron("*/20 * * * *", "Europe/Berlin"),
                "2026-03-29T00:30:00Z",
                5
            ),
            [
                "2026-03-29T00:40:00+00:00", // 01:40 CET
                "2026-03-29T01:00:00+00:00", // 02:00–02:40 skipped, and 03:00 CEST itself
                "2026-03-29T01:20:00+00:00", // 03:20 CEST
                "2026-03-29T01:40:00+00:00",
                "2026-03-29T02:00:00+00:00",
            ]
        );
        // New York, 2026-03-08: 02:00 EST becomes 03:00 EDT (07:00Z).
        assert_eq!(
            next(
                &cron("15 2 * * *", "America/New_York"),
                "2026-03-08T00:00:00Z"
            ),
            "2026-03-08T07:00:00+00:00"
        );
    }

    #[test]
    fn cron_fall_back_fires_once_at_the_first_occurrence() {
        // Berlin, 2026-10-25: 03:00 CEST becomes 02:00 CET (01:00Z); 02:00–03:00 happens
        // twice, first at 00:00Z–01:00Z, then at 01:00Z–02:00Z.
        let berlin = cron("30 2 * * *", "Europe/Berlin");
        assert_eq!(
            times(&berlin, "2026-10-24T12:00:00Z", 2),
            [
                "2026-10-25T00:30:00+00:00", // the first 02:30 (CEST)
                "2026-10-26T01:30:00+00:00", // the next day's 02:30 CET, not 01:30Z today
            ]
        );
        // Searched from inside the second pass, before its 02:30: still the next day.
        assert_eq!(
            next(&berlin, "2026-10-25T01:10:00Z"),
            "2026-10-26T01:30:00+00:00"
        );
        // Hourly: the repeated 02:00 fires once.
        assert_eq!(
            times(
                &cron("0 * * * *", "Europe/Berlin"),
                "2026-10-24T23:30:00Z",
                3
            ),
            [
                "2026-10-25T00:00:00+00:00", // 02:00 CEST
                "2026-10-25T02:00:00+00:00", // 03:00 CET (02:00 CET was the repeat)
                "2026-10-25T03:00:00+00:00",
            ]
        );
    }

    #[test]
    fn cron_in_a_zone_without_dst() {
        let tokyo = cron("0 9 * * *", "Asia/Tokyo");
        // Across the dates on which Europe and America change their clocks, 09:00 JST
        // stays 00:00Z.
        for day in ["2026-03-08", "2026-03-29", "2026-10-25", "2026-11-01"] {
            let midnight = ms(&format!("{day}T00:00:00Z"));
            assert_eq!(
                tokyo.next_after(midnight - 1, &mut no_rng),
                Some(midnight),
                "{day}"
            );
            assert_eq!(
                tokyo.next_after(midnight, &mut no_rng),
                Some(midnight + 86_400_000),
                "{day}"
            );
        }
        // A fixed offset: India, +05:30.
        assert_eq!(
            next(&cron("0 3 * * *", "Asia/Kolkata"), "2026-03-29T00:00:00Z"),
            "2026-03-29T21:30:00+00:00"
        );
    }

    #[test]
    fn interval_with_jitter_stays_in_its_window() {
        let schedule = interval("6h", Some("10m"));
        let six_hours = 6 * 3_600_000;
        let ten_minutes = 600_000;
        let mut draws = [0.0, 0.5, 0.999_999, 0.25, 1.0, f64::NAN].into_iter();
        let mut rng = || draws.next().unwrap();
        let mut last = ms("2026-01-01T00:00:00Z");
        let mut waits = Vec::new();
        for _ in 0..6 {
            let next = schedule.next_after(last, &mut rng).unwrap();
            let wait = next - last;
            assert!(
                (six_hours..six_hours + ten_minutes).contains(&wait),
                "{wait} ms"
            );
            waits.push(wait);
            last = next;
        }
        assert_eq!(
            waits,
            [
                six_hours,
                six_hours + 300_000,
                six_hours + 599_999,
                six_hours + 150_000,
                six_hours + 599_999, // 1.0 stays below the end
                six_hours,           // NaN counts as 0
            ]
        );
        let distinct: std::collections::BTreeSet<_> = waits[..4].iter().collect();
        assert_eq!(distinct.len(), 4);

        // Without jitter: exactly the interval, and no random number drawn.
        let plain = interval("90m", None);
        assert_eq!(plain.next_after(0, &mut no_rng), Some(90 * 60_000));
        assert_eq!(Schedule::Manual.next_after(0, &mut no_rng), None);
    }

    #[test]
    fn downtime_across_five_slots_is_one_run_or_none() {
        let hourly = cron("0 * * * *", "UTC");
        let due = ms("2026-01-01T10:00:00Z");
        // Down from before 10:00 until 14:30: slots 10, 11, 12, 13 and 14 passed.
        let now = ms("2026-01-01T14:30:00Z");
        let after_now = ms("2026-01-01T15:00:00Z");
        let first_after_now = Some(after_now);
        assert_eq!(
            hourly.due_runs(due, now, true, false, &mut no_rng),
            Due {
                decision: Decision::Run,
                next_due_ms: first_after_now
            }
        );
        assert_eq!(
            hourly.due_runs(due, now, false, false, &mut no_rng),
            Due {
                decision: Decision::SkippedMissed,
                next_due_ms: first_after_now
            }
        );
        // The new next due time is not due at the same instant: one run, not five.
        let again = hourly.due_runs(after_now, now, true, false, &mut no_rng);
        assert_eq!(again.decision, Decision::NotDue);
        assert_eq!(again.next_due_ms, first_after_now);

        // An interval: one run, then a full interval from now.
        let every_hour = interval("1h", Some("10m"));
        let mut rng = || 0.5;
        assert_eq!(
            every_hour.due_runs(due, now, true, false, &mut rng),
            Due {
                decision: Decision::Run,
                next_due_ms: Some(now + 3_600_000 + 300_000)
            }
        );
        assert_eq!(
            every_hour
                .due_runs(due, now, false, false, &mut rng)
                .decision,
            Decision::SkippedMissed
        );
    }

    #[test]
    fn a_tick_just_after_the_slot_runs_even_without_catch_up() {
        let hourly = cron("0 * * * *", "UTC");
        let due = ms("2026-01-01T10:00:00Z");
        for late in [0, 1, 30_000, ON_TIME_MS] {
            assert_eq!(
                hourly.due_runs(due, due + late, false, false, &mut no_rng),
                Due {
                    decision: Decision::Run,
                    next_due_ms: Some(ms("2026-01-01T11:00:00Z"))
                },
                "{late} ms late"
            );
        }
        assert_eq!(
            hourly
                .due_runs(due, due + ON_TIME_MS + 1, false, false, &mut no_rng)
                .decision,
            Decision::SkippedMissed
        );
        // Not yet due: nothing changes.
        assert_eq!(
            hourly.due_runs(due, due - 1, true, false, &mut no_rng),
            Due {
                decision: Decision::NotDue,
                next_due_ms: Some(due)
            }
        );
        // A manual rule is never due.
        assert_eq!(
            Schedule::Manual.due_runs(due, due + 1, true, false, &mut no_rng),
            Due {
                decision: Decision::NotDue,
                next_due_ms: None
            }
        );
    }

    #[test]
    fn a_slot_due_while_the_last_run_is_active_is_skipped() {
        let hourly = cron("0 * * * *", "UTC");
        let due = ms("2026-01-01T10:00:00Z");
        for (now, catch_up) in [
            (due + 5_000, false),
            (due + 5_000, true),
            (ms("2026-01-01T13:10:00Z"), true),
        ] {
            let outcome = hourly.due_runs(due, now, catch_up, true, &mut no_rng);
            assert_eq!(outcome.decision, Decision::SkippedActive);
            let next = outcome.next_due_ms.unwrap();
            assert!(next > now);
            assert_eq!(hourly.next_after(now, &mut no_rng), Some(next));
        }
    }

    #[test]
    fn json_shapes_round_trip() {
        let berlin = parse_json(r#"{"cron": "0 3 * * *", "timezone": "Europe/Berlin"}"#).unwrap();
        let Schedule::Cron(c) = &berlin else {
            panic!("{berlin:?}")
        };
        assert_eq!(c.expression, "0 3 * * *");
        assert_eq!(c.timezone, chrono_tz::Europe::Berlin);
        assert_eq!(
            serde_json::to_string(&berlin).unwrap(),
            r#"{"cron":"0 3 * * *","timezone":"Europe/Berlin"}"#
        );

        let jittered = parse_json(r#"{"interval": "6h", "jitter": "10m"}"#).unwrap();
        let Schedule::Interval(i) = &jittered else {
            panic!("{jittered:?}")
        };
        assert_eq!(i.interval, Duration::from_secs(6 * 3600));
        assert_eq!(i.jitter, Duration::from_secs(600));
        assert_eq!(
            serde_json::to_string(&jittered).unwrap(),
            r#"{"interval":"6h","jitter":"10m"}"#
        );
        assert_eq!(
            serde_json::to_string(&interval("90m", None)).unwrap(),
            r#"{"interval":"1h 30m"}"#
        );

        assert_eq!(parse_json("null").unwrap(), Schedule::Manual);
        assert_eq!(serde_json::to_string(&Schedule::Manual).unwrap(), "null");

        // In a rule, an absent schedule is a manual one.
        #[derive(Deserialize)]
        struct Rule {
            #[serde(default)]
            schedule: Schedule,
        }
        let rule: Rule = serde_json::from_str("{}").unwrap();
        assert_eq!(rule.schedule, Schedule::Manual);
        let rule: Rule =
            serde_json::from_str(r#"{"schedule": {"cron": "@daily", "timezone": "UTC"}}"#).unwrap();
        assert!(matches!(rule.schedule, Schedule::Cron(_)));
    }

    /// Parses `json` expecting an error on `field`, and returns the message.
    fn rejected(json: &str, field: &str) -> String {
        let message = parse_json(json).expect_err(json);
        // serde_json adds where in the text the error is.
        let message = match message.rsplit_once(" at line ") {
            Some((message, _)) => message.to_owned(),
            None => message,
        };
        assert!(
            message.starts_with(&format!("{field}: ")),
            "{json}: {message}"
        );
        // The same error without JSON around it, for an API that reports the field apart.
        if let Ok(spec) = serde_json::from_str::<ScheduleSpec>(json) {
            let error = Schedule::try_from(spec).expect_err(json);
            assert_eq!(error.field(), field);
            assert_eq!(error.to_string(), message);
        }
        message
    }

    #[test]
    fn bad_cron_names_the_field_and_the_fix() {
        let message = rejected(r#"{"cron": "0 3 * *", "timezone": "UTC"}"#, "schedule.cron");
        assert!(
            message.starts_with(
                "schedule.cron: \"0 3 * *\" has 4 fields; write minute hour day-of-month \
                 month day-of-week, e.g. \"0 3 * * *\""
            ),
            "{message}"
        );
        let message = rejected(
            r#"{"cron": "0 25 * * *", "timezone": "UTC"}"#,
            "schedule.cron",
        );
        assert!(message.contains("not a valid cron expression"), "{message}");
        assert!(message.contains("e.g. \"0 3 * * *\""), "{message}");
        rejected(
            r#"{"cron": "0 3 * * * * * *", "timezone": "UTC"}"#,
            "schedule.cron",
        );
        let message = rejected(r#"{"cron": "@reboot", "timezone": "UTC"}"#, "schedule.cron");
        assert!(message.contains("@daily"), "{message}");
        let message = rejected(
            r#"{"cron": "*/10 0 3 * * *", "timezone": "UTC"}"#,
            "schedule.cron",
        );
        assert!(message.contains("more than once a minute"), "{message}");
        let message = rejected(
            r#"{"cron": "0 0 30 2 *", "timezone": "UTC"}"#,
            "schedule.cron",
        );
        assert!(message.contains("never matches"), "{message}");
    }

    #[test]
    fn bad_timezone_names_the_field_and_an_example() {
        let message = rejected(
            r#"{"cron": "0 3 * * *", "timezone": "Mars/Olympus"}"#,
            "schedule.timezone",
        );
        assert_eq!(
            message,
            "schedule.timezone: unknown time zone \"Mars/Olympus\"; name an IANA time zone \
             such as \"Europe/Berlin\" or \"UTC\""
        );
        let message = rejected(
            r#"{"cron": "0 3 * * *", "timezone": "europe/berlin"}"#,
            "schedule.timezone",
        );
        assert!(
            message.ends_with("did you mean \"Europe/Berlin\"?"),
            "{message}"
        );
        let message = rejected(r#"{"cron": "0 3 * * *"}"#, "schedule.timezone");
        assert!(
            message.contains("\"Europe/Berlin\" or \"UTC\""),
            "{message}"
        );
        rejected(
            r#"{"interval": "6h", "timezone": "UTC"}"#,
            "schedule.timezone",
        );
    }

    #[test]
    fn bad_interval_and_jitter_name_the_field() {
        let message = rejected(r#"{"interval": "30s"}"#, "schedule.interval");
        assert!(message.contains("minimum of 1 minute"), "{message}");
        assert!(parse_json(r#"{"interval": "1m"}"#).is_ok());
        let message = rejected(r#"{"interval": "six hours"}"#, "schedule.interval");
        assert!(message.contains("\"6h\""), "{message}");

        let message = rejected(r#"{"interval": "6h", "jitter": "6h"}"#, "schedule.jitter");
        assert!(
            message.contains("not shorter than the interval"),
            "{message}"
        );
        assert!(message.contains("\"36m\""), "{message}");
        rejected(r#"{"interval": "6h", "jitter": "7h"}"#, "schedule.jitter");
        rejected(r#"{"interval": "6h", "jitter": "soon"}"#, "schedule.jitter");
        assert!(parse_json(r#"{"interval": "6h", "jitter": "5h 59m"}"#).is_ok());
        rejected(
            r#"{"cron": "0 3 * * *", "timezone": "UTC", "jitter": "5m"}"#,
            "schedule.jitter",
        );
    }

    #[test]
    fn bad_shapes_name_the_field() {
        let message = parse_json(r#"{"cron": "0 3 * * *", "timezone": "UTC", "tz": "UTC"}"#)
            .expect_err("an unknown field");
        assert!(message.contains("unknown field `tz`"), "{message}");
        let message = parse_json(r#"{"interval": "6h", "every": "6h"}"#).expect_err("unknown");
        assert!(message.contains("unknown field `every`"), "{message}");
        let message = rejected(
            r#"{"cron": "0 3 * * *", "timezone": "UTC", "interval": "6h"}"#,
            "schedule",
        );
        assert!(message.contains("keep one"), "{message}");
        let message = rejected("{}", "schedule");
        assert!(message.contains("null for manual runs only"), "{message}");
    }
}
