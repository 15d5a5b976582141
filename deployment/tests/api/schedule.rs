//! Scheduled bots over HTTP: a create with `join_at` answers `scheduled`
//! with its deploy time; PATCH moves it and is refused with the field's
//! error or `not_scheduled`; stop cancels it with no platform call.

use std::sync::Arc;

use platform_core::testkit::FakePlatform;
use reqwest::Method;
use serde_json::json;

use crate::support::{expect_error, expect_json, spawn_fake, zoom_request};

fn rfc3339_in(secs: i64) -> String {
    (time::OffsetDateTime::now_utc() + time::Duration::seconds(secs))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bot_is_scheduled_changed_and_cancelled_over_http() {
    let fake = Arc::new(FakePlatform::new().named("aws"));
    let app = spawn_fake(Arc::clone(&fake)).await;
    let mut body = zoom_request(1);
    body["join_at"] = json!(rfc3339_in(3600));
    let bot = expect_json(
        app.authed(Method::POST, "/v1/bots")
            .json(&body)
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    assert_eq!(bot["status"], "scheduled", "{bot}");
    assert!(
        bot["deploy_at"].is_string() && bot["join_at"].is_string(),
        "{bot}"
    );
    let path = format!("/v1/bots/{}", bot["id"]);
    // Ahead of capacity: alone, it is projected to start at its deploy
    // time, on time; the platform shows no due backlog yet.
    assert_eq!(bot["projected_deploy_at"], bot["deploy_at"], "{bot}");
    assert_eq!(bot["late_by_seconds"], 0, "{bot}");
    assert!(bot["waiting_for_capacity"].is_null(), "{bot}");
    let shown = app.get_json(&path, 200).await;
    assert_eq!(shown["late_by_seconds"], 0, "{shown}");
    let platforms = app.get_json("/v1/platforms", 200).await;
    assert_eq!(
        platforms["placement"]["platforms"][0]["deploy_backlog"], 0,
        "{platforms}"
    );

    let moved = expect_json(
        app.authed(Method::PATCH, &path)
            .json(&json!({"join_at": rfc3339_in(7200), "display_name": "Minutes"}))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(moved["status"], "scheduled");
    assert_eq!(moved["display_name"], "Minutes");
    assert_ne!(moved["deploy_at"], bot["deploy_at"]);

    let error = expect_error(
        app.authed(Method::PATCH, &path)
            .json(&json!({"join_at": "next tuesday"}))
            .send()
            .await
            .unwrap(),
        422,
        "invalid_bot_config",
    )
    .await;
    assert_eq!(error["error"]["fields"][0]["field"], "join_at", "{error}");
    expect_error(
        app.authed(Method::PATCH, &path)
            .json(&json!({"priority": 3}))
            .send()
            .await
            .unwrap(),
        422,
        "invalid_body",
    )
    .await;
    expect_error(
        app.authed(Method::PATCH, "/v1/bots/999999")
            .json(&json!({"display_name": "x"}))
            .send()
            .await
            .unwrap(),
        404,
        "bot_not_found",
    )
    .await;

    let stopped = expect_json(
        app.authed(Method::POST, &format!("{path}/stop"))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(stopped["status"], "stopped", "{stopped}");
    expect_error(
        app.authed(Method::PATCH, &path)
            .json(&json!({"display_name": "Late"}))
            .send()
            .await
            .unwrap(),
        409,
        "not_scheduled",
    )
    .await;
    let calls = fake.calls();
    assert_eq!((calls.deploy, calls.stop, calls.cleanup), (0, 0, 0));
}
