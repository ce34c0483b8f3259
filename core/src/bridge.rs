//! [`log`] crate bridge: lets a Rust job tool keep its `log::info!(...)` calls.

use std::sync::Arc;

use crate::level::Level;
use crate::logger::Logger;
use crate::on_worker::on_worker_thread;

/// A [`log::Log`] that sends records to a kepmlog [`Logger`]: `error!` → Error, `warn!` →
/// Warning, `info!` → Info, `debug!` → Debug, `trace!` → Verbose; the record's target becomes
/// the Category. Records logged on kepmlog's own worker thread are ignored, so the libraries
/// it uses can never feed back into it.
///
/// ```no_run
/// let logger = std::sync::Arc::new(kepmlog::Logger::from_env("MyTool")?);
/// kepmlog::LogBridge::new(logger.clone()).install(log::LevelFilter::Info).ok();
/// log::info!(target: "Scan", "scan started");
/// # Ok::<(), kepmlog::Error>(())
/// ```
pub struct LogBridge {
    logger: Arc<Logger>,
}

impl LogBridge {
    pub fn new(logger: Arc<Logger>) -> LogBridge {
        LogBridge { logger }
    }

    /// Installs the bridge as the process-wide `log` logger with this maximum level.
    pub fn install(self, max: log::LevelFilter) -> Result<(), log::SetLoggerError> {
        // `set_logger` with a leaked box is `set_boxed_logger` without `log`'s std feature;
        // the logger stays installed for the life of the process either way.
        log::set_logger(Box::leak(Box::new(self)))?;
        log::set_max_level(max);
        Ok(())
    }

    /// The kepmlog level for a `log` level.
    pub fn level_for(level: log::Level) -> Level {
        match level {
            log::Level::Error => Level::Error,
            log::Level::Warn => Level::Warning,
            log::Level::Info => Level::Info,
            log::Level::Debug => Level::Debug,
            log::Level::Trace => Level::Verbose,
        }
    }
}

impl log::Log for LogBridge {
    fn enabled(&self, _metadata: &log::Metadata<'_>) -> bool {
        !on_worker_thread()
    }

    fn log(&self, record: &log::Record<'_>) {
        if on_worker_thread() {
            return;
        }
        let message = match record.args().as_str() {
            Some(s) => std::borrow::Cow::Borrowed(s),
            None => std::borrow::Cow::Owned(record.args().to_string()),
        };
        // A dropped or empty record has no better place to be reported than the stats.
        let _ = self
            .logger
            .log(Self::level_for(record.level()), record.target(), &message);
    }

    fn flush(&self) {
        let _ = self.logger.flush(std::time::Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_map_onto_the_six() {
        assert_eq!(LogBridge::level_for(log::Level::Trace), Level::Verbose);
        assert_eq!(LogBridge::level_for(log::Level::Warn), Level::Warning);
        assert_eq!(LogBridge::level_for(log::Level::Error), Level::Error);
    }
}
