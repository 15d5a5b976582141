//! Stop and cleanup: StopTask, idempotent, never swallowing real failures.

use std::sync::Arc;
use std::time::Duration;

use platform_aws::{AwsEcsPlatform, EcsRateLimits};
use platform_core::{ErrorKind, PlatformId, PlatformService, RetryPolicy};
use serde_json::{Value, json};
use wiremock::{MockServer, Request};

use crate::support::mini_ecs::MiniEcs;
use crate::support::{self, ecs_call, ecs_error, ecs_ok, platform, task_arn, task_json};

#[tokio::test]
async fn stop_sends_the_task_its_cluster_and_a_reason() {
    let server = MockServer::start().await;
    let arn = task_arn(1);
    let expected = arn.clone();
    ecs_call("StopTask")
        .and(move |request: &Request| {
            let body: Value = request.body_json().unwrap();
            body["cluster"] == "meeboter"
                && body["task"] == expected.as_str()
                && body["reason"] == "Stopped by meeboter-deploy: the bot was asked to stop"
        })
        .respond_with(ecs_ok(
            json!({"task": task_json(&arn, "RUNNING", Some("10.0.0.5"))}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    platform(&server)
        .stop_bot(&PlatformId::new(arn))
        .await
        .unwrap();
}

#[tokio::test]
async fn stopping_a_task_ecs_does_not_know_succeeds() {
    let server = MockServer::start().await;
    ecs_call("StopTask")
        .respond_with(ecs_error(
            400,
            "InvalidParameterException",
            "The referenced task was not found.",
        ))
        .expect(1)
        .mount(&server)
        .await;
    platform(&server)
        .stop_bot(&PlatformId::new(task_arn(404)))
        .await
        .unwrap();
}

#[tokio::test]
async fn stop_never_swallows_refused_credentials_or_throttling() {
    let server = MockServer::start().await;
    ecs_call("StopTask")
        .respond_with(ecs_error(
            400,
            "AccessDeniedException",
            "User is not authorized to perform: ecs:StopTask",
        ))
        .expect(1)
        .mount(&server)
        .await;
    let error = platform(&server)
        .stop_bot(&PlatformId::new(task_arn(1)))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unauthorized);

    let server = MockServer::start().await;
    ecs_call("StopTask")
        .respond_with(ecs_error(400, "ThrottlingException", "Rate exceeded"))
        .expect(1)
        .mount(&server)
        .await;
    let error = platform(&server)
        .with_retry_policy(RetryPolicy::no_retry())
        .stop_bot(&PlatformId::new(task_arn(1)))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Throttled);
    assert!(error.is_retryable());
}

#[tokio::test]
async fn a_task_in_another_region_is_never_reported_as_stopped() {
    let server = MockServer::start().await;
    ecs_call("StopTask")
        .respond_with(ecs_ok(json!({})))
        .expect(0)
        .mount(&server)
        .await;
    let elsewhere = PlatformId::new(
        "arn:aws:ecs:us-east-1:123456789012:task/meeboter/0123456789abcdef0123456789abcdef",
    );
    let error = platform(&server).stop_bot(&elsewhere).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Rejected);
    assert!(error.to_string().contains("us-east-1"), "{error}");
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn an_identifier_that_is_not_a_task_has_nothing_to_stop() {
    let server = MockServer::start().await;
    ecs_call("StopTask")
        .respond_with(ecs_ok(json!({})))
        .expect(0)
        .mount(&server)
        .await;
    ecs_call("DescribeTasks")
        .respond_with(ecs_ok(json!({})))
        .expect(0)
        .mount(&server)
        .await;
    let foreign = PlatformId::new("c4k8g0s0w8o4gk4oc0kw8gsc");
    let aws = platform(&server);
    aws.stop_bot(&foreign).await.unwrap();
    aws.cleanup(&foreign).await.unwrap();
}

#[tokio::test]
async fn cleanup_of_a_stopped_task_only_looks() {
    let server = MockServer::start().await;
    let arn = task_arn(2);
    ecs_call("DescribeTasks")
        .respond_with(ecs_ok(json!({"tasks": [task_json(&arn, "STOPPED", None)]})))
        .expect(1)
        .mount(&server)
        .await;
    ecs_call("StopTask")
        .respond_with(ecs_ok(json!({})))
        .expect(0)
        .mount(&server)
        .await;
    platform(&server)
        .cleanup(&PlatformId::new(arn))
        .await
        .unwrap();
}

#[tokio::test]
async fn cleanup_stops_a_task_that_is_still_running() {
    let server = MockServer::start().await;
    let arn = task_arn(3);
    ecs_call("DescribeTasks")
        .respond_with(ecs_ok(
            json!({"tasks": [task_json(&arn, "RUNNING", Some("10.0.0.3"))]}),
        ))
        .up_to_n_times(1)
        .expect(1)
        .with_priority(1)
        .mount(&server)
        .await;
    // Then stopped, which the teardown waits for.
    ecs_call("DescribeTasks")
        .respond_with(ecs_ok(json!({"tasks": [task_json(&arn, "STOPPED", None)]})))
        .expect(1)
        .with_priority(2)
        .mount(&server)
        .await;
    ecs_call("StopTask")
        .and(|request: &Request| {
            let body: Value = request.body_json().unwrap();
            body["reason"] == "Stopped by meeboter-deploy: cleanup after the bot ended"
        })
        .respond_with(ecs_ok(
            json!({"task": task_json(&arn, "RUNNING", Some("10.0.0.3"))}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    platform(&server)
        .cleanup(&PlatformId::new(arn))
        .await
        .unwrap();
}

#[tokio::test]
async fn cleanup_stops_a_task_ecs_does_not_list_yet() {
    // Right after RunTask a task can be MISSING from DescribeTasks; cleanup
    // must not take that as "gone" and leave it running.
    let server = MockServer::start().await;
    let arn = task_arn(4);
    ecs_call("DescribeTasks")
        .respond_with(ecs_ok(
            json!({"tasks": [], "failures": [{"arn": arn, "reason": "MISSING"}]}),
        ))
        .up_to_n_times(1)
        .expect(1)
        .with_priority(1)
        .mount(&server)
        .await;
    ecs_call("DescribeTasks")
        .respond_with(ecs_ok(json!({"tasks": [task_json(&arn, "STOPPED", None)]})))
        .expect(1)
        .with_priority(2)
        .mount(&server)
        .await;
    ecs_call("StopTask")
        .respond_with(ecs_ok(
            json!({"task": task_json(&arn, "PROVISIONING", None)}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    platform(&server)
        .cleanup(&PlatformId::new(arn))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_task_of_a_deleted_cluster_has_nothing_to_stop_but_a_missing_configured_cluster_is_an_error()
 {
    let server = MockServer::start().await;
    ecs_call("StopTask")
        .respond_with(ecs_error(
            400,
            "ClusterNotFoundException",
            "Cluster not found.",
        ))
        .expect(2)
        .mount(&server)
        .await;
    let aws = platform(&server);
    let old = PlatformId::new(
        "arn:aws:ecs:eu-west-1:123456789012:task/deleted-bots/0123456789abcdef0123456789abcdef",
    );
    aws.stop_bot(&old).await.unwrap();
    let error = aws
        .stop_bot(&PlatformId::new(task_arn(1)))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
    assert!(
        error
            .to_string()
            .contains("check ECS_CLUSTER and AWS_REGION"),
        "{error}"
    );
}

/// Stops `count` tasks of `aws` at once the way the service does (StopTask,
/// then the teardown's confirmation), each within a minute.
async fn stop_all(
    aws: &Arc<AwsEcsPlatform>,
    arns: &[String],
) -> Vec<Result<(), platform_core::Error>> {
    let stops: Vec<_> = arns
        .iter()
        .map(|arn| {
            let aws = aws.clone();
            let id = PlatformId::new(arn.clone());
            tokio::spawn(async move {
                aws.stop_bot(&id).await?;
                aws.cleanup(&id).await
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for stop in stops {
        outcomes.push(
            tokio::time::timeout(Duration::from_secs(60), stop)
                .await
                .expect("a stop ends within a minute")
                .unwrap(),
        );
    }
    outcomes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_stops_cost_a_hundred_stop_tasks_and_a_few_reads() {
    let server = MockServer::start().await;
    let ecs = MiniEcs::new();
    ecs.enforce_limits(EcsRateLimits::DOCUMENTED);
    ecs.mount(&server).await;
    // Every task stays STOPPING for one look after its StopTask: it must be
    // looked at again, not reported stopped.
    ecs.stay_stopping_for(1);
    let arns: Vec<String> = (0..100)
        .map(|_| ecs.start_task_directly("meeboter-deploy", &[]))
        .collect();
    let env = support::env(&server.uri()).with("ECS_API_RATE_PERCENT", "100");
    // The subject is the calls, not the wait: room for a loaded machine.
    let aws = Arc::new(
        support::platform_with(&server, &env).with_stop_confirmation_wait(Duration::from_secs(60)),
    );

    let outcomes = stop_all(&aws, &arns).await;

    for outcome in &outcomes {
        assert!(outcome.is_ok(), "{outcome:?}");
    }
    assert!(
        ecs.tasks_not_stopped().is_empty(),
        "every stop confirmed was STOPPED"
    );
    let counts = ecs.counts();
    assert_eq!(counts.stop_task, 100, "{counts:?}");
    assert_eq!(counts.throttled, 0, "{counts:?}");
    // One look finds them STOPPING, a second one STOPPED: two rounds of
    // batched reads, a round perhaps split in two or three by stops that
    // came in late.
    assert!(counts.describe_tasks >= 2, "{counts:?}");
    assert!(counts.describe_tasks <= 8, "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_does_not_reach_stopped_is_not_reported_stopped() {
    let server = MockServer::start().await;
    let ecs = MiniEcs::new();
    ecs.mount(&server).await;
    ecs.stay_stopping_for(u32::MAX);
    let arns: Vec<String> = (0..3)
        .map(|_| ecs.start_task_directly("meeboter-deploy", &[]))
        .collect();
    let aws = Arc::new(platform(&server).with_stop_confirmation_wait(Duration::from_secs(2)));

    let outcomes = stop_all(&aws, &arns).await;

    for outcome in outcomes {
        let error = outcome.expect_err("a task still STOPPING is not confirmed stopped");
        assert!(error.is_retryable(), "{error}");
        assert!(error.to_string().contains("STOPPING"), "{error}");
    }
    let counts = ecs.counts();
    assert_eq!(counts.stop_task, 3, "{counts:?}");
    // Looked at more than once, together.
    assert!(counts.describe_tasks >= 2, "{counts:?}");
    assert!(counts.describe_tasks <= 6, "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_task_torn_down_twice_at_once_is_confirmed_to_both_with_one_stop_task() {
    let server = MockServer::start().await;
    let ecs = MiniEcs::new();
    ecs.mount(&server).await;
    let arn = ecs.start_task_directly("meeboter-deploy", &[]);
    ecs.stay_stopping_for(1);
    let aws = Arc::new(platform(&server).with_stop_confirmation_wait(Duration::from_secs(60)));
    // A stop and a reconciler's cleanup of the same task, side by side:
    // their looks share a batch that names the task once.
    let id = PlatformId::new(arn.clone());
    aws.stop_bot(&id).await.unwrap();
    let (a, b) = tokio::join!(aws.cleanup(&id), aws.cleanup(&id));
    assert!(a.is_ok() && b.is_ok(), "{a:?} {b:?}");
    let counts = ecs.counts();
    assert_eq!(counts.stop_task, 1, "ECS already stopped it: {counts:?}");
    assert!(ecs.tasks_not_stopped().is_empty());
}
