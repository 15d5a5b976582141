//! `deploy`'s progress while it waits for the bot: on a terminal, a spinner
//! with the bot's status, its latest reason and the time it has taken;
//! otherwise one line per change on standard error (a JSON line with
//! `LOG_FORMAT=json`), so a script's log shows the same steps.

use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::bot::Bot;
use crate::settings::LogFormat;

/// Shows a deploy's progress.
pub(super) struct Progress {
    spinner: Option<ProgressBar>,
    log_format: LogFormat,
    started: Instant,
}

impl Progress {
    /// A spinner when standard error is a terminal (and logs are text),
    /// plain lines otherwise.
    pub(super) fn new(log_format: LogFormat) -> Self {
        let terminal = std::io::stderr().is_terminal() && log_format == LogFormat::Human;
        let spinner = terminal.then(|| {
            let spinner = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
                spinner.set_style(style);
            }
            spinner.enable_steady_tick(Duration::from_millis(100));
            spinner
        });
        Self {
            spinner,
            log_format,
            started: Instant::now(),
        }
    }

    /// The bot changed: shows its status and reason.
    pub(super) fn show(&self, bot: &Bot) {
        let reason = bot.reason.as_deref().unwrap_or_default();
        let text = if reason.is_empty() {
            format!("bot {}: {}", bot.id, bot.status)
        } else {
            format!("bot {}: {} — {reason}", bot.id, bot.status)
        };
        match &self.spinner {
            Some(spinner) => spinner.set_message(text),
            None => {
                let elapsed = format!("{:.1}", self.started.elapsed().as_secs_f64());
                crate::telemetry::notice(
                    self.log_format,
                    tracing::Level::INFO,
                    &format!("{text} ({elapsed} s)"),
                    &[
                        ("bot_id", &bot.id.to_string()),
                        ("status", bot.status.as_str()),
                        ("elapsed_seconds", &elapsed),
                    ],
                );
            }
        }
    }

    /// The wait is over: the spinner leaves the screen to the result.
    pub(super) fn finish(self) {
        if let Some(spinner) = self.spinner {
            spinner.finish_and_clear();
        }
    }
}
