//! Stopping a bot (SIGTERM, grace period, SIGKILL) and cleaning up after it
//! (kill what is left, collect its exit status, remove its record).

use std::io;
use std::time::Duration;

use nix::sys::signal::Signal;
use platform_core::PlatformId;
use tokio::time::Instant;

use super::{KILL_WAIT, LocalPlatform, MAX_POLL, record_is_of};
use crate::deploy_locks::{self, LockScope};
use crate::error::{LocalError, PLATFORM};
use crate::identifier::LocalBotId;
use crate::proc_table;
use crate::process_control::{self, Marker};

impl LocalPlatform {
    pub(super) async fn stop(&self, identifier: &PlatformId) -> Result<(), LocalError> {
        let Some(id) = self.actionable(identifier, "stop") else {
            return Ok(());
        };
        self.children.mark_stop_requested(id.process);
        let record_is_ours = self.record_stop_request(&id).await;
        let marker = self.marker(&id.instance);
        if !self.owns_group(&id, &marker, record_is_ours) {
            // The leader has ended and nothing in its group carries the
            // marker; what it started elsewhere is cleanup's to end.
            return Ok(());
        }
        tracing::info!(bot_id = %id.instance.bot_id, attempt = id.instance.attempt, pid = id.pid(), "stopping bot: SIGTERM");
        self.signal_bot(&id, Signal::SIGTERM)?;
        if self.wait_until_ended(&id, self.config.stop_grace).await {
            return Ok(());
        }
        if !self.owns_group(&id, &marker, record_is_ours) {
            return Ok(());
        }
        tracing::warn!(
            bot_id = %id.instance.bot_id,
            attempt = id.instance.attempt,
            pid = id.pid(),
            grace_s = self.config.stop_grace.as_secs(),
            "bot did not stop within its grace period: SIGKILL"
        );
        self.signal_bot(&id, Signal::SIGKILL)?;
        if !self.wait_until_ended(&id, KILL_WAIT).await {
            tracing::warn!(
                pid = id.pid(),
                "bot still running after SIGKILL; cleanup will try again"
            );
        }
        Ok(())
    }

    /// The identifier as this platform may act on it: `None` (with a
    /// warning) for one it never issues or one of another installation.
    pub(super) fn actionable(&self, identifier: &PlatformId, action: &str) -> Option<LocalBotId> {
        let Ok(id) = LocalBotId::parse(identifier) else {
            tracing::warn!(platform = PLATFORM, identifier = %identifier, "{action} of an identifier the local platform never issues; nothing to do");
            return None;
        };
        if !self.may_act_on(&id) {
            tracing::warn!(platform = PLATFORM, identifier = %identifier, installation = %self.installation, "{action} of another installation's bot; left alone");
            return None;
        }
        Some(id)
    }

    /// Writes the stop request into the bot's record, so its end reads as
    /// stopped, not failed, whoever collects its exit status. A failure to
    /// write it does not prevent the stop. Returns whether the record (if
    /// any) is the one of this identifier's process.
    async fn record_stop_request(&self, id: &LocalBotId) -> bool {
        let _locked = deploy_locks::lock(LockScope::deploy(self.state.root(), &id.instance)).await;
        match self.state.read(&id.instance) {
            Ok(Some(mut record)) if record.describes(id.process) => {
                if !record.stop_requested {
                    record.stop_requested = true;
                    if let Err(e) = self.state.replace(&record) {
                        tracing::warn!(pid = id.pid(), error = %e, "could not record the stop request");
                    }
                }
                true
            }
            Ok(record) => record_is_of(record.as_ref(), id),
            Err(_) => true,
        }
    }

    /// Whether process group `id.pid()` is this bot's: its leader still
    /// holds the pid, or (when no record says the deploy now has another
    /// process) a live member carries the bot's marker. Otherwise the bot
    /// has ended and the number may belong to someone else.
    fn owns_group(&self, id: &LocalBotId, marker: &Marker, record_is_ours: bool) -> bool {
        proc_table::liveness(id.process).holds_pid()
            || (record_is_ours && process_control::group_carries_marker(id.pid(), marker))
    }

    fn signal_bot(&self, id: &LocalBotId, signal: Signal) -> Result<(), LocalError> {
        let failed = |errno| LocalError::Signal {
            group: id.pid(),
            signal: signal.as_str(),
            errno,
        };
        process_control::signal_group(id.pid(), signal).map_err(failed)?;
        // The leader may have moved to a group of its own.
        process_control::signal_process(id.process, signal).map_err(failed)?;
        Ok(())
    }

    /// Waits up to `limit` for the bot's leader and group to end.
    async fn wait_until_ended(&self, id: &LocalBotId, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut pause = Duration::from_millis(5);
        loop {
            let _ = self.collect_adopted_zombie(id, true).await;
            if !proc_table::liveness(id.process).is_alive()
                && !process_control::group_has_live_members(id.pid())
            {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(MAX_POLL);
        }
    }

    pub(super) async fn clean_up(&self, identifier: &PlatformId) -> Result<(), LocalError> {
        let Some(id) = self.actionable(identifier, "cleanup") else {
            return Ok(());
        };
        let _locked = deploy_locks::lock(LockScope::deploy(self.state.root(), &id.instance)).await;
        self.clean_up_locked(&id).await
    }

    /// Kills what is left of the bot (its group, and every process carrying
    /// its marker, from whichever state directory it was started), collects
    /// its exit status and removes its record. The caller holds the bot's
    /// deploy lock.
    pub(super) async fn clean_up_locked(&self, id: &LocalBotId) -> Result<(), LocalError> {
        let record = match self.state.read(&id.instance) {
            Ok(record) => record,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => None,
            Err(e) => return Err(self.state_error("read a bot record", e)),
        };
        // A record of a later process for the same deploy is not ours to
        // remove, nor are the processes carrying its marker.
        let record_is_ours = record_is_of(record.as_ref(), id);
        let marker = self.marker(&id.instance);
        let group_is_ours = self.owns_group(id, &marker, record_is_ours);
        if group_is_ours {
            self.signal_bot(id, Signal::SIGKILL)?;
        }
        let mut strays = Vec::new();
        if record_is_ours {
            for stat in process_control::processes_with_marker(&marker) {
                let process = stat.identity();
                process_control::signal_process(process, Signal::SIGKILL).map_err(|errno| {
                    LocalError::Signal {
                        group: stat.process_group,
                        signal: Signal::SIGKILL.as_str(),
                        errno,
                    }
                })?;
                strays.push(process);
            }
        }
        let deadline = Instant::now() + KILL_WAIT;
        loop {
            let _ = self.collect_adopted_zombie_locked(id, true);
            let mut left: Vec<u32> = strays
                .iter()
                .chain(std::iter::once(&id.process))
                .filter(|p| proc_table::liveness(**p).is_alive())
                .map(|p| p.pid)
                .collect();
            if left.is_empty() && group_is_ours && process_control::group_has_live_members(id.pid())
            {
                left.push(id.pid());
            }
            if left.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                return Err(LocalError::StillRunning {
                    pids: left,
                    after: KILL_WAIT,
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Our own child: wait for its watcher to collect it, so no zombie
        // outlives the cleanup.
        let _ = self.children.wait_for_end(id.process, KILL_WAIT).await;
        if record_is_ours {
            self.state
                .remove(&id.instance)
                .map_err(|e| self.state_error("remove a bot record", e))?;
        }
        self.children.forget(id.process);
        self.prune_logs_now_and_then();
        Ok(())
    }
}
