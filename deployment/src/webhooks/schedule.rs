//! When a failed delivery is tried again.
//!
//! After the n-th failed attempt the next one waits
//! `min(first_retry × 3^(n−1), max_delay)`, times a random factor from 0.8
//! to 1.2 so that receivers coming back from an outage are not hit by every
//! delivery at once. With the defaults (5 s, at most 4 h):
//!
//! | after attempt | waits about | tried again after about (since the event) |
//! | ---: | ---: | ---: |
//! | 1 | 5 s | 5 s |
//! | 2 | 15 s | 20 s |
//! | 3 | 45 s | 1 min 5 s |
//! | 4 | 2 min 15 s | 3 min 20 s |
//! | 5 | 6 min 45 s | 10 min 5 s |
//! | 6 | 20 min 15 s | 30 min 20 s |
//! | 7 | 1 h 45 s | 1 h 31 min |
//! | 8 | 3 h 2 min | 4 h 33 min |
//! | 9 and later | 4 h | every 4 h, until WEBHOOK_MAX_AGE (24 h) |
//!
//! A receiver that answers 429 or 503 with `Retry-After` is waited for as
//! long as it asks (never less than the schedule, never past the maximum
//! age). A delivery whose next attempt would fall after `WEBHOOK_MAX_AGE`
//! from the event is marked failed instead; the operator can retry it by
//! hand.

use std::time::Duration;

/// The retry schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetrySchedule {
    /// The wait after the first failure. Default 5 s.
    pub first_retry: Duration,
    /// The longest wait between two attempts. Default 4 h.
    pub max_delay: Duration,
    /// How long after the event (or a manual retry) the delivery is given
    /// up. Default 24 h (`WEBHOOK_MAX_AGE`).
    pub max_age: Duration,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self {
            first_retry: Duration::from_secs(5),
            max_delay: Duration::from_secs(4 * 60 * 60),
            max_age: Duration::from_secs(24 * 60 * 60),
        }
    }
}

/// The factor each wait grows by.
pub const GROWTH: u32 = 3;
/// The jitter: each wait is multiplied by a factor from `1 − JITTER` to
/// `1 + JITTER`.
pub const JITTER: f64 = 0.2;

impl RetrySchedule {
    /// The wait after `failed_attempts` failures, before jitter.
    pub fn nominal_delay(&self, failed_attempts: u32) -> Duration {
        let exponent = failed_attempts.saturating_sub(1).min(30);
        let factor = GROWTH.saturating_pow(exponent);
        self.first_retry
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    /// The wait after `failed_attempts` failures, with jitter, and at least
    /// what the receiver asked for with `Retry-After`.
    pub fn delay(&self, failed_attempts: u32, retry_after: Option<Duration>) -> Duration {
        let nominal = self.nominal_delay(failed_attempts);
        let factor = 1.0 - JITTER + 2.0 * JITTER * fastrand::f64();
        let jittered = nominal.mul_f64(factor);
        match retry_after {
            Some(asked) => jittered.max(asked),
            None => jittered,
        }
    }
}

/// Reads a `Retry-After` value: whole seconds, or an HTTP date (its
/// distance from now; a date in the past is no wait). Anything else is
/// ignored.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let at = time::PrimitiveDateTime::parse(value, &format)
        .ok()?
        .assume_utc();
    let wait = at - time::OffsetDateTime::now_utc();
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_schedule() {
        let schedule = RetrySchedule::default();
        let nominal: Vec<u64> = (1..=10)
            .map(|n| schedule.nominal_delay(n).as_secs())
            .collect();
        assert_eq!(
            nominal,
            [5, 15, 45, 135, 405, 1215, 3645, 10935, 14400, 14400]
        );
        for n in 1..=12 {
            let delay = schedule.delay(n, None);
            let nominal = schedule.nominal_delay(n);
            assert!(
                delay >= nominal.mul_f64(0.8) && delay <= nominal.mul_f64(1.2),
                "{n}: {delay:?}"
            );
        }
        assert_eq!(
            schedule.delay(1, Some(Duration::from_secs(120))),
            Duration::from_secs(120)
        );
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        assert_eq!(parse_retry_after("30"), Some(Duration::from_secs(30)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        let later = time::OffsetDateTime::now_utc() + time::Duration::seconds(90);
        let format = time::macros::format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
        );
        let text = later.format(&format).unwrap();
        let wait = parse_retry_after(&text).unwrap();
        assert!(
            wait > Duration::from_secs(80) && wait <= Duration::from_secs(90),
            "{wait:?}"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
