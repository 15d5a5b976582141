//! Deploy, status, stop and cleanup of real bot processes.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use platform_core::{PlatformId, PlatformService, StatusKind};
use platform_local::LocalBotId;

use crate::support::{
    IGNORES_TERM, KillOnDrop, SINGLE_PROCESS, TestBed, WELL_BEHAVED, bot, environment_of,
    eventually, name_of, process_exists, stat_fields, state_of,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_gets_its_environment_a_port_and_nothing_of_the_service() {
    let bed = TestBed::with(SINGLE_PROCESS, |config| {
        config.with_inherited_env(["CARGO_PKG_*"])
    });
    let deployed = bed.platform.deploy_bot(&bot(7), 3).await.unwrap();
    let id = LocalBotId::parse(&deployed.identifier).unwrap();
    assert_eq!(id.instance.bot_id.0, 7);
    assert_eq!(id.instance.attempt, 3);

    let env = environment_of(id.pid());
    let get = |name: &str| env.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    assert_eq!(get("BOT_ID").as_deref(), Some("7"));
    assert!(get("MEETING_URL").unwrap().starts_with("https://"));
    assert_eq!(get("RECORDING_ENABLED").as_deref(), Some("false"));
    let port = get("BOT_PORT").unwrap();
    assert_eq!(
        deployed.connection_url,
        Some(format!("http://127.0.0.1:{port}"))
    );
    let marker = get("MEEBOTER_LOCAL_INSTANCE").unwrap();
    assert_eq!(
        marker,
        format!("{}:7-3@{}", bed.installation(), bed.state_dir().display())
    );
    assert_eq!(get("PATH"), std::env::var("PATH").ok());
    // Cargo sets these for the test process: only the inherited pattern
    // passes them on, and nothing else of the service's environment.
    assert_eq!(get("CARGO_PKG_NAME").as_deref(), Some("platform-local"));
    assert!(std::env::var("CARGO_MANIFEST_DIR").is_ok());
    assert_eq!(get("CARGO_MANIFEST_DIR"), None);

    // Its own process group, its output in its log.
    let group: u32 = stat_fields(id.pid()).unwrap()[2].parse().unwrap();
    assert_eq!(group, id.pid());
    let log = std::fs::read_to_string(bed.platform.log_path(id.instance.bot_id, 3)).unwrap();
    assert!(log.contains("starting bot 7 attempt 3"), "{log}");

    let status = bed
        .platform
        .get_bot_status(&deployed.identifier)
        .await
        .unwrap();
    assert_eq!(status.kind, StatusKind::Running, "{status}");
    assert_eq!(status.connection_url, deployed.connection_url);

    bed.platform.stop_bot(&deployed.identifier).await.unwrap();
    bed.platform.cleanup(&deployed.identifier).await.unwrap();
    assert!(!process_exists(&deployed.identifier));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_is_sigterm_and_reads_as_stopped() {
    let bed = TestBed::new(WELL_BEHAVED);
    let deployed = bed.platform.deploy_bot(&bot(1), 1).await.unwrap();
    bed.platform.stop_bot(&deployed.identifier).await.unwrap();
    let status = bed
        .platform
        .get_bot_status(&deployed.identifier)
        .await
        .unwrap();
    assert_eq!(status.kind, StatusKind::Stopped, "{status}");
    assert_eq!(
        status.reason.as_deref(),
        Some("stopped on request; exited with code 0")
    );
    // Stopping again, and the cleanup, change nothing.
    bed.platform.stop_bot(&deployed.identifier).await.unwrap();
    bed.platform.cleanup(&deployed.identifier).await.unwrap();
    bed.platform.cleanup(&deployed.identifier).await.unwrap();
    assert!(bed.platform.live_processes().is_empty());
    assert!(bed.records().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_ignoring_sigterm_is_killed_after_the_grace_period() {
    let bed = TestBed::with(IGNORES_TERM, |config| {
        config.with_stop_grace(Duration::from_secs(1))
    });
    let deployed = bed.platform.deploy_bot(&bot(1), 1).await.unwrap();
    // Let the shell install its trap and start its child.
    eventually("the bot and its child run", || {
        bed.platform.live_processes().len() == 2
    })
    .await;
    bed.platform.stop_bot(&deployed.identifier).await.unwrap();
    let status = bed
        .platform
        .get_bot_status(&deployed.identifier)
        .await
        .unwrap();
    assert_eq!(status.kind, StatusKind::Stopped, "{status}");
    assert_eq!(
        status.reason.as_deref(),
        Some("stopped on request; killed by SIGKILL")
    );
    // Its child, which ignored SIGTERM too, went with the group.
    assert!(bed.platform.live_processes().is_empty());
    bed.platform.cleanup(&deployed.identifier).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_that_crashes_reads_as_failed_with_its_exit_code() {
    let bed = TestBed::new(r#"sh -c 'sleep 0.3; exit 3'"#);
    let deployed = bed.platform.deploy_bot(&bot(1), 1).await.unwrap();
    let id = deployed.identifier.clone();
    let mut status = bed.platform.get_bot_status(&id).await.unwrap();
    for _ in 0..200 {
        if status.kind != StatusKind::Running {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        status = bed.platform.get_bot_status(&id).await.unwrap();
    }
    assert_eq!(status.kind, StatusKind::Failed, "{status}");
    assert_eq!(status.reason.as_deref(), Some("exited with code 3"));
    assert_eq!(status.raw.as_deref(), Some("exited:3"));
    // Reaped at once: no zombie waits for the cleanup.
    assert_eq!(state_of(LocalBotId::parse(&id).unwrap().pid()), None);
    // The exit status is on disk for a restarted service (the watcher
    // writes it right after it publishes it in memory).
    let restarted = bed.restarted();
    let mut seen_later = restarted.get_bot_status(&id).await.unwrap();
    for _ in 0..500 {
        if seen_later.kind == StatusKind::Failed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        seen_later = restarted.get_bot_status(&id).await.unwrap();
    }
    assert_eq!(seen_later.kind, StatusKind::Failed, "{seen_later}");
    assert_eq!(seen_later.reason.as_deref(), Some("exited with code 3"));
    bed.platform.stop_bot(&id).await.unwrap();
    bed.platform.cleanup(&id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identifier_whose_pid_was_reused_never_touches_the_new_process() {
    let bed = TestBed::new(SINGLE_PROCESS);
    // An unrelated process, not started by the platform.
    let mut unrelated = KillOnDrop(
        std::process::Command::new("sleep")
            .arg("1000")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = unrelated.0.id();
    let start = crate::support::start_ticks(pid).unwrap();
    // What an identifier of a bot that once had this pid looks like.
    let stale = PlatformId::new(format!("{pid}:{}:{}:5-1", start + 1, bed.installation()));

    let status = bed.platform.get_bot_status(&stale).await.unwrap();
    assert_eq!(status.kind, StatusKind::Stopped, "{status}");
    assert!(
        status
            .reason
            .as_deref()
            .unwrap()
            .contains("pid now belongs to another process"),
        "{status}"
    );
    bed.platform.stop_bot(&stale).await.unwrap();
    bed.platform.cleanup(&stale).await.unwrap();
    assert_eq!(
        unrelated.0.try_wait().unwrap(),
        None,
        "the unrelated process must live"
    );

    // A stale identifier of the same deploy does not touch the current bot
    // either.
    let deployed = bed.platform.deploy_bot(&bot(5), 1).await.unwrap();
    let current = LocalBotId::parse(&deployed.identifier).unwrap();
    let stale_same_deploy = PlatformId::new(format!(
        "{}:{}:{}:5-1",
        current.pid(),
        current.process.start_ticks + 1,
        bed.installation()
    ));
    bed.platform.stop_bot(&stale_same_deploy).await.unwrap();
    bed.platform.cleanup(&stale_same_deploy).await.unwrap();
    let status = bed
        .platform
        .get_bot_status(&deployed.identifier)
        .await
        .unwrap();
    assert_eq!(status.kind, StatusKind::Running, "{status}");

    drop(unrelated);
    bed.platform.stop_bot(&deployed.identifier).await.unwrap();
    bed.platform.cleanup(&deployed.identifier).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identifiers_the_platform_never_issues_are_unknown_not_errors() {
    let bed = TestBed::new(SINGLE_PROCESS);
    let foreign = PlatformId::new("arn:aws:ecs:eu-west-1:1:task/c/abc");
    let status = bed.platform.get_bot_status(&foreign).await.unwrap();
    assert_eq!(status.kind, StatusKind::Unknown);
    assert!(
        status
            .reason
            .unwrap()
            .contains("<pid>:<start ticks>:<installation>:<bot id>-<attempt>")
    );
    bed.platform.stop_bot(&foreign).await.unwrap();
    bed.platform.cleanup(&foreign).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_bot_cap_is_enforced() {
    let bed = TestBed::with(SINGLE_PROCESS, |config| config.with_max_bots(Some(2)));
    let first = bed.platform.deploy_bot(&bot(1), 1).await.unwrap();
    bed.platform.deploy_bot(&bot(2), 1).await.unwrap();
    let refused = bed.platform.deploy_bot(&bot(3), 1).await.unwrap_err();
    assert!(refused.is_retryable());
    // The service puts the bot back to pending: nothing was started, and
    // nothing of it is left.
    assert!(refused.nothing_started(), "{refused}");
    assert_eq!(bed.records().len(), 2);
    assert!(
        refused
            .to_string()
            .contains("2 local bots are running and LOCAL_MAX_BOTS is 2"),
        "{refused}"
    );
    // A repeated deploy of a running bot is not a new bot: not refused.
    bed.platform.deploy_bot(&bot(1), 1).await.unwrap();
    bed.platform.stop_bot(&first.identifier).await.unwrap();
    bed.platform.cleanup(&first.identifier).await.unwrap();
    let third = bed.platform.deploy_bot(&bot(3), 1).await.unwrap();
    assert!(process_exists(&third.identifier));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reachability_check_names_every_problem() {
    let bed = TestBed::new(SINGLE_PROCESS);
    bed.platform.check_reachable().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let config = platform_local::LocalConfig::new(
        platform_local::BotCommand::parse("no-such-bot-program-4711").unwrap(),
        dir.path().join("state"),
    );
    let platform =
        platform_local::LocalPlatform::new(config.clone(), bed.installation().clone()).unwrap();
    // The state directory becomes unusable after start-up.
    std::fs::remove_dir_all(dir.path().join("state")).unwrap();
    std::fs::write(dir.path().join("state"), "").unwrap();
    let err = platform.check_reachable().await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("LOCAL_BOT_COMMAND program `no-such-bot-program-4711` was not found on PATH"),
        "{text}"
    );
    assert!(text.contains("LOCAL_STATE_DIR"), "{text}");
    assert!(!err.is_retryable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_kills_what_the_bot_started_outside_its_process_group() {
    // The bot starts a helper in a session of its own, out of reach of a
    // signal to the bot's group; the helper still carries the marker.
    let bed = TestBed::new(r#"sh -c 'setsid sleep 1000 & trap "exit 0" TERM; sleep 1000 & wait'"#);
    let deployed = bed.platform.deploy_bot(&bot(1), 1).await.unwrap();
    let id = LocalBotId::parse(&deployed.identifier).unwrap();
    eventually("the bot, its child and its helper run", || {
        bed.platform.live_processes().len() == 3
    })
    .await;
    let outside = bed
        .platform
        .live_processes()
        .into_iter()
        .filter(|p| p.process_group != id.pid())
        .count();
    assert_eq!(outside, 1, "the helper left the bot's group");
    bed.platform.stop_bot(&deployed.identifier).await.unwrap();
    bed.platform.cleanup(&deployed.identifier).await.unwrap();
    assert!(bed.platform.live_processes().is_empty());
}

/// The kernel keeps a process name of at most 15 bytes and cuts a longer
/// one wherever byte 15 falls, inside a character if need be: `/proc` is
/// bytes, not text, and a bot must not read as gone because of its name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_whose_name_is_cut_inside_a_character_reads_as_running_and_is_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("bot-ééééééé");
    std::fs::write(
        &program,
        "#!/bin/sh\ntrap 'exit 0' TERM\nsleep 1000 &\nwait\n",
    )
    .unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    let bed = TestBed::new(&format!("'{}'", program.display()));

    let deployed = bed.platform.deploy_bot(&bot(1), 1).await.unwrap();
    let id = LocalBotId::parse(&deployed.identifier).unwrap();
    let name = name_of(id.pid()).unwrap();
    assert_eq!(name.len(), 15, "{name:?}");
    assert!(
        std::str::from_utf8(&name).is_err(),
        "the test needs a name cut inside a character: {name:?}"
    );
    let status = bed
        .platform
        .get_bot_status(&deployed.identifier)
        .await
        .unwrap();
    assert_eq!(status.kind, StatusKind::Running, "{status}");
    eventually("the bot and its child are found", || {
        bed.platform.live_processes().len() == 2
    })
    .await;
    let listed = bed.platform.list_marked_bots().await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(listed[0].description.contains("running"), "{listed:?}");

    bed.platform.stop_bot(&deployed.identifier).await.unwrap();
    let status = bed
        .platform
        .get_bot_status(&deployed.identifier)
        .await
        .unwrap();
    assert_eq!(status.kind, StatusKind::Stopped, "{status}");
    assert_eq!(
        status.reason.as_deref(),
        Some("stopped on request; exited with code 0")
    );
    bed.platform.cleanup(&deployed.identifier).await.unwrap();
    assert!(!process_exists(&deployed.identifier));
    assert!(bed.platform.live_processes().is_empty());
    assert!(bed.records().is_empty());
}
