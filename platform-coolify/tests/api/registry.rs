//! The platform as the deployment service finds it: registered as
//! `coolify`, detected by `auto`, built from the environment.

use std::sync::Arc;

use platform_coolify::DESCRIPTOR;
use platform_core::{
    Detection, EnvLookup, ErrorKind, MapEnv, PlatformContext, Registry, SlotStore,
};

use crate::fake_coolify::{PROJECT, TOKEN};
use crate::helpers::TestCoolify;

#[test]
fn registered_as_coolify_with_every_variable_it_reads() {
    let registry = Registry::global().unwrap();
    let coolify = registry.get("coolify").expect("coolify is registered");
    assert_eq!(coolify.feature, "coolify");
    let names: Vec<&str> = coolify.env.iter().map(|s| s.name).collect();
    for name in [
        "COOLIFY_API_URL",
        "COOLIFY_API_KEY",
        "COOLIFY_PROJECT_UUID",
        "COOLIFY_SERVER_UUID",
        "COOLIFY_ENVIRONMENT_NAME",
        "COOLIFY_BOT_IMAGE_ZOOM",
        "COOLIFY_BOT_IMAGE_TEAMS",
        "COOLIFY_BOT_IMAGE_MEET",
        "COOLIFY_POOL_MAX_ZOOM",
        "COOLIFY_POOL_MAX_TEAMS",
        "COOLIFY_POOL_MAX_MEET",
        "COOLIFY_BOT_PORT",
        "COOLIFY_API_TIMEOUT",
        "COOLIFY_API_REQUESTS_PER_MINUTE",
    ] {
        assert!(names.contains(&name), "{name} is declared");
    }
    let key = coolify
        .env
        .iter()
        .find(|s| s.name == "COOLIFY_API_KEY")
        .unwrap();
    assert!(key.secret);
    assert_eq!(key.aliases, ["COOLIFY_API_TOKEN"]);
    assert!(coolify.env.iter().all(|s| !s.description.is_empty()));
}

#[test]
fn auto_detects_coolify_by_url_and_key() {
    assert_eq!(
        DESCRIPTOR.detect(&MapEnv::from([
            ("COOLIFY_API_URL", "https://c.example.com"),
            ("COOLIFY_API_TOKEN", "t"),
        ])),
        Detection::Configured
    );
    assert_eq!(
        DESCRIPTOR.detect(&MapEnv::from([(
            "COOLIFY_API_URL",
            "https://c.example.com"
        )])),
        Detection::Partial {
            present: vec!["COOLIFY_API_URL"],
            missing: vec!["COOLIFY_API_KEY"],
        }
    );
    assert_eq!(DESCRIPTOR.detect(&MapEnv::new()), Detection::NotConfigured);
    assert!(matches!(
        DESCRIPTOR.auto,
        platform_core::AutoSelect::Detect { order: 10, .. }
    ));
}

#[tokio::test]
async fn the_registered_constructor_builds_from_the_environment() {
    let coolify = TestCoolify::start().await;
    coolify.fake.add_slots("teams", 2);
    let env = MapEnv::from([
        ("COOLIFY_API_URL", coolify.server.uri().as_str()),
        ("COOLIFY_API_KEY", TOKEN),
        ("COOLIFY_PROJECT_UUID", PROJECT),
        ("COOLIFY_SERVER_UUID", "srv-main"),
    ]);
    let store: Arc<dyn SlotStore> = coolify.store.clone();
    let env: Arc<dyn EnvLookup> = Arc::new(env);
    let platform = (DESCRIPTOR.build)(PlatformContext::new(
        env,
        store.clone(),
        test_installation(),
    ))
    .await
    .unwrap();
    assert_eq!(platform.platform_name(), "coolify");
    platform.check_reachable().await.unwrap();
    assert_eq!(store.list_slots("coolify").await.unwrap().len(), 2);

    let empty: Arc<dyn EnvLookup> = Arc::new(MapEnv::new());
    let err = (DESCRIPTOR.build)(PlatformContext::new(empty, store, test_installation()))
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::Config);
    let text = err.to_string();
    for name in [
        "COOLIFY_API_URL",
        "COOLIFY_API_KEY",
        "COOLIFY_PROJECT_UUID",
        "COOLIFY_SERVER_UUID",
    ] {
        assert!(text.contains(&format!("{name} is missing")), "{text}");
    }
}

#[tokio::test]
async fn a_project_or_environment_that_does_not_exist_is_a_configuration_error() {
    let coolify = TestCoolify::start().await;
    let mut config = coolify.config();
    config.project_uuid = "no-such-project".into();
    let err = coolify.platform_with(config).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("COOLIFY_PROJECT_UUID"), "{err}");

    let mut config = coolify.config();
    config.environment_name = "prod".into();
    let err = coolify.platform_with(config).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    let text = err.to_string();
    assert!(text.contains("COOLIFY_ENVIRONMENT_NAME"), "{text}");
    assert!(text.contains("it has: production, staging"), "{text}");
}

fn test_installation() -> platform_core::InstallationId {
    crate::helpers::installation()
}
