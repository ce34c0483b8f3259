//! What a flush or a shutdown could not deliver: the one answer every binding maps.

use crate::error::Error;

/// The result of [`Logger::flush_outcome`](crate::Logger::flush_outcome) and
/// [`Logger::shutdown_outcome`](crate::Logger::shutdown_outcome), the same in every binding
/// (see the README's "Flush and shutdown"). Counts are of records accepted by `log()`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[must_use = "an outcome says what was not delivered; check it or call into_result()"]
pub struct Outcome {
    /// Not acknowledged by the broker at the deadline. After a flush they stay queued and
    /// are still sent; after a shutdown they are given up (counted as failed in the stats
    /// and written to stderr unless that is turned off).
    pub undelivered: u64,
    /// Refused by the broker (PUBACK reason code >= 0x80) since the previous flush or
    /// shutdown: the job may not publish there. Never retried.
    pub denied: u64,
    /// The topics of those refusals, each once, in the order first refused.
    pub denied_topics: Vec<String>,
    /// Failed for good since the previous flush or shutdown for another reason than the
    /// deadline (a record larger than the broker's Maximum Packet Size). Never retried.
    pub undeliverable: u64,
    /// The last connection or delivery error, if any: what to look at when undelivered > 0.
    pub last_error: Option<String>,
}

impl Outcome {
    /// Every record accepted before the call was acknowledged.
    pub fn is_complete(&self) -> bool {
        self.undelivered == 0 && self.denied == 0 && self.undeliverable == 0
    }

    /// The outcome as an error, for callers that want `?`. One order for every binding: a
    /// denial first (it needs a change to the job file), then records given up, then the
    /// deadline.
    pub fn error(&self) -> Option<Error> {
        if self.denied > 0 {
            Some(Error::Denied {
                count: self.denied,
                topics: self.denied_topics.clone(),
            })
        } else if self.undeliverable > 0 {
            Some(Error::Undeliverable {
                count: self.undeliverable,
                last_error: self.last_error.clone(),
            })
        } else if self.undelivered > 0 {
            Some(Error::Timeout {
                undelivered: self.undelivered,
                last_error: self.last_error.clone(),
            })
        } else {
            None
        }
    }

    /// `Ok(())` when complete, otherwise [`Outcome::error`].
    pub fn into_result(self) -> Result<(), Error> {
        match self.error() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn one_order_of_errors() {
        assert_eq!(Outcome::default().error(), None);
        assert!(Outcome::default().is_complete());
        let all = Outcome {
            undelivered: 3,
            denied: 2,
            denied_topics: vec!["Other".into()],
            undeliverable: 1,
            last_error: Some("x".into()),
        };
        assert!(!all.is_complete());
        assert_eq!(all.error().map(|e| e.kind()), Some(ErrorKind::Denied));
        let no_denial = Outcome {
            denied: 0,
            ..all.clone()
        };
        assert_eq!(
            no_denial.error().map(|e| e.kind()),
            Some(ErrorKind::Undeliverable)
        );
        let only_late = Outcome {
            undelivered: 3,
            ..Outcome::default()
        };
        assert_eq!(
            only_late.clone().into_result(),
            Err(Error::Timeout {
                undelivered: 3,
                last_error: None
            })
        );
    }
}
