//! Client-side pacing under ECS's request rate limits, so a burst of bots at
//! the top of the hour queues smoothly instead of being throttled.
//!
//! ECS meters requests with token buckets per account and Region (see
//! `ECS-NOTES.md`): RunTask and StopTask share the "cluster resource modify"
//! bucket (bursts of 100, 40 per second), DescribeTasks and ListTasks share
//! the "cluster resource read" bucket (bursts of 100, 20 per second), and
//! RunTask on Fargate is further limited to 20 calls per second. We keep one
//! [`TokenBucket`] of our own per limit, scaled by the operator's share
//! (`ECS_API_RATE_PERCENT`, default 80 %: the account's buckets are shared
//! with everything else in it), and take a token from each bucket a call
//! draws on before sending it.
//!
//! The Fargate RunTask limit is documented both as "a burst of 20 and 20 per
//! second" and as "20 per second". We pace to the stricter reading, no more
//! than the rate in any one second, by spacing calls evenly (a bucket of one
//! token) rather than bursting and then refilling. One bot still launches at
//! once; a burst of 300 takes about 19 seconds at the default share, while
//! ECS itself takes 30 s or more to start each task.

use platform_core::pacing::TokenBucket;

/// RunTask calls on Fargate per second, at a 100 % share.
const RUN_TASK_PER_SECOND: f64 = 20.0;
/// Burst of the modify bucket (RunTask and StopTask), at a 100 % share.
const MODIFY_BURST: f64 = 100.0;
/// Refill of the modify bucket per second, at a 100 % share.
const MODIFY_PER_SECOND: f64 = 40.0;
/// Burst of the read bucket (DescribeTasks, ListTasks, DescribeClusters,
/// DescribeTaskDefinition), at a 100 % share.
const READ_BURST: f64 = 100.0;
/// Refill of the read bucket per second, at a 100 % share.
const READ_PER_SECOND: f64 = 20.0;

/// The buckets of the ECS calls this platform makes.
#[derive(Debug)]
pub(crate) struct Pacer {
    run_task: TokenBucket,
    modify: TokenBucket,
    read: TokenBucket,
}

impl Pacer {
    /// Buckets sized to `percent` (1 to 100) of the documented limits.
    pub(crate) fn with_share(percent: u8) -> Self {
        let share = f64::from(percent.clamp(1, 100)) / 100.0;
        Self {
            run_task: TokenBucket::new("ECS RunTask", 1.0, RUN_TASK_PER_SECOND * share),
            modify: TokenBucket::new(
                "ECS RunTask+StopTask",
                MODIFY_BURST * share,
                MODIFY_PER_SECOND * share,
            ),
            read: TokenBucket::new("ECS reads", READ_BURST * share, READ_PER_SECOND * share),
        }
    }

    /// Before a RunTask call: the Fargate RunTask limit and the modify bucket.
    pub(crate) async fn run_task(&self) {
        self.run_task.acquire().await;
        self.modify.acquire().await;
    }

    /// Before a StopTask call.
    pub(crate) async fn stop_task(&self) {
        self.modify.acquire().await;
    }

    /// Before a read (DescribeTasks, ListTasks, DescribeClusters,
    /// DescribeTaskDefinition).
    pub(crate) async fn read(&self) {
        self.read.acquire().await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::time::Instant;

    use super::*;

    /// The most instants in any window of one second.
    fn busiest_second(times: &[Duration]) -> usize {
        (0..times.len())
            .map(|i| {
                times[i..]
                    .iter()
                    .take_while(|t| **t < times[i] + Duration::from_secs(1))
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_task_burst_is_evenly_spaced_below_the_fargate_limit() {
        let pacer = Arc::new(Pacer::with_share(80));
        let started = Instant::now();
        let handles: Vec<_> = (0..300)
            .map(|_| {
                let pacer = pacer.clone();
                tokio::spawn(async move {
                    pacer.run_task().await;
                    started.elapsed()
                })
            })
            .collect();
        let mut times = Vec::new();
        for handle in handles {
            times.push(handle.await.unwrap());
        }
        times.sort();
        assert_eq!(times[0], Duration::ZERO, "one bot launches at once");
        // 16 per second at 80 %, plus the one at the window's start.
        let busiest = busiest_second(&times);
        assert!(busiest <= 17, "{busiest} RunTask calls within one second");
        // 299 waits of 1/16 s.
        let last = times[299].as_secs_f64();
        assert!(
            (18.6..18.8).contains(&last),
            "the last call went after {last} s"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn launches_and_stops_share_the_modify_bucket() {
        let pacer = Pacer::with_share(10);
        // 10 % of the modify bucket: a burst of 10, then 4 a second.
        let started = Instant::now();
        for _ in 0..10 {
            pacer.stop_task().await;
        }
        assert_eq!(started.elapsed(), Duration::ZERO);
        // The RunTask bucket has its token, the modify bucket does not.
        pacer.run_task().await;
        assert_eq!(started.elapsed(), Duration::from_millis(250));
    }

    #[tokio::test(start_paused = true)]
    async fn reads_spend_their_burst_then_the_refill_rate() {
        let pacer = Pacer::with_share(50);
        let started = Instant::now();
        for _ in 0..50 {
            pacer.read().await;
        }
        assert_eq!(started.elapsed(), Duration::ZERO);
        for _ in 0..20 {
            pacer.read().await;
        }
        // 20 more at 10 a second.
        assert_eq!(started.elapsed(), Duration::from_secs(2));
    }
}
