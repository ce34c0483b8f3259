//! UTC timestamps as the devagent prints them; the calendar arithmetic is the `time` crate's.

use std::time::{SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;

/// `t` in UTC. Times before 1970 show as 1970 and those past what `time` can represent
/// (year 9999) as its epoch: only clocks that are badly wrong produce them, and a log view
/// must not panic on one.
fn utc(t: SystemTime) -> OffsetDateTime {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    time::Duration::try_from(since)
        .ok()
        .and_then(|d| OffsetDateTime::UNIX_EPOCH.checked_add(d))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `2026-01-31T12:34:56.789Z`
pub fn rfc3339_utc(t: SystemTime) -> String {
    let t = utc(t);
    format!(
        "{:04}-{:02}-{:02}T{}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        hms(&t)
    )
}

/// `12:34:56.789` (UTC)
pub fn hms_millis_utc(t: SystemTime) -> String {
    hms(&utc(t))
}

fn hms(t: &OffsetDateTime) -> String {
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn known_instants() {
        assert_eq!(rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(951_782_400_123); // leap day 2000
        assert_eq!(rfc3339_utc(t), "2000-02-29T00:00:00.123Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_767_225_599);
        assert_eq!(rfc3339_utc(t), "2025-12-31T23:59:59.000Z");
        assert_eq!(hms_millis_utc(t), "23:59:59.000");
        assert_eq!(
            rfc3339_utc(UNIX_EPOCH - Duration::from_secs(1)),
            "1970-01-01T00:00:00.000Z"
        );
    }
}
