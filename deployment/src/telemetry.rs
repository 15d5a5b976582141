//! Logs: human or JSON lines on standard error, filtered by `LOG_LEVEL`.
//! Standard output is left to command results.
//!
//! Whatever `LOG_LEVEL` says, the AWS SDK's and the HTTP stack's own
//! targets never log at `trace`: at that level the SDK writes whole request
//! bodies — a `RunTask` with the bot's meeting URL and password in its
//! container overrides. [`is_capped`] names them.

use tracing::Level;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Crate name prefixes whose `trace` output may hold request or response
/// bodies: the AWS SDK (`aws_smithy_runtime`, `aws_smithy_runtime_api`,
/// `aws_sdk_ecs`, `aws_config`, `aws_sigv4`, …) and the HTTP client stack
/// under it (`hyper`, `hyper_util`, `h2`).
const CAPPED_TARGET_PREFIXES: &[&str] = &["aws_", "hyper", "h2"];

/// Whether an event of `target` at `level` is dropped regardless of the
/// filter: `trace` from the AWS SDK (`aws_*` targets), `hyper` and `h2`.
pub fn is_capped(target: &str, level: &Level) -> bool {
    *level == Level::TRACE
        && CAPPED_TARGET_PREFIXES.iter().any(|prefix| {
            target.starts_with(prefix)
                && (prefix.ends_with('_')
                    || target.len() == prefix.len()
                    || target[prefix.len()..].starts_with("::")
                    || target[prefix.len()..].starts_with('_'))
        })
}

use crate::settings::LogFormat;

/// Writes a notice for the operator on standard error, outside the log
/// filter (the address `serve` listens on, a generated token): a plain
/// paragraph in human format, or one JSON object on one line in JSON
/// format, shaped like the log lines around it, so a log collector reading
/// standard error never meets a line that is not JSON.
pub fn notice(format: LogFormat, level: Level, text: &str, fields: &[(&str, &str)]) {
    match format {
        LogFormat::Human => eprintln!("{text}"),
        LogFormat::Json => {
            let timestamp = time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            let mut values = serde_json::Map::new();
            values.insert("message".into(), one_paragraph(text).into());
            for (key, value) in fields {
                values.insert((*key).into(), (*value).into());
            }
            let line = serde_json::json!({
                "timestamp": timestamp,
                "level": level.as_str(),
                "fields": values,
                "target": "meeboter_deploy",
            });
            eprintln!("{line}");
        }
    }
}

/// A multi-line notice as one line.
fn one_paragraph(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

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
    let cap = filter_fn(|metadata| !is_capped(metadata.target(), metadata.level()));
    let installed = match format {
        LogFormat::Human => builder.with_target(false).finish().with(cap).try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .finish()
            .with(cap)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_and_http_stack_trace_is_capped_at_debug() {
        for target in [
            "aws_smithy_runtime::client::orchestrator",
            "aws_smithy_runtime_api::client",
            "aws_sdk_ecs::operation::run_task",
            "aws_config::profile",
            "hyper",
            "hyper::proto::h1::io",
            "hyper_util::client",
            "h2::codec",
        ] {
            assert!(is_capped(target, &Level::TRACE), "{target}");
            assert!(!is_capped(target, &Level::DEBUG), "{target}");
        }
        for target in [
            "deployment::service",
            "platform_aws::client",
            "h2o",
            "hyperion",
        ] {
            assert!(!is_capped(target, &Level::TRACE), "{target}");
        }
    }
}
