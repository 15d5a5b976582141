//! Throttling: retried with backoff, and avoided in the first place by the
//! pacer.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use platform_aws::{EcsBucket, EcsRateLimits};
use platform_core::{Error, ErrorKind, MeetingPlatform, PlatformService, RetryPolicy};
use serde_json::json;
use wiremock::MockServer;

use crate::support::mini_ecs::MiniEcs;
use crate::support::{bot, ecs_call, ecs_error, ecs_ok, platform, task_arn, task_json};

#[tokio::test]
async fn throttled_twice_then_the_launch_succeeds() {
    let server = MockServer::start().await;
    ecs_call("RunTask")
        .respond_with(ecs_error(400, "ThrottlingException", "Rate exceeded"))
        .up_to_n_times(2)
        .expect(2)
        .with_priority(1)
        .mount(&server)
        .await;
    ecs_call("RunTask")
        .respond_with(ecs_ok(
            json!({"tasks": [task_json(&task_arn(1), "PROVISIONING", None)]}),
        ))
        .expect(1)
        .with_priority(2)
        .mount(&server)
        .await;
    let deployed = platform(&server)
        .deploy_bot(&bot(1, MeetingPlatform::Zoom), 1)
        .await
        .unwrap();
    assert_eq!(deployed.identifier.as_str(), task_arn(1));
}

#[tokio::test]
async fn a_rate_exceeded_message_inside_invalid_parameter_is_throttling() {
    let server = MockServer::start().await;
    ecs_call("DescribeTasks")
        .respond_with(ecs_error(400, "InvalidParameterException", "Rate exceeded"))
        .up_to_n_times(1)
        .expect(1)
        .with_priority(1)
        .mount(&server)
        .await;
    ecs_call("DescribeTasks")
        .respond_with(ecs_ok(
            json!({"tasks": [task_json(&task_arn(2), "RUNNING", None)]}),
        ))
        .expect(1)
        .with_priority(2)
        .mount(&server)
        .await;
    let status = platform(&server)
        .get_bot_status(&platform_core::PlatformId::new(task_arn(2)))
        .await
        .unwrap();
    assert_eq!(status.kind, platform_core::StatusKind::Running);
}

#[tokio::test]
async fn persistent_throttling_gives_up_saying_how_many_requests_were_sent() {
    let server = MockServer::start().await;
    // The SDK's own retries are off: five attempts are five requests.
    ecs_call("StopTask")
        .respond_with(ecs_error(400, "ThrottlingException", "Rate exceeded"))
        .expect(5)
        .mount(&server)
        .await;
    let error = platform(&server)
        .stop_bot(&platform_core::PlatformId::new(task_arn(3)))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Throttled);
    assert!(error.is_retryable());
    let Error::RetriesExhausted { attempts, .. } = &error else {
        panic!("expected RetriesExhausted, got {error:?}");
    };
    assert_eq!(*attempts, 5);
    assert!(error.to_string().contains("after 5 attempts"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_300_deploys_spends_the_launch_bucket_and_is_never_throttled() {
    let server = MockServer::start().await;
    let ecs = MiniEcs::new();
    // ECS's documented buckets: launches 100, refilled at 20 a second.
    ecs.enforce_limits(EcsRateLimits::DOCUMENTED);
    ecs.mount(&server).await;
    // The production retry policy and rate share (80 %: a burst of 80,
    // then 16 a second).
    let aws = Arc::new(platform(&server).with_retry_policy(RetryPolicy::default()));

    let deploys: Vec<_> = (1..=300u64)
        .map(|id| {
            let aws = aws.clone();
            tokio::spawn(async move { aws.deploy_bot(&bot(id, MeetingPlatform::Zoom), 1).await })
        })
        .collect();
    let mut identifiers = HashSet::new();
    for deploy in deploys {
        let deployed = tokio::time::timeout(Duration::from_secs(120), deploy)
            .await
            .expect("the burst ends within two minutes")
            .unwrap()
            .expect("every deploy of the burst succeeds");
        identifiers.insert(deployed.identifier);
    }

    assert_eq!(identifiers.len(), 300, "one task per bot");
    let counts = ecs.counts();
    assert_eq!(counts.throttled, 0, "{counts:?}");
    assert_eq!(counts.run_task, 300, "one RunTask per bot: {counts:?}");
    assert_eq!(ecs.tasks_started(), 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploys_throttled_by_another_caller_slow_down_and_all_succeed() {
    let server = MockServer::start().await;
    let ecs = MiniEcs::new();
    // A small launch bucket (10, 20 a second) that another caller in the
    // account has just emptied: our pacer's bucket believes it is full.
    ecs.enforce_limits(EcsRateLimits {
        launches: EcsBucket {
            burst: 10.0,
            per_second: 20.0,
        },
        ..EcsRateLimits::DOCUMENTED
    });
    ecs.mount(&server).await;
    let aws = Arc::new(
        platform(&server)
            .with_retry_policy(RetryPolicy::default())
            .with_rate_limits(EcsRateLimits {
                launches: EcsBucket {
                    burst: 10.0,
                    per_second: 20.0,
                },
                ..EcsRateLimits::DOCUMENTED
            }),
    );
    let other = platform(&server).with_retry_policy(RetryPolicy::no_retry());
    for id in 1000..1010u64 {
        other
            .deploy_bot(&bot(id, MeetingPlatform::Zoom), 1)
            .await
            .expect("the other caller's launches fit the bucket");
    }

    let deploys: Vec<_> = (1..=40u64)
        .map(|id| {
            let aws = aws.clone();
            tokio::spawn(async move { aws.deploy_bot(&bot(id, MeetingPlatform::Zoom), 1).await })
        })
        .collect();
    for deploy in deploys {
        tokio::time::timeout(Duration::from_secs(60), deploy)
            .await
            .expect("the deploys end within a minute")
            .unwrap()
            .expect("every deploy succeeds after the back-off");
    }
    let counts = ecs.counts();
    // Some of our burst ran into the emptied bucket; the back-off kept it
    // to a handful rather than one per deploy.
    assert!(counts.throttled >= 1, "{counts:?}");
    assert!(counts.throttled <= 16, "{counts:?}");
    assert_eq!(ecs.tasks_started(), 50);
}
