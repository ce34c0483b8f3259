//! `schedule` (exactly one of intervalMinutes, cronExpression, runAt, calendar): the
//! agent's 5-field cron, runAt as one UTC time, calendar entries.

use std::time::SystemTime;

use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::PrimitiveDateTime;

use serde_json::{Map, Value};

use super::finding::Linter;

const SCHEDULE_MODES: &[&str] = &["intervalMinutes", "cronExpression", "runAt", "calendar"];
const DAYS: &[&str] = &[
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];

impl Linter<'_> {
    /// That the job runs at all, one mode, cron syntax, runAt in the future, calendar day
    /// names. The types and ranges of the fields are the schema's.
    pub(super) fn check_schedule(
        &mut self,
        root: &Map<String, Value>,
        has_events: bool,
        now: SystemTime,
    ) {
        let Some(schedule) = root.get("schedule") else {
            // "Jobs: Definition & Format": the API is a trigger of its own, so such a job is
            // valid; it is only likely to be a mistake.
            if !has_events {
                self.warning(
                    "$.schedule",
                    "schedule-missing",
                    "no \"schedule\" and no \"events\": the job runs only when triggered \
                     through the API (POST /api/Jobs/{id}/run or /trigger)"
                        .into(),
                    "add \"schedule\": {\"intervalMinutes\": 60} (or cronExpression, runAt, \
                     calendar), or \"events\": [\"Startup\"], unless the job is meant to run on \
                     demand only",
                );
            }
            return;
        };
        let Some(obj) = schedule.as_object() else {
            return;
        };
        let modes: Vec<&str> = SCHEDULE_MODES
            .iter()
            .copied()
            .filter(|m| obj.get(*m).is_some_and(|v| !v.is_null()))
            .collect();
        if modes.len() != 1 {
            let msg = if modes.is_empty() {
                "the schedule sets no mode".to_string()
            } else {
                format!("the schedule sets several modes: {}", modes.join(", "))
            };
            self.error(
                "$.schedule",
                "schedule-mode",
                msg,
                "keep exactly one of intervalMinutes, cronExpression, runAt, calendar",
            );
        }
        if let Some(Value::String(s)) = obj.get("cronExpression") {
            if let Err(e) = check_cron(s) {
                self.error(
                    "$.schedule.cronExpression",
                    "schedule-cron",
                    format!("invalid 5-field cron expression: {e}"),
                    "use \"minute hour day-of-month month day-of-week\", e.g. \"0 2 * * 1-5\"",
                );
            }
        }
        if let Some(v @ Value::String(s)) = obj.get("runAt") {
            match parse_utc(s) {
                Ok(t) => {
                    if t < now {
                        self.warning(
                            "$.schedule.runAt",
                            "schedule-run-at-past",
                            format!("runAt {v} is in the past: the job will not run"),
                            "set a future time",
                        );
                    }
                }
                Err(e) => self.error(
                    "$.schedule.runAt",
                    "schedule-run-at",
                    format!("runAt {v} is not an ISO-8601 UTC time: {e}"),
                    "write e.g. \"2030-01-31T02:00:00Z\" (UTC, with the Z)",
                ),
            }
        }
        let entries = obj.get("calendar").and_then(Value::as_array);
        for (i, e) in entries.into_iter().flatten().enumerate() {
            let has = |k: &str| e.get(k).is_some_and(|v| !v.is_null());
            if e.is_object() && !has("daysOfWeek") && !has("daysOfMonth") {
                // The vendor's entries always name days; what the agent does without them is
                // not documented.
                self.warning(
                    &format!("$.schedule.calendar[{i}]"),
                    "schedule-calendar",
                    "the calendar entry names no days (daysOfWeek or daysOfMonth): when it \
                     runs is undocumented"
                        .into(),
                    "add \"daysOfWeek\": [\"Monday\", ...] or \"daysOfMonth\": [1, 15]",
                );
            }
            let days = e.get("daysOfWeek").and_then(Value::as_array);
            for (j, day) in days.into_iter().flatten().enumerate() {
                if day.as_str().is_some_and(|d| !is_day(d)) {
                    self.error(
                        &format!("$.schedule.calendar[{i}].daysOfWeek[{j}]"),
                        "schedule-calendar",
                        format!("{day} is not a day of the week"),
                        "use English day names: \"Monday\" .. \"Sunday\"",
                    );
                }
            }
        }
    }
}

fn is_day(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    DAYS.iter()
        .any(|d| *d == l || (l.len() == 3 && d.starts_with(&l)))
}

/// The five fields of the agent's cron, in order.
const CRON_FIELDS: [&str; 5] = ["minute", "hour", "day-of-month", "month", "day-of-week"];

/// Checks a standard 5-field Unix cron expression (minute hour day-of-month month
/// day-of-week), with lists, ranges, steps, month and day names, and `?`, `L`, `W`, `#`
/// where Quartz-style schedulers accept them. croner parses it; a failure is then narrowed
/// down to the field that croner refuses, so the finding can name it.
pub fn check_cron(expr: &str) -> Result<(), String> {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "{expr:?} has {} field(s), expected 5 (seconds and years are not supported)",
            fields.len()
        ));
    }
    // Nicknames such as @daily are not part of the agent's five-field form.
    if expr.contains('@') {
        return Err(format!(
            "{expr:?}: @ nicknames are not supported, write the five fields"
        ));
    }
    // croner skips empty list items ("1,,2", ","): they are typos, and a stricter
    // scheduler would refuse the job.
    for (field, name) in fields.iter().zip(CRON_FIELDS) {
        // "/10" too: croner's sloppy ranges (below) would read it as "*/10".
        if field.split(',').any(|i| i.is_empty() || i.starts_with('/')) {
            return Err(format!("{name} field {field:?} has an empty item"));
        }
    }
    let parse = |e: &str| cron_parser().parse(e).map(|_| ());
    let Err(whole) = parse(expr) else {
        return Ok(());
    };
    for (i, (field, name)) in fields.iter().zip(CRON_FIELDS).enumerate() {
        let mut alone = ["*"; 5];
        alone[i] = field;
        if let Err(e) = parse(&alone.join(" ")) {
            return Err(format!("{name} field {field:?}: {}", cron_reason(&e)));
        }
    }
    Err(cron_reason(&whole))
}

fn cron_parser() -> croner::parser::CronParser {
    use croner::parser::{CronParser, Seconds, Year};
    // Sloppy ranges: "5/10" (from 5, every 10), which Quartz-style schedulers accept and
    // lint accepted before croner; strict croner only takes "*/10" or "0-59/10".
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .sloppy_ranges(true)
        .build()
}

/// croner's message without its "Component error: " style prefix.
fn cron_reason(e: &croner::errors::CronError) -> String {
    use croner::errors::CronError;
    match e {
        CronError::InvalidPattern(m)
        | CronError::IllegalCharacters(m)
        | CronError::ComponentError(m) => m.clone(),
        other => other.to_string(),
    }
}

/// `2030-01-31T02:00[:00[.fff]]`: what stands before the zone in a runAt time.
const RUN_AT: &[BorrowedFormatItem<'_>] = format_description!(
    "[year]-[month]-[day]T[hour]:[minute][optional [:[second][optional [.[subsecond]]]]]"
);

/// Parses `YYYY-MM-DDTHH:MM[:SS[.fff]]` followed by `Z` or `+00:00` (`t` or a space may
/// stand for the `T`). A fraction of a second is accepted and dropped: the agent schedules
/// whole seconds.
pub fn parse_utc(s: &str) -> Result<SystemTime, String> {
    let (body, zone) = if let Some(b) = s.strip_suffix('Z').or_else(|| s.strip_suffix('z')) {
        (b, "Z")
    } else if s.len() > 6 && (s.ends_with("+00:00") || s.ends_with("-00:00")) {
        (&s[..s.len() - 6], "Z")
    } else if s.len() > 6
        && matches!(s.as_bytes()[s.len() - 6], b'+' | b'-')
        && s.as_bytes()[s.len() - 3] == b':'
    {
        (&s[..s.len() - 6], "offset")
    } else {
        (s, "")
    };
    let body = match body.as_bytes().get(10) {
        Some(b't' | b' ') => format!("{}T{}", &body[..10], &body[11..]),
        _ => body.to_string(),
    };
    let t = PrimitiveDateTime::parse(&body, RUN_AT).map_err(|e| match e {
        time::error::Parse::TryFromParsed(e) => {
            format!("{body} is not a calendar date and time ({e})")
        }
        e => format!("expected YYYY-MM-DDTHH:MM:SS ({e})"),
    })?;
    match zone {
        "Z" => {}
        "offset" => {
            return Err("the time has a non-UTC offset: convert it to UTC and end with Z".into())
        }
        _ => return Err("no time zone: end with Z to say UTC".into()),
    }
    let t = t.replace_nanosecond(0).map_err(|e| e.to_string())?;
    Ok(SystemTime::from(t.assume_utc()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_expressions() {
        for ok in [
            "* * * * *",
            "0 2 * * 1-5",
            "*/15 0-23/2 1,15 JAN-DEC/3 MON-FRI",
            "30 4 ? * SUN",
            "0 0 L * ?",
            "0 0 15W * *",
            "0 0 * * 5L",
            "0 0 * * 1#2",
            "59 23 31 12 7",
        ] {
            assert_eq!(check_cron(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "* * * *",
            "0 0 * * * *",
            "60 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "* * * 13 *",
            "* * * * 8",
            "*/0 * * * *",
            "5-1 * * * *",
            "a * * * *",
            ", * * * *",
            "* * * FOO *",
            "@daily",
            "0 0 32 * *",
            "0 0 * * 1#6",
            "0-60 * * * *",
            "0 0 ? * ?x",
            "1,,2 * * * *",
            "/10 * * * *",
        ] {
            assert!(check_cron(bad).is_err(), "{bad}");
        }
        for ok in [
            "0 0 * * SUN-SAT",
            "0 0 LW * *",
            "0 12 1-7 * MON",
            "0 0 1 jan,jul *",
        ] {
            assert_eq!(check_cron(ok), Ok(()), "{ok}");
        }
        // The finding names the field and what is wrong with it.
        for (bad, field) in [
            ("60 * * * *", "minute field \"60\""),
            ("* 24 * * *", "hour field \"24\""),
            ("* * 0 * *", "day-of-month field \"0\""),
            ("* * * 13 *", "month field \"13\""),
            ("* * * * 8", "day-of-week field \"8\""),
        ] {
            let e = check_cron(bad).expect_err(bad);
            assert!(e.starts_with(field), "{bad}: {e}");
        }
        let e = check_cron("0 0 * * * *").expect_err("six fields");
        assert!(e.contains("has 6 field(s), expected 5"), "{e}");
    }

    #[test]
    fn utc_times() {
        let t = parse_utc("2000-02-29T00:00:00Z").expect("valid");
        assert_eq!(crate::timefmt::rfc3339_utc(t), "2000-02-29T00:00:00.000Z");
        let t = parse_utc("2030-01-31T02:03:04.5+00:00").expect("valid");
        assert_eq!(crate::timefmt::rfc3339_utc(t), "2030-01-31T02:03:04.000Z");
        assert!(parse_utc("2030-01-31T02:03").is_err());
        assert!(parse_utc("2030-01-31T02:03:00+02:00").is_err());
        assert!(parse_utc("2031-02-29T00:00:00Z").is_err());
        assert!(parse_utc("2030-1-31T02:03:00Z").is_err());
        assert!(parse_utc("tomorrow").is_err());
        let t = parse_utc("2030-01-31 02:03Z").expect("HH:MM and a space");
        assert_eq!(crate::timefmt::rfc3339_utc(t), "2030-01-31T02:03:00.000Z");
        assert!(parse_utc("2030-01-31T24:00:00Z").is_err());
        assert!(parse_utc("2030-02-30T00:00:00Z").is_err());
        assert!(parse_utc("2030-01-31T02:03:00")
            .expect_err("no zone")
            .contains("end with Z"));
        assert!(parse_utc("2030-01-31T02:03:00+02:00")
            .expect_err("offset")
            .contains("non-UTC offset"));
    }
}
