//! The process killed with SIGKILL between the intent and the platform's
//! answer, and during a stop: a restart finishes or adopts what it left.

use std::time::Duration;

use crate::support::*;

#[test]
fn a_crash_between_the_deploy_intent_and_the_platform_is_finished_after_restart() {
    let machine = Machine::new();
    machine.crash_at("after-deploy-intent", &deploy_zoom(ZOOM, &[]));
    let (_, page) = machine.json(&["list"]);
    let bot = &page["bots"][0];
    assert_eq!(bot["status"], "deploying", "{page}");
    assert_eq!(bot["attempt"], 1);
    assert!(bot["platform_id"].is_null());
    assert!(
        machine.bot_processes().is_empty(),
        "the platform was called before the crash"
    );
    let id = bot["id"].as_u64().unwrap().to_string();

    // Restart the service (here its reconciler, every second): once the
    // dead request's lease has run out it deploys the same attempt.
    let status = machine.with_reconciler_running(|| {
        machine.status_until(&id, Duration::from_secs(20), |s| s != "deploying")
    });
    assert_eq!(status["bot"]["status"], "running", "{status}");
    assert_eq!(status["bot"]["attempt"], 1, "{status}");
    assert_eq!(machine.bot_processes().len(), 1, "exactly one bot process");
    // A second pass starts nothing more.
    machine.run(&["reconcile", "--once"]);
    assert_eq!(machine.bot_processes().len(), 1);

    let (code, stopped) = machine.json(&["stop", &id]);
    assert_eq!(code, 0, "{stopped}");
    assert!(
        machine.wait_for_no_bot_process().is_empty(),
        "orphan bot process"
    );
    let (_, pool) = machine.json(&["pool"]);
    assert!(pool["pools"].as_array().unwrap().iter().all(|p| {
        p["by_meeting_platform"]
            .as_object()
            .unwrap()
            .values()
            .all(|c| c["claimed"] == 0)
    }));
}

/// A create that asked for a deploy, killed right after its commit and
/// before anything was placed: the deploy intent is part of the create, so
/// once the dead request's short claim lapses the reconciler deploys it,
/// once.
#[test]
fn a_crash_between_the_create_and_the_platform_call_is_deployed_after_restart() {
    let machine = Machine::new();
    machine.crash_at("after-create", &deploy_zoom(ZOOM, &[]));
    let (_, page) = machine.json(&["list"]);
    let bot = &page["bots"][0];
    assert_eq!(bot["status"], "pending", "{page}");
    assert!(
        bot["deploy_at"].is_string(),
        "the intent is recorded: {page}"
    );
    assert!(machine.bot_processes().is_empty());
    let id = bot["id"].as_u64().unwrap().to_string();

    let status = machine.with_reconciler_running(|| {
        machine.status_until(&id, Duration::from_secs(30), |s| s == "running")
    });
    assert_eq!(status["bot"]["status"], "running", "{status}");
    assert_eq!(status["bot"]["attempt"], 1, "{status}");
    assert_eq!(machine.bot_processes().len(), 1, "exactly one bot process");
    machine.run(&["reconcile", "--once"]);
    assert_eq!(machine.bot_processes().len(), 1, "deployed once");

    let (code, stopped) = machine.json(&["stop", &id]);
    assert_eq!(code, 0, "{stopped}");
    assert!(machine.wait_for_no_bot_process().is_empty());
}

#[test]
fn a_crash_after_the_platform_started_the_bot_adopts_that_bot_after_restart() {
    let machine = Machine::new();
    machine.crash_at("after-platform-deploy", &deploy_zoom(ZOOM, &[]));
    let (_, page) = machine.json(&["list"]);
    let bot = &page["bots"][0];
    assert_eq!(bot["status"], "deploying", "{page}");
    assert!(bot["platform_id"].is_null(), "{page}");
    let started = machine.bot_processes();
    assert_eq!(started.len(), 1, "the platform had started the bot");
    let id = bot["id"].as_u64().unwrap().to_string();

    std::thread::sleep(Duration::from_millis(3200));
    let out = machine.run(&["reconcile", "--once"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (_, status) = machine.json(&["status", &id]);
    assert_eq!(status["bot"]["status"], "running", "{status}");
    assert_eq!(status["bot"]["attempt"], 1, "{status}");
    // The same process, not a second one.
    assert_eq!(machine.bot_processes(), started);

    assert_eq!(machine.json(&["stop", &id]).0, 0);
    assert!(
        machine.wait_for_no_bot_process().is_empty(),
        "orphan bot process"
    );
}

#[test]
fn a_crash_during_a_stop_is_finished_after_restart() {
    let machine = Machine::new();
    let (code, bot) = machine.json(&deploy_zoom(ZOOM, &[]));
    assert_eq!(code, 0, "{bot}");
    let id = bot["id"].as_u64().unwrap().to_string();
    assert_eq!(machine.bot_processes().len(), 1);

    machine.crash_at("after-stop-intent", &["stop", &id]);
    let (_, status) = machine.json(&["status", &id]);
    assert_eq!(status["bot"]["status"], "stopping", "{status}");
    assert_eq!(
        machine.bot_processes().len(),
        1,
        "the bot was stopped before the crash"
    );

    std::thread::sleep(Duration::from_millis(3200));
    let out = machine.run(&["reconcile", "--once"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (_, status) = machine.json(&["status", &id]);
    assert_eq!(status["bot"]["status"], "stopped", "{status}");
    assert!(
        machine.wait_for_no_bot_process().is_empty(),
        "orphan bot process"
    );
    let history: Vec<String> = status["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["to"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        history,
        ["pending", "deploying", "running", "stopping", "stopped"]
    );
}
