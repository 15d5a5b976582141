//! Heartbeats, coalesced: a heartbeat is recorded in memory and the latest
//! time of every bot is written in one statement every flush interval
//! (default 5 s), so 1,000 bots heartbeating every 10 s cost one database
//! transaction every 5 s instead of 100 fsync'd transactions a second.
//!
//! What that costs: `last_heartbeat_at` in the database may be up to one
//! flush interval (plus the write itself) behind the bot. This process's own
//! answers (`GET /v1/bots/{id}`) add what it has not written yet, so only
//! another service process sees the lag. The watchdog allows for it: it
//! writes what this process holds before it looks, and `HEARTBEAT_TIMEOUT`
//! is many flush intervals long. A crash loses at most one interval of
//! heartbeats, which the bot's next heartbeat replaces.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use platform_core::BotId;

/// Heartbeats received and not written yet.
#[derive(Debug, Default)]
pub struct HeartbeatBuffer {
    pending: Mutex<HashMap<BotId, i64>>,
    received: AtomicU64,
    flushes: AtomicU64,
    rows_written: AtomicU64,
}

/// What the buffer has done since the service started, for `/metrics` and
/// the benchmark.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeartbeatCounts {
    /// Heartbeats received.
    pub received: u64,
    /// Database writes (one transaction each) that flushed them.
    pub flushes: u64,
    /// Bot rows those writes updated.
    pub rows_written: u64,
}

impl HeartbeatBuffer {
    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<BotId, i64>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records a heartbeat of `bot` at `at_ms`.
    pub fn beat(&self, bot: BotId, at_ms: i64) {
        self.received.fetch_add(1, Ordering::Relaxed);
        let mut pending = self.pending();
        let latest = pending.entry(bot).or_insert(at_ms);
        *latest = (*latest).max(at_ms);
    }

    /// The latest heartbeat of `bot` not written yet.
    pub fn unwritten(&self, bot: BotId) -> Option<i64> {
        self.pending().get(&bot).copied()
    }

    /// Takes every heartbeat not written yet, in bot order.
    pub fn take(&self) -> Vec<(BotId, i64)> {
        let mut taken: Vec<(BotId, i64)> = self.pending().drain().collect();
        taken.sort_unstable();
        taken
    }

    /// Puts back heartbeats whose write failed, keeping any newer one that
    /// arrived meanwhile.
    pub fn restore(&self, beats: Vec<(BotId, i64)>) {
        let mut pending = self.pending();
        for (bot, at) in beats {
            let latest = pending.entry(bot).or_insert(at);
            *latest = (*latest).max(at);
        }
    }

    /// Forgets a bot's unwritten heartbeat (it ended).
    pub fn forget(&self, bot: BotId) {
        self.pending().remove(&bot);
    }

    /// Counts one flush that wrote `rows` rows.
    pub fn count_flush(&self, rows: u64) {
        self.flushes.fetch_add(1, Ordering::Relaxed);
        self.rows_written.fetch_add(rows, Ordering::Relaxed);
    }

    /// What the buffer has done so far.
    pub fn counts(&self) -> HeartbeatCounts {
        HeartbeatCounts {
            received: self.received.load(Ordering::Relaxed),
            flushes: self.flushes.load(Ordering::Relaxed),
            rows_written: self.rows_written.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_latest_heartbeat_of_each_bot_is_kept() {
        let buffer = HeartbeatBuffer::default();
        buffer.beat(BotId(2), 100);
        buffer.beat(BotId(1), 50);
        buffer.beat(BotId(2), 300);
        buffer.beat(BotId(2), 200);
        assert_eq!(buffer.unwritten(BotId(2)), Some(300));
        assert_eq!(buffer.take(), vec![(BotId(1), 50), (BotId(2), 300)]);
        assert_eq!(buffer.take(), vec![]);
        assert_eq!(buffer.counts().received, 4);
    }

    #[test]
    fn a_failed_write_is_put_back_without_losing_a_newer_beat() {
        let buffer = HeartbeatBuffer::default();
        buffer.beat(BotId(1), 100);
        let taken = buffer.take();
        buffer.beat(BotId(1), 400);
        buffer.restore(taken);
        assert_eq!(buffer.unwritten(BotId(1)), Some(400));
    }
}
