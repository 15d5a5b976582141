//! The README's quick start as a whole meeting life: `meeboter-deploy
//! serve` on the local platform with the stand-in bot speaking the bot
//! protocol. A bot goes joining → in_waiting_room → in_call, visible in
//! `GET /v1/bots/{id}` and its history; leave ends it call_ended
//! (left_on_request); a bot frozen with SIGSTOP is failed as
//! heartbeat_timeout and its process group killed.

use std::time::Duration;

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use reqwest::Method;
use serde_json::Value;

use crate::support::{BIN, ServeProcess, TOKEN, WAIT, client, expect_json, zoom_request};

async fn call(serve: &ServeProcess, method: Method, path: &str) -> Value {
    let response = client()
        .request(method, serve.url(path))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    expect_json(response, 200).await
}

async fn wait_until(serve: &ServeProcess, id: u64, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..600 {
        last = call(serve, Method::GET, &format!("/v1/bots/{id}")).await;
        if done(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "bot {id} never got there; last: {last}\n{}",
        serve.stderr_text()
    );
}

/// The README's first create: it waits for the bot (`Prefer: wait=30`).
async fn create_and_wait(serve: &ServeProcess, n: u64) -> Value {
    let response = client()
        .post(serve.url("/v1/bots"))
        .bearer_auth(TOKEN)
        .header("Prefer", WAIT)
        .json(&zoom_request(n))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers().get("preference-applied").unwrap(), WAIT);
    expect_json(response, 201).await
}

/// The README's second create: answered at once, the bot placed.
async fn create(serve: &ServeProcess, n: u64) -> u64 {
    let response = client()
        .post(serve.url("/v1/bots"))
        .bearer_auth(TOKEN)
        .json(&zoom_request(n))
        .send()
        .await
        .unwrap();
    assert!(response.headers().get("preference-applied").is_none());
    let bot = expect_json(response, 201).await;
    assert!(
        ["deploying", "running"].contains(&bot["status"].as_str().unwrap()),
        "{bot}"
    );
    bot["id"].as_u64().unwrap()
}

fn meeting_moves(bot: &Value) -> Vec<String> {
    bot["meeting_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["to"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_quick_start_shows_a_whole_meeting_life() {
    let command = format!(
        "env SIM_BOT_LIFETIME=300 SIM_BOT_WAITING_ROOM_SECS=1 SIM_BOT_HEARTBEAT_SECS=1 {BIN} sim-bot"
    );
    let mut serve = ServeProcess::start(&[
        ("API_TOKEN", TOKEN),
        ("LOCAL_BOT_COMMAND", &command),
        ("RECONCILE_INTERVAL", "1"),
        ("HEARTBEAT_TIMEOUT", "5"),
        ("LOCAL_STOP_GRACE_SECONDS", "2"),
    ]);

    // The first block: a create that waits, the bot, its stop.
    let first = create_and_wait(&serve, 1).await;
    assert_eq!(first["status"], "running", "{first}");
    let id = first["id"].as_u64().unwrap();
    let shown = call(&serve, Method::GET, &format!("/v1/bots/{id}")).await;
    assert_eq!(shown["status"], "running", "{shown}");
    let stopped = call(&serve, Method::POST, &format!("/v1/bots/{id}/stop")).await;
    assert_eq!(stopped["status"], "stopped", "{stopped}");

    // A whole meeting: joining, the waiting room, the call; then leave.
    let id = create(&serve, 2).await;
    let in_call = wait_until(&serve, id, |b| b["meeting_status"] == "in_call").await;
    assert_eq!(in_call["status"], "running", "{in_call}");
    assert_eq!(
        meeting_moves(&in_call),
        ["joining", "in_waiting_room", "in_call"]
    );
    assert!(in_call["last_heartbeat_at"].is_string(), "{in_call}");
    call(&serve, Method::POST, &format!("/v1/bots/{id}/leave")).await;
    let left = wait_until(&serve, id, |b| b["status"] == "stopped").await;
    assert_eq!(left["meeting_status"], "call_ended", "{left}");
    assert_eq!(left["meeting_sub_code"], "left_on_request", "{left}");
    assert!(
        left["reason"].as_str().unwrap().contains("left_on_request"),
        "{left}"
    );

    // A bot that hangs: frozen, it stops heartbeating and is failed.
    let frozen = create(&serve, 3).await;
    let bot = wait_until(&serve, frozen, |b| b["meeting_status"] == "in_call").await;
    let platform_id = bot["platform_id"].as_str().unwrap().to_owned();
    let pid: i32 = platform_id.split(':').next().unwrap().parse().unwrap();
    kill(Pid::from_raw(pid), Signal::SIGSTOP).unwrap();
    let failed = wait_until(&serve, frozen, |b| b["status"] == "failed").await;
    assert!(
        failed["reason"]
            .as_str()
            .unwrap()
            .starts_with("heartbeat_timeout"),
        "{failed}"
    );
    assert_eq!(failed["meeting_status"], "fatal");
    assert_eq!(failed["meeting_sub_code"], "heartbeat_timeout");
    // Its whole process group is gone (the local platform runs each bot in
    // its own group, led by the bot).
    let mut gone = false;
    for _ in 0..100 {
        if killpg(Pid::from_raw(pid), None).is_err() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        gone,
        "process group {pid} still runs\n{}",
        serve.stderr_text()
    );
    // The tokens of both ended bots are never in the logs.
    let logs = serve.stderr_text();
    assert!(!logs.contains("mbb_"), "a bot token was logged");
    serve.terminate();
    assert_eq!(serve.wait_exit(), Some(0), "{}", serve.stderr_text());
}
