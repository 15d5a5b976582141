//! The bot protocol over HTTP: `/v1/bot/{id}/…` takes only the bot's own
//! token, answers bad input with stable codes, and a refused request
//! changes no record and writes no history.

use std::sync::Arc;
use std::time::Duration;

use platform_core::BotId;
use platform_core::bot_env::names;
use platform_core::testkit::FakePlatform;
use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::common::test_options;
use crate::support::{TOKEN, TestApp, expect_error, expect_json, spawn_fake_with, zoom_request};

/// Creates a running bot and returns its id and token.
async fn bot(app: &TestApp, fake: &FakePlatform, n: u64) -> (u64, String) {
    let bot = expect_json(app.create(&zoom_request(n)).await, 201).await;
    let id = bot["id"].as_u64().unwrap();
    let (_, env) = fake.environments(BotId(id)).pop().unwrap();
    assert_eq!(
        env.get(names::MEEBOTER_API_URL),
        Some(app.url("").as_str()),
        "the bot is told where the API is"
    );
    (id, env.get(names::BOT_TOKEN).unwrap().to_owned())
}

async fn post(app: &TestApp, token: &str, path: &str, body: &Value) -> Response {
    app.client
        .post(app.url(path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn details(app: &TestApp, id: u64) -> Value {
    app.get_json(&format!("/v1/bots/{id}"), 200).await
}

fn leak_free(body: &Value, token: &str) {
    let text = body.to_string();
    assert!(!text.contains(token), "the bot token leaked: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_the_bots_own_token_opens_its_endpoints() {
    let fake = Arc::new(FakePlatform::new());
    let app = spawn_fake_with(fake.clone(), test_options()).await;
    let (a, token_a) = bot(&app, &fake, 1).await;
    let (b, token_b) = bot(&app, &fake, 2).await;

    // No token, the operator's token, a made-up token.
    let response = app
        .anonymous(Method::POST, &format!("/v1/bot/{a}/heartbeat"))
        .send()
        .await
        .unwrap();
    expect_error(response, 401, "bot_token_required").await;
    let response = post(
        &app,
        TOKEN,
        &format!("/v1/bot/{a}/events"),
        &json!({"status": "joining"}),
    )
    .await;
    expect_error(response, 401, "bot_token_required").await;
    let response = post(
        &app,
        "mbb_made-up",
        &format!("/v1/bot/{a}/heartbeat"),
        &json!({}),
    )
    .await;
    expect_error(response, 401, "bot_token_invalid").await;

    // Bot A's token on bot B: as if B did not exist.
    let response = post(
        &app,
        &token_a,
        &format!("/v1/bot/{b}/events"),
        &json!({"status": "joining"}),
    )
    .await;
    let body = expect_error(response, 404, "bot_not_found").await;
    leak_free(&body, &token_a);
    let response = app
        .client
        .get(app.url(&format!("/v1/bot/{b}/config")))
        .bearer_auth(&token_a)
        .send()
        .await
        .unwrap();
    expect_error(response, 404, "bot_not_found").await;
    let missing = post(&app, &token_a, "/v1/bot/999999/heartbeat", &json!({})).await;
    let missing = expect_error(missing, 404, "bot_not_found").await;
    assert_eq!(
        missing["error"]["message"]
            .as_str()
            .unwrap()
            .replace("999999", "N"),
        body["error"]["message"]
            .as_str()
            .unwrap()
            .replace(&b.to_string(), "N"),
        "another bot's id and an id nobody has get the same answer"
    );
    let untouched = details(&app, b).await;
    assert_eq!(untouched["meeting_status"], "unknown");
    assert_eq!(untouched["meeting_history"], json!([]));

    // A bot token is no operator token.
    let response = app
        .client
        .get(app.url(&format!("/v1/bots/{a}")))
        .bearer_auth(&token_a)
        .send()
        .await
        .unwrap();
    expect_error(response, 401, "unauthorized").await;

    // Its own token works, and its config carries the meeting's secrets.
    let answer = expect_json(
        post(
            &app,
            &token_a,
            &format!("/v1/bot/{a}/heartbeat"),
            &json!({}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(answer, json!({"leave": false, "reason": null}));
    let config = expect_json(
        app.client
            .get(app.url(&format!("/v1/bot/{a}/config")))
            .bearer_auth(&token_a)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(config["meeting_password"], "hunter2-pw");
    assert!(
        config["meeting_url"]
            .as_str()
            .unwrap()
            .contains("s3cr3tpass")
    );

    // Once the bot ended its token is revoked.
    expect_json(
        app.authed(Method::POST, &format!("/v1/bots/{a}/stop"))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let response = post(
        &app,
        &token_a,
        &format!("/v1/bot/{a}/heartbeat"),
        &json!({}),
    )
    .await;
    expect_error(response, 401, "bot_token_revoked").await;
    let response = post(
        &app,
        &token_a,
        &format!("/v1/bot/{a}/events"),
        &json!({"status": "in_call", "recording": false}),
    )
    .await;
    expect_error(response, 401, "bot_token_revoked").await;
    // B is unaffected.
    expect_json(
        post(
            &app,
            &token_b,
            &format!("/v1/bot/{b}/heartbeat"),
            &json!({}),
        )
        .await,
        200,
    )
    .await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_follow_the_meeting_order_and_bad_ones_change_nothing() {
    let fake = Arc::new(FakePlatform::new());
    let app = spawn_fake_with(fake.clone(), test_options()).await;
    let (id, token) = bot(&app, &fake, 3).await;
    let events = format!("/v1/bot/{id}/events");
    for status in ["joining", "in_waiting_room"] {
        let answer = expect_json(
            post(&app, &token, &events, &json!({"status": status})).await,
            200,
        )
        .await;
        assert_eq!(answer["meeting_status"], status);
    }
    let call = json!({"status": "in_call", "recording": true, "event_id": "call-1"});
    let answer = expect_json(post(&app, &token, &events, &call).await, 200).await;
    assert_eq!(answer["duplicate"], false);
    let again = expect_json(post(&app, &token, &events, &call).await, 200).await;
    assert_eq!(again["duplicate"], true);

    let before = details(&app, id).await;
    assert_eq!(before["meeting_history"].as_array().unwrap().len(), 3);
    for (body, status, code) in [
        (
            json!({"status": "joining"}),
            409,
            "illegal_meeting_transition",
        ),
        (json!({"status": "dancing"}), 422, "unknown_meeting_status"),
        (json!({"status": "unknown"}), 422, "unknown_meeting_status"),
        (
            json!({"type": "meeting_status"}),
            422,
            "unknown_meeting_status",
        ),
        (json!({"status": "in_call"}), 422, "invalid_body"),
        (
            json!({"status": "in_call", "recording": true, "color": "red"}),
            422,
            "invalid_body",
        ),
        (
            json!({"status": "call_ended", "sub_code": "bored"}),
            422,
            "invalid_body",
        ),
        (
            json!({"status": "fatal", "sub_code": "heartbeat_timeout", "message": "x"}),
            422,
            "invalid_event",
        ),
        (
            json!({"status": "joining", "event_id": ""}),
            422,
            "invalid_event",
        ),
    ] {
        let response = post(&app, &token, &events, &body).await;
        let error = expect_error(response, status, code).await;
        leak_free(&error, &token);
    }
    // Over 16 KiB.
    let huge = json!({"status": "in_call", "recording": true, "message": "x".repeat(17 * 1024)});
    expect_error(
        post(&app, &token, &events, &huge).await,
        413,
        "body_too_large",
    )
    .await;
    let response = app
        .client
        .post(app.url(&events))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body("{\"status\": \"joining\"}")
        .send()
        .await
        .unwrap();
    expect_error(response, 415, "unsupported_media_type").await;
    let after = details(&app, id).await;
    assert_eq!(after["meeting_history"], before["meeting_history"]);
    assert_eq!(after["history"], before["history"]);
    assert_eq!(after["meeting_status"], "in_call");
    assert_eq!(after["meeting_recording"], true);

    // call_ended ends the bot on its word.
    let end = json!({"status": "call_ended", "sub_code": "everyone_left"});
    expect_json(post(&app, &token, &events, &end).await, 200).await;
    let ended = crate::support::wait_for(&app, &format!("/v1/bots/{id}"), |b| {
        b["status"] == "stopped"
    })
    .await;
    assert_eq!(ended["meeting_status"], "call_ended");
    assert_eq!(ended["meeting_sub_code"], "everyone_left");
    assert_eq!(fake.live_bots(), 0);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leave_reaches_the_bot_and_too_many_requests_wait() {
    let fake = Arc::new(FakePlatform::new());
    let options = deployment::ServiceOptions {
        bot_events_per_minute: 30,
        ..test_options()
    };
    let app = spawn_fake_with(fake.clone(), options).await;
    let (id, token) = bot(&app, &fake, 4).await;
    let heartbeat = format!("/v1/bot/{id}/heartbeat");
    let left = expect_json(
        app.authed(Method::POST, &format!("/v1/bots/{id}/leave"))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert!(left["leave_requested_at"].is_string(), "{left}");
    let answer = expect_json(post(&app, &token, &heartbeat, &json!({})).await, 200).await;
    assert_eq!(answer["leave"], true, "{answer}");
    for _ in 0..29 {
        expect_json(post(&app, &token, &heartbeat, &json!({})).await, 200).await;
    }
    let before = details(&app, id).await;
    let response = post(
        &app,
        &token,
        &format!("/v1/bot/{id}/events"),
        &json!({"status": "joining"}),
    )
    .await;
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let body = expect_error(response, 429, "bot_rate_limited").await;
    assert_eq!(body["error"]["retryable"], true);
    let after = details(&app, id).await;
    assert_eq!(after["meeting_history"], before["meeting_history"]);
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let done = json!({"status": "call_ended", "sub_code": "left_on_request"});
    expect_json(
        post(&app, &token, &format!("/v1/bot/{id}/events"), &done).await,
        200,
    )
    .await;
    let ended = crate::support::wait_for(&app, &format!("/v1/bots/{id}"), |b| {
        b["status"] == "stopped"
    })
    .await;
    assert!(
        ended["reason"]
            .as_str()
            .unwrap()
            .contains("left_on_request"),
        "{ended}"
    );
    // Listing by meeting status finds it.
    let page = app
        .get_json("/v1/bots?meeting_status=call_ended", 200)
        .await;
    assert_eq!(page["bots"].as_array().unwrap().len(), 1, "{page}");
    let metrics = app
        .anonymous(Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "meeboter_bots_by_meeting_status{platform=\"fake\",meeting_status=\"call_ended\"} 1"
        ),
        "{metrics}"
    );
    app.shutdown().await;
}
