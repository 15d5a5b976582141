//! Graceful shutdown: a request in flight completes, new connections are
//! refused, the reconciler stops, running bots keep running.

use std::sync::Arc;
use std::time::Duration;

use platform_core::testkit::FakePlatform;
use serde_json::Value;

use crate::support::{ServeProcess, client, expect_json, spawn_fake, zoom_request};

async fn refuses_connections(addr: std::net::SocketAddr) -> bool {
    for _ in 0..50 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_in_flight_completes_and_new_connections_are_refused() {
    // Every platform call takes 1.5 s, so the create is surely in flight.
    let platform = Arc::new(FakePlatform::new().with_latency(Duration::from_millis(1500)));
    let mut app = spawn_fake(Arc::clone(&platform)).await;
    let in_flight = tokio::spawn(
        app.authed(reqwest::Method::POST, "/v1/bots")
            .header("Prefer", crate::support::WAIT)
            .json(&zoom_request(1))
            .send(),
    );
    // Wait until the deploy intent is recorded: the request is inside the
    // platform call.
    let mut deploying = false;
    for _ in 0..100 {
        let page = app.get_json("/v1/bots?status=deploying", 200).await;
        if !page["bots"].as_array().unwrap().is_empty() {
            deploying = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(deploying, "the create never reached the platform");
    app.begin_shutdown();
    assert!(
        refuses_connections(app.addr).await,
        "still accepting after the stop signal"
    );
    let response = in_flight.await.unwrap().unwrap();
    let bot = expect_json(response, 201).await;
    assert_eq!(bot["status"], "running", "{bot}");
    app.wait_stopped().await;
    // The bot was left running on its platform.
    assert_eq!(platform.live_bots(), 1);
    assert_eq!(platform.calls().stop, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_deploy_finish_then_exits_leaving_the_bot_running() {
    // Each local deploy watches its bot for 1.5 s before answering.
    let mut serve = ServeProcess::start(&[
        ("API_TOKEN", crate::support::TOKEN),
        ("LOCAL_START_CHECK_MS", "1500"),
    ]);
    let client = client();
    let url = serve.url("/v1/bots");
    let in_flight = tokio::spawn({
        let client = client.clone();
        let url = url.clone();
        async move {
            client
                .post(url)
                .bearer_auth(crate::support::TOKEN)
                .header("Prefer", crate::support::WAIT)
                .json(&zoom_request(1))
                .send()
                .await
        }
    });
    let mut deploying = false;
    for _ in 0..200 {
        let page: Value = client
            .get(format!("{url}?status=deploying"))
            .bearer_auth(crate::support::TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if !page["bots"].as_array().unwrap().is_empty() {
            deploying = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(deploying, "the create never reached the platform");
    serve.terminate();
    assert!(
        refuses_connections(serve.addr).await,
        "still accepting after SIGTERM"
    );
    let bot = expect_json(in_flight.await.unwrap().unwrap(), 201).await;
    let exit = tokio::task::spawn_blocking(move || {
        let code = serve.wait_exit();
        (code, serve)
    })
    .await
    .unwrap();
    let (code, serve) = exit;
    assert_eq!(code, Some(0), "{}", serve.stderr_text());
    let text = serve.stderr_text();
    assert!(text.contains("reconciler stopped"), "{text}");
    // The bot's process outlived the service; end it here.
    let platform_id = bot["platform_id"].as_str().expect("a platform id");
    let pid: i32 = platform_id.split(':').next().unwrap().parse().unwrap();
    let pid = nix::unistd::Pid::from_raw(pid);
    assert!(
        nix::sys::signal::kill(pid, None).is_ok(),
        "the bot did not keep running"
    );
    let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
}
