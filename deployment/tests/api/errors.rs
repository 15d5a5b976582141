//! Every error code the API answers, each with its status, a JSON body and
//! no secret in it; bad input is always 4xx, never 500.

use std::sync::Arc;
use std::time::Duration;

use platform_core::testkit::FakePlatform;
use platform_core::{Error, MeetingPlatform};
use reqwest::Method;
use serde_json::json;

use crate::support::{TestApp, expect_error, expect_json, spawn_fake, zoom_request};

async fn post_raw(
    app: &TestApp,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    let mut request = app.authed(Method::POST, "/v1/bots").body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    request.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invalid_bot_requests_name_the_field_and_write_nothing() {
    let app = spawn_fake(Arc::new(FakePlatform::new())).await;
    let mut body = zoom_request(1);
    body["meeting_url"] = json!("http://evil.example.com/j/1?pwd=s3cr3tpass");
    let error = expect_error(app.create(&body).await, 422, "invalid_meeting_url").await;
    assert_eq!(
        error["error"]["fields"][0]["field"], "meeting_url",
        "{error}"
    );

    let mut body = zoom_request(1);
    body["meeting_platform"] = json!("webex");
    let error = expect_error(app.create(&body).await, 422, "unknown_meeting_platform").await;
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("allowed: zoom, teams, meet"),
        "{error}"
    );

    let mut body = zoom_request(1);
    body["display_name"] = json!("x".repeat(101));
    body["automatic_leave"] = json!({"everyone_left_timeout": 0});
    let error = expect_error(app.create(&body).await, 422, "invalid_bot_config").await;
    let fields: Vec<&str> = error["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["display_name", "automatic_leave.everyone_left_timeout"]
    );

    let mut body = zoom_request(1);
    body["priority"] = json!(1_000_001);
    let error = expect_error(app.create(&body).await, 422, "invalid_bot_config").await;
    assert_eq!(error["error"]["fields"][0]["field"], "priority", "{error}");

    let page = app.get_json("/v1/bots", 200).await;
    assert_eq!(page["bots"], json!([]), "invalid requests wrote nothing");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bodies_that_are_not_a_bot_request_are_4xx() {
    let app = spawn_fake(Arc::new(FakePlatform::new())).await;
    let json_type = Some("application/json");
    expect_error(
        post_raw(&app, json_type, "{\"meeting_platform\": ").await,
        400,
        "malformed_json",
    )
    .await;
    expect_error(post_raw(&app, json_type, "").await, 400, "malformed_json").await;
    let trailing = format!("{} x", serde_json::to_string(&zoom_request(1)).unwrap());
    expect_error(
        post_raw(&app, json_type, trailing).await,
        400,
        "malformed_json",
    )
    .await;
    // A positional array is not a request, even with the right values.
    let positional = json!(["zoom", "https://zoom.us/j/1", null, null, false, {}, true]);
    expect_error(app.create(&positional).await, 422, "invalid_body").await;
    expect_error(
        post_raw(&app, json_type, vec![0xff, 0xfe, 0x00]).await,
        400,
        "malformed_json",
    )
    .await;

    // Wrong type: the field is named, the value (a password here) is not echoed.
    let mut body = zoom_request(1);
    body["meeting_password"] = json!(987_654_321);
    let error = expect_error(app.create(&body).await, 422, "invalid_body").await;
    assert_eq!(
        error["error"]["fields"][0]["field"], "meeting_password",
        "{error}"
    );
    assert!(!error.to_string().contains("987654321"), "{error}");
    let mut body = zoom_request(1);
    body["automatic_leave"] = json!({"waiting_room_timeout": -5});
    let error = expect_error(app.create(&body).await, 422, "invalid_body").await;
    assert_eq!(
        error["error"]["fields"][0]["field"], "automatic_leave.waiting_room_timeout",
        "{error}"
    );
    // Unknown and missing fields.
    let mut body = zoom_request(1);
    body["colour"] = json!("red");
    let error = expect_error(app.create(&body).await, 422, "invalid_body").await;
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `colour`"),
        "{error}"
    );
    let error = expect_error(
        app.create(&json!({"meeting_platform": "zoom"})).await,
        422,
        "invalid_body",
    )
    .await;
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("missing field `meeting_url`"),
        "{error}"
    );
    expect_error(app.create(&json!([1, 2])).await, 422, "invalid_body").await;

    // Content type and size.
    let text = serde_json::to_string(&zoom_request(1)).unwrap();
    expect_error(
        post_raw(&app, None, text.clone()).await,
        415,
        "unsupported_media_type",
    )
    .await;
    expect_error(
        post_raw(&app, Some("text/plain"), text).await,
        415,
        "unsupported_media_type",
    )
    .await;
    let mut body = zoom_request(1);
    body["display_name"] = json!("x".repeat(20_000));
    expect_error(app.create(&body).await, 413, "body_too_large").await;

    let page = app.get_json("/v1/bots", 200).await;
    assert_eq!(page["bots"], json!([]), "bad bodies wrote nothing");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_ids_unknown_bots_and_bad_queries_are_named() {
    let app = spawn_fake(Arc::new(FakePlatform::new())).await;
    for id in [
        "abc",
        "-1",
        "0",
        "1.5",
        "99999999999999999999",
        "9223372036854775808",
    ] {
        for (method, suffix) in [
            (Method::GET, ""),
            (Method::GET, "/status"),
            (Method::POST, "/deploy"),
            (Method::POST, "/stop"),
        ] {
            let response = app
                .authed(method.clone(), &format!("/v1/bots/{id}{suffix}"))
                .send()
                .await
                .unwrap();
            expect_error(response, 400, "invalid_bot_id").await;
        }
    }
    for (method, suffix) in [
        (Method::GET, ""),
        (Method::GET, "/status"),
        (Method::POST, "/deploy"),
        (Method::POST, "/stop"),
    ] {
        let response = app
            .authed(method, &format!("/v1/bots/9223372036854775807{suffix}"))
            .send()
            .await
            .unwrap();
        let error = expect_error(response, 404, "bot_not_found").await;
        assert_eq!(error["error"]["bot_id"], 9_223_372_036_854_775_807_u64);
    }
    for query in [
        "limit=abc",
        "limit=0",
        "limit=501",
        "status=gone",
        "staus=running",
        "limit=5&limit=6",
        "cursor=42",
        "platform=a%20b",
    ] {
        let response = app
            .authed(Method::GET, &format!("/v1/bots?{query}"))
            .send()
            .await
            .unwrap();
        expect_error(response, 400, "invalid_query").await;
    }
    let response = app
        .authed(Method::GET, "/v1/nothing-here")
        .send()
        .await
        .unwrap();
    expect_error(response, 404, "not_found").await;
    let response = app.authed(Method::DELETE, "/v1/bots").send().await.unwrap();
    expect_error(response, 405, "method_not_allowed").await;
    let response = app
        .authed(Method::GET, "/v1/bots/1/stop")
        .send()
        .await
        .unwrap();
    expect_error(response, 405, "method_not_allowed").await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn state_and_platform_errors_have_codes_and_retry_hints() {
    let platform = Arc::new(FakePlatform::new());
    let app = spawn_fake(Arc::clone(&platform)).await;

    // A full pool: 201 at once with the bot queued and its position.
    platform.fail_next_deploys([Error::PoolExhausted {
        platform: "fake",
        meeting_platform: MeetingPlatform::Zoom,
        capacity: 2,
    }]);
    let queued = expect_json(app.create(&zoom_request(1)).await, 201).await;
    assert_eq!(queued["status"], "queued", "{queued}");
    assert_eq!(queued["queue_position"], 1, "{queued}");
    assert!(queued["platform"].is_null(), "{queued}");
    let id = queued["id"].as_u64().expect("the queued bot's id");
    // Deploying a queued bot starts nothing new: it waits its turn.
    let again = expect_json(
        app.authed(Method::POST, &format!("/v1/bots/{id}/deploy"))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(again["status"], "queued", "{again}");
    // The next pass places it, now that the pool has room.
    app.service.reconcile_once().await.unwrap();
    let deployed = app.get_json(&format!("/v1/bots/{id}"), 200).await;
    assert_eq!(deployed["status"], "running", "{deployed}");

    // Stopping twice: the second is an illegal transition.
    let stop = || {
        app.authed(Method::POST, &format!("/v1/bots/{id}/stop"))
            .send()
    };
    expect_json(stop().await.unwrap(), 200).await;
    let error = expect_error(stop().await.unwrap(), 409, "illegal_transition").await;
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("never comes back"),
        "{error}"
    );
    // A stopped bot is never deployed again.
    let response = app
        .authed(Method::POST, &format!("/v1/bots/{id}/deploy"))
        .send()
        .await
        .unwrap();
    expect_error(response, 409, "illegal_transition").await;

    // A definite refusal: 502, the bot failed with the reason.
    platform.fail_next_deploys([Error::Rejected {
        platform: "fake",
        resource: "bot".into(),
        message: "image not found".into(),
    }]);
    let error = expect_error(app.create(&zoom_request(2)).await, 502, "deploy_failed").await;
    assert_eq!(error["error"]["retryable"], false);
    let id = error["error"]["bot_id"].as_u64().unwrap();
    let bot = app.get_json(&format!("/v1/bots/{id}"), 200).await;
    assert_eq!(bot["status"], "failed", "{bot}");
    assert!(
        bot["reason"].as_str().unwrap().contains("image not found"),
        "{bot}"
    );

    // A platform that may have started the bot: 201, deploying, with the
    // reason; the reconciler finishes it.
    platform.fail_next_deploys([Error::Timeout {
        platform: "fake",
        resource: "bot".into(),
        after: Duration::from_secs(1),
    }]);
    let bot = expect_json(app.create(&zoom_request(3)).await, 201).await;
    assert_eq!(bot["status"], "deploying", "{bot}");
    assert!(
        bot["reason"].as_str().unwrap().contains("not confirmed"),
        "{bot}"
    );
    let metrics = app
        .anonymous(Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "meeboter_deploys_total{platform=\"fake\",outcome=\"no_capacity\"} 1",
        "meeboter_deploys_total{platform=\"fake\",outcome=\"refused\"} 1",
        "meeboter_deploys_total{platform=\"fake\",outcome=\"unconfirmed\"} 1",
        "meeboter_platform_errors_total{platform=\"fake\",operation=\"deploy_bot\",kind=\"pool_exhausted\"} 1",
        "meeboter_platform_errors_total{platform=\"fake\",operation=\"deploy_bot\",kind=\"platform_rejected\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing {line}:\n{metrics}"
        );
    }
    app.shutdown().await;
}
