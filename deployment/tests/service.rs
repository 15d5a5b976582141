//! The bot deployment service on real SQLite and real PostgreSQL, over the
//! in-memory fake platform: the state machine, idempotent deploys, history
//! rows, what each platform error does, and secrets.

mod common;

use std::sync::Arc;

use common::{create, service_on, zoom_input};
use deployment::{BotState, CreateBot, ListQuery, Store, idempotency_key};
use platform_core::testkit::FakePlatform;
use platform_core::{BotId, Error, MeetingPlatform, StatusKind};

fn states(history: &[deployment::HistoryEntry]) -> Vec<(Option<BotState>, BotState)> {
    history.iter().map(|h| (h.from, h.to)).collect()
}

async fn lifecycle_records_every_transition_and_erases_secrets(store: Store) {
    let fake = Arc::new(FakePlatform::new());
    let service = service_on(store.clone(), fake.clone());
    let created = service
        .create_bot(create(zoom_input(1), true))
        .await
        .unwrap();
    assert!(created.created);
    let bot = created.bot;
    assert_eq!(bot.status, BotState::Running, "{bot:?}");
    assert_eq!(bot.attempt, 1);
    assert_eq!(bot.platform.as_deref(), Some("fake"));
    assert_eq!(
        bot.platform_id.as_deref(),
        Some(format!("fake-{}-1", bot.id).as_str())
    );
    assert!(bot.has_password);
    assert!(
        !bot.meeting_url.contains("s3cr3tpass"),
        "{}",
        bot.meeting_url
    );

    let stopped = service.stop(bot.id).await.unwrap();
    assert_eq!(stopped.status, BotState::Stopped);
    assert_eq!(stopped.reason.as_deref(), Some("stopped on request"));
    assert!(!stopped.cleanup_pending);
    assert!(
        fake.bots().is_empty(),
        "the platform still holds {:?}",
        fake.bots()
    );
    let calls = fake.calls();
    assert_eq!((calls.deploy, calls.stop, calls.cleanup), (1, 1, 1));

    let details = service.get(bot.id).await.unwrap();
    assert_eq!(
        states(&details.history),
        [
            (None, BotState::Pending),
            (Some(BotState::Pending), BotState::Deploying),
            (Some(BotState::Deploying), BotState::Running),
            (Some(BotState::Running), BotState::Stopping),
            (Some(BotState::Stopping), BotState::Stopped),
        ]
    );
    assert!(details.history.iter().all(|h| !h.reason.is_empty()));
    assert!(details.history.windows(2).all(|w| w[0].at <= w[1].at));
    let record = store.get_bot(bot.id).await.unwrap().unwrap();
    assert!(
        !record.holds_secrets(),
        "an ended bot keeps its meeting URL or password"
    );
}

async fn deploy_is_idempotent_per_bot(store: Store) {
    let fake = Arc::new(FakePlatform::new().starting_as(StatusKind::Starting));
    let service = service_on(store, fake.clone());
    let bot = service
        .create_bot(create(zoom_input(2), false))
        .await
        .unwrap()
        .bot;
    assert_eq!(bot.status, BotState::Pending);
    let first = service.deploy(bot.id).await.unwrap();
    assert_eq!(first.status, BotState::Deploying);
    let second = service.deploy(bot.id).await.unwrap();
    assert_eq!(second.status, BotState::Deploying);
    assert_eq!(second.attempt, 1);
    // Concurrent deploys of one bot start one bot.
    let racing: Vec<_> = (0..8).map(|_| service.deploy(bot.id)).collect();
    for outcome in futures::future::join_all(racing).await {
        assert_eq!(outcome.unwrap().attempt, 1);
    }
    assert_eq!(fake.calls().deploy, 1);
    assert_eq!(fake.bots().len(), 1);
}

async fn illegal_moves_are_refused_with_the_state_and_the_allowed_moves(store: Store) {
    let fake = Arc::new(FakePlatform::new());
    let service = service_on(store, fake.clone());
    let bot = service
        .create_bot(create(zoom_input(3), true))
        .await
        .unwrap()
        .bot;
    service.stop(bot.id).await.unwrap();
    let err = service.stop(bot.id).await.unwrap_err();
    assert_eq!(err.code(), "illegal_transition");
    assert!(
        err.to_string().contains(&format!(
            "bot {} is stopped and cannot become stopping",
            bot.id
        )),
        "{err}"
    );
    assert!(err.to_string().contains("never comes back"), "{err}");
    let err = service.deploy(bot.id).await.unwrap_err();
    assert_eq!(err.code(), "illegal_transition");
    assert_eq!(fake.calls().deploy, 1, "a stopped bot was deployed again");

    let err = service.stop(BotId(999_999)).await.unwrap_err();
    assert_eq!(err.code(), "bot_not_found");
    assert_eq!(err.to_string(), "bot 999999 does not exist");

    // A pending bot stops at once: nothing runs.
    let pending = service
        .create_bot(create(zoom_input(4), false))
        .await
        .unwrap()
        .bot;
    let stopped = service.stop(pending.id).await.unwrap();
    assert_eq!(stopped.status, BotState::Stopped);
    assert_eq!(fake.calls().stop, 1);
}

async fn a_full_pool_queues_the_bot_until_there_is_room(store: Store) {
    let fake = Arc::new(FakePlatform::new());
    let service = service_on(store, fake.clone());
    fake.fail_next_deploys([Error::PoolExhausted {
        platform: "fake",
        meeting_platform: MeetingPlatform::Zoom,
        capacity: 4,
    }]);
    let bot = service
        .create_bot(create(zoom_input(5), true))
        .await
        .unwrap()
        .bot;
    assert_eq!(bot.status, BotState::Queued);
    assert_eq!(bot.queue_position, Some(1));
    assert_eq!(
        fake.calls().deploy,
        1,
        "a full pool must not be retried at once"
    );
    assert!(bot.reason.unwrap().contains("all 4 zoom slots"));
    // Later, with room, the reconciler's drain deploys it as a new attempt.
    let report = service.reconcile_once().await.unwrap();
    assert_eq!(report.queue_placed, 1, "{report:?}");
    let bot = service.get(bot.id).await.unwrap().bot;
    assert_eq!((bot.status, bot.attempt), (BotState::Running, 2));
}

async fn a_definite_rejection_fails_the_bot(store: Store) {
    let fake = Arc::new(FakePlatform::new());
    let service = service_on(store.clone(), fake.clone());
    fake.fail_next_deploys([Error::Rejected {
        platform: "fake",
        resource: "task definition zoom-bot".into(),
        message: "image not found".into(),
    }]);
    let bot = service
        .create_bot(create(zoom_input(6), false))
        .await
        .unwrap()
        .bot;
    let err = service.deploy(bot.id).await.unwrap_err();
    assert_eq!(err.code(), "deploy_failed");
    assert!(err.to_string().contains("image not found"), "{err}");
    let details = service.get(bot.id).await.unwrap();
    assert_eq!(details.bot.status, BotState::Failed);
    assert!(details.bot.reason.unwrap().contains("image not found"));
    assert!(
        !store
            .get_bot(bot.id)
            .await
            .unwrap()
            .unwrap()
            .holds_secrets()
    );
    assert_eq!(fake.calls().deploy, 1, "a rejection is not retried");
}

async fn an_ambiguous_failure_stays_deploying_and_is_redriven_with_the_same_attempt(store: Store) {
    let fake = Arc::new(FakePlatform::new());
    let service = service_on(store, fake.clone());
    let unavailable = || Error::Unavailable {
        platform: "fake",
        resource: "bot".into(),
        message: "502 Bad Gateway".into(),
    };
    fake.fail_next_deploys([unavailable()]);
    let bot = service
        .create_bot(create(zoom_input(7), true))
        .await
        .unwrap()
        .bot;
    assert_eq!(bot.status, BotState::Deploying);
    assert!(
        bot.reason.as_deref().unwrap().contains("not confirmed"),
        "{bot:?}"
    );
    // The platform retries its own calls; the service adds no second loop.
    assert_eq!(fake.calls().deploy, 1);
    let report = service.reconcile_once().await.unwrap();
    assert_eq!(report.redriven_deploys, 1, "{report:?}");
    assert_eq!(fake.calls().deploy, 2);
    let details = service.get(bot.id).await.unwrap();
    assert_eq!(details.bot.status, BotState::Running);
    assert_eq!(details.bot.attempt, 1, "a re-drive keeps the attempt");
    assert_eq!(fake.bots().len(), 1);
}

async fn a_stop_the_platform_does_not_confirm_is_finished_by_the_reconciler(store: Store) {
    let fake = Arc::new(FakePlatform::new());
    let service = service_on(store, fake.clone());
    let bot = service
        .create_bot(create(zoom_input(8), true))
        .await
        .unwrap()
        .bot;
    let unavailable = || Error::Timeout {
        platform: "fake",
        resource: "bot".into(),
        after: std::time::Duration::from_secs(1),
    };
    fake.fail_next_stops([unavailable()]);
    let stopping = service.stop(bot.id).await.unwrap();
    assert_eq!(stopping.status, BotState::Stopping);
    assert!(stopping.reason.unwrap().contains("will be retried"));
    assert_eq!(fake.live_bots(), 1);
    let report = service.reconcile_once().await.unwrap();
    assert_eq!(report.finished_stops, 1, "{report:?}");
    assert_eq!(
        service.get(bot.id).await.unwrap().bot.status,
        BotState::Stopped
    );
    assert!(fake.bots().is_empty());
}

async fn idempotency_keys_return_the_same_bot_or_conflict(store: Store) {
    let fake = Arc::new(FakePlatform::new());
    let service = service_on(store, fake.clone());
    let request = |n: u64, body: &[u8]| CreateBot {
        input: zoom_input(n),
        idempotency: Some(idempotency_key("order-42", body).unwrap()),
        deploy: true,
        priority: 0,
        webhook_url: None,
        join_at: None,
    };
    let first = service.create_bot(request(9, b"body-a")).await.unwrap();
    let again = service.create_bot(request(9, b"body-a")).await.unwrap();
    assert!(first.created);
    assert!(!again.created);
    assert_eq!(first.bot.id, again.bot.id);
    assert_eq!(fake.calls().deploy, 1);
    let err = service
        .create_bot(request(10, b"body-b"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "idempotency_conflict");
    assert!(
        err.to_string().contains(&format!("bot {}", first.bot.id)),
        "{err}"
    );
    // Concurrent first uses of one key make one bot.
    let racing: Vec<_> = (0..6)
        .map(|_| {
            service.create_bot(CreateBot {
                input: zoom_input(11),
                idempotency: Some(idempotency_key("order-43", b"same").unwrap()),
                deploy: false,
                priority: 0,
                webhook_url: None,
                join_at: None,
            })
        })
        .collect();
    let ids: std::collections::BTreeSet<_> = futures::future::join_all(racing)
        .await
        .into_iter()
        .map(|r| r.unwrap().bot.id)
        .collect();
    assert_eq!(ids.len(), 1);
    // Keys are remembered for a day, then forgotten by the reconciler.
    service.reconcile_once().await.unwrap();
    assert!(
        !service
            .create_bot(request(9, b"body-a"))
            .await
            .unwrap()
            .created
    );
    let forgetful = deployment::BotService::new(
        service.store().clone(),
        fake.clone(),
        deployment::ServiceOptions {
            idempotency_key_ttl: std::time::Duration::ZERO,
            ..common::test_options()
        },
    );
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    forgetful.reconcile_once().await.unwrap();
    let fresh = forgetful.create_bot(request(9, b"body-a")).await.unwrap();
    assert!(
        fresh.created,
        "an expired key still returned bot {}",
        fresh.bot.id
    );
}

async fn invalid_requests_write_nothing(store: Store) {
    let fake = Arc::new(FakePlatform::new());
    let service = service_on(store, fake);
    let mut bad_url = zoom_input(12);
    bad_url.meeting_url = "https://zoom.us.evil.com/j/1?pwd=s3cr3tpass".into();
    let err = service.create_bot(create(bad_url, true)).await.unwrap_err();
    assert_eq!(err.code(), "invalid_meeting_url");
    assert!(!err.to_string().contains("s3cr3tpass"), "{err}");
    let mut bad_platform = zoom_input(13);
    bad_platform.meeting_platform = "webex".into();
    let err = service
        .create_bot(create(bad_platform, true))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "unknown_meeting_platform");
    assert!(
        err.to_string().contains("allowed: zoom, teams, meet"),
        "{err}"
    );
    let page = service.list(&ListQuery::default()).await.unwrap();
    assert!(
        page.bots.is_empty(),
        "an invalid request wrote {:?}",
        page.bots
    );
}

async fn lists_filter_and_paginate(store: Store) {
    let fake = Arc::new(FakePlatform::new());
    let service = service_on(store, fake);
    let mut ids = Vec::new();
    for n in 0..7 {
        let bot = service
            .create_bot(create(zoom_input(20 + n), n % 2 == 0))
            .await
            .unwrap()
            .bot;
        ids.push(bot.id);
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = service
            .list(&ListQuery {
                cursor: cursor.clone(),
                limit: Some(3),
                ..ListQuery::default()
            })
            .await
            .unwrap();
        seen.extend(page.bots.iter().map(|b| b.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    let running = service
        .list(&ListQuery {
            status: Some(BotState::Running),
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(running.bots.len(), 4);
    let elsewhere = service
        .list(&ListQuery {
            platform: Some("aws".into()),
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert!(elsewhere.bots.is_empty());
    let err = service
        .list(&ListQuery {
            limit: Some(0),
            ..ListQuery::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_query");
    let err = service
        .list(&ListQuery {
            cursor: Some("garbage".into()),
            ..ListQuery::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_query");
}

async fn live_status_of_many_bots_takes_one_platform_call(store: Store) {
    let fake = Arc::new(FakePlatform::new());
    let service = service_on(store, fake.clone());
    for n in 0..5 {
        service
            .create_bot(create(zoom_input(40 + n), true))
            .await
            .unwrap();
    }
    let before = fake.calls().statuses;
    let all = service.live_statuses(None).await.unwrap();
    assert_eq!(all.len(), 5);
    assert!(
        all.iter()
            .all(|s| s.platform_status.as_ref().unwrap().kind == StatusKind::Running)
    );
    assert_eq!(fake.calls().statuses, before + 1);
    let one = service.live_status(all[0].bot.id).await.unwrap();
    assert_eq!(one.bot.id, all[0].bot.id);
    let err = service.live_status(BotId(424_242)).await.unwrap_err();
    assert_eq!(err.code(), "bot_not_found");
}

async fn readiness_and_pool_summary(store: Store) {
    let fake = Arc::new(FakePlatform::new());
    let service = service_on(store, fake.clone());
    service
        .create_bot(create(zoom_input(50), true))
        .await
        .unwrap();
    let ready = service.readiness().await;
    assert!(ready.ready && ready.database.ok && ready.platform.ok);
    fake.set_unreachable(true);
    let ready = service.readiness().await;
    assert!(!ready.ready && ready.database.ok && !ready.platform.ok);
    assert!(ready.platform.error.unwrap().contains("unreachable"));
    let summary = service.pool_summary().await.unwrap();
    assert_eq!(summary.platform, "fake");
    assert_eq!(summary.bots_by_status.get(&BotState::Running), Some(&1));
}

async fn a_bot_of_another_platform_is_left_alone(store: Store) {
    let fake = Arc::new(FakePlatform::new());
    let service = service_on(store.clone(), fake.clone());
    let bot = service
        .create_bot(create(zoom_input(60), true))
        .await
        .unwrap()
        .bot;
    assert_eq!(bot.status, BotState::Running);
    let other = Arc::new(FakePlatform::new().named("other"));
    let elsewhere = service_on(store, other.clone());
    let err = elsewhere.stop(bot.id).await.unwrap_err();
    assert_eq!(err.code(), "platform_not_configured");
    assert!(
        err.to_string().contains("runs on the fake platform")
            && err.to_string().contains("left alone"),
        "{err}"
    );
    // Its reconciler reports the bot and leaves it alone.
    let report = elsewhere.reconcile_once().await.unwrap();
    assert_eq!(report.unconfigured, 1);
    assert_eq!(other.calls().deploy + other.calls().stop, 0);
    assert_eq!(fake.calls().stop, 0);
    let live = elsewhere.live_status(bot.id).await.unwrap();
    assert!(
        live.platform_error
            .as_deref()
            .is_some_and(|e| e.contains("not configured")),
        "{live:?}"
    );
    assert_eq!(elsewhere.platform().platform_name(), "other");
}

async fn a_stop_during_a_slow_deploy_stops_the_bot_once_the_platform_answers(store: Store) {
    let fake = Arc::new(FakePlatform::new().with_latency(std::time::Duration::from_millis(400)));
    let service = service_on(store, fake.clone());
    let bot = service
        .create_bot(create(zoom_input(80), false))
        .await
        .unwrap()
        .bot;
    let deploying = {
        let service = service.clone();
        tokio::spawn(async move { service.deploy(bot.id).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let stopping = service.stop(bot.id).await.unwrap();
    assert_eq!(stopping.status, BotState::Stopping, "{stopping:?}");
    assert!(
        stopping
            .reason
            .unwrap()
            .contains("waiting for the platform's answer")
    );
    let after_deploy = deploying.await.unwrap().unwrap();
    assert_eq!(after_deploy.status, BotState::Stopped, "{after_deploy:?}");
    assert!(
        fake.bots().is_empty(),
        "the bot started during the stop was left: {:?}",
        fake.bots()
    );
    let history = states(&service.get(bot.id).await.unwrap().history);
    assert_eq!(
        history.last().copied(),
        Some((Some(BotState::Stopping), BotState::Stopped))
    );
}

/// An operator returns a failed slot to the pool; only failed slots are
/// accepted, and a slot the pool does not have is "not found".
async fn a_failed_slot_is_recovered_by_the_operator(store: Store) {
    use deployment::ErrorClass;
    use platform_core::{NewSlot, SlotState, SlotStore};

    let service = service_on(store.clone(), Arc::new(FakePlatform::new()));
    // The fake platform's name is its pool's name, as for Coolify.
    store
        .add_slot(NewSlot {
            pool: "fake".into(),
            slot_id: "app-1".into(),
            meeting_platform: MeetingPlatform::Zoom,
            connection_url: None,
        })
        .await
        .unwrap();
    let err = service.recover_slot("app-1").await.unwrap_err();
    assert_eq!(err.code(), "slot_not_recoverable");
    assert_eq!(err.class(), ErrorClass::Conflict);
    assert!(err.to_string().contains("it is idle"), "{err}");

    store
        .mark_slot_failed("fake", "app-1", "deployment failed: image pull")
        .await
        .unwrap();
    let recovered = service.recover_slot("app-1").await.unwrap();
    assert_eq!(recovered.state, SlotState::Idle);
    let claimed = store
        .claim_slot("fake", MeetingPlatform::Zoom, BotId(5))
        .await
        .unwrap();
    assert_eq!(claimed.map(|s| s.slot_id).as_deref(), Some("app-1"));

    let err = service.recover_slot("no-such-app").await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::NotFound);
    assert!(err.to_string().contains("it is unknown"), "{err}");
}

on_both_databases!(
    a_failed_slot_is_recovered_by_the_operator,
    a_stop_during_a_slow_deploy_stops_the_bot_once_the_platform_answers,
    lifecycle_records_every_transition_and_erases_secrets,
    deploy_is_idempotent_per_bot,
    illegal_moves_are_refused_with_the_state_and_the_allowed_moves,
    a_full_pool_queues_the_bot_until_there_is_room,
    a_definite_rejection_fails_the_bot,
    an_ambiguous_failure_stays_deploying_and_is_redriven_with_the_same_attempt,
    a_stop_the_platform_does_not_confirm_is_finished_by_the_reconciler,
    idempotency_keys_return_the_same_bot_or_conflict,
    invalid_requests_write_nothing,
    lists_filter_and_paginate,
    live_status_of_many_bots_takes_one_platform_call,
    readiness_and_pool_summary,
    a_bot_of_another_platform_is_left_alone,
);

/// Every log line and `Debug` output of a whole lifecycle, captured, holds
/// neither the meeting passcode nor the password.
#[tokio::test]
async fn no_secret_in_logs_or_debug_output() {
    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let db = common::TestDb::sqlite();
    let store = db.store().await;
    let fake = Arc::new(FakePlatform::new());
    let service = service_on(store.clone(), fake.clone());
    // Another test's thread may have registered one of the service's log
    // callsites at the very moment this subscriber was installed, caching it
    // as disabled; recompute every callsite's interest now that it is.
    tracing::callsite::rebuild_interest_cache();
    let bot = service
        .create_bot(create(zoom_input(70), true))
        .await
        .unwrap()
        .bot;
    service.reconcile_once().await.unwrap();
    let details = service.get(bot.id).await.unwrap();
    let record = store.get_bot(bot.id).await.unwrap().unwrap();
    let live = service.live_status(bot.id).await.unwrap();
    service.stop(bot.id).await.unwrap();

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("bot status changed"),
        "nothing was logged: {logs}"
    );
    let shown = format!(
        "{logs}\n{bot:?}\n{details:?}\n{record:?}\n{live:?}\n{}",
        serde_json::to_string(&details).unwrap()
    );
    for secret in ["s3cr3tpass", "hunter2-pw"] {
        assert!(!shown.contains(secret), "{secret} leaked:\n{shown}");
    }
}
