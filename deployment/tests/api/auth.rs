//! Bearer auth: missing, wrong and right tokens; open health, readiness and
//! metrics; the token generated on loopback; the refusal to serve a public
//! address without one.

use std::sync::Arc;
use std::time::Duration;

use platform_core::testkit::FakePlatform;
use reqwest::Method;

use crate::support::{
    ServeProcess, client, expect_error, expect_json, serve_command, spawn_fake, zoom_request,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn protected_routes_need_the_exact_token() {
    let app = spawn_fake(Arc::new(FakePlatform::new())).await;
    for (method, path) in [
        (Method::POST, "/v1/bots"),
        (Method::GET, "/v1/bots"),
        (Method::GET, "/v1/bots/1"),
        (Method::POST, "/v1/bots/1/deploy"),
        (Method::POST, "/v1/bots/1/stop"),
        (Method::GET, "/v1/bots/1/status"),
        (Method::GET, "/v1/platforms"),
        (Method::GET, "/v1/pool"),
        (Method::GET, "/openapi.json"),
    ] {
        let missing = app.anonymous(method.clone(), path).send().await.unwrap();
        assert_eq!(
            missing.headers()["www-authenticate"],
            "Bearer realm=\"meeboter-deploy\""
        );
        expect_error(missing, 401, "unauthorized").await;
        for wrong in [
            "Bearer nope",
            "Bearer test-token-0123456789abcdeX",
            "Basic dGVzdA==",
            "Bearer ",
        ] {
            let response = app
                .anonymous(method.clone(), path)
                .header("authorization", wrong)
                .send()
                .await
                .unwrap();
            let body = expect_error(response, 401, "unauthorized").await;
            assert!(!body.to_string().contains("0123456789"), "{body}");
        }
    }
    // Nothing was created by the refused requests.
    let page = app.get_json("/v1/bots", 200).await;
    assert_eq!(page["bots"].as_array().unwrap().len(), 0);
    // The right token, any case of the scheme.
    let response = app
        .anonymous(Method::POST, "/v1/bots")
        .header("authorization", format!("bearer {}", crate::support::TOKEN))
        .json(&zoom_request(1))
        .send()
        .await
        .unwrap();
    expect_json(response, 201).await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn health_readiness_and_metrics_are_open() {
    let platform = Arc::new(FakePlatform::new());
    let app = spawn_fake(Arc::clone(&platform)).await;
    let health = expect_json(
        app.anonymous(Method::GET, "/healthz").send().await.unwrap(),
        200,
    )
    .await;
    assert_eq!(health["status"], "ok");
    let ready = expect_json(
        app.anonymous(Method::GET, "/readyz").send().await.unwrap(),
        200,
    )
    .await;
    assert_eq!(ready["ready"], true, "{ready}");
    // A platform that does not answer: 503, saying which check failed —
    // once the last answer (reused briefly, so open probes cannot spend the
    // platform's API quota) has expired.
    platform.set_unreachable(true);
    let cached = app.anonymous(Method::GET, "/readyz").send().await.unwrap();
    assert_eq!(cached.status(), 200);
    tokio::time::sleep(deployment::api::health::READINESS_TTL + Duration::from_millis(100)).await;
    let ready = expect_json(
        app.anonymous(Method::GET, "/readyz").send().await.unwrap(),
        503,
    )
    .await;
    assert_eq!(ready["ready"], false, "{ready}");
    assert_eq!(ready["database"]["ok"], true, "{ready}");
    assert_eq!(ready["platform"]["ok"], false, "{ready}");
    assert!(
        ready["platform"]["error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{ready}"
    );
    let metrics = app.anonymous(Method::GET, "/metrics").send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_loopback_without_a_token_generates_one_and_prints_it_once() {
    let mut serve = ServeProcess::start(&[]);
    let text = serve.stderr_text();
    let token = text
        .split_whitespace()
        .find(|word| word.starts_with("mbt_"))
        .unwrap_or_else(|| panic!("no generated token printed: {text}"))
        .to_owned();
    assert_eq!(token.len(), 68, "{token}");
    let client = client();
    let refused = client.get(serve.url("/v1/platforms")).send().await.unwrap();
    expect_error(refused, 401, "unauthorized").await;
    let platforms = client
        .get(serve.url("/v1/platforms"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let platforms = expect_json(platforms, 200).await;
    assert_eq!(platforms["active"], "local");
    // A bot's life, logged at debug: no secret of the request in the logs.
    let bot = client
        .post(serve.url("/v1/bots"))
        .bearer_auth(&token)
        .header("Prefer", crate::support::WAIT)
        .json(&zoom_request(1))
        .send()
        .await
        .unwrap();
    let bot = expect_json(bot, 201).await;
    let stop = client
        .post(serve.url(&format!("/v1/bots/{}/stop", bot["id"])))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(expect_json(stop, 200).await["status"], "stopped");
    serve.terminate();
    assert_eq!(serve.wait_exit(), Some(0), "{}", serve.stderr_text());
    // Printed once, never logged (the log runs at debug here).
    let text = serve.stderr_text();
    assert_eq!(text.matches(&token).count(), 1, "{text}");
    assert!(text.contains("request answered"), "{text}");
    for secret in ["s3cr3tpass", "hunter2-pw"] {
        assert!(!text.contains(secret), "{secret} logged: {text}");
    }
}

#[test]
fn serve_refuses_a_public_address_without_a_token_and_opens_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let output = serve_command(dir.path(), &[("LISTEN_ADDR", "0.0.0.0:0")])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(6), "{stderr}");
    assert!(stderr.contains("API_TOKEN"), "{stderr}");
    assert!(stderr.contains("not a loopback address"), "{stderr}");
    assert!(!stderr.contains("listening on"), "{stderr}");
    assert!(
        !dir.path().join("bots.db").exists(),
        "the database was opened"
    );
    // A token that is too short is refused the same way, without echoing it.
    let output = serve_command(
        dir.path(),
        &[("LISTEN_ADDR", "0.0.0.0:0"), ("API_TOKEN", "short-tok")],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(6), "{stderr}");
    assert!(stderr.contains("at least 16 characters"), "{stderr}");
    assert!(!stderr.contains("short-tok"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_json_logs_every_line_on_standard_error_is_json() {
    let mut serve = ServeProcess::start(&[("LOG_FORMAT", "json")]);
    let lines: Vec<serde_json::Value> = serve
        .stderr
        .lock()
        .unwrap()
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    let token = lines
        .iter()
        .find_map(|line| line["fields"]["api_token"].as_str())
        .expect("the generated token is in its own field")
        .to_owned();
    let platforms = client()
        .get(serve.url("/v1/platforms"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    expect_json(platforms, 200).await;
    serve.terminate();
    assert_eq!(serve.wait_exit(), Some(0), "{}", serve.stderr_text());
    for line in serve.stderr.lock().unwrap().iter() {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "not JSON: {line}"
        );
    }
}
