//! Statuses: one LIST per 500 bots by label selector, and each pod
//! condition (one fixture each, `tests/fixtures/pods/`) mapped as the issue
//! writes it, with the raw phase and the reason kept.

use std::time::{Duration, SystemTime};

use platform_core::{BotStatus, PlatformId, PlatformService, StatusKind};
use serde_json::{Value, json};

use crate::support::{Cluster, INSTALLATION, pod_name, zoom_bot};

const SELECTOR_QUERY: &str = "labelSelector=app.kubernetes.io%2Fmanaged-by%3Dmeeboter-deploy%2Cmeeboter.io%2Finstallation%3D0a1b2c3d4e5f6071";

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/pods/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `at` as the API server writes times.
fn rfc3339(at: SystemTime) -> String {
    let stamp = k8s_openapi::jiff::Timestamp::try_from(at).unwrap();
    stamp.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The status the platform reads from `pod`, created `age` ago, in one
/// batch call.
async fn status_of_aged(mut pod: Value, age: Duration) -> BotStatus {
    pod["metadata"]["creationTimestamp"] = json!(rfc3339(SystemTime::now() - age));
    let cluster = Cluster::start().await;
    let id = PlatformId::new(format!(
        "bots/{}",
        pod["metadata"]["name"].as_str().unwrap()
    ));
    cluster.api.insert_pod(pod);
    let platform = cluster.platform();
    let mut statuses = platform
        .get_bot_statuses(std::slice::from_ref(&id))
        .await
        .unwrap();
    assert_eq!(cluster.api.calls("GET pods"), 1);
    assert_eq!(cluster.api.calls("GET pod"), 0, "no GET per pod");
    let batch = statuses.remove(&id).expect("an entry for the pod");
    let single = platform.get_bot_status(&id).await.unwrap();
    assert_eq!(batch.kind, single.kind, "one pod or many, the same status");
    batch
}

async fn status_of(name: &str) -> BotStatus {
    status_of_aged(fixture(name), Duration::from_secs(600)).await
}

fn assert_status(status: &BotStatus, kind: StatusKind, raw: &str, reason_has: &[&str]) {
    assert_eq!(status.kind, kind, "{status}");
    assert_eq!(status.raw.as_deref(), Some(raw), "{status}");
    let reason = status.reason.as_deref().unwrap_or_default();
    for part in reason_has {
        assert!(reason.contains(part), "reason {reason:?} lacks {part:?}");
    }
}

#[tokio::test]
async fn pending_just_created_is_starting() {
    let status = status_of("pending-just-created").await;
    assert_status(
        &status,
        StatusKind::Starting,
        "Pending",
        &["waiting to be scheduled"],
    );
}

#[tokio::test]
async fn pending_container_creating_is_starting() {
    let status = status_of("pending-container-creating").await;
    assert_status(
        &status,
        StatusKind::Starting,
        "Pending",
        &["ContainerCreating"],
    );
}

#[tokio::test]
async fn unschedulable_is_starting_with_the_schedulers_reason() {
    let status = status_of("pending-unschedulable").await;
    assert_status(
        &status,
        StatusKind::Starting,
        "Pending",
        &[
            "Unschedulable",
            "0/3 nodes are available",
            "Insufficient memory",
        ],
    );
}

#[tokio::test]
async fn image_pull_backoff_fails_after_the_grace() {
    let status = status_of("pending-image-pull-backoff").await;
    assert_status(
        &status,
        StatusKind::Failed,
        "Pending",
        &[
            "ImagePullBackOff",
            "Back-off pulling image",
            "401 Unauthorized",
        ],
    );
}

#[tokio::test]
async fn image_pull_backoff_within_the_grace_is_starting() {
    let status = status_of_aged(
        fixture("pending-image-pull-backoff"),
        Duration::from_secs(5),
    )
    .await;
    assert_status(
        &status,
        StatusKind::Starting,
        "Pending",
        &["ImagePullBackOff", "transient"],
    );
}

#[tokio::test]
async fn err_image_pull_fails_after_the_grace() {
    let status = status_of("pending-err-image-pull").await;
    assert_status(
        &status,
        StatusKind::Failed,
        "Pending",
        &["ErrImagePull", "not found"],
    );
}

#[tokio::test]
async fn create_container_config_error_fails_after_the_grace() {
    let status = status_of("pending-create-container-config-error").await;
    assert_status(
        &status,
        StatusKind::Failed,
        "Pending",
        &[
            "CreateContainerConfigError",
            "secret \"zoom-bot-credentials\" not found",
        ],
    );
    let young = status_of_aged(
        fixture("pending-create-container-config-error"),
        Duration::from_secs(1),
    )
    .await;
    assert_eq!(young.kind, StatusKind::Starting, "{young}");
}

#[tokio::test]
async fn invalid_image_name_fails_at_once() {
    let status = status_of_aged(
        fixture("pending-invalid-image-name"),
        Duration::from_secs(1),
    )
    .await;
    assert_status(
        &status,
        StatusKind::Failed,
        "Pending",
        &["InvalidImageName", "must be lowercase"],
    );
}

#[tokio::test]
async fn running_and_ready_is_running_with_the_pod_ip_and_bot_port() {
    let status = status_of("running-ready").await;
    assert_status(&status, StatusKind::Running, "Running", &[]);
    assert_eq!(
        status.connection_url.as_deref(),
        Some("http://10.244.2.31:8080")
    );
}

#[tokio::test]
async fn running_but_not_ready_is_starting() {
    let status = status_of("running-not-ready").await;
    assert_status(&status, StatusKind::Starting, "Running", &["not ready"]);
    assert_eq!(status.connection_url, None);
}

#[tokio::test]
async fn succeeded_is_stopped() {
    let status = status_of("succeeded").await;
    assert_status(
        &status,
        StatusKind::Stopped,
        "Succeeded",
        &["Completed (exit code 0)"],
    );
}

#[tokio::test]
async fn oom_killed_is_failed() {
    let status = status_of("failed-oomkilled").await;
    assert_status(
        &status,
        StatusKind::Failed,
        "Failed",
        &["OOMKilled (exit code 137)"],
    );
}

#[tokio::test]
async fn an_error_exit_is_failed_with_its_code_and_message() {
    let status = status_of("failed-error-exit-code").await;
    assert_status(
        &status,
        StatusKind::Failed,
        "Failed",
        &["Error (exit code 1)", "the meeting requires sign-in"],
    );
}

#[tokio::test]
async fn deadline_exceeded_is_failed() {
    let status = status_of("failed-deadline-exceeded").await;
    assert_status(
        &status,
        StatusKind::Failed,
        "Failed",
        &["DeadlineExceeded", "longer than the specified deadline"],
    );
}

#[tokio::test]
async fn evicted_is_failed() {
    let status = status_of("failed-evicted").await;
    assert_status(
        &status,
        StatusKind::Failed,
        "Failed",
        &["Evicted", "The node was low on resource: memory"],
    );
}

#[tokio::test]
async fn terminating_is_stopping() {
    let status = status_of("terminating").await;
    assert_status(
        &status,
        StatusKind::Stopping,
        "Running, terminating",
        &["deletion requested"],
    );
}

#[tokio::test]
async fn a_node_that_stopped_reporting_is_unknown() {
    let status = status_of("unknown-node-lost").await;
    assert_status(&status, StatusKind::Unknown, "Unknown", &["NodeLost"]);
}

#[tokio::test]
async fn a_bot_container_that_ended_beside_a_running_sidecar_has_ended() {
    let mut pod = fixture("running-ready");
    pod["status"]["containerStatuses"] = json!([
        {"name": "bot", "ready": false, "restartCount": 0, "started": false, "image": "x", "imageID": "",
         "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": "2026-11-30T10:00:05Z", "finishedAt": "2026-11-30T10:40:00Z"}}},
        {"name": "log-shipper", "ready": true, "restartCount": 0, "started": true, "image": "y", "imageID": "",
         "state": {"running": {"startedAt": "2026-11-30T10:00:05Z"}}}
    ]);
    let status = status_of_aged(pod, Duration::from_secs(600)).await;
    assert_eq!(status.kind, StatusKind::Stopped, "{status}");
    assert!(
        status
            .reason
            .unwrap()
            .contains("other containers of the pod still run")
    );
}

#[tokio::test]
async fn a_pod_gone_after_we_deleted_it_is_stopped_one_gone_otherwise_unknown() {
    let cluster = Cluster::start().await;
    let platform = cluster.platform();
    let stopped = platform
        .deploy_bot(&zoom_bot(1), 1)
        .await
        .unwrap()
        .identifier;
    let vanished = platform
        .deploy_bot(&zoom_bot(2), 1)
        .await
        .unwrap()
        .identifier;
    platform.stop_bot(&stopped).await.unwrap();
    platform.cleanup(&stopped).await.unwrap();
    cluster.api.remove_pod("bots", &pod_name(2, 1));
    let statuses = platform
        .get_bot_statuses(&[stopped.clone(), vanished.clone()])
        .await
        .unwrap();
    assert_status(
        &statuses[&stopped],
        StatusKind::Stopped,
        "gone",
        &["deleted by this service"],
    );
    assert_status(
        &statuses[&vanished],
        StatusKind::Unknown,
        "gone",
        &["not because this service deleted it"],
    );
}

#[tokio::test]
async fn a_sweep_of_1000_bots_is_two_lists_of_500_by_label_selector() {
    let cluster = Cluster::start().await;
    let template = fixture("running-ready");
    let mut ids = Vec::new();
    for bot in 1..=1000u64 {
        let mut pod = template.clone();
        let name = pod_name(bot, 1);
        pod["metadata"]["name"] = json!(name);
        pod["metadata"]["labels"]["meeboter.io/bot-id"] = json!(bot.to_string());
        cluster.api.insert_pod(pod);
        ids.push(PlatformId::new(format!("bots/{name}")));
    }
    // Another installation's pods in the namespace are not ours to read.
    let mut foreign = template.clone();
    foreign["metadata"]["name"] = json!("meeboter-ffffffffffffffff-1-1");
    foreign["metadata"]["labels"]["meeboter.io/installation"] = json!("ffffffffffffffff");
    cluster.api.insert_pod(foreign);
    ids.push(PlatformId::new("bots/meeboter-ffffffffffffffff-1-1"));

    let platform = cluster.platform();
    let statuses = platform.get_bot_statuses(&ids).await.unwrap();
    assert_eq!(statuses.len(), 1001);
    assert_eq!(
        statuses
            .values()
            .filter(|s| s.kind == StatusKind::Running)
            .count(),
        1000
    );
    assert_eq!(
        statuses[&PlatformId::new("bots/meeboter-ffffffffffffffff-1-1")].kind,
        StatusKind::Unknown
    );
    let lists: Vec<String> = cluster
        .requests()
        .await
        .iter()
        .filter(|r| r.method.as_str() == "GET")
        .map(|r| format!("{}?{}", r.url.path(), r.url.query().unwrap_or_default()))
        .collect();
    assert_eq!(
        lists,
        [
            format!("/api/v1/namespaces/bots/pods?{SELECTOR_QUERY}&limit=500"),
            format!(
                "/api/v1/namespaces/bots/pods?{SELECTOR_QUERY}&limit=500&continue=fake-continue-500"
            ),
        ]
    );
    assert!(SELECTOR_QUERY.contains(INSTALLATION));
}

#[tokio::test]
async fn an_expired_continue_token_starts_the_list_over() {
    let cluster = Cluster::start().await;
    let template = fixture("running-ready");
    let mut ids = Vec::new();
    for bot in 1..=600u64 {
        let mut pod = template.clone();
        let name = pod_name(bot, 1);
        pod["metadata"]["name"] = json!(name);
        cluster.api.insert_pod(pod);
        ids.push(PlatformId::new(format!("bots/{name}")));
    }
    cluster.api.expire_next_continue();
    let statuses = cluster.platform().get_bot_statuses(&ids).await.unwrap();
    assert_eq!(
        statuses
            .values()
            .filter(|s| s.kind == StatusKind::Running)
            .count(),
        600
    );
    assert_eq!(
        cluster.api.calls("GET pods"),
        4,
        "page, 410, then both pages again"
    );
}

#[tokio::test]
async fn identifiers_of_other_platforms_are_unknown_without_a_call() {
    let cluster = Cluster::start().await;
    let id = PlatformId::new("arn:aws:ecs:eu-west-1:123456789012:task/meeboter/0f1e2d3c");
    let statuses = cluster
        .platform()
        .get_bot_statuses(std::slice::from_ref(&id))
        .await
        .unwrap();
    assert_eq!(statuses[&id].kind, StatusKind::Unknown);
    assert_eq!(cluster.api.calls("GET pods"), 0);
}
