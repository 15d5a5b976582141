//! How command results look: text for people, JSON for scripts.

use std::fmt::Write as _;

use serde::Serialize;

use crate::ReconcileReport;
use crate::bot::{Bot, HistoryEntry};
use crate::error::ServiceError;
use crate::platforms::{AutoDetection, Choice, PlatformListing};
use crate::service::{BotPage, LiveStatus, PoolSummary};

/// Prints results as text or JSON.
pub(super) struct Printer {
    pub(super) json: bool,
}

impl Printer {
    /// Prints `value`: as JSON, or as the text `human` renders.
    pub(super) fn print<T: Serialize>(&self, value: &T, human: impl FnOnce(&T) -> String) {
        if self.json {
            match serde_json::to_string_pretty(value) {
                Ok(text) => println!("{text}"),
                Err(e) => eprintln!("error: cannot render the result as JSON: {e}"),
            }
        } else {
            print!("{}", human(value));
        }
    }

    /// Prints an error: on standard error as text, or on standard output as
    /// `{"error": {...}}` with `--json`.
    pub(super) fn error(&self, error: &ServiceError) {
        if self.json {
            let fields: Vec<_> = error
                .field_errors()
                .iter()
                .map(|f| serde_json::json!({"field": f.field, "message": f.message}))
                .collect();
            let body = serde_json::json!({
                "error": {
                    "code": error.code(),
                    "message": error.to_string(),
                    "retryable": error.is_retryable(),
                    "retry_after_secs": error.retry_after().map(|d| d.as_secs()),
                    "fields": fields,
                }
            });
            println!("{body:#}");
        } else {
            eprintln!("error[{}]: {error}", error.code());
            if let Some(after) = error.retry_after() {
                eprintln!("hint: retry in {} s", after.as_secs());
            }
        }
    }
}

fn or_dash(value: Option<&str>) -> &str {
    value.unwrap_or("-")
}

pub(super) fn bot(bot: &Bot) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "bot {}: {}", bot.id, bot.status);
    if let Some(reason) = &bot.reason {
        let _ = writeln!(out, "  reason:          {reason}");
    }
    let _ = writeln!(
        out,
        "  platform:        {} ({})",
        bot.platform,
        or_dash(bot.platform_id.as_deref())
    );
    let _ = writeln!(out, "  attempt:         {}", bot.attempt);
    let _ = writeln!(
        out,
        "  meeting:         {} {}",
        bot.meeting_platform, bot.meeting_url
    );
    let _ = writeln!(
        out,
        "  connection url:  {}",
        or_dash(bot.connection_url.as_deref())
    );
    if bot.cleanup_pending {
        let _ = writeln!(
            out,
            "  cleanup pending: the reconciler will release what it holds"
        );
    }
    out
}

pub(super) fn one_status(live: &LiveStatus, history: &[HistoryEntry]) -> String {
    let mut out = bot(&live.bot);
    match (&live.platform_status, &live.platform_error) {
        (Some(status), _) => {
            let _ = writeln!(out, "  platform says:   {status}");
        }
        (None, Some(error)) => {
            let _ = writeln!(out, "  platform says:   (could not ask: {error})");
        }
        (None, None) => {
            let _ = writeln!(out, "  platform says:   (no identifier yet)");
        }
    }
    let _ = writeln!(out, "  history:");
    for entry in history {
        let from = entry.from.map_or("-", |s| s.as_str());
        let _ = writeln!(
            out,
            "    {}  {from} -> {}  (attempt {}) {}",
            entry.at, entry.to, entry.attempt, entry.reason
        );
    }
    out
}

pub(super) fn statuses(statuses: &[LiveStatus]) -> String {
    if statuses.is_empty() {
        return "no active bots\n".into();
    }
    let mut out = format!(
        "{:>8}  {:<10} {:<40} {}\n",
        "BOT", "STATUS", "PLATFORM ID", "PLATFORM SAYS"
    );
    for live in statuses {
        let says = match (&live.platform_status, &live.platform_error) {
            (Some(status), _) => status.to_string(),
            (None, Some(error)) => format!("(could not ask: {error})"),
            (None, None) => "-".into(),
        };
        let _ = writeln!(
            out,
            "{:>8}  {:<10} {:<40} {says}",
            live.bot.id,
            live.bot.status,
            or_dash(live.bot.platform_id.as_deref())
        );
    }
    out
}

pub(super) fn page(page: &BotPage) -> String {
    let mut out = format!(
        "{:>8}  {:<10} {:<8} {:<6} {:<30} {}\n",
        "BOT", "STATUS", "PLATFORM", "MEET", "REASON", "MEETING URL"
    );
    for bot in &page.bots {
        let reason: String = or_dash(bot.reason.as_deref()).chars().take(30).collect();
        let _ = writeln!(
            out,
            "{:>8}  {:<10} {:<8} {:<6} {reason:<30} {}",
            bot.id,
            bot.status,
            bot.platform,
            bot.meeting_platform.as_str(),
            bot.meeting_url
        );
    }
    if let Some(cursor) = &page.next_cursor {
        let _ = writeln!(out, "more: --cursor {cursor}");
    }
    out
}

pub(super) fn pool(summary: &PoolSummary) -> String {
    let mut out = format!("platform: {}\n", summary.platform);
    let counts: Vec<String> = summary
        .bots_by_status
        .iter()
        .map(|(state, n)| format!("{state} {n}"))
        .collect();
    let _ = writeln!(
        out,
        "bots: {}",
        if counts.is_empty() {
            "none".into()
        } else {
            counts.join(", ")
        }
    );
    if summary.pools.is_empty() {
        let _ = writeln!(
            out,
            "no warm pool ({} starts each bot on demand)",
            summary.platform
        );
    }
    for pool in &summary.pools {
        let _ = writeln!(out, "pool {}:", pool.pool);
        for (meeting_platform, c) in &pool.by_meeting_platform {
            let _ = writeln!(
                out,
                "  {meeting_platform:<6} idle {:>3}  claimed {:>3}  failed {:>3}",
                c.idle, c.claimed, c.failed
            );
        }
    }
    out
}

pub(super) fn report(report: &ReconcileReport) -> String {
    format!(
        "examined {}, promoted {}, ended {}, re-driven deploys {}, finished stops {}, timed out {}, cleaned up {}, slots given back {}, status errors {}, errors {}\n",
        report.examined,
        report.promoted,
        report.ended,
        report.redriven_deploys,
        report.finished_stops,
        report.timed_out,
        report.cleaned_up,
        report.released_slots,
        report.status_errors,
        report.errors
    )
}

fn choice(out: &mut String, label: &str, choice: &Choice) {
    match choice.platform {
        Some(platform) => {
            let _ = writeln!(out, "{label}: {platform} ({})", choice.reason);
        }
        None => {
            let _ = writeln!(out, "{label}: none: {}", choice.reason);
        }
    }
    for warning in &choice.warnings {
        let _ = writeln!(out, "  warning: {warning}");
    }
}

pub(super) fn platforms(listing: &PlatformListing) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "meeboter-deploy {} (features: {})\n",
        listing.version,
        if listing.features.is_empty() {
            "none".into()
        } else {
            listing.features.join(", ")
        }
    );
    if listing.platforms.is_empty() {
        let _ = writeln!(
            out,
            "no platform is compiled in; rebuild with --features all-platforms\n"
        );
    }
    for platform in &listing.platforms {
        let auto = match &platform.auto_detection {
            AutoDetection::Detect { order, markers, .. } => {
                format!(
                    "auto-detected (order {order}) when {} are set",
                    markers.join(" and ")
                )
            }
            AutoDetection::DetectAny { order, markers } => {
                format!(
                    "auto-detected (order {order}) when any of {} is set",
                    markers.join(", ")
                )
            }
            AutoDetection::Fallback => {
                "auto's fallback when no cloud platform is configured".into()
            }
            AutoDetection::Never => "chosen only by name".into(),
        };
        let _ = writeln!(out, "{} — {}", platform.name, platform.description);
        let _ = writeln!(out, "  feature: {}; {auto}", platform.feature);
        for spec in platform.env {
            let need = if spec.is_required() {
                "required".to_owned()
            } else if let Some(default) = spec.default_value() {
                format!("default {default}")
            } else {
                "optional".to_owned()
            };
            let _ = writeln!(out, "  {:<28} {need}", spec.name);
        }
        out.push('\n');
    }
    choice(&mut out, "DEPLOYMENT_PLATFORM selects", &listing.selected);
    choice(&mut out, "auto would pick", &listing.auto);
    out
}

pub(super) fn doctor<'a>(
    ok: bool,
    platform: Option<&str>,
    checks: impl Iterator<Item = (&'a str, bool, &'a [String])>,
) -> String {
    let mut out = String::new();
    for (check, passed, problems) in checks {
        let mark = if passed { "ok  " } else { "FAIL" };
        let _ = writeln!(out, "[{mark}] {check}");
        for problem in problems {
            let _ = writeln!(out, "       {problem}");
        }
    }
    let _ = writeln!(
        out,
        "{}",
        if ok {
            format!(
                "everything is in order; bots run on {}",
                platform.unwrap_or("?")
            )
        } else {
            "problems found; fix them and run doctor again".into()
        }
    );
    out
}
