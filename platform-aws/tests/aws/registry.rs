//! Registration, `auto` detection and construction from the environment.

use std::sync::Arc;

use platform_aws::{DESCRIPTOR, PLATFORM_NAME};
use platform_core::{Detection, Error, InMemorySlotStore, MapEnv, PlatformContext, Registry};

use crate::support::{INSTALLATION, installation};

#[test]
fn registered_as_aws_with_its_feature() {
    let registry = Registry::global().unwrap();
    let aws = registry.get("aws").expect("the aws platform is registered");
    assert_eq!(aws.name, PLATFORM_NAME);
    assert_eq!(aws.feature, "aws");
    assert!(aws.env.iter().all(|spec| !spec.description.is_empty()));
    for name in [
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_ECS",
        "ECS_CAPACITY_PROVIDER_STRATEGY",
        "ECS_BOT_PORT",
    ] {
        assert!(
            aws.env.iter().any(|spec| spec.name == name),
            "{name} is declared"
        );
    }
}

#[test]
fn auto_detection_needs_region_and_cluster() {
    assert_eq!(DESCRIPTOR.detect(&MapEnv::new()), Detection::NotConfigured);
    // Set on many machines for other tools: not "partly configured".
    assert_eq!(
        DESCRIPTOR.detect(&MapEnv::from([("AWS_REGION", "eu-west-1")])),
        Detection::NotConfigured
    );
    assert_eq!(
        DESCRIPTOR.detect(&MapEnv::from([("AWS_ECS_CLUSTER", "bots")])),
        Detection::Partial {
            present: vec!["ECS_CLUSTER"],
            missing: vec!["AWS_REGION"]
        }
    );
    assert_eq!(
        DESCRIPTOR.detect(&MapEnv::from([
            ("AWS_REGION", "eu-west-1"),
            ("ECS_CLUSTER", "bots")
        ])),
        Detection::Configured
    );
}

#[tokio::test]
async fn building_from_an_incomplete_environment_lists_every_problem() {
    let env = MapEnv::from([
        ("AWS_REGION", "eu-west-1"),
        ("ECS_CLUSTER", "bots"),
        ("ECS_BOT_PORT", "0"),
    ]);
    let context = PlatformContext::new(
        Arc::new(env),
        Arc::new(InMemorySlotStore::new()),
        installation(INSTALLATION),
    );
    let Err(Error::Config { platform, problems }) = (DESCRIPTOR.build)(context).await else {
        panic!("expected a config error");
    };
    assert_eq!(platform, "aws");
    let names: Vec<_> = problems.iter().map(|p| p.variable).collect();
    assert_eq!(
        names,
        [
            "ECS_SUBNETS",
            "ECS_SECURITY_GROUPS",
            "ECS_TASK_DEF_ZOOM",
            "ECS_TASK_DEF_TEAMS",
            "ECS_TASK_DEF_MEET",
            "ECS_BOT_PORT"
        ]
    );
}
