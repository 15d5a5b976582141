//! The cost of placement across several platforms, and how fast the queue
//! drains.
//!
//! In one run, on one database: N bots created and placed one after
//! another (1) with one platform, (2) with two platforms where the first
//! is at its cap, so every bot is counted against it and passed over
//! before it is placed on the second — the worst case of a priority list
//! of two; then the ratio of the two means. Then N bots queued on a
//! platform with no room, and the time one `drain_queue` takes to place
//! them all once the cap is raised (bots per second).
//!
//! The platforms are the in-memory fake, which answers at once, so only
//! the service and its database are measured. `cargo bench -p deployment
//! --bench placement` runs on a SQLite file in a temporary directory; set
//! `BENCH_DATABASE_URL=postgres://…` (an existing, empty database) for
//! PostgreSQL, and `BENCH_BOTS` for the number of bots (default 500).

use std::sync::Arc;
use std::time::{Duration, Instant};

use deployment::{BotService, BotState, CreateBot, ServiceOptions, Store};
use platform_core::testkit::FakePlatform;
use platform_core::{BotDeploymentInput, PlatformCapacity, PlatformService, SecretString};

fn request(n: u64) -> CreateBot {
    CreateBot {
        input: BotDeploymentInput {
            meeting_platform: "zoom".into(),
            meeting_url: format!("https://us02web.zoom.us/j/8{n:010}?pwd=benchpass"),
            meeting_password: Some(SecretString::from("bench-pw")),
            ..Default::default()
        },
        idempotency: None,
        deploy: true,
        priority: 0,
        webhook_url: None,
        join_at: None,
    }
}

fn platform(name: &'static str, cap: Option<u32>) -> Arc<dyn PlatformService> {
    Arc::new(
        FakePlatform::new()
            .named(name)
            .with_capacity(PlatformCapacity::at_most(cap, "BENCH_MAX_BOTS")),
    )
}

fn service(store: &Store, platforms: Vec<Arc<dyn PlatformService>>) -> BotService {
    let service = BotService::with_platforms(store.clone(), platforms, ServiceOptions::default())
        .expect("a valid platform list");
    // Measured drains are called explicitly.
    service.set_background_drain(false);
    service
}

/// Creates and places `bots` bots one after another; the mean time per bot.
async fn place_all(service: &BotService, first: u64, bots: u64, expect: BotState) -> Duration {
    let started = Instant::now();
    for n in first..first + bots {
        let bot = service.create_bot(request(n)).await.expect("create").bot;
        assert_eq!(bot.status, expect, "{bot:?}");
    }
    started.elapsed() / u32::try_from(bots).unwrap_or(u32::MAX)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let bots: u64 = std::env::var("BENCH_BOTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite:{}", dir.path().join("bench.db").display()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let store = Store::connect(&url).await.expect("open the database");
        println!(
            "placement of {bots} bots, one after another ({:?}, {})",
            store.dialect(),
            store.target()
        );
        // Warm the connections and statement caches first.
        let warm = service(&store, vec![platform("warm", None)]);
        place_all(&warm, 0, 20, BotState::Running).await;

        let one = service(&store, vec![platform("one", None)]);
        let single = place_all(&one, 1_000_000, bots, BotState::Running).await;
        let two = service(
            &store,
            vec![platform("full", Some(0)), platform("second", None)],
        );
        let double = place_all(&two, 2_000_000, bots, BotState::Running).await;
        println!(
            "create + place + deploy, mean per bot: one platform {:.3} ms, two platforms (first full) {:.3} ms, ratio {:.2}",
            ms(single),
            ms(double),
            double.as_secs_f64() / single.as_secs_f64()
        );

        let closed = service(&store, vec![platform("queue", Some(0))]);
        let queued = place_all(&closed, 3_000_000, bots, BotState::Queued).await;
        let open = service(&store, vec![platform("queue", None)]);
        let started = Instant::now();
        let report = open.drain_queue().await.expect("drain");
        let drained = started.elapsed();
        assert_eq!(report.placed as u64, bots, "{report:?}");
        println!(
            "queueing, mean per bot {:.3} ms; drain of {bots} queued bots in {:.2} s: {:.0} bots/s ({} at once)",
            ms(queued),
            drained.as_secs_f64(),
            bots as f64 / drained.as_secs_f64(),
            ServiceOptions::default().drain_concurrency
        );
        store.close().await;
    });
}
