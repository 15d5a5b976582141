//! `Idempotency-Key` on create: the same key and body return the same bot,
//! the same key with another body is a conflict, a bad key is refused.

use std::sync::Arc;

use platform_core::testkit::FakePlatform;
use reqwest::Method;

use crate::support::{expect_error, expect_json, spawn_fake, zoom_request};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_key_and_body_return_the_same_bot_once_deployed() {
    let platform = Arc::new(FakePlatform::new());
    let app = spawn_fake(Arc::clone(&platform)).await;
    let body = serde_json::to_vec(&zoom_request(1)).unwrap();
    let send = |key: &str, body: Vec<u8>| {
        app.authed(Method::POST, "/v1/bots")
            .header("content-type", "application/json")
            .header("idempotency-key", key)
            .body(body)
            .send()
    };
    let first = send("order-42", body.clone()).await.unwrap();
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first = expect_json(first, 201).await;
    let again = send("order-42", body.clone()).await.unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again = expect_json(again, 200).await;
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["attempt"], first["attempt"]);
    // One bot, deployed once.
    assert_eq!(platform.calls().deploy, 1);
    let page = app.get_json("/v1/bots", 200).await;
    assert_eq!(page["bots"].as_array().unwrap().len(), 1);

    // Another body under the same key is refused and creates nothing.
    let other = serde_json::to_vec(&zoom_request(2)).unwrap();
    let conflict = expect_error(
        send("order-42", other.clone()).await.unwrap(),
        409,
        "idempotency_conflict",
    )
    .await;
    assert_eq!(conflict["error"]["bot_id"], first["id"]);
    // A new key is a new bot.
    let fresh = expect_json(send("order-43", other).await.unwrap(), 201).await;
    assert_ne!(fresh["id"], first["id"]);
    let page = app.get_json("/v1/bots", 200).await;
    assert_eq!(page["bots"].as_array().unwrap().len(), 2);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_retries_with_one_key_create_one_bot() {
    let platform = Arc::new(FakePlatform::new());
    let app = spawn_fake(Arc::clone(&platform)).await;
    let body = serde_json::to_vec(&zoom_request(7)).unwrap();
    let requests = (0..8).map(|_| {
        app.authed(Method::POST, "/v1/bots")
            .header("content-type", "application/json")
            .header("idempotency-key", "retry-storm")
            .body(body.clone())
            .send()
    });
    let mut ids = Vec::new();
    let mut created = 0;
    for response in futures::future::join_all(requests).await {
        let response = response.unwrap();
        let status = response.status().as_u16();
        assert!(status == 201 || status == 200, "{status}");
        created += usize::from(status == 201);
        ids.push(expect_json(response, status).await["id"].clone());
    }
    assert_eq!(created, 1);
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
    assert_eq!(platform.calls().deploy, 1);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_key_that_is_not_visible_ascii_is_refused() {
    let app = spawn_fake(Arc::new(FakePlatform::new())).await;
    for key in ["has space", "", &"k".repeat(256)] {
        let response = app
            .authed(Method::POST, "/v1/bots")
            .header("idempotency-key", key)
            .json(&zoom_request(1))
            .send()
            .await
            .unwrap();
        expect_error(response, 400, "invalid_idempotency_key").await;
    }
    let page = app.get_json("/v1/bots", 200).await;
    assert_eq!(
        page["bots"].as_array().unwrap().len(),
        0,
        "nothing was created"
    );
    app.shutdown().await;
}
