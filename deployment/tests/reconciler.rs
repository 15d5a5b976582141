//! The reconciler on real databases: promotion, ended bots, evidence only,
//! the deploy deadline, crash leftovers, and two engines sharing one
//! PostgreSQL database and one slot pool.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use common::{create, service_on, test_options, zoom_input};
use deployment::store::Transition;
use deployment::{BotService, BotState, ServiceOptions, Store};
use platform_core::testkit::FakePlatform;
use platform_core::{
    BotDeploymentConfig, BotId, BotStatus, DeployResult, Error, MeetingPlatform, NewSlot,
    PlatformId, PlatformService, Result, SlotState, SlotStore, StatusKind,
};

async fn deploying_bots_are_promoted_when_the_platform_says_running(store: Store) {
    let fake = Arc::new(FakePlatform::new().starting_as(StatusKind::Starting));
    let service = service_on(store, fake.clone());
    let bot = service
        .create_bot(create(zoom_input(1), true))
        .await
        .unwrap()
        .bot;
    assert_eq!(bot.status, BotState::Deploying);
    let report = service.reconcile_once().await.unwrap();
    assert_eq!((report.examined, report.promoted), (1, 0), "{report:?}");
    let id = PlatformId::new(bot.platform_id.clone().unwrap());
    assert!(fake.set_status(
        &id,
        BotStatus::new(StatusKind::Running).with_connection_url("http://10.0.0.7:8080")
    ));
    let report = service.reconcile_once().await.unwrap();
    assert_eq!(report.promoted, 1, "{report:?}");
    let bot = service.get(bot.id).await.unwrap().bot;
    assert_eq!(bot.status, BotState::Running);
    assert_eq!(bot.connection_url.as_deref(), Some("http://10.0.0.7:8080"));
}

async fn bots_that_ended_are_recorded_with_the_platform_reason_and_cleaned_up(store: Store) {
    let fake = Arc::new(FakePlatform::new());
    let service = service_on(store, fake.clone());
    let done = service
        .create_bot(create(zoom_input(2), true))
        .await
        .unwrap()
        .bot;
    let crashed = service
        .create_bot(create(zoom_input(3), true))
        .await
        .unwrap()
        .bot;
    fake.set_status(
        &PlatformId::new(done.platform_id.clone().unwrap()),
        BotStatus::new(StatusKind::Stopped).with_reason("EssentialContainerExited: exit 0"),
    );
    fake.set_status(
        &PlatformId::new(crashed.platform_id.clone().unwrap()),
        BotStatus::new(StatusKind::Failed).with_reason("OutOfMemoryError: container killed"),
    );
    let report = service.reconcile_once().await.unwrap();
    assert_eq!(report.ended, 2, "{report:?}");
    let done = service.get(done.id).await.unwrap().bot;
    assert_eq!(done.status, BotState::Stopped);
    assert!(done.reason.unwrap().contains("EssentialContainerExited"));
    assert!(!done.cleanup_pending);
    let crashed = service.get(crashed.id).await.unwrap().bot;
    assert_eq!(crashed.status, BotState::Failed);
    assert!(crashed.reason.unwrap().contains("OutOfMemoryError"));
    assert!(fake.bots().is_empty(), "not cleaned up: {:?}", fake.bots());
    // Nothing is left for the next pass.
    assert_eq!(service.reconcile_once().await.unwrap().examined, 0);
}

async fn unknown_and_failed_reads_are_not_evidence(store: Store) {
    let fake = Arc::new(FakePlatform::new());
    let service = service_on(store, fake.clone());
    let bot = service
        .create_bot(create(zoom_input(4), true))
        .await
        .unwrap()
        .bot;
    let id = PlatformId::new(bot.platform_id.clone().unwrap());
    fake.set_status(&id, BotStatus::unknown("MISSING"));
    service.reconcile_once().await.unwrap();
    fake.fail_next_status_reads([Error::Unavailable {
        platform: "fake",
        resource: "tasks".into(),
        message: "503".into(),
    }]);
    let report = service.reconcile_once().await.unwrap();
    assert_eq!(report.status_errors, 1);
    let bot = service.get(bot.id).await.unwrap().bot;
    assert_eq!(
        bot.status,
        BotState::Running,
        "an unknown or an error is not 'gone'"
    );
    assert_eq!(fake.calls().cleanup, 0);
}

async fn deploys_past_the_deadline_fail_and_are_cleaned_up(store: Store) {
    let fake = Arc::new(FakePlatform::new().starting_as(StatusKind::Starting));
    let options = ServiceOptions {
        deploy_timeout: Duration::from_millis(200),
        ..test_options()
    };
    let service = BotService::new(store, fake.clone() as Arc<dyn PlatformService>, options);
    let bot = service
        .create_bot(create(zoom_input(5), true))
        .await
        .unwrap()
        .bot;
    assert_eq!(bot.status, BotState::Deploying);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let report = service.reconcile_once().await.unwrap();
    assert_eq!(report.timed_out, 1, "{report:?}");
    let bot = service.get(bot.id).await.unwrap().bot;
    assert_eq!(bot.status, BotState::Failed);
    assert!(bot.reason.unwrap().contains("deploy timeout"));
    assert!(fake.bots().is_empty(), "the late bot was not cleaned up");
}

async fn a_deploy_left_without_an_answer_is_redriven_with_the_same_attempt(store: Store) {
    let fake = Arc::new(FakePlatform::new());
    let service = service_on(store.clone(), fake.clone());
    let bot = service
        .create_bot(create(zoom_input(6), false))
        .await
        .unwrap()
        .bot;
    // What a crash right after the intent leaves: deploying, no identifier,
    // a lease that has run out.
    let record = store
        .begin_deploy(bot.id, "fake", "deploy requested", "dead-process", 0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.attempt(), 1);
    let report = service.reconcile_once().await.unwrap();
    assert_eq!(report.redriven_deploys, 1, "{report:?}");
    let bot = service.get(bot.id).await.unwrap().bot;
    assert_eq!((bot.status, bot.attempt), (BotState::Running, 1));
    assert_eq!(fake.bots().len(), 1);
    // A request in flight holds its lease: the reconciler leaves it alone.
    let other = service
        .create_bot(create(zoom_input(7), false))
        .await
        .unwrap()
        .bot;
    let far = deployment_now_ms() + 60_000;
    store
        .begin_deploy(other.id, "fake", "deploy requested", "live-process", far)
        .await
        .unwrap();
    let report = service.reconcile_once().await.unwrap();
    assert_eq!(report.redriven_deploys, 0, "{report:?}");
}

async fn a_stop_left_half_done_is_finished(store: Store) {
    let fake = Arc::new(FakePlatform::new());
    let service = service_on(store.clone(), fake.clone());
    let bot = service
        .create_bot(create(zoom_input(8), true))
        .await
        .unwrap()
        .bot;
    // What a crash right after the stop intent leaves.
    let mut t = Transition::new(
        bot.id,
        BotState::Running,
        1,
        BotState::Stopping,
        "stop requested",
    );
    t.lease = Some(("dead-process", 0));
    store.transition(&t).await.unwrap().unwrap();
    let report = service.reconcile_once().await.unwrap();
    assert_eq!(report.finished_stops, 1, "{report:?}");
    assert_eq!(
        service.get(bot.id).await.unwrap().bot.status,
        BotState::Stopped
    );
    assert!(fake.bots().is_empty());
}

fn deployment_now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

on_both_databases!(
    deploying_bots_are_promoted_when_the_platform_says_running,
    bots_that_ended_are_recorded_with_the_platform_reason_and_cleaned_up,
    unknown_and_failed_reads_are_not_evidence,
    deploys_past_the_deadline_fail_and_are_cleaned_up,
    a_deploy_left_without_an_answer_is_redriven_with_the_same_attempt,
    a_stop_left_half_done_is_finished,
);

/// A pool-based platform over a [`SlotStore`], like Coolify's warm pool:
/// a deploy claims a slot (the same one again for the same bot), cleanup
/// gives it back.
struct PoolPlatform {
    slots: Arc<dyn SlotStore>,
    pool: &'static str,
    capacity: usize,
    statuses: Mutex<HashMap<PlatformId, StatusKind>>,
    /// A broken cleanup that forgets to give the slot back.
    forgets_slots: bool,
}

impl PoolPlatform {
    fn split(id: &PlatformId) -> Option<(&str, BotId)> {
        let (slot, bot) = id.as_str().split_once('#')?;
        Some((slot, BotId(bot.parse().ok()?)))
    }
}

#[async_trait]
impl PlatformService for PoolPlatform {
    fn platform_name(&self) -> &'static str {
        "pool-fake"
    }

    async fn deploy_bot(
        &self,
        config: &BotDeploymentConfig,
        _attempt: u32,
    ) -> Result<DeployResult> {
        let claimed = self
            .slots
            .claim_slot(self.pool, config.meeting_platform(), config.bot_id())
            .await?;
        let Some(slot) = claimed else {
            return Err(Error::PoolExhausted {
                platform: "pool-fake",
                meeting_platform: config.meeting_platform(),
                capacity: self.capacity,
            });
        };
        let id = PlatformId::new(format!("{}#{}", slot.slot_id, config.bot_id()));
        self.statuses
            .lock()
            .unwrap()
            .insert(id.clone(), StatusKind::Running);
        Ok(DeployResult {
            identifier: id,
            connection_url: slot.connection_url,
        })
    }

    async fn stop_bot(&self, id: &PlatformId) -> Result<()> {
        if let Some(kind) = self.statuses.lock().unwrap().get_mut(id) {
            *kind = StatusKind::Stopped;
        }
        Ok(())
    }

    async fn get_bot_status(&self, id: &PlatformId) -> Result<BotStatus> {
        Ok(self.statuses.lock().unwrap().get(id).map_or_else(
            || BotStatus::unknown("no such claim"),
            |k| BotStatus::new(*k),
        ))
    }

    async fn get_bot_statuses(&self, ids: &[PlatformId]) -> Result<HashMap<PlatformId, BotStatus>> {
        let statuses = self.statuses.lock().unwrap();
        Ok(ids
            .iter()
            .map(|id| {
                let status = statuses.get(id).map_or_else(
                    || BotStatus::unknown("no such claim"),
                    |k| BotStatus::new(*k),
                );
                (id.clone(), status)
            })
            .collect())
    }

    async fn cleanup(&self, id: &PlatformId) -> Result<()> {
        if let Some((slot, bot)) = Self::split(id).filter(|_| !self.forgets_slots) {
            self.slots.release_slot(self.pool, slot, bot).await?;
        }
        self.statuses.lock().unwrap().remove(id);
        Ok(())
    }

    async fn check_reachable(&self) -> Result<()> {
        Ok(())
    }
}

/// Two engines (each with its own connections, as two processes would
/// have) share one PostgreSQL database and one 40-slot pool, and deploy
/// 100 bots at once: exactly 40 run, no slot is given twice, the other 60
/// are queued (the pool answered `pool_exhausted`); stopping the 40 frees
/// their slots for queued bots, still one bot per slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_engines_share_one_pool_without_giving_a_slot_twice() {
    let db = common::TestDb::postgres().await;
    let stores = [db.store().await, db.store().await];
    for i in 0..40 {
        stores[0]
            .add_slot(NewSlot {
                pool: "warm".into(),
                slot_id: format!("app-{i:02}"),
                meeting_platform: MeetingPlatform::Zoom,
                connection_url: Some(format!("http://app-{i:02}.internal:8080")),
            })
            .await
            .unwrap();
    }
    let engines: Vec<BotService> = stores
        .iter()
        .map(|store| {
            let platform = PoolPlatform {
                slots: Arc::new(store.clone()),
                pool: "warm",
                capacity: 40,
                statuses: Mutex::new(HashMap::new()),
                forgets_slots: false,
            };
            BotService::new(store.clone(), Arc::new(platform), test_options())
        })
        .collect();
    let mut created = Vec::new();
    for n in 0..100 {
        let engine = &engines[n % 2];
        created.push(
            engine
                .create_bot(create(zoom_input(1000 + n as u64), false))
                .await
                .unwrap()
                .bot
                .id,
        );
    }
    let deploys = created.iter().enumerate().map(|(n, id)| {
        let engine = engines[(n + 1) % 2].clone();
        let id = *id;
        tokio::spawn(async move { engine.deploy(id).await })
    });
    let mut running = 0;
    let mut exhausted = 0;
    for outcome in futures::future::join_all(deploys).await {
        match outcome.unwrap() {
            Ok(bot) if bot.status == BotState::Running => running += 1,
            // A full pool queues the bot: nothing was started for it.
            Ok(bot) if bot.status == BotState::Queued => exhausted += 1,
            Ok(bot) => panic!("unexpected {bot:?}"),
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!((running, exhausted), (40, 60));
    let slots = stores[0].list_slots("warm").await.unwrap();
    let holders: Vec<BotId> = slots
        .iter()
        .filter_map(|s| match s.state {
            SlotState::Claimed { bot_id } => Some(bot_id),
            _ => None,
        })
        .collect();
    assert_eq!(holders.len(), 40);
    assert_eq!(
        holders.iter().collect::<BTreeSet<_>>().len(),
        40,
        "a bot holds two slots"
    );
    let page = engines[0]
        .list(&deployment::ListQuery {
            status: Some(BotState::Running),
            limit: Some(500),
            ..Default::default()
        })
        .await
        .unwrap();
    let slot_of: BTreeSet<String> = page
        .bots
        .iter()
        .map(|b| {
            b.platform_id
                .clone()
                .unwrap()
                .split('#')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(slot_of.len(), 40, "two running bots share a slot");
    let queued = engines[1]
        .list(&deployment::ListQuery {
            status: Some(BotState::Queued),
            limit: Some(500),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(queued.bots.len(), 60);

    let stops = page.bots.iter().enumerate().map(|(n, bot)| {
        let engine = engines[n % 2].clone();
        let id = bot.id;
        tokio::spawn(async move { engine.stop(id).await })
    });
    for outcome in futures::future::join_all(stops).await {
        assert_eq!(outcome.unwrap().unwrap().status, BotState::Stopped);
    }
    // The freed slots go to queued bots, still one bot per slot and never
    // to a stopped bot.
    let (a, b) = tokio::join!(engines[0].reconcile_once(), engines[1].reconcile_once());
    assert_eq!(a.unwrap().errors + b.unwrap().errors, 0);
    let stopped: BTreeSet<BotId> = page.bots.iter().map(|b| b.id).collect();
    let slots = stores[1].list_slots("warm").await.unwrap();
    let holders: Vec<BotId> = slots
        .iter()
        .filter_map(|s| match s.state {
            SlotState::Claimed { bot_id } => Some(bot_id),
            _ => None,
        })
        .collect();
    assert!(holders.iter().all(|h| !stopped.contains(h)), "{slots:?}");
    assert_eq!(
        holders.iter().collect::<BTreeSet<_>>().len(),
        holders.len(),
        "a bot holds two slots"
    );
    // Both reconcilers at once find nothing left to do twice.
    let (a, b) = tokio::join!(engines[0].reconcile_once(), engines[1].reconcile_once());
    assert_eq!(a.unwrap().errors + b.unwrap().errors, 0);
    for store in stores {
        store.close().await;
    }
}

/// Two reconcilers on one PostgreSQL database never act on one bot twice:
/// each re-driven deploy is called exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_reconcilers_never_act_on_one_bot_twice() {
    let db = common::TestDb::postgres().await;
    let stores = [db.store().await, db.store().await];
    let fakes = [Arc::new(FakePlatform::new()), Arc::new(FakePlatform::new())];
    let engines: Vec<BotService> = (0..2)
        .map(|i| service_on(stores[i].clone(), fakes[i].clone()))
        .collect();
    for n in 0..60 {
        let bot = engines[0]
            .create_bot(create(zoom_input(2000 + n), false))
            .await
            .unwrap()
            .bot;
        stores[0]
            .begin_deploy(bot.id, "fake", "deploy requested", "dead-process", 0)
            .await
            .unwrap();
    }
    let (a, b) = tokio::join!(engines[0].reconcile_once(), engines[1].reconcile_once());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.redriven_deploys + b.redriven_deploys, 60, "{a:?} {b:?}");
    assert_eq!(fakes[0].calls().deploy + fakes[1].calls().deploy, 60);
    for store in stores {
        store.close().await;
    }
}

/// A platform whose cleanup forgets to give a slot back leaks nothing: the
/// reconciler gives back slots held by bots that ended and were cleaned up.
async fn slots_a_cleanup_forgot_are_given_back(store: Store) {
    store
        .add_slot(NewSlot {
            pool: "leaky".into(),
            slot_id: "app-1".into(),
            meeting_platform: MeetingPlatform::Zoom,
            connection_url: None,
        })
        .await
        .unwrap();
    let platform = PoolPlatform {
        slots: Arc::new(store.clone()),
        pool: "leaky",
        capacity: 1,
        statuses: Mutex::new(HashMap::new()),
        forgets_slots: true,
    };
    let options = ServiceOptions {
        orphan_slot_grace: Duration::ZERO,
        ..test_options()
    };
    let service = BotService::new(store.clone(), Arc::new(platform), options);
    let bot = service
        .create_bot(create(zoom_input(9), true))
        .await
        .unwrap()
        .bot;
    assert_eq!(bot.status, BotState::Running);
    // A running bot's slot is never taken away.
    assert_eq!(service.reconcile_once().await.unwrap().released_slots, 0);
    service.stop(bot.id).await.unwrap();
    let slot = store.get_slot("leaky", "app-1").await.unwrap().unwrap();
    assert_eq!(slot.state, SlotState::Claimed { bot_id: bot.id });
    tokio::time::sleep(Duration::from_millis(5)).await;
    let report = service.reconcile_once().await.unwrap();
    assert_eq!(report.released_slots, 1, "{report:?}");
    let slot = store.get_slot("leaky", "app-1").await.unwrap().unwrap();
    assert_eq!(slot.state, SlotState::Idle);
}

/// A crash after the platform claimed a slot but before the service
/// recorded it: after restart the re-driven deploy gets the same slot (the
/// claim is idempotent per bot), and stopping frees it. No slot stays
/// claimed.
async fn a_crash_after_the_slot_was_claimed_reuses_it_and_frees_it(store: Store) {
    for id in ["app-1", "app-2"] {
        store
            .add_slot(NewSlot {
                pool: "crashy".into(),
                slot_id: id.into(),
                meeting_platform: MeetingPlatform::Zoom,
                connection_url: None,
            })
            .await
            .unwrap();
    }
    let platform = Arc::new(PoolPlatform {
        slots: Arc::new(store.clone()),
        pool: "crashy",
        capacity: 2,
        statuses: Mutex::new(HashMap::new()),
        forgets_slots: false,
    });
    let service = BotService::new(store.clone(), platform.clone(), test_options());
    let bot = service
        .create_bot(create(zoom_input(10), false))
        .await
        .unwrap()
        .bot;
    let record = store
        .begin_deploy(bot.id, "pool-fake", "deploy requested", "dead-process", 0)
        .await
        .unwrap()
        .unwrap();
    // The dead process got as far as the platform's answer.
    let config = record.config().unwrap();
    let first = platform.deploy_bot(&config, 1).await.unwrap();
    let report = service.reconcile_once().await.unwrap();
    assert_eq!(report.redriven_deploys, 1, "{report:?}");
    let running = service.get(bot.id).await.unwrap().bot;
    assert_eq!(running.status, BotState::Running);
    assert_eq!(
        running.platform_id.as_deref(),
        Some(first.identifier.as_str())
    );
    let claimed = |slots: &[platform_core::Slot]| {
        slots
            .iter()
            .filter(|s| matches!(s.state, SlotState::Claimed { .. }))
            .count()
    };
    assert_eq!(claimed(&store.list_slots("crashy").await.unwrap()), 1);
    service.stop(bot.id).await.unwrap();
    assert_eq!(claimed(&store.list_slots("crashy").await.unwrap()), 0);
}

mod leaks {
    use super::*;

    on_both_databases!(
        slots_a_cleanup_forgot_are_given_back,
        a_crash_after_the_slot_was_claimed_reuses_it_and_frees_it,
    );
}
