//! A large schedule costs an idle service nothing: 100,000 bots scheduled
//! a day ahead, then the service idling with its reconciler and scheduler
//! running. SQLite (a file in a temporary directory), the AWS platform
//! pointed at the mini ECS on 127.0.0.1 (which counts every call it gets).
//!
//! `cargo bench -p deployment --bench idle_schedule`
//!
//! 1. With no bot in the database: the time of a reconciler pass
//!    (`BotService::reconcile_pass`, what `serve` runs), of a scheduler round
//!    (`deploy_due`) and of the backlog count (`due_backlog`), each run
//!    `BENCH_REPEAT` times (default 30), median and worst.
//! 2. `BENCH_SCHEDULED` bots (default 100,000) scheduled a day ahead, on
//!    the hour and spread over the day's 24 hours, from 64 concurrent
//!    tasks: the first 1,000 through `BotService::create_bot_with` (the
//!    path of `POST /v1/bots` without HTTP: checks, the row, its history,
//!    its deploy time, its projected start), the rest through the store's
//!    own insert (`Store::create_bot`: the same row, history and event,
//!    without the service's checks and projection, which would make the
//!    set-up long); both rates are printed.
//! 3. The same three timings with them in the database, and the query
//!    plans of the scheduler's claim and backlog queries
//!    (`Store::scheduler_query_plans`, SQLite's `EXPLAIN QUERY PLAN`): both
//!    read the partial index `bots_deploy_due` of migration 0006.
//! 4. The API and the reconciler run for `BENCH_IDLE_S` seconds (default
//!    60) with `RECONCILE_INTERVAL` `BENCH_RECONCILE_INTERVAL_MS` (default
//!    1000, so a pass and a scheduler round every second): the process's
//!    resident memory (`VmRSS` of /proc/self/status) sampled every second,
//!    the calls the mini ECS got, and that every bot is still scheduled.
//!
//! Takes about six minutes (most of it creating the bots).

mod support;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use deployment::store::NewBot;
use deployment::{BotService, BotState, DeployWait, ServiceOptions};
use futures::StreamExt;
use platform_aws::testkit as ecs_kit;
use platform_aws::testkit::mini_ecs::MiniEcs;
use platform_core::{BotId, PlatformService};
use support::{
    Running, bench_input, create_in_process, ms, percentile, proc_status_kib, rfc3339, runtime,
    setting, temp_database, wall_ms,
};
use wiremock::MockServer;

/// Runs `f` `repeat` times; "median / worst" in ms.
async fn timed<F, Fut>(repeat: usize, mut f: F) -> String
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut took = Vec::with_capacity(repeat);
    for _ in 0..repeat {
        let t = Instant::now();
        f().await;
        took.push(t.elapsed());
    }
    took.sort();
    format!(
        "{:.2} / {:.2} ms",
        ms(percentile(&took, 50.0)),
        ms(took.last().copied().unwrap_or_default())
    )
}

/// A reconciler pass, a scheduler round and the backlog count, timed.
async fn pass_costs(service: &BotService, repeat: usize, label: &str) {
    let pass = timed(repeat, || async {
        let report = service.reconcile_pass().await.expect("a pass");
        assert_eq!(report.due.deployed, 0, "{report:?}");
    })
    .await;
    let due = timed(repeat, || async {
        service.deploy_due().await.expect("a scheduler round");
    })
    .await;
    let backlog = timed(repeat, || async {
        let backlog = service.due_backlog().await.expect("the backlog");
        assert_eq!(backlog.due, 0, "{backlog:?}");
    })
    .await;
    println!(
        "  {label}: reconciler pass {pass}; scheduler round {due}; backlog count {backlog} (median / worst of {repeat})"
    );
}

fn calls(ecs: &MiniEcs) -> String {
    let counts = ecs.counts();
    format!(
        "RunTask {}, DescribeTasks {}, StopTask {}, ListTasks {}",
        counts.run_task,
        counts.describe_tasks,
        counts.stop_task,
        ecs.list_tasks_calls()
    )
}

fn main() {
    let scheduled: u64 = setting("BENCH_SCHEDULED", 100_000);
    let repeat: usize = setting("BENCH_REPEAT", 30);
    let idle = Duration::from_secs(setting("BENCH_IDLE_S", 60));
    let interval = Duration::from_millis(setting("BENCH_RECONCILE_INTERVAL_MS", 1000));
    runtime().block_on(async {
        let (_dir, url, store) = temp_database().await;
        let server = MockServer::start().await;
        let ecs = MiniEcs::new();
        ecs.mount(&server).await;
        let env = ecs_kit::env(&server.uri());
        let aws: Arc<dyn PlatformService> = Arc::new(ecs_kit::platform_at(
            &server.uri(),
            &env,
            store.installation().clone(),
        ));
        let service = BotService::with_platforms(
            store.clone(),
            vec![aws],
            ServiceOptions {
                sweep_lease: interval * 4 / 5,
                ..ServiceOptions::default()
            },
        )
        .expect("a valid platform list");
        println!(
            "idle schedule: {scheduled} bots a day ahead (24 join times, on the hour), SQLite, AWS platform on the mini ECS"
        );
        pass_costs(&service, repeat, "no bot").await;

        // A day ahead, on the hour, spread over the day's 24 hours (a
        // calendar's meetings): bot n at the (n mod 24)th.
        let hour = 3_600_000;
        let first_hour = (wall_ms() / hour + 24) * hour;
        let join_at_ms = move |n: u64| first_hour + i64::try_from(n % 24).unwrap_or_default() * hour;
        let through_service = scheduled.min(1_000);
        let join_at = move |n: u64| Some(rfc3339(join_at_ms(n)));
        let started = Instant::now();
        let created =
            create_in_process(&service, 0..through_service, &join_at, DeployWait::No).await;
        assert!(created.iter().all(|s| *s == BotState::Scheduled));
        let took = started.elapsed();
        println!(
            "  created {through_service} scheduled bots through BotService::create_bot_with from 64 tasks in {:.1} s ({:.0}/s)",
            took.as_secs_f64(),
            through_service as f64 / took.as_secs_f64()
        );
        // The rest through the store's insert, as the service writes a
        // scheduled bot (its row, history and event; the service's checks
        // and projection left out), 64 at a time.
        let lead = ServiceOptions::default().schedule.lead_for("aws");
        let lead_ms = i64::try_from(lead.as_millis()).unwrap_or_default();
        let started = Instant::now();
        futures::stream::iter(through_service..scheduled)
            .map(|n| {
                let store = store.clone();
                async move {
                    let config = bench_input(n).validate(BotId(0)).expect("a valid bot");
                    let join_at = join_at_ms(n);
                    let reason = format!(
                        "scheduled: deploys {} s before its join_at (bench)",
                        lead.as_secs()
                    );
                    store
                        .create_bot(
                            NewBot {
                                config: &config,
                                priority: 0,
                                webhook_url: None,
                                status: BotState::Scheduled,
                                reason: &reason,
                                join_at: Some(join_at),
                                deploy_at: Some(join_at - lead_ms),
                                lease: None,
                            },
                            None,
                        )
                        .await
                        .expect("insert a scheduled bot");
                }
            })
            .buffer_unordered(64)
            .collect::<()>()
            .await;
        let took = started.elapsed();
        println!(
            "  inserted {} more through Store::create_bot from 64 tasks in {:.1} s ({:.0}/s)",
            scheduled - through_service,
            took.as_secs_f64(),
            (scheduled - through_service) as f64 / took.as_secs_f64()
        );
        pass_costs(&service, repeat, &format!("{scheduled} scheduled")).await;
        for plan in store.scheduler_query_plans().await.expect("query plans") {
            println!("  plan of the {}: {}", plan.query, plan.lines.join("; "));
        }

        let before = calls(&ecs);
        let rss_start = proc_status_kib("VmRSS");
        let running = Running::serve(service, interval).await;
        let mut samples = Vec::new();
        let started = Instant::now();
        while started.elapsed() < idle {
            tokio::time::sleep(Duration::from_secs(1)).await;
            samples.push(proc_status_kib("VmRSS"));
        }
        // Read apart from the service, on a connection of its own.
        let reader = sqlx::SqlitePool::connect(&url).await.expect("a reader");
        let (still,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM bots WHERE status = 'scheduled'")
                .fetch_one(&reader)
                .await
                .expect("count the scheduled bots");
        reader.close().await;
        let first = samples.first().copied().unwrap_or_default();
        let last = samples.last().copied().unwrap_or_default();
        let (low, high) = samples
            .iter()
            .fold((u64::MAX, 0), |(l, h), s| (l.min(*s), h.max(*s)));
        let mib = |kib: u64| kib as f64 / 1024.0;
        println!(
            "  idle {} s (a pass and a scheduler round every {} ms): VmRSS {:.1} MiB before the service started, then {:.1} MiB after 1 s, {:.1} MiB at the end (min {:.1}, max {:.1} over {} samples); VmHWM {:.1} MiB",
            idle.as_secs(),
            interval.as_millis(),
            mib(rss_start),
            mib(first),
            mib(last),
            mib(low),
            mib(high),
            samples.len(),
            mib(proc_status_kib("VmHWM")),
        );
        println!(
            "  ECS calls before the idle: {before}; after it: {} (the orphan sweep lists the cluster's tasks at start-up, whatever is scheduled); {still} bots still scheduled",
            calls(&ecs),
        );
        running.stop().await;
        store.close().await;
    });
}
