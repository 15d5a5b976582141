//! What `doctor` checks on Kubernetes: the API server answers, the pod
//! templates (and what they lack that bots need), and that the credentials
//! may do exactly what a bot's life takes, asked of the API server itself
//! (SelfSubjectAccessReview), so nothing is started to find out.

use platform_core::{PlatformService, SetupCheck};

use crate::client::KubeApi;
use crate::config::K8S_POD_TEMPLATE_ZOOM;
use crate::service::KubernetesPlatform;

/// The permissions the Role in `docs/kubernetes/rbac.yaml` grants, and what
/// each is for.
pub const REQUIRED_PERMISSIONS: &[(&str, &str, &str)] = &[
    ("create", "pods", "deploy a bot"),
    ("get", "pods", "read one bot's status, confirm cleanup"),
    (
        "list",
        "pods",
        "read every bot's status in one call, sweep orphans",
    ),
    ("watch", "pods", "follow bots as they change"),
    ("delete", "pods", "stop a bot"),
    ("list", "events", "explain why a pod does not start"),
];

/// Every check, in the order `doctor` shows them.
pub(crate) async fn check_setup(platform: &KubernetesPlatform, api: &KubeApi) -> Vec<SetupCheck> {
    let config = platform.config();
    let namespace = &config.namespace;
    let mut checks = Vec::new();
    // doctor has reached the API server already; this line says which
    // namespace the bots go to and why, and guards the checks below.
    let reach = format!(
        "namespace {namespace} (from {}) answers",
        config.namespace_source
    );
    let reachable = match platform.check_reachable().await {
        Ok(()) => {
            checks.push(SetupCheck::ok(reach));
            true
        }
        Err(error) => {
            checks.push(SetupCheck::problem(reach, error.to_string()));
            false
        }
    };
    for (meeting_platform, target) in config.targets() {
        let variable = K8S_POD_TEMPLATE_ZOOM
            .name
            .replace("ZOOM", &meeting_platform.as_str().to_ascii_uppercase());
        let name = format!(
            "pod template {variable} ({})",
            target.template_path.display()
        );
        checks.push(SetupCheck::ok(format!(
            "{name}: parses, has container {:?}",
            target.container
        )));
        for advice in target.template.advice() {
            checks.push(SetupCheck::warning(
                format!("{name}: {}", advice.check),
                advice.warning.clone(),
            ));
        }
    }
    for (verb, resource, why) in REQUIRED_PERMISSIONS {
        let name = format!("permission to {verb} {resource} in namespace {namespace}");
        if !reachable {
            checks.push(SetupCheck::not_checked(
                name,
                "the API server could not be reached",
            ));
            continue;
        }
        checks.push(match api.may(namespace, verb, resource).await {
            Ok((true, _)) => SetupCheck::ok(name),
            Ok((false, reason)) => SetupCheck::problem(
                name,
                format!(
                    "refused{}; needed to {why}: apply the Role in docs/kubernetes/rbac.yaml to this service's account",
                    reason.map(|r| format!(" ({r})")).unwrap_or_default()
                ),
            ),
            Err(error) => SetupCheck::not_checked(
                name,
                format!("the API server did not answer the access review: {error}"),
            ),
        });
    }
    checks
}
