//! Logs: human or JSON lines on standard error, filtered by `LOG_LEVEL`.
//! Standard output is left to command results.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::settings::LogFormat;

/// Installs the global subscriber. `level` is an `EnvFilter` directive
/// (`info`, `warn,deployment=debug`); an invalid one falls back to `info`
/// with a warning. Calling it twice keeps the first subscriber.
pub fn init(format: LogFormat, level: &str) {
    let (filter, bad_filter) = match EnvFilter::try_new(level) {
        Ok(filter) => (filter, None),
        Err(e) => (EnvFilter::new("info"), Some(e.to_string())),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, never in files or pipes.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_span_events(FmtSpan::NONE);
    let installed = match format {
        LogFormat::Human => builder.with_target(false).try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
    };
    if installed.is_ok()
        && let Some(error) = bad_filter
    {
        tracing::warn!(
            LOG_LEVEL = level,
            error,
            "LOG_LEVEL is not a valid filter; using info"
        );
    }
}
