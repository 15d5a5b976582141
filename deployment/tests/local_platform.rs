//! The service on the real local platform: 50 stand-in bots as real
//! processes, all running, their statuses in one call, all stopped, and no
//! process left in the OS process table.

#![cfg(feature = "local")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{TestDb, create, zoom_input};
use deployment::{BotState, ServiceSettings};
use platform_core::{MapEnv, StatusKind};

/// Processes whose environment carries the local platform's marker for the
/// state directory `marker` (unique per test), from `/proc`.
pub fn processes_with_marker(marker: &str) -> Vec<u32> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        // A zombie has an empty environment; it holds nothing but a pid
        // slot, and is reported by its state.
        // Read as bytes: the name line may hold half a character, cut by
        // the kernel at 15 bytes, which would make a text read fail.
        let status = std::fs::read(entry.path().join("status")).unwrap_or_default();
        let zombie = status
            .split(|b| *b == b'\n')
            .any(|l| l.starts_with(b"State:") && l.contains(&b'Z'));
        let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        let has_marker = environ.split(|b| *b == 0).any(|var| {
            var.starts_with(b"MEEBOTER_LOCAL_INSTANCE=")
                && String::from_utf8_lossy(var).contains(marker)
        });
        if has_marker || (zombie && is_our_child(pid)) {
            found.push(pid);
        }
    }
    found
}

fn is_our_child(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // After the name's closing parenthesis, which the name itself
            // may contain, all fields are ASCII.
            let close = stat.iter().rposition(|b| *b == b')')?;
            let after = String::from_utf8_lossy(&stat[close + 1..]).into_owned();
            after.split_whitespace().nth(1)?.parse::<u32>().ok()
        })
        .is_some_and(|ppid| ppid == std::process::id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_local_bots_run_report_in_one_call_and_leave_no_process() {
    let db = TestDb::sqlite();
    let state = tempfile::tempdir().unwrap();
    let marker = state
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let env = MapEnv::new()
        .with("DEPLOYMENT_PLATFORM", "local")
        .with("LOCAL_STATE_DIR", state.path().display().to_string())
        .with(
            "LOCAL_BOT_COMMAND",
            format!("{} sim-bot", env!("CARGO_BIN_EXE_meeboter-deploy")),
        )
        .with("LOCAL_STOP_GRACE_SECONDS", "5");
    let env = env.with("DATABASE_URL", db.url());
    let settings = ServiceSettings::load(&env).unwrap();
    let service = deployment::open_service(&settings, Arc::new(env))
        .await
        .unwrap();
    assert_eq!(service.platform_name(), "local");

    let deploys = (0..50).map(|n| {
        let service = service.clone();
        tokio::spawn(async move { service.create_bot(create(zoom_input(n), true)).await })
    });
    let mut ids = Vec::new();
    for outcome in futures::future::join_all(deploys).await {
        let bot = outcome.unwrap().unwrap().bot;
        assert!(
            matches!(bot.status, BotState::Running | BotState::Deploying),
            "{bot:?}"
        );
        ids.push(bot.id);
    }
    // The reconciler promotes any that were still starting.
    for _ in 0..50 {
        service.reconcile_once().await.unwrap();
        let page = service
            .list(&deployment::ListQuery {
                status: Some(BotState::Running),
                limit: Some(500),
                ..Default::default()
            })
            .await
            .unwrap();
        if page.bots.len() == 50 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let statuses = service.live_statuses(None).await.unwrap();
    assert_eq!(statuses.len(), 50);
    for live in &statuses {
        assert_eq!(live.bot.status, BotState::Running, "{:?}", live.bot);
        let status = live
            .platform_status
            .as_ref()
            .expect("the platform answered");
        assert_eq!(status.kind, StatusKind::Running, "{status}");
        let url = live.bot.connection_url.as_deref().unwrap();
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    }
    // Each stand-in bot answers its health check.
    let client = reqwest::Client::new();
    let health = client
        .get(format!(
            "{}/health",
            statuses[0].bot.connection_url.as_deref().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert!(health.status().is_success());
    assert_eq!(processes_with_marker(&marker).len(), 50);

    let stops = ids.iter().map(|id| {
        let service = service.clone();
        let id = *id;
        tokio::spawn(async move { service.stop(id).await })
    });
    for outcome in futures::future::join_all(stops).await {
        assert_eq!(outcome.unwrap().unwrap().status, BotState::Stopped);
    }
    let mut left = processes_with_marker(&marker);
    for _ in 0..50 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = processes_with_marker(&marker);
    }
    assert!(left.is_empty(), "processes left behind: {left:?}");
}
