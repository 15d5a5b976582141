//! The top-of-the-hour burst on Coolify: 100 bots created over 64
//! concurrent connections, through the real HTTP API and service on SQLite
//! (a file in a temporary directory), deployed by the Coolify platform
//! into a warm pool of 100 Zoom slots of the fake Coolify on 127.0.0.1,
//! which enforces Coolify's API limit in real time as Laravel does (200
//! requests in a one-minute window, then 429 with `Retry-After`).
//!
//! `cargo bench -p deployment --bench burst_coolify`
//!
//! Runs, each on a fresh database, fake Coolify and service, with the
//! production settings of the platform (`COOLIFY_API_REQUESTS_PER_MINUTE`
//! 180, the default retry policy):
//!
//! - `scheduled`: every bot with the same `join_at`, `COOLIFY_DEPLOY_LEAD`
//!   `BENCH_LEAD_S`, by default 1.1 × bots / rate, the rate being 45 bots a
//!   minute: a deploy into a warm slot is four requests (read the slot's
//!   application, read its variables, write them in bulk, start it), and
//!   the platform sends 180 a minute (147 s for 100 bots; the production
//!   default of 60 s is short for a burst of 100 on one Coolify user). The
//!   scheduler's clock is a manual one that stands still while the bots are
//!   created, then jumps to the deploy time and runs with the wall clock;
//!   the Coolify limit and the platform's pacing run in real time.
//!   Reported: (a) create latency p50/p99, creates per second, and the
//!   latency of creates sent while the deploys run; (b) whether every bot
//!   was `running` by its `join_at`, and the last one's margin; (c) first →
//!   last start of a slot (`POST /applications/{uuid}/start`), requests
//!   sent, 429s, failed bots.
//! - `now`: the same creates without `join_at`, and `now-wait` with
//!   `Prefer: wait=120`.
//!
//! `BENCH_MODES` (default `scheduled,now,now-wait`), `BENCH_BOTS` (100),
//! `BENCH_CONNECTIONS` (64), `BENCH_RECONCILE_INTERVAL_MS` (10,000, the
//! production `RECONCILE_INTERVAL`: the reconciler's status reads spend
//! the same per-minute budget as the deploys). Takes about seven minutes.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use deployment::ServiceOptions;
use platform_coolify::testkit::fake_coolify::FakeCoolify;
use platform_coolify::{CoolifyPlatform, Pacing, PerMeetingPlatform};
use platform_core::RetryPolicy;
use support::{
    World, deploy_now_burst, modes, runtime, scheduled_burst, scheduled_options, setting, tally,
    temp_database,
};
use wiremock::MockServer;

/// Coolify's default `API_RATE_LIMIT`.
const COOLIFY_LIMIT: u32 = 200;

/// A database, a fake Coolify enforcing its limit with a slot per bot, the
/// service over the Coolify platform.
async fn world(bots: u64, options: ServiceOptions, interval: Duration) -> World<FakeCoolify> {
    let (dir, _, store) = temp_database().await;
    let server = MockServer::start().await;
    let coolify = FakeCoolify::new();
    coolify.mount(&server).await;
    let slots = u32::try_from(bots).unwrap_or(u32::MAX);
    coolify.add_slots_of(store.installation().as_str(), "zoom", slots);
    let mut config = platform_coolify::testkit::config(&server.uri());
    config.pool_max = PerMeetingPlatform::all(slots as usize);
    config.pacing = Pacing {
        requests_per_minute: 180,
    };
    config.retry = RetryPolicy::default();
    let platform = CoolifyPlatform::new(
        config,
        Arc::new(store.clone()),
        store.installation().clone(),
    )
    .await
    .expect("the Coolify platform");
    // The pool's adoption above is set-up; the limit counts from here.
    coolify.enforce_rate_limit(COOLIFY_LIMIT);
    World::start(
        (dir, server, coolify),
        store,
        Arc::new(platform),
        options,
        interval,
    )
    .await
}

/// First → last slot start, the requests Coolify got since `since` and
/// the 429s it answered.
fn describe_calls(coolify: &FakeCoolify, since: Instant) -> String {
    let mut starts: Vec<Instant> = coolify.deployments().iter().map(|d| d.queued_at).collect();
    starts.sort();
    let span = match (starts.first(), starts.last()) {
        (Some(first), Some(last)) => last.duration_since(*first).as_secs_f64(),
        _ => 0.0,
    };
    // Requests by route, an application's uuid left out.
    let mut routes: std::collections::BTreeMap<String, usize> = Default::default();
    let mut requests = 0;
    for (method, path, at) in coolify.all_arrivals() {
        if at < since {
            continue;
        }
        requests += 1;
        let route: Vec<&str> = path
            .split('/')
            .enumerate()
            .map(|(i, part)| if i == 2 { "{uuid}" } else { part })
            .collect();
        *routes
            .entry(format!("{method} {}", route.join("/")))
            .or_default() += 1;
    }
    let routes: Vec<String> = routes.iter().map(|(r, n)| format!("{n}× {r}")).collect();
    format!(
        "first → last slot start {span:.2} s; {} slots started; {requests} requests to Coolify ({}), {} answered 429",
        starts.len(),
        routes.join(", "),
        coolify.throttled(),
    )
}

async fn scheduled(bots: u64, connections: usize, lead: Duration, interval: Duration) {
    let (options, clock) = scheduled_options("coolify", lead);
    let t0 = clock.now_ms();
    let world = world(bots, options, interval).await;
    let since = Instant::now();
    println!(
        "scheduled Coolify burst: {bots} bots for one join_at, COOLIFY_DEPLOY_LEAD {} s",
        lead.as_secs()
    );
    let coolify = world.fake.clone();
    let launched = move || coolify.deployments().len() as u64;
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
    println!("  (c) {}", describe_calls(&world.fake, since));
    println!("      bots: {}", tally(&world.running, &ids).await);
    world.running.stop().await;
}

async fn now(bots: u64, connections: usize, interval: Duration, prefer: Option<&str>) {
    let world = world(bots, ServiceOptions::default(), interval).await;
    let since = Instant::now();
    println!(
        "deploy-now Coolify burst: {bots} bots without join_at{}",
        prefer.map(|p| format!(", Prefer: {p}")).unwrap_or_default()
    );
    let coolify = world.fake.clone();
    let launched = move || coolify.deployments().len() as u64;
    let ids = deploy_now_burst(&world.running, bots, connections, prefer, &launched).await;
    println!("  {}", describe_calls(&world.fake, since));
    println!("  bots: {}", tally(&world.running, &ids).await);
    world.running.stop().await;
}

fn main() {
    let bots: u64 = setting("BENCH_BOTS", 100);
    let connections: usize = setting("BENCH_CONNECTIONS", 64);
    let interval = Duration::from_millis(setting("BENCH_RECONCILE_INTERVAL_MS", 10_000));
    // 1.1 × bots / (180 / 4 per minute), in whole seconds.
    let lead = Duration::from_secs(setting("BENCH_LEAD_S", (bots * 264).div_ceil(180)));
    runtime().block_on(async {
        for mode in modes("scheduled,now,now-wait") {
            match mode.as_str() {
                "scheduled" => scheduled(bots, connections, lead, interval).await,
                "now" => now(bots, connections, interval, None).await,
                "now-wait" => now(bots, connections, interval, Some("wait=120")).await,
                other => eprintln!("unknown mode {other:?}; allowed: scheduled, now, now-wait"),
            }
        }
    });
}
