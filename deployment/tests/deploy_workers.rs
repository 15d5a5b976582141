//! The deploy workers: a create answers with its bot placed while the
//! platform call runs in the workers; a platform never gets more calls at
//! once than `DEPLOY_CONCURRENCY`, and gets them in the order the bots were
//! placed; a caller that asks to wait gets the bot running, or as it is
//! when its wait ends; a reconciler pass hands stops and lost deploys over
//! and does not wait for them; a one-shot `reconcile` waits and counts.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{create, driven_service, test_options, zoom_input};
use deployment::{BotService, BotState, DeployWait, ServiceOptions, Store};
use platform_core::testkit::FakePlatform;
use platform_core::{BotId, Error, StatusKind};

/// Waits (at most 20 s) until `done` holds for the bot.
async fn until(service: &BotService, id: BotId, done: impl Fn(BotState) -> bool) -> BotState {
    for _ in 0..400 {
        let state = service.get(id).await.unwrap().bot.status;
        if done(state) {
            return state;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "bot {id} never got there: {:?}",
        service.get(id).await.unwrap().bot
    );
}

async fn a_create_answers_with_the_bot_placed_while_the_platform_call_runs(store: Store) {
    // A platform that takes 3 s to answer: an answer that waited for it
    // would show the bot running.
    let fake = Arc::new(FakePlatform::new().with_latency(Duration::from_secs(3)));
    let service = driven_service(store, &fake, test_options());
    let created = service
        .create_bot_with(create(zoom_input(1), true), DeployWait::No, &mut |_| {})
        .await
        .unwrap();
    let bot = created.bot;
    assert_eq!(bot.status, BotState::Deploying, "{bot:?}");
    assert_eq!(bot.platform.as_deref(), Some("fake"));
    assert!(bot.platform_id.is_none(), "{bot:?}");
    until(&service, bot.id, |s| s == BotState::Running).await;
    assert_eq!(fake.calls().deploy, 1);
    service.finish_jobs().await;
}

async fn a_caller_that_waits_gets_the_bot_running_or_as_it_is_when_its_wait_ends(store: Store) {
    let fake = Arc::new(FakePlatform::new().with_latency(Duration::from_secs(2)));
    let service = driven_service(store, &fake, test_options());
    let mut seen = Vec::new();
    let running = service
        .create_bot_with(
            create(zoom_input(1), true),
            DeployWait::UpTo(Duration::from_secs(30)),
            &mut |bot| seen.push(bot.status),
        )
        .await
        .unwrap()
        .bot;
    assert_eq!(running.status, BotState::Running, "{running:?}");
    assert_eq!(seen.first(), Some(&BotState::Deploying), "{seen:?}");
    assert_eq!(seen.last(), Some(&BotState::Running), "{seen:?}");
    // A wait shorter than the platform call: the bot as it is then; the
    // call goes on in the workers.
    let early = service
        .create_bot_with(
            create(zoom_input(2), true),
            DeployWait::UpTo(Duration::from_millis(300)),
            &mut |_| {},
        )
        .await
        .unwrap()
        .bot;
    assert_eq!(early.status, BotState::Deploying, "{early:?}");
    until(&service, early.id, |s| s == BotState::Running).await;
    // A refusal is the waiting caller's error, as before.
    fake.fail_next_deploys([Error::Rejected {
        platform: "fake",
        resource: "bot".into(),
        message: "image not found".into(),
    }]);
    let refused = service
        .create_bot_with(
            create(zoom_input(3), true),
            DeployWait::UpTo(Duration::from_secs(30)),
            &mut |_| {},
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "deploy_failed", "{refused}");
}

async fn a_platform_gets_at_most_deploy_concurrency_calls_in_placement_order(store: Store) {
    let fake = Arc::new(FakePlatform::new().with_latency(Duration::from_millis(200)));
    let service = driven_service(
        store,
        &fake,
        ServiceOptions {
            deploy_concurrency: 3,
            ..test_options()
        },
    );
    let mut ids = Vec::new();
    for n in 1..=12 {
        let bot = service
            .create_bot_with(create(zoom_input(n), true), DeployWait::No, &mut |_| {})
            .await
            .unwrap()
            .bot;
        ids.push(bot.id);
    }
    let lanes = service.deploy_workers();
    let (_, load) = lanes.iter().find(|(name, _)| *name == "fake").unwrap();
    assert!(load.running <= 3, "{load:?}");
    for id in &ids {
        until(&service, *id, |s| s == BotState::Running).await;
    }
    assert!(
        fake.peak_concurrent_deploys() <= 3,
        "{} calls at once",
        fake.peak_concurrent_deploys()
    );
    assert!(
        fake.peak_concurrent_deploys() >= 2,
        "the lane ran calls side by side"
    );
    assert_eq!(fake.deploy_order(), ids, "calls came in placement order");
    service.finish_jobs().await;
    let lanes = service.deploy_workers();
    let (_, load) = lanes.iter().find(|(name, _)| *name == "fake").unwrap();
    assert_eq!((load.waiting, load.running), (0, 0));
}

async fn a_pass_hands_a_slow_stop_over_and_a_one_shot_pass_waits_for_it(store: Store) {
    let fake = Arc::new(FakePlatform::new());
    let service = driven_service(store.clone(), &fake, test_options());
    let one = service
        .create_bot(create(zoom_input(1), true))
        .await
        .unwrap();
    let two = service
        .create_bot(create(zoom_input(2), true))
        .await
        .unwrap();
    // Both stops go unconfirmed: the bots stay stopping for the reconciler.
    let retryable = || Error::Timeout {
        platform: "fake",
        resource: "bot".into(),
        after: Duration::from_secs(1),
    };
    fake.fail_next_stops([retryable(), retryable()]);
    for id in [one.bot.id, two.bot.id] {
        let stopping = service.stop(id).await.unwrap();
        assert_eq!(stopping.status, BotState::Stopping, "{stopping:?}");
    }
    // A platform that now takes 2 s per call: the pass hands the stops
    // over and does not wait for them.
    let slow = Arc::new(FakePlatform::new().with_latency(Duration::from_secs(2)));
    let passing = driven_service(store.clone(), &slow, test_options());
    // The stops of the first service went to the fake; only the second
    // service's pass matters now: it knows the bots by their platform name.
    let report = passing.reconcile_pass().await.unwrap();
    assert_eq!(report.handed_over, 2, "{report:?}");
    assert_eq!(report.finished_stops, 0, "{report:?}");
    assert_eq!(
        passing.get(one.bot.id).await.unwrap().bot.status,
        BotState::Stopping,
        "the pass ended before the stop did"
    );
    // A second pass while the jobs run hands nothing over twice.
    let again = passing.reconcile_pass().await.unwrap();
    assert_eq!(again.handed_over, 0, "{again:?}");
    passing.finish_jobs().await;
    for id in [one.bot.id, two.bot.id] {
        assert_eq!(passing.get(id).await.unwrap().bot.status, BotState::Stopped);
    }
    assert_eq!(slow.calls().stop, 2, "one stop per bot, none repeated");
    // A one-shot pass waits for its hand-overs and counts them (the
    // service that holds the sweep lease runs it).
    let three = service
        .create_bot(create(zoom_input(3), true))
        .await
        .unwrap();
    fake.fail_next_stops([retryable()]);
    service.stop(three.bot.id).await.unwrap();
    let report = passing.reconcile_once().await.unwrap();
    assert_eq!(report.handed_over, 1, "{report:?}");
    assert_eq!(report.finished_stops, 1, "{report:?}");
}

async fn a_bot_stopped_while_its_deploy_waits_for_a_worker_is_never_started(store: Store) {
    let fake = Arc::new(FakePlatform::new().with_latency(Duration::from_millis(500)));
    let service = driven_service(
        store,
        &fake,
        ServiceOptions {
            deploy_concurrency: 1,
            ..test_options()
        },
    );
    let first = service
        .create_bot_with(create(zoom_input(1), true), DeployWait::No, &mut |_| {})
        .await
        .unwrap()
        .bot;
    let second = service
        .create_bot_with(create(zoom_input(2), true), DeployWait::No, &mut |_| {})
        .await
        .unwrap()
        .bot;
    // The one worker is busy with the first bot; the second one's call
    // waits in the lane when its stop comes.
    service.stop(second.id).await.unwrap();
    service.finish_jobs().await;
    let stopped = service.get(second.id).await.unwrap().bot;
    assert_eq!(stopped.status, BotState::Stopped, "{stopped:?}");
    assert!(
        stopped
            .reason
            .as_deref()
            .unwrap()
            .contains("before its deploy called the platform"),
        "{stopped:?}"
    );
    assert_eq!(
        fake.deploy_order(),
        [first.id],
        "only the first bot was started"
    );
}

async fn callers_waiting_for_many_bots_share_one_status_read(store: Store) {
    // Bots that stay starting: every caller waits its whole wait.
    let fake = Arc::new(FakePlatform::new().starting_as(StatusKind::Starting));
    let service = driven_service(store, &fake, test_options());
    let waits = (1..=20).map(|n| {
        let service = service.clone();
        async move {
            service
                .create_bot_with(
                    create(zoom_input(n), true),
                    DeployWait::UpTo(Duration::from_secs(3)),
                    &mut |_| {},
                )
                .await
                .unwrap()
                .bot
        }
    });
    let bots = futures::future::join_all(waits).await;
    assert!(
        bots.iter().all(|b| b.status == BotState::Deploying),
        "{bots:?}"
    );
    let calls = fake.calls();
    // One status read per deploy (the deploy's own check), and the waits'
    // reads in shared batches: one every 2 s at most, not one per caller.
    assert_eq!(calls.status, 20, "{calls:?}");
    assert!(calls.statuses <= 2, "{calls:?}");
}

async fn a_deploy_left_to_the_scheduler_is_placed_on_its_next_round(store: Store) {
    let fake = Arc::new(FakePlatform::new());
    let service = driven_service(store, &fake, test_options());
    let later = service
        .create_bot_with(create(zoom_input(1), true), DeployWait::Later, &mut |_| {})
        .await
        .unwrap()
        .bot;
    assert_eq!(later.status, BotState::Pending, "{later:?}");
    assert!(later.deploy_at.is_some(), "its deploy is due: {later:?}");
    assert_eq!(fake.calls().deploy, 0, "nothing started by the request");
    let report = service.deploy_due().await.unwrap();
    assert_eq!(report.deployed, 1, "{report:?}");
    assert_eq!(
        service.get(later.id).await.unwrap().bot.status,
        BotState::Running
    );
}

on_both_databases!(
    a_create_answers_with_the_bot_placed_while_the_platform_call_runs,
    a_caller_that_waits_gets_the_bot_running_or_as_it_is_when_its_wait_ends,
    a_platform_gets_at_most_deploy_concurrency_calls_in_placement_order,
    a_pass_hands_a_slow_stop_over_and_a_one_shot_pass_waits_for_it,
    a_deploy_left_to_the_scheduler_is_placed_on_its_next_round,
    a_bot_stopped_while_its_deploy_waits_for_a_worker_is_never_started,
    callers_waiting_for_many_bots_share_one_status_read,
);
