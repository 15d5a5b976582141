//! The `Prefer` request header (RFC 7240): `wait=N` asks a create or a
//! deploy to answer once the bot is running or failed, or N seconds passed,
//! instead of at once.
//!
//! As the RFC asks, a preference the service does not know, or one it
//! cannot read (`wait=soon`), is ignored rather than refused: the request
//! is served as if it had not been sent, and the absence of
//! `Preference-Applied` in the answer says so.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;

use crate::service::DeployWait;

/// The request header.
pub const PREFER: &str = "prefer";
/// The answer's header naming the preferences honoured.
pub const PREFERENCE_APPLIED: &str = "preference-applied";
/// The longest wait honoured; a longer one is cut to it (and
/// `Preference-Applied` says so).
pub const MAX_WAIT: Duration = Duration::from_secs(300);

/// The wait a request prefers, cut to [`MAX_WAIT`]; `None` without one.
/// When a header names `wait` more than once, the first counts.
pub fn requested_wait(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get_all(PREFER)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .find_map(|preference| {
            // Parameters after `;` are not used by `wait`.
            let token = preference.split(';').next().unwrap_or_default();
            let (name, value) = token.split_once('=')?;
            if !name.trim().eq_ignore_ascii_case("wait") {
                return None;
            }
            let value = value.trim().trim_matches('"');
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            // Digits too many for a number are far beyond the cut anyway.
            let seconds = value.parse::<u64>().unwrap_or(u64::MAX);
            Some(Duration::from_secs(seconds).min(MAX_WAIT))
        })
}

/// How long a request that sent `headers` waits for its deploy: as its
/// `wait` preference asks, or not at all.
pub fn deploy_wait(headers: &HeaderMap) -> (DeployWait, Option<Duration>) {
    let wait = requested_wait(headers);
    (wait.map_or(DeployWait::No, DeployWait::UpTo), wait)
}

/// Says in `response` which wait was honoured, if any
/// (`Preference-Applied`).
pub fn apply(response: &mut Response, wait: Option<Duration>) {
    if let Some(wait) = wait
        && let Ok(value) = HeaderValue::from_str(&format!("wait={}", wait.as_secs()))
    {
        response.headers_mut().insert(PREFERENCE_APPLIED, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait_of(values: &[&str]) -> Option<u64> {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(PREFER, HeaderValue::from_str(value).unwrap());
        }
        requested_wait(&headers).map(|d| d.as_secs())
    }

    #[test]
    fn wait_is_read_among_other_preferences_and_cut_to_the_maximum() {
        assert_eq!(wait_of(&["wait=10"]), Some(10));
        assert_eq!(wait_of(&["respond-async, WAIT = 5"]), Some(5));
        assert_eq!(wait_of(&["return=minimal", "wait=\"7\""]), Some(7));
        assert_eq!(wait_of(&["wait=0"]), Some(0));
        assert_eq!(wait_of(&["wait=100000"]), Some(300));
        assert_eq!(wait_of(&["wait=99999999999999999999999"]), Some(300));
        assert_eq!(wait_of(&["wait=3;foo=bar, wait=9"]), Some(3));
    }

    #[test]
    fn what_cannot_be_read_is_ignored() {
        assert_eq!(wait_of(&[]), None);
        assert_eq!(wait_of(&["wait"]), None);
        assert_eq!(wait_of(&["wait="]), None);
        assert_eq!(wait_of(&["wait=soon"]), None);
        assert_eq!(wait_of(&["wait=-1"]), None);
        assert_eq!(wait_of(&["respond-async"]), None);
        assert_eq!(wait_of(&["waiting=5"]), None);
    }
}
