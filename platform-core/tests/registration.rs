//! A plugin registered with `register_platform!` is found by `Registry::global`.

use std::sync::Arc;

use platform_core::testkit::FakePlatform;
use platform_core::{
    AutoSelect, InMemorySlotStore, MapEnv, PlatformContext, PlatformDescriptor, PlatformService,
    Registry,
};

const REGISTERED: PlatformDescriptor = PlatformDescriptor {
    name: "registered-in-test",
    description: "A fake platform registered through the macro",
    feature: "test",
    env: &[],
    auto: AutoSelect::Never,
    build: |_ctx| {
        Box::pin(async {
            Ok(Arc::new(FakePlatform::new().named("registered-in-test"))
                as Arc<dyn PlatformService>)
        })
    },
};

platform_core::register_platform!(REGISTERED);

#[tokio::test]
async fn the_macro_registers_and_the_constructor_builds() {
    let registry = Registry::global().unwrap();
    let descriptor = registry
        .get("registered-in-test")
        .expect("registered through the macro");
    let ctx = PlatformContext::new(
        Arc::new(MapEnv::new()),
        Arc::new(InMemorySlotStore::new()),
        platform_core::InstallationId::new("test0001").unwrap(),
    );
    let platform = (descriptor.build)(ctx).await.unwrap();
    assert_eq!(platform.platform_name(), "registered-in-test");
}
