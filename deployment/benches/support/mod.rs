//! What the burst, idle-schedule and reconcile-pass benchmarks share: the
//! real HTTP API and service started in-process on loopback over the
//! platforms given, a load of creates over concurrent connections,
//! latency percentiles, and the process's memory.
//!
//! Each benchmark uses a part of it.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use deployment::api::{self, ApiToken, ServeOptions, StopSignal};
use deployment::schedule::ScheduleOptions;
use deployment::service::ListQuery;
use deployment::{BotService, BotState, Clock, CreateBot, DeployWait, ServiceOptions, Store};
use futures::StreamExt;
use platform_core::{BotDeploymentInput, BotId, PlatformService, SecretString};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The API token of the benchmarks' services.
pub const TOKEN: &str = "bench-token-0123456789";

/// The nearest-rank percentile `p` (0 to 100) of `sorted`.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Milliseconds, for printing.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A number read from the environment, or `default`.
pub fn setting<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A field of /proc/self/status in KiB (`VmRSS`, `VmHWM`).
pub fn proc_status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|l| {
                l.strip_prefix(field)
                    .and_then(|v| v.strip_prefix(':'))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
        })
        .unwrap_or(0)
}

/// The benchmarks' runtime: tokio's multi-threaded one, a worker per core.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// A SQLite database in a new temporary directory: the directory (removed
/// when dropped), its URL, the store.
pub async fn temp_database() -> (tempfile::TempDir, String, Store) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite:{}", dir.path().join("bench.db").display());
    let store = Store::connect(&url).await.expect("open the database");
    (dir, url, store)
}

/// The runs `BENCH_MODES` asks for (comma-separated), or `default`.
pub fn modes(default: &str) -> Vec<String> {
    std::env::var("BENCH_MODES")
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .map(|m| m.trim().to_owned())
        .filter(|m| !m.is_empty())
        .collect()
}

/// Options whose scheduler runs on a manual clock (returned with them),
/// standing at the wall clock's time now, with `lead` the lead time of
/// `platform`.
pub fn scheduled_options(platform: &str, lead: Duration) -> (ServiceOptions, Clock) {
    let clock = Clock::manual_now();
    let options = ServiceOptions {
        schedule: ScheduleOptions {
            leads: vec![(platform.to_owned(), lead)],
            ..ScheduleOptions::default()
        },
        clock: clock.clone(),
        ..ServiceOptions::default()
    };
    (options, clock)
}

/// Bot `n`'s meeting: a Zoom meeting of its own, with a passcode.
pub fn bench_input(n: u64) -> BotDeploymentInput {
    BotDeploymentInput {
        meeting_platform: "zoom".into(),
        meeting_url: format!("https://us02web.zoom.us/j/8{n:010}?pwd=benchpass"),
        meeting_password: Some(SecretString::from("bench-pw")),
        ..Default::default()
    }
}

/// Creates bots `numbers` to deploy, in process (`create_bot_with`, the
/// path of `POST /v1/bots` without HTTP), 64 at a time: bot `n` scheduled
/// for `join_at(n)` (RFC 3339) when that is given, each answered as `wait`
/// says. The bots' states as created.
pub async fn create_in_process(
    service: &BotService,
    numbers: std::ops::Range<u64>,
    join_at: &(dyn Fn(u64) -> Option<String> + Sync),
    wait: DeployWait,
) -> Vec<BotState> {
    futures::stream::iter(numbers)
        .map(|n| {
            let service = service.clone();
            let join_at = join_at(n);
            async move {
                let request = CreateBot {
                    input: bench_input(n),
                    idempotency: None,
                    deploy: true,
                    priority: 0,
                    webhook_url: None,
                    join_at,
                };
                service
                    .create_bot_with(request, wait, &mut |_| {})
                    .await
                    .expect("create a bot")
                    .bot
                    .status
            }
        })
        .buffer_unordered(64)
        .collect()
        .await
}

/// Whether any bot is in `state`: a page of one, so that looking costs
/// the service under measurement next to nothing.
pub async fn any_in(service: &BotService, state: BotState) -> bool {
    service
        .list(&ListQuery {
            status: Some(state),
            limit: Some(1),
            ..ListQuery::default()
        })
        .await
        .is_ok_and(|page| !page.bots.is_empty())
}

/// One run's world: a database in a temporary directory, a fake platform
/// server on loopback and what drives it, the service over it.
pub struct World<F> {
    /// The database's directory, removed with the world.
    pub dir: tempfile::TempDir,
    /// The fake platform's server.
    pub server: wiremock::MockServer,
    /// The fake platform's state (the mini ECS, the fake Coolify).
    pub fake: F,
    /// The service.
    pub running: Running,
}

impl<F> World<F> {
    /// Starts the service over `platform` on `store` (see
    /// [`Running::start`]) in the world of `dir`, `server` and `fake`.
    pub async fn start(
        (dir, server, fake): (tempfile::TempDir, wiremock::MockServer, F),
        store: Store,
        platform: Arc<dyn PlatformService>,
        options: ServiceOptions,
        interval: Duration,
    ) -> Self {
        let running = Running::start(store, vec![platform], options, interval).await;
        Self {
            dir,
            server,
            fake,
            running,
        }
    }
}

/// A time (ms since the epoch) as RFC 3339, as a client sends `join_at`.
pub fn rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .expect("a time in range")
        .format(&Rfc3339)
        .expect("formattable")
}

/// A create request's body for bot `n`, scheduled for `join_at` (ms) or
/// deployed now.
pub fn create_body(n: u64, join_at: Option<i64>) -> Value {
    let mut body = serde_json::json!({
        "meeting_platform": "zoom",
        "meeting_url": format!("https://us02web.zoom.us/j/8{n:010}?pwd=benchpass"),
    });
    if let Some(at) = join_at {
        body["join_at"] = Value::String(rfc3339(at));
    }
    body
}

/// The service over `platforms`, serving the API on 127.0.0.1 with its
/// reconciler (and scheduler) every `reconcile_interval`.
pub struct Running {
    /// The service, for reading what happened.
    pub service: BotService,
    /// `http://127.0.0.1:port`.
    pub base: String,
    stop: StopSignal,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Starts the API and reconciler. The sweep lease is four fifths of
    /// the interval, as `serve` derives it.
    pub async fn start(
        store: Store,
        platforms: Vec<Arc<dyn PlatformService>>,
        mut options: ServiceOptions,
        reconcile_interval: Duration,
    ) -> Self {
        options.sweep_lease = reconcile_interval * 4 / 5;
        let service =
            BotService::with_platforms(store, platforms, options).expect("a valid platform list");
        Self::serve(service, reconcile_interval).await
    }

    /// Serves the API of `service` and runs its reconciler.
    pub async fn serve(service: BotService, reconcile_interval: Duration) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let base = format!("http://{}", listener.local_addr().expect("an address"));
        let stop = StopSignal::new();
        let server = tokio::spawn(api::serve(
            listener,
            service.clone(),
            ApiToken::new(&SecretString::from(TOKEN)),
            ServeOptions {
                reconcile_interval,
                shutdown_grace: Duration::from_secs(5),
                max_body_bytes: 65_536,
                webhook_worker: None,
            },
            stop.stopped(),
        ));
        Self {
            service,
            base,
            stop,
            server,
        }
    }

    /// Stops the API and the reconciler.
    pub async fn stop(self) {
        self.stop.stop();
        let _ = self.server.await;
    }

    /// Every bot's status, by paging the list.
    pub async fn statuses(&self) -> Vec<(BotId, BotState)> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let page = self
                .service
                .list(&ListQuery {
                    cursor,
                    limit: Some(500),
                    ..ListQuery::default()
                })
                .await
                .expect("list bots");
            out.extend(page.bots.iter().map(|b| (b.id, b.status)));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return out,
            }
        }
    }

    /// When (wall clock, ms) bot `id` first became `running`.
    pub async fn running_at_ms(&self, id: BotId) -> Option<i64> {
        let details = self.service.get(id).await.ok()?;
        details
            .history
            .iter()
            .find(|h| h.to == BotState::Running)
            .map(|h| i64::try_from(h.at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX))
    }
}

/// One answered create.
#[derive(Clone, Debug)]
pub struct Answer {
    /// From sending the request to reading the whole answer.
    pub latency: Duration,
    /// The HTTP status (0: no answer at all).
    pub code: u16,
    /// The bot's `status` in the answer, or the error's `code`.
    pub status: String,
    /// The bot's id, when created.
    pub id: Option<u64>,
}

/// `bots` creates over `connections` concurrent connections, each sending
/// its next request when the previous one is answered; `prefer` is sent
/// as the `Prefer` header. The answers in the order they finished, and the
/// wall time of the whole load.
pub async fn create_load(
    base: &str,
    bots: u64,
    first: u64,
    connections: usize,
    join_at: Option<i64>,
    prefer: Option<&str>,
) -> (Vec<Answer>, Duration) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(connections)
        .timeout(Duration::from_secs(600))
        .build()
        .expect("an HTTP client");
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let client = client.clone();
            let next = next.clone();
            let url = format!("{base}/v1/bots");
            let prefer = prefer.map(str::to_owned);
            tokio::spawn(async move {
                let mut answers = Vec::new();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= bots {
                        return answers;
                    }
                    let mut request = client
                        .post(&url)
                        .bearer_auth(TOKEN)
                        .json(&create_body(first + n, join_at));
                    if let Some(prefer) = &prefer {
                        request = request.header("Prefer", prefer);
                    }
                    let t = Instant::now();
                    let answer = match request.send().await {
                        Ok(response) => {
                            let code = response.status().as_u16();
                            let body: Value = response.json().await.unwrap_or(Value::Null);
                            let status = body["status"]
                                .as_str()
                                .or_else(|| body["code"].as_str())
                                .or_else(|| body["error"]["code"].as_str())
                                .unwrap_or("?")
                                .to_owned();
                            Answer {
                                latency: t.elapsed(),
                                code,
                                status,
                                id: body["id"].as_u64(),
                            }
                        }
                        Err(_) => Answer {
                            latency: t.elapsed(),
                            code: 0,
                            status: "no answer".into(),
                            id: None,
                        },
                    };
                    answers.push(answer);
                }
            })
        })
        .collect();
    let mut answers = Vec::new();
    for worker in workers {
        answers.extend(worker.await.expect("a load worker"));
    }
    (answers, started.elapsed())
}

/// "p50 / p99 / max" of the answers' latencies, the rate, and how many
/// answers of each HTTP status and bot status came back.
pub fn describe_answers(answers: &[Answer], wall: Duration) -> String {
    let mut latencies: Vec<Duration> = answers.iter().map(|a| a.latency).collect();
    latencies.sort();
    let mut kinds: std::collections::BTreeMap<String, usize> = Default::default();
    for a in answers {
        *kinds.entry(format!("{} {}", a.code, a.status)).or_default() += 1;
    }
    let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{n}× {k}")).collect();
    format!(
        "{} creates in {:.2} s ({:.0}/s): latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; answers: {}",
        answers.len(),
        wall.as_secs_f64(),
        answers.len() as f64 / wall.as_secs_f64().max(1e-9),
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 99.0)),
        ms(latencies.last().copied().unwrap_or_default()),
        kinds.join(", ")
    )
}

/// The wall clock, ms since the epoch.
pub fn wall_ms() -> i64 {
    Clock::system().now_ms()
}

/// What a platform's fake says it started so far.
pub type Launched<'a> = &'a (dyn Fn() -> u64 + Sync);

/// Waits until `bots` bots were started on the platform (`launched`) and
/// no bot is deploying, pending or queued any more, or `limit` passed.
pub async fn settle(
    running: &Running,
    bots: u64,
    launched: Launched<'_>,
    limit: Duration,
) -> Duration {
    let started = Instant::now();
    while started.elapsed() < limit {
        let mut busy = false;
        for state in [BotState::Deploying, BotState::Pending, BotState::Queued] {
            busy = busy || any_in(&running.service, state).await;
        }
        if !busy && launched() >= bots {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    started.elapsed()
}

/// How many of `ids` ended in each state.
pub async fn tally(running: &Running, ids: &[BotId]) -> String {
    let statuses = running.statuses().await;
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    for (id, state) in &statuses {
        if ids.contains(id) {
            *counts.entry(state.as_str()).or_default() += 1;
        }
    }
    counts
        .iter()
        .map(|(s, n)| format!("{n} {s}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A scheduled burst on a service whose scheduler runs on the manual
/// `clock`, which stood at `t0` when the service started and whose lead
/// time is `lead`: `bots` creates over `connections` connections for one
/// `join_at` (a minute after `t0` plus the lead), then the clock jumps to
/// the deploy time and runs with the wall clock from there; meanwhile,
/// until every bot is started, one connection creates a bot scheduled a
/// day ahead every 100 ms. Prints (a) the create latencies and (b) whether
/// every bot was running by `join_at`; returns the bots' ids.
pub async fn scheduled_burst(
    running: &Running,
    clock: &Clock,
    t0: i64,
    lead: Duration,
    bots: u64,
    connections: usize,
    launched: Launched<'_>,
) -> Vec<BotId> {
    let deploy_at = t0 + 60_000;
    let join_at = deploy_at + i64::try_from(lead.as_millis()).unwrap_or(i64::MAX);
    let (answers, wall) =
        create_load(&running.base, bots, 0, connections, Some(join_at), None).await;
    println!("  (a) {}", describe_answers(&answers, wall));
    let ids: Vec<BotId> = answers.iter().filter_map(|a| a.id.map(BotId)).collect();

    // The deploy time comes: from now on the scheduler's clock runs with
    // the wall clock, `offset` ahead of it.
    let offset = deploy_at - wall_ms();
    clock.set_ms(deploy_at);
    let ticking = tokio::spawn({
        let clock = clock.clone();
        async move {
            loop {
                clock.set_ms(wall_ms() + offset);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    });
    let deploying = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let probe = tokio::spawn({
        let base = running.base.clone();
        let deploying = deploying.clone();
        async move {
            let mut answers = Vec::new();
            let mut n = 1_000_000;
            while deploying.load(Ordering::Relaxed) {
                let (mut one, _) =
                    create_load(&base, 1, n, 1, Some(join_at + 86_400_000), None).await;
                answers.append(&mut one);
                n += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            answers
        }
    });
    let took = settle(running, bots, launched, lead + Duration::from_secs(30)).await;
    deploying.store(false, Ordering::Relaxed);
    let probes = probe.await.expect("the probe");
    let mut probe_latencies: Vec<Duration> = probes.iter().map(|a| a.latency).collect();
    probe_latencies.sort();
    println!(
        "  (a) while the deploys ran: {} creates, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} not 201)",
        probes.len(),
        ms(percentile(&probe_latencies, 50.0)),
        ms(percentile(&probe_latencies, 99.0)),
        ms(probe_latencies.last().copied().unwrap_or_default()),
        probes.iter().filter(|a| a.code != 201).count(),
    );
    let mut latest: Option<i64> = None;
    let mut on_time = 0;
    for id in &ids {
        if let Some(at) = running.running_at_ms(*id).await {
            let at = at + offset;
            if at <= join_at {
                on_time += 1;
            }
            latest = Some(latest.map_or(at, |l: i64| l.max(at)));
        }
    }
    println!(
        "  (b) {on_time} of {} bots running by join_at; the last one {}; settled {:.1} s after the deploy time",
        ids.len(),
        match latest {
            Some(at) if at <= join_at => {
                format!("{:.1} s before join_at", (join_at - at) as f64 / 1e3)
            }
            Some(at) => format!("{:.1} s AFTER join_at", (at - join_at) as f64 / 1e3),
            None => "never".to_owned(),
        },
        took.as_secs_f64()
    );
    ticking.abort();
    ids
}

/// A burst of `bots` creates without `join_at` (deploy now) over
/// `connections` connections, `prefer` sent as `Prefer`. Prints the create
/// latencies and when the last bot was running; returns the bots' ids.
pub async fn deploy_now_burst(
    running: &Running,
    bots: u64,
    connections: usize,
    prefer: Option<&str>,
    launched: Launched<'_>,
) -> Vec<BotId> {
    let started_ms = wall_ms();
    let (answers, wall) = create_load(&running.base, bots, 0, connections, None, prefer).await;
    println!("  {}", describe_answers(&answers, wall));
    let ids: Vec<BotId> = answers.iter().filter_map(|a| a.id.map(BotId)).collect();
    settle(running, bots, launched, Duration::from_secs(180)).await;
    let mut last_running: Option<i64> = None;
    for id in &ids {
        if let Some(at) = running.running_at_ms(*id).await {
            last_running = Some(last_running.map_or(at, |l: i64| l.max(at)));
        }
    }
    println!(
        "  the last bot running {} after the first create",
        match last_running {
            Some(at) => format!("{:.1} s", (at - started_ms) as f64 / 1e3),
            None => "never".to_owned(),
        }
    );
    ids
}
