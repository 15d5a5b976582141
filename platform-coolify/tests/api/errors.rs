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

/// A loopback port nothing listens on.
fn closed_port() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    address
}

/// What an operator reads must be one sentence: no HTML, no Rust `Debug`
/// output, no chain of wrappers, not a page long.
fn assert_readable(text: &str) {
    assert!(
        text.chars().count() <= 400,
        "too long ({}): {text}",
        text.chars().count()
    );
    for bad in [
        "<",
        "\n",
        "os error",
        "Connect)",
        "ConnectError",
        "error sending request",
        "hyper",
        "Some(",
        "{ ",
        "DOCTYPE",
        "Content-Type",
    ] {
        assert!(!text.contains(bad), "{bad:?} in: {text}");
    }
}

#[tokio::test]
async fn an_unreachable_coolify_is_not_maybe_started() {
    let address = closed_port();
    let coolify = TestCoolify::start().await;
    let mut config = coolify.config();
    config.api_url =
        platform_coolify::config::normalise_api_url(&format!("http://{address}")).unwrap();
    let err = coolify.platform_with(config).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unreachable, "{err}");
    assert!(err.is_retryable());
    assert!(err.nothing_started(), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&format!(
            "nothing was sent: could not connect to {address}: connection refused"
        )),
        "{text}"
    );
    assert_readable(&text);
}

#[tokio::test]
async fn a_deploy_to_a_coolify_that_went_away_started_nothing_and_gives_the_slot_back() {
    // Not from wiremock's pool: this one stops listening when dropped.
    let server = wiremock::MockServer::builder().start().await;
    let fake = crate::fake_coolify::FakeCoolify::new();
    fake.mount(&server).await;
    fake.add_slots("zoom", 1);
    let coolify = TestCoolify::start().await;
    let mut config = coolify.config();
    config.api_url = platform_coolify::config::normalise_api_url(&server.uri()).unwrap();
    let platform = coolify.platform_with(config).await.unwrap();
    drop(server);
    // Let the server's connections close.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let err = platform.deploy_bot(&zoom_bot(1), 1).await.unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Unreachable, "{err}");
    assert!(err.nothing_started(), "{err}");
    assert_readable(&err.to_string());
    assert_eq!(coolify.slot_state("zoomslot001").await, SlotState::Idle);
}

#[tokio::test]
async fn a_timeout_after_sending_is_not_unreachable() {
    let coolify = TestCoolify::start().await;
    coolify.fake.add_slots("zoom", 1);
    let mut config = coolify.config();
    config.request_timeout = Duration::from_millis(200);
    config.retry.max_attempts = 1;
    let platform = coolify.platform_with(config).await.unwrap();
    coolify.fake.inject(
        "POST",
        "/applications/zoomslot001/start",
        [Fault::After(
            ResponseTemplate::new(200).set_delay(Duration::from_secs(5)),
        )],
    );
    coolify.fake.set_deployment_time(Duration::from_secs(3600));

    // The start went out: its deployment is queued, so the bot is started.
    let deployed = platform.deploy_bot(&zoom_bot(1), 1).await;
    assert!(deployed.is_ok(), "{deployed:?}");

    // A read that times out is a timeout, never "nothing was sent".
    coolify.fake.inject(
        "GET",
        "/applications/zoomslot001",
        [Fault::Before(
            ResponseTemplate::new(200).set_delay(Duration::from_secs(5)),
        )],
    );
    let err = platform
        .get_bot_status(&deployed.unwrap().identifier)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(!err.nothing_started());
}

#[tokio::test]
async fn an_html_error_page_becomes_one_readable_sentence() {
    let coolify = TestCoolify::start().await;
    coolify.fake.add_slots("zoom", 1);
    let page = format!(
        "<!DOCTYPE html>\n<html><head><title>Server Error</title><meta name=\"csrf-token\" content=\"x\"></head>\n<body><h1>500 | Server Error</h1><pre>Authorization: Bearer {TOKEN}\nContent-Type: application/json\n{}</pre></body></html>",
        "stack frame\n".repeat(200)
    );
    coolify.fake.inject(
        "POST",
        "/applications/zoomslot001/start",
        [Fault::Before(
            ResponseTemplate::new(500).set_body_raw(page, "text/html; charset=UTF-8"),
        )],
    );
    let platform = coolify.platform().await;

    let err = platform.deploy_bot(&zoom_bot(1), 1).await.unwrap_err();

    let text = err.to_string();
    assert_eq!(
        text,
        "coolify: application zoomslot001 unavailable: HTTP 500: Internal Server Error (the answer was an HTML page)"
    );
    assert_readable(&text);
    assert!(!everything_printed(&err).contains(TOKEN));
}

#[tokio::test]
async fn a_success_answer_that_is_an_html_page_says_so() {
    let coolify = TestCoolify::start().await;
    coolify.fake.add_slots("zoom", 1);
    let platform = coolify.platform().await;
    let id = platform
        .deploy_bot(&zoom_bot(1), 1)
        .await
        .unwrap()
        .identifier;
    coolify.fake.inject(
        "GET",
        "/applications/zoomslot001",
        (0..5).map(|_| {
            Fault::Before(ResponseTemplate::new(200).set_body_raw(
                "<!DOCTYPE html><html><body>Please log in</body></html>",
                "text/html",
            ))
        }),
    );

    let err = platform.get_bot_status(&id).await.unwrap_err();

    let text = err.to_string();
    assert!(
        text.contains("the answer was an HTML page where Coolify's API sends JSON"),
        "{text}"
    );
    assert_readable(&text);
}

#[tokio::test]
async fn a_long_validation_message_is_cut_at_a_word() {
    let coolify = TestCoolify::start().await;
    coolify.fake.add_slots("zoom", 1);
    let errors: serde_json::Map<String, serde_json::Value> = (0..40)
        .map(|n| (format!("field_{n}"), json!(["This field is not allowed."])))
        .collect();
    coolify.fake.inject(
        "PATCH",
        "/applications/zoomslot001/envs/bulk",
        [Fault::Before(ResponseTemplate::new(422).set_body_json(
            json!({"message": "Validation failed.", "errors": errors}),
        ))],
    );
    let platform = coolify.platform().await;

    let err = platform.deploy_bot(&zoom_bot(1), 1).await.unwrap_err();

    let text = err.to_string();
    assert!(
        text.contains("HTTP 422: Validation failed. (field_0: This field is not allowed."),
        "{text}"
    );
    assert!(text.ends_with('…'), "{text}");
    assert_readable(&text);
}
