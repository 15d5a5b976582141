//! Deploying: the exact pod sent, one pod per attempt, capacity, and how
//! failures to create read.

use platform_core::{ErrorKind, PlatformService, StatusKind};
use serde_json::{Value, json};

use crate::support::{
    Cluster, INSTALLATION, MEETING_PASSWORD, NAMESPACE, platform_at, pod_name, zoom_bot,
};

async fn created_pods(cluster: &Cluster) -> Vec<(String, Value)> {
    cluster
        .requests()
        .await
        .into_iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path().ends_with("/pods"))
        .map(|r| {
            (
                format!("{}?{}", r.url.path(), r.url.query().unwrap_or_default()),
                r.body_json().expect("a JSON body"),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_pod_is_the_template_with_the_bots_name_labels_deadline_and_environment() {
    let cluster = Cluster::start().await;
    let platform = cluster.platform();
    let deployed = platform.deploy_bot(&zoom_bot(42), 3).await.unwrap();
    let name = pod_name(42, 3);
    assert_eq!(deployed.identifier.as_str(), format!("{NAMESPACE}/{name}"));

    let created = created_pods(&cluster).await;
    assert_eq!(created.len(), 1);
    let (uri, pod) = &created[0];
    assert_eq!(
        uri,
        "/api/v1/namespaces/bots/pods?fieldManager=meeboter-deploy"
    );
    assert_eq!(pod["apiVersion"], "v1");
    assert_eq!(pod["kind"], "Pod");
    assert_eq!(pod["metadata"]["name"], json!(name));
    assert_eq!(pod["metadata"]["namespace"], "bots");
    // What the API server set on the object the template was copied from
    // does not travel.
    assert!(pod["metadata"].get("uid").is_none());
    assert!(pod["metadata"].get("resourceVersion").is_none());
    assert!(pod.get("status").is_none());
    assert_eq!(
        pod["metadata"]["labels"],
        json!({
            "app": "meeboter-bot",
            "team": "media",
            "app.kubernetes.io/managed-by": "meeboter-deploy",
            "meeboter.io/installation": INSTALLATION,
            "meeboter.io/bot-id": "42",
            "meeboter.io/attempt": "3",
            "meeboter.io/meeting-platform": "zoom",
        })
    );
    assert_eq!(
        pod["metadata"]["annotations"],
        json!({"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"})
    );
    let spec = &pod["spec"];
    assert_eq!(spec["restartPolicy"], "Never");
    assert_eq!(spec["activeDeadlineSeconds"], 14_400);
    assert_eq!(spec["nodeSelector"], json!({"pool": "meeting-bots"}));
    assert_eq!(
        spec["tolerations"],
        json!([{"key": "dedicated", "operator": "Equal", "value": "meeting-bots", "effect": "NoSchedule"}])
    );
    assert_eq!(spec["terminationGracePeriodSeconds"], 45);
    assert_eq!(
        spec["securityContext"],
        json!({"runAsNonRoot": true, "runAsUser": 1000})
    );
    assert_eq!(
        spec["volumes"],
        json!([{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}}])
    );
    let bot = &spec["containers"][0];
    assert_eq!(bot["name"], "bot");
    assert_eq!(bot["image"], "registry.example/meeboter/zoom-bot:1.4.2");
    assert_eq!(bot["resources"]["requests"]["memory"], "2Gi");
    assert_eq!(bot["readinessProbe"]["httpGet"]["path"], "/health");
    assert_eq!(
        bot["volumeMounts"],
        json!([{"name": "dshm", "mountPath": "/dev/shm"}])
    );
    let env: Vec<(String, String)> = bot["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_owned(),
                e["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let names: Vec<&str> = env.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "BOT_ID",
            "MEETING_URL",
            "MEETING_PASSWORD",
            "BOT_DISPLAY_NAME",
            "RECORDING_ENABLED",
            "WAITING_ROOM_TIMEOUT",
            "NO_ONE_JOINED_TIMEOUT",
            "EVERYONE_LEFT_TIMEOUT",
            "LOG_LEVEL",
            "CALLBACK_URL",
        ],
        "the bot's environment first (the operator's may refer to it), the operator's BOT_ID replaced"
    );
    assert!(env.contains(&("BOT_ID".into(), "42".into())));
    assert!(env.contains(&("MEETING_PASSWORD".into(), MEETING_PASSWORD.into())));
    assert!(env.contains(&("LOG_LEVEL".into(), "debug".into())));
    // The sidecar is untouched: no bot environment there.
    assert_eq!(
        spec["containers"][1],
        json!({"name": "log-shipper", "image": "registry.example/fluent-bit:3.1"})
    );
}

#[tokio::test]
async fn a_deploy_repeated_for_the_same_attempt_creates_one_pod() {
    let cluster = Cluster::start().await;
    let platform = cluster.platform();
    let first = platform.deploy_bot(&zoom_bot(5), 1).await.unwrap();
    // As after a crash: another process of the same installation.
    let restarted = cluster.platform();
    let second = restarted.deploy_bot(&zoom_bot(5), 1).await.unwrap();
    assert_eq!(first.identifier, second.identifier);
    assert_eq!(cluster.api.pod_count(), 1);
    assert_eq!(
        cluster.api.calls("POST pods"),
        2,
        "the second create met AlreadyExists"
    );
    assert_eq!(
        cluster.api.calls("GET pod"),
        1,
        "and read the pod to check its labels"
    );
    // A new attempt is a new pod.
    let third = platform.deploy_bot(&zoom_bot(5), 2).await.unwrap();
    assert_ne!(third.identifier, first.identifier);
    assert_eq!(cluster.api.pod_count(), 2);
}

#[tokio::test]
async fn a_create_that_timed_out_and_took_effect_is_found_not_repeated() {
    let cluster = Cluster::start().await;
    let platform = cluster.platform();
    // The first create went through but its answer was lost (a 504 from a
    // proxy in front of the API server).
    platform.deploy_bot(&zoom_bot(8), 1).await.unwrap();
    cluster.api.fail_next(
        1,
        "POST",
        "pods",
        504,
        "Timeout",
        "the server was unable to return a response in the time allotted",
    );
    let again = platform.deploy_bot(&zoom_bot(8), 1).await.unwrap();
    assert_eq!(
        again.identifier.as_str(),
        format!("bots/{}", pod_name(8, 1))
    );
    assert_eq!(cluster.api.pod_count(), 1);
}

#[tokio::test]
async fn a_pod_of_that_name_without_our_labels_is_not_taken_for_ours() {
    let cluster = Cluster::start().await;
    cluster.api.insert_pod(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": pod_name(9, 1), "namespace": "bots", "labels": {"app": "something-else"}},
        "spec": {"containers": [{"name": "bot", "image": "x"}]},
        "status": {"phase": "Running"}
    }));
    let error = cluster
        .platform()
        .deploy_bot(&zoom_bot(9), 1)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Rejected, "{error}");
    assert!(
        error.to_string().contains("does not carry the labels"),
        "{error}"
    );
}

#[tokio::test]
async fn a_resource_quota_refusal_is_retryable_capacity_with_nothing_started() {
    let cluster = Cluster::start().await;
    cluster.api.pods_quota(1);
    let platform = cluster.platform();
    platform.deploy_bot(&zoom_bot(1), 1).await.unwrap();
    let error = platform.deploy_bot(&zoom_bot(2), 1).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Capacity, "{error}");
    assert!(error.is_retryable() && error.nothing_started(), "{error:?}");
    assert!(error.to_string().contains("exceeded quota"), "{error}");
    assert_eq!(cluster.api.pod_count(), 1);
}

#[tokio::test]
async fn k8s_max_bots_caps_the_pods_that_hold_capacity() {
    let cluster = Cluster::start().await;
    let env = cluster.templates.env().with("K8S_MAX_BOTS", "2");
    let platform = cluster.platform_with(&env);
    platform.deploy_bot(&zoom_bot(1), 1).await.unwrap();
    platform.deploy_bot(&zoom_bot(2), 1).await.unwrap();
    assert_eq!(
        cluster.api.calls("GET pods"),
        1,
        "one list to count, then the ledger"
    );
    let error = platform.deploy_bot(&zoom_bot(3), 1).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Capacity, "{error}");
    assert!(error.nothing_started(), "{error:?}");
    assert!(error.to_string().contains("K8S_MAX_BOTS=2"), "{error}");
    assert_eq!(cluster.api.pod_count(), 2);
    // A repeated deploy of a bot already counted is not refused.
    platform.deploy_bot(&zoom_bot(2), 1).await.unwrap();
    // Once a bot is gone, there is room again.
    let first = platform.pod_of(platform_core::BotId(1), 1).identifier();
    platform.stop_bot(&first).await.unwrap();
    platform.cleanup(&first).await.unwrap();
    platform.deploy_bot(&zoom_bot(3), 1).await.unwrap();

    // Another replica counts the pods already there before its first deploy.
    let other = cluster.platform_with(&env);
    let error = other.deploy_bot(&zoom_bot(4), 1).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Capacity, "{error}");
}

#[tokio::test]
async fn the_deploy_pace_is_the_api_pacer_one_pod_creation_per_deploy() {
    let cluster = Cluster::start().await;
    let env = cluster.templates.env().with("K8S_API_QPS", "25");
    let capacity = cluster.platform_with(&env).capacity();
    let pace = capacity.deploy_pace.expect("a stated pace");
    let rate = pace.rate.expect("a limited rate");
    assert!((rate.burst - 25.0).abs() < 1e-9, "{pace:?}");
    assert!((rate.per_second - 25.0).abs() < 1e-9, "{pace:?}");
    assert!(pace.typical_start > std::time::Duration::ZERO, "{pace:?}");
}

#[tokio::test]
async fn a_cluster_that_refuses_connections_started_nothing() {
    // A port with nothing listening: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cluster = Cluster::start().await;
    let platform = platform_at(
        &format!("http://127.0.0.1:{port}"),
        &cluster.templates.env(),
    );
    let error = platform.deploy_bot(&zoom_bot(1), 1).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unreachable, "{error}");
    assert!(error.nothing_started(), "{error:?}");
    assert!(!error.to_string().contains(MEETING_PASSWORD));
}

#[tokio::test]
async fn an_invalid_pod_is_rejected_without_retries_or_secrets() {
    let cluster = Cluster::start().await;
    cluster.api.fail_next(
        5,
        "POST",
        "pods",
        422,
        "Invalid",
        "Pod \"meeboter-0a1b2c3d4e5f6071-1-1\" is invalid: spec.containers[0].resources.requests: Invalid value: \"4\": must be less than or equal to cpu limit of 2",
    );
    let platform = cluster.platform();
    let error = platform.deploy_bot(&zoom_bot(1), 1).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Rejected, "{error}");
    assert!(!error.is_retryable());
    assert_eq!(cluster.api.calls("POST pods"), 1);
    assert!(!format!("{error} {error:?}").contains(MEETING_PASSWORD));
}

#[tokio::test]
async fn forbidden_by_rbac_is_unauthorized_and_says_what_to_grant() {
    let cluster = Cluster::start().await;
    cluster.api.fail_next(
        1,
        "POST",
        "pods",
        403,
        "Forbidden",
        "pods is forbidden: User \"system:serviceaccount:bots:default\" cannot create resource \"pods\" in API group \"\" in the namespace \"bots\"",
    );
    let error = cluster
        .platform()
        .deploy_bot(&zoom_bot(1), 1)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unauthorized, "{error}");
    assert!(
        error.to_string().contains("docs/kubernetes/rbac.yaml"),
        "{error}"
    );
}

#[tokio::test]
async fn a_new_pod_starts_then_runs_with_its_connection_url() {
    let cluster = Cluster::start().await;
    let platform = cluster.platform();
    let deployed = platform.deploy_bot(&zoom_bot(11), 1).await.unwrap();
    let first = platform.get_bot_status(&deployed.identifier).await.unwrap();
    assert_eq!(first.kind, StatusKind::Starting, "{first}");
    let second = platform.get_bot_status(&deployed.identifier).await.unwrap();
    assert_eq!(second.kind, StatusKind::Running, "{second}");
    let url = second.connection_url.expect("a connection URL");
    assert!(
        url.starts_with("http://10.244.1.") && url.ends_with(":8080"),
        "{url}"
    );
}
