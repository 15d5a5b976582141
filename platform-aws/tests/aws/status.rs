//! Status: DescribeTasks in batches, and what each answer means.

use std::sync::{Arc, Mutex};

use platform_core::{ErrorKind, PlatformId, PlatformService, StatusKind};
use serde_json::{Value, json};
use wiremock::{MockServer, Request, Respond, ResponseTemplate};

use crate::support::{ecs_call, ecs_error, ecs_ok, platform, task_arn, task_json};

/// Answers DescribeTasks with a RUNNING task for every ARN asked about, and
/// records how many each call asked about.
#[derive(Clone, Default)]
struct EveryTaskRunning {
    batch_sizes: Arc<Mutex<Vec<usize>>>,
}

impl Respond for EveryTaskRunning {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = request.body_json().unwrap();
        let asked: Vec<&str> = body["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        self.batch_sizes.lock().unwrap().push(asked.len());
        if asked.len() > 100 {
            return ecs_error(
                400,
                "InvalidParameterException",
                "Tasks cannot be more than 100.",
            );
        }
        let tasks: Vec<Value> = asked
            .iter()
            .map(|arn| task_json(arn, "RUNNING", Some("10.0.0.9")))
            .collect();
        ecs_ok(json!({"tasks": tasks, "failures": []}))
    }
}

#[tokio::test]
async fn statuses_of_250_bots_take_exactly_three_describe_calls() {
    let server = MockServer::start().await;
    let responder = EveryTaskRunning::default();
    ecs_call("DescribeTasks")
        .and(|request: &Request| {
            let body: Value = request.body_json().unwrap();
            body["cluster"] == "meeboter"
        })
        .respond_with(responder.clone())
        .expect(3)
        .mount(&server)
        .await;
    let ids: Vec<PlatformId> = (1..=250).map(|n| PlatformId::new(task_arn(n))).collect();

    let statuses = platform(&server).get_bot_statuses(&ids).await.unwrap();

    assert_eq!(statuses.len(), 250);
    assert!(
        ids.iter()
            .all(|id| statuses[id].kind == StatusKind::Running)
    );
    let mut sizes = responder.batch_sizes.lock().unwrap().clone();
    sizes.sort_unstable();
    assert_eq!(sizes, [50, 100, 100]);
}

#[tokio::test]
async fn missing_pending_running_and_stopped_tasks_map_to_their_statuses() {
    let server = MockServer::start().await;
    let (missing, pending, running, stopped) = (task_arn(1), task_arn(2), task_arn(3), task_arn(4));
    let mut failed_to_start = task_json(&stopped, "STOPPED", None);
    failed_to_start["stopCode"] = json!("TaskFailedToStart");
    failed_to_start["stoppedReason"] =
        json!("CannotPullContainerError: pull image manifest has been retried 5 time(s)");
    failed_to_start["containers"][0]["reason"] =
        json!("CannotPullContainerError: ghcr.io/meeboter/zoom-bot:1.8.0: not found");
    ecs_call("DescribeTasks")
        .respond_with(ecs_ok(json!({
            "tasks": [
                task_json(&pending, "PENDING", Some("10.0.1.17")),
                task_json(&running, "RUNNING", Some("10.0.1.23")),
                failed_to_start
            ],
            "failures": [{"arn": missing, "reason": "MISSING"}]
        })))
        .expect(1)
        .mount(&server)
        .await;
    let ids: Vec<PlatformId> = [&missing, &pending, &running, &stopped]
        .map(|arn| PlatformId::new(arn.as_str()))
        .to_vec();

    let statuses = platform(&server).get_bot_statuses(&ids).await.unwrap();

    let missing = &statuses[&ids[0]];
    assert_eq!(missing.kind, StatusKind::Unknown);
    assert_eq!(missing.reason.as_deref(), Some("MISSING"));
    let pending = &statuses[&ids[1]];
    assert_eq!(pending.kind, StatusKind::Starting);
    assert_eq!(pending.raw.as_deref(), Some("PENDING"));
    assert_eq!(
        pending.connection_url.as_deref(),
        Some("http://10.0.1.17:8080")
    );
    let running = &statuses[&ids[2]];
    assert_eq!(running.kind, StatusKind::Running);
    assert_eq!(
        running.connection_url.as_deref(),
        Some("http://10.0.1.23:8080")
    );
    let stopped = &statuses[&ids[3]];
    assert_eq!(stopped.kind, StatusKind::Failed);
    assert_eq!(stopped.raw.as_deref(), Some("STOPPED"));
    assert_eq!(
        stopped.reason.as_deref(),
        Some(
            "TaskFailedToStart: CannotPullContainerError: pull image manifest has been retried 5 time(s); \
             zoom-bot: CannotPullContainerError: ghcr.io/meeboter/zoom-bot:1.8.0: not found"
        )
    );
    assert_eq!(stopped.connection_url, None);
}

#[tokio::test]
async fn one_status_reads_one_task_and_missing_is_not_an_error() {
    let server = MockServer::start().await;
    ecs_call("DescribeTasks")
        .respond_with(ecs_ok(
            json!({"tasks": [], "failures": [{"arn": task_arn(8), "reason": "MISSING"}]}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let status = platform(&server)
        .get_bot_status(&PlatformId::new(task_arn(8)))
        .await
        .unwrap();
    assert_eq!(status.kind, StatusKind::Unknown);
}

#[tokio::test]
async fn tasks_are_asked_about_in_the_cluster_of_their_arn() {
    let server = MockServer::start().await;
    // A bot started before the operator moved ECS_CLUSTER to `meeboter`.
    let old = "arn:aws:ecs:eu-west-1:123456789012:task/old-bots/0123456789abcdef0123456789abcdef";
    ecs_call("DescribeTasks")
        .and(|request: &Request| {
            let body: Value = request.body_json().unwrap();
            body["cluster"] == "old-bots"
        })
        .respond_with(ecs_ok(
            json!({"tasks": [task_json(old, "RUNNING", Some("10.1.0.4"))]}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    ecs_call("DescribeTasks")
        .and(|request: &Request| {
            let body: Value = request.body_json().unwrap();
            body["cluster"] == "meeboter"
        })
        .respond_with(ecs_ok(
            json!({"tasks": [task_json(&task_arn(1), "RUNNING", None)]}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let ids = [PlatformId::new(old), PlatformId::new(task_arn(1))];
    let statuses = platform(&server).get_bot_statuses(&ids).await.unwrap();
    assert!(
        ids.iter()
            .all(|id| statuses[id].kind == StatusKind::Running)
    );
}

#[tokio::test]
async fn identifiers_ecs_cannot_know_are_unknown_without_asking() {
    let server = MockServer::start().await;
    ecs_call("DescribeTasks")
        .respond_with(ecs_ok(json!({"tasks": []})))
        .expect(0)
        .mount(&server)
        .await;
    let foreign = PlatformId::new("c4k8g0s0w8o4gk4oc0kw8gsc");
    let other_region = PlatformId::new(
        "arn:aws:ecs:us-east-1:123456789012:task/meeboter/0123456789abcdef0123456789abcdef",
    );
    let statuses = platform(&server)
        .get_bot_statuses(&[foreign.clone(), other_region.clone()])
        .await
        .unwrap();
    assert_eq!(statuses[&foreign].kind, StatusKind::Unknown);
    assert_eq!(statuses[&other_region].kind, StatusKind::Unknown);
    assert!(
        statuses[&other_region]
            .reason
            .as_deref()
            .unwrap()
            .contains("us-east-1"),
        "{:?}",
        statuses[&other_region]
    );
}

#[tokio::test]
async fn a_refused_describe_is_an_error_not_unknown() {
    let server = MockServer::start().await;
    ecs_call("DescribeTasks")
        .respond_with(ecs_error(
            400,
            "AccessDeniedException",
            "User: arn:aws:iam::123456789012:user/meeboter is not authorized to perform: ecs:DescribeTasks",
        ))
        .expect(1)
        .mount(&server)
        .await;
    let error = platform(&server)
        .get_bot_statuses(&[PlatformId::new(task_arn(1))])
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unauthorized);
    assert!(error.to_string().contains("ecs:DescribeTasks"), "{error}");
}

#[tokio::test]
async fn tasks_of_a_deleted_cluster_are_unknown_and_do_not_block_the_others() {
    let server = MockServer::start().await;
    let gone =
        "arn:aws:ecs:eu-west-1:123456789012:task/deleted-bots/0123456789abcdef0123456789abcdef";
    ecs_call("DescribeTasks")
        .and(|request: &Request| {
            let body: Value = request.body_json().unwrap();
            body["cluster"] == "deleted-bots"
        })
        .respond_with(ecs_error(
            400,
            "ClusterNotFoundException",
            "Cluster not found.",
        ))
        .expect(1)
        .mount(&server)
        .await;
    ecs_call("DescribeTasks")
        .and(|request: &Request| {
            let body: Value = request.body_json().unwrap();
            body["cluster"] == "meeboter"
        })
        .respond_with(ecs_ok(
            json!({"tasks": [task_json(&task_arn(1), "RUNNING", None)]}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let ids = [PlatformId::new(gone), PlatformId::new(task_arn(1))];
    let statuses = platform(&server).get_bot_statuses(&ids).await.unwrap();
    assert_eq!(statuses[&ids[0]].kind, StatusKind::Unknown);
    assert!(
        statuses[&ids[0]]
            .reason
            .as_deref()
            .unwrap()
            .contains("cluster deleted-bots not found"),
        "{:?}",
        statuses[&ids[0]]
    );
    assert_eq!(statuses[&ids[1]].kind, StatusKind::Running);
}
