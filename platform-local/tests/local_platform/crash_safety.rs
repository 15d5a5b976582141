//! A restarted service finds its bots; a deploy repeated after a crash
//! returns the bot already started.

use std::sync::Arc;

use platform_core::{PlatformService, StatusKind};
use platform_local::LocalBotId;

use crate::support::{SINGLE_PROCESS, TestBed, WELL_BEHAVED, bot, eventually, process_exists};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_repeated_after_a_restart_returns_the_running_bot() {
    let bed = TestBed::new(SINGLE_PROCESS);
    let first = {
        let before_crash = bed.restarted();
        before_crash.deploy_bot(&bot(42), 1).await.unwrap()
        // The service goes away; its bot keeps running.
    };
    assert!(process_exists(&first.identifier));

    let after_restart = bed.restarted();
    let again = after_restart.deploy_bot(&bot(42), 1).await.unwrap();
    assert_eq!(again, first);
    let processes = after_restart.live_processes();
    assert_eq!(processes.len(), 1, "{processes:?}");
    assert_eq!(
        processes[0].pid,
        LocalBotId::parse(&first.identifier).unwrap().pid()
    );

    let status = after_restart
        .get_bot_status(&first.identifier)
        .await
        .unwrap();
    assert_eq!(status.kind, StatusKind::Running, "{status}");
    assert_eq!(status.connection_url, first.connection_url);

    // The restarted service can stop and clean up what the old one started.
    after_restart.stop_bot(&first.identifier).await.unwrap();
    after_restart.cleanup(&first.identifier).await.unwrap();
    assert!(after_restart.live_processes().is_empty());
    let status = after_restart
        .get_bot_status(&first.identifier)
        .await
        .unwrap();
    assert_eq!(status.kind, StatusKind::Stopped, "{status}");
    assert!(bed.records().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deploys_of_one_bot_start_one_process() {
    let bed = TestBed::new(WELL_BEHAVED);
    let other_instance = Arc::new(bed.restarted());
    let mut deploys = tokio::task::JoinSet::new();
    for i in 0..6 {
        let platform: Arc<dyn PlatformService> = if i % 2 == 0 {
            bed.platform.clone()
        } else {
            other_instance.clone()
        };
        deploys.spawn(async move { platform.deploy_bot(&bot(9), 2).await.unwrap() });
    }
    let results = deploys.join_all().await;
    assert!(results.windows(2).all(|w| w[0] == w[1]), "{results:?}");
    let leaders: Vec<_> = bed
        .platform
        .live_processes()
        .into_iter()
        .filter(|p| p.pid == p.process_group)
        .collect();
    assert_eq!(leaders.len(), 1, "{leaders:?}");
    bed.platform.stop_bot(&results[0].identifier).await.unwrap();
    bed.platform.cleanup(&results[0].identifier).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_attempt_is_a_new_bot() {
    let bed = TestBed::new(SINGLE_PROCESS);
    let first = bed.platform.deploy_bot(&bot(3), 1).await.unwrap();
    bed.platform.stop_bot(&first.identifier).await.unwrap();
    bed.platform.cleanup(&first.identifier).await.unwrap();
    let second = bed.platform.deploy_bot(&bot(3), 2).await.unwrap();
    assert_ne!(first.identifier, second.identifier);
    assert!(process_exists(&second.identifier));
    bed.platform.stop_bot(&second.identifier).await.unwrap();
    bed.platform.cleanup(&second.identifier).await.unwrap();
}

/// A bot with a helper that left its process group (as a browser may), so
/// only the marker finds the helper.
const WITH_DETACHED_HELPER: &str =
    r#"sh -c 'setsid sleep 1000 & trap "exit 0" TERM; sleep 1000 & wait'"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_on_another_state_directory_still_stops_everything_the_bot_started() {
    let bed = TestBed::new(WITH_DETACHED_HELPER);
    let deployed = bed.platform.deploy_bot(&bot(21), 1).await.unwrap();
    eventually("the bot, its child and its helper run", || {
        bed.platform.live_processes().len() == 3
    })
    .await;

    let moved = bed.restarted_on_another_state_dir();
    moved.stop_bot(&deployed.identifier).await.unwrap();
    moved.cleanup(&deployed.identifier).await.unwrap();
    assert!(!process_exists(&deployed.identifier));
    let left = bed.platform.live_processes();
    assert!(left.is_empty(), "leaked: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_on_another_state_directory_finds_a_bot_whose_leader_has_ended() {
    // The leader ends and leaves its child running in its process group.
    let bed = TestBed::new("sh -c 'sleep 1000 & sleep 1'");
    let deployed = bed.platform.deploy_bot(&bot(22), 1).await.unwrap();
    eventually("the leader ends, its child runs on", || {
        !process_exists(&deployed.identifier) && bed.platform.live_processes().len() == 1
    })
    .await;

    let moved = bed.restarted_on_another_state_dir();
    moved.stop_bot(&deployed.identifier).await.unwrap();
    eventually("the child is stopped", || {
        bed.platform.live_processes().is_empty()
    })
    .await;
    moved.cleanup(&deployed.identifier).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_on_another_state_directory_cleans_up_without_a_stop() {
    let bed = TestBed::new(WITH_DETACHED_HELPER);
    let deployed = bed.platform.deploy_bot(&bot(23), 1).await.unwrap();
    eventually("the bot, its child and its helper run", || {
        bed.platform.live_processes().len() == 3
    })
    .await;

    let moved = bed.restarted_on_another_state_dir();
    moved.cleanup(&deployed.identifier).await.unwrap();
    let left = bed.platform.live_processes();
    assert!(left.is_empty(), "leaked: {left:?}");
}
