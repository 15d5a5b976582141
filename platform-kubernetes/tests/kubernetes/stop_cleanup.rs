//! Stop deletes with the configured grace; cleanup confirms the pod is
//! gone, deleting it again without grace once the grace has passed.

use std::time::Duration;

use platform_core::{PlatformId, PlatformService, StatusKind};
use serde_json::{Value, json};

use crate::support::{Cluster, pod_name, zoom_bot};

async fn deletions(cluster: &Cluster) -> Vec<(String, Value)> {
    cluster
        .requests()
        .await
        .into_iter()
        .filter(|r| r.method.as_str() == "DELETE")
        .map(|r| {
            (
                format!("{}?{}", r.url.path(), r.url.query().unwrap_or_default()),
                r.body_json().expect("a DeleteOptions body"),
            )
        })
        .collect()
}

#[tokio::test]
async fn stop_deletes_with_the_stop_grace_and_background_propagation() {
    let cluster = Cluster::start().await;
    let env = cluster.templates.env().with("K8S_STOP_GRACE", "45");
    let platform = cluster.platform_with(&env);
    let id = platform
        .deploy_bot(&zoom_bot(3), 2)
        .await
        .unwrap()
        .identifier;
    platform.stop_bot(&id).await.unwrap();
    let name = pod_name(3, 2);
    assert_eq!(
        deletions(&cluster).await,
        [(
            format!(
                "/api/v1/namespaces/bots/pods/{name}?gracePeriodSeconds=45&propagationPolicy=Background"
            ),
            json!({"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 45, "propagationPolicy": "Background"})
        )]
    );
    let status = platform.get_bot_status(&id).await.unwrap();
    assert_eq!(status.kind, StatusKind::Stopping, "{status}");
}

#[tokio::test]
async fn cleanup_waits_until_the_pod_is_gone() {
    let cluster = Cluster::start().await;
    cluster
        .api
        .terminate_after(Some(Duration::from_millis(1200)));
    let platform = cluster.platform();
    let id = platform
        .deploy_bot(&zoom_bot(4), 1)
        .await
        .unwrap()
        .identifier;
    platform.stop_bot(&id).await.unwrap();
    platform.cleanup(&id).await.unwrap();
    assert_eq!(cluster.api.pod("bots", &pod_name(4, 1)), None);
    assert!(
        cluster.api.calls("GET pod") >= 2,
        "it looked until the pod was gone"
    );
    assert_eq!(
        cluster.api.calls("DELETE pod"),
        1,
        "one deletion was enough"
    );
    let status = platform.get_bot_status(&id).await.unwrap();
    assert_eq!(status.kind, StatusKind::Stopped, "{status}");
}

#[tokio::test]
async fn cleanup_without_a_stop_deletes_with_grace_itself() {
    let cluster = Cluster::start().await;
    let platform = cluster.platform();
    let id = platform
        .deploy_bot(&zoom_bot(5), 1)
        .await
        .unwrap()
        .identifier;
    platform.cleanup(&id).await.unwrap();
    let deleted = deletions(&cluster).await;
    assert_eq!(deleted.len(), 1);
    assert!(
        deleted[0]
            .0
            .ends_with("?gracePeriodSeconds=30&propagationPolicy=Background"),
        "{deleted:?}"
    );
    assert_eq!(cluster.api.pod_count(), 0);
}

#[tokio::test]
async fn a_pod_stuck_terminating_is_deleted_without_grace_once_its_grace_has_passed() {
    let cluster = Cluster::start().await;
    // The node is gone: the pod never finishes terminating by itself.
    cluster.api.terminate_after(None);
    let env = cluster.templates.env().with("K8S_STOP_GRACE", "1");
    let platform = cluster.platform_with(&env);
    let id = platform
        .deploy_bot(&zoom_bot(6), 1)
        .await
        .unwrap()
        .identifier;
    platform.stop_bot(&id).await.unwrap();
    platform.cleanup(&id).await.unwrap();
    let deleted: Vec<String> = deletions(&cluster)
        .await
        .into_iter()
        .map(|(uri, _)| uri)
        .collect();
    let name = pod_name(6, 1);
    assert_eq!(
        deleted,
        [
            format!(
                "/api/v1/namespaces/bots/pods/{name}?gracePeriodSeconds=1&propagationPolicy=Background"
            ),
            format!(
                "/api/v1/namespaces/bots/pods/{name}?gracePeriodSeconds=0&propagationPolicy=Background"
            ),
        ]
    );
    assert_eq!(cluster.api.pod_count(), 0);
}

#[tokio::test]
async fn stop_and_cleanup_of_a_pod_that_is_gone_succeed() {
    let cluster = Cluster::start().await;
    let platform = cluster.platform();
    let id = PlatformId::new(format!("bots/{}", pod_name(77, 1)));
    platform.stop_bot(&id).await.unwrap();
    platform.cleanup(&id).await.unwrap();
    platform.stop_bot(&id).await.unwrap();
    assert_eq!(cluster.api.calls("DELETE pod"), 2);
    // Not deleted by us (it never existed): unknown, not stopped.
    let status = platform.get_bot_status(&id).await.unwrap();
    assert_eq!(status.kind, StatusKind::Unknown, "{status}");
}

#[tokio::test]
async fn a_stopped_attempt_is_not_started_again_by_a_repeated_deploy() {
    let cluster = Cluster::start().await;
    let platform = cluster.platform();
    let id = platform
        .deploy_bot(&zoom_bot(8), 1)
        .await
        .unwrap()
        .identifier;
    platform.stop_bot(&id).await.unwrap();
    platform.cleanup(&id).await.unwrap();
    let again = platform.deploy_bot(&zoom_bot(8), 1).await.unwrap();
    assert_eq!(again.identifier, id);
    assert_eq!(
        cluster.api.pod_count(),
        0,
        "no second pod for the same attempt"
    );
    assert_eq!(cluster.api.calls("POST pods"), 1);
}

#[tokio::test]
async fn marked_bots_are_this_installations_pods() {
    let cluster = Cluster::start().await;
    let platform = cluster.platform();
    let id = platform
        .deploy_bot(&zoom_bot(12), 4)
        .await
        .unwrap()
        .identifier;
    cluster.api.insert_pod(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "meeboter-ffffffffffffffff-12-4", "namespace": "bots", "labels": {
            "app.kubernetes.io/managed-by": "meeboter-deploy",
            "meeboter.io/installation": "ffffffffffffffff",
            "meeboter.io/bot-id": "12", "meeboter.io/attempt": "4"}},
        "spec": {"containers": [{"name": "bot", "image": "x"}]},
        "status": {"phase": "Running"}
    }));
    let marked = platform.list_marked_bots().await.unwrap();
    assert_eq!(marked.len(), 1, "{marked:?}");
    assert_eq!(marked[0].identifier, id);
    assert_eq!(marked[0].bot, platform_core::BotId(12));
    assert_eq!(marked[0].attempt, Some(4));
    assert!(
        marked[0].description.contains(&format!("pod {id}")),
        "{}",
        marked[0].description
    );
}
