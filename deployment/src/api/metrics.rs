//! `GET /metrics`: the Prometheus text format (version 0.0.4), written by
//! hand.
//!
//! The format is a few lines of text per series; a metrics crate would add
//! a global registry and, for the common exporters, a second HTTP stack,
//! for what is here about a hundred lines. The counters come from
//! [`Metrics`](crate::metrics::Metrics); the gauges (bots by status, pool
//! slots by state) are read from the database at each scrape, so they are
//! right after a restart and across several service processes.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::state::ApiState;
use crate::bot::BotState;
use crate::meeting::MeetingStatus;
use crate::metrics::{Histogram, MetricsSnapshot};
use crate::service::BotService;

/// The content type of the Prometheus text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Escapes a label value: backslash, double quote and newline.
fn escape(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

pub(super) fn labels(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs
        .iter()
        .map(|(name, value)| format!("{name}=\"{}\"", escape(value)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

pub(super) fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn histogram(out: &mut String, name: &str, base: &[(&str, &str)], histogram: &Histogram) {
    for (bound, count) in histogram.cumulative() {
        let le = bound.map_or_else(|| "+Inf".to_owned(), |b| b.to_string());
        let mut pairs = base.to_vec();
        pairs.push(("le", &le));
        let _ = writeln!(out, "{name}_bucket{} {count}", labels(&pairs));
    }
    let _ = writeln!(out, "{name}_sum{} {}", labels(base), histogram.sum);
    let _ = writeln!(out, "{name}_count{} {}", labels(base), histogram.count);
}

/// Renders the counters; gauges from the database are added by
/// [`render`].
pub fn render_counters(out: &mut String, snapshot: &MetricsSnapshot) {
    header(
        out,
        "meeboter_deploys_total",
        "counter",
        "Platform deploy calls by platform and outcome (started, no_capacity: nothing started and the bot is pending again, unreachable: the platform could not be reached, nothing was sent and the bot is pending again, refused: the bot failed, unconfirmed: the reconciler calls again).",
    );
    for ((platform, outcome), n) in &snapshot.deploys {
        let pairs = [("platform", *platform), ("outcome", outcome.as_str())];
        let _ = writeln!(out, "meeboter_deploys_total{} {n}", labels(&pairs));
    }
    header(
        out,
        "meeboter_deploy_duration_seconds",
        "histogram",
        "How long the platform took to answer a deploy call, by platform.",
    );
    for (platform, h) in &snapshot.deploy_latency {
        histogram(
            out,
            "meeboter_deploy_duration_seconds",
            &[("platform", platform)],
            h,
        );
    }
    header(
        out,
        "meeboter_deploy_to_running_seconds",
        "histogram",
        "Time from a bot's deploy request to its platform reporting it running, by platform.",
    );
    for (platform, h) in &snapshot.deploy_to_running {
        histogram(
            out,
            "meeboter_deploy_to_running_seconds",
            &[("platform", platform)],
            h,
        );
    }
    header(
        out,
        "meeboter_platform_errors_total",
        "counter",
        "Failed platform calls by platform, operation and error kind.",
    );
    for ((platform, operation, kind), n) in &snapshot.platform_errors {
        let pairs = [
            ("platform", *platform),
            ("operation", *operation),
            ("kind", *kind),
        ];
        let _ = writeln!(out, "meeboter_platform_errors_total{} {n}", labels(&pairs));
    }
    header(
        out,
        "meeboter_orphans_stopped_total",
        "counter",
        "Bots found running under this installation's mark that no active bot held, stopped by the orphan sweep, by platform.",
    );
    for (platform, n) in &snapshot.orphans_stopped {
        let _ = writeln!(
            out,
            "meeboter_orphans_stopped_total{} {n}",
            labels(&[("platform", platform)])
        );
    }
    header(
        out,
        "meeboter_http_requests_total",
        "counter",
        "HTTP requests answered, by method, route template and status code.",
    );
    for (http, n) in &snapshot.http_requests {
        let status = http.status.to_string();
        let pairs = [
            ("method", http.method),
            ("route", http.route.as_str()),
            ("status", status.as_str()),
        ];
        let _ = writeln!(out, "meeboter_http_requests_total{} {n}", labels(&pairs));
    }
    header(
        out,
        "meeboter_http_request_duration_seconds",
        "histogram",
        "How long HTTP requests took to answer, by route template.",
    );
    for (route, h) in &snapshot.http_latency {
        histogram(
            out,
            "meeboter_http_request_duration_seconds",
            &[("route", route)],
            h,
        );
    }
}

/// Renders every metric: the counters, then the gauges read from the
/// database now. A database that does not answer is reported as
/// `meeboter_database_up 0` instead of failing the scrape.
pub async fn render(service: &BotService) -> String {
    let mut out = String::new();
    let platform = service.platform_name();
    header(
        &mut out,
        "meeboter_build_info",
        "gauge",
        "The service's version and the platform it runs (always 1).",
    );
    let _ = writeln!(
        out,
        "meeboter_build_info{} 1",
        labels(&[
            ("version", env!("CARGO_PKG_VERSION")),
            ("platform", platform)
        ])
    );
    render_counters(&mut out, &service.metrics().snapshot());
    let summary = service.pool_summary().await;
    header(
        &mut out,
        "meeboter_database_up",
        "gauge",
        "Whether the database answered this scrape (1) or not (0).",
    );
    let _ = writeln!(out, "meeboter_database_up {}", u8::from(summary.is_ok()));
    let Ok(summary) = summary else {
        return out;
    };
    super::placement_metrics::render(&mut out, service).await;
    header(
        &mut out,
        "meeboter_deploy_workers_jobs",
        "gauge",
        "Deploys and stops in this process's deploy workers, per platform: waiting for a free worker (the burst still to be worked off here) or running (a platform call in flight, at most DEPLOY_CONCURRENCY).",
    );
    let mut lanes = service.deploy_workers();
    lanes.sort_by_key(|(name, _)| *name);
    for (platform, load) in lanes {
        for (state, n) in [("waiting", load.waiting), ("running", load.running)] {
            let _ = writeln!(
                out,
                "meeboter_deploy_workers_jobs{} {n}",
                labels(&[("platform", platform), ("state", state)])
            );
        }
    }
    header(
        &mut out,
        "meeboter_bots",
        "gauge",
        "Bots of this service's platform by status.",
    );
    for state in BotState::ALL {
        let n = summary.bots_by_status.get(&state).copied().unwrap_or(0);
        let pairs = [("platform", platform), ("status", state.as_str())];
        let _ = writeln!(out, "meeboter_bots{} {n}", labels(&pairs));
    }
    let meeting = service
        .store()
        .count_by_meeting_status(Some(platform))
        .await
        .unwrap_or_default();
    header(
        &mut out,
        "meeboter_bots_by_meeting_status",
        "gauge",
        "Bots of this service's platform by meeting status, as the bots report it over the bot protocol (unknown until a bot speaks).",
    );
    for status in MeetingStatus::ALL {
        let n = meeting
            .iter()
            .find(|(s, _)| *s == status)
            .map_or(0, |(_, n)| *n);
        let pairs = [("platform", platform), ("meeting_status", status.as_str())];
        let _ = writeln!(out, "meeboter_bots_by_meeting_status{} {n}", labels(&pairs));
    }
    let beats = service.heartbeat_counts();
    header(
        &mut out,
        "meeboter_bot_heartbeats_total",
        "counter",
        "Bot heartbeats this process received.",
    );
    let _ = writeln!(out, "meeboter_bot_heartbeats_total {}", beats.received);
    header(
        &mut out,
        "meeboter_bot_heartbeat_flushes_total",
        "counter",
        "Database writes (one statement each, per 2,000 bots) that stored buffered heartbeats.",
    );
    let _ = writeln!(
        out,
        "meeboter_bot_heartbeat_flushes_total {}",
        beats.flushes
    );
    header(
        &mut out,
        "meeboter_pool_slots",
        "gauge",
        "Warm-pool slots by pool, meeting platform and state (idle, claimed, failed).",
    );
    for pool in &summary.pools {
        let mut counts = std::collections::BTreeMap::<(String, &str), u64>::new();
        for slot in &pool.slots {
            *counts
                .entry((slot.meeting_platform.to_string(), slot.state.as_str()))
                .or_default() += 1;
        }
        // Every state of every meeting platform the pool serves, zeros
        // included, so a dashboard sees `idle` drop to 0 rather than vanish.
        for meeting_platform in pool.by_meeting_platform.keys() {
            for state in ["idle", "claimed", "failed"] {
                let key = (meeting_platform.to_string(), state);
                let n = counts.get(&key).copied().unwrap_or(0);
                let pairs = [
                    ("pool", pool.pool.as_str()),
                    ("meeting_platform", key.0.as_str()),
                    ("state", state),
                ];
                let _ = writeln!(out, "meeboter_pool_slots{} {n}", labels(&pairs));
            }
        }
    }
    if let Ok(outbox) = service.store().outbox_summary().await {
        render_outbox(&mut out, &outbox, crate::store::now_ms());
    }
    out
}

/// The webhook outbox: deliveries by outcome and the age of the oldest
/// event not delivered yet (0 when none waits).
pub fn render_outbox(out: &mut String, outbox: &crate::store::OutboxSummary, now_ms: i64) {
    header(
        out,
        "meeboter_webhook_deliveries",
        "gauge",
        "Webhook deliveries in the outbox by state: pending (not accepted yet, retrying on the schedule), delivered (a receiver answered 2xx), failed (given up after WEBHOOK_MAX_AGE).",
    );
    for state in ["pending", "delivered", "failed"] {
        let n = outbox
            .by_state
            .iter()
            .find(|(s, _)| s == state)
            .map_or(0, |(_, n)| *n);
        let _ = writeln!(
            out,
            "meeboter_webhook_deliveries{} {n}",
            labels(&[("state", state)])
        );
    }
    header(
        out,
        "meeboter_webhook_oldest_undelivered_seconds",
        "gauge",
        "How long ago the oldest webhook event still waiting for delivery was written (0 when none waits). Rising steadily means a receiver is down or too slow.",
    );
    let age = outbox
        .oldest_pending_at
        .map_or(0.0, |at| (now_ms - at).max(0) as f64 / 1000.0);
    let _ = writeln!(out, "meeboter_webhook_oldest_undelivered_seconds {age}");
}

/// The service's metrics in the Prometheus text format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain", body = String))
)]
pub async fn metrics(State(state): State<ApiState>) -> Response {
    let text = render(state.service()).await;
    let mut response = text.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::metrics::{DeployOutcome, HttpLabels, Metrics};

    #[test]
    fn counters_render_in_the_text_format() {
        let metrics = Metrics::new();
        metrics.record_deploy("local", DeployOutcome::Started, Duration::from_millis(3));
        metrics.record_platform_error("local", "stop_bot", "platform_timeout");
        metrics.record_http(
            HttpLabels {
                method: "GET",
                route: "/v1/bots/{id}".into(),
                status: 404,
            },
            Duration::from_millis(1),
        );
        let mut out = String::new();
        render_counters(&mut out, &metrics.snapshot());
        assert!(
            out.contains("# TYPE meeboter_deploys_total counter\n"),
            "{out}"
        );
        assert!(
            out.contains("meeboter_deploys_total{platform=\"local\",outcome=\"started\"} 1\n"),
            "{out}"
        );
        assert!(out.contains(
            "meeboter_deploy_duration_seconds_bucket{platform=\"local\",le=\"0.005\"} 1\n"
        ));
        assert!(out.contains(
            "meeboter_deploy_duration_seconds_bucket{platform=\"local\",le=\"+Inf\"} 1\n"
        ));
        assert!(out.contains("meeboter_deploy_duration_seconds_count{platform=\"local\"} 1\n"));
        assert!(out.contains(
            "meeboter_platform_errors_total{platform=\"local\",operation=\"stop_bot\",kind=\"platform_timeout\"} 1\n"
        ));
        assert!(out.contains(
            "meeboter_http_requests_total{method=\"GET\",route=\"/v1/bots/{id}\",status=\"404\"} 1\n"
        ));
    }

    #[test]
    fn the_outbox_renders_every_state_and_the_oldest_age() {
        let mut out = String::new();
        let summary = crate::store::OutboxSummary {
            by_state: vec![("delivered".into(), 7), ("pending".into(), 2)],
            oldest_pending_at: Some(1_000),
        };
        render_outbox(&mut out, &summary, 31_500);
        assert!(
            out.contains("meeboter_webhook_deliveries{state=\"pending\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("meeboter_webhook_deliveries{state=\"delivered\"} 7\n"),
            "{out}"
        );
        assert!(
            out.contains("meeboter_webhook_deliveries{state=\"failed\"} 0\n"),
            "{out}"
        );
        assert!(
            out.contains("meeboter_webhook_oldest_undelivered_seconds 30.5\n"),
            "{out}"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(labels(&[("a", "x\"y\\z\nw")]), "{a=\"x\\\"y\\\\z\\nw\"}");
    }
}
