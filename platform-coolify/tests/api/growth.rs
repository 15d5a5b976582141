//! The pool cannot create slots without end: a creation that yields no new
//! slot stops the deploy at once, and creations are bounded per deploy and
//! per minute.

use std::time::Duration;

use platform_coolify::POOL;
use platform_core::{Error, ErrorKind, PlatformService, SlotState, SlotStore};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, Respond, ResponseTemplate};

use crate::fake_coolify::Fault;
use crate::helpers::{TestCoolify, zoom_bot};

/// A deploy that loops would never end: the test fails instead of hanging.
async fn deploy_within(
    platform: &dyn PlatformService,
    bot: u64,
) -> Result<platform_core::DeployResult, Error> {
    tokio::time::timeout(
        Duration::from_secs(20),
        platform.deploy_bot(&zoom_bot(bot), 1),
    )
    .await
    .expect("the deploy kept going for 20 s: it must stop instead of creating slots without end")
}

async fn mount_create(coolify: &TestCoolify, answer: impl Respond + 'static, times: u64) {
    Mock::given(method("POST"))
        .and(path("/api/v1/applications/dockerimage"))
        .respond_with(answer)
        .expect(times)
        .named("slot creations")
        .mount(&coolify.server)
        .await;
}

#[tokio::test]
async fn a_creation_answered_with_a_uuid_the_pool_holds_stops_at_once() {
    let coolify = TestCoolify::start().await;
    coolify.fake.add_slots("zoom", 1);
    // An emulator that answers every creation with the same application.
    mount_create(
        &coolify,
        ResponseTemplate::new(201).set_body_json(json!({"uuid": "zoomslot001"})),
        1,
    )
    .await;
    let platform = coolify.platform().await;
    deploy_within(&platform, 1).await.unwrap();

    let error = deploy_within(&platform, 2).await.unwrap_err();

    assert_eq!(error.kind(), ErrorKind::Internal, "{error}");
    assert!(!error.is_retryable(), "{error}");
    let text = error.to_string();
    assert!(
        text.contains(r#"Coolify answered its creation with application uuid "zoomslot001", which is already a slot of this pool"#),
        "{text}"
    );
    assert!(
        text.contains("no more are created for this deploy"),
        "{text}"
    );
    assert_eq!(coolify.store.list_slots(POOL).await.unwrap().len(), 1);
    coolify.server.verify().await;
}

#[tokio::test]
async fn a_creation_answered_with_an_existing_application_stops_at_once() {
    let coolify = TestCoolify::start().await;
    coolify.fake.add_app(
        "website1",
        "company-website",
        crate::fake_coolify::PRODUCTION_ENV_ID,
    );
    mount_create(
        &coolify,
        ResponseTemplate::new(201).set_body_json(json!({"uuid": "website1"})),
        1,
    )
    .await;
    let platform = coolify.platform().await;

    let error = deploy_within(&platform, 1).await.unwrap_err();

    let text = error.to_string();
    assert!(
        text.contains(
            r#"uuid "website1", an application that existed before (named "company-website")"#
        ),
        "{text}"
    );
    assert!(coolify.store.list_slots(POOL).await.unwrap().is_empty());
    assert!(
        coolify.fake.app("website1").unwrap().envs.is_empty(),
        "the website was not touched"
    );
    coolify.server.verify().await;
}

#[tokio::test]
async fn a_creation_the_listing_never_shows_stops_at_once() {
    let coolify = TestCoolify::start().await;
    // The application list never shows what was created.
    Mock::given(method("GET"))
        .and(path("/api/v1/applications"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&coolify.server)
        .await;
    mount_create(
        &coolify,
        ResponseTemplate::new(201).set_body_json(json!({"uuid": "og888os"})),
        1,
    )
    .await;
    let platform = coolify.platform().await;

    let error = deploy_within(&platform, 1).await.unwrap_err();

    assert_eq!(error.kind(), ErrorKind::Internal, "{error}");
    let text = error.to_string();
    assert!(
        text.contains(r#"application uuid "og888os", but its list of applications does not show that application"#),
        "{text}"
    );
    assert!(
        coolify.store.list_slots(POOL).await.unwrap().is_empty(),
        "a slot nobody can find again is not added"
    );
    coolify.server.verify().await;
}

#[tokio::test]
async fn a_created_application_listed_under_another_name_adds_no_slot() {
    let coolify = TestCoolify::start().await;
    // The real server is asked for `meeboter-slot-…`; this one names it
    // itself, so the pool would not find it again after a restart.
    mount_create(
        &coolify,
        ResponseTemplate::new(201).set_body_json(json!({"uuid": "renamed1"})),
        1,
    )
    .await;
    let platform = coolify.platform().await;
    coolify.fake.add_app(
        "renamed1",
        "docker-image-renamed1",
        crate::fake_coolify::PRODUCTION_ENV_ID,
    );

    let error = deploy_within(&platform, 1).await.unwrap_err();

    let text = error.to_string();
    assert!(text.contains(r#"named "docker-image-renamed1""#), "{text}");
    assert!(coolify.store.list_slots(POOL).await.unwrap().is_empty());
    coolify.server.verify().await;
}

#[tokio::test]
async fn one_deploy_creates_at_most_two_slots() {
    let coolify = TestCoolify::start().await;
    // Every new slot turns out broken: Coolify forgets it at once.
    coolify.fake.inject(
        "GET",
        "/applications/new*",
        (0..10).map(|_| {
            Fault::Before(
                ResponseTemplate::new(404)
                    .set_body_json(json!({"message": "Application not found."})),
            )
        }),
    );
    mount_create(&coolify, coolify.fake.clone(), 2).await;
    let platform = coolify.platform().await;

    let error = deploy_within(&platform, 1).await.unwrap_err();

    assert_eq!(error.kind(), ErrorKind::Capacity, "{error}");
    assert!(error.is_retryable());
    assert!(error.nothing_started());
    assert!(
        error
            .to_string()
            .contains("already created 2 slot applications, the most one deploy creates"),
        "{error}"
    );
    let slots = coolify.store.list_slots(POOL).await.unwrap();
    assert_eq!(slots.len(), 2);
    assert!(
        slots
            .iter()
            .all(|s| matches!(s.state, SlotState::Failed { .. })),
        "{slots:?}"
    );
    coolify.server.verify().await;
}

#[tokio::test]
async fn slot_creation_is_bounded_per_minute() {
    let coolify = TestCoolify::start().await;
    mount_create(&coolify, coolify.fake.clone(), 2).await;
    let mut config = coolify.config();
    config.pool_creations_per_minute = 2;
    let platform = coolify.platform_with(config).await.unwrap();

    deploy_within(&platform, 1).await.unwrap();
    deploy_within(&platform, 2).await.unwrap();
    let error = deploy_within(&platform, 3).await.unwrap_err();

    assert_eq!(error.kind(), ErrorKind::Capacity, "{error}");
    assert!(error.is_retryable(), "a later deploy may create again");
    assert!(error.nothing_started());
    let text = error.to_string();
    assert!(
        text.contains("created 2 slot applications in the last minute, the most COOLIFY_POOL_CREATIONS_PER_MINUTE allows"),
        "{text}"
    );
    coolify.server.verify().await;
}
