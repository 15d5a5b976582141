//! The platform sets we ship binaries for, and what each must not contain.

/// One build of `meeboter-deploy`.
pub struct FeatureSet {
    /// Short name, used in `dist/meeboter-deploy-<name>`.
    pub name: &'static str,
    /// The `deployment` features it is built with (after `--no-default-features`).
    pub features: &'static [&'static str],
    /// The platforms its registry must contain, sorted.
    pub platforms: &'static [&'static str],
    /// Crates (exact names, or prefixes ending in `-`) that must not be in
    /// its normal dependency tree.
    pub forbidden: &'static [&'static str],
}

/// Every shipped set: each platform alone, and all of them.
pub const FEATURE_SETS: &[FeatureSet] = &[
    FeatureSet {
        name: "coolify",
        features: &["coolify"],
        platforms: &["coolify"],
        forbidden: &[
            "aws-",
            "platform-aws",
            "platform-local",
            "platform-kubernetes",
            "kube",
            "kube-",
            "k8s-openapi",
        ],
    },
    FeatureSet {
        name: "aws",
        features: &["aws"],
        platforms: &["aws"],
        forbidden: &[
            "platform-coolify",
            "platform-local",
            "platform-kubernetes",
            "kube",
            "kube-",
            "k8s-openapi",
        ],
    },
    FeatureSet {
        name: "local",
        features: &["local"],
        platforms: &["local"],
        forbidden: &[
            "aws-",
            "platform-aws",
            "platform-coolify",
            "platform-kubernetes",
            "kube",
            "kube-",
            "k8s-openapi",
        ],
    },
    FeatureSet {
        name: "kubernetes",
        features: &["kubernetes"],
        platforms: &["kubernetes"],
        forbidden: &["aws-", "platform-aws", "platform-coolify", "platform-local"],
    },
    FeatureSet {
        name: "all",
        features: &["all-platforms"],
        platforms: &["aws", "coolify", "kubernetes", "local"],
        forbidden: &[],
    },
];

/// Crates the contract crate must never pull in: HTTP clients, AWS crates,
/// database drivers.
pub const CORE_FORBIDDEN: &[&str] = &[
    "reqwest",
    "hyper",
    "hyper-util",
    "h2",
    "aws-",
    "sqlx",
    "sqlx-",
    "libsqlite3-sys",
    "tokio-postgres",
    "axum",
];

/// The crate names in a `cargo tree --prefix none` listing.
pub fn crate_names(tree: &str) -> Vec<String> {
    let mut names: Vec<String> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The crates of `names` that match a forbidden entry.
pub fn violations(names: &[String], forbidden: &[&str]) -> Vec<String> {
    names
        .iter()
        .filter(|name| {
            forbidden.iter().any(|f| match f.strip_suffix('-') {
                Some(prefix) => name.starts_with(&format!("{prefix}-")),
                None => name.as_str() == *f,
            })
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_prefixes_and_names_match_whole_crate_names() {
        let names = crate_names(
            "deployment v0.1.0 (/x)\naws-lc-rs v1.0\nhyper v1.0\nhyper-rustls v0.27\nplatform-local v0.1.0 (/x)\n",
        );
        assert_eq!(violations(&names, &["aws-"]), ["aws-lc-rs"]);
        assert_eq!(violations(&names, &["hyper"]), ["hyper"]);
        assert_eq!(violations(&names, &["platform-aws"]), Vec::<String>::new());
        assert_eq!(violations(&names, &["platform-local"]), ["platform-local"]);
        let names =
            crate_names("kube v5.0.0\nkube-core v5.0.0\nkubectl-like v1.0\nk8s-openapi v0.29.0\n");
        assert_eq!(
            violations(&names, &["kube", "kube-", "k8s-openapi"]),
            ["k8s-openapi", "kube", "kube-core"]
        );
    }
}
