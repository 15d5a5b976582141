//! Placement across several platforms: overflow down the priority list
//! under caps, the durable queue (positions, priority, drain, timeout,
//! restart), platforms that start nothing, and three services sharing caps
//! on one PostgreSQL database.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use common::{TestDb, create, history_text, test_options, zoom_input};
use deployment::{BotService, BotState, ServiceOptions, Store};
use platform_core::testkit::FakePlatform;
use platform_core::{BotId, Error, MeetingPlatform, PlatformCapacity, PlatformService};

/// A fake Coolify-like platform: a warm pool of `zoom_slots` Zoom slots
/// and none for the other meeting platforms. The fake counts the bots it
/// runs at once (`peak_live_bots`): the evidence that no cap was exceeded
/// is taken on the platform, not in the database under test.
fn pooled(name: &'static str, zoom_slots: u32) -> Arc<FakePlatform> {
    Arc::new(
        FakePlatform::new()
            .named(name)
            .with_capacity(PlatformCapacity::pools(
                vec![
                    (MeetingPlatform::Zoom, zoom_slots),
                    (MeetingPlatform::Teams, 0),
                    (MeetingPlatform::Meet, 0),
                ],
                "COOLIFY_POOL_MAX_*",
            )),
    )
}

/// A fake platform that starts bots on demand under a cap.
fn capped(name: &'static str, cap: Option<u32>) -> Arc<FakePlatform> {
    Arc::new(
        FakePlatform::new()
            .named(name)
            .with_capacity(PlatformCapacity::at_most(cap, "TEST_MAX_BOTS")),
    )
}

/// The bots with a live resource on `platform`.
fn live_ids(platform: &FakePlatform) -> Vec<BotId> {
    platform
        .bots()
        .into_iter()
        .filter(|(_, _, kind)| !kind.is_terminal())
        .map(|(bot, _, _)| bot)
        .collect()
}

/// A service over `platforms` in priority order. Capacity that frees is
/// drained by the reconciler passes the tests run, not in the background,
/// so what one pass does can be checked.
fn service_over(
    store: Store,
    platforms: &[&Arc<FakePlatform>],
    options: ServiceOptions,
) -> BotService {
    let service = BotService::with_platforms(
        store,
        platforms
            .iter()
            .map(|p| Arc::clone(p) as Arc<dyn PlatformService>)
            .collect(),
        options,
    )
    .unwrap();
    service.set_background_drain(false);
    service
}

async fn overflow_goes_down_the_list_then_queues_and_drains(store: Store) {
    let coolify = pooled("coolify", 5);
    let aws = capped("aws", Some(10));
    let service = service_over(store, &[&coolify, &aws], test_options());
    let mut bots = Vec::new();
    for n in 0..20 {
        bots.push(
            service
                .create_bot(create(zoom_input(n), true))
                .await
                .unwrap()
                .bot,
        );
    }
    let on = |p: &str| {
        bots.iter()
            .filter(|b| b.platform.as_deref() == Some(p) && b.status == BotState::Running)
            .count()
    };
    assert_eq!((on("coolify"), on("aws")), (5, 10));
    let queued: Vec<_> = bots
        .iter()
        .filter(|b| b.status == BotState::Queued)
        .collect();
    assert_eq!(
        queued.iter().map(|b| b.queue_position).collect::<Vec<_>>(),
        [Some(1), Some(2), Some(3), Some(4), Some(5)]
    );
    assert!(queued.iter().all(|b| b.platform.is_none()));
    assert_eq!((coolify.live_bots(), aws.live_bots()), (5, 10));

    let sixth = history_text(&service, bots[5].id).await;
    assert!(
        sixth.contains("coolify: pool full (5 of 5 zoom bots") && sixth.contains("placed on aws"),
        "{sixth}"
    );
    let last = history_text(&service, bots[19].id).await;
    assert!(
        last.contains("coolify: pool full (5 of 5 zoom bots")
            && last.contains("aws: at its cap (10 of 10 bots")
            && last.contains("queued until a platform has room"),
        "{last}"
    );

    let view = service.platforms_view().await.unwrap();
    assert_eq!(view.queue.length, 5);
    assert_eq!(
        view.platforms
            .iter()
            .map(|p| (p.name.as_str(), p.used, p.cap))
            .collect::<Vec<_>>(),
        [("coolify", 5, Some(5)), ("aws", 10, Some(10))]
    );

    // Three Coolify bots end: one pass places the first three queued bots
    // there.
    for bot in bots
        .iter()
        .filter(|b| b.platform.as_deref() == Some("coolify"))
        .take(3)
    {
        service.stop(bot.id).await.unwrap();
    }
    service.reconcile_once().await.unwrap();
    for (index, bot) in queued.iter().enumerate() {
        let now = service.get(bot.id).await.unwrap().bot;
        if index < 3 {
            assert_eq!(now.status, BotState::Running, "{now:?}");
            assert_eq!(now.platform.as_deref(), Some("coolify"));
            let history = history_text(&service, bot.id).await;
            assert!(
                history.contains("placed on coolify from the queue"),
                "{history}"
            );
        } else {
            assert_eq!(now.status, BotState::Queued);
            assert_eq!(now.queue_position, Some(index as u64 - 2));
        }
    }
    assert!(coolify.peak_live_bots() <= 5 && aws.peak_live_bots() <= 10);
    let metrics = service.metrics().snapshot();
    assert_eq!(metrics.fallbacks.get(&("coolify", "aws")), Some(&10));
    assert_eq!(metrics.fallbacks.get(&("aws", "queue")), Some(&5));
}

async fn nothing_started_falls_through_and_a_refusal_fails(store: Store) {
    let coolify = pooled("coolify", 5);
    let aws = capped("aws", None);
    let service = service_over(store, &[&coolify, &aws], test_options());
    coolify.fail_next_deploys([Error::PoolExhausted {
        platform: "coolify",
        meeting_platform: MeetingPlatform::Zoom,
        capacity: 5,
    }]);
    let bot = service
        .create_bot(create(zoom_input(1), true))
        .await
        .unwrap()
        .bot;
    assert_eq!(bot.platform.as_deref(), Some("aws"));
    assert_eq!(bot.status, BotState::Running);
    let history = history_text(&service, bot.id).await;
    assert!(
        history.contains("coolify: pool full, nothing started")
            && history.contains("placed on aws"),
        "{history}"
    );

    coolify.set_unreachable(false);
    coolify.fail_next_deploys([Error::Unreachable {
        platform: "coolify",
        resource: "POST /applications".into(),
        message: "connection refused".into(),
    }]);
    let bot = service
        .create_bot(create(zoom_input(2), true))
        .await
        .unwrap()
        .bot;
    assert_eq!(bot.platform.as_deref(), Some("aws"));
    let history = history_text(&service, bot.id).await;
    assert!(
        history.contains("coolify: platform_unavailable"),
        "{history}"
    );

    coolify.fail_next_deploys([Error::Rejected {
        platform: "coolify",
        resource: "bot 3".into(),
        message: "image not found".into(),
    }]);
    let err = service
        .create_bot(create(zoom_input(3), true))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "deploy_failed");
    assert_eq!(aws.calls().deploy, 2, "a refusal does not fall through");
}

async fn the_queue_drains_by_priority_then_age(store: Store) {
    let only = capped("aws", Some(1));
    let service = service_over(store, &[&only], test_options());
    let first = service
        .create_bot(create(zoom_input(1), true))
        .await
        .unwrap()
        .bot;
    assert_eq!(first.status, BotState::Running);
    let mut queued = Vec::new();
    for (n, priority) in [(2, 0), (3, 5), (4, 0), (5, 5)] {
        let mut request = create(zoom_input(n), true);
        request.priority = priority;
        queued.push(service.create_bot(request).await.unwrap().bot);
    }
    let positions: Vec<_> = {
        let mut out = Vec::new();
        for bot in &queued {
            out.push(service.get(bot.id).await.unwrap().bot.queue_position);
        }
        out
    };
    assert_eq!(positions, [Some(3), Some(1), Some(4), Some(2)]);
    let mut placed_order = Vec::new();
    let mut current = first.id;
    for _ in 0..4 {
        service.stop(current).await.unwrap();
        service.reconcile_once().await.unwrap();
        let running: Vec<_> = queued
            .iter()
            .filter(|b| !placed_order.contains(&b.id))
            .map(|b| b.id)
            .collect();
        let mut next = None;
        for id in running {
            if service.get(id).await.unwrap().bot.status == BotState::Running {
                next = Some(id);
            }
        }
        let next = next.expect("one queued bot placed per freed slot");
        placed_order.push(next);
        current = next;
    }
    assert_eq!(
        placed_order,
        [queued[1].id, queued[3].id, queued[0].id, queued[2].id]
    );
    let err = service
        .create_bot(deployment::CreateBot {
            priority: 2_000_000,
            ..create(zoom_input(9), true)
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("priority"), "{err}");
}

async fn queued_bots_time_out_and_survive_a_restart(store: Store) {
    let only = capped("aws", Some(0));
    let options = ServiceOptions {
        queue_timeout: Duration::from_millis(300),
        ..test_options()
    };
    let service = service_over(store.clone(), &[&only], options.clone());
    let waiting = service
        .create_bot(create(zoom_input(1), true))
        .await
        .unwrap()
        .bot;
    assert_eq!(waiting.status, BotState::Queued);
    assert_eq!(waiting.queue_position, Some(1));
    // A restart: a new service over the same database finds it queued.
    drop(service);
    let restarted = service_over(store.clone(), &[&only], options.clone());
    let again = restarted.get(waiting.id).await.unwrap().bot;
    assert_eq!(again.status, BotState::Queued);
    assert_eq!(again.queue_position, Some(1));
    // A cap raised in the new configuration places it on the first pass.
    let roomy = capped("aws", Some(1));
    let raised = service_over(store.clone(), &[&roomy], options.clone());
    let report = raised.reconcile_once().await.unwrap();
    assert_eq!(report.queue_placed, 1, "{report:?}");
    assert_eq!(
        raised.get(waiting.id).await.unwrap().bot.status,
        BotState::Running
    );

    let late = restarted
        .create_bot(create(zoom_input(2), true))
        .await
        .unwrap()
        .bot;
    assert_eq!(late.status, BotState::Queued);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let report = restarted.reconcile_once().await.unwrap();
    assert_eq!(report.queue_timeouts, 1, "{report:?}");
    let failed = restarted.get(late.id).await.unwrap().bot;
    assert_eq!(failed.status, BotState::Failed);
    assert!(
        failed
            .reason
            .as_deref()
            .is_some_and(|r| r.starts_with("queue_timeout:")),
        "{failed:?}"
    );
    // A queued bot can be stopped (cancelled) too.
    let cancelled = restarted
        .create_bot(create(zoom_input(3), true))
        .await
        .unwrap()
        .bot;
    let stopped = restarted.stop(cancelled.id).await.unwrap();
    assert_eq!(stopped.status, BotState::Stopped);
}

async fn a_cap_below_running_bots_stops_nothing_and_shows_the_overshoot(store: Store) {
    let wide = capped("aws", Some(4));
    let service = service_over(store.clone(), &[&wide], test_options());
    for n in 0..4 {
        service
            .create_bot(create(zoom_input(n), true))
            .await
            .unwrap();
    }
    let narrow = capped("aws", Some(2));
    let local = capped("local", None);
    // The same aws bots, now under a cap of 2, with local as the overflow.
    let lowered = service_over(store, &[&narrow, &local], test_options());
    let bot = lowered
        .create_bot(create(zoom_input(9), true))
        .await
        .unwrap()
        .bot;
    assert_eq!(bot.platform.as_deref(), Some("local"));
    let view = lowered.platforms_view().await.unwrap();
    let aws = view.platforms.iter().find(|p| p.name == "aws").unwrap();
    assert_eq!((aws.used, aws.cap, aws.over_cap), (4, Some(2), 2));
    assert_eq!(wide.calls().stop, 0, "nothing was stopped");
}

async fn capacity_freed_in_a_process_drains_the_queue_at_once(store: Store) {
    let only = capped("aws", Some(1));
    let service = service_over(store, &[&only], test_options());
    service.set_background_drain(true);
    let first = service
        .create_bot(create(zoom_input(1), true))
        .await
        .unwrap()
        .bot;
    let waiting = service
        .create_bot(create(zoom_input(2), true))
        .await
        .unwrap()
        .bot;
    assert_eq!(waiting.status, BotState::Queued);
    service.stop(first.id).await.unwrap();
    // No pass runs: the stop itself set the drain going.
    let mut status = BotState::Queued;
    for _ in 0..200 {
        status = service.get(waiting.id).await.unwrap().bot.status;
        if status == BotState::Running {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, BotState::Running);
}

on_both_databases!(
    capacity_freed_in_a_process_drains_the_queue_at_once,
    overflow_goes_down_the_list_then_queues_and_drains,
    nothing_started_falls_through_and_a_refusal_fails,
    the_queue_drains_by_priority_then_age,
    queued_bots_time_out_and_survive_a_restart,
    a_cap_below_running_bots_stops_nothing_and_shows_the_overshoot,
);

/// Three services on one PostgreSQL database place 300 bots on two
/// platforms capped at 40 each, all at once: never more than 40 on either
/// platform (counted by the platforms), no bot deployed twice, every bot
/// placed or queued; then, as bots end, the queue drains completely.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_services_share_caps_and_drain_the_queue() {
    let db = TestDb::postgres().await;
    let coolify = capped("coolify", Some(40));
    let aws = capped("aws", Some(40));
    let mut services = Vec::new();
    for _ in 0..3 {
        services.push(service_over(
            db.store().await,
            &[&coolify, &aws],
            test_options(),
        ));
    }
    let created = futures::future::join_all((0..300_u64).map(|n| {
        let service = services[(n % 3) as usize].clone();
        async move {
            service
                .create_bot(create(zoom_input(n), true))
                .await
                .unwrap()
                .bot
        }
    }))
    .await;
    let by_status = |bots: &[deployment::Bot]| {
        let mut counts = BTreeMap::new();
        for bot in bots {
            *counts.entry(bot.status).or_insert(0) += 1;
        }
        counts
    };
    let counts = by_status(&created);
    assert_eq!(counts.get(&BotState::Running), Some(&80), "{counts:?}");
    assert_eq!(counts.get(&BotState::Queued), Some(&220), "{counts:?}");
    assert!(
        coolify.peak_live_bots() <= 40 && aws.peak_live_bots() <= 40,
        "{} {}",
        coolify.peak_live_bots(),
        aws.peak_live_bots()
    );

    // Bots end in waves while every replica runs its passes; the queue
    // drains into the capacity that frees.
    let store = db.store().await;
    let mut ended = BTreeSet::new();
    for _round in 0..60 {
        let running: Vec<BotId> = {
            let mut ids = live_ids(&coolify);
            ids.extend(live_ids(&aws));
            ids
        };
        let live_set: BTreeSet<BotId> = running.iter().copied().collect();
        assert_eq!(live_set.len(), running.len(), "a bot runs twice");
        futures::future::join_all(running.iter().enumerate().map(|(i, id)| {
            let service = services[i % 3].clone();
            let id = *id;
            async move { service.stop(id).await.unwrap() }
        }))
        .await;
        ended.extend(running);
        futures::future::join_all(services.iter().map(|s| s.reconcile_once())).await;
        assert!(
            coolify.peak_live_bots() <= 40 && aws.peak_live_bots() <= 40,
            "{} {}",
            coolify.peak_live_bots(),
            aws.peak_live_bots()
        );
        if store.queue_stats().await.unwrap().length == 0
            && coolify.live_bots() + aws.live_bots() == 0
        {
            break;
        }
    }
    assert_eq!(store.queue_stats().await.unwrap().length, 0);
    assert_eq!(ended.len(), 300, "every bot ran once");
    assert_eq!(
        coolify.calls().deploy + aws.calls().deploy,
        300,
        "no bot was deployed twice"
    );
    for service in &services {
        service.store().close().await;
    }
    store.close().await;
}

/// The platform sweep runs in one service process at a time; when its
/// holder stops renewing, another takes it over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_process_at_a_time_holds_the_sweep_lease() {
    let db = TestDb::postgres().await;
    let fake = capped("aws", None);
    let options = ServiceOptions {
        sweep_lease: Duration::from_millis(300),
        ..test_options()
    };
    let a = service_over(db.store().await, &[&fake], options.clone());
    let b = service_over(db.store().await, &[&fake], options);
    assert!(a.reconcile_once().await.unwrap().swept);
    assert!(!b.reconcile_once().await.unwrap().swept);
    assert!(b.sweep_orphans().await.unwrap().not_lease_holder);
    // `a` dies without giving the lease up: `b` takes it once it lapses.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(b.reconcile_once().await.unwrap().swept);
    assert!(!a.reconcile_once().await.unwrap().swept);
    let view = b.platforms_view().await.unwrap();
    assert!(view.sweep_lease.held_here);
    assert_eq!(view.sweep_lease.holder.as_deref(), Some(b.instance()));
}
