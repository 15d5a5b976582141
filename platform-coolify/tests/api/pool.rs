//! The warm pool: reuse, separation by meeting platform, growth up to the
//! maximum, adoption, and identifiers whose claim has ended.

use platform_coolify::POOL;
use platform_core::{
    BotId, Error, ErrorKind, MeetingPlatform, NewSlot, PlatformService, SlotState, SlotStore,
    StatusKind,
};
use serde_json::json;
use wiremock::Mock;
use wiremock::matchers::{method, path, path_regex};

use crate::fake_coolify::{
    INSTALLATION, OTHER_PROJECT_ENV_ID, PRODUCTION_ENV_ID, STAGING_ENV_ID, slot_name,
};
use crate::helpers::{TestCoolify, bot, zoom_bot};

#[tokio::test]
async fn a_slot_is_reused_by_the_next_bot_and_never_created_twice() {
    let coolify = TestCoolify::start().await;
    coolify.fake.add_slots("zoom", 1);
    Mock::given(method("POST"))
        .and(path("/api/v1/applications/dockerimage"))
        .respond_with(coolify.fake.clone())
        .expect(0)
        .mount(&coolify.server)
        .await;
    let mut config = coolify.config();
    config.pool_max.zoom = 1;
    let platform = coolify.platform_with(config).await.unwrap();

    let first = platform
        .deploy_bot(&zoom_bot(1), 1)
        .await
        .unwrap()
        .identifier;
    platform.stop_bot(&first).await.unwrap();
    platform.cleanup(&first).await.unwrap();
    let second = platform
        .deploy_bot(&zoom_bot(2), 1)
        .await
        .unwrap()
        .identifier;

    assert_eq!(first.as_str(), "zoomslot001/bot-1");
    assert_eq!(second.as_str(), "zoomslot001/bot-2");
    assert_eq!(
        coolify.fake.env_value("zoomslot001", "BOT_ID").as_deref(),
        Some("2")
    );
    assert_eq!(coolify.fake.deployments().len(), 2);
    coolify.server.verify().await;
}

#[tokio::test]
async fn an_identifier_whose_claim_ended_never_touches_the_next_bot() {
    let coolify = TestCoolify::start().await;
    coolify.fake.add_slots("zoom", 1);
    let platform = coolify.platform().await;
    let old = platform
        .deploy_bot(&zoom_bot(1), 1)
        .await
        .unwrap()
        .identifier;
    platform.stop_bot(&old).await.unwrap();
    platform.cleanup(&old).await.unwrap();
    let current = platform
        .deploy_bot(&zoom_bot(2), 1)
        .await
        .unwrap()
        .identifier;
    assert_eq!(
        platform.get_bot_status(&current).await.unwrap().kind,
        StatusKind::Running
    );
    let stops_before = coolify
        .calls()
        .await
        .iter()
        .filter(|c| c.contains("/stop"))
        .count();

    // Everything the old identifier can be used for.
    let old_status = platform.get_bot_status(&old).await.unwrap();
    let batch = platform
        .get_bot_statuses(&[old.clone(), current.clone()])
        .await
        .unwrap();
    platform.stop_bot(&old).await.unwrap();
    platform.cleanup(&old).await.unwrap();

    assert_eq!(old_status.kind, StatusKind::Stopped, "{old_status}");
    assert!(
        old_status
            .reason
            .unwrap()
            .contains("now serves another bot"),
        "the old bot is not reported as running"
    );
    assert_eq!(
        old_status.raw, None,
        "the new bot's raw status is not shown"
    );
    assert_eq!(batch[&old].kind, StatusKind::Stopped);
    assert_eq!(batch[&current].kind, StatusKind::Running);
    let stops_after = coolify
        .calls()
        .await
        .iter()
        .filter(|c| c.contains("/stop"))
        .count();
    assert_eq!(stops_after, stops_before, "the stale stop sent nothing");
    assert_eq!(
        coolify.slot_state("zoomslot001").await,
        SlotState::Claimed { bot_id: BotId(2) },
        "the stale cleanup released nothing"
    );
    assert_eq!(
        coolify.fake.app("zoomslot001").unwrap().status,
        "running:unhealthy"
    );
}

#[tokio::test]
async fn slots_belong_to_one_meeting_platform() {
    let coolify = TestCoolify::start().await;
    coolify.fake.add_slots("zoom", 1);
    coolify.fake.add_slots("meet", 1);
    let mut config = coolify.config();
    config.pool_max.zoom = 1;
    config.pool_max.meet = 1;
    config.images.teams = None;
    let platform = coolify.platform_with(config).await.unwrap();

    let meet = platform
        .deploy_bot(&bot(1, MeetingPlatform::Meet), 1)
        .await
        .unwrap();
    let zoom = platform.deploy_bot(&zoom_bot(2), 1).await.unwrap();
    assert_eq!(meet.identifier.as_str(), "meetslot001/bot-1");
    assert_eq!(zoom.identifier.as_str(), "zoomslot001/bot-2");
    assert_eq!(
        coolify
            .fake
            .env_value("meetslot001", "MEETING_URL")
            .as_deref(),
        Some("https://meet.google.com/abc-defg-hij")
    );

    // The Meet slot is free again, but a Zoom bot never gets it.
    platform.cleanup(&meet.identifier).await.unwrap();
    let err = platform.deploy_bot(&zoom_bot(3), 1).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::PoolExhausted {
                meeting_platform: MeetingPlatform::Zoom,
                capacity: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert_eq!(coolify.slot_state("meetslot001").await, SlotState::Idle);

    // No Teams slot and no Teams image: a configuration problem that says
    // which variable to set, not a busy pool.
    let err = platform
        .deploy_bot(&bot(4, MeetingPlatform::Teams), 1)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("COOLIFY_BOT_IMAGE_TEAMS"), "{err}");
}

#[tokio::test]
async fn the_pool_grows_to_its_maximum_then_says_it_is_exhausted() {
    let coolify = TestCoolify::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/applications/dockerimage"))
        .respond_with(coolify.fake.clone())
        .expect(2)
        .named("create slot applications")
        .mount(&coolify.server)
        .await;
    let mut config = coolify.config();
    config.pool_max.zoom = 2;
    let platform = coolify.platform_with(config).await.unwrap();

    let first = platform.deploy_bot(&zoom_bot(1), 1).await.unwrap();
    let second = platform.deploy_bot(&zoom_bot(2), 1).await.unwrap();
    let third = platform.deploy_bot(&zoom_bot(3), 1).await.unwrap_err();

    let Error::PoolExhausted {
        meeting_platform,
        capacity,
        ..
    } = &third
    else {
        panic!("expected pool exhausted, got {third:?}");
    };
    assert_eq!((*meeting_platform, *capacity), (MeetingPlatform::Zoom, 2));
    assert!(third.is_retryable());
    assert!(
        third
            .to_string()
            .contains("all 2 zoom slots are in use and the pool is at its maximum"),
        "{third}"
    );
    let names: Vec<String> = coolify.fake.apps().into_iter().map(|a| a.name).collect();
    assert_eq!(
        names,
        [
            "meeboter-slot-5f3a9c01d2e4b687-zoom-001",
            "meeboter-slot-5f3a9c01d2e4b687-zoom-002"
        ]
    );
    let bodies: Vec<serde_json::Value> = coolify
        .requests()
        .await
        .iter()
        .filter(|r| r.url.path() == "/api/v1/applications/dockerimage")
        .map(|r| r.body_json().unwrap())
        .collect();
    assert_eq!(
        bodies[0],
        json!({
            "project_uuid": "proj-meeboter",
            "server_uuid": "srv-main",
            "environment_name": "production",
            "docker_registry_image_name": "ghcr.io/acme/zoom-bot",
            "docker_registry_image_tag": "1.4.2",
            "ports_exposes": "3000",
            "name": "meeboter-slot-5f3a9c01d2e4b687-zoom-001",
            "description": "Warm slot for zoom meeting bots of Meeboter deploy installation 5f3a9c01d2e4b687. Its environment is rewritten for every bot; do not rename or delete it while bots run.",
            "instant_deploy": false,
        })
    );
    assert_eq!(bodies[1]["name"], "meeboter-slot-5f3a9c01d2e4b687-zoom-002");
    // Coolify's create answer has only the uuid; the generated domain is
    // read once so every bot in the slot gets its URL.
    let first_app = first.identifier.as_str().split('/').next().unwrap();
    assert_eq!(
        first.connection_url,
        Some(format!("http://{first_app}.10.0.0.5.sslip.io"))
    );
    // A created slot is a full member of the pool: freed, it is reused.
    platform.cleanup(&first.identifier).await.unwrap();
    let fourth = platform.deploy_bot(&zoom_bot(4), 1).await.unwrap();
    assert_ne!(fourth.identifier, second.identifier);
    assert!(
        fourth
            .identifier
            .as_str()
            .starts_with(first.identifier.as_str().split('/').next().unwrap())
    );
    coolify.server.verify().await;
}

#[tokio::test]
async fn a_create_whose_answer_was_lost_is_found_by_listing_not_sent_again() {
    let coolify = TestCoolify::start().await;
    coolify.fake.inject(
        "POST",
        "/applications/dockerimage",
        [crate::fake_coolify::Fault::After(
            crate::fake_coolify::server_error(),
        )],
    );
    Mock::given(method("POST"))
        .and(path("/api/v1/applications/dockerimage"))
        .respond_with(coolify.fake.clone())
        .expect(1)
        .named("create sent once")
        .mount(&coolify.server)
        .await;
    let platform = coolify.platform().await;

    let deployed = platform.deploy_bot(&zoom_bot(1), 1).await.unwrap();

    let apps = coolify.fake.apps();
    assert_eq!(apps.len(), 1, "exactly one slot application exists");
    assert_eq!(
        deployed.identifier.as_str(),
        format!("{}/bot-1", apps[0].uuid)
    );
    coolify.server.verify().await;
}

#[tokio::test]
async fn adoption_takes_the_projects_slot_applications_once() {
    let coolify = TestCoolify::start().await;
    coolify
        .fake
        .add_app("z1", &slot_name(INSTALLATION, "zoom", 1), PRODUCTION_ENV_ID);
    coolify
        .fake
        .add_app("t7", &slot_name(INSTALLATION, "teams", 7), STAGING_ENV_ID);
    coolify.fake.add_app(
        "elsewhere",
        &slot_name(INSTALLATION, "zoom", 2),
        OTHER_PROJECT_ENV_ID,
    );
    coolify
        .fake
        .add_app("web", "company-website", PRODUCTION_ENV_ID);
    coolify.fake.add_app(
        "copy",
        &format!("{}-copy", slot_name(INSTALLATION, "zoom", 1)),
        PRODUCTION_ENV_ID,
    );
    // A slot the store remembers whose application was deleted, and one a
    // bot still holds.
    for id in ["deleted-idle", "deleted-held"] {
        coolify
            .store
            .add_slot(NewSlot {
                pool: POOL.into(),
                slot_id: id.into(),
                meeting_platform: MeetingPlatform::Zoom,
                connection_url: None,
            })
            .await
            .unwrap();
    }
    coolify
        .store
        .claim_slot(POOL, MeetingPlatform::Zoom, BotId(99))
        .await
        .unwrap();
    let held = coolify.store.list_slots(POOL).await.unwrap();
    let held_id = held
        .iter()
        .find(|s| matches!(s.state, SlotState::Claimed { .. }))
        .unwrap()
        .slot_id
        .clone();

    let _first = coolify.platform().await;
    let _restarted = coolify.platform().await;

    let slots = coolify.store.list_slots(POOL).await.unwrap();
    let ids: Vec<&str> = slots.iter().map(|s| s.slot_id.as_str()).collect();
    let mut expected = vec!["t7", "z1", held_id.as_str()];
    expected.sort_unstable();
    assert_eq!(
        ids, expected,
        "adopted once, stale idle slot dropped, held slot kept"
    );
    let teams = slots.iter().find(|s| s.slot_id == "t7").unwrap();
    assert_eq!(teams.meeting_platform, MeetingPlatform::Teams);
    assert_eq!(teams.state, SlotState::Idle);
    assert_eq!(
        teams.connection_url.as_deref(),
        Some("http://t7.10.0.0.5.sslip.io")
    );
}

#[tokio::test]
async fn a_list_failure_during_adoption_leaves_the_pool_as_it_was() {
    for failure in [
        crate::fake_coolify::server_error(),
        crate::fake_coolify::bad_gateway(),
        crate::fake_coolify::too_many_attempts(0),
    ] {
        let coolify = TestCoolify::start().await;
        coolify.fake.add_slots("zoom", 2);
        let _healthy = coolify.platform().await;
        coolify
            .store
            .claim_slot(POOL, MeetingPlatform::Zoom, BotId(5))
            .await
            .unwrap();
        coolify.fake.remove_app("zoomslot002");
        let before = coolify.store.list_slots(POOL).await.unwrap();
        Mock::given(method("GET"))
            .and(path_regex("^/api/v1/applications$"))
            .respond_with(failure.clone())
            .named("the list keeps failing")
            .mount(&coolify.server)
            .await;

        let err = coolify.platform_with(coolify.config()).await.unwrap_err();

        assert!(err.is_retryable(), "{err}");
        assert!(
            err.to_string()
                .contains("adopting the warm pool at start-up"),
            "{err}"
        );
        assert_eq!(
            coolify.store.list_slots(POOL).await.unwrap(),
            before,
            "nothing was added, removed or released"
        );
    }
}

#[tokio::test]
async fn a_retired_slot_leaves_the_pool_and_coolify_but_a_held_one_stays() {
    let coolify = TestCoolify::start().await;
    coolify.fake.add_slots("zoom", 2);
    Mock::given(method("DELETE"))
        .and(path("/api/v1/applications/zoomslot002"))
        .and(wiremock::matchers::query_param("delete_volumes", "true"))
        .respond_with(coolify.fake.clone())
        .expect(1)
        .mount(&coolify.server)
        .await;
    let platform = coolify.platform().await;
    let held = platform.deploy_bot(&zoom_bot(1), 1).await.unwrap();
    assert_eq!(held.identifier.as_str(), "zoomslot001/bot-1");

    assert!(!platform.retire_slot("zoomslot001").await.unwrap());
    assert!(platform.retire_slot("zoomslot002").await.unwrap());
    assert!(!platform.retire_slot("zoomslot002").await.unwrap());

    assert!(coolify.fake.app("zoomslot001").is_some());
    assert!(coolify.fake.app("zoomslot002").is_none());
    let slots = coolify.store.list_slots(POOL).await.unwrap();
    assert_eq!(slots.len(), 1);
    coolify.server.verify().await;
}

#[tokio::test]
async fn an_empty_pool_says_how_it_grows() {
    let coolify = TestCoolify::start().await;
    let mut config = coolify.config();
    config.pool_max.zoom = 7;
    config.pool_max.teams = 0;
    config.images.meet = None;
    let platform = coolify.platform_with(config).await.unwrap();
    let note = platform.describe_pool().expect("Coolify has a warm pool");
    assert!(note.contains("no slots yet"), "{note}");
    assert!(note.contains("creates one"), "{note}");
    assert!(
        note.contains("zoom: up to 7 slots (COOLIFY_POOL_MAX_ZOOM=7)"),
        "{note}"
    );
    assert!(
        note.contains("teams: off (COOLIFY_POOL_MAX_TEAMS=0)"),
        "{note}"
    );
    assert!(note.contains("COOLIFY_BOT_IMAGE_MEET is not set"), "{note}");
}
