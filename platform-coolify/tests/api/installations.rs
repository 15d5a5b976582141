//! Several installations (databases) pointed at one Coolify project: each
//! creates, adopts, lists and frees only its own slots, and slots named
//! before names carried the installation are kept only by the installation
//! whose database held them.

use std::sync::Arc;

use platform_coolify::{CoolifyPlatform, POOL};
use platform_core::{
    BotId, CheckOutcome, InMemorySlotStore, InstallationId, MeetingPlatform, NewSlot,
    PlatformService, SlotState, SlotStore,
};
use serde_json::json;
use wiremock::Mock;
use wiremock::matchers::{body_json, method, path};

use crate::fake_coolify::{Fault, INSTALLATION, PRODUCTION_ENV_ID, server_error, slot_name};
use crate::helpers::{TestCoolify, zoom_bot};

/// One installation: its own database (slot store) and platform.
struct Installation {
    id: InstallationId,
    store: Arc<InMemorySlotStore>,
    platform: CoolifyPlatform,
}

impl Installation {
    async fn start(coolify: &TestCoolify, id: &str) -> Self {
        let id = InstallationId::new(id).unwrap();
        let store = Arc::new(InMemorySlotStore::new());
        let platform = CoolifyPlatform::new(coolify.config(), store.clone(), id.clone())
            .await
            .unwrap();
        Self {
            id,
            store,
            platform,
        }
    }

    /// The same database, a new process.
    async fn restart(&mut self, coolify: &TestCoolify) {
        self.platform = CoolifyPlatform::new(coolify.config(), self.store.clone(), self.id.clone())
            .await
            .unwrap();
    }

    async fn slot_ids(&self) -> Vec<String> {
        self.store
            .list_slots(POOL)
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.slot_id)
            .collect()
    }
}

#[tokio::test]
async fn two_installations_on_one_project_each_create_and_adopt_only_their_own_slots() {
    let coolify = TestCoolify::start().await;
    coolify.fake.add_slots_of("production1", "zoom", 1);
    coolify.fake.add_slots_of("staging001", "zoom", 1);
    let mut production = Installation::start(&coolify, "production1").await;
    let mut staging = Installation::start(&coolify, "staging001").await;
    assert_eq!(production.slot_ids().await, ["production1-zoom-001"]);
    assert_eq!(staging.slot_ids().await, ["staging001-zoom-001"]);

    // Both databases count bots from 1.
    let p1 = production
        .platform
        .deploy_bot(&zoom_bot(1), 1)
        .await
        .unwrap();
    let s1 = staging.platform.deploy_bot(&zoom_bot(1), 1).await.unwrap();
    assert_eq!(p1.identifier.as_str(), "production1-zoom-001/bot-1");
    assert_eq!(s1.identifier.as_str(), "staging001-zoom-001/bot-1");
    // Each grows its own pool under its own names.
    let p2 = production
        .platform
        .deploy_bot(&zoom_bot(2), 1)
        .await
        .unwrap();
    let s2 = staging.platform.deploy_bot(&zoom_bot(2), 1).await.unwrap();
    let mut names: Vec<String> = coolify.fake.apps().into_iter().map(|a| a.name).collect();
    names.sort();
    assert_eq!(
        names,
        [
            slot_name("production1", "zoom", 1),
            slot_name("production1", "zoom", 2),
            slot_name("staging001", "zoom", 1),
            slot_name("staging001", "zoom", 2),
        ]
    );

    // After a restart each adopts its own again, and nothing of the other.
    production.restart(&coolify).await;
    staging.restart(&coolify).await;
    for (installation, own) in [(&production, [&p1, &p2]), (&staging, [&s1, &s2])] {
        let slots = installation.store.list_slots(POOL).await.unwrap();
        assert_eq!(slots.len(), 2, "{slots:?}");
        for deployed in own {
            let app = deployed.identifier.as_str().split('/').next().unwrap();
            let name = coolify.fake.app(app).unwrap().name;
            assert!(name.contains(installation.id.as_str()), "{name}");
            assert!(slots.iter().any(|s| s.slot_id == app));
        }
    }

    // The other installation's identifiers touch nothing.
    let requests_before = coolify.requests().await.len();
    staging.platform.stop_bot(&p1.identifier).await.unwrap();
    staging.platform.cleanup(&p1.identifier).await.unwrap();
    assert_eq!(
        coolify.requests().await.len(),
        requests_before,
        "nothing was sent"
    );
    assert_eq!(
        production
            .store
            .get_slot(POOL, "production1-zoom-001")
            .await
            .unwrap()
            .unwrap()
            .state,
        SlotState::Claimed { bot_id: BotId(1) }
    );

    // Each lists only its own bots for the orphan sweep.
    let listed = |marked: Vec<platform_core::MarkedBot>| {
        let mut ids: Vec<String> = marked
            .into_iter()
            .map(|m| m.identifier.to_string())
            .collect();
        ids.sort();
        ids
    };
    let mut production_ids = vec![p1.identifier.to_string(), p2.identifier.to_string()];
    production_ids.sort();
    assert_eq!(
        listed(production.platform.list_marked_bots().await.unwrap()),
        production_ids
    );
    let mut staging_ids = vec![s1.identifier.to_string(), s2.identifier.to_string()];
    staging_ids.sort();
    assert_eq!(
        listed(staging.platform.list_marked_bots().await.unwrap()),
        staging_ids
    );
}

#[tokio::test]
async fn marked_bots_are_claims_whose_identifiers_never_touch_a_later_claim() {
    let coolify = TestCoolify::start().await;
    coolify.fake.add_slots("zoom", 2);
    let platform = coolify.platform().await;
    assert!(platform.list_marked_bots().await.unwrap().is_empty());
    let first = platform.deploy_bot(&zoom_bot(1), 1).await.unwrap();
    let second = platform.deploy_bot(&zoom_bot(2), 3).await.unwrap();

    let mut marked = platform.list_marked_bots().await.unwrap();
    marked.sort_by_key(|m| m.bot);
    assert_eq!(marked.len(), 2);
    assert_eq!(marked[0].identifier, first.identifier);
    assert_eq!(marked[0].bot, BotId(1));
    assert_eq!(marked[0].attempt, Some(1));
    assert_eq!(marked[1].identifier, second.identifier);
    assert_eq!(marked[1].attempt, Some(3));
    assert!(
        marked[0]
            .description
            .contains(&slot_name(INSTALLATION, "zoom", 1)),
        "{}",
        marked[0].description
    );

    // The sweep frees bot 1's slot; bot 3 gets it; the swept identifier
    // then touches nothing.
    platform.stop_bot(&marked[0].identifier).await.unwrap();
    platform.cleanup(&marked[0].identifier).await.unwrap();
    assert_eq!(coolify.slot_state("zoomslot001").await, SlotState::Idle);
    let third = platform.deploy_bot(&zoom_bot(3), 1).await.unwrap();
    assert_eq!(third.identifier.as_str(), "zoomslot001/bot-3");
    let stops_before = coolify
        .calls()
        .await
        .iter()
        .filter(|c| c.ends_with("/stop?docker_cleanup=false"))
        .count();
    platform.stop_bot(&marked[0].identifier).await.unwrap();
    platform.cleanup(&marked[0].identifier).await.unwrap();
    let stops_after = coolify
        .calls()
        .await
        .iter()
        .filter(|c| c.ends_with("/stop?docker_cleanup=false"))
        .count();
    assert_eq!(stops_after, stops_before);
    assert_eq!(
        coolify.slot_state("zoomslot001").await,
        SlotState::Claimed { bot_id: BotId(3) }
    );

    // After a restart the claims are still listed; the attempt is not
    // remembered.
    let restarted = coolify.platform().await;
    let listed = restarted.list_marked_bots().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|m| m.attempt.is_none()));

    // A listing that fails is an error, never "nothing to sweep".
    coolify.fake.inject(
        "GET",
        "/applications",
        (0..10).map(|_| Fault::Before(server_error())),
    );
    let error = restarted.list_marked_bots().await.unwrap_err();
    assert!(error.is_retryable(), "{error}");
}

#[tokio::test]
async fn a_claim_whose_application_carries_another_installations_name_is_not_listed() {
    let coolify = TestCoolify::start().await;
    coolify.fake.add_slots("zoom", 1);
    let platform = coolify.platform().await;
    platform.deploy_bot(&zoom_bot(1), 1).await.unwrap();
    // Someone renamed the application for another installation.
    coolify
        .fake
        .rename_app("zoomslot001", &slot_name("otherinst1", "zoom", 1));

    assert!(platform.list_marked_bots().await.unwrap().is_empty());
}

#[tokio::test]
async fn slots_named_before_installations_stay_only_with_the_database_that_held_them() {
    let coolify = TestCoolify::start().await;
    coolify
        .fake
        .add_app("old1", "meeboter-slot-zoom-001", PRODUCTION_ENV_ID);
    coolify
        .fake
        .add_app("old2", "meeboter-slot-zoom-002", PRODUCTION_ENV_ID);
    coolify
        .fake
        .add_app("old3", "meeboter-slot-meet-001", PRODUCTION_ENV_ID);
    // Before the upgrade this database held old1 (idle) and old3 (a bot is
    // in it); old2 belongs to some other database.
    for (id, platform) in [
        ("old1", MeetingPlatform::Zoom),
        ("old3", MeetingPlatform::Meet),
    ] {
        coolify
            .store
            .add_slot(NewSlot {
                pool: POOL.into(),
                slot_id: id.into(),
                meeting_platform: platform,
                connection_url: None,
            })
            .await
            .unwrap();
    }
    coolify
        .store
        .claim_slot(POOL, MeetingPlatform::Meet, BotId(7))
        .await
        .unwrap();
    Mock::given(method("PATCH"))
        .and(path("/api/v1/applications/old1"))
        .and(body_json(
            json!({"name": slot_name(INSTALLATION, "zoom", 1)}),
        ))
        .respond_with(coolify.fake.clone())
        .expect(1)
        .named("the idle slot this database held is renamed")
        .mount(&coolify.server)
        .await;

    let platform = coolify.platform().await;

    assert_eq!(
        coolify.fake.app("old1").unwrap().name,
        slot_name(INSTALLATION, "zoom", 1)
    );
    assert_eq!(
        coolify.fake.app("old2").unwrap().name,
        "meeboter-slot-zoom-002",
        "not ours: untouched"
    );
    assert_eq!(
        coolify.fake.app("old3").unwrap().name,
        "meeboter-slot-meet-001",
        "a slot in use is renamed at a later start, once idle"
    );
    let mut ids: Vec<String> = coolify
        .store
        .list_slots(POOL)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.slot_id)
        .collect();
    ids.sort();
    assert_eq!(ids, ["old1", "old3"], "old2 is not adopted");
    let marked = platform.list_marked_bots().await.unwrap();
    assert_eq!(marked.len(), 1);
    assert_eq!(marked[0].identifier.as_str(), "old3/bot-7");

    // A new database adopts none of the unmarked slots.
    let fresh = Installation::start(&coolify, "freshdb01").await;
    assert!(fresh.slot_ids().await.is_empty());

    // doctor says what is left over and how to hand it over.
    let checks = platform.check_setup().await;
    let leftover = checks
        .iter()
        .find(|c| c.name == "slot applications from before installation ids")
        .expect("a check about unmarked slots");
    let CheckOutcome::Warning(text) = &leftover.outcome else {
        panic!("{leftover:?}");
    };
    assert!(
        text.contains("meeboter-slot-meet-001, meeboter-slot-zoom-002"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "meeboter-slot-{INSTALLATION}-<meeting platform>-<number>"
        )),
        "{text}"
    );
    coolify.server.verify().await;
}
