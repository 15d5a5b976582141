//! `cargo xtask ci`: what CI runs.

use crate::cmd::{cargo, output, run as run_command};
use crate::docs;
use crate::feature_sets::{CORE_FORBIDDEN, FEATURE_SETS, crate_names, violations};

/// Runs every check in order and stops at the first failure.
pub fn run() -> Result<(), String> {
    step("formatting");
    run_command(cargo(&["fmt", "--all", "--", "--check"]))?;

    step("clippy, all targets and features, warnings are errors");
    run_command(cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--all-features",
        "--",
        "-D",
        "warnings",
    ]))?;

    step("each platform set compiles alone");
    run_command(cargo(&[
        "check",
        "-p",
        "deployment",
        "--no-default-features",
    ]))?;
    for set in FEATURE_SETS {
        let features = set.features.join(",");
        run_command(cargo(&[
            "check",
            "-p",
            "deployment",
            "--no-default-features",
            "--features",
            &features,
        ]))?;
    }

    step("dependency trees");
    check_trees()?;

    step("tests");
    run_command(cargo(&["test", "--workspace", "--all-features"]))?;

    step("docs build without warnings");
    let mut doc = cargo(&["doc", "--workspace", "--no-deps", "--all-features"]);
    doc.env("RUSTDOCFLAGS", "-D warnings");
    run_command(doc)?;

    step("generated docs are fresh");
    docs::run(docs::Mode::Check)?;

    eprintln!("\nci: all checks passed");
    Ok(())
}

/// Asserts that lean builds do not pull what they must not.
pub fn check_trees() -> Result<(), String> {
    let mut problems = Vec::new();
    let core = output(cargo(&[
        "tree",
        "-p",
        "platform-core",
        "-e",
        "normal",
        "--prefix",
        "none",
    ]))?;
    let bad = violations(&crate_names(&core), CORE_FORBIDDEN);
    if !bad.is_empty() {
        problems.push(format!("platform-core depends on {}", bad.join(", ")));
    }
    for set in FEATURE_SETS.iter().filter(|s| !s.forbidden.is_empty()) {
        let features = set.features.join(",");
        let tree = output(cargo(&[
            "tree",
            "-p",
            "deployment",
            "--no-default-features",
            "--features",
            &features,
            "-e",
            "normal",
            "--prefix",
            "none",
        ]))?;
        let bad = violations(&crate_names(&tree), set.forbidden);
        if bad.is_empty() {
            eprintln!(
                "ok: the {} build contains none of {}",
                set.name,
                set.forbidden.join(", ")
            );
        } else {
            problems.push(format!(
                "the {} build contains {}",
                set.name,
                bad.join(", ")
            ));
        }
    }
    if problems.is_empty() {
        eprintln!("ok: platform-core has no HTTP client, AWS crate or database crate");
        Ok(())
    } else {
        Err(format!(
            "dependency-tree rules broken: {}",
            problems.join("; ")
        ))
    }
}

fn step(name: &str) {
    eprintln!("\n== ci: {name}");
}
