//! Throttling: retried with backoff, and avoided in the first place by the
//! pacer.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use platform_core::{Error, ErrorKind, MeetingPlatform, PlatformService, RetryPolicy};
use serde_json::json;
use wiremock::{MockServer, Request, Respond, ResponseTemplate};

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

/// RunTask as ECS meters it on Fargate, at its strictest: more than 20 calls
/// within any one second are answered with `ThrottlingException`.
#[derive(Clone, Default)]
struct FargateRunTaskLimit(Arc<LimitState>);

#[derive(Default)]
struct LimitState {
    arrivals: Mutex<VecDeque<Instant>>,
    throttled: AtomicU32,
    started: AtomicU64,
}

impl Respond for FargateRunTaskLimit {
    fn respond(&self, _request: &Request) -> ResponseTemplate {
        let now = Instant::now();
        let mut arrivals = self.0.arrivals.lock().unwrap();
        while arrivals
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
        {
            arrivals.pop_front();
        }
        arrivals.push_back(now);
        if arrivals.len() > 20 {
            self.0.throttled.fetch_add(1, Ordering::SeqCst);
            return ecs_error(400, "ThrottlingException", "Rate exceeded");
        }
        let n = self.0.started.fetch_add(1, Ordering::SeqCst) + 1;
        ecs_ok(json!({"tasks": [task_json(&task_arn(n), "PROVISIONING", None)], "failures": []}))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_300_deploys_queues_under_the_fargate_limit_and_all_succeed() {
    let server = MockServer::start().await;
    let limit = FargateRunTaskLimit::default();
    ecs_call("RunTask")
        .respond_with(limit.clone())
        .expect(300..=303)
        .mount(&server)
        .await;
    // The production retry policy: the pacer, not retries, must carry this.
    let aws = Arc::new(platform(&server).with_retry_policy(RetryPolicy::default()));

    let deploys: Vec<_> = (1..=300u64)
        .map(|id| {
            let aws = aws.clone();
            tokio::spawn(async move { aws.deploy_bot(&bot(id, MeetingPlatform::Zoom), 1).await })
        })
        .collect();
    let mut identifiers = HashSet::new();
    for deploy in deploys {
        let deployed = deploy
            .await
            .unwrap()
            .expect("every deploy of the burst succeeds");
        identifiers.insert(deployed.identifier);
    }

    assert_eq!(identifiers.len(), 300, "one task per bot");
    assert_eq!(limit.0.started.load(Ordering::SeqCst), 300);
    let throttled = limit.0.throttled.load(Ordering::SeqCst);
    assert!(
        throttled <= 3,
        "the mock throttled {throttled} RunTask calls"
    );
}
