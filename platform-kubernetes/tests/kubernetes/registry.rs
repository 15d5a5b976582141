//! Registration, `auto` detection and configuration loading.

use platform_core::{
    AutoSelect, Detection, EnvVarSpec, MapEnv, PlatformContext, PlatformDescriptor, Registry,
    SelectedBy, select_platform,
};
use platform_kubernetes::{ClusterFiles, DESCRIPTOR, KubernetesConfig};

use crate::support::{Templates, no_cluster_files};

#[test]
fn the_platform_is_registered_as_kubernetes() {
    let registry = Registry::global().unwrap();
    let descriptor = registry.get("kubernetes").expect("registered");
    assert_eq!(descriptor.feature, "kubernetes");
    assert!(matches!(
        descriptor.auto,
        AutoSelect::DetectAny { order: 30, .. }
    ));
}

#[test]
fn auto_detects_a_cluster_or_k8s_namespace() {
    assert_eq!(DESCRIPTOR.detect(&MapEnv::new()), Detection::NotConfigured);
    assert_eq!(
        DESCRIPTOR.detect(&MapEnv::from([("KUBERNETES_SERVICE_HOST", "10.96.0.1")])),
        Detection::Configured
    );
    assert_eq!(
        DESCRIPTOR.detect(&MapEnv::from([("K8S_NAMESPACE", "bots")])),
        Detection::Configured
    );
}

const COOLIFY_MARKERS: &[EnvVarSpec] = &[EnvVarSpec::required("COOLIFY_API_URL", "test")];

/// A stand-in for Coolify (order 10), to check Kubernetes comes after it.
const EARLIER: PlatformDescriptor = PlatformDescriptor {
    name: "coolify",
    description: "test",
    feature: "coolify",
    env: COOLIFY_MARKERS,
    auto: AutoSelect::Detect {
        order: 10,
        markers: COOLIFY_MARKERS,
        ambient: &[],
    },
    build: DESCRIPTOR.build,
};

const FALLBACK: PlatformDescriptor = PlatformDescriptor {
    name: "local",
    description: "test",
    feature: "local",
    env: &[],
    auto: AutoSelect::Fallback,
    build: DESCRIPTOR.build,
};

#[test]
fn auto_picks_kubernetes_after_configured_platforms_and_before_the_fallback() {
    let registry = Registry::from_descriptors([&EARLIER, &DESCRIPTOR, &FALLBACK]).unwrap();
    let in_cluster = MapEnv::from([("KUBERNETES_SERVICE_HOST", "10.96.0.1")]);
    let chosen = select_platform(&registry, &in_cluster).unwrap();
    assert_eq!(chosen.descriptor.name, "kubernetes");
    assert_eq!(chosen.selected_by, SelectedBy::Detected);
    assert!(
        chosen.reason.contains("KUBERNETES_SERVICE_HOST"),
        "{}",
        chosen.reason
    );

    let both = in_cluster
        .clone()
        .with("COOLIFY_API_URL", "https://coolify.example");
    let chosen = select_platform(&registry, &both).unwrap();
    assert_eq!(chosen.descriptor.name, "coolify");
    assert!(
        chosen
            .warnings
            .iter()
            .any(|w| w.contains("kubernetes is configured too"))
    );

    let chosen = select_platform(&registry, &MapEnv::new()).unwrap();
    assert_eq!(chosen.descriptor.name, "local");

    // Alone, with nothing set: either variable is enough, and the error says so.
    let alone = Registry::from_descriptors([&DESCRIPTOR]).unwrap();
    let error = select_platform(&alone, &MapEnv::new()).unwrap_err();
    assert!(
        error
            .to_string()
            .ends_with("kubernetes needs KUBERNETES_SERVICE_HOST or K8S_NAMESPACE."),
        "{error}"
    );
}

#[test]
fn a_bad_configuration_names_every_problem_at_once() {
    let env = MapEnv::from([
        ("K8S_NAMESPACE", "Bots_Namespace"),
        ("K8S_STOP_GRACE", "soon"),
        ("K8S_POD_TEMPLATE_ZOOM", "/nonexistent/zoom.yaml"),
    ]);
    let error = KubernetesConfig::from_env_with(&env, &no_cluster_files()).unwrap_err();
    let text = error.to_string();
    for part in [
        "K8S_STOP_GRACE",
        "K8S_POD_TEMPLATE_TEAMS is missing",
        "K8S_POD_TEMPLATE_MEET is missing",
    ] {
        assert!(text.contains(part), "{part}: {text}");
    }
    // Once the variables are well-formed, the namespace and templates are checked together.
    let templates = Templates::new();
    let env = templates
        .env()
        .with("K8S_NAMESPACE", "Bots_Namespace")
        .with("K8S_CONTAINER_ZOOM", "zoom-bot");
    let text = KubernetesConfig::from_env_with(&env, &no_cluster_files())
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("K8S_NAMESPACE \"Bots_Namespace\" is not a namespace name"),
        "{text}"
    );
    assert!(text.contains("K8S_CONTAINER_ZOOM"), "{text}");
}

#[test]
fn the_namespace_defaults_to_the_service_accounts_then_default() {
    let templates = Templates::new();
    let mut env = templates.env();
    env.set("K8S_NAMESPACE", "");
    // A template that names no namespace of its own.
    let templates = Templates::with(
        crate::support::TEAMS_TEMPLATE
            .replace("teams-bot", "bot")
            .as_str(),
        crate::support::TEAMS_TEMPLATE,
        crate::support::MEET_TEMPLATE,
    );
    let mut env = templates.env();
    env.set("K8S_NAMESPACE", "");
    let config = KubernetesConfig::from_env_with(&env, &no_cluster_files()).unwrap();
    assert_eq!(config.namespace, "default");

    let file = templates.dir().join("namespace");
    std::fs::write(&file, "meeting-bots\n").unwrap();
    let files = ClusterFiles {
        namespace_file: file,
    };
    let config = KubernetesConfig::from_env_with(&env, &files).unwrap();
    assert_eq!(config.namespace, "meeting-bots");
    assert_eq!(
        config.namespace_source,
        "the service account's namespace file"
    );
}

#[tokio::test]
async fn the_descriptor_builds_the_platform_from_the_environment() {
    let templates = Templates::new();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("config");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster: {server: 'http://127.0.0.1:9'}\ncontexts:\n- name: test\n  context: {cluster: test, user: test}\ncurrent-context: test\nusers:\n- name: test\n  user: {token: not-a-real-token}\n",
    )
    .unwrap();
    let env = templates
        .env()
        .with("KUBECONFIG", kubeconfig.display().to_string());
    let context = PlatformContext::new(
        std::sync::Arc::new(env),
        std::sync::Arc::new(platform_core::InMemorySlotStore::new()),
        crate::support::installation(),
    );
    let platform = (DESCRIPTOR.build)(context).await.unwrap();
    assert_eq!(platform.platform_name(), "kubernetes");
    // Nothing listens there: could not reach, and the token is not in the error.
    let error = platform.check_reachable().await.unwrap_err();
    assert!(!error.to_string().contains("not-a-real-token"), "{error}");
}
