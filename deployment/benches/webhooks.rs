//! Webhook delivery, end to end, on one machine: the outbox written with
//! each transition, the delivery worker, a loopback receiver.
//!
//! 1. **Throughput and latency**: bots created, deployed and stopped on the
//!    fake platform (6 events each: created, deploying, running, stopping,
//!    stopped, ended) until about `BENCH_WEBHOOK_EVENTS` (10,000) events
//!    are written, with the worker sending them to a receiver that answers
//!    200 at once. Prints the delivery throughput and the p50/p99 from the
//!    transition's commit (the event's timestamp) to the receiver's answer.
//! 2. **A receiver down for `BENCH_WEBHOOK_OUTAGE` (60) seconds**: events
//!    written while nothing listens, the production retry schedule, then
//!    the receiver back: checks nothing is lost and prints how long the
//!    backlog took to drain after the receiver came back.
//! 3. **Creates with and without webhooks, same run**: create-and-deploy
//!    latency p50/p99 on a database with no webhooks, then on one with the
//!    operator's webhook and the worker delivering meanwhile.
//!
//! `cargo bench -p deployment --bench webhooks` runs on SQLite files in a
//! temporary directory; `BENCH_DATABASE_URL=postgres://…` names an empty
//! PostgreSQL database to use for all three parts instead (each part
//! creates its own bots).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use deployment::api::StopSignal;
use deployment::webhooks::{
    DeliveryWorker, RetrySchedule, Sender, Signer, SigningSecret, WorkerOptions,
};
use deployment::{BotService, CreateBot, ServiceOptions, Store};
use platform_core::testkit::FakePlatform;
use platform_core::{BotDeploymentInput, PlatformService};

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

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

fn now_unix() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// What the receiver saw: each `webhook-id` and how long after the event's
/// commit it was answered.
#[derive(Default)]
struct Seen {
    ids: HashSet<String>,
    duplicates: usize,
    latencies: Vec<Duration>,
    last: Option<Instant>,
}

async fn receive(
    State(seen): State<Arc<Mutex<Seen>>>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> &'static str {
    let answered = now_unix();
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let event: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let committed = event["timestamp"]
        .as_str()
        .and_then(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        })
        .unwrap_or(answered);
    let latency = Duration::try_from(answered - committed).unwrap_or_default();
    let mut seen = seen.lock().unwrap();
    if seen.ids.insert(id) {
        seen.latencies.push(latency);
    } else {
        seen.duplicates += 1;
    }
    seen.last = Some(Instant::now());
    "ok"
}

/// Serves the receiver on `listener` until the task is aborted.
fn serve_receiver(
    listener: tokio::net::TcpListener,
    seen: Arc<Mutex<Seen>>,
) -> tokio::task::JoinHandle<()> {
    let app = axum::Router::new().fallback(receive).with_state(seen);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    })
}

fn input(n: u64) -> BotDeploymentInput {
    BotDeploymentInput {
        meeting_platform: "zoom".into(),
        meeting_url: format!("https://us02web.zoom.us/j/8{n:010}"),
        ..Default::default()
    }
}

fn service(store: Store) -> BotService {
    BotService::new(
        store,
        Arc::new(FakePlatform::new()) as Arc<dyn PlatformService>,
        ServiceOptions::default(),
    )
}

fn worker(store: &Store, schedule: RetrySchedule) -> StopSignal {
    let sender = Sender::new(
        Signer::new(SigningSecret::random(), None),
        Duration::from_secs(10),
        true,
    )
    .expect("an HTTP client");
    let worker = DeliveryWorker::new(
        store.clone(),
        sender,
        WorkerOptions {
            schedule,
            ..WorkerOptions::default()
        },
    );
    let stop = StopSignal::new();
    tokio::spawn(worker.run(stop.stopped()));
    stop
}

/// Creates, deploys and stops `bots` bots from `tasks` concurrent tasks;
/// returns each create-and-deploy's latency.
async fn lifecycles(service: &BotService, first: u64, bots: u64, tasks: u64) -> Vec<Duration> {
    let mut handles = Vec::new();
    for task in 0..tasks {
        let service = service.clone();
        handles.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = first + task;
            while n < first + bots {
                let t0 = Instant::now();
                let bot = service
                    .create_bot(CreateBot {
                        input: input(n),
                        idempotency: None,
                        deploy: true,
                        priority: 0,
                        webhook_url: None,
                        join_at: None,
                    })
                    .await
                    .expect("create and deploy")
                    .bot;
                latencies.push(t0.elapsed());
                service.stop(bot.id).await.expect("stop");
                n += tasks;
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for handle in handles {
        all.extend(handle.await.expect("a bench task"));
    }
    all
}

async fn open(url: &Option<String>, dir: &std::path::Path, name: &str) -> Store {
    let url = url
        .clone()
        .unwrap_or_else(|| format!("sqlite:{}", dir.join(format!("{name}.db")).display()));
    Store::connect(&url).await.expect("open the database")
}

async fn wait_for(seen: &Arc<Mutex<Seen>>, count: usize, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if seen.lock().unwrap().ids.len() >= count {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

fn main() {
    let events = setting("BENCH_WEBHOOK_EVENTS", 10_000);
    let outage = Duration::from_secs(setting("BENCH_WEBHOOK_OUTAGE", 60));
    let database = std::env::var("BENCH_DATABASE_URL").ok();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let database_name = if database.is_some() { "PostgreSQL" } else { "SQLite" };
        println!("webhooks benchmark on {database_name}");

        // 1. Throughput and commit-to-2xx latency.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let receiver = serve_receiver(listener, Arc::clone(&seen));
        let store = open(&database, dir.path(), "throughput")
            .await
            .with_operator_webhook(Some(format!("http://{addr}/hook")));
        let stop = worker(&store, RetrySchedule::default());
        let bots = events.div_ceil(6);
        let written = bots * 6;
        let throughput_service = service(store.clone());
        let t0 = Instant::now();
        lifecycles(&throughput_service, 0, bots, 8).await;
        let writing = t0.elapsed();
        let all = wait_for(&seen, written as usize, Duration::from_secs(600)).await;
        let (delivered, duplicates, mut latencies, last) = {
            let seen = seen.lock().unwrap();
            (seen.ids.len(), seen.duplicates, seen.latencies.clone(), seen.last)
        };
        let elapsed = last.map_or(Duration::ZERO, |l| l - t0);
        latencies.sort();
        println!(
            "1. {written} events from {bots} bots (written in {:.1} s, {:.0} events/s): {delivered} delivered{}, {duplicates} duplicates, in {:.1} s = {:.0} events/s; commit to 2xx p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            writing.as_secs_f64(),
            written as f64 / writing.as_secs_f64(),
            if all { "" } else { " (NOT ALL)" },
            elapsed.as_secs_f64(),
            delivered as f64 / elapsed.as_secs_f64(),
            ms(percentile(&latencies, 50.0)),
            ms(percentile(&latencies, 99.0)),
            ms(latencies.last().copied().unwrap_or_default()),
        );
        stop.stop();
        receiver.abort();
        store.close().await;

        // 2. The receiver down for the outage, then back.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let seen = Arc::new(Mutex::new(Seen::default()));
        let store = open(&database, dir.path(), "outage")
            .await
            .with_operator_webhook(Some(format!("http://{addr}/hook")));
        let stop = worker(&store, RetrySchedule::default());
        let outage_service = service(store.clone());
        let outage_bots = 500;
        let down_at = Instant::now();
        lifecycles(&outage_service, 1_000_000, outage_bots, 8).await;
        let outage_events = (outage_bots * 6) as usize;
        tokio::time::sleep(outage.saturating_sub(down_at.elapsed())).await;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("the receiver's port again");
        let back_at = Instant::now();
        let receiver = serve_receiver(listener, Arc::clone(&seen));
        let all = wait_for(&seen, outage_events, Duration::from_secs(900)).await;
        let drained = back_at.elapsed();
        let summary = store.outbox_summary().await.expect("the outbox");
        let (delivered, duplicates) = {
            let seen = seen.lock().unwrap();
            (seen.ids.len(), seen.duplicates)
        };
        println!(
            "2. receiver down {} s while {outage_events} events were written, then back: {delivered}/{outage_events} delivered{}, {duplicates} duplicates, backlog drained {:.1} s after it came back; outbox {:?}",
            outage.as_secs(),
            if all { "" } else { " (NOT ALL)" },
            drained.as_secs_f64(),
            summary.by_state,
        );
        stop.stop();
        receiver.abort();
        store.close().await;

        // 3. Creates with and without webhooks, in the same run.
        let plain = open(&database, dir.path(), "plain").await;
        let mut without = lifecycles(&service(plain.clone()), 2_000_000, 1_000, 8).await;
        plain.close().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let receiver = serve_receiver(listener, Arc::clone(&seen));
        let hooked = open(&database, dir.path(), "hooked")
            .await
            .with_operator_webhook(Some(format!("http://{addr}/hook")));
        let stop = worker(&hooked, RetrySchedule::default());
        let mut with = lifecycles(&service(hooked.clone()), 3_000_000, 1_000, 8).await;
        without.sort();
        with.sort();
        println!(
            "3. create + deploy, 1,000 bots from 8 tasks: without webhooks p50 {:.1} ms, p99 {:.1} ms; with webhooks (worker delivering) p50 {:.1} ms, p99 {:.1} ms",
            ms(percentile(&without, 50.0)),
            ms(percentile(&without, 99.0)),
            ms(percentile(&with, 50.0)),
            ms(percentile(&with, 99.0)),
        );
        wait_for(&seen, 6_000, Duration::from_secs(300)).await;
        stop.stop();
        receiver.abort();
        hooked.close().await;
    });
}
