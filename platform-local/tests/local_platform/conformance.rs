//! The platform contract's conformance suite, on real child processes.

use std::time::Duration;

use platform_core::testkit::{deploy_survives_transient_failure, run_suite};
use platform_core::{PlatformService, RetryPolicy, StatusKind};

use crate::support::{TestBed, WELL_BEHAVED, bot};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_passes_on_real_processes() {
    let bed = TestBed::new(WELL_BEHAVED);
    run_suite(bed.platform.as_ref(), &bed.fixtures())
        .await
        .unwrap();
    assert!(bed.platform.live_processes().is_empty());
    assert!(bed.records().is_empty(), "{:?}", bed.records());
}

/// The honest transient failure of a local host is a full one: with
/// `LOCAL_MAX_BOTS=1` and a bot that ends on its own shortly, a deploy is
/// refused with a retryable capacity error until the running bot ends, and
/// the retry policy carries it through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_rides_out_a_full_host() {
    let command = r#"sh -c 'if [ "$BOT_ID" = 1 ]; then sleep 0.5; exit 0; fi; trap "exit 0" TERM; sleep 1000 & wait'"#;
    let bed = TestBed::with(command, |config| config.with_max_bots(Some(1)));
    let platform = bed.platform.as_ref();
    let occupant = platform.deploy_bot(&bot(1), 1).await.unwrap();

    let refused = platform.deploy_bot(&bot(2), 1).await.unwrap_err();
    assert!(refused.is_retryable(), "{refused}");
    assert!(refused.to_string().contains("LOCAL_MAX_BOTS"), "{refused}");

    let policy = RetryPolicy {
        max_attempts: 10,
        initial_backoff: Duration::from_millis(100),
        budget: Duration::from_secs(30),
        ..RetryPolicy::default()
    };
    deploy_survives_transient_failure(platform, &bot(2), &policy)
        .await
        .unwrap();

    let ended = platform.get_bot_status(&occupant.identifier).await.unwrap();
    assert_eq!(ended.kind, StatusKind::Stopped, "{ended}");
    platform.cleanup(&occupant.identifier).await.unwrap();
    assert!(platform.live_processes().is_empty());
}
