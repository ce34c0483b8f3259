//! `schedule` (exactly one of intervalMinutes, cronExpression, runAt, calendar): the
//! agent's 5-field cron, runAt as one UTC time, calendar entries.

use std::time::SystemTime;

use serde_json::{Map, Value};

use super::finding::{kind, Linter};

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
    pub(super) fn check_schedule(
        &mut self,
        root: &Map<String, Value>,
        has_events: bool,
        now: SystemTime,
    ) {
        let Some(schedule) = root.get("schedule") else {
            if !has_events {
                self.error(
                    "$.schedule",
                    "schedule-missing",
                    "no \"schedule\" and no \"events\": the job would never run on its own".into(),
                    "add \"schedule\": {\"intervalMinutes\": 60} (or cronExpression, runAt, \
                     calendar), or an event trigger",
                );
            }
            return;
        };
        let Some(obj) = schedule.as_object() else {
            self.field_type(
                "$.schedule",
                schedule,
                "an object",
                "exactly one of intervalMinutes, cronExpression, runAt, calendar",
            );
            return;
        };
        self.unknown_fields("$.schedule", obj, SCHEDULE_MODES);
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
        if let Some(v) = obj.get("intervalMinutes").filter(|v| !v.is_null()) {
            if v.as_u64().is_none_or(|n| n == 0) {
                self.error(
                    "$.schedule.intervalMinutes",
                    "schedule-interval",
                    format!("intervalMinutes must be a positive whole number, found {v}"),
                    "e.g. \"intervalMinutes\": 60",
                );
            }
        }
        if let Some(v) = obj.get("cronExpression").filter(|v| !v.is_null()) {
            let r = match v.as_str() {
                Some(s) => check_cron(s),
                None => Err(format!("found {}, not a string", kind(v))),
            };
            if let Err(e) = r {
                self.error(
                    "$.schedule.cronExpression",
                    "schedule-cron",
                    format!("invalid 5-field cron expression: {e}"),
                    "use \"minute hour day-of-month month day-of-week\", e.g. \"0 2 * * 1-5\"",
                );
            }
        }
        if let Some(v) = obj.get("runAt").filter(|v| !v.is_null()) {
            match v
                .as_str()
                .ok_or("not a string".to_string())
                .and_then(parse_utc)
            {
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
        if let Some(v) = obj.get("calendar").filter(|v| !v.is_null()) {
            self.check_calendar(v);
        }
    }

    pub(super) fn check_calendar(&mut self, v: &Value) {
        const FIX: &str =
            "write \"calendar\": [{\"time\": \"02:30\", \"daysOfWeek\": [\"Monday\", \"Friday\"]}]";
        let Some(list) = v.as_array().filter(|l| !l.is_empty()) else {
            self.error(
                "$.schedule.calendar",
                "schedule-calendar",
                format!("calendar must be a non-empty array, found {v}"),
                FIX,
            );
            return;
        };
        for (i, e) in list.iter().enumerate() {
            let p = format!("$.schedule.calendar[{i}]");
            let Some(obj) = e.as_object() else {
                self.error(
                    &p,
                    "schedule-calendar",
                    format!("a calendar entry must be an object, found {}", kind(e)),
                    FIX,
                );
                continue;
            };
            self.unknown_fields(&p, obj, &["time", "daysOfWeek"]);
            let time_ok = obj.get("time").and_then(Value::as_str).is_some_and(|t| {
                let b = t.as_bytes();
                b.len() == 5
                    && b[2] == b':'
                    && t[..2].parse::<u8>().is_ok_and(|h| h < 24)
                    && t[3..].parse::<u8>().is_ok_and(|m| m < 60)
                    && t[..2]
                        .bytes()
                        .chain(t[3..].bytes())
                        .all(|c| c.is_ascii_digit())
            });
            if !time_ok {
                self.error(
                    &format!("{p}.time"),
                    "schedule-calendar",
                    format!(
                        "time must be \"HH:MM\" (24-hour), found {}",
                        obj.get("time").map_or("nothing".into(), |t| t.to_string())
                    ),
                    FIX,
                );
            }
            let days = obj.get("daysOfWeek").and_then(Value::as_array);
            match days {
                Some(d) if !d.is_empty() => {
                    for (j, day) in d.iter().enumerate() {
                        if !day.as_str().is_some_and(is_day) {
                            self.error(
                                &format!("{p}.daysOfWeek[{j}]"),
                                "schedule-calendar",
                                format!("{day} is not a day of the week"),
                                "use English day names: \"Monday\" .. \"Sunday\"",
                            );
                        }
                    }
                }
                _ => self.error(
                    &format!("{p}.daysOfWeek"),
                    "schedule-calendar",
                    "daysOfWeek must be a non-empty array of day names".into(),
                    FIX,
                ),
            }
        }
    }
}

fn is_day(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    DAYS.iter()
        .any(|d| *d == l || (l.len() == 3 && d.starts_with(&l)))
}

/// Checks a standard 5-field cron expression (minute hour day-of-month month day-of-week),
/// with lists, ranges, steps, month and day names, and `?`, `L`, `W`, `#` where Quartz-style
/// schedulers accept them.
pub fn check_cron(expr: &str) -> Result<(), String> {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "{expr:?} has {} field(s), expected 5 (seconds and years are not supported)",
            fields.len()
        ));
    }
    const MONTHS: &[&str] = &[
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ];
    const DOWS: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
    let specs: [(&str, u32, u32, &[&str], u32); 5] = [
        ("minute", 0, 59, &[], 0),
        ("hour", 0, 23, &[], 0),
        ("day-of-month", 1, 31, &[], 0),
        ("month", 1, 12, MONTHS, 1),
        ("day-of-week", 0, 7, DOWS, 0),
    ];
    for (field, (name, lo, hi, names, base)) in fields.iter().zip(specs) {
        let value = |s: &str| -> Result<u32, String> {
            if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
                return Ok(i as u32 + base);
            }
            let n: u32 = s
                .parse()
                .map_err(|_| format!("{name} field {field:?}: {s:?} is not a number"))?;
            if n < lo || n > hi {
                return Err(format!("{name} field {field:?}: {n} is outside {lo}-{hi}"));
            }
            Ok(n)
        };
        for item in field.split(',') {
            if item == "?" && (name == "day-of-month" || name == "day-of-week") {
                continue;
            }
            let special = match name {
                "day-of-month" => {
                    item == "L"
                        || item == "LW"
                        || item.strip_suffix('W').is_some_and(|d| value(d).is_ok())
                }
                "day-of-week" => {
                    item == "L"
                        || item.strip_suffix('L').is_some_and(|d| value(d).is_ok())
                        || item.split_once('#').is_some_and(|(d, k)| {
                            value(d).is_ok() && k.parse::<u8>().is_ok_and(|k| (1..=5).contains(&k))
                        })
                }
                _ => false,
            };
            if special {
                continue;
            }
            let (range, step) = match item.split_once('/') {
                Some((r, s)) => {
                    let step: u32 = s.parse().ok().filter(|s| *s > 0).ok_or(format!(
                        "{name} field {field:?}: step {s:?} must be a positive number"
                    ))?;
                    (r, Some(step))
                }
                None => (item, None),
            };
            if range == "*" {
                continue;
            }
            if range.is_empty() {
                return Err(format!("{name} field {field:?} has an empty item"));
            }
            match range.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (value(a)?, value(b)?);
                    if a > b {
                        return Err(format!(
                            "{name} field {field:?}: range {a}-{b} runs backwards"
                        ));
                    }
                }
                None => {
                    value(range)?;
                    let _ = step;
                }
            }
        }
    }
    Ok(())
}

/// Parses `YYYY-MM-DDTHH:MM[:SS[.fff]]` followed by `Z` or `+00:00`.
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
    let (date, time) = body
        .split_once(['T', 't', ' '])
        .ok_or("expected a date and a time separated by T")?;
    let d: Vec<&str> = date.split('-').collect();
    let num = |x: &str, len: usize, what: &str| -> Result<u64, String> {
        if x.len() != len || !x.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("bad {what} {x:?}"));
        }
        x.parse().map_err(|_| format!("bad {what} {x:?}"))
    };
    if d.len() != 3 {
        return Err("the date must be YYYY-MM-DD".into());
    }
    let (y, mo, da) = (
        num(d[0], 4, "year")?,
        num(d[1], 2, "month")?,
        num(d[2], 2, "day")?,
    );
    let t: Vec<&str> = time.split(':').collect();
    if t.len() < 2 || t.len() > 3 {
        return Err("the time must be HH:MM or HH:MM:SS".into());
    }
    let h = num(t[0], 2, "hour")?;
    let mi = num(t[1], 2, "minute")?;
    let sec = match t.get(2) {
        Some(s) => {
            let whole = s.split_once('.').map_or(*s, |(w, frac)| {
                if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
                    "x"
                } else {
                    w
                }
            });
            num(whole, 2, "second")?
        }
        None => 0,
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let mdays = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&mo) || da == 0 || da > mdays[(mo - 1) as usize] {
        return Err(format!("{date} is not a calendar date"));
    }
    if h > 23 || mi > 59 || sec > 59 {
        return Err(format!("{time} is not a time of day"));
    }
    match zone {
        "Z" => {}
        "offset" => {
            return Err("the time has a non-UTC offset: convert it to UTC and end with Z".into())
        }
        _ => return Err("no time zone: end with Z to say UTC".into()),
    }
    // days_from_civil (Howard Hinnant).
    let (yy, m) = (y as i64 - i64::from(mo <= 2), mo as i64);
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + da as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + (h * 3600 + mi * 60 + sec) as i64;
    let secs =
        u64::try_from(secs).map_err(|_| "dates before 1970 are not supported".to_string())?;
    Ok(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs))
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
        ] {
            assert!(check_cron(bad).is_err(), "{bad}");
        }
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
    }
}
