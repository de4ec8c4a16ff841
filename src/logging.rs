//! Where and how the node logs: stderr, as text or JSON lines, colour only
//! when stderr is a terminal.
//!
//! Executors never wait on stderr (a slow journald or a full pipe would
//! stall every request on the core): lines go to a writer thread through
//! a bounded queue ([`LOG_LINES_BUFFERED_MAX`]); when it is full, lines are
//! dropped rather than blocking. The returned [`LogGuard`] flushes what is
//! queued when the process ends normally.
//!
//! openraft logs every vote and membership step at info; its lines are
//! kept to warnings unless the filter names `openraft`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::flags::LogFormat;
use crate::limits::LOG_LINES_BUFFERED_MAX;

/// Keeps the writer thread; dropping it flushes the queued lines.
#[must_use = "dropping the guard stops the log writer"]
pub struct LogGuard(#[allow(dead_code)] tracing_appender::non_blocking::WorkerGuard);

/// The filter for `level` (a level or a full directive list); openraft at
/// warn unless `level` mentions it.
pub fn filter_directives(level: &str) -> String {
    let level = level.trim();
    if level.contains("openraft") {
        level.to_string()
    } else {
        format!("{level},openraft=warn")
    }
}

/// Installs the node's logger. `SHOAL_LOG`, when set, overrides `level`.
pub fn init(format: LogFormat, level: &str) -> Result<LogGuard, String> {
    let level = std::env::var("SHOAL_LOG").unwrap_or_else(|_| level.to_string());
    let filter = EnvFilter::try_new(filter_directives(&level))
        .map_err(|e| format!("invalid --log-level {level:?}: {e}"))?;
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(LOG_LINES_BUFFERED_MAX)
        .thread_name("shoal-log")
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(std::io::stderr().is_terminal());
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    installed.map_err(|e| format!("installing the logger: {e}"))?;
    Ok(LogGuard(guard))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openraft_is_quiet_unless_named() {
        assert_eq!(filter_directives("info"), "info,openraft=warn");
        assert_eq!(filter_directives(" debug "), "debug,openraft=warn");
        assert_eq!(
            filter_directives("info,openraft=debug"),
            "info,openraft=debug"
        );
        assert!(EnvFilter::try_new(filter_directives("info")).is_ok());
    }
}
