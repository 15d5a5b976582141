//! `list_marked_bots`: what runs or is held under this installation's mark,
//! and what the orphan sweep (`stop_bot`, then `cleanup`, on each) frees.

use platform_core::{BotId, MarkedBot, PlatformId, PlatformService};
use platform_local::LocalBotId;

use crate::support::{
    KillAllOnDrop, SINGLE_PROCESS, TestBed, bot, eventually, process_exists, records_of,
};

async fn marked(platform: &dyn PlatformService) -> Vec<MarkedBot> {
    platform.list_marked_bots().await.unwrap()
}

async fn sweep(platform: &dyn PlatformService, identifier: &PlatformId) {
    platform.stop_bot(identifier).await.unwrap();
    platform.cleanup(identifier).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_bots_are_listed_with_bot_and_attempt_until_cleaned_up() {
    let bed = TestBed::new(SINGLE_PROCESS);
    let first = bed.platform.deploy_bot(&bot(4), 2).await.unwrap();
    let second = bed.platform.deploy_bot(&bot(5), 1).await.unwrap();
    let listed = marked(bed.platform.as_ref()).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0].identifier, first.identifier);
    assert_eq!((listed[0].bot, listed[0].attempt), (BotId(4), Some(2)));
    assert_eq!(listed[1].identifier, second.identifier);
    assert_eq!((listed[1].bot, listed[1].attempt), (BotId(5), Some(1)));
    assert!(
        listed[0].description.contains("running")
            && listed[0].description.contains("bot-4-attempt-2.json"),
        "{}",
        listed[0].description
    );
    // A restarted service lists the same.
    assert_eq!(marked(&bed.restarted()).await, listed);

    sweep(bed.platform.as_ref(), &first.identifier).await;
    let listed = marked(bed.platform.as_ref()).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].identifier, second.identifier);
    sweep(bed.platform.as_ref(), &second.identifier).await;
    assert!(marked(bed.platform.as_ref()).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_that_ended_is_listed_until_its_record_is_cleaned_up() {
    let bed = TestBed::new("sh -c 'sleep 1'");
    let deployed = bed.platform.deploy_bot(&bot(6), 1).await.unwrap();
    eventually("the bot ends", || !process_exists(&deployed.identifier)).await;
    let listed = marked(bed.platform.as_ref()).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].identifier, deployed.identifier);
    assert!(listed[0].description.contains("ended"), "{listed:?}");
    sweep(bed.platform.as_ref(), &deployed.identifier).await;
    assert!(marked(bed.platform.as_ref()).await.is_empty());
    assert!(bed.records().is_empty());
}

/// The orphans a changed `LOCAL_STATE_DIR` leaves: bots with no record on
/// the new state directory, found by their marker, one of which has a
/// helper outside its group and one whose leader has ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bots_started_from_another_state_directory_are_listed_by_their_marker_and_swept() {
    let bed = TestBed::new(
        r#"sh -c 'if [ "$BOT_ID" = 8 ]; then sleep 1000 & sleep 1; exit 0; fi; setsid sleep 1000 & trap "exit 0" TERM; sleep 1000 & wait'"#,
    );
    let with_helper = bed.platform.deploy_bot(&bot(7), 1).await.unwrap();
    let leader_ends = bed.platform.deploy_bot(&bot(8), 1).await.unwrap();
    eventually("bot 7 (3 processes) and what bot 8 left (1) run", || {
        !process_exists(&leader_ends.identifier) && bed.platform.live_processes().len() == 4
    })
    .await;

    let moved = KillAllOnDrop(bed.restarted_on_another_state_dir());
    assert!(records_of(&moved).is_empty());
    let listed = marked(&*moved).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!((listed[0].bot, listed[0].attempt), (BotId(7), Some(1)));
    assert_eq!(
        listed[0].identifier, with_helper.identifier,
        "a bot is listed under its own process"
    );
    assert!(
        listed[0].description.contains("2 more processes")
            && listed[0].description.contains("no record"),
        "{}",
        listed[0].description
    );
    assert_eq!((listed[1].bot, listed[1].attempt), (BotId(8), Some(1)));
    let left = LocalBotId::parse(&listed[1].identifier).unwrap();
    assert_ne!(
        left.pid(),
        LocalBotId::parse(&leader_ends.identifier).unwrap().pid()
    );
    // Another installation on either directory lists none of them.
    let theirs = bed.other_installation();
    assert!(marked(&theirs).await.is_empty());

    for orphan in &listed {
        sweep(&*moved, &orphan.identifier).await;
    }
    let left = bed.platform.live_processes();
    assert!(left.is_empty(), "leaked: {left:?}");
    assert!(marked(&*moved).await.is_empty());
}
