//! The local platform on real processes: the conformance suite, stop and
//! cleanup, crash safety, many bots at once, bad input and secrets.

mod bad_input;
mod conformance;
mod crash_safety;
mod installations;
mod lifecycle;
mod many_bots;
mod marked_bots;
mod registration;
mod secrets;
mod support;
