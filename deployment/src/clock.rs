//! The service's clock for scheduling: the system's, or a manual one that
//! tests move by hand, so a scheduled deploy is checked at its exact time
//! without sleeping.
//!
//! Only scheduling reads it (deploy times, `join_at` checks, lateness).
//! Leases and timeouts keep the system clock: they bound real waits between
//! processes.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use crate::store::now_ms;

/// What time it is for the scheduler. Cheap to clone; clones of a manual
/// clock move together.
#[derive(Clone, Default)]
pub struct Clock {
    manual: Option<Arc<AtomicI64>>,
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.manual {
            None => f.write_str("Clock::System"),
            Some(at) => write!(f, "Clock::Manual({} ms)", at.load(Ordering::Acquire)),
        }
    }
}

impl Clock {
    /// The system clock (the default).
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock that stands at `start_ms` (ms since the Unix epoch) until
    /// it is moved.
    pub fn manual(start_ms: i64) -> Self {
        Self {
            manual: Some(Arc::new(AtomicI64::new(start_ms))),
        }
    }

    /// A manual clock that starts at the system's current time.
    pub fn manual_now() -> Self {
        Self::manual(now_ms())
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        match &self.manual {
            None => now_ms(),
            Some(at) => at.load(Ordering::Acquire),
        }
    }

    /// Moves a manual clock forward by `by`; the system clock ignores it.
    pub fn advance(&self, by: Duration) {
        if let Some(at) = &self.manual {
            at.fetch_add(duration_ms(by), Ordering::AcqRel);
        }
    }

    /// Sets a manual clock to `ms`; the system clock ignores it.
    pub fn set_ms(&self, ms: i64) {
        if let Some(at) = &self.manual {
            at.store(ms, Ordering::Release);
        }
    }
}

/// A duration in whole milliseconds, saturated.
pub(crate) fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_clones_move_together() {
        let clock = Clock::manual(1_000);
        let other = clock.clone();
        assert_eq!(clock.now_ms(), 1_000);
        other.advance(Duration::from_secs(2));
        assert_eq!(clock.now_ms(), 3_000);
        clock.set_ms(10);
        assert_eq!(other.now_ms(), 10);
        let system = Clock::system();
        system.advance(Duration::from_secs(3600));
        assert!((system.now_ms() - now_ms()).abs() < 60_000);
    }
}
