//! How command results look: text for people, JSON for scripts.

use std::fmt::Write as _;
use std::io::Write as _;

use platform_core::reason::one_line;
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::ReconcileReport;
use crate::bot::{Bot, HistoryEntry};
use crate::error::ServiceError;
use crate::meeting::MeetingHistoryEntry;
use crate::platforms::{AutoDetection, Choice, PlatformListing};
use crate::service::{BotPage, LiveStatus, PoolSummary};
use crate::settings::LogFormat;

/// Prints results as text or JSON.
pub(super) struct Printer {
    pub(super) json: bool,
    /// How standard error is written (`LOG_FORMAT`): errors in JSON format
    /// are JSON lines too.
    pub(super) log_format: LogFormat,
}

impl Printer {
    /// Prints `value`: as JSON, or as the text `human` renders.
    pub(super) fn print<T: Serialize>(&self, value: &T, human: impl FnOnce(&T) -> String) {
        if self.json {
            match serde_json::to_string_pretty(value) {
                Ok(text) => write_stdout(&format!("{text}\n")),
                Err(e) => eprintln!("error: cannot render the result as JSON: {e}"),
            }
        } else {
            write_stdout(&human(value));
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
            write_stdout(&format!("{body:#}\n"));
        } else if self.log_format == LogFormat::Json {
            let after = error.retry_after().map(|d| d.as_secs().to_string());
            let mut fields = vec![("code", error.code())];
            if let Some(after) = &after {
                fields.push(("retry_after_secs", after.as_str()));
            }
            crate::telemetry::notice(
                self.log_format,
                tracing::Level::ERROR,
                &error.to_string(),
                &fields,
            );
        } else {
            eprintln!("error[{}]: {error}", error.code());
            if let Some(after) = error.retry_after() {
                eprintln!("hint: retry in {} s", after.as_secs());
            }
        }
    }
}

/// Writes a command's result on standard output. A reader that went away
/// (`meeboter-deploy list | head`) ends the command quietly, as Unix tools
/// do, instead of a panic about a broken pipe.
pub(super) fn write_stdout(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let written = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
    match written {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {
            std::process::exit(i32::from(super::exit::OK));
        }
        Err(error) => eprintln!("error: cannot write the result: {error}"),
    }
}

/// A time as RFC 3339 (`2026-12-01T09:30:00.123Z`), as the API shows it.
pub(super) fn rfc3339(at: &OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_else(|_| at.to_string())
}

/// Lines whose columns are as wide as their widest cell (an ECS task ARN
/// is 90 characters, a local identifier 30), two spaces apart; the last
/// column is left as it is.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let columns = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row).take(columns - 1) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 < columns {
                let pad = widths[i].saturating_sub(cell.chars().count());
                let _ = write!(line, "{cell}{}  ", " ".repeat(pad));
            } else {
                line.push_str(cell);
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
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
    let _ = writeln!(out, "  meeting status:  {}", meeting_status(bot));
    if let Some(message) = &bot.meeting_message {
        let _ = writeln!(out, "  bot's message:   {message}");
    }
    if let Some(at) = &bot.last_heartbeat_at {
        let _ = writeln!(out, "  last heartbeat:  {}", rfc3339(at));
    }
    if let Some(at) = &bot.leave_requested_at {
        let _ = writeln!(out, "  leave requested: {}", rfc3339(at));
    }
    let _ = writeln!(
        out,
        "  platform:        {} ({})",
        or_dash(bot.platform.as_deref()),
        or_dash(bot.platform_id.as_deref())
    );
    if let Some(at) = &bot.join_at {
        let _ = writeln!(out, "  join at:         {}", rfc3339(at));
    }
    if let (Some(at), crate::bot::BotState::Scheduled) = (&bot.deploy_at, bot.status) {
        let _ = writeln!(out, "  deploys at:      {}", rfc3339(at));
    }
    out.push_str(&projected(bot));
    if let Some(position) = bot.queue_position {
        let _ = writeln!(
            out,
            "  queue position:  {position} (priority {})",
            bot.priority
        );
    }
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

/// `in_call (recording)`, `call_ended (left_on_request)`, `unknown`.
fn meeting_status(bot: &Bot) -> String {
    let mut shown = bot.meeting_status.as_str().to_owned();
    if let Some(code) = &bot.meeting_sub_code {
        shown.push_str(&format!(" ({code})"));
    } else if bot.meeting_status == crate::meeting::MeetingStatus::InCall
        && bot.meeting_recording == Some(true)
    {
        shown.push_str(" (recording)");
    }
    shown
}

pub(super) fn one_status(
    live: &LiveStatus,
    history: &[HistoryEntry],
    meeting_history: &[MeetingHistoryEntry],
) -> String {
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
            rfc3339(&entry.at),
            entry.to,
            entry.attempt,
            entry.reason
        );
    }
    if !meeting_history.is_empty() {
        let _ = writeln!(out, "  meeting history:");
        for entry in meeting_history {
            let code = entry
                .sub_code
                .as_deref()
                .map(|c| format!(" ({c})"))
                .unwrap_or_default();
            let message = entry
                .message
                .as_deref()
                .map(|m| format!(" {m}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "    {}  {} -> {}{code}  (by the {}){message}",
                rfc3339(&entry.at),
                entry.from,
                entry.to,
                entry.source.as_str()
            );
        }
    }
    out
}

pub(super) fn statuses(statuses: &[LiveStatus]) -> String {
    if statuses.is_empty() {
        return "no active bots\n".into();
    }
    let rows: Vec<Vec<String>> = statuses
        .iter()
        .map(|live| {
            let says = match (&live.platform_status, &live.platform_error) {
                (Some(status), _) => status.to_string(),
                (None, Some(error)) => format!("(could not ask: {error})"),
                (None, None) => "-".into(),
            };
            vec![
                live.bot.id.to_string(),
                live.bot.status.to_string(),
                meeting_status(&live.bot),
                or_dash(live.bot.platform_id.as_deref()).to_owned(),
                says,
            ]
        })
        .collect();
    table(
        &["BOT", "STATUS", "MEETING", "PLATFORM ID", "PLATFORM SAYS"],
        &rows,
    )
}

/// The widest a reason gets in a listing; the whole reason is in `status`.
const LISTED_REASON_CHARS: usize = 40;

pub(super) fn page(page: &BotPage) -> String {
    let rows: Vec<Vec<String>> = page
        .bots
        .iter()
        .map(|bot| {
            vec![
                bot.id.to_string(),
                bot.status.to_string(),
                meeting_status(bot),
                match bot.queue_position {
                    Some(position) => format!("queued #{position}"),
                    None => or_dash(bot.platform.as_deref()).to_owned(),
                },
                bot.meeting_platform.as_str().to_owned(),
                one_line(or_dash(bot.reason.as_deref()), LISTED_REASON_CHARS),
                bot.meeting_url.clone(),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "BOT",
            "STATUS",
            "MEETING",
            "PLATFORM",
            "MEET",
            "REASON",
            "MEETING URL",
        ],
        &rows,
    );
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
    match (&summary.pool_note, summary.pools.is_empty()) {
        (Some(note), true) => {
            let _ = writeln!(out, "{note}");
        }
        (None, true) => {
            let _ = writeln!(
                out,
                "no warm pool ({} starts each bot on demand)",
                summary.platform
            );
        }
        _ => {}
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
        "examined {}, promoted {}, ended {}, re-driven deploys {}, stops and cleanups handed over {}, finished stops {}, timed out {}, cleaned up {}, slots given back {}, heartbeat timeouts {}, overdue leaves {}, silent bots {}, status errors {}, errors {}; queue: placed {}, timed out {}; due deploys: deployed {}, queued {}, failed {}, missed their join time {}; bots on unconfigured platforms {}{}\n",
        report.examined,
        report.promoted,
        report.ended,
        report.redriven_deploys,
        report.handed_over,
        report.finished_stops,
        report.timed_out,
        report.cleaned_up,
        report.released_slots,
        report.watchdog.heartbeat_timeouts,
        report.watchdog.leave_overdue,
        report.watchdog.silent,
        report.status_errors,
        report.errors,
        report.queue_placed,
        report.queue_timeouts,
        report.due.deployed,
        report.due.queued,
        report.due.failed,
        report.due.missed,
        report.unconfigured,
        if report.swept {
            ""
        } else {
            " (the platform sweep runs in another process)"
        }
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
    match (&listing.priority_error, listing.priority.as_slice()) {
        (Some(error), _) => {
            let _ = writeln!(out, "placement order: none ({error})");
        }
        (None, list) => {
            let _ = writeln!(out, "placement order: {}", list.join(", "));
        }
    }
    choice(&mut out, "DEPLOYMENT_PLATFORM selects", &listing.selected);
    choice(&mut out, "auto would pick", &listing.auto);
    match (&listing.capacity, &listing.capacity_note) {
        (Some(view), _) => out.push_str(&capacity(view)),
        (None, Some(note)) => {
            let _ = writeln!(out, "capacity: not shown ({note})");
        }
        (None, None) => {}
    }
    match (&listing.installation_id, &listing.installation_note) {
        (Some(id), _) => {
            let _ = writeln!(out, "installation id: {id}");
        }
        (None, Some(note)) => {
            let _ = writeln!(out, "installation id: none yet ({note})");
        }
        (None, None) => {}
    }
    out
}

pub(super) fn doctor(report: &super::doctor::DoctorReport) -> String {
    let mut out = String::new();
    for check in &report.checks {
        let _ = writeln!(out, "[{}] {}", check.status.mark(), check.check);
        for problem in &check.problems {
            let _ = writeln!(out, "       {problem}");
        }
    }
    let _ = writeln!(
        out,
        "{}",
        if report.ok {
            format!(
                "everything is in order; bots run on {}",
                report.platform.unwrap_or("?")
            )
        } else {
            "problems found; fix them and run doctor again".into()
        }
    );
    out
}

/// Each platform's bots against its cap, the queue and the sweep lease.
pub(super) fn capacity(view: &crate::service::PlatformsView) -> String {
    let rows: Vec<Vec<String>> = view
        .platforms
        .iter()
        .map(|p| {
            let cap = p.cap.map_or_else(|| "no cap".to_owned(), |c| c.to_string());
            let over = if p.over_cap > 0 {
                format!(
                    " (over by {}: nothing is stopped, new bots go elsewhere)",
                    p.over_cap
                )
            } else {
                String::new()
            };
            vec![
                p.position.map_or_else(|| "-".to_owned(), |n| n.to_string()),
                p.name.clone(),
                if p.configured {
                    "yes".to_owned()
                } else {
                    "NO: its bots are left alone".to_owned()
                },
                format!("{}/{cap}{over}", p.used),
                p.queued.to_string(),
                backlog(p),
            ]
        })
        .collect();
    let mut out = String::from("\ncapacity (counted in the database, every replica):\n");
    out.push_str(&table(
        &[
            "#",
            "PLATFORM",
            "CONFIGURED",
            "USED/CAP",
            "QUEUED",
            "DUE BACKLOG",
        ],
        &rows,
    ));
    for p in &view.platforms {
        if let Some(pace) = &p.deploy_pace {
            let _ = writeln!(out, "deploy pace of {}: {pace}", p.name);
        }
    }
    let _ = writeln!(
        out,
        "queue: {} bots{}; timeout {} s",
        view.queue.length,
        view.queue
            .oldest_age_seconds
            .map(|age| format!(", oldest waiting {age} s"))
            .unwrap_or_default(),
        view.queue.timeout_seconds
    );
    let _ = writeln!(
        out,
        "platform sweep: {}",
        match &view.sweep_lease.holder {
            Some(holder) if view.sweep_lease.held_here =>
                format!("held by {holder} (this process)"),
            Some(holder) => format!(
                "held by {holder}, {} ms left",
                view.sweep_lease.expires_in_ms.unwrap_or(0)
            ),
            None => "not held yet".to_owned(),
        }
    );
    out
}

/// A bot's projected deploy start and lateness, or why it waits for
/// capacity (lines of `status`; nothing for a bot whose deploy started).
fn projected(bot: &Bot) -> String {
    let mut out = String::new();
    if let Some(at) = &bot.projected_deploy_at {
        let lateness = match bot.late_by_seconds {
            Some(0) => ", on time for join_at".to_owned(),
            Some(late) => format!(", {late} s late for join_at"),
            None => String::new(),
        };
        let _ = writeln!(out, "  projected start: {}{lateness}", rfc3339(at));
    }
    if let Some(why) = &bot.waiting_for_capacity {
        let _ = writeln!(out, "  waits for room:  {why}");
    }
    out
}

/// A platform's due backlog: how many, worked off when, the worst
/// lateness.
fn backlog(p: &crate::service::PlatformUsage) -> String {
    let mut out = p.deploy_backlog.to_string();
    if let Some(at) = &p.backlog_worked_off_at {
        let _ = write!(out, " (done {}", rfc3339(at));
        match p.max_late_by_seconds {
            Some(0) => out.push_str(", on time)"),
            Some(late) => {
                let _ = write!(out, ", up to {late} s late)");
            }
            None => out.push(')'),
        }
    }
    out
}

/// A bot's webhook deliveries, one line each, with the last attempt's
/// answer.
pub(super) fn webhooks(webhooks: &crate::webhooks::view::BotWebhooks) -> String {
    if webhooks.deliveries.is_empty() {
        return format!("bot {} has no webhook deliveries\n", webhooks.bot_id);
    }
    let mut out = format!(
        "{:>6}  {:<27} {:<9} {:<10} {:>8}  {:<20}  {}\n",
        "ID", "EVENT", "TO", "STATE", "ATTEMPTS", "NEXT TRY", "LAST ANSWER"
    );
    for d in &webhooks.deliveries {
        let next = d
            .next_attempt_at
            .as_ref()
            .map(rfc3339)
            .unwrap_or_else(|| "-".into());
        let last = match (&d.last_status_code, &d.last_error) {
            (_, Some(error)) => error.clone(),
            (Some(code), None) => code.to_string(),
            (None, None) => "-".into(),
        };
        out.push_str(&format!(
            "{:>6}  {:<27} {:<9} {:<10} {:>8}  {:<20}  {}\n",
            d.id, d.event_type, d.destination, d.state, d.attempts, next, last
        ));
    }
    out
}
