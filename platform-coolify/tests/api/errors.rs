//! Failures: throttling, server errors, failed starts, bad credentials.

use std::time::Duration;

use platform_core::{ErrorKind, PlatformService, SecretString, SlotState, StatusKind};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::fake_coolify::{Fault, TOKEN, bad_gateway, server_error, too_many_attempts};
use crate::helpers::{TestCoolify, everything_printed, zoom_bot};

#[tokio::test]
async fn a_429_is_waited_out_for_its_retry_after_then_succeeds() {
    let coolify = TestCoolify::start().await;
    coolify.fake.add_slots("zoom", 1);
    let bulk = "/applications/zoomslot001/envs/bulk";
    coolify
        .fake
        .inject("PATCH", bulk, [Fault::Before(too_many_attempts(1))]);
    Mock::given(method("PATCH"))
        .and(path(format!("/api/v1{bulk}")))
        .respond_with(coolify.fake.clone())
        .expect(2)
        .named("throttled once, then accepted")
        .mount(&coolify.server)
        .await;
    let platform = coolify.platform().await;

    platform.deploy_bot(&zoom_bot(1), 1).await.unwrap();

    let arrivals = coolify.fake.arrivals("PATCH", bulk);
    assert_eq!(arrivals.len(), 2);
    assert!(
        arrivals[1].duration_since(arrivals[0]) >= Duration::from_secs(1),
        "the second try waited for Retry-After: 1"
    );
    coolify.server.verify().await;
}

#[tokio::test]
async fn a_throttled_start_is_sent_again_because_it_was_not_processed() {
    let coolify = TestCoolify::start().await;
    coolify.fake.add_slots("zoom", 1);
    let start = "/applications/zoomslot001/start";
    coolify
        .fake
        .inject("POST", start, [Fault::Before(too_many_attempts(0))]);
    let platform = coolify.platform().await;
    platform.deploy_bot(&zoom_bot(1), 1).await.unwrap();
    assert_eq!(coolify.fake.arrivals("POST", start).len(), 2);
    assert_eq!(coolify.fake.deployments().len(), 1);
}

#[tokio::test]
async fn server_errors_on_reads_and_env_writes_are_retried() {
    let coolify = TestCoolify::start().await;
    coolify.fake.add_slots("zoom", 1);
    coolify.fake.inject(
        "GET",
        "/applications",
        [Fault::Before(bad_gateway()), Fault::Before(server_error())],
    );
    coolify.fake.inject(
        "PATCH",
        "/applications/zoomslot001/envs/bulk",
        [Fault::Before(ResponseTemplate::new(503))],
    );
    coolify.fake.inject(
        "GET",
        "/applications/zoomslot001",
        [Fault::Before(bad_gateway())],
    );
    let platform = coolify.platform().await;
    let id = platform
        .deploy_bot(&zoom_bot(1), 1)
        .await
        .unwrap()
        .identifier;
    let status = platform.get_bot_status(&id).await.unwrap();
    assert_eq!(status.kind, StatusKind::Running, "{status}");
}

#[tokio::test]
async fn a_start_that_fails_with_a_server_error_gives_the_slot_back() {
    let coolify = TestCoolify::start().await;
    coolify.fake.add_slots("zoom", 1);
    let start = "/applications/zoomslot001/start";
    coolify
        .fake
        .inject("POST", start, [Fault::Before(server_error())]);
    let platform = coolify.platform().await;

    let err = platform.deploy_bot(&zoom_bot(1), 1).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.is_retryable());
    assert!(err.to_string().contains("HTTP 500: Server Error"), "{err}");
    assert_eq!(
        coolify.fake.arrivals("POST", start).len(),
        1,
        "a start that may have been processed is not sent blindly again"
    );
    assert_eq!(coolify.slot_state("zoomslot001").await, SlotState::Idle);

    // The service retries: the bot gets its slot and starts.
    let deployed = platform.deploy_bot(&zoom_bot(1), 2).await.unwrap();
    assert_eq!(deployed.identifier.as_str(), "zoomslot001/bot-1");
    assert_eq!(coolify.fake.deployments().len(), 1);
}

#[tokio::test]
async fn a_start_whose_answer_was_lost_but_was_queued_counts_as_started() {
    let coolify = TestCoolify::start().await;
    coolify.fake.add_slots("zoom", 1);
    coolify.fake.set_deployment_time(Duration::from_secs(3600));
    let start = "/applications/zoomslot001/start";
    coolify
        .fake
        .inject("POST", start, [Fault::After(bad_gateway())]);
    let platform = coolify.platform().await;

    let deployed = platform.deploy_bot(&zoom_bot(1), 1).await.unwrap();

    assert_eq!(coolify.fake.arrivals("POST", start).len(), 1);
    assert_eq!(coolify.fake.deployments().len(), 1);
    let status = platform.get_bot_status(&deployed.identifier).await.unwrap();
    assert_eq!(status.kind, StatusKind::Starting, "{status}");
}

#[tokio::test]
async fn a_failed_deployment_marks_the_slot_failed_and_frees_nothing_twice() {
    let coolify = TestCoolify::start().await;
    coolify.fake.add_slots("zoom", 2);
    coolify.fake.fail_deployments_of("zoomslot001");
    let mut config = coolify.config();
    config.pool_max.zoom = 2;
    let platform = coolify.platform_with(config).await.unwrap();

    let id = platform
        .deploy_bot(&zoom_bot(1), 1)
        .await
        .unwrap()
        .identifier;
    assert_eq!(id.as_str(), "zoomslot001/bot-1");
    let status = platform.get_bot_status(&id).await.unwrap();
    assert_eq!(status.kind, StatusKind::Failed, "{status}");
    let reason = status.reason.unwrap();
    assert!(reason.contains("failed"), "{reason}");
    let SlotState::Failed {
        reason: slot_reason,
    } = coolify.slot_state("zoomslot001").await
    else {
        panic!("the slot is marked failed");
    };
    assert!(slot_reason.contains("bot 1"), "{slot_reason}");
    assert!(slot_reason.contains("failed"), "{slot_reason}");
    // Batch reads agree.
    let batch = platform
        .get_bot_statuses(std::slice::from_ref(&id))
        .await
        .unwrap();
    assert_eq!(batch[&id].kind, StatusKind::Failed);

    // The service stops and cleans up, twice for good measure: the slot
    // stays failed, it is not handed out again.
    for _ in 0..2 {
        platform.stop_bot(&id).await.unwrap();
        platform.cleanup(&id).await.unwrap();
        assert!(matches!(
            coolify.slot_state("zoomslot001").await,
            SlotState::Failed { .. }
        ));
    }
    let next = platform.deploy_bot(&zoom_bot(2), 1).await.unwrap();
    assert_eq!(next.identifier.as_str(), "zoomslot002/bot-2");
    let err = platform.deploy_bot(&zoom_bot(3), 1).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PoolExhausted, "{err}");

    // Once the operator fixed it, the slot comes back.
    assert!(platform.recover_slot("zoomslot001").await.unwrap());
    assert!(!platform.recover_slot("zoomslot001").await.unwrap());
    assert_eq!(coolify.slot_state("zoomslot001").await, SlotState::Idle);
}

#[tokio::test]
async fn a_start_coolify_never_queued_reads_as_failed_and_the_slot_is_released() {
    let coolify = TestCoolify::start().await;
    coolify.fake.add_slots("zoom", 1);
    coolify.fake.set_queue_full(true);
    let platform = coolify.platform().await;
    let id = platform
        .deploy_bot(&zoom_bot(1), 1)
        .await
        .unwrap()
        .identifier;

    let status = platform.get_bot_status(&id).await.unwrap();
    assert_eq!(status.kind, StatusKind::Failed, "{status}");
    assert!(
        status.reason.as_deref().unwrap().contains("never queued"),
        "{status}"
    );
    // Not the slot's fault: cleanup gives it back.
    platform.stop_bot(&id).await.unwrap();
    platform.cleanup(&id).await.unwrap();
    assert_eq!(coolify.slot_state("zoomslot001").await, SlotState::Idle);
}

#[tokio::test]
async fn a_slot_whose_application_was_deleted_is_failed_and_the_bot_gets_another() {
    let coolify = TestCoolify::start().await;
    coolify.fake.add_slots("zoom", 2);
    let platform = coolify.platform().await;
    coolify.fake.remove_app("zoomslot001");

    let deployed = platform.deploy_bot(&zoom_bot(1), 1).await.unwrap();

    assert_eq!(deployed.identifier.as_str(), "zoomslot002/bot-1");
    assert!(matches!(
        coolify.slot_state("zoomslot001").await,
        SlotState::Failed { .. }
    ));
    // A held claim whose application disappears later reads as failed.
    coolify.fake.remove_app("zoomslot002");
    let status = platform.get_bot_status(&deployed.identifier).await.unwrap();
    assert_eq!(status.kind, StatusKind::Failed, "{status}");
    assert!(status.reason.unwrap().contains("no longer exists"));
}

#[tokio::test]
async fn a_401_is_a_clear_error_that_is_not_retried_and_never_prints_the_key() {
    let coolify = TestCoolify::start().await;
    let mut config = coolify.config();
    config.api_key = SecretString::new("9|wrong-k3y-that-must-not-leak");
    Mock::given(method("GET"))
        .and(path(format!(
            "/api/v1/projects/{}/environments",
            config.project_uuid
        )))
        .respond_with(coolify.fake.clone())
        .expect(1)
        .named("asked once, not retried")
        .mount(&coolify.server)
        .await;

    let err = coolify.platform_with(config.clone()).await.unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err:?}");
    assert!(!err.is_retryable());
    let text = err.to_string();
    assert!(text.starts_with("coolify: not authorised"), "{text}");
    assert!(text.contains("HTTP 401: Unauthenticated."), "{text}");
    assert!(!everything_printed(&err).contains("wrong-k3y"), "{err:?}");
    assert!(!format!("{config:?}").contains("wrong-k3y"));
    coolify.server.verify().await;
}

#[tokio::test]
async fn a_token_without_the_deploy_ability_gives_the_slot_back() {
    let coolify = TestCoolify::start().await;
    coolify.fake.add_slots("zoom", 1);
    coolify.fake.inject(
        "POST",
        "/applications/zoomslot001/start",
        [Fault::Before(ResponseTemplate::new(403).set_body_json(
            json!({"message": "Missing required permissions: deploy"}),
        ))],
    );
    let platform = coolify.platform().await;

    let err = platform.deploy_bot(&zoom_bot(1), 1).await.unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    assert!(
        err.to_string()
            .contains("Missing required permissions: deploy")
    );
    assert!(!everything_printed(&err).contains(TOKEN));
    assert_eq!(
        coolify.slot_state("zoomslot001").await,
        SlotState::Idle,
        "a credentials problem is not the slot's fault"
    );
}

#[tokio::test]
async fn a_rejected_env_write_names_the_field_and_gives_the_slot_back() {
    let coolify = TestCoolify::start().await;
    coolify.fake.add_slots("zoom", 1);
    coolify.fake.inject(
        "PATCH",
        "/applications/zoomslot001/envs/bulk",
        [Fault::Before(ResponseTemplate::new(422).set_body_json(
            json!({
                "message": "Validation failed.",
                "errors": {"value": ["The value field must be a string."]}
            }),
        ))],
    );
    let platform = coolify.platform().await;
    let err = platform.deploy_bot(&zoom_bot(1), 1).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected, "{err}");
    assert!(!err.is_retryable());
    assert!(
        err.to_string()
            .contains("Validation failed. (value: The value field must be a string.)"),
        "{err}"
    );
    assert_eq!(coolify.slot_state("zoomslot001").await, SlotState::Idle);
    assert!(coolify.fake.deployments().is_empty(), "nothing was started");
}

#[tokio::test]
async fn an_unreachable_coolify_is_a_retryable_error() {
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let coolify = TestCoolify::start().await;
    let mut config = coolify.config();
    config.api_url =
        platform_coolify::config::normalise_api_url(&format!("http://{address}")).unwrap();
    let err = coolify.platform_with(config).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.is_retryable());
    assert!(err.to_string().contains("could not connect"), "{err}");
}
