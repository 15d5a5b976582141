//! The bot protocol under load: 1,000 bots heartbeating every 10 s, then
//! 1,000 bots reporting a meeting-status change at once, over HTTP on
//! loopback, against the real API and store (SQLite file, or PostgreSQL
//! with `BENCH_DATABASE_URL`), on the in-memory fake platform.
//!
//! `cargo bench -p deployment --bench bot_protocol`
//! (`BENCH_BOTS`, `BENCH_ROUNDS` (default 3 rounds of 10 s), `BENCH_DATABASE_URL`).
//!
//! The service runs on its own runtime whose threads are named
//! `service`, the load on threads named `load`; CPU time is read per thread
//! from /proc, so the service's CPU is reported apart from the load's.
//! Database writes per heartbeat are the heartbeat buffer's flushes (one
//! statement each) divided by the heartbeats received.

use std::sync::Arc;
use std::time::{Duration, Instant};

use deployment::api::{self, ApiToken, ServeOptions, StopSignal};
use deployment::{BotService, CreateBot, ServiceOptions, Store};
use platform_core::bot_env::names;
use platform_core::testkit::FakePlatform;
use platform_core::{BotDeploymentInput, PlatformService, SecretString};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn peak_memory_kib() -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// CPU seconds (user + system) of this process's threads named `name`.
fn thread_cpu_secs(name: &str) -> f64 {
    let ticks_per_sec = 100.0; // USER_HZ on Linux
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    let mut ticks = 0_u64;
    for task in tasks.flatten() {
        let path = task.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(path.join("stat")).unwrap_or_default();
        // Fields after the command name (which ends with ')'): state is the
        // 3rd field; utime and stime are the 14th and 15th.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0);
        let stime: u64 = fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
        ticks += utime + stime;
    }
    ticks as f64 / ticks_per_sec
}

fn input(n: u64) -> BotDeploymentInput {
    BotDeploymentInput {
        meeting_platform: "zoom".into(),
        meeting_url: format!("https://us02web.zoom.us/j/8{n:010}?pwd=benchpass"),
        meeting_password: Some(SecretString::from("bench-pw")),
        ..Default::default()
    }
}

fn main() {
    let bots: u64 = std::env::var("BENCH_BOTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let rounds: u32 = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite:{}", dir.path().join("bench.db").display()));
    let service_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("service")
        .enable_all()
        .build()
        .expect("a runtime");
    let load_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("load")
        .enable_all()
        .build()
        .expect("a runtime");

    let listener = service_runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().unwrap();
    let fake = Arc::new(FakePlatform::new());
    let store = service_runtime
        .block_on(Store::connect(&url))
        .expect("open the database");
    println!("database: {}", store.target());
    let service = BotService::new(
        store,
        fake.clone() as Arc<dyn PlatformService>,
        ServiceOptions {
            bot_api_url: Some(format!("http://{addr}")),
            // Every bot heartbeats and reports here; the limit is not what
            // is measured.
            bot_events_per_minute: 100_000,
            ..ServiceOptions::default()
        },
    );
    let stop = StopSignal::new();
    let server = service_runtime.spawn(api::serve(
        listener,
        service.clone(),
        ApiToken::new(&SecretString::from("bench-token-0123456789")),
        ServeOptions {
            reconcile_interval: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
            max_body_bytes: 65_536,
            webhook_worker: None,
        },
        stop.stopped(),
    ));

    // The bots, deployed on the fake platform, each with its token.
    let tokens: Vec<(u64, String)> = service_runtime.block_on(async {
        let mut tokens = Vec::new();
        for n in 0..bots {
            let bot = service
                .create_bot(CreateBot {
                    input: input(n),
                    idempotency: None,
                    deploy: true,
                    webhook_url: None,
                    join_at: None,
                    priority: 0,
                })
                .await
                .expect("create a bot")
                .bot;
            let (_, env) = fake.environments(bot.id).pop().expect("a deploy");
            tokens.push((bot.id.0, env.get(names::BOT_TOKEN).unwrap().to_owned()));
        }
        tokens
    });
    println!("{bots} bots running");
    let tokens = Arc::new(tokens);
    let base = format!("http://{addr}");

    // Phase 1: every bot heartbeats every 10 s, spread evenly.
    let before_cpu = thread_cpu_secs("service");
    let before = service.heartbeat_counts();
    let started = Instant::now();
    let latencies: Vec<Duration> = load_runtime.block_on({
        let tokens = Arc::clone(&tokens);
        let base = base.clone();
        async move {
            let client = reqwest::Client::builder()
                .no_proxy()
                .pool_max_idle_per_host(256)
                .build()
                .unwrap();
            let period = Duration::from_secs(10);
            let gap = period / u32::try_from(tokens.len().max(1)).unwrap_or(1);
            let mut handles = Vec::new();
            let start = tokio::time::Instant::now();
            for round in 0..rounds {
                for (i, (id, token)) in tokens.iter().enumerate() {
                    let due = start + period * round + gap * u32::try_from(i).unwrap_or(0);
                    tokio::time::sleep_until(due).await;
                    let client = client.clone();
                    let url = format!("{base}/v1/bot/{id}/heartbeat");
                    let token = token.clone();
                    handles.push(tokio::spawn(async move {
                        let t = Instant::now();
                        let response = client.post(url).bearer_auth(token).send().await;
                        let ok = response.is_ok_and(|r| r.status().is_success());
                        (t.elapsed(), ok)
                    }));
                }
            }
            let mut out = Vec::new();
            let mut errors = 0;
            for handle in handles {
                let (took, ok) = handle.await.unwrap();
                if !ok {
                    errors += 1;
                }
                out.push(took);
            }
            println!("heartbeat errors: {errors}");
            out
        }
    });
    let wall = started.elapsed();
    // Let the last flush happen.
    load_runtime.block_on(async { tokio::time::sleep(Duration::from_secs(6)).await });
    let after = service.heartbeat_counts();
    let cpu = thread_cpu_secs("service") - before_cpu;
    let mut sorted = latencies;
    sorted.sort();
    let received = after.received - before.received;
    let flushes = after.flushes - before.flushes;
    println!(
        "heartbeats: {received} over {:.1} s ({:.0}/s); latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        wall.as_secs_f64(),
        received as f64 / wall.as_secs_f64(),
        ms(percentile(&sorted, 50.0)),
        ms(percentile(&sorted, 99.0)),
        ms(sorted.last().copied().unwrap_or_default()),
    );
    println!(
        "database writes: {flushes} flush statements for {received} heartbeats = {:.4} writes per heartbeat",
        flushes as f64 / received.max(1) as f64
    );
    println!(
        "service CPU: {:.2} s over {:.1} s = {:.1} % of one core",
        cpu,
        wall.as_secs_f64() + 6.0,
        cpu * 100.0 / (wall.as_secs_f64() + 6.0)
    );

    // Phase 2: every bot reports in_call at the same moment.
    let before_cpu = thread_cpu_secs("service");
    let started = Instant::now();
    let latencies: Vec<Duration> = load_runtime.block_on({
        let tokens = Arc::clone(&tokens);
        let base = base.clone();
        async move {
            let client = reqwest::Client::builder()
                .no_proxy()
                .pool_max_idle_per_host(1024)
                .build()
                .unwrap();
            let handles: Vec<_> = tokens
                .iter()
                .map(|(id, token)| {
                    let client = client.clone();
                    let url = format!("{base}/v1/bot/{id}/events");
                    let token = token.clone();
                    tokio::spawn(async move {
                        let t = Instant::now();
                        let response = client
                            .post(url)
                            .bearer_auth(token)
                            .json(&serde_json::json!({"status": "in_call", "recording": false}))
                            .send()
                            .await;
                        let ok = response.is_ok_and(|r| r.status().is_success());
                        (t.elapsed(), ok)
                    })
                })
                .collect();
            let mut out = Vec::new();
            let mut errors = 0;
            for handle in handles {
                let (took, ok) = handle.await.unwrap();
                if !ok {
                    errors += 1;
                }
                out.push(took);
            }
            println!("status-change errors: {errors}");
            out
        }
    });
    let wall = started.elapsed();
    let cpu = thread_cpu_secs("service") - before_cpu;
    let mut sorted = latencies;
    sorted.sort();
    println!(
        "status changes: {} at once, all answered in {:.2} s; latency p50 {:.1} ms, p99 {:.1} ms; service CPU {:.2} s",
        sorted.len(),
        wall.as_secs_f64(),
        ms(percentile(&sorted, 50.0)),
        ms(percentile(&sorted, 99.0)),
        cpu
    );
    if let Some(kib) = peak_memory_kib() {
        println!(
            "peak memory (VmHWM) of the whole process (service and load): {:.1} MiB",
            kib as f64 / 1024.0
        );
    }
    stop.stop();
    let _ = service_runtime.block_on(server);
    service_runtime.block_on(service.store().close());
}
