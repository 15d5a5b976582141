//! Running commands from the workspace root, with what ran shown.

use std::path::PathBuf;
use std::process::Command;

/// The workspace root (xtask lives one level below it).
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// `cargo` as the caller's cargo, in the workspace root.
pub fn cargo(args: &[&str]) -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.args(args).current_dir(workspace_root());
    command
}

fn describe(command: &Command) -> String {
    let program = command.get_program().to_string_lossy().into_owned();
    let program = if program.ends_with("cargo") {
        "cargo".into()
    } else {
        program
    };
    std::iter::once(program)
        .chain(command.get_args().map(|a| a.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `command`, streaming its output; an error names the command.
pub fn run(mut command: Command) -> Result<(), String> {
    let shown = describe(&command);
    eprintln!("$ {shown}");
    let status = command
        .status()
        .map_err(|e| format!("could not run `{shown}`: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{shown}` failed ({status})"))
    }
}

/// Runs `command` and returns its standard output; standard error passes
/// through.
pub fn output(mut command: Command) -> Result<String, String> {
    let shown = describe(&command);
    let out = command
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("could not run `{shown}`: {e}"))?;
    if !out.status.success() {
        return Err(format!("`{shown}` failed ({})", out.status));
    }
    String::from_utf8(out.stdout)
        .map_err(|_| format!("`{shown}` printed something that is not UTF-8"))
}
