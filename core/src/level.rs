use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// The six KeeperLogger levels, with their wire values (docs/kepm-contract.md).
///
/// kepmlog always sends the number. Note that `Verbose` (5) is the *least* severe level even
/// though its number is the highest: order by [`Level::severity`], not by the wire value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Level {
    Debug = 0,
    Info = 1,
    Warning = 2,
    Error = 3,
    Critical = 4,
    Verbose = 5,
}

impl Level {
    /// Every level, in wire order.
    pub const ALL: [Level; 6] = [
        Level::Debug,
        Level::Info,
        Level::Warning,
        Level::Error,
        Level::Critical,
        Level::Verbose,
    ];

    /// The number put in `MetaData.LogLevel`.
    pub fn wire_value(self) -> u8 {
        self as u8
    }

    /// The level with this wire value, if any.
    pub fn from_wire(value: i64) -> Option<Level> {
        match value {
            0 => Some(Level::Debug),
            1 => Some(Level::Info),
            2 => Some(Level::Warning),
            3 => Some(Level::Error),
            4 => Some(Level::Critical),
            5 => Some(Level::Verbose),
            _ => None,
        }
    }

    /// The vendor's name of the level, as the operator's log view shows it.
    pub fn name(self) -> &'static str {
        match self {
            Level::Debug => "Debug",
            Level::Info => "Info",
            Level::Warning => "Warning",
            Level::Error => "Error",
            Level::Critical => "Critical",
            Level::Verbose => "Verbose",
        }
    }

    /// 0 (Verbose) .. 5 (Critical): for threshold comparisons.
    pub fn severity(self) -> u8 {
        match self {
            Level::Verbose => 0,
            Level::Debug => 1,
            Level::Info => 2,
            Level::Warning => 3,
            Level::Error => 4,
            Level::Critical => 5,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Level {
    type Err = Error;

    /// Accepts the vendor's names, the usual aliases of other logging libraries
    /// (`warn`, `err`, `fatal`, `trace`, ...) in any case, and the wire numbers `0`..`5`.
    fn from_str(s: &str) -> Result<Level, Error> {
        let t = s.trim().to_ascii_lowercase();
        let level = match t.as_str() {
            "debug" | "dbg" | "0" => Level::Debug,
            "info" | "information" | "informational" | "notice" | "1" => Level::Info,
            "warning" | "warn" | "2" => Level::Warning,
            "error" | "err" | "3" => Level::Error,
            "critical" | "crit" | "fatal" | "emergency" | "alert" | "4" => Level::Critical,
            "verbose" | "trace" | "5" => Level::Verbose,
            _ => return Err(Error::InvalidLevel(s.to_string())),
        };
        Ok(level)
    }
}

impl TryFrom<i64> for Level {
    type Error = Error;
    fn try_from(value: i64) -> Result<Level, Error> {
        Level::from_wire(value).ok_or_else(|| Error::InvalidLevel(value.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_values_follow_the_spec() {
        let wire: Vec<u8> = Level::ALL.iter().map(|l| l.wire_value()).collect();
        assert_eq!(wire, vec![0, 1, 2, 3, 4, 5]);
        for l in Level::ALL {
            assert_eq!(Level::from_wire(l.wire_value() as i64), Some(l));
            assert_eq!(l.name().parse::<Level>().ok(), Some(l));
        }
        assert_eq!(Level::from_wire(6), None);
        assert_eq!(Level::from_wire(-1), None);
    }

    #[test]
    fn names_and_aliases_parse() {
        assert_eq!("WARN".parse::<Level>().ok(), Some(Level::Warning));
        assert_eq!("fatal".parse::<Level>().ok(), Some(Level::Critical));
        assert_eq!("trace".parse::<Level>().ok(), Some(Level::Verbose));
        assert_eq!("3".parse::<Level>().ok(), Some(Level::Error));
        let err = "loud".parse::<Level>().unwrap_err();
        assert!(err.to_string().contains("Debug, Info, Warning"), "{err}");
    }

    #[test]
    fn verbose_is_least_severe() {
        assert!(Level::Verbose.severity() < Level::Debug.severity());
        assert!(Level::Error.severity() < Level::Critical.severity());
    }
}
