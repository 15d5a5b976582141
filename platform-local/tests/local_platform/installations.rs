//! Installations (databases) sharing one state directory never find, adopt,
//! stop or clean up each other's bots.

use platform_core::{PlatformId, PlatformService, StatusKind};
use platform_local::LocalBotId;

use crate::support::{KillAllOnDrop, TestBed, WELL_BEHAVED, bot, process_exists, records_of};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_installations_on_one_state_directory_each_run_and_stop_only_their_own_bot() {
    let bed = TestBed::new(WELL_BEHAVED);
    let ours = bed.platform.as_ref();
    let theirs = KillAllOnDrop(bed.other_installation());
    assert_eq!(ours.state_dir(), theirs.state_dir());

    // Both databases count from 1: bot 1, attempt 1, twice.
    let our_bot = ours.deploy_bot(&bot(1), 1).await.unwrap();
    let their_bot = theirs.deploy_bot(&bot(1), 1).await.unwrap();
    let our_pid = LocalBotId::parse(&our_bot.identifier).unwrap().pid();
    let their_pid = LocalBotId::parse(&their_bot.identifier).unwrap().pid();
    assert_ne!(our_pid, their_pid, "two processes, not one adopted twice");
    assert_ne!(our_bot.connection_url, their_bot.connection_url);
    assert!(process_exists(&our_bot.identifier));
    assert!(process_exists(&their_bot.identifier));
    // A repeated deploy finds each its own bot.
    assert_eq!(ours.deploy_bot(&bot(1), 1).await.unwrap(), our_bot);
    assert_eq!(theirs.deploy_bot(&bot(1), 1).await.unwrap(), their_bot);
    assert_eq!(records_of(ours).len(), 1);
    assert_eq!(records_of(&theirs).len(), 1);

    // Each lists and sees only its own.
    assert_eq!(
        listed(ours).await,
        std::slice::from_ref(&our_bot.identifier)
    );
    assert_eq!(
        listed(&*theirs).await,
        std::slice::from_ref(&their_bot.identifier)
    );
    assert!(
        ours.live_processes()
            .iter()
            .all(|p| p.process_group == our_pid)
    );
    assert!(
        theirs
            .live_processes()
            .iter()
            .all(|p| p.process_group == their_pid)
    );

    // Handed the other's identifier, neither touches it.
    let foreign = ours.get_bot_status(&their_bot.identifier).await.unwrap();
    assert_eq!(foreign.kind, StatusKind::Unknown, "{foreign}");
    assert!(
        foreign.reason.as_deref().unwrap().contains("installation"),
        "{foreign}"
    );
    ours.stop_bot(&their_bot.identifier).await.unwrap();
    ours.cleanup(&their_bot.identifier).await.unwrap();
    let still = theirs.get_bot_status(&their_bot.identifier).await.unwrap();
    assert_eq!(still.kind, StatusKind::Running, "{still}");
    assert_eq!(records_of(&theirs).len(), 1);

    // Each stops its own, and only its own.
    ours.stop_bot(&our_bot.identifier).await.unwrap();
    ours.cleanup(&our_bot.identifier).await.unwrap();
    assert!(!process_exists(&our_bot.identifier));
    assert!(ours.live_processes().is_empty());
    assert!(process_exists(&their_bot.identifier));
    assert_eq!(theirs.live_processes().len(), 2, "their bot and its child");
    theirs.stop_bot(&their_bot.identifier).await.unwrap();
    theirs.cleanup(&their_bot.identifier).await.unwrap();
    assert!(!process_exists(&their_bot.identifier));
    assert!(theirs.live_processes().is_empty());
    assert!(records_of(ours).is_empty());
    assert!(records_of(&theirs).is_empty());
}

async fn listed(platform: &dyn PlatformService) -> Vec<PlatformId> {
    let marked = platform.list_marked_bots().await.unwrap();
    marked.into_iter().map(|m| m.identifier).collect()
}
