//! The placement's part of `GET /metrics`: capacity used and cap per
//! platform, the queue's length and oldest age, fallbacks from one platform
//! to another (or to the queue), queue timeouts, the deploys due and not
//! started (scheduled bots and creates) and their backlog per platform, and
//! the sweep lease.

use std::fmt::Write as _;

use super::metrics::{header, labels};
use crate::service::BotService;

/// Appends the placement metrics; nothing when the database does not
/// answer (the scrape says so in `meeboter_database_up`).
pub async fn render(out: &mut String, service: &BotService) {
    let snapshot = service.metrics().snapshot();
    header(
        out,
        "meeboter_placement_fallbacks_total",
        "counter",
        "Bots a platform had no room for, by that platform and where each went instead (another platform, or queue).",
    );
    for ((from, to), n) in &snapshot.fallbacks {
        let _ = writeln!(
            out,
            "meeboter_placement_fallbacks_total{} {n}",
            labels(&[("from", from), ("to", to)])
        );
    }
    header(
        out,
        "meeboter_queue_timeouts_total",
        "counter",
        "Queued bots failed as queue_timeout by this process.",
    );
    let _ = writeln!(
        out,
        "meeboter_queue_timeouts_total {}",
        snapshot.queue_timeouts
    );
    if let Ok(backlog) = service.due_backlog().await {
        header(
            out,
            "meeboter_deploys_due",
            "gauge",
            "Bots whose deploy time (a scheduled bot's join_at minus the lead time, or a create's) has passed and whose deploy no service process has started yet, across every replica. Above 0 for more than a few seconds: a burst is being worked through, or no replica runs the scheduler.",
        );
        let _ = writeln!(out, "meeboter_deploys_due {}", backlog.due);
        header(
            out,
            "meeboter_deploys_due_oldest_seconds",
            "gauge",
            "How long ago the earliest of those deploy times passed (0 when none is due).",
        );
        let _ = writeln!(
            out,
            "meeboter_deploys_due_oldest_seconds {}",
            backlog.oldest_due_seconds
        );
    }
    let Ok(view) = service.platforms_view().await else {
        return;
    };
    header(
        out,
        "meeboter_platform_capacity_used",
        "gauge",
        "Bots holding capacity on each platform (deploying, running, stopping), counted in the database across every replica.",
    );
    for platform in &view.platforms {
        let _ = writeln!(
            out,
            "meeboter_platform_capacity_used{} {}",
            labels(&[
                ("platform", &platform.name),
                (
                    "configured",
                    if platform.configured { "true" } else { "false" }
                )
            ]),
            platform.used
        );
    }
    header(
        out,
        "meeboter_platform_capacity_cap",
        "gauge",
        "Each configured platform's cap on bots at once (absent: no cap).",
    );
    for platform in &view.platforms {
        if let Some(cap) = platform.cap {
            let _ = writeln!(
                out,
                "meeboter_platform_capacity_cap{} {cap}",
                labels(&[("platform", &platform.name)])
            );
        }
    }
    header(
        out,
        "meeboter_deploy_backlog",
        "gauge",
        "Due bots whose deploy has not started, by the platform they are placed on (waiting for its call) or expected to go to (by its room under its cap), across every replica. Worked off at the platform's pace; GET /v1/platforms says when, and how late its last bots are projected to be.",
    );
    for platform in view.platforms.iter().filter(|p| p.configured) {
        let _ = writeln!(
            out,
            "meeboter_deploy_backlog{} {}",
            labels(&[("platform", &platform.name)]),
            platform.deploy_backlog
        );
    }
    header(
        out,
        "meeboter_queue_length",
        "gauge",
        "Bots waiting in the queue for a platform with room.",
    );
    let _ = writeln!(out, "meeboter_queue_length {}", view.queue.length);
    header(
        out,
        "meeboter_queue_oldest_age_seconds",
        "gauge",
        "How long the bot that waited longest in the queue has waited (0 when the queue is empty).",
    );
    let _ = writeln!(
        out,
        "meeboter_queue_oldest_age_seconds {}",
        view.queue.oldest_age_seconds.unwrap_or(0)
    );
    header(
        out,
        "meeboter_sweep_lease_held",
        "gauge",
        "Whether this process runs the platform sweep (1) or another one does (0).",
    );
    let _ = writeln!(
        out,
        "meeboter_sweep_lease_held {}",
        u8::from(view.sweep_lease.held_here)
    );
}
