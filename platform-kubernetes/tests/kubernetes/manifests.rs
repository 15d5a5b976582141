//! The manifests in `docs/kubernetes/` are Kubernetes objects: each
//! deserialises with the `k8s-openapi` type of its kind, and says what the
//! docs promise.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, ResourceQuota, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use platform_kubernetes::PodTemplate;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn docs(file: &str) -> String {
    let path = format!("{}/../docs/kubernetes/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every document of a multi-document YAML file, as JSON.
fn documents(file: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(&docs(file))
        .unwrap_or_else(|e| panic!("{file}: {e}"))
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

/// The document of `kind`, deserialised strictly as its type: an unknown
/// field is a typo the API server would drop or refuse.
fn object<T: DeserializeOwned + serde::Serialize>(file: &str, kind: &str) -> T {
    let document = documents(file)
        .into_iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("{file} has no {kind}"));
    let typed: T =
        serde_json::from_value(document.clone()).unwrap_or_else(|e| panic!("{file}: {kind}: {e}"));
    let round = serde_json::to_value(&typed).unwrap();
    assert_eq!(
        round, document,
        "{file}: {kind} has fields its type does not know"
    );
    typed
}

#[test]
fn the_role_grants_exactly_pods_create_get_list_watch_delete_and_events_list() {
    let role: Role = object("rbac.yaml", "Role");
    let rules: Vec<(Vec<String>, Vec<String>, Vec<String>)> = role
        .rules
        .unwrap()
        .into_iter()
        .map(|r| {
            (
                r.api_groups.unwrap_or_default(),
                r.resources.unwrap_or_default(),
                r.verbs,
            )
        })
        .collect();
    let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        rules,
        [
            (
                strings(&[""]),
                strings(&["pods"]),
                strings(&["create", "get", "list", "watch", "delete"])
            ),
            (strings(&[""]), strings(&["events"]), strings(&["list"])),
        ]
    );
    let account: ServiceAccount = object("rbac.yaml", "ServiceAccount");
    let binding: RoleBinding = object("rbac.yaml", "RoleBinding");
    assert_eq!(binding.role_ref.kind, "Role");
    assert_eq!(binding.role_ref.name, role.metadata.name.unwrap());
    let subject = &binding.subjects.unwrap()[0];
    assert_eq!(subject.kind, "ServiceAccount");
    assert_eq!(Some(&subject.name), account.metadata.name.as_ref());
}

#[test]
fn the_service_runs_on_postgresql_under_its_service_account() {
    let deployment: Deployment = object("deployment.yaml", "Deployment");
    let pod = deployment.spec.unwrap().template.spec.unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some("meeboter-deploy"));
    let container = &pod.containers[0];
    let env = container.env.as_ref().unwrap();
    let database = env
        .iter()
        .find(|e| e.name == "DATABASE_URL")
        .expect("DATABASE_URL");
    let secret = database
        .value_from
        .as_ref()
        .unwrap()
        .secret_key_ref
        .as_ref()
        .unwrap();
    assert_eq!(secret.key, "DATABASE_URL");
    for variable in [
        "K8S_POD_TEMPLATE_ZOOM",
        "K8S_POD_TEMPLATE_TEAMS",
        "K8S_POD_TEMPLATE_MEET",
    ] {
        assert!(env.iter().any(|e| e.name == variable), "{variable}");
    }
    assert!(container.readiness_probe.is_some() && container.liveness_probe.is_some());
    let _: Service = object("deployment.yaml", "Service");
    let _: ResourceQuota = object("resource-quota.yaml", "ResourceQuota");
}

#[test]
fn the_example_pod_templates_have_resources_dev_shm_and_a_health_probe() {
    for file in [
        "pod-template-zoom.yaml",
        "pod-template-teams.yaml",
        "pod-template-meet.yaml",
    ] {
        let pod: Pod = object(file, "Pod");
        let spec = pod.spec.unwrap();
        let bot = spec
            .containers
            .iter()
            .find(|c| c.name == "bot")
            .expect(file);
        let requests = bot.resources.as_ref().unwrap().requests.as_ref().unwrap();
        assert!(
            requests.contains_key("memory") && requests.contains_key("cpu"),
            "{file}"
        );
        assert!(
            bot.readiness_probe.as_ref().unwrap().http_get.is_some(),
            "{file}"
        );
        assert!(
            bot.volume_mounts
                .as_ref()
                .unwrap()
                .iter()
                .any(|m| m.mount_path == "/dev/shm"),
            "{file}"
        );
        let template = PodTemplate::parse(&docs(file), "bot", "bots").expect(file);
        assert!(
            template.advice().is_empty(),
            "{file}: {:?}",
            template.advice()
        );
    }
}
