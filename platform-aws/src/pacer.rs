//! Client-side pacing under ECS's request rate limits, so a burst of bots at
//! the top of the hour goes out as fast as ECS allows and is not throttled.
//!
//! ECS meters requests with token buckets per account and Region (see
//! `ECS-NOTES.md`): Fargate task launches (RunTask) a bucket of 100 refilled
//! at 20 per second; RunTask and StopTask share the "cluster resource
//! modify" bucket (100, 40 per second); DescribeTasks and ListTasks share
//! the "cluster resource read" bucket (100, 20 per second). We keep one
//! [`TokenBucket`] of our own per ECS bucket, of the same shape scaled by
//! the operator's share (`ECS_API_RATE_PERCENT`, default 80 %: the account's
//! buckets are shared with everything else in it), and take a token from
//! each bucket a call draws on before sending it.
//!
//! A burst therefore spends the bucket's burst at once and then goes at the
//! refill rate: 1,000 launches at a 100 % share take (1,000 − 100) / 20 =
//! 45 s, ECS's own minimum; at the default 80 % (a burst of 80, then 16 a
//! second) 57.5 s.
//!
//! When ECS throttles a call anyway (another caller in the account drew on
//! the same bucket), that call's bucket backs off for [`THROTTLE_BACKOFF`]
//! and halves its pace, which then grows back (see
//! [`platform_core::pacing`]); the call itself is retried by the service's
//! retry policy and goes through the pacer again.

use std::time::Duration;

use platform_core::pacing::TokenBucket;

/// How long a Fargate task typically takes from RunTask to `RUNNING`: ECS
/// provisions capacity and pulls the image, 45 to 95 s for a bot image
/// (`ECS-NOTES.md`). What the service's projection of a burst adds to a
/// bot's deploy start to tell when it is in its meeting.
pub const TYPICAL_TASK_START: Duration = Duration::from_secs(70);

/// How long a bucket lets nothing out after ECS throttled one of its calls:
/// in one second ECS refills 20 launches.
pub(crate) const THROTTLE_BACKOFF: Duration = Duration::from_secs(1);

/// One ECS token bucket: its burst (the tokens it holds when full) and its
/// refill per second.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EcsBucket {
    /// Tokens in the full bucket.
    pub burst: f64,
    /// Tokens refilled per second.
    pub per_second: f64,
}

/// The ECS request buckets this platform paces itself to, at a 100 % share
/// (`ECS_API_RATE_PERCENT` scales them all).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EcsRateLimits {
    /// Fargate task launches: one per RunTask of this platform.
    pub launches: EcsBucket,
    /// "Cluster resource modify": RunTask and StopTask together.
    pub modify: EcsBucket,
    /// "Cluster resource read": DescribeTasks, ListTasks (and here also
    /// DescribeClusters and DescribeTaskDefinition).
    pub read: EcsBucket,
}

impl EcsRateLimits {
    /// The limits AWS documents for every account and Region.
    pub const DOCUMENTED: Self = Self {
        launches: EcsBucket {
            burst: 100.0,
            per_second: 20.0,
        },
        modify: EcsBucket {
            burst: 100.0,
            per_second: 40.0,
        },
        read: EcsBucket {
            burst: 100.0,
            per_second: 20.0,
        },
    };

    /// The same buckets refilled `factor` times faster (bursts unchanged):
    /// an account whose quotas were raised, or a benchmark against an ECS
    /// emulator whose clock runs `factor` times faster.
    pub fn refilled_faster(self, factor: f64) -> Self {
        let faster = |bucket: EcsBucket| EcsBucket {
            burst: bucket.burst,
            per_second: bucket.per_second * factor,
        };
        Self {
            launches: faster(self.launches),
            modify: faster(self.modify),
            read: faster(self.read),
        }
    }
}

impl Default for EcsRateLimits {
    fn default() -> Self {
        Self::DOCUMENTED
    }
}

/// Which of ECS's buckets a call draws on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Call {
    /// RunTask: a Fargate launch and the modify bucket.
    Launch,
    /// StopTask: the modify bucket.
    Stop,
    /// DescribeTasks, ListTasks, DescribeClusters, DescribeTaskDefinition.
    Read,
}

/// The buckets of the ECS calls this platform makes; one per platform
/// instance, shared by all its calls.
#[derive(Debug)]
pub(crate) struct Pacer {
    launches: TokenBucket,
    modify: TokenBucket,
    read: TokenBucket,
}

impl Pacer {
    /// Buckets of the shape of `limits`, sized to `percent` (1 to 100) of
    /// them.
    pub(crate) fn new(limits: EcsRateLimits, percent: u8) -> Self {
        let share = f64::from(percent.clamp(1, 100)) / 100.0;
        let bucket = |name, bucket: EcsBucket| {
            TokenBucket::new(name, bucket.burst * share, bucket.per_second * share)
        };
        Self {
            launches: bucket("ECS Fargate launches", limits.launches),
            modify: bucket("ECS RunTask+StopTask", limits.modify),
            read: bucket("ECS reads", limits.read),
        }
    }

    /// Waits until `call` may be sent.
    pub(crate) async fn acquire(&self, call: Call) {
        match call {
            Call::Launch => {
                self.launches.acquire().await;
                self.modify.acquire().await;
            }
            Call::Stop => {
                self.modify.acquire().await;
            }
            Call::Read => {
                self.read.acquire().await;
            }
        }
    }

    /// ECS throttled `call`: its bucket backs off and slows down. A
    /// throttled RunTask slows the launches (the stricter of its two
    /// buckets, and the one a burst of bots empties).
    pub(crate) fn throttled(&self, call: Call) {
        let bucket = match call {
            Call::Launch => &self.launches,
            Call::Stop => &self.modify,
            Call::Read => &self.read,
        };
        bucket.throttled(THROTTLE_BACKOFF);
    }

    /// How fast this pacer lets bots start: the launch bucket (the stricter
    /// of RunTask's two) at its share, as configured (a throttle's slowdown
    /// is not counted: it recovers within seconds).
    pub(crate) fn deploy_pace(&self) -> platform_core::DeployPace {
        self.launches.deploy_pace(TYPICAL_TASK_START)
    }

    /// The launch pace now, per second.
    #[cfg(test)]
    fn launch_rate(&self) -> f64 {
        self.launches.rate()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use platform_core::testkit::release_times;
    use tokio::time::Instant;

    use super::*;

    /// When each of `count` concurrent RunTask callers was let out, sorted.
    async fn launch_times(pacer: &Arc<Pacer>, count: usize) -> Vec<Duration> {
        release_times(count, || {
            let pacer = pacer.clone();
            async move { pacer.acquire(Call::Launch).await }
        })
        .await
    }

    /// Seconds as a float, for comparing with computed instants.
    fn secs(duration: Duration) -> f64 {
        duration.as_secs_f64()
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_spends_the_launch_bucket_then_goes_at_its_refill_rate() {
        // 100 %: the first 100 launches at once, then 20 a second.
        let pacer = Arc::new(Pacer::new(EcsRateLimits::DOCUMENTED, 100));
        let times = launch_times(&pacer, 300).await;
        assert!(
            times[..100].iter().all(|t| t.is_zero()),
            "{:?}",
            &times[..100]
        );
        assert!(!times[100].is_zero());
        for (n, time) in times.iter().enumerate().skip(100) {
            // Launch n (from 0) waits for token n − 99 of the refill.
            let due = (n as f64 - 99.0) / 20.0;
            assert!(
                (secs(*time) - due).abs() < 0.002,
                "launch {n} at {time:?}, due {due}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_share_scales_the_burst_and_the_refill() {
        // 80 %: a burst of 80, then 16 a second; 1,000 launches in 57.5 s.
        let pacer = Arc::new(Pacer::new(EcsRateLimits::DOCUMENTED, 80));
        let times = launch_times(&pacer, 1000).await;
        assert_eq!(times.iter().filter(|t| t.is_zero()).count(), 80);
        let last = secs(times[999]);
        assert!(
            (last - 57.5).abs() < 0.01,
            "the last launch went at {last} s"
        );
        // Never more than the burst plus 16 a second in any window.
        for (n, time) in times.iter().enumerate() {
            assert!(
                secs(*time) + 1e-3 >= (n as f64 - 79.0) / 16.0,
                "launch {n} at {time:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttle_lowers_the_launch_pace_and_it_recovers() {
        let pacer = Arc::new(Pacer::new(EcsRateLimits::DOCUMENTED, 100));
        // The burst goes; then ECS says another caller took tokens too.
        launch_times(&pacer, 100).await;
        pacer.throttled(Call::Launch);
        assert!((pacer.launch_rate() - 10.0).abs() < 1e-9);
        // The next 50: nothing for a second, then at 10 a second (their
        // turns are taken at the lowered pace), not 20: the last after 6 s.
        let times = launch_times(&pacer, 50).await;
        assert!(times[0] >= THROTTLE_BACKOFF, "{times:?}");
        assert!((secs(times[49]) - 6.0).abs() < 0.01, "{times:?}");
        // Meanwhile the pace grew back by 2 a second.
        assert!((pacer.launch_rate() - 20.0).abs() < 1e-9);
        // Quiet for a while: back to 20 a second and a full burst.
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!((pacer.launch_rate() - 20.0).abs() < 1e-9);
        let times = launch_times(&pacer, 100).await;
        assert!(times.iter().all(|t| t.is_zero()));
        // Reads and stops were not slowed by the launches' throttle.
        let started = Instant::now();
        pacer.acquire(Call::Read).await;
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn launches_and_stops_share_the_modify_bucket() {
        let pacer = Pacer::new(EcsRateLimits::DOCUMENTED, 10);
        // 10 % of the modify bucket: a burst of 10, then 4 a second.
        let started = Instant::now();
        for _ in 0..10 {
            pacer.acquire(Call::Stop).await;
        }
        assert_eq!(started.elapsed(), Duration::ZERO);
        // The launch bucket has tokens, the modify bucket does not.
        pacer.acquire(Call::Launch).await;
        assert_eq!(started.elapsed(), Duration::from_millis(250));
    }

    #[tokio::test(start_paused = true)]
    async fn reads_spend_their_burst_then_the_refill_rate() {
        let pacer = Pacer::new(EcsRateLimits::DOCUMENTED, 50);
        let started = Instant::now();
        for _ in 0..50 {
            pacer.acquire(Call::Read).await;
        }
        assert_eq!(started.elapsed(), Duration::ZERO);
        for _ in 0..20 {
            pacer.acquire(Call::Read).await;
        }
        // 20 more at 10 a second.
        assert_eq!(started.elapsed(), Duration::from_secs(2));
    }

    #[test]
    fn the_deploy_pace_is_the_launch_bucket_at_its_share() {
        let pace = Pacer::new(EcsRateLimits::DOCUMENTED, 80).deploy_pace();
        let rate = pace.rate.unwrap();
        assert!((rate.burst - 80.0).abs() < 1e-9, "{pace:?}");
        assert!((rate.per_second - 16.0).abs() < 1e-9, "{pace:?}");
        assert_eq!(pace.typical_start, TYPICAL_TASK_START);
    }

    #[test]
    fn faster_limits_keep_their_bursts() {
        let limits = EcsRateLimits::DOCUMENTED.refilled_faster(5.0);
        assert_eq!(
            limits.launches,
            EcsBucket {
                burst: 100.0,
                per_second: 100.0
            }
        );
        assert_eq!(
            limits.read,
            EcsBucket {
                burst: 100.0,
                per_second: 100.0
            }
        );
        assert_eq!(
            limits.modify,
            EcsBucket {
                burst: 100.0,
                per_second: 200.0
            }
        );
    }
}
