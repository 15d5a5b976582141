//! A load run against the real `meeboter-deploy serve`: 2,000
//! create-and-deploy requests over 64 connections, from this process to the
//! server in another, on loopback. Prints the errors (there must be none),
//! the throughput and the latency percentiles as the client sees them.
//!
//! The server runs the local platform on a SQLite file in a temporary
//! directory, with a bot command that exits at once (`true`) and the start
//! check off (`LOCAL_START_CHECK_MS=0`), so what is measured is the API,
//! the service and the database — plus one real process spawn per bot — and
//! not a bot's start-up. The reconciler runs as in production and records
//! the bots ending.
//!
//! `cargo bench -p deployment --bench http_load`. `BENCH_REQUESTS`,
//! `BENCH_CONNECTIONS` and `BENCH_BOT_COMMAND` change the defaults. Every
//! process it starts is stopped before it exits, even when a request fails.

#![allow(
    clippy::disallowed_methods,
    reason = "stopping the server waits on a child process from the main thread, outside the runtime"
)]

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const TOKEN: &str = "bench-token-0123456789abcdef";

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The server process, stopped with SIGTERM (then SIGKILL) when dropped.
struct Server {
    child: Child,
}

impl Server {
    fn stop(&mut self) -> Option<i32> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return status.code();
        }
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        self.child.wait().ok().and_then(|s| s.code())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn start_server(dir: &std::path::Path, bot_command: &str) -> (Server, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_meeboter-deploy"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env(
            "DATABASE_URL",
            format!("sqlite:{}", dir.join("bench.db").display()),
        )
        .env("DEPLOYMENT_PLATFORM", "local")
        .env("LOCAL_STATE_DIR", dir.join("local"))
        .env("LOCAL_BOT_COMMAND", bot_command)
        .env("LOCAL_START_CHECK_MS", "0")
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("API_TOKEN", TOKEN)
        .env("LOG_LEVEL", "warn")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start meeboter-deploy serve");
    let stderr = child.stderr.take().expect("stderr");
    let server = Server { child };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let _ = tx.send(
                    rest.split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned(),
                );
            } else if line.contains("WARN") || line.contains("ERROR") || line.starts_with("error") {
                eprintln!("server: {line}");
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the server listens within 60 s");
    (server, addr)
}

fn main() {
    let requests = setting("BENCH_REQUESTS", 2000);
    let connections = setting("BENCH_CONNECTIONS", 64);
    let bot_command = std::env::var("BENCH_BOT_COMMAND").unwrap_or_else(|_| "true".into());
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (mut server, addr) = start_server(dir.path(), &bot_command);
    println!(
        "http_load: {requests} create-and-deploy requests over {connections} connections to {addr} (local platform, bot command `{bot_command}`)"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let (mut latencies, errors, elapsed) = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(connections)
            .timeout(Duration::from_secs(120))
            .build()
            .expect("an HTTP client");
        let url = format!("http://{addr}/v1/bots");
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let workers = (0..connections).map(|_| {
            let client = client.clone();
            let url = url.clone();
            let next = Arc::clone(&next);
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = Vec::new();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= requests {
                        break;
                    }
                    let body = serde_json::json!({
                        "meeting_platform": "zoom",
                        "meeting_url": format!("https://us02web.zoom.us/j/8{n:010}?pwd=benchpass"),
                        "display_name": format!("Load {n}"),
                    });
                    let sent = Instant::now();
                    let outcome = client
                        .post(&url)
                        .bearer_auth(TOKEN)
                        .header("idempotency-key", format!("load-{n}"))
                        .json(&body)
                        .send()
                        .await;
                    match outcome {
                        Ok(response) if response.status().as_u16() == 201 => {
                            // Read the whole answer: that is what a client waits for.
                            let _ = response.bytes().await;
                            latencies.push(sent.elapsed());
                        }
                        Ok(response) => {
                            let status = response.status();
                            let text = response.text().await.unwrap_or_default();
                            errors.push(format!("request {n}: {status}: {text}"));
                        }
                        Err(e) => errors.push(format!("request {n}: {e}")),
                    }
                }
                (latencies, errors)
            })
        });
        let mut latencies = Vec::with_capacity(requests);
        let mut errors = Vec::new();
        for outcome in futures::future::join_all(workers).await {
            let (l, e) = outcome.expect("a worker");
            latencies.extend(l);
            errors.extend(e);
        }
        (latencies, errors, started.elapsed())
    });
    let exit = server.stop();
    latencies.sort();
    println!("errors           {}", errors.len());
    for error in errors.iter().take(10) {
        println!("  {error}");
    }
    println!("succeeded        {}", latencies.len());
    println!("elapsed          {:.2} s", elapsed.as_secs_f64());
    println!(
        "throughput       {:.0} requests/s",
        latencies.len() as f64 / elapsed.as_secs_f64()
    );
    for (name, p) in [("p50", 50.0), ("p90", 90.0), ("p99", 99.0)] {
        println!(
            "latency {name}      {:.1} ms",
            percentile(&latencies, p).as_secs_f64() * 1e3
        );
    }
    println!(
        "latency max      {:.1} ms",
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
    println!("server exit      {exit:?} after SIGTERM");
    if !errors.is_empty() || exit != Some(0) {
        std::process::exit(1);
    }
}
