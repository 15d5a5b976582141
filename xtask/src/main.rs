//! Project automation for Meeboter deploy, run as `cargo xtask <command>`.
//!
//! - `ci`: everything CI checks (formatting, clippy, each feature set alone,
//!   the dependency-tree rules, the tests, the generated docs).
//! - `release`: the release binary of each platform set into `dist/`, with
//!   checksums and sizes.
//! - `docs [--check]`: regenerates `docs/ENVIRONMENT.md`, `.env.example` and
//!   `docs/openapi.json` from the `meeboter-deploy` binary, or checks they are
//!   fresh.
//!
//! xtask does not depend on the plugin crates: it drives `cargo` and the
//! built `meeboter-deploy` binary.

mod ci;
mod cmd;
mod docs;
#[cfg(test)]
mod env_coverage;
mod feature_sets;
mod release;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Project automation for Meeboter deploy.
#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every check CI runs, in order, stopping at the first failure.
    Ci,
    /// Build the release binary for each platform set into dist/.
    Release,
    /// Regenerate the generated docs (or check that they are fresh).
    Docs {
        /// Fail instead of writing when a generated file is stale.
        #[arg(long)]
        check: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Ci => ci::run(),
        Command::Release => release::run(),
        Command::Docs { check } => docs::run(if check {
            docs::Mode::Check
        } else {
            docs::Mode::Write
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
