//! The core conformance suite against the platform built the way the
//! service builds it (from the environment, through the registry), backed by
//! the mini-ECS.

use std::sync::Arc;
use std::time::Duration;

use platform_aws::DESCRIPTOR;
use platform_core::testkit::{Fixtures, deploy_survives_transient_failure, run_suite};
use platform_core::{ErrorKind, InMemorySlotStore, PlatformContext, PlatformService, RetryPolicy};
use wiremock::MockServer;

use crate::support::mini_ecs::MiniEcs;
use crate::support::{INSTALLATION, bot, env, installation, platform, task_arn};

async fn built_from_env(server: &MockServer) -> Arc<dyn PlatformService> {
    let context = PlatformContext::new(
        Arc::new(env(&server.uri())),
        Arc::new(InMemorySlotStore::new()),
        installation(INSTALLATION),
    );
    (DESCRIPTOR.build)(context)
        .await
        .expect("the platform builds from a complete environment")
}

fn fixtures() -> Fixtures {
    let mut fixtures = Fixtures::new(task_arn(0xdead));
    fixtures.settle = Duration::from_secs(10);
    fixtures
}

#[tokio::test]
async fn the_conformance_suite_passes_and_leaves_no_task_running() {
    let server = MockServer::start().await;
    let ecs = MiniEcs::new();
    ecs.mount(&server).await;
    let aws = built_from_env(&server).await;

    if let Err(violation) = run_suite(aws.as_ref(), &fixtures()).await {
        panic!("{violation}");
    }

    assert_eq!(
        ecs.tasks_not_stopped(),
        Vec::<String>::new(),
        "tasks left running"
    );
    // Seven bots, one of them deployed twice with the same attempt.
    assert_eq!(ecs.tasks_started(), 7);
}

#[tokio::test]
async fn a_deploy_survives_transient_throttling_without_starting_twice() {
    let server = MockServer::start().await;
    let ecs = MiniEcs::new();
    ecs.mount(&server).await;
    ecs.fail_next_run_tasks(2, 400, "ThrottlingException", "Rate exceeded");
    // No retries inside the platform: the suite's own retry must see
    // retryable errors.
    let aws = platform(&server).with_retry_policy(RetryPolicy::no_retry());
    let policy = RetryPolicy {
        initial_backoff: Duration::from_millis(10),
        ..RetryPolicy::default()
    };

    if let Err(violation) = deploy_survives_transient_failure(
        &aws,
        &bot(31, platform_core::MeetingPlatform::Teams),
        &policy,
    )
    .await
    {
        panic!("{violation}");
    }

    assert_eq!(ecs.run_task_calls(), 3);
    assert_eq!(ecs.tasks_started(), 1);
    assert_eq!(ecs.tasks_not_stopped(), Vec::<String>::new());
}

#[tokio::test]
async fn a_deploy_survives_a_server_error() {
    let server = MockServer::start().await;
    let ecs = MiniEcs::new();
    ecs.mount(&server).await;
    ecs.fail_next_run_tasks(1, 500, "ServerException", "Service error");
    let aws = platform(&server).with_retry_policy(RetryPolicy::no_retry());
    let policy = RetryPolicy {
        initial_backoff: Duration::from_millis(10),
        ..RetryPolicy::default()
    };
    if let Err(violation) = deploy_survives_transient_failure(
        &aws,
        &bot(32, platform_core::MeetingPlatform::Zoom),
        &policy,
    )
    .await
    {
        panic!("{violation}");
    }
    assert_eq!(ecs.tasks_started(), 1);
}

#[tokio::test]
async fn reachability_is_one_cluster_read() {
    let server = MockServer::start().await;
    MiniEcs::new().mount(&server).await;
    built_from_env(&server)
        .await
        .check_reachable()
        .await
        .unwrap();

    let other = env(&server.uri()).with("ECS_CLUSTER", "nope");
    let context = PlatformContext::new(
        Arc::new(other),
        Arc::new(InMemorySlotStore::new()),
        installation(INSTALLATION),
    );
    let aws = (DESCRIPTOR.build)(context).await.unwrap();
    let error = aws.check_reachable().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
    assert!(error.to_string().contains("cluster nope"), "{error}");
}
