//! Platform selection from `DEPLOYMENT_PLATFORM`, against a fake registry.

use std::sync::Arc;

use platform_core::testkit::FakePlatform;
use platform_core::{
    AutoSelect, EnvVarSpec, MapEnv, PlatformContext, PlatformDescriptor, PlatformService, Registry,
    SelectedBy, SelectionError, select_auto, select_platform, select_platforms,
};

const CLOUD_URL: EnvVarSpec = EnvVarSpec::required("COOLIFY_API_URL", "Coolify API URL.");
const CLOUD_KEY: EnvVarSpec = EnvVarSpec::required("COOLIFY_API_KEY", "Coolify API key.")
    .secret()
    .aliases(&["COOLIFY_API_TOKEN"]);
const REGION: EnvVarSpec = EnvVarSpec::required("AWS_REGION", "Region.");
const CLUSTER: EnvVarSpec =
    EnvVarSpec::required("ECS_CLUSTER", "Cluster.").aliases(&["AWS_ECS_CLUSTER"]);

fn build(
    _: PlatformContext,
) -> platform_core::BoxFuture<'static, platform_core::Result<Arc<dyn PlatformService>>> {
    Box::pin(async { Ok(Arc::new(FakePlatform::new()) as Arc<dyn PlatformService>) })
}

static COOLIFY: PlatformDescriptor = PlatformDescriptor {
    name: "coolify",
    description: "Coolify warm pool",
    feature: "coolify",
    env: &[CLOUD_URL, CLOUD_KEY],
    auto: AutoSelect::Detect {
        order: 10,
        markers: &[CLOUD_URL, CLOUD_KEY],
        ambient: &[],
    },
    build,
};

static AWS: PlatformDescriptor = PlatformDescriptor {
    name: "aws",
    description: "ECS Fargate",
    feature: "aws",
    env: &[REGION, CLUSTER],
    auto: AutoSelect::Detect {
        order: 20,
        markers: &[REGION, CLUSTER],
        ambient: &["AWS_REGION"],
    },
    build,
};

static LOCAL: PlatformDescriptor = PlatformDescriptor {
    name: "local",
    description: "Local processes",
    feature: "local",
    env: &[],
    auto: AutoSelect::Fallback,
    build,
};

fn registry(platforms: &[&'static PlatformDescriptor]) -> Registry {
    Registry::from_descriptors(platforms.iter().copied()).unwrap()
}

fn all() -> Registry {
    registry(&[&LOCAL, &COOLIFY, &AWS])
}

#[test]
fn an_explicit_name_picks_that_platform() {
    let env = MapEnv::from([("DEPLOYMENT_PLATFORM", "AWS")]);
    let selection = select_platform(&all(), &env).unwrap();
    assert_eq!(selection.descriptor.name, "aws");
    assert_eq!(selection.selected_by, SelectedBy::Name);
    assert_eq!(selection.reason, "DEPLOYMENT_PLATFORM=aws");
}

#[test]
fn an_unknown_name_lists_what_is_compiled_in() {
    let env = MapEnv::from([("DEPLOYMENT_PLATFORM", "nomad")]);
    let err = select_platform(&all(), &env).unwrap_err();
    assert!(matches!(err, SelectionError::Unknown { .. }));
    assert_eq!(
        err.to_string(),
        "DEPLOYMENT_PLATFORM=\"nomad\" is not a known platform; this binary accepts: aws, coolify, local, auto"
    );
    // Kubernetes is ours: the error says which feature brings it.
    let env = MapEnv::from([("DEPLOYMENT_PLATFORM", "kubernetes")]);
    let err = select_platform(&all(), &env).unwrap_err();
    assert!(
        err.to_string()
            .contains("rebuild with `cargo build -p deployment --features kubernetes`"),
        "{err}"
    );
}

#[test]
fn a_name_not_compiled_in_says_which_feature_adds_it() {
    let env = MapEnv::from([("DEPLOYMENT_PLATFORM", "aws")]);
    let err = select_platform(&registry(&[&COOLIFY, &LOCAL]), &env).unwrap_err();
    assert_eq!(
        err.to_string(),
        "DEPLOYMENT_PLATFORM=\"aws\": the aws platform is not compiled into this binary (compiled in: coolify, local); rebuild with `cargo build -p deployment --features aws`"
    );
}

#[test]
fn auto_is_the_default_and_checks_coolify_first() {
    let env = MapEnv::from([
        ("COOLIFY_API_URL", "https://coolify.example.com"),
        ("COOLIFY_API_TOKEN", "t"),
        ("AWS_REGION", "eu-west-1"),
        ("ECS_CLUSTER", "bots"),
    ]);
    let selection = select_platform(&all(), &env).unwrap();
    assert_eq!(selection.descriptor.name, "coolify");
    assert_eq!(selection.selected_by, SelectedBy::Detected);
    assert_eq!(
        selection.reason,
        "auto-detected: COOLIFY_API_URL and COOLIFY_API_KEY are set"
    );
    assert_eq!(
        selection.warnings,
        ["aws is configured too but coolify comes first; set DEPLOYMENT_PLATFORM=aws to use it"]
    );
}

#[test]
fn auto_picks_aws_when_only_aws_is_configured() {
    let env = MapEnv::from([
        ("DEPLOYMENT_PLATFORM", "auto"),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ECS_CLUSTER", "bots"),
    ]);
    let selection = select_platform(&all(), &env).unwrap();
    assert_eq!(selection.descriptor.name, "aws");
    assert!(selection.warnings.is_empty());
}

#[test]
fn a_partly_configured_platform_is_an_error_not_a_fall_through() {
    // Coolify half set, AWS fully set: still an error, never a silent switch to AWS.
    let env = MapEnv::from([
        ("COOLIFY_API_URL", "https://coolify.example.com"),
        ("AWS_REGION", "eu-west-1"),
        ("ECS_CLUSTER", "bots"),
    ]);
    let err = select_platform(&all(), &env).unwrap_err();
    assert_eq!(
        err,
        SelectionError::PartlyConfigured {
            platform: "coolify",
            present: vec!["COOLIFY_API_URL"],
            missing: vec!["COOLIFY_API_KEY"],
        }
    );
    assert_eq!(
        err.to_string(),
        "DEPLOYMENT_PLATFORM=auto: coolify is partly configured: COOLIFY_API_URL set but COOLIFY_API_KEY missing; set the missing variables, or set DEPLOYMENT_PLATFORM to choose a platform explicitly"
    );

    let env = MapEnv::from([("ECS_CLUSTER", "bots")]);
    let err = select_platform(&all(), &env).unwrap_err();
    assert!(
        err.to_string()
            .contains("aws is partly configured: ECS_CLUSTER set but AWS_REGION missing"),
        "{err}"
    );
}

#[test]
fn an_ambient_variable_alone_does_not_count_as_configured() {
    let env = MapEnv::from([("AWS_REGION", "eu-west-1")]);
    let selection = select_platform(&all(), &env).unwrap();
    assert_eq!(selection.descriptor.name, "local");
}

#[test]
fn nothing_configured_falls_back_to_local_with_a_warning() {
    let selection = select_platform(&all(), &MapEnv::new()).unwrap();
    assert_eq!(selection.descriptor.name, "local");
    assert_eq!(selection.selected_by, SelectedBy::Fallback);
    assert_eq!(
        selection.reason,
        "auto: no cloud platform is configured, falling back to local"
    );
    assert_eq!(selection.warnings.len(), 1);
    assert!(
        selection.warnings[0].contains(
            "coolify (COOLIFY_API_URL, COOLIFY_API_KEY) or aws (AWS_REGION, ECS_CLUSTER)"
        ),
        "{}",
        selection.warnings[0]
    );
}

#[test]
fn nothing_configured_without_local_says_what_each_platform_needs() {
    let err = select_platform(&registry(&[&AWS, &COOLIFY]), &MapEnv::new()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "DEPLOYMENT_PLATFORM=auto: no platform is configured. aws needs AWS_REGION and ECS_CLUSTER; coolify needs COOLIFY_API_URL and COOLIFY_API_KEY."
    );
    let err = select_platform(&registry(&[]), &MapEnv::new()).unwrap_err();
    assert!(err.to_string().contains("no platform compiled in"), "{err}");
}

#[test]
fn select_auto_ignores_an_explicit_choice() {
    let env = MapEnv::from([("DEPLOYMENT_PLATFORM", "aws")]);
    assert_eq!(select_auto(&all(), &env).unwrap().descriptor.name, "local");
}

#[test]
fn the_registry_is_sorted_and_rejects_duplicates() {
    assert_eq!(all().names(), ["aws", "coolify", "local"]);
    static SECOND_LOCAL: PlatformDescriptor = PlatformDescriptor {
        feature: "local-v2",
        ..LOCAL
    };
    let err = Registry::from_descriptors([&LOCAL, &COOLIFY, &SECOND_LOCAL]).unwrap_err();
    assert_eq!(err.name, "local");
    assert!(
        err.to_string()
            .contains("two platform plugins are registered as \"local\""),
        "{err}"
    );
}

fn names(env: &MapEnv) -> Result<Vec<&'static str>, SelectionError> {
    select_platforms(&all(), env).map(|list| list.iter().map(|s| s.descriptor.name).collect())
}

#[test]
fn a_priority_list_is_taken_in_its_order() {
    let env = MapEnv::from([("PLATFORM_PRIORITY", " AWS , coolify")]);
    assert_eq!(names(&env).unwrap(), ["aws", "coolify"]);
    let list = select_platforms(&all(), &env).unwrap();
    assert_eq!(list[1].reason, "PLATFORM_PRIORITY, position 2");
}

#[test]
fn one_platform_name_is_a_list_of_one() {
    let env = MapEnv::from([("DEPLOYMENT_PLATFORM", "coolify")]);
    assert_eq!(names(&env).unwrap(), ["coolify"]);
}

#[test]
fn auto_lists_every_configured_platform_and_local_only_alone() {
    let env = MapEnv::from([
        ("COOLIFY_API_URL", "https://c.example"),
        ("COOLIFY_API_KEY", "k"),
        ("AWS_REGION", "eu-west-1"),
        ("ECS_CLUSTER", "bots"),
    ]);
    assert_eq!(names(&env).unwrap(), ["coolify", "aws"]);
    let env = MapEnv::from([("AWS_REGION", "eu-west-1"), ("ECS_CLUSTER", "bots")]);
    assert_eq!(names(&env).unwrap(), ["aws"]);
    assert_eq!(names(&MapEnv::default()).unwrap(), ["local"]);
    let partial = MapEnv::from([
        ("AWS_REGION", "eu-west-1"),
        ("ECS_CLUSTER", "bots"),
        ("COOLIFY_API_URL", "https://c.example"),
    ]);
    let err = names(&partial).unwrap_err();
    assert!(err.to_string().contains("COOLIFY_API_KEY missing"), "{err}");
}

#[test]
fn bad_priority_lists_name_the_bad_entry() {
    let cases = [
        ("coolify,nomad", "\"nomad\", which is not a known platform"),
        ("coolify,aws,coolify", "names \"coolify\" twice"),
        ("coolify,,aws", "has an empty entry"),
        ("auto", "\"auto\", which is not a known platform"),
    ];
    for (list, expected) in cases {
        let env = MapEnv::from([("PLATFORM_PRIORITY", list)]);
        let err = names(&env).unwrap_err();
        assert!(err.to_string().contains(expected), "{list}: {err}");
    }
    let only_local = registry(&[&LOCAL]);
    let env = MapEnv::from([("PLATFORM_PRIORITY", "local,aws")]);
    let err = select_platforms(&only_local, &env).unwrap_err();
    assert!(
        err.to_string().contains("not compiled into this binary")
            && err.to_string().contains("--features aws"),
        "{err}"
    );
    let env = MapEnv::from([
        ("PLATFORM_PRIORITY", "aws"),
        ("DEPLOYMENT_PLATFORM", "coolify"),
    ]);
    assert!(matches!(
        names(&env).unwrap_err(),
        SelectionError::PriorityConflict { .. }
    ));
}
