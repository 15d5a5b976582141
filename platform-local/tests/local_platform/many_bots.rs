//! Fifty bots at once: all running, one batch status, all stopped, and no
//! process left in the OS process table.

use std::collections::HashSet;
use std::sync::Arc;

use platform_core::{PlatformId, PlatformService, StatusKind};
use platform_local::LocalBotId;

use crate::support::{TestBed, WELL_BEHAVED, bot, process_exists, stat_fields};

const BOTS: u64 = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_bots_run_report_in_one_call_and_leave_nothing_behind() {
    let bed = TestBed::new(WELL_BEHAVED);
    let platform: Arc<dyn PlatformService> = bed.platform.clone();

    let mut deploys = tokio::task::JoinSet::new();
    for bot_id in 1..=BOTS {
        let platform = platform.clone();
        deploys.spawn(async move { platform.deploy_bot(&bot(bot_id), 1).await.unwrap() });
    }
    let deployed = deploys.join_all().await;
    let ids: Vec<PlatformId> = deployed.iter().map(|d| d.identifier.clone()).collect();
    let distinct: HashSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len());
    let ports: HashSet<_> = deployed.iter().map(|d| d.connection_url.clone()).collect();
    assert_eq!(ports.len(), ids.len(), "every bot has its own port");

    let statuses = platform.get_bot_statuses(&ids).await.unwrap();
    assert_eq!(statuses.len(), ids.len());
    for id in &ids {
        let status = &statuses[id];
        assert_eq!(status.kind, StatusKind::Running, "{id}: {status}");
        assert!(status.connection_url.is_some());
    }

    let mut stops = tokio::task::JoinSet::new();
    for id in ids.clone() {
        let platform = platform.clone();
        stops.spawn(async move {
            platform.stop_bot(&id).await.unwrap();
            platform.cleanup(&id).await.unwrap();
        });
    }
    stops.join_all().await;

    let statuses = platform.get_bot_statuses(&ids).await.unwrap();
    assert!(
        statuses.values().all(|s| s.kind == StatusKind::Stopped),
        "{statuses:?}"
    );
    // The OS process table: none of the bots exists any more, not even as
    // a zombie, and no process carries this state directory's marker (the
    // bots' `sleep` children included).
    for id in &ids {
        assert!(!process_exists(id), "{id} is still in /proc");
    }
    assert!(bed.platform.live_processes().is_empty());
    let our_children_pids: HashSet<u32> = ids
        .iter()
        .map(|id| LocalBotId::parse(id).unwrap().pid())
        .collect();
    let zombies = zombie_children_of_this_process();
    assert!(
        zombies.is_disjoint(&our_children_pids),
        "zombies left: {zombies:?}"
    );
    assert!(bed.records().is_empty());
}

fn zombie_children_of_this_process() -> HashSet<u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Some(fields) = stat_fields(*pid) else {
                return false;
            };
            fields.first().map(String::as_str) == Some("Z")
                && fields.get(1) == Some(&me.to_string())
        })
        .collect()
}
