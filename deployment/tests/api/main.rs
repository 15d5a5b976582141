//! The HTTP API end to end: the real server on a loopback port, driven
//! with an HTTP client, over real SQLite files, on the local platform (real
//! stand-in bot processes) or the fake one; and the `meeboter-deploy serve`
//! binary itself for what only a process shows (the generated token, the
//! refusal to expose an unprotected API, SIGTERM).

// The binary and lifecycle tests run the local platform.
#![cfg(feature = "local")]
#![allow(
    clippy::disallowed_methods,
    reason = "binary tests drive child processes from plain threads"
)]

#[path = "../common/mod.rs"]
mod common;
mod support;

mod auth;
mod bot_protocol;
mod contract;
mod errors;
mod idempotency;
mod lifecycle;
mod openapi;
mod prefer;
mod quick_start;
mod replicas;
mod schedule;
mod shutdown;
mod webhooks;
