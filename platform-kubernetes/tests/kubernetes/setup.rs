//! What `doctor` learns about a Kubernetes setup.

use platform_core::{CheckOutcome, PlatformService};

use crate::support::Cluster;

#[tokio::test]
async fn doctor_checks_reach_templates_and_permissions() {
    let cluster = Cluster::start().await;
    let checks = cluster.platform().check_setup().await;
    let find = |needle: &str| {
        checks
            .iter()
            .filter(|c| c.name.contains(needle))
            .collect::<Vec<_>>()
    };
    assert!(matches!(find(") answers")[0].outcome, CheckOutcome::Ok));
    assert!(
        find("K8S_POD_TEMPLATE_ZOOM")
            .iter()
            .all(|c| c.outcome == CheckOutcome::Ok)
    );
    let teams = find("K8S_POD_TEMPLATE_TEAMS");
    let warnings: Vec<&str> = teams
        .iter()
        .filter_map(|c| match &c.outcome {
            CheckOutcome::Warning(w) => Some(w.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(warnings.len(), 2, "{teams:?}");
    assert!(warnings.iter().any(|w| w.contains("memory request")));
    assert!(warnings.iter().any(|w| w.contains("/dev/shm")));
    let permissions = find("permission to");
    assert_eq!(permissions.len(), 6);
    assert!(
        permissions.iter().all(|c| c.outcome == CheckOutcome::Ok),
        "{permissions:?}"
    );
    assert_eq!(cluster.api.calls("POST pods"), 0, "doctor starts nothing");
    assert_eq!(cluster.api.calls("POST access"), 6);
}

#[tokio::test]
async fn doctor_names_a_missing_permission_and_the_role_to_apply() {
    let cluster = Cluster::start().await;
    cluster.api.allow_access(false);
    let checks = cluster.platform().check_setup().await;
    let problems: Vec<_> = checks.iter().filter(|c| c.is_problem()).collect();
    assert_eq!(problems.len(), 6, "{problems:?}");
    assert!(problems.iter().any(|c| c.name.contains("delete pods")));
    assert!(matches!(&problems[0].outcome, CheckOutcome::Problem(p) if p.contains("rbac.yaml")));
}
