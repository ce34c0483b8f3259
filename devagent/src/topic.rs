//! MQTT topic names and filters (MQTT v5 section 4.7): the one place lint, the broker's ACL
//! and `run` ask what a topic is and what a filter matches.
//!
//! The wildcard rules come from rumqttc's codec (`valid_filter`, `valid_topic`). Matching is
//! done here: rumqttc's `matches` refuses every topic that starts with `$`, also for a filter
//! such as `$SYS/monitor/+` that the spec says matches `$SYS/monitor/Clients`.

use rumqttc::v5::mqttbytes::{valid_filter, valid_topic};

/// Characters the devagent refuses in any topic: U+0000 is forbidden by the spec, and a
/// line break or surrounding white space would end or change a line of Mosquitto's ACL file.
fn plain_text(s: &str) -> bool {
    !s.is_empty() && s.trim() == s && !s.contains(['\n', '\r', '\0'])
}

/// A topic name one may publish to: non-empty, no wildcard, no U+0000.
pub fn is_topic_name(s: &str) -> bool {
    plain_text(s) && valid_topic(s)
}

/// A topic filter (ACL entry or subscription): `+` only as a whole level, `#` only as the
/// whole last level.
pub fn is_topic_filter(s: &str) -> bool {
    plain_text(s) && valid_filter(s)
}

/// Whether `filter` matches the topic name `topic`. A `+` or `#` in the first level does not
/// match topics that start with `$` (section 4.7.2).
pub fn matches(filter: &str, topic: &str) -> bool {
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    let mut first = true;
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) | (Some("+"), Some(_)) if first && topic.starts_with('$') => {
                return false
            }
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
        first = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The examples of MQTT v5 section 4.7.1 and 4.7.2, in the spec's order.
    #[test]
    fn the_spec_examples() {
        // 4.7.1.2 multi-level wildcard
        for t in [
            "sport/tennis/player1",
            "sport/tennis/player1/ranking",
            "sport/tennis/player1/score/wimbledon",
        ] {
            assert!(matches("sport/tennis/player1/#", t), "{t}");
        }
        assert!(matches("sport/#", "sport"));
        assert!(is_topic_filter("#"));
        assert!(is_topic_filter("sport/tennis/#"));
        assert!(!is_topic_filter("sport/tennis#"));
        assert!(!is_topic_filter("sport/tennis/#/ranking"));
        // 4.7.1.3 single-level wildcard
        assert!(matches("sport/tennis/+", "sport/tennis/player1"));
        assert!(matches("sport/tennis/+", "sport/tennis/player2"));
        assert!(!matches("sport/tennis/+", "sport/tennis/player1/ranking"));
        assert!(!matches("sport/+", "sport"));
        assert!(matches("sport/+", "sport/"));
        for f in ["+", "+/tennis/#", "sport/+/player1"] {
            assert!(is_topic_filter(f), "{f}");
        }
        assert!(!is_topic_filter("sport+"));
        assert!(matches("+/+", "/finance"));
        assert!(matches("/+", "/finance"));
        assert!(!matches("+", "/finance"));
        // 4.7.2 topics beginning with $
        assert!(!matches("#", "$SYS/broker/clients"));
        assert!(!matches("+/monitor/Clients", "$SYS/monitor/Clients"));
        assert!(matches("$SYS/#", "$SYS/broker/clients"));
        assert!(matches("$SYS/monitor/+", "$SYS/monitor/Clients"));
    }

    #[test]
    fn names_and_the_devagents_own_rules() {
        assert!(is_topic_name("KeeperLogger"));
        assert!(is_topic_name("Jobs/my-job/events"));
        assert!(matches("KeeperLogger", "KeeperLogger"));
        assert!(matches("Jobs/+/events", "Jobs/a/events"));
        assert!(matches("Jobs/#", "Jobs/a/events"));
        assert!(!matches("Jobs/a", "Jobs/a/events"));
        for bad in ["", "a/+", "a/#", " KeeperLogger", "a\nb", "a\0"] {
            assert!(!is_topic_name(bad), "{bad:?}");
        }
        for bad in ["", " KeeperLogger", "KeeperLogger ", "a\nb", "a\rb", "a\0"] {
            assert!(!is_topic_filter(bad), "{bad:?}");
        }
    }
}
