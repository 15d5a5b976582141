//! `cargo xtask docs`: the environment reference, `.env.example` and the
//! OpenAPI document, generated from the `meeboter-deploy` binary so they
//! cannot drift from the code.

use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;

use serde::Deserialize;

use crate::cmd::{cargo, output, workspace_root};
use crate::feature_sets::FEATURE_SETS;

/// Write the files, or only check them.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Regenerate and write.
    Write,
    /// Fail when a file differs from what would be generated.
    Check,
}

/// What `meeboter-deploy platforms --json` prints (the parts the docs use).
#[derive(Deserialize)]
pub struct Listing {
    /// Every compiled-in platform.
    pub platforms: Vec<PlatformInfo>,
    /// The service's own variables.
    pub service_env: Vec<Spec>,
    /// Variables only the CLI reads.
    #[serde(default)]
    pub cli_env: Vec<Spec>,
    /// Variables the stand-in bot reads.
    #[serde(default)]
    pub sim_bot_env: Vec<Spec>,
    /// The variables every bot container receives.
    #[serde(default)]
    pub bot_env: Vec<Spec>,
    /// Test hooks, read by debug builds only.
    #[serde(default)]
    pub test_env: Vec<Spec>,
}

impl Listing {
    /// The groups of variables that are not a platform's, in the order the
    /// docs show them: (heading, who reads them, variables).
    fn service_groups(&self) -> [(&'static str, &'static str, &[Spec]); 4] {
        [
            (
                "Service",
                "Read by every build of `meeboter-deploy`.",
                &self.service_env,
            ),
            (
                "Command line",
                "Read by the `meeboter-deploy` CLI commands that take a meeting (`deploy`), so that secrets need not be flags visible in `ps`.",
                &self.cli_env,
            ),
            (
                "Stand-in bot",
                "Read by `meeboter-deploy sim-bot`, the stand-in bot the local platform runs by default. It also reads the bot variables below.",
                &self.sim_bot_env,
            ),
            (
                "Test hooks",
                "Read only by debug builds, for the crash-safety tests; release binaries neither contain nor read them.",
                &self.test_env,
            ),
        ]
    }
}

/// One platform of the listing.
#[derive(Deserialize)]
pub struct PlatformInfo {
    /// Its name.
    pub name: String,
    /// One line about it.
    pub description: String,
    /// The `deployment` feature that brings it in.
    pub feature: String,
    /// Its variables.
    pub env: Vec<Spec>,
}

/// One variable, as `platform_core::EnvVarSpec` serialises.
#[derive(Deserialize)]
pub struct Spec {
    /// Its name.
    pub name: String,
    /// Other accepted names.
    pub aliases: Vec<String>,
    /// Required, optional or defaulted.
    pub requirement: Requirement,
    /// Whether it is a secret.
    pub secret: bool,
    /// What its value must look like.
    pub allowed: String,
    /// What it is for.
    pub description: String,
}

/// `{"kind": "required"}`, `{"kind": "optional"}`, `{"kind": "default", "value": "…"}`.
#[derive(Deserialize)]
pub struct Requirement {
    /// `required`, `optional` or `default`.
    pub kind: String,
    /// The default, for `default`.
    pub value: Option<String>,
}

/// Reads a `platforms --json` listing.
fn parse_listing(listing: &str) -> Result<Listing, String> {
    serde_json::from_str(listing)
        .map_err(|e| format!("`platforms --json` printed something unexpected: {e}"))
}

/// The names of the platforms in a `platforms --json` listing, sorted.
pub fn platform_names(listing: &str) -> Result<Vec<String>, String> {
    let mut names: Vec<String> = parse_listing(listing)?
        .platforms
        .into_iter()
        .map(|p| p.name)
        .collect();
    names.sort();
    Ok(names)
}

/// Runs the workspace's `meeboter-deploy` (built as needed) with `args` and
/// returns what it printed.
fn meeboter_deploy(args: &[&str]) -> Result<String, String> {
    let mut command = vec![
        "run",
        "--quiet",
        "-p",
        "deployment",
        "--bin",
        "meeboter-deploy",
        "--",
    ];
    command.extend_from_slice(args);
    output(cargo(&command))
}

/// One generated file.
pub struct Generated {
    /// Where it lives, relative to the workspace root.
    pub path: &'static str,
    /// What it must contain.
    pub contents: String,
}

/// Generates every file from the binary's output.
pub fn generate() -> Result<Vec<Generated>, String> {
    let listing = parse_listing(&meeboter_deploy(&["platforms", "--json"])?)?;
    let openapi: serde_json::Value = serde_json::from_str(&meeboter_deploy(&["openapi"])?)
        .map_err(|e| format!("`openapi` did not print JSON: {e}"))?;
    let mut openapi = serde_json::to_string_pretty(&openapi).map_err(|e| e.to_string())?;
    openapi.push('\n');
    Ok(vec![
        Generated {
            path: "docs/ENVIRONMENT.md",
            contents: environment_reference(&listing),
        },
        Generated {
            path: ".env.example",
            contents: env_example(&listing),
        },
        Generated {
            path: "docs/openapi.json",
            contents: openapi,
        },
    ])
}

/// Writes or checks every generated file.
pub fn run(mode: Mode) -> Result<(), String> {
    let root = workspace_root();
    let mut stale = Vec::new();
    for file in generate()? {
        let path: PathBuf = root.join(file.path);
        let current = fs::read_to_string(&path).unwrap_or_default();
        if current == file.contents {
            continue;
        }
        match mode {
            Mode::Write => {
                if let Some(dir) = path.parent() {
                    fs::create_dir_all(dir)
                        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                }
                fs::write(&path, &file.contents)
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                eprintln!("wrote {}", file.path);
            }
            Mode::Check => stale.push(file.path),
        }
    }
    if stale.is_empty() {
        if mode == Mode::Check {
            eprintln!("ok: generated docs are fresh");
        }
        Ok(())
    } else {
        Err(format!(
            "stale generated files: {} (the code's declarations changed); run `cargo xtask docs` and commit the result",
            stale.join(", ")
        ))
    }
}

fn binaries_with(feature: &str) -> Vec<String> {
    FEATURE_SETS
        .iter()
        .filter(|set| set.features.contains(&feature) || set.features.contains(&"all-platforms"))
        .map(|set| format!("`meeboter-deploy-{}`", set.name))
        .collect()
}

fn requirement(spec: &Spec) -> (String, String) {
    match (spec.requirement.kind.as_str(), &spec.requirement.value) {
        ("required", _) => ("yes".into(), String::new()),
        ("default", Some(v)) => ("no".into(), format!("`{v}`")),
        _ => ("no".into(), String::new()),
    }
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn table(specs: &[Spec]) -> String {
    let mut out = String::from(
        "| Variable | Required | Default | Secret | Aliases | Allowed values | Description |\n",
    );
    out.push_str("| --- | --- | --- | --- | --- | --- | --- |\n");
    for spec in specs {
        let (required, default) = requirement(spec);
        let aliases: Vec<String> = spec.aliases.iter().map(|a| format!("`{a}`")).collect();
        let _ = writeln!(
            out,
            "| `{}` | {required} | {default} | {} | {} | {} | {} |",
            spec.name,
            if spec.secret { "yes" } else { "no" },
            aliases.join(", "),
            cell(&spec.allowed),
            cell(&spec.description)
        );
    }
    out
}

const GENERATED_NOTE: &str =
    "Generated by `cargo xtask docs` from the variables declared in the code; do not edit by hand.";

/// `docs/ENVIRONMENT.md`.
pub fn environment_reference(listing: &Listing) -> String {
    let mut out = String::from("# Environment variables\n\n");
    let _ = writeln!(out, "<!-- {GENERATED_NOTE} -->\n");
    out.push_str(
        "Every variable Meeboter deploy reads, grouped by who reads it. A value that is empty or only \
         whitespace counts as unset. Secrets are never printed: not in logs, errors or `doctor` output. \
         When a variable is missing or invalid, the service refuses to start and lists every problem at once.\n\n",
    );
    for (heading, readers, specs) in listing.service_groups() {
        if specs.is_empty() {
            continue;
        }
        let _ = write!(out, "## {heading}\n\n{readers}\n\n");
        out.push_str(&table(specs));
        out.push('\n');
    }
    let mut platforms: Vec<&PlatformInfo> = listing.platforms.iter().collect();
    platforms.sort_by(|a, b| a.name.cmp(&b.name));
    for platform in platforms {
        let _ = write!(
            out,
            "## Platform `{}`\n\n{}. Read by the builds with the `{}` feature: {}.\n\n",
            platform.name,
            platform.description.trim_end_matches('.'),
            platform.feature,
            binaries_with(&platform.feature).join(", ")
        );
        if platform.env.is_empty() {
            out.push_str("It reads no variables.\n");
        } else {
            out.push_str(&table(&platform.env));
        }
        out.push('\n');
    }
    if !listing.bot_env.is_empty() {
        out.push_str(
            "## What a bot receives\n\nEvery platform gives each bot container these variables (the local platform adds \
             `BOT_PORT`). Meeboter deploy writes them; a bot image reads them.\n\n",
        );
        out.push_str(&table(&listing.bot_env));
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

fn example_block(out: &mut String, spec: &Spec, required_for: &str) {
    for line in wrap(&spec.description, 96) {
        let _ = writeln!(out, "# {line}");
    }
    let mut facts = vec![format!("Allowed: {}.", spec.allowed)];
    match (spec.requirement.kind.as_str(), &spec.requirement.value) {
        ("required", _) => facts.insert(0, format!("Required{required_for}.")),
        ("default", Some(v)) => facts.push(format!("Default: {v}.")),
        _ => facts.insert(0, "Optional.".into()),
    }
    if spec.secret {
        facts.push("Secret.".into());
    }
    if !spec.aliases.is_empty() {
        facts.push(format!("Also accepted as {}.", spec.aliases.join(", ")));
    }
    let _ = writeln!(out, "# {}", facts.join(" "));
    let value = match (spec.requirement.kind.as_str(), &spec.requirement.value) {
        ("default", Some(v)) if !spec.secret => v.as_str(),
        _ => "",
    };
    let _ = writeln!(out, "#{}={value}\n", spec.name);
}

/// `.env.example`.
pub fn env_example(listing: &Listing) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Meeboter deploy: example configuration.");
    let _ = writeln!(out, "# {GENERATED_NOTE}");
    out.push_str(
        "# Every line is commented out: uncomment and set what you need. Defaults are shown as values.\n\
         # With nothing set, the service runs bots as local processes and keeps its state in SQLite.\n\n",
    );
    for (heading, readers, specs) in listing.service_groups() {
        // Test hooks do not belong in an operator's configuration.
        if specs.is_empty() || heading == "Test hooks" {
            continue;
        }
        let _ = writeln!(out, "# ===== {heading} =====");
        for line in wrap(readers, 96) {
            let _ = writeln!(out, "# {line}");
        }
        out.push('\n');
        for spec in specs {
            example_block(&mut out, spec, "");
        }
    }
    let mut platforms: Vec<&PlatformInfo> = listing.platforms.iter().collect();
    platforms.sort_by(|a, b| a.name.cmp(&b.name));
    for platform in platforms {
        let _ = writeln!(
            out,
            "# ===== Platform {} (feature `{}`): {} =====\n",
            platform.name,
            platform.feature,
            platform.description.trim_end_matches('.')
        );
        for spec in &platform.env {
            example_block(
                &mut out,
                spec,
                &format!(" for the {} platform", platform.name),
            );
        }
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing() -> Listing {
        serde_json::from_value(serde_json::json!({
            "platforms": [{
                "name": "coolify",
                "description": "Warm pool of Coolify applications.",
                "feature": "coolify",
                "env": [{
                    "name": "COOLIFY_API_KEY",
                    "aliases": ["COOLIFY_API_TOKEN"],
                    "requirement": {"kind": "required"},
                    "secret": true,
                    "kind": {"kind": "text"},
                    "allowed": "text",
                    "description": "An API token with the read, write and deploy abilities."
                }]
            }],
            "service_env": [{
                "name": "DEPLOYMENT_PLATFORM",
                "aliases": [],
                "requirement": {"kind": "default", "value": "auto"},
                "secret": false,
                "kind": {"kind": "text"},
                "allowed": "text",
                "description": "Which platform runs the bots."
            }]
        }))
        .unwrap()
    }

    #[test]
    fn reference_lists_each_variable_with_its_facts() {
        let md = environment_reference(&listing());
        assert!(md.contains("| `DEPLOYMENT_PLATFORM` | no | `auto` | no |  | text | Which platform runs the bots. |"), "{md}");
        assert!(
            md.contains("| `COOLIFY_API_KEY` | yes |  | yes | `COOLIFY_API_TOKEN` |"),
            "{md}"
        );
        assert!(
            md.contains("`meeboter-deploy-coolify`, `meeboter-deploy-all`"),
            "{md}"
        );
    }

    #[test]
    fn example_comments_everything_out_and_never_shows_a_secret_default() {
        let example = env_example(&listing());
        assert!(example.contains("#DEPLOYMENT_PLATFORM=auto\n"), "{example}");
        assert!(example.contains("# Required for the coolify platform. Allowed: text. Secret. Also accepted as COOLIFY_API_TOKEN.\n#COOLIFY_API_KEY=\n"), "{example}");
        assert!(
            example.lines().all(|l| l.is_empty() || l.starts_with('#')),
            "{example}"
        );
    }
}
