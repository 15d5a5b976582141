//! The stand-in bot: health, SIGTERM, its lifetime.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

#[test]
fn sim_bot_answers_health_and_exits_on_sigterm() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let child = Command::new(BIN)
        .arg("sim-bot")
        .env_clear()
        .env("BOT_PORT", port.to_string())
        .env("BOT_ID", "77")
        .env("MEETING_URL", ZOOM)
        .env("MEETING_PASSWORD", "hunter2-pw")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(mut stream) => {
                use std::io::{Read, Write};
                stream
                    .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    .unwrap();
                let mut body = String::new();
                stream.read_to_string(&mut body).unwrap();
                break body;
            }
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("sim-bot never listened: {e}"),
        }
    };
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("\"bot_id\":\"77\""), "{body}");
    assert!(body.contains("\"simulated\":true"), "{body}");
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let logs = stderr(&out);
    assert!(logs.contains("not a real meeting bot"), "{logs}");
    assert!(logs.contains("SIGTERM"), "{logs}");
    for secret in ["s3cr3tpass", "hunter2-pw"] {
        assert!(!logs.contains(secret), "{secret} in sim-bot logs: {logs}");
    }
}

#[test]
fn sim_bot_exits_on_its_own_when_its_lifetime_ends() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let started = Instant::now();
    let out = Command::new(BIN)
        .arg("sim-bot")
        .env_clear()
        .env("BOT_PORT", port.to_string())
        .env("SIM_BOT_LIFETIME", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(
        stderr(&out).contains("its lifetime ended"),
        "{}",
        stderr(&out)
    );

    let out = Command::new(BIN)
        .arg("sim-bot")
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6));
    assert!(
        stderr(&out).contains("BOT_PORT is missing"),
        "{}",
        stderr(&out)
    );
}
