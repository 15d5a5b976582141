//! `cargo xtask release`: one release binary per platform set.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::cmd::{cargo, output, run as run_command, workspace_root};
use crate::docs::platform_names;
use crate::feature_sets::FEATURE_SETS;

/// Builds every set into `dist/`, checks each binary contains exactly its
/// platforms, writes `dist/SHA256SUMS` and prints a size table.
pub fn run() -> Result<(), String> {
    let root = workspace_root();
    let dist = root.join("dist");
    fs::create_dir_all(&dist).map_err(|e| format!("cannot create {}: {e}", dist.display()))?;
    let mut rows = Vec::new();
    for set in FEATURE_SETS {
        let features = set.features.join(",");
        eprintln!("\n== release: {} ({features})", set.name);
        run_command(cargo(&[
            "build",
            "--release",
            "--locked",
            "-p",
            "deployment",
            "--no-default-features",
            "--features",
            &features,
        ]))?;
        let built = target_dir(&root).join("release").join("meeboter-deploy");
        let shipped = dist.join(format!("meeboter-deploy-{}", set.name));
        fs::copy(&built, &shipped).map_err(|e| {
            format!(
                "cannot copy {} to {}: {e}",
                built.display(),
                shipped.display()
            )
        })?;

        let listing = output({
            let mut c = Command::new(&shipped);
            c.args(["platforms", "--json"])
                .env_remove("DEPLOYMENT_PLATFORM");
            c
        })?;
        let platforms = platform_names(&listing)?;
        if platforms != set.platforms {
            return Err(format!(
                "{} contains the platforms {platforms:?}, expected exactly {:?}",
                shipped.display(),
                set.platforms
            ));
        }
        let bytes =
            fs::read(&shipped).map_err(|e| format!("cannot read {}: {e}", shipped.display()))?;
        let digest = format!("{:x}", Sha256::digest(&bytes));
        rows.push((shipped, bytes.len(), digest, platforms.join(", ")));
    }

    let mut sums = String::new();
    for (path, _, digest, _) in &rows {
        let _ = writeln!(sums, "{digest}  {}", file_name(path));
    }
    fs::write(dist.join("SHA256SUMS"), &sums)
        .map_err(|e| format!("cannot write SHA256SUMS: {e}"))?;

    let mut table =
        String::from("| binary | platforms | size | sha256 |\n| --- | --- | ---: | --- |\n");
    for (path, size, digest, platforms) in &rows {
        let _ = writeln!(
            table,
            "| {} | {platforms} | {:.1} MiB ({size} bytes) | `{digest}` |",
            file_name(path),
            *size as f64 / (1024.0 * 1024.0)
        );
    }
    fs::write(dist.join("SIZES.md"), &table).map_err(|e| format!("cannot write SIZES.md: {e}"))?;
    println!("{table}");
    println!("checksums: dist/SHA256SUMS");

    let size_of = |name: &str| {
        rows.iter()
            .find(|r| file_name(&r.0).ends_with(name))
            .map(|r| r.1)
    };
    if let (Some(coolify), Some(all)) = (size_of("-coolify"), size_of("-all"))
        && coolify >= all
    {
        return Err(format!(
            "the coolify-only binary ({coolify} bytes) is not smaller than the all-platforms one ({all} bytes)"
        ));
    }
    Ok(())
}

fn target_dir(root: &Path) -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
