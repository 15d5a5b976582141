//! `Prefer: wait=N` (RFC 7240) on create and deploy: without it the answer
//! comes as soon as the bot is placed; with it, once the bot runs or N
//! seconds passed, with `Preference-Applied`; what the service cannot read
//! is ignored, as the RFC asks.

use std::sync::Arc;
use std::time::Duration;

use platform_core::testkit::FakePlatform;
use reqwest::Method;
use serde_json::json;

use crate::support::{TestApp, WAIT, expect_json, spawn_fake, zoom_request};

async fn create_preferring(app: &TestApp, n: u64, prefer: Option<&str>) -> reqwest::Response {
    let mut request = app.authed(Method::POST, "/v1/bots").json(&zoom_request(n));
    if let Some(prefer) = prefer {
        request = request.header("Prefer", prefer);
    }
    request.send().await.unwrap()
}

fn applied(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("preference-applied")
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_create_answers_at_once_unless_it_prefers_to_wait() {
    // Every platform call takes 2 s: an answer that waited for the deploy
    // shows the bot running.
    let platform = Arc::new(FakePlatform::new().with_latency(Duration::from_secs(2)));
    let app = spawn_fake(Arc::clone(&platform)).await;

    let at_once = create_preferring(&app, 1, None).await;
    assert_eq!(applied(&at_once), None);
    let bot = expect_json(at_once, 201).await;
    assert_eq!(bot["status"], "deploying", "{bot}");
    assert_eq!(bot["platform"], "fake", "{bot}");
    assert!(bot["platform_id"].is_null(), "{bot}");

    let waited = create_preferring(&app, 2, Some("respond-async, wait=30")).await;
    assert_eq!(applied(&waited).as_deref(), Some(WAIT));
    let bot = expect_json(waited, 201).await;
    assert_eq!(bot["status"], "running", "{bot}");

    // A wait shorter than the deploy: the bot as it is when it ends.
    let short = create_preferring(&app, 3, Some("wait=1")).await;
    assert_eq!(applied(&short).as_deref(), Some("wait=1"));
    assert_eq!(expect_json(short, 201).await["status"], "deploying");

    // Longer than the service waits: cut to 300 s, and said so.
    let long = create_preferring(&app, 4, Some("wait=100000")).await;
    assert_eq!(applied(&long).as_deref(), Some("wait=300"));
    assert_eq!(expect_json(long, 201).await["status"], "running");

    // Not a number of seconds: ignored, answered at once.
    for (n, unreadable) in [
        (5, "wait=soon"),
        (6, "wait"),
        (7, "wait=-3"),
        (8, "handling=strict"),
    ] {
        let response = create_preferring(&app, n, Some(unreadable)).await;
        assert_eq!(applied(&response), None, "{unreadable}");
        assert_eq!(
            expect_json(response, 201).await["status"],
            "deploying",
            "{unreadable}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deploy_of_a_pending_bot_prefers_to_wait_too() {
    let platform = Arc::new(FakePlatform::new().with_latency(Duration::from_secs(1)));
    let app = spawn_fake(Arc::clone(&platform)).await;
    let mut body = zoom_request(1);
    body["deploy"] = json!(false);
    let pending = expect_json(app.create(&body).await, 201).await;
    assert_eq!(pending["status"], "pending");
    let id = pending["id"].as_u64().unwrap();
    let response = app
        .authed(Method::POST, &format!("/v1/bots/{id}/deploy"))
        .header("Prefer", WAIT)
        .send()
        .await
        .unwrap();
    assert_eq!(applied(&response).as_deref(), Some(WAIT));
    assert_eq!(expect_json(response, 200).await["status"], "running");

    let mut body = zoom_request(2);
    body["deploy"] = json!(false);
    let pending = expect_json(app.create(&body).await, 201).await;
    let id = pending["id"].as_u64().unwrap();
    let response = app
        .authed(Method::POST, &format!("/v1/bots/{id}/deploy"))
        .send()
        .await
        .unwrap();
    assert_eq!(applied(&response), None);
    assert_eq!(expect_json(response, 200).await["status"], "deploying");
}
