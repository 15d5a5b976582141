//! The contract's conformance suite, run against the fake API server.

use platform_core::PlatformId;
use platform_core::testkit::{Fixtures, deploy_survives_transient_failure, run_suite};

use crate::support::{Cluster, quick_retries, zoom_bot};

#[tokio::test]
async fn the_conformance_suite_passes() {
    let cluster = Cluster::start().await;
    let platform = cluster.platform();
    let fixtures = Fixtures::new(PlatformId::new("bots/meeboter-0a1b2c3d4e5f6071-999999-1"));
    if let Err(violation) = run_suite(&platform, &fixtures).await {
        panic!("{violation}");
    }
    assert_eq!(
        cluster.api.pod_count(),
        0,
        "every pod the suite started is gone"
    );
}

#[tokio::test]
async fn a_deploy_survives_server_errors_and_throttling() {
    let cluster = Cluster::start().await;
    cluster.api.fail_next(
        2,
        "POST",
        "pods",
        503,
        "ServiceUnavailable",
        "etcdserver: leader changed",
    );
    cluster.api.fail_next_after(
        1,
        "POST",
        "pods",
        429,
        "TooManyRequests",
        "Too many requests, please try again later.",
        Some(1),
    );
    let platform = cluster.platform();
    if let Err(violation) =
        deploy_survives_transient_failure(&platform, &zoom_bot(7), &quick_retries()).await
    {
        panic!("{violation}");
    }
    assert_eq!(
        cluster.api.calls("POST pods"),
        4,
        "three failures, then the pod"
    );
}
