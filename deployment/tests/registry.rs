//! Each platform feature this build enables brings its platform into the
//! registry: the force-linking in `lib.rs` works.

use platform_core::Registry;

#[test]
fn each_enabled_feature_registers_its_platform() {
    let registry = Registry::global().expect("no duplicate platform names");
    let names = registry.names();
    let expected: &[(&str, bool)] = &[
        ("coolify", cfg!(feature = "coolify")),
        ("aws", cfg!(feature = "aws")),
        ("local", cfg!(feature = "local")),
        ("kubernetes", cfg!(feature = "kubernetes")),
    ];
    for (name, enabled) in expected {
        assert_eq!(
            names.contains(name),
            *enabled,
            "platform {name}: feature enabled = {enabled}, registered = {names:?}"
        );
        if *enabled {
            let descriptor = registry.get(name).unwrap();
            assert_eq!(descriptor.feature, *name);
        }
    }
    assert_eq!(deployment::ENABLED_FEATURES.len(), names.len());
}
