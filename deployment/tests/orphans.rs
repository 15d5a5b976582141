//! What the field found: installations that never collide, the orphan sweep
//! that stops only what nobody here holds, and a platform that could not be
//! reached, which is "nothing started", not "maybe started".

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{TestDb, create, zoom_input};
use deployment::{BotService, BotState, ServiceOptions, Store};
use platform_core::testkit::FakePlatform;
use platform_core::{BotId, Error, PlatformService, StatusKind};

/// Options whose call timeout (the minimum gap between the two sightings
/// that condemn an orphan) is short enough for a test.
fn sweep_options() -> ServiceOptions {
    ServiceOptions {
        platform_call_timeout: Duration::from_millis(200),
        ..common::test_options()
    }
}

fn service(store: Store, fake: &Arc<FakePlatform>) -> BotService {
    BotService::new(
        store,
        Arc::clone(fake) as Arc<dyn PlatformService>,
        sweep_options(),
    )
}

async fn each_database_has_its_own_installation_for_good(db: TestDb, other: TestDb) {
    let first = db.store().await;
    let again = db.store().await;
    let second = other.store().await;
    assert_eq!(first.installation(), again.installation());
    assert_ne!(first.installation(), second.installation());
    first.close().await;
    again.close().await;
    second.close().await;
}

#[tokio::test]
async fn installations_differ_between_databases_and_stay_put_on_sqlite() {
    each_database_has_its_own_installation_for_good(TestDb::sqlite(), TestDb::sqlite()).await;
}

#[tokio::test]
async fn installations_differ_between_databases_and_stay_put_on_postgres() {
    each_database_has_its_own_installation_for_good(
        TestDb::postgres().await,
        TestDb::postgres().await,
    )
    .await;
}

async fn an_orphan_is_stopped_on_the_second_sweep_and_nothing_held_is_touched(store: Store) {
    let fake = Arc::new(FakePlatform::new());
    let service = service(store, &fake);
    // A running bot of this database, and one whose deploy is in flight
    // (intent recorded, no answer yet).
    let running = service
        .create_bot(create(zoom_input(1), true))
        .await
        .unwrap()
        .bot;
    let in_flight = service
        .create_bot(create(zoom_input(2), false))
        .await
        .unwrap()
        .bot;
    let intent = service
        .store()
        .begin_deploy(
            in_flight.id,
            "fake",
            "deploy requested",
            "elsewhere",
            i64::MAX / 2,
        )
        .await
        .unwrap()
        .expect("the intent is recorded");
    let in_flight_task = fake.start_unrecorded(in_flight.id, intent.attempt());
    // A task whose database was lost: bot 77 is nobody's here.
    let orphan = fake.start_unrecorded(BotId(77), 1);
    let running_task = running.platform_id.clone().unwrap();

    let first = service.sweep_orphans().await.unwrap();
    assert_eq!((first.listed, first.held), (3, 2), "{first:?}");
    assert_eq!((first.suspected, first.stopped), (1, 0), "{first:?}");
    // Too soon: the second sighting must come a call timeout later.
    let early = service.sweep_orphans().await.unwrap();
    assert_eq!(early.stopped, 0, "{early:?}");

    tokio::time::sleep(Duration::from_millis(250)).await;
    let second = service.sweep_orphans().await.unwrap();
    assert_eq!(second.stopped, 1, "{second:?}");
    let live: Vec<_> = fake.bots().into_iter().map(|(_, id, _)| id).collect();
    assert!(
        !live.contains(&orphan),
        "the orphan is stopped and cleaned up: {live:?}"
    );
    assert!(
        live.iter().any(|id| id.as_str() == running_task),
        "{live:?}"
    );
    assert!(live.contains(&in_flight_task), "{live:?}");
    assert_eq!(
        service.get(running.id).await.unwrap().bot.status,
        BotState::Running
    );
    let metrics = service.metrics().snapshot();
    assert_eq!(metrics.orphans_stopped.get("fake"), Some(&1), "{metrics:?}");
}

#[tokio::test]
async fn orphan_sweep_on_sqlite() {
    let db = TestDb::sqlite();
    an_orphan_is_stopped_on_the_second_sweep_and_nothing_held_is_touched(db.store().await).await;
}

#[tokio::test]
async fn orphan_sweep_on_postgres() {
    let db = TestDb::postgres().await;
    let store = db.store().await;
    an_orphan_is_stopped_on_the_second_sweep_and_nothing_held_is_touched(store.clone()).await;
    store.close().await;
}

#[tokio::test]
async fn a_duplicate_of_a_held_attempt_and_an_ended_bots_leftover_are_orphans() {
    let db = TestDb::sqlite();
    let fake = Arc::new(FakePlatform::new());
    let service = service(db.store().await, &fake);
    let stopped = service
        .create_bot(create(zoom_input(3), true))
        .await
        .unwrap()
        .bot;
    service.stop(stopped.id).await.unwrap();
    // The platform still runs something for the stopped bot's attempt.
    let leftover = fake.start_unrecorded(stopped.id, 1);
    service.sweep_orphans().await.unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    let report = service.sweep_orphans().await.unwrap();
    assert_eq!(report.stopped, 1, "{report:?}");
    assert!(fake.bots().iter().all(|(_, id, _)| id != &leftover));
}

#[tokio::test]
async fn a_bot_recorded_between_two_sweeps_is_not_an_orphan_any_more() {
    let db = TestDb::sqlite();
    let fake = Arc::new(FakePlatform::new());
    let service = service(db.store().await, &fake);
    // The platform runs bot 1 attempt 1 before its record is visible (as
    // if a replica's deploy raced the listing).
    let early = fake.start_unrecorded(BotId(1), 1);
    let first = service.sweep_orphans().await.unwrap();
    assert_eq!(first.suspected, 1, "{first:?}");
    let bot = service
        .create_bot(create(zoom_input(4), true))
        .await
        .unwrap()
        .bot;
    assert_eq!(bot.id, BotId(1));
    assert_eq!(bot.platform_id.as_deref(), Some(early.as_str()));
    tokio::time::sleep(Duration::from_millis(250)).await;
    let second = service.sweep_orphans().await.unwrap();
    assert_eq!(second.stopped, 0, "{second:?}");
    assert!(
        fake.bots()
            .iter()
            .any(|(_, id, kind)| id == &early && *kind == StatusKind::Running)
    );
}

#[tokio::test]
async fn a_platform_that_cannot_list_changes_nothing() {
    let db = TestDb::sqlite();
    let fake = Arc::new(FakePlatform::new());
    let service = service(db.store().await, &fake);
    let orphan = fake.start_unrecorded(BotId(9), 1);
    service.sweep_orphans().await.unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    fake.fail_next_listings([Error::Unavailable {
        platform: "fake",
        resource: "tasks".into(),
        message: "503".into(),
    }]);
    let report = service.sweep_orphans().await.unwrap();
    assert_eq!((report.errors, report.stopped), (1, 0), "{report:?}");
    assert!(fake.bots().iter().any(|(_, id, _)| id == &orphan));
}

fn unreachable() -> Error {
    Error::Unreachable {
        platform: "fake",
        resource: "bot 1 attempt 1".into(),
        message: "connection refused (127.0.0.1:9)".into(),
    }
}

#[tokio::test]
async fn an_unreachable_platform_queues_the_bot_and_says_so() {
    let db = TestDb::sqlite();
    let fake = Arc::new(FakePlatform::new());
    let service = service(db.store().await, &fake);
    fake.fail_next_deploys([unreachable()]);
    let bot = service
        .create_bot(create(zoom_input(5), true))
        .await
        .unwrap()
        .bot;
    assert_eq!(bot.status, BotState::Queued);
    let reason = bot.reason.unwrap_or_default();
    assert!(
        reason.contains("fake: platform_unavailable") && reason.contains("connection refused"),
        "{reason}"
    );
    // Placed again by the next pass once the platform answers: a new
    // attempt runs.
    service.reconcile_once().await.unwrap();
    let bot = service.get(bot.id).await.unwrap().bot;
    assert_eq!((bot.status, bot.attempt), (BotState::Running, 2));
}

#[tokio::test]
async fn a_repeated_deploy_that_cannot_reach_the_platform_proves_nothing() {
    let db = TestDb::sqlite();
    let fake = Arc::new(FakePlatform::new());
    let service = service(db.store().await, &fake);
    let bot = service
        .create_bot(create(zoom_input(6), false))
        .await
        .unwrap()
        .bot;
    // A crash after the intent: the reconciler calls again, and that call
    // cannot reach the platform. The first call may have started the bot,
    // so it stays deploying.
    service
        .store()
        .begin_deploy(bot.id, "fake", "deploy requested", "crashed", 0)
        .await
        .unwrap();
    fake.fail_next_deploys([unreachable()]);
    service.reconcile_once().await.unwrap();
    let bot = service.get(bot.id).await.unwrap().bot;
    assert_eq!(bot.status, BotState::Deploying, "{bot:?}");
}
