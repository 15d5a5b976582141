//! A reconciler pass stays a sweep: its own time over 1,000 active bots,
//! without and with a backlog of 300 deploys whose platform call was not
//! answered.
//!
//! `cargo bench -p deployment --bench reconcile_pass`
//!
//! SQLite (a file in a temporary directory), the AWS platform against the
//! mini ECS on 127.0.0.1 (its buckets not enforced, and the platform's
//! pacer refilled 50× faster, so setting up 1,000 bots takes seconds; the
//! pacing is not what is measured), `PLATFORM_CALL_TIMEOUT`
//! `BENCH_CALL_TIMEOUT_S` (default 2 s), no API server: passes are run by
//! hand (`BotService::reconcile_pass`, the pass `serve` runs every
//! `RECONCILE_INTERVAL`, which hands platform calls to the deploy workers
//! and does not wait for them), bots are created as `POST /v1/bots` does
//! without `Prefer: wait` (`create_bot_with`, `DeployWait::No`).
//!
//! 1. `BENCH_ACTIVE` bots (default 1,000) created and deployed from 64
//!    concurrent tasks, then, once the deploy workers are done, passes run
//!    until every one is `running`.
//! 2. `BENCH_REPEAT` passes (default 5) over them: median and worst pass
//!    time, and what the last pass did.
//! 3. The mini ECS holds every RunTask answer back for an hour, and
//!    `BENCH_BACKLOG` more bots (default 300) are created to deploy: their
//!    calls time out, leaving them `deploying` without an answer, the way
//!    a slow ECS leaves a burst (some in the deploy workers' calls again,
//!    the others waiting for a pass to hand them on). Once the first calls
//!    timed out, `BENCH_REPEAT` passes again, over
//!    the 1,000 active bots and the 300 unanswered deploys, which each
//!    pass finds and hands on: median and worst pass time against the
//!    first, and what the last pass did.
//!
//! Takes about two minutes.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use deployment::{BotService, BotState, DeployWait, ReconcileReport, ServiceOptions};
use platform_aws::EcsRateLimits;
use platform_aws::testkit as ecs_kit;
use platform_aws::testkit::mini_ecs::MiniEcs;
use platform_core::PlatformService;
use support::{any_in, create_in_process, ms, percentile, runtime, setting, temp_database};
use wiremock::MockServer;

/// `repeat` passes, timed; the times sorted and the last pass's report.
async fn passes(service: &BotService, repeat: usize) -> (Vec<Duration>, ReconcileReport) {
    let mut took = Vec::with_capacity(repeat);
    let mut last = ReconcileReport::default();
    for _ in 0..repeat {
        let t = Instant::now();
        last = service.reconcile_pass().await.expect("a pass");
        took.push(t.elapsed());
    }
    took.sort();
    (took, last)
}

fn describe(took: &[Duration], report: &ReconcileReport) -> String {
    format!(
        "pass median {:.1} ms, worst {:.1} ms; the last pass examined {}, promoted {}, handed on {} unanswered deploys",
        ms(percentile(took, 50.0)),
        ms(took.last().copied().unwrap_or_default()),
        report.examined,
        report.promoted,
        report.redriven_deploys,
    )
}

fn main() {
    let active: u64 = setting("BENCH_ACTIVE", 1000);
    let backlog: u64 = setting("BENCH_BACKLOG", 300);
    let repeat: usize = setting("BENCH_REPEAT", 5);
    let call_timeout = Duration::from_secs(setting("BENCH_CALL_TIMEOUT_S", 2));
    runtime().block_on(async {
        let (_dir, _, store) = temp_database().await;
        let server = MockServer::start().await;
        let ecs = MiniEcs::new();
        ecs.mount(&server).await;
        let env = ecs_kit::env(&server.uri());
        let aws: Arc<dyn PlatformService> = Arc::new(
            ecs_kit::platform_at(&server.uri(), &env, store.installation().clone())
                .with_rate_limits(EcsRateLimits::DOCUMENTED.refilled_faster(50.0)),
        );
        let service = BotService::with_platforms(
            store.clone(),
            vec![aws],
            ServiceOptions {
                platform_call_timeout: call_timeout,
                ..ServiceOptions::default()
            },
        )
        .expect("a valid platform list");
        println!(
            "reconcile pass: {active} active bots, then a backlog of {backlog} unanswered deploys (PLATFORM_CALL_TIMEOUT {} s), SQLite, AWS platform on the mini ECS",
            call_timeout.as_secs()
        );

        create_in_process(&service, 0..active, &|_| None, DeployWait::No).await;
        service.finish_jobs().await;
        let started = Instant::now();
        while ecs.tasks_started() < active as usize
            || any_in(&service, BotState::Deploying).await
        {
            service.reconcile_once().await.expect("a pass");
            if started.elapsed() > Duration::from_secs(120) {
                println!("  not every bot came up within 120 s");
                break;
            }
        }
        let (took, report) = passes(&service, repeat).await;
        let quiet = percentile(&took, 50.0);
        println!("  {active} active, no backlog: {}", describe(&took, &report));

        ecs.hold_run_tasks(Some(Duration::from_secs(3600)));
        let t = Instant::now();
        create_in_process(
            &service,
            1_000_000..1_000_000 + backlog,
            &|_| None,
            DeployWait::No,
        )
        .await;
        let created = t.elapsed();
        // The first calls time out: from then on the backlog is bots
        // deploying without an answer, some in the workers' calls, the
        // others waiting to be handed on.
        tokio::time::sleep(call_timeout + Duration::from_secs(1)).await;
        let unanswered = service
            .list(&deployment::ListQuery {
                status: Some(BotState::Deploying),
                limit: Some(500),
                ..Default::default()
            })
            .await
            .expect("list the deploying bots")
            .bots
            .iter()
            .filter(|b| b.platform_id.is_none())
            .count();
        println!(
            "  {backlog} more bots created to deploy while ECS holds RunTask back ({:.2} s for the creates); {unanswered} deploying without an answer",
            created.as_secs_f64()
        );
        let (took, report) = passes(&service, repeat).await;
        println!(
            "  {active} active + {backlog} unanswered deploys: {} ({:.2}× the pass without backlog)",
            describe(&took, &report),
            percentile(&took, 50.0).as_secs_f64() / quiet.as_secs_f64().max(1e-9),
        );
        let counts = ecs.counts();
        println!(
            "  the mini ECS got {} RunTask and {} DescribeTasks calls",
            counts.run_task, counts.describe_tasks
        );
        // The held calls and the jobs behind them are left to the
        // runtime's end; nothing outside this process runs.
        store.close().await;
    });
}
