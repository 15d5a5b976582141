//! What the service counts for the operator: deploys and their outcome,
//! how long the platform takes, platform errors, HTTP requests.
//!
//! The engine records here as it works (every platform call passes through
//! one place), and `GET /metrics` renders a [`MetricsSnapshot`] in the
//! Prometheus text format together with gauges read from the database at
//! scrape time (bots by status, pool slots by state), which therefore stay
//! true across restarts and across several service processes.
//!
//! Every label value comes from a small fixed set (platform names, error
//! kinds, route templates, status codes), so no client can grow the number
//! of series, and no label ever holds a secret.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// The upper bounds, in seconds, of the deploy-latency buckets: a local
/// process answers in milliseconds, a Coolify start in seconds, and a slow
/// platform up to the call timeout.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// The upper bounds, in seconds, of the deploy-to-running buckets: a local
/// bot runs within a second, a Fargate task within minutes.
pub const START_BUCKETS: [f64; 12] = [
    0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
];

/// How a platform `deploy_bot` call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeployOutcome {
    /// The platform accepted the bot and returned its identifier.
    Started,
    /// Nothing was started (pool exhausted, transient capacity shortage);
    /// the bot went back to pending.
    NoCapacity,
    /// The platform could not be reached and nothing was sent; the bot
    /// went back to pending.
    Unreachable,
    /// The platform definitely refused the bot; it failed.
    Refused,
    /// The call failed in a way that may have started the bot; the
    /// reconciler calls again with the same attempt.
    Unconfirmed,
}

impl DeployOutcome {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::NoCapacity => "no_capacity",
            Self::Unreachable => "unreachable",
            Self::Refused => "refused",
            Self::Unconfirmed => "unconfirmed",
        }
    }
}

/// A cumulative histogram with fixed buckets, as Prometheus wants it.
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    /// The buckets' upper bounds, in seconds.
    pub bounds: &'static [f64],
    /// How many observations fell at or below each bound (not cumulative).
    pub counts: Vec<u64>,
    /// How many observations there were.
    pub count: u64,
    /// Their sum, in seconds.
    pub sum: f64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: vec![0; bounds.len()],
            count: 0,
            sum: 0.0,
        }
    }

    fn observe(&mut self, value: Duration) {
        let secs = value.as_secs_f64();
        if let Some(bucket) = self.bounds.iter().position(|bound| secs <= *bound) {
            self.counts[bucket] += 1;
        }
        self.count += 1;
        self.sum += secs;
    }

    /// The cumulative count of each bucket, then `+Inf`.
    pub fn cumulative(&self) -> impl Iterator<Item = (Option<f64>, u64)> + '_ {
        let mut total = 0;
        self.bounds
            .iter()
            .zip(&self.counts)
            .map(move |(bound, n)| {
                total += n;
                (Some(*bound), total)
            })
            .chain(std::iter::once((None, self.count)))
    }
}

/// One HTTP request's labels.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HttpLabels {
    /// The method (`GET`, `POST`, … or `other`).
    pub method: &'static str,
    /// The route template (`/v1/bots/{id}`), or `unmatched`.
    pub route: String,
    /// The response status code.
    pub status: u16,
}

/// Everything counted so far, for rendering.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricsSnapshot {
    /// `deploy_bot` calls by platform and outcome.
    pub deploys: BTreeMap<(&'static str, DeployOutcome), u64>,
    /// `deploy_bot` call latency by platform.
    pub deploy_latency: BTreeMap<&'static str, Histogram>,
    /// Time from the deploy intent to the platform reporting the bot
    /// running, by platform.
    pub deploy_to_running: BTreeMap<&'static str, Histogram>,
    /// Failed platform calls by platform, operation and error kind.
    pub platform_errors: BTreeMap<(&'static str, &'static str, &'static str), u64>,
    /// Leaked bots the orphan sweep stopped, by platform.
    pub orphans_stopped: BTreeMap<&'static str, u64>,
    /// HTTP requests by method, route and status.
    pub http_requests: BTreeMap<HttpLabels, u64>,
    /// HTTP request latency by route.
    pub http_latency: BTreeMap<String, Histogram>,
    /// Bots a platform had no room for, by that platform and where they
    /// went instead (another platform, or `queue`).
    pub fallbacks: BTreeMap<(&'static str, &'static str), u64>,
    /// Queued bots failed as `queue_timeout`.
    pub queue_timeouts: u64,
    /// Times this process took the platform sweep's lease.
    pub sweep_lease_taken: u64,
}

/// The service's counters. Shared by every clone of the service; cheap to
/// update (one short lock, no allocation on the hot paths but the first
/// time a label set is seen).
#[derive(Debug, Default)]
pub struct Metrics {
    counters: Mutex<MetricsSnapshot>,
}

impl Metrics {
    /// No counts yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, update: impl FnOnce(&mut MetricsSnapshot) -> R) -> R {
        // A panic while holding the lock leaves counts that are still
        // counts: keep using them rather than losing every metric.
        let mut counters = self
            .counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        update(&mut counters)
    }

    /// Records one `deploy_bot` call.
    pub fn record_deploy(&self, platform: &'static str, outcome: DeployOutcome, took: Duration) {
        self.with(|c| {
            *c.deploys.entry((platform, outcome)).or_default() += 1;
            c.deploy_latency
                .entry(platform)
                .or_insert_with(|| Histogram::new(&LATENCY_BUCKETS))
                .observe(took);
        });
    }

    /// Records that a bot became running `took` after its deploy intent.
    pub fn record_deploy_to_running(&self, platform: &'static str, took: Duration) {
        self.with(|c| {
            c.deploy_to_running
                .entry(platform)
                .or_insert_with(|| Histogram::new(&START_BUCKETS))
                .observe(took);
        });
    }

    /// Records one failed platform call.
    pub fn record_platform_error(
        &self,
        platform: &'static str,
        operation: &'static str,
        kind: &'static str,
    ) {
        self.with(|c| {
            *c.platform_errors
                .entry((platform, operation, kind))
                .or_default() += 1
        });
    }

    /// Records that the orphan sweep stopped a leaked bot.
    pub fn record_orphan_stopped(&self, platform: &'static str) {
        self.with(|c| *c.orphans_stopped.entry(platform).or_default() += 1);
    }

    /// Records that `from` had no room for a bot, which went to `to` (a
    /// platform, or `queue`).
    pub fn record_fallback(&self, from: &'static str, to: &'static str) {
        self.with(|c| *c.fallbacks.entry((from, to)).or_default() += 1);
    }

    /// Records a queued bot failed as `queue_timeout`.
    pub fn record_queue_timeout(&self) {
        self.with(|c| c.queue_timeouts += 1);
    }

    /// Records that this process took the platform sweep's lease.
    pub fn record_sweep_lease_taken(&self) {
        self.with(|c| c.sweep_lease_taken += 1);
    }

    /// Records one answered HTTP request.
    pub fn record_http(&self, labels: HttpLabels, took: Duration) {
        self.with(|c| {
            c.http_latency
                .entry(labels.route.clone())
                .or_insert_with(|| Histogram::new(&LATENCY_BUCKETS))
                .observe(took);
            *c.http_requests.entry(labels).or_default() += 1;
        });
    }

    /// A copy of every count.
    pub fn snapshot(&self) -> MetricsSnapshot {
        self.with(|c| c.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_count_everything() {
        let metrics = Metrics::new();
        for ms in [1, 7, 7, 300, 500_000] {
            metrics.record_deploy("local", DeployOutcome::Started, Duration::from_millis(ms));
        }
        let snapshot = metrics.snapshot();
        assert_eq!(snapshot.deploys[&("local", DeployOutcome::Started)], 5);
        let histogram = &snapshot.deploy_latency["local"];
        let cumulative: Vec<_> = histogram.cumulative().collect();
        assert_eq!(cumulative[0], (Some(0.005), 1));
        assert_eq!(cumulative[1], (Some(0.01), 3));
        assert_eq!(cumulative[6], (Some(0.5), 4));
        // 500 s is above every bound: only +Inf counts it.
        assert_eq!(cumulative[13], (Some(120.0), 4));
        assert_eq!(cumulative[14], (None, 5));
        assert!((histogram.sum - 500.315).abs() < 1e-9, "{}", histogram.sum);
    }
}
