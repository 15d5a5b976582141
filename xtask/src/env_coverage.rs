//! The generated docs list exactly the variables the code reads.
//!
//! Every variable the product reads is declared as a `platform_core::EnvVarSpec`
//! (`EnvVarSpec::required/optional/with_default("NAME", …)`, with
//! `.aliases(&[…])`), and read through it. This test scans the shipped
//! sources for those declarations and for any direct `env::var("…")` read,
//! and compares them with `docs/ENVIRONMENT.md` and `.env.example`: a
//! variable the code reads but the docs do not list fails, and so does a
//! documented variable no code declares.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::cmd::workspace_root;

/// The crates whose sources ship in `meeboter-deploy`.
const SHIPPED_CRATES: &[&str] = &[
    "platform-core",
    "platform-coolify",
    "platform-aws",
    "platform-local",
    "platform-kubernetes",
    "deployment",
];

/// Variables read directly that are the operating system's, not ours.
const SYSTEM_VARIABLES: &[&str] = &[
    // The local platform resolves the bot command on PATH, as a shell would.
    "PATH",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The string literal right after `marker` (skipping whitespace), if it
/// looks like a variable name.
fn literal_after(text: &str, marker: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(marker) {
        rest = &rest[at + marker.len()..];
        let trimmed = rest.trim_start();
        if let Some(body) = trimmed.strip_prefix('"')
            && let Some(end) = body.find('"')
        {
            let name = &body[..end];
            if !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            {
                names.push(name.to_owned());
            }
        }
    }
    names
}

/// Names in `.aliases(&["A", "B"])` lists.
fn aliases(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(".aliases(&[") {
        rest = &rest[at + ".aliases(&[".len()..];
        let list = &rest[..rest.find(']').unwrap_or(0)];
        names.extend(
            list.split(',')
                .map(|s| s.trim().trim_matches('"').to_owned())
                .filter(|s| !s.is_empty()),
        );
    }
    names
}

/// Every variable the shipped code declares or reads directly.
fn read_by_code() -> BTreeSet<String> {
    let root = workspace_root();
    let mut files = Vec::new();
    for krate in SHIPPED_CRATES {
        rust_files(&root.join(krate).join("src"), &mut files);
    }
    let mut names = BTreeSet::new();
    for file in files {
        let text = fs::read_to_string(&file).unwrap_or_default();
        // Unit tests at the bottom of a file declare specs of their own.
        let text = text.split("#[cfg(test)]").next().unwrap_or_default();
        for marker in [
            "EnvVarSpec::required(",
            "EnvVarSpec::optional(",
            "EnvVarSpec::with_default(",
            "env::var(",
            "env::var_os(",
        ] {
            names.extend(literal_after(text, marker));
        }
        names.extend(aliases(text));
    }
    names.retain(|n| !SYSTEM_VARIABLES.contains(&n.as_str()));
    names
}

/// The heading of the section listing what bots receive: variables we write
/// for the bot image, declared in `platform_core::bot_env`, not read by the
/// service.
const BOT_SECTION: &str = "## What a bot receives";

fn documented_in_reference(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let read_by_us = text.split(BOT_SECTION).next().unwrap_or_default();
    for row in read_by_us.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.split(" | ").collect();
        let name = cells[0].trim_start_matches("| ").trim_matches('`');
        names.insert(name.to_owned());
        if let Some(aliases) = cells.get(4) {
            names.extend(
                aliases
                    .split(", ")
                    .map(|a| a.trim_matches('`').to_owned())
                    .filter(|a| !a.is_empty()),
            );
        }
    }
    names
}

fn documented_in_example(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        if let Some(assignment) = line.strip_prefix('#')
            && let Some((name, _)) = assignment.split_once('=')
            && !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        {
            names.insert(name.to_owned());
        }
        if let Some(also) = line.split("Also accepted as ").nth(1) {
            names.extend(also.trim_end_matches('.').split(", ").map(str::to_owned));
        }
    }
    names
}

fn difference(a: &BTreeSet<String>, b: &BTreeSet<String>) -> Vec<String> {
    a.difference(b).cloned().collect()
}

#[test]
fn the_scan_finds_declarations_across_lines_and_aliases() {
    let text = r#"const A: EnvVarSpec = EnvVarSpec::optional(
        "ECS_CAPACITY_PROVIDER_STRATEGY",
        "doc",
    ).aliases(&["OLD_NAME", "OTHER"]);
    let p = std::env::var_os("PATH");"#;
    assert_eq!(
        literal_after(text, "EnvVarSpec::optional("),
        ["ECS_CAPACITY_PROVIDER_STRATEGY"]
    );
    assert_eq!(aliases(text), ["OLD_NAME", "OTHER"]);
    assert_eq!(literal_after(text, "env::var_os("), ["PATH"]);
}

#[test]
fn every_variable_the_code_reads_is_documented_and_every_documented_one_is_read() {
    let root = workspace_root();
    let code = read_by_code();
    assert!(
        code.contains("DEPLOYMENT_PLATFORM") && code.contains("COOLIFY_API_KEY"),
        "the scan found {code:?}"
    );

    let reference =
        fs::read_to_string(root.join("docs/ENVIRONMENT.md")).expect("docs/ENVIRONMENT.md exists");
    let reference = documented_in_reference(&reference);
    let missing = difference(&code, &reference);
    assert!(
        missing.is_empty(),
        "read by the code but not in docs/ENVIRONMENT.md: {missing:?}"
    );
    let unread = difference(&reference, &code);
    assert!(
        unread.is_empty(),
        "in docs/ENVIRONMENT.md but read by no code: {unread:?}"
    );

    let example = fs::read_to_string(root.join(".env.example")).expect(".env.example exists");
    let example = documented_in_example(&example);
    // Test hooks are not an operator's configuration.
    let operator_facing: BTreeSet<String> = code
        .iter()
        .filter(|name| !name.starts_with("MEEBOTER_TEST_"))
        .cloned()
        .collect();
    let missing = difference(&operator_facing, &example);
    assert!(
        missing.is_empty(),
        "read by the code but not in .env.example: {missing:?}"
    );
    let unread = difference(&example, &code);
    assert!(
        unread.is_empty(),
        "in .env.example but read by no code: {unread:?}"
    );
}

#[test]
fn generated_docs_are_fresh() {
    // `cargo test` runs the same freshness check as `cargo xtask docs --check`.
    crate::docs::run(crate::docs::Mode::Check).unwrap();
}
