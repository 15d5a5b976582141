//! The `local` platform is registered and builds from its environment.

use std::sync::Arc;

use platform_core::{AutoSelect, InMemorySlotStore, MapEnv, PlatformContext, Registry, StatusKind};

use crate::support::{bot, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_is_registered_as_the_fallback_and_builds_from_the_environment() {
    let registry = Registry::global().unwrap();
    let descriptor = registry.get("local").expect("local is registered");
    assert_eq!(descriptor.feature, "local");
    assert!(matches!(descriptor.auto, AutoSelect::Fallback));
    let names: Vec<_> = descriptor.env.iter().map(|s| s.name).collect();
    assert_eq!(
        names,
        [
            "LOCAL_BOT_COMMAND",
            "LOCAL_STATE_DIR",
            "LOCAL_STOP_GRACE_SECONDS",
            "LOCAL_MAX_BOTS",
            "LOCAL_START_CHECK_MS",
            "LOCAL_BOT_INHERIT_ENV",
        ]
    );
    assert!(descriptor.env.iter().all(|s| !s.description.is_empty()));

    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let env = MapEnv::from([
        ("LOCAL_BOT_COMMAND", "sleep 1000"),
        ("LOCAL_STATE_DIR", state.to_str().unwrap()),
        ("LOCAL_STOP_GRACE_SECONDS", "1"),
    ]);
    let context = PlatformContext::new(
        Arc::new(env),
        Arc::new(InMemorySlotStore::new()),
        test_installation(),
    );
    let platform = (descriptor.build)(context).await.unwrap();
    assert_eq!(platform.platform_name(), "local");
    platform.check_reachable().await.unwrap();
    let deployed = platform.deploy_bot(&bot(1), 1).await.unwrap();
    let status = platform.get_bot_status(&deployed.identifier).await.unwrap();
    assert_eq!(status.kind, StatusKind::Running);
    platform.stop_bot(&deployed.identifier).await.unwrap();
    platform.cleanup(&deployed.identifier).await.unwrap();
    let records = state.join("bots").join(test_installation().as_str());
    eventually("the state directory holds no record", || {
        std::fs::read_dir(&records).unwrap().count() == 0
    })
    .await;
}

#[tokio::test]
async fn an_unusable_state_directory_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let env = MapEnv::from([
        ("LOCAL_BOT_COMMAND", "sleep 1000"),
        ("LOCAL_STATE_DIR", file.join("state").to_str().unwrap()),
    ]);
    let context = PlatformContext::new(
        Arc::new(env),
        Arc::new(InMemorySlotStore::new()),
        test_installation(),
    );
    let descriptor = Registry::global().unwrap().get("local").unwrap();
    let Err(err) = (descriptor.build)(context).await else {
        panic!("a state directory under a file cannot work");
    };
    let text = err.to_string();
    assert!(text.contains("LOCAL_STATE_DIR"), "{text}");
    assert!(text.contains("cannot be created"), "{text}");
}

fn test_installation() -> platform_core::InstallationId {
    platform_core::InstallationId::new("test0001").unwrap()
}
