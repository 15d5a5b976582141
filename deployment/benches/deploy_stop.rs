//! Deploy and stop 1,000 bots through the service on the in-memory fake
//! platform, and print the service's own overhead per bot (the fake answers
//! at once, so all the time measured is the service's: validation, the
//! database writes with their fsyncs, the state machine) and the peak
//! memory of the process.
//!
//! `cargo bench -p deployment --bench deploy_stop` runs it on a SQLite file
//! in a temporary directory. Set `BENCH_DATABASE_URL=postgres://…` to run
//! it on PostgreSQL instead (the database must exist and be empty), and
//! `BENCH_BOTS` to change the number of bots.

use std::sync::Arc;
use std::time::{Duration, Instant};

use deployment::{BotService, BotState, CreateBot, ServiceOptions, Store};
use platform_core::testkit::FakePlatform;
use platform_core::{BotDeploymentInput, PlatformService, SecretString};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn peak_memory_kib() -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn describe(name: &str, samples: &mut [Duration]) {
    samples.sort();
    let total: Duration = samples.iter().sum();
    println!(
        "{name:<16} p50 {:>8.3} ms   p99 {:>8.3} ms   max {:>8.3} ms   mean {:>8.3} ms",
        percentile(samples, 50.0).as_secs_f64() * 1e3,
        percentile(samples, 99.0).as_secs_f64() * 1e3,
        samples.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        total.as_secs_f64() * 1e3 / samples.len().max(1) as f64,
    );
}

fn main() {
    let bots: u64 = std::env::var("BENCH_BOTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite:{}", dir.path().join("bench.db").display()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let store = Store::connect(&url).await.expect("open the database");
        let fake = Arc::new(FakePlatform::new());
        let service = BotService::new(
            store.clone(),
            fake.clone() as Arc<dyn PlatformService>,
            ServiceOptions::default(),
        );
        let mut deploys = Vec::with_capacity(bots as usize);
        let mut stops = Vec::with_capacity(bots as usize);
        let mut both = Vec::with_capacity(bots as usize);
        let started = Instant::now();
        for n in 0..bots {
            let input = BotDeploymentInput {
                meeting_platform: "zoom".into(),
                meeting_url: format!("https://us02web.zoom.us/j/8{n:010}?pwd=benchpass"),
                meeting_password: Some(SecretString::from("bench-pw")),
                ..Default::default()
            };
            let t0 = Instant::now();
            let bot = service
                .create_bot(CreateBot {
                    input,
                    idempotency: None,
                    deploy: true,
                    priority: 0,
                    webhook_url: None,
                    join_at: None,
                })
                .await
                .expect("deploy")
                .bot;
            let t1 = Instant::now();
            assert_eq!(bot.status, BotState::Running);
            let stopped = service.stop(bot.id).await.expect("stop");
            let t2 = Instant::now();
            assert_eq!(stopped.status, BotState::Stopped);
            deploys.push(t1 - t0);
            stops.push(t2 - t1);
            both.push(t2 - t0);
        }
        let elapsed = started.elapsed();
        assert!(fake.bots().is_empty(), "the fake platform still holds bots");
        println!(
            "deploy + stop of {bots} bots through the service on the fake platform ({:?}, {})",
            store.dialect(),
            store.target()
        );
        describe("create+deploy", &mut deploys);
        describe("stop", &mut stops);
        describe("deploy+stop", &mut both);
        println!(
            "total {:.2} s, {:.0} bots/s (one after another)",
            elapsed.as_secs_f64(),
            bots as f64 / elapsed.as_secs_f64()
        );
        match peak_memory_kib() {
            Some(kib) => println!("peak memory (VmHWM) {:.1} MiB", kib as f64 / 1024.0),
            None => println!("peak memory: /proc/self/status not readable"),
        }
        store.close().await;
    });
}
