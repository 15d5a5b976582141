//! The top-of-the-hour burst on ECS: 1,000 bots created over 64 concurrent
//! connections, through the real HTTP API and service on SQLite (a file in
//! a temporary directory), deployed by the AWS platform against the mini
//! ECS on 127.0.0.1, which enforces ECS's documented buckets in real time
//! (Fargate launches: 100, refilled at 20 a second; modify and read
//! buckets likewise) and answers `ThrottlingException` past them.
//!
//! `cargo bench -p deployment --bench burst`
//!
//! Runs, each on a fresh database, mini ECS and service:
//!
//! - `scheduled` at each share of `BENCH_SHARES` (default `80,95`, the
//!   `ECS_API_RATE_PERCENT` given to the platform): every bot with the same
//!   `join_at`, and the AWS lead time (`AWS_DEPLOY_LEAD`, set through
//!   `ServiceOptions::schedule`) the smallest whole number of seconds at
//!   least 1.1 × bots / (20 × share) — 69 s at 80 %, 58 s at 95 % for 1,000
//!   bots. The scheduler's clock is a manual one that stands still while
//!   the bots are created (their deploy time is a minute ahead), then jumps
//!   to the deploy time and from there runs with the wall clock, so the
//!   bench does not wait out the minute; RunTask pacing, the buckets and
//!   everything else run in real time. Reported: (a) create latency
//!   p50/p99 and creates per second, and the latency of creates sent while
//!   the deploys run (one connection, a bot scheduled a day ahead every
//!   100 ms); (b) whether every bot was `running` by its `join_at`, and the
//!   margin of the last one (its history's `running` time, moved onto the
//!   scheduler's clock); (c) first → last RunTask against the account's
//!   minimum (bots − 100) / 20 s and the share's own, throttled calls and
//!   failed bots.
//! - `now` at the default share (80 %): the same creates without
//!   `join_at` (deploy now), and `now-wait` with `Prefer: wait=120`: what a
//!   create costs its caller when it deploys at once, and when it waits for
//!   the bot, beside the scheduled burst's figures. Reported: create
//!   latency, the answers' statuses, first → last RunTask, when the last
//!   bot was running, throttled calls, failed bots.
//!
//! `BENCH_MODES` (default `scheduled,now,now-wait`), `BENCH_BOTS` (1000),
//! `BENCH_CONNECTIONS` (64), `BENCH_RECONCILE_INTERVAL_MS` (1000: the
//! reconciler reads the tasks' status every second, so a bot is shown
//! `running` within about three seconds of its RunTask — the mini ECS needs
//! three DescribeTasks — rather than three production intervals of 10 s).
//! Everything else is the production default (`PLATFORM_CALL_TIMEOUT` 60 s,
//! the platform's retry policy). Takes about eight minutes.

mod support;

use std::sync::Arc;
use std::time::Duration;

use deployment::ServiceOptions;
use platform_aws::EcsRateLimits;
use platform_aws::testkit as ecs_kit;
use platform_aws::testkit::mini_ecs::MiniEcs;
use platform_core::RetryPolicy;
use support::{
    World, deploy_now_burst, modes, runtime, scheduled_burst, scheduled_options, setting, tally,
    temp_database,
};
use wiremock::MockServer;

/// A database, a mini ECS enforcing ECS's buckets, the service over the
/// AWS platform at `share` % of them.
async fn world(share: u8, options: ServiceOptions, interval: Duration) -> World<MiniEcs> {
    let (dir, _, store) = temp_database().await;
    let server = MockServer::start().await;
    let ecs = MiniEcs::new();
    ecs.enforce_limits(EcsRateLimits::DOCUMENTED);
    ecs.mount(&server).await;
    let env = ecs_kit::env(&server.uri()).with("ECS_API_RATE_PERCENT", share.to_string());
    let aws = ecs_kit::platform_at(&server.uri(), &env, store.installation().clone())
        .with_retry_policy(RetryPolicy::default());
    World::start((dir, server, ecs), store, Arc::new(aws), options, interval).await
}

/// First → last RunTask that started a task, and how it compares with the
/// account's minimum and the share's.
fn describe_launches(ecs: &MiniEcs, bots: u64, share: u8) -> String {
    let counts = ecs.counts();
    let span = match (counts.first_launch, counts.last_launch) {
        (Some(first), Some(last)) => last.duration_since(first).as_secs_f64(),
        _ => 0.0,
    };
    let limits = EcsRateLimits::DOCUMENTED.launches;
    let minimum = (bots as f64 - limits.burst).max(0.0) / limits.per_second;
    let fraction = f64::from(share) / 100.0;
    let share_minimum =
        (bots as f64 - (limits.burst * fraction).floor()).max(0.0) / (limits.per_second * fraction);
    format!(
        "first → last RunTask {span:.2} s ({:.3}× the account's minimum {minimum:.1} s, {:.3}× the share's {share_minimum:.1} s); {} tasks started, {} RunTask calls, {} DescribeTasks, {} throttled",
        span / minimum.max(1e-9),
        span / share_minimum.max(1e-9),
        ecs.tasks_started(),
        counts.run_task,
        counts.describe_tasks,
        counts.throttled,
    )
}

async fn scheduled(bots: u64, connections: usize, share: u8, interval: Duration) {
    let rate = 20.0 * f64::from(share) / 100.0;
    let lead = Duration::from_secs((1.1 * bots as f64 / rate).ceil() as u64);
    let (options, clock) = scheduled_options("aws", lead);
    let t0 = clock.now_ms();
    let world = world(share, options, interval).await;
    println!(
        "scheduled burst at a {share} % share: {bots} bots for one join_at, AWS_DEPLOY_LEAD {} s (≥ 1.1 × {bots} / {rate} per s)",
        lead.as_secs()
    );
    let ecs = world.fake.clone();
    let launched = move || ecs.tasks_started() as u64;
    let ids = scheduled_burst(
        &world.running,
        &clock,
        t0,
        lead,
        bots,
        connections,
        &launched,
    )
    .await;
    println!("  (c) {}", describe_launches(&world.fake, bots, share));
    println!("      bots: {}", tally(&world.running, &ids).await);
    world.running.stop().await;
}

async fn now(bots: u64, connections: usize, share: u8, interval: Duration, prefer: Option<&str>) {
    let world = world(share, ServiceOptions::default(), interval).await;
    println!(
        "deploy-now burst at a {share} % share: {bots} bots without join_at{}",
        prefer.map(|p| format!(", Prefer: {p}")).unwrap_or_default()
    );
    let ecs = world.fake.clone();
    let launched = move || ecs.tasks_started() as u64;
    let ids = deploy_now_burst(&world.running, bots, connections, prefer, &launched).await;
    println!("  {}", describe_launches(&world.fake, bots, share));
    println!("  bots: {}", tally(&world.running, &ids).await);
    world.running.stop().await;
}

fn main() {
    let bots: u64 = setting("BENCH_BOTS", 1000);
    let connections: usize = setting("BENCH_CONNECTIONS", 64);
    let interval = Duration::from_millis(setting("BENCH_RECONCILE_INTERVAL_MS", 1000));
    let shares: Vec<u8> = std::env::var("BENCH_SHARES")
        .unwrap_or_else(|_| "80,95".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    runtime().block_on(async {
        for mode in modes("scheduled,now,now-wait") {
            match mode.as_str() {
                "scheduled" => {
                    for share in &shares {
                        scheduled(bots, connections, *share, interval).await;
                    }
                }
                "now" => now(bots, connections, 80, interval, None).await,
                "now-wait" => now(bots, connections, 80, interval, Some("wait=120")).await,
                other => eprintln!("unknown mode {other:?}; allowed: scheduled, now, now-wait"),
            }
        }
    });
}
