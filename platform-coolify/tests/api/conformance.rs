//! The core conformance suite against the fake-Coolify-backed platform.

use std::time::Duration;

use platform_core::testkit::{Fixtures, deploy_survives_transient_failure, run_suite};
use platform_core::{PlatformService, RetryPolicy};
use wiremock::ResponseTemplate;

use crate::fake_coolify::Fault;
use crate::helpers::TestCoolify;

fn fixtures() -> Fixtures {
    let mut fixtures = Fixtures::new("nosuchapp000/bot-1");
    fixtures.settle = Duration::from_secs(5);
    fixtures.poll = Duration::from_millis(20);
    fixtures
}

#[tokio::test]
async fn the_conformance_suite_passes() {
    let coolify = TestCoolify::start().await;
    // Deployments take a moment, so statuses pass through `starting`.
    coolify.fake.set_deployment_time(Duration::from_millis(100));
    let platform = coolify.platform().await;
    assert_eq!(platform.platform_name(), "coolify");
    run_suite(&platform, &fixtures()).await.unwrap();
    // The pool grew on demand and every slot went back.
    assert!(!coolify.fake.apps().is_empty());
    let slots =
        platform_core::SlotStore::list_slots(coolify.store.as_ref(), platform_coolify::POOL)
            .await
            .unwrap();
    assert!(
        slots
            .iter()
            .all(|s| s.state == platform_core::SlotState::Idle),
        "{slots:?}"
    );
}

#[tokio::test]
async fn a_deploy_survives_a_transient_failure() {
    let coolify = TestCoolify::start().await;
    coolify.fake.add_slots("zoom", 1);
    let platform = coolify.platform().await;
    // More server errors than one deploy's own retries absorb: the first
    // deploy fails retryably, the suite's retry succeeds.
    coolify.fake.inject(
        "PATCH",
        "/applications/*",
        (0..5).map(|_| Fault::Before(ResponseTemplate::new(503))),
    );
    let policy = RetryPolicy {
        initial_backoff: Duration::from_millis(10),
        jitter: false,
        ..RetryPolicy::default()
    };
    let config = fixtures()
        .with_meeting_platforms(&[platform_core::MeetingPlatform::Zoom])
        .config(1);
    deploy_survives_transient_failure(&platform, &config, &policy)
        .await
        .unwrap();
    let bulk_writes = coolify
        .calls()
        .await
        .iter()
        .filter(|c| c.starts_with("PATCH"))
        .count();
    assert_eq!(bulk_writes, 6, "five failures, then the write that worked");
}
