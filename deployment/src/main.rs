//! `meeboter-deploy`: deploys, tracks and stops meeting bots.

fn main() -> std::process::ExitCode {
    deployment::cli::main()
}
