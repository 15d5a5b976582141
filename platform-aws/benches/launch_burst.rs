//! A burst of concurrent deploys against an ECS that enforces its request
//! buckets: how close the pacer comes to ECS's own minimum, and whether
//! anything is throttled or lost.
//!
//! N deploys (`BENCH_BOTS`, default 1,000) start at once against the test
//! suite's mini-ECS on loopback, which enforces ECS's documented buckets
//! (Fargate launches: 100, refilled at 20 a second; modify and read
//! buckets likewise) and answers `ThrottlingException` past them. For
//! speed both the mini-ECS and the platform's pacer refill
//! `BENCH_TIME_SCALE` times faster (default 5; bursts unchanged), so the
//! minimum of (N − 100) / 20 s becomes (N − 100) / (20 × scale) s; the
//! ratio to it is what the benchmark reports. Runs at rate shares of 100 %,
//! 95 % and the default 80 % (`ECS_API_RATE_PERCENT`), with the production
//! retry policy: the time from the first RunTask that started a task to
//! the last, its ratio to the account's minimum and to the share's own
//! ((N − burst × share) / (rate × share)), throttled calls, failed deploys.
//!
//! `cargo bench -p platform-aws --bench launch_burst`

use std::sync::Arc;
use std::time::Instant;

use platform_aws::EcsRateLimits;
use platform_aws::testkit as support;
use platform_core::{MeetingPlatform, PlatformService, RetryPolicy};
use support::mini_ecs::MiniEcs;
use wiremock::MockServer;

fn setting(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|v: &f64| *v > 0.0)
        .unwrap_or(default)
}

/// One burst of `bots` deploys at `percent` of limits refilled `scale`
/// times faster.
async fn burst(bots: u64, percent: u8, scale: f64) {
    let limits = EcsRateLimits::DOCUMENTED.refilled_faster(scale);
    let server = MockServer::start().await;
    let ecs = MiniEcs::new();
    ecs.enforce_limits(limits);
    ecs.mount(&server).await;
    let env = support::env(&server.uri()).with("ECS_API_RATE_PERCENT", percent.to_string());
    let aws = Arc::new(
        support::platform_with(&server, &env)
            .with_retry_policy(RetryPolicy::default())
            .with_rate_limits(limits),
    );

    let started = Instant::now();
    let deploys: Vec<_> = (1..=bots)
        .map(|id| {
            let aws = aws.clone();
            tokio::spawn(async move {
                aws.deploy_bot(&support::bot(id, MeetingPlatform::Zoom), 1)
                    .await
            })
        })
        .collect();
    let mut failed = 0;
    for deploy in deploys {
        if !matches!(deploy.await, Ok(Ok(_))) {
            failed += 1;
        }
    }
    let wall = started.elapsed();

    let counts = ecs.counts();
    let span = match (counts.first_launch, counts.last_launch) {
        (Some(first), Some(last)) => last.duration_since(first).as_secs_f64(),
        _ => 0.0,
    };
    let share = f64::from(percent) / 100.0;
    let launches = limits.launches;
    let minimum = (bots as f64 - launches.burst).max(0.0) / launches.per_second;
    let share_minimum =
        (bots as f64 - (launches.burst * share).floor()).max(0.0) / (launches.per_second * share);
    println!(
        "  share {percent:>3} %: first→last RunTask {span:.2} s (minimum {minimum:.2} s, ratio {:.3}; \
         the share's own minimum {share_minimum:.2} s, ratio {:.3}), whole burst {:.2} s, \
         {} RunTask calls, {} throttled, {failed} failed deploys",
        span / minimum,
        span / share_minimum,
        wall.as_secs_f64(),
        counts.run_task,
        counts.throttled,
    );
}

fn main() {
    let bots = setting("BENCH_BOTS", 1000.0) as u64;
    let scale = setting("BENCH_TIME_SCALE", 5.0);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    println!(
        "launch burst: {bots} concurrent deploys against ECS's buckets (launches 100, refilled at 20/s), \
         time scaled {scale}× (minimum {:.1} s ≙ {:.1} s at ECS's real pace)",
        (bots as f64 - 100.0).max(0.0) / (20.0 * scale),
        (bots as f64 - 100.0).max(0.0) / 20.0,
    );
    runtime.block_on(async {
        for percent in [100, 95, 80] {
            burst(bots, percent, scale).await;
        }
    });
}
