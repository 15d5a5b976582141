//! Scheduled bots, with a clock the tests move by hand: a bot deploys at
//! `join_at` minus the lead time and not before; a change moves it; a stop
//! cancels it with no platform call; a restart in between still deploys it
//! on time; a bot found too late fails as `missed_join_time`; two service
//! processes on PostgreSQL deploy each due bot exactly once, in `join_at`
//! then creation order; and a create whose request died before the
//! platform call is deployed on the next round.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::{TestDb, create, driven_service, history_text, ms, rfc3339, test_options, zoom_input};
use deployment::service::Reschedule;
use deployment::store::NewBot;
use deployment::{BotService, BotState, Clock, ServiceOptions, Store};
use platform_core::testkit::FakePlatform;
use platform_core::{AutomaticLeaveInput, BotId, PlatformService};

const AWS_LEAD: Duration = Duration::from_secs(180);

fn aws() -> Arc<FakePlatform> {
    Arc::new(FakePlatform::new().named("aws"))
}

fn options(clock: &Clock) -> ServiceOptions {
    ServiceOptions {
        clock: clock.clone(),
        ..test_options()
    }
}

fn service(store: Store, platform: &Arc<FakePlatform>, clock: &Clock) -> BotService {
    driven_service(store, platform, options(clock))
}

async fn schedule(service: &BotService, n: u64, join_at_ms: i64) -> deployment::Bot {
    service
        .create_bot(deployment::CreateBot {
            join_at: Some(rfc3339(join_at_ms)),
            ..create(zoom_input(n), true)
        })
        .await
        .unwrap()
        .bot
}

async fn a_scheduled_bot_deploys_at_join_at_minus_the_lead_not_before(store: Store) {
    let clock = Clock::manual_now();
    let fake = aws();
    let service = service(store, &fake, &clock);
    let join_at = clock.now_ms() + 600_000;
    let bot = schedule(&service, 1, join_at).await;
    assert_eq!(bot.status, BotState::Scheduled, "{bot:?}");
    assert_eq!(bot.join_at.map(ms), Some(join_at));
    let deploy_at = join_at - 180_000;
    assert_eq!(bot.deploy_at.map(ms), Some(deploy_at));
    assert!(
        bot.reason.as_deref().unwrap().contains("180 s lead of aws"),
        "{bot:?}"
    );

    // A second before the deploy time: nothing is started, by a pass or a
    // scheduler round.
    clock.set_ms(deploy_at - 1_000);
    let report = service.reconcile_once().await.unwrap();
    assert_eq!(report.due.deployed, 0);
    assert_eq!(service.deploy_due().await.unwrap().deployed, 0);
    assert_eq!(fake.calls().deploy, 0);
    assert_eq!(
        service.get(bot.id).await.unwrap().bot.status,
        BotState::Scheduled
    );

    // At the deploy time it is due, and shows in the backlog until a
    // scheduler round places it, once.
    assert_eq!(service.due_backlog().await.unwrap().due, 0);
    clock.set_ms(deploy_at + 4_000);
    let backlog = service.due_backlog().await.unwrap();
    assert_eq!((backlog.due, backlog.oldest_due_seconds), (1, 4));
    let text = deployment::api::metrics::render(&service).await;
    assert!(text.contains("\nmeeboter_deploys_due 1\n"), "{text}");
    assert!(
        text.contains("\nmeeboter_deploys_due_oldest_seconds 4\n"),
        "{text}"
    );
    clock.set_ms(deploy_at);
    let report = service.deploy_due().await.unwrap();
    assert_eq!(report.deployed, 1, "{report:?}");
    assert_eq!(fake.calls().deploy, 1);
    let now = service.get(bot.id).await.unwrap().bot;
    assert!(
        matches!(now.status, BotState::Deploying | BotState::Running),
        "{now:?}"
    );
    let history = history_text(&service, bot.id).await;
    assert!(
        history.contains("None->scheduled: scheduled: deploys at"),
        "{history}"
    );
    assert!(
        history.contains("Some(Scheduled)->deploying: placed on aws at its deploy time"),
        "{history}"
    );
    assert_eq!(service.deploy_due().await.unwrap().deployed, 0);
    assert_eq!(fake.calls().deploy, 1, "deployed once");
    assert_eq!(service.due_backlog().await.unwrap().due, 0);
}

async fn a_join_at_within_the_lead_deploys_now_and_bad_ones_are_refused(store: Store) {
    let clock = Clock::manual_now();
    let fake = aws();
    let service = service(store, &fake, &clock);
    let bot = schedule(&service, 1, clock.now_ms() + 60_000).await;
    assert!(
        matches!(bot.status, BotState::Deploying | BotState::Running),
        "{bot:?}"
    );
    let history = history_text(&service, bot.id).await;
    assert!(
        history.contains("None->pending: created; join_at")
            && history.contains("is within the 180 s lead of aws: deploying now")
            && history.contains("Some(Pending)->deploying: placed on aws"),
        "{history}"
    );
    assert_eq!(fake.calls().deploy, 1);

    for (join_at, says) in [
        ("at ten".to_owned(), "not an RFC 3339 time"),
        (rfc3339(clock.now_ms() - 3_600_000), "3600 s in the past"),
        (
            rfc3339(clock.now_ms() + 400 * 24 * 3_600_000),
            "more than 366 days ahead",
        ),
    ] {
        let err = service
            .create_bot(deployment::CreateBot {
                join_at: Some(join_at.clone()),
                ..create(zoom_input(2), true)
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), "invalid_bot_config", "{err}");
        let field = &err.field_errors()[0];
        assert_eq!(field.field, "join_at");
        assert!(field.message.contains(says), "{}", field.message);
        assert!(field.message.contains("allowed: an RFC 3339 time"));
    }
    assert_eq!(
        service.list(&Default::default()).await.unwrap().bots.len(),
        1,
        "nothing was written for a refused create"
    );

    // Created without a deploy, with a join_at: pending until deployed,
    // then scheduled for its time.
    let join_at = clock.now_ms() + 3_600_000;
    let later = service
        .create_bot(deployment::CreateBot {
            join_at: Some(rfc3339(join_at)),
            ..create(zoom_input(3), false)
        })
        .await
        .unwrap()
        .bot;
    assert_eq!(later.status, BotState::Pending);
    assert_eq!(later.deploy_at, None);
    let scheduled = service.deploy(later.id).await.unwrap();
    assert_eq!(scheduled.status, BotState::Scheduled, "{scheduled:?}");
    assert_eq!(scheduled.deploy_at.map(ms), Some(join_at - 180_000));
    assert_eq!(fake.calls().deploy, 1);
}

async fn a_change_moves_a_scheduled_bot_and_is_refused_once_it_deploys(store: Store) {
    let clock = Clock::manual_now();
    let fake = aws();
    let service = service(store, &fake, &clock);
    let join_at = clock.now_ms() + 600_000;
    let bot = schedule(&service, 1, join_at).await;

    let later = join_at + 3_600_000;
    let moved = service
        .reschedule(
            bot.id,
            Reschedule {
                join_at: Some(rfc3339(later)),
                display_name: Some("Minutes".into()),
                automatic_leave: Some(AutomaticLeaveInput {
                    waiting_room_timeout: Some(120),
                    ..Default::default()
                }),
            },
        )
        .await
        .unwrap();
    assert_eq!(moved.status, BotState::Scheduled);
    assert_eq!(moved.join_at.map(ms), Some(later));
    assert_eq!(moved.deploy_at.map(ms), Some(later - 180_000));
    assert_eq!(moved.display_name, "Minutes");
    assert_eq!(moved.automatic_leave.waiting_room_timeout, 120);
    assert_eq!(moved.automatic_leave.no_one_joined_timeout, 300, "kept");

    // Bad values name their field; nothing changes.
    let err = service
        .reschedule(
            bot.id,
            Reschedule {
                display_name: Some(" padded ".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.field_errors()[0].field, "display_name", "{err}");
    let err = service
        .reschedule(bot.id, Reschedule::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_bot_config", "{err}");

    // The old deploy time passes with nothing started; the new one deploys.
    clock.set_ms(join_at);
    assert_eq!(service.deploy_due().await.unwrap().deployed, 0);
    assert_eq!(fake.calls().deploy, 0);
    clock.set_ms(later - 180_000);
    assert_eq!(service.deploy_due().await.unwrap().deployed, 1);
    assert_eq!(fake.calls().deploy, 1);

    let err = service
        .reschedule(
            bot.id,
            Reschedule {
                join_at: Some(rfc3339(later + 60_000)),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "not_scheduled", "{err}");
    assert_eq!(err.class(), deployment::ErrorClass::Conflict);
    assert!(
        err.to_string().contains("is running, not scheduled"),
        "{err}"
    );
}

async fn a_stop_cancels_a_scheduled_bot_with_no_platform_call(store: Store) {
    let clock = Clock::manual_now();
    let fake = aws();
    let service = service(store, &fake, &clock);
    let join_at = clock.now_ms() + 600_000;
    let bot = schedule(&service, 1, join_at).await;
    let stopped = service.stop(bot.id).await.unwrap();
    assert_eq!(stopped.status, BotState::Stopped);
    assert_eq!(
        stopped.reason.as_deref(),
        Some("cancelled before its deploy time; nothing was started")
    );
    clock.set_ms(join_at);
    assert_eq!(service.reconcile_once().await.unwrap().due.deployed, 0);
    let calls = fake.calls();
    assert_eq!(
        (calls.deploy, calls.stop, calls.cleanup),
        (0, 0, 0),
        "no platform call"
    );
    let details = service.get(bot.id).await.unwrap();
    assert_eq!(details.history.len(), 2, "{:?}", details.history);
}

async fn a_restart_in_between_still_deploys_on_time(store: Store) {
    let clock = Clock::manual_now();
    let fake = aws();
    let first = service(store.clone(), &fake, &clock);
    let join_at = clock.now_ms() + 600_000;
    let bot = schedule(&first, 1, join_at).await;
    drop(first);

    // A new process over the same database, at the deploy time: its first
    // pass deploys the bot.
    clock.set_ms(join_at - i64::try_from(AWS_LEAD.as_millis()).unwrap());
    let second = service(store, &fake, &clock);
    let report = second.reconcile_once().await.unwrap();
    assert_eq!(report.due.deployed, 1, "{report:?}");
    assert_eq!(fake.calls().deploy, 1);
    assert!(matches!(
        second.get(bot.id).await.unwrap().bot.status,
        BotState::Deploying | BotState::Running
    ));
}

async fn a_bot_found_too_late_fails_as_missed_join_time(store: Store) {
    let clock = Clock::manual_now();
    let fake = aws();
    let service = service(store, &fake, &clock);
    let join_at = clock.now_ms() + 600_000;
    let bot = schedule(&service, 1, join_at).await;
    let on_time = schedule(&service, 2, join_at + 3_600_000).await;
    // Every process was down from before the deploy time until 16 min 40 s
    // past join_at.
    clock.set_ms(join_at + 1_000_000);
    let report = service.reconcile_once().await.unwrap();
    assert_eq!(report.due.missed, 1, "{report:?}");
    let failed = service.get(bot.id).await.unwrap().bot;
    assert_eq!(failed.status, BotState::Failed);
    let reason = failed.reason.unwrap();
    assert!(
        reason.starts_with("missed_join_time: found 16 min 40 s past its join_at"),
        "{reason}"
    );
    assert!(reason.contains("SCHEDULE_MAX_LATENESS, 900 s"), "{reason}");
    assert_eq!(fake.calls().deploy, 0, "nothing was started");
    assert_eq!(
        service.get(on_time.id).await.unwrap().bot.status,
        BotState::Scheduled,
        "a bot not due yet is left alone"
    );
}

async fn due_bots_deploy_in_join_at_then_creation_order(store: Store) {
    let clock = Clock::manual_now();
    let fake = aws();
    let service = BotService::new(
        store,
        Arc::clone(&fake) as Arc<dyn PlatformService>,
        ServiceOptions {
            drain_concurrency: 1,
            ..options(&clock)
        },
    );
    let base = clock.now_ms() + 600_000;
    // Created in this order; join times 10:02, 10:00, 10:01, 10:00.
    let mut ids = Vec::new();
    for (n, offset) in [(1, 120_000), (2, 0), (3, 60_000), (4, 0)] {
        ids.push(schedule(&service, n, base + offset).await.id);
    }
    clock.set_ms(base + 120_000);
    assert_eq!(service.deploy_due().await.unwrap().deployed, 4);
    assert_eq!(fake.deploy_order(), [ids[1], ids[3], ids[2], ids[0]]);
}

async fn a_create_that_died_before_the_platform_call_deploys_on_the_next_round(store: Store) {
    let clock = Clock::manual_now();
    let fake = aws();
    // What a crash right after the create's commit leaves: the bot with its
    // deploy intent, nothing placed.
    let config = zoom_input(1).validate(BotId(0)).unwrap();
    let created = store
        .create_bot(
            NewBot {
                config: &config,
                priority: 0,
                webhook_url: None,
                status: BotState::Pending,
                reason: "created",
                join_at: None,
                deploy_at: Some(clock.now_ms()),
                lease: None,
            },
            None,
        )
        .await
        .unwrap();
    let deployment::store::CreateOutcome::Created(record) = created else {
        panic!("created")
    };
    let service = service(store, &fake, &clock);
    let report = service.reconcile_once().await.unwrap();
    assert_eq!(report.due.deployed, 1, "{report:?}");
    assert_eq!(fake.calls().deploy, 1);
    assert!(matches!(
        service.get(record.id()).await.unwrap().bot.status,
        BotState::Deploying | BotState::Running
    ));
    // A bot created without a deploy is not touched.
    let idle = service
        .create_bot(create(zoom_input(2), false))
        .await
        .unwrap()
        .bot;
    service.reconcile_once().await.unwrap();
    assert_eq!(
        service.get(idle.id).await.unwrap().bot.status,
        BotState::Pending
    );
    assert_eq!(fake.calls().deploy, 1);
}

on_both_databases!(
    a_scheduled_bot_deploys_at_join_at_minus_the_lead_not_before,
    a_join_at_within_the_lead_deploys_now_and_bad_ones_are_refused,
    a_change_moves_a_scheduled_bot_and_is_refused_once_it_deploys,
    a_stop_cancels_a_scheduled_bot_with_no_platform_call,
    a_restart_in_between_still_deploys_on_time,
    a_bot_found_too_late_fails_as_missed_join_time,
    due_bots_deploy_in_join_at_then_creation_order,
    a_create_that_died_before_the_platform_call_deploys_on_the_next_round,
);

/// Two service processes on one PostgreSQL database run their scheduler
/// rounds at once over 60 due bots: each bot is deployed exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_on_postgres_deploy_each_due_bot_exactly_once() {
    let db = TestDb::postgres().await;
    let clock = Clock::manual_now();
    let fake = aws();
    let a = service(db.store().await, &fake, &clock);
    let b = service(db.store().await, &fake, &clock);
    let join_at = clock.now_ms() + 600_000;
    let mut ids = BTreeSet::new();
    for n in 0..60_u64 {
        let replica = if n % 2 == 0 { &a } else { &b };
        ids.insert(
            schedule(replica, n, join_at + (n as i64 % 3) * 1_000)
                .await
                .id,
        );
    }
    assert_eq!(fake.calls().deploy, 0);
    clock.set_ms(join_at);
    for _ in 0..3 {
        let (ra, rb) = tokio::join!(a.deploy_due(), b.deploy_due());
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert_eq!(ra.errors + rb.errors, 0, "{ra:?} {rb:?}");
    }
    assert_eq!(fake.calls().deploy, 60, "each bot deployed exactly once");
    let deployed: BTreeSet<BotId> = fake.bots().into_iter().map(|(id, _, _)| id).collect();
    assert_eq!(deployed, ids);
    a.store().close().await;
    b.store().close().await;
}
