//! Webhooks through the API and the `serve` binary: refusals on create,
//! the operator view, and a crash between a change and its delivery.

use std::time::{Duration, Instant};

use deployment::webhooks::SigningSecret;
use serde_json::{Value, json};

use crate::common::receiver::{Answer, Receiver};
use crate::support::{ServeProcess, TOKEN, client, expect_error, expect_json, zoom_request};

fn with_webhook(n: u64, url: &str) -> Value {
    let mut body = zoom_request(n);
    body["webhook_url"] = json!(url);
    body["deploy"] = json!(false);
    body
}

async fn create(serve: &ServeProcess, body: &Value) -> reqwest::Response {
    client()
        .post(serve.url("/v1/bots"))
        .bearer_auth(TOKEN)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn get(serve: &ServeProcess, path: &str) -> reqwest::Response {
    client()
        .get(serve.url(path))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_and_plain_http_receivers_are_422_with_a_stable_code() {
    let secret = SigningSecret::random().expose();
    let serve = ServeProcess::start(&[("API_TOKEN", TOKEN), ("WEBHOOK_SECRET", &secret)]);
    for (url, code) in [
        ("https://127.0.0.1/hook", "webhook_url_forbidden"),
        ("https://10.0.0.1/hook", "webhook_url_forbidden"),
        (
            "https://169.254.169.254/latest/meta-data/",
            "webhook_url_forbidden",
        ),
        ("https://localhost:8443/hook", "webhook_url_forbidden"),
        ("http://hooks.example.com/hook", "invalid_webhook_url"),
    ] {
        let body = expect_error(create(&serve, &with_webhook(1, url)).await, 422, code).await;
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with("webhook_url "), "{message}");
    }
    let page = expect_json(get(&serve, "/v1/bots").await, 200).await;
    assert_eq!(page["bots"], json!([]), "nothing was created");
    expect_error(
        get(&serve, "/v1/bots/77/webhooks").await,
        404,
        "bot_not_found",
    )
    .await;
    let retry = client()
        .post(serve.url("/v1/webhooks/0/retry"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    expect_error(retry, 400, "invalid_delivery_id").await;
    let retry = client()
        .post(serve.url("/v1/webhooks/55/retry"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    expect_error(retry, 404, "delivery_not_found").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_a_webhook_url_without_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let out = crate::support::serve_command(
        dir.path(),
        &[
            ("API_TOKEN", TOKEN),
            ("WEBHOOK_URL", "https://hooks.example.com/in"),
        ],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(6), "the configuration exit code");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("WEBHOOK_URL is set but WEBHOOK_SECRET is not"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_committed_before_a_crash_is_delivered_after_restart() {
    let receiver = Receiver::start(|_, _| Answer::ok()).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = SigningSecret::random().expose();
    let operator = receiver.url("/operator");
    let extra = [
        ("API_TOKEN", TOKEN),
        ("WEBHOOK_URL", operator.as_str()),
        ("WEBHOOK_SECRET", secret.as_str()),
        ("WEBHOOK_TIMEOUT", "1"),
    ];
    // The change commits with its event; the worker claims the event and
    // the process dies (SIGKILL) before a byte is sent.
    let mut crashing = ServeProcess::start_in(
        dir.path(),
        &[
            extra.as_slice(),
            &[("MEEBOTER_TEST_FAILPOINT", "before-webhook-send")],
        ]
        .concat(),
    );
    let created = expect_json(create(&crashing, &with_webhook_less(3)).await, 201).await;
    let bot = created["id"].as_u64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !crashing
        .stderr_text()
        .contains("failpoint before-webhook-send reached")
    {
        assert!(Instant::now() < deadline, "{}", crashing.stderr_text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    crashing.child.kill().unwrap();
    crashing.child.wait().unwrap();
    assert!(receiver.received().is_empty());
    // Restarted, it sends the event once the dead worker's claim expires.
    let mut serve = ServeProcess::start_in(dir.path(), &extra);
    receiver
        .wait_until(Duration::from_secs(60), |r| !r.is_empty())
        .await;
    let received = receiver.received();
    let event = received[0].json();
    assert_eq!(event["type"], "bot.status_changed");
    assert_eq!(event["data"]["bot"]["id"], bot);
    assert_eq!(event["data"]["to"], "pending");
    let verifier = standardwebhooks::Webhook::new(&secret).unwrap();
    verifier
        .verify(&received[0].body, &received[0].headers)
        .unwrap();
    let mut view = Value::Null;
    for _ in 0..100 {
        view = expect_json(get(&serve, &format!("/v1/bots/{bot}/webhooks")).await, 200).await;
        if view["deliveries"][0]["state"] == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let delivery = &view["deliveries"][0];
    assert_eq!(delivery["state"], "delivered", "{view}");
    assert_eq!(delivery["webhook_id"], received[0].webhook_id());
    assert_eq!(delivery["attempts"], 1);
    assert_eq!(delivery["destination"], "operator");
    let metrics = client()
        .get(serve.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("meeboter_webhook_deliveries{state=\"delivered\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("meeboter_webhook_oldest_undelivered_seconds 0"),
        "{metrics}"
    );
    serve.terminate();
    assert_eq!(serve.wait_exit(), Some(0));
}

fn with_webhook_less(n: u64) -> Value {
    let mut body = zoom_request(n);
    body["deploy"] = json!(false);
    body
}
