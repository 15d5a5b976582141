//! The `meeboter-deploy` binary, end to end, on the local platform and a
//! SQLite file: bad input, exit codes, JSON output, and crash safety (the
//! process killed with SIGKILL between the intent and the platform's
//! answer, and during a stop).

#![cfg(feature = "local")]
#![allow(
    clippy::disallowed_methods,
    reason = "these tests drive child processes from plain test threads, not from an async runtime"
)]

mod commands;
mod crash_safety;
mod sim_bot;
mod support;
