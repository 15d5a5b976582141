//! No slot waiting in the pool keeps a past bot's meeting URL (with its
//! passcode) or meeting password in its Coolify environment.

use platform_core::{BotId, ErrorKind, PlatformService, SecretString, SlotState, StatusKind};
use serde_json::json;
use wiremock::ResponseTemplate;

use crate::fake_coolify::{Fault, server_error};
use crate::helpers::{TestCoolify, everything_printed, zoom_bot};

const SLOT: &str = "zoomslot001";

/// A 403 on start, as a token without the `deploy` ability gets.
fn start_refused() -> Fault {
    Fault::Before(
        ResponseTemplate::new(403)
            .set_body_json(json!({"message": "Missing required permissions: deploy"})),
    )
}

#[tokio::test]
async fn a_cleanup_that_cannot_clear_the_secrets_keeps_the_slot_until_it_can() {
    let coolify = TestCoolify::start().await;
    coolify.fake.add_slots("zoom", 1);
    let platform = coolify.platform().await;
    let id = platform
        .deploy_bot(&zoom_bot(1), 1)
        .await
        .unwrap()
        .identifier;
    platform.stop_bot(&id).await.unwrap();
    // More server errors than the retry policy's four attempts absorb.
    let deletes = format!("/applications/{SLOT}/envs/*");
    coolify.fake.inject(
        "DELETE",
        &deletes,
        (0..4).map(|_| Fault::Before(server_error())),
    );

    let err = platform.cleanup(&id).await.unwrap_err();

    assert!(err.is_retryable(), "{err}");
    assert!(!everything_printed(&err).contains("zoompass1"), "{err:?}");
    assert_eq!(
        coolify.slot_state(SLOT).await,
        SlotState::Claimed { bot_id: BotId(1) },
        "the slot is not handed to another bot with the secret still in it"
    );
    assert!(coolify.fake.env_value(SLOT, "MEETING_URL").is_some());

    // The service's reconciler calls cleanup again.
    platform.cleanup(&id).await.unwrap();
    assert_eq!(coolify.slot_state(SLOT).await, SlotState::Idle);
    assert_eq!(coolify.fake.env_value(SLOT, "MEETING_URL"), None);
    let deletes = coolify.calls().await;
    let deletes: Vec<&String> = deletes.iter().filter(|c| c.starts_with("DELETE")).collect();
    assert_eq!(
        deletes.len(),
        5,
        "four failures, then the delete that worked"
    );
}

#[tokio::test]
async fn a_refused_start_clears_what_the_deploy_wrote_before_giving_the_slot_back() {
    let coolify = TestCoolify::start().await;
    coolify.fake.add_slots("zoom", 1);
    coolify.fake.inject(
        "POST",
        &format!("/applications/{SLOT}/start"),
        [start_refused()],
    );
    let platform = coolify.platform().await;
    let config = zoom_bot(1)
        .with_meeting_password(Some(SecretString::new("m33ting-pw")))
        .unwrap();

    let err = platform.deploy_bot(&config, 1).await.unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    assert_eq!(coolify.slot_state(SLOT).await, SlotState::Idle);
    assert_eq!(coolify.fake.env_value(SLOT, "MEETING_URL"), None);
    assert_eq!(coolify.fake.env_value(SLOT, "MEETING_PASSWORD"), None);
    assert_eq!(
        coolify.fake.env_value(SLOT, "BOT_ID").as_deref(),
        Some("1"),
        "only the secrets are cleared"
    );
    let calls = coolify.calls().await;
    assert_eq!(
        calls[2..5],
        [
            format!("PATCH /applications/{SLOT}/envs/bulk"),
            format!("POST /applications/{SLOT}/start"),
            format!("GET /applications/{SLOT}/envs"),
        ]
    );
    assert_eq!(
        calls.iter().filter(|c| c.starts_with("DELETE")).count(),
        2,
        "{calls:?}"
    );
}

#[tokio::test]
async fn a_give_back_whose_clearing_fails_still_gives_the_slot_back_at_once() {
    let coolify = TestCoolify::start().await;
    coolify.fake.add_slots("zoom", 1);
    coolify.fake.inject(
        "POST",
        &format!("/applications/{SLOT}/start"),
        [start_refused()],
    );
    let envs = format!("/applications/{SLOT}/envs");
    coolify
        .fake
        .inject("GET", &envs, [Fault::Before(server_error())]);
    let platform = coolify.platform().await;
    // With a password the deploy itself lists nothing: the one list is the
    // give-back's.
    let config = zoom_bot(1)
        .with_meeting_password(Some(SecretString::new("m33ting-pw")))
        .unwrap();

    let err = platform.deploy_bot(&config, 1).await.unwrap_err();

    assert_eq!(
        err.kind(),
        ErrorKind::Unauthorized,
        "the deploy's own error: {err}"
    );
    assert_eq!(coolify.slot_state(SLOT).await, SlotState::Idle);
    assert_eq!(
        coolify.fake.arrivals("GET", &envs).len(),
        1,
        "one attempt, not a retry loop on a failing Coolify"
    );
}

#[tokio::test]
async fn a_failed_slot_is_cleared_by_its_bots_cleanup_and_by_recovery() {
    let coolify = TestCoolify::start().await;
    coolify.fake.add_slots("zoom", 1);
    coolify.fake.fail_deployments_of(SLOT);
    let platform = coolify.platform().await;
    let id = platform
        .deploy_bot(&zoom_bot(1), 1)
        .await
        .unwrap()
        .identifier;
    let status = platform.get_bot_status(&id).await.unwrap();
    assert_eq!(status.kind, StatusKind::Failed, "{status}");
    assert!(coolify.fake.env_value(SLOT, "MEETING_URL").is_some());

    platform.stop_bot(&id).await.unwrap();
    platform.cleanup(&id).await.unwrap();

    assert!(matches!(
        coolify.slot_state(SLOT).await,
        SlotState::Failed { .. }
    ));
    assert_eq!(coolify.fake.env_value(SLOT, "MEETING_URL"), None);

    // A secret that got there some other way (an older version, a hand
    // edit) does not come back into the pool with the slot.
    coolify
        .fake
        .set_env(SLOT, "MEETING_PASSWORD", "left-behind");
    assert!(platform.recover_slot(SLOT).await.unwrap());
    assert_eq!(coolify.slot_state(SLOT).await, SlotState::Idle);
    assert_eq!(coolify.fake.env_value(SLOT, "MEETING_PASSWORD"), None);
}
