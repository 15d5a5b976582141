//! Crash recovery and adoption cases that need to write records by hand.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::Signal;
use platform_core::testkit::Fixtures;
use platform_core::{
    BotDeploymentConfig, BotId, ErrorKind, InstallationId, PlatformService, StatusKind,
};

use super::{BOT_PORT_VAR, LocalPlatform};
use crate::command_line::BotCommand;
use crate::config::LocalConfig;
use crate::identifier::{InstanceKey, LocalBotId, ProcessIdentity};
use crate::proc_table::{self, Liveness};
use crate::process_control::{self, INSTANCE_MARKER_VAR};
use crate::state_dir::BotRecord;

/// A platform whose bots, and the processes a test spawns as if a
/// crashed deploy had, are killed when the test ends, even by a panic.
struct Guarded {
    platform: LocalPlatform,
    spawned: Vec<std::process::Child>,
}

impl std::ops::Deref for Guarded {
    type Target = LocalPlatform;

    fn deref(&self) -> &LocalPlatform {
        &self.platform
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        for child in &mut self.spawned {
            let _ = child.kill();
            let _ = child.wait();
        }
        for process in self.platform.live_processes() {
            let _ = process_control::signal_group(process.process_group, Signal::SIGKILL);
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(process.pid as i32),
                Signal::SIGKILL,
            );
        }
    }
}

fn platform(dir: &Path) -> Guarded {
    guarded("sleep 1000", dir)
}

fn guarded(command: &str, dir: &Path) -> Guarded {
    let command = BotCommand::parse(command).unwrap();
    Guarded {
        platform: LocalPlatform::new(
            LocalConfig::new(command, dir.join("state")),
            InstallationId::random(),
        )
        .unwrap(),
        spawned: Vec::new(),
    }
}

fn config(bot_id: u64) -> BotDeploymentConfig {
    Fixtures::new("2:1:1-1").config(bot_id)
}

/// A service process that is gone: this process with another start time.
fn dead_writer() -> ProcessIdentity {
    let me = proc_table::this_process();
    ProcessIdentity {
        start_ticks: me.start_ticks + 1,
        ..me
    }
}

/// A bot process as an interrupted deploy would have spawned it.
fn spawn_marked(platform: &mut Guarded, key: &InstanceKey, port: u16) -> ProcessIdentity {
    let marker = platform.marker(key).value();
    let child = std::process::Command::new("sleep")
        .arg("1000")
        .env(INSTANCE_MARKER_VAR, &marker)
        .env(BOT_PORT_VAR, port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let process = proc_table::read_stat(child.id()).unwrap().identity();
    platform.spawned.push(child);
    // Until the child has exec'd, /proc shows the test's own environment.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while proc_table::environment_value(process.pid, INSTANCE_MARKER_VAR).as_ref() != Some(&marker)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the child never exec'd"
        );
        std::thread::yield_now();
    }
    process
}

/// Kills the first process the test spawned and waits (at most 5 s) until
/// it is a zombie: ended, its exit status not collected by anyone.
async fn kill_into_a_zombie(platform: &mut Guarded, process: ProcessIdentity) {
    platform.spawned[0].kill().unwrap();
    for _ in 0..500 {
        if matches!(proc_table::liveness(process), Liveness::Zombie(_)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(matches!(proc_table::liveness(process), Liveness::Zombie(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_spawned_just_before_a_crash_is_found_not_started_twice() {
    let dir = tempfile::tempdir().unwrap();
    let mut platform = platform(dir.path());
    let key = platform.key(BotId(11), 1);
    // The crashed deploy wrote its intent, spawned the bot and died
    // before completing the record.
    let intent = BotRecord::intent(&key, dead_writer(), proc_table::boot_id(), 45_678);
    assert!(platform.state.create(&intent).unwrap());
    let orphan = spawn_marked(&mut platform, &key, 45_678);

    let deployed = platform.deploy_bot(&config(11), 1).await.unwrap();
    let id = LocalBotId::parse(&deployed.identifier).unwrap();
    assert_eq!(id.process, orphan);
    assert_eq!(
        deployed.connection_url.as_deref(),
        Some("http://127.0.0.1:45678")
    );
    assert_eq!(platform.live_processes().len(), 1);
    let record = platform.state.read(&key).unwrap().unwrap();
    assert!(record.describes(id.process));
    // Found once, the bot is now recorded: the next repeat agrees.
    assert_eq!(platform.deploy_bot(&config(11), 1).await.unwrap(), deployed);

    platform.stop_bot(&deployed.identifier).await.unwrap();
    platform.cleanup(&deployed.identifier).await.unwrap();
    assert!(platform.live_processes().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_deploy_that_started_nothing_starts_the_bot() {
    let dir = tempfile::tempdir().unwrap();
    let platform = platform(dir.path());
    let key = platform.key(BotId(12), 1);
    let intent = BotRecord::intent(&key, dead_writer(), proc_table::boot_id(), 45_679);
    assert!(platform.state.create(&intent).unwrap());

    let deployed = platform.deploy_bot(&config(12), 1).await.unwrap();
    let status = platform.get_bot_status(&deployed.identifier).await.unwrap();
    assert_eq!(status.kind, StatusKind::Running);
    let record = platform.state.read(&key).unwrap().unwrap();
    assert_eq!(record.writer, proc_table::this_process());
    platform.stop_bot(&deployed.identifier).await.unwrap();
    platform.cleanup(&deployed.identifier).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_under_way_in_another_live_service_is_not_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let platform = platform(dir.path());
    let key = platform.key(BotId(13), 1);
    // Another live process (init stands in for it) wrote the intent.
    let other = proc_table::read_stat(1).unwrap().identity();
    let intent = BotRecord::intent(&key, other, proc_table::boot_id(), 45_680);
    assert!(platform.state.create(&intent).unwrap());

    let err = platform.deploy_bot(&config(13), 1).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.is_retryable());
    assert!(
        err.to_string()
            .contains("another meeboter-deploy process (pid 1)"),
        "{err}"
    );
    assert!(platform.live_processes().is_empty());
    assert_eq!(platform.state.read(&key).unwrap(), Some(intent));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_deploy_whose_bot_cannot_start_leaves_no_record() {
    let dir = tempfile::tempdir().unwrap();
    let platform = guarded("no-such-bot-program-4711", dir.path());
    let key = platform.key(BotId(16), 1);
    let intent = BotRecord::intent(&key, dead_writer(), proc_table::boot_id(), 45_682);
    assert!(platform.state.create(&intent).unwrap());
    let err = platform.deploy_bot(&config(16), 1).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert_eq!(platform.state.read(&key).unwrap(), None);
}

/// When the service runs as PID 1 of a container, bots of its previous
/// run become its children without a handle watching them: their exit
/// status is collected when their status is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adopted_bot_that_ended_is_collected_with_its_exit_status() {
    let dir = tempfile::tempdir().unwrap();
    let mut platform = platform(dir.path());
    let key = platform.key(BotId(14), 1);
    let process = spawn_marked(&mut platform, &key, 45_681);
    let record =
        BotRecord::intent(&key, dead_writer(), proc_table::boot_id(), 45_681).spawned(process);
    platform.state.replace(&record).unwrap();
    let id = LocalBotId {
        process,
        instance: key.clone(),
    }
    .to_platform_id();

    // Not collected by the std handle: a zombie child of this process.
    kill_into_a_zombie(&mut platform, process).await;
    let status = platform.get_bot_status(&id).await.unwrap();
    assert_eq!(status.kind, StatusKind::Failed, "{status}");
    assert_eq!(status.reason.as_deref(), Some("killed by SIGKILL"));
    assert_eq!(proc_table::liveness(process), Liveness::Gone, "collected");
    let recorded = platform.state.read(&key).unwrap().unwrap();
    assert!(recorded.exit.is_some());
    platform.cleanup(&id).await.unwrap();
    // The platform collected it, so its std handle finds nothing left.
    assert!(platform.spawned.pop().unwrap().wait().is_err());
}

/// Cleanup holds the bot's deploy lock while it collects an adopted
/// bot's exit status: recording that status must not take the lock again
/// (it once waited for ever here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_of_an_adopted_bot_that_ended_collects_it_and_returns() {
    let dir = tempfile::tempdir().unwrap();
    let mut platform = platform(dir.path());
    let key = platform.key(BotId(18), 1);
    let process = spawn_marked(&mut platform, &key, 45_685);
    let record =
        BotRecord::intent(&key, dead_writer(), proc_table::boot_id(), 45_685).spawned(process);
    platform.state.replace(&record).unwrap();
    let id = LocalBotId {
        process,
        instance: key.clone(),
    }
    .to_platform_id();

    kill_into_a_zombie(&mut platform, process).await;
    tokio::time::timeout(Duration::from_secs(20), platform.cleanup(&id))
        .await
        .expect("cleanup of an adopted zombie must not wait for ever")
        .unwrap();
    assert_eq!(proc_table::liveness(process), Liveness::Gone, "collected");
    assert_eq!(platform.state.read(&key).unwrap(), None);
    assert!(platform.spawned.pop().unwrap().wait().is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_deploy_of_a_bot_that_ended_returns_it_and_starts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let platform = guarded("sh -c 'sleep 0.3'", dir.path());
    let first = platform.deploy_bot(&config(15), 1).await.unwrap();
    let id = LocalBotId::parse(&first.identifier).unwrap();
    for _ in 0..500 {
        if !proc_table::liveness(id.process).holds_pid() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let again = platform.deploy_bot(&config(15), 1).await.unwrap();
    assert_eq!(again, first);
    assert!(platform.live_processes().is_empty(), "nothing new started");
    let status = platform.get_bot_status(&first.identifier).await.unwrap();
    assert_eq!(status.kind, StatusKind::Stopped, "{status}");
    platform.cleanup(&first.identifier).await.unwrap();
}

/// A bot deployed before installation ids existed: its identifier, record
/// and marker carry none. It keeps working through its identifier, and is
/// never listed as this (or any) installation's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_deployed_before_installation_ids_is_still_run_through_its_identifier() {
    let dir = tempfile::tempdir().unwrap();
    let mut platform = platform(dir.path());
    let key = InstanceKey::without_installation(BotId(17), 1);
    let process = spawn_marked(&mut platform, &key, 45_683);
    let record =
        BotRecord::intent(&key, dead_writer(), proc_table::boot_id(), 45_683).spawned(process);
    platform.state.replace(&record).unwrap();
    assert!(dir.path().join("state/bots/bot-17-attempt-1.json").exists());
    let id = LocalBotId {
        process,
        instance: key.clone(),
    }
    .to_platform_id();
    assert_eq!(
        id.as_str(),
        format!("{}:{}:17-1", process.pid, process.start_ticks)
    );

    let status = platform.get_bot_status(&id).await.unwrap();
    assert_eq!(status.kind, StatusKind::Running, "{status}");
    assert_eq!(
        status.connection_url.as_deref(),
        Some("http://127.0.0.1:45683")
    );
    assert!(platform.list_marked_bots().await.unwrap().is_empty());
    assert!(
        platform.live_processes().is_empty(),
        "not this installation's"
    );

    platform.stop_bot(&id).await.unwrap();
    platform.cleanup(&id).await.unwrap();
    assert_eq!(proc_table::liveness(process), Liveness::Gone);
    assert_eq!(platform.state.read(&key).unwrap(), None);
}

/// A deploy that crashed between spawn and record left an intent and a
/// running bot: the listing finds the bot by its marker, and the sweep's
/// stop and cleanup end it and remove the abandoned intent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bot_of_an_interrupted_deploy_is_listed_by_its_marker_and_swept() {
    let dir = tempfile::tempdir().unwrap();
    let mut platform = platform(dir.path());
    let key = platform.key(BotId(18), 3);
    let intent = BotRecord::intent(&key, dead_writer(), proc_table::boot_id(), 45_684);
    assert!(platform.state.create(&intent).unwrap());
    let orphan = spawn_marked(&mut platform, &key, 45_684);

    let listed = platform.list_marked_bots().await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!((listed[0].bot, listed[0].attempt), (BotId(18), Some(3)));
    let id = LocalBotId::parse(&listed[0].identifier).unwrap();
    assert_eq!(id.process, orphan);
    assert!(listed[0].description.contains("no record"), "{listed:?}");

    platform.stop_bot(&listed[0].identifier).await.unwrap();
    platform.cleanup(&listed[0].identifier).await.unwrap();
    assert!(!proc_table::liveness(orphan).is_alive());
    assert_eq!(
        platform.state.read(&key).unwrap(),
        None,
        "the intent is gone"
    );
    assert!(platform.list_marked_bots().await.unwrap().is_empty());
}
