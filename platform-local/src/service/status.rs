//! A bot's status: from its exit status when this service collected it,
//! otherwise from `/proc`.

use platform_core::{BotStatus, PlatformId, StatusKind};

use super::{EXIT_COLLECTION_WAIT, LocalPlatform, record_exit, record_exit_locked};
use crate::children::{self, ChildState};
use crate::exit_status::{RecordedExit, ended_without_status};
use crate::identifier::LocalBotId;
use crate::proc_table::{self, Liveness};
use crate::process_control;
use crate::state_dir::BotRecord;

impl LocalPlatform {
    pub(super) async fn status(&self, identifier: &PlatformId) -> BotStatus {
        let id = match LocalBotId::parse(identifier) {
            Ok(id) => id,
            Err(e) => return BotStatus::unknown(e.to_string()),
        };
        if !self.may_act_on(&id) {
            return BotStatus::unknown(format!(
                "{identifier} is a bot of installation {}; this service is installation {} and knows nothing of it",
                id.instance
                    .installation
                    .as_ref()
                    .map_or("?", |i| i.as_str()),
                self.installation
            ));
        }
        let record = self
            .state
            .read(&id.instance)
            .ok()
            .flatten()
            .filter(|r| r.describes(id.process));
        let status = self.process_status(&id, record.as_ref()).await;
        match (&record, status.kind) {
            (Some(record), StatusKind::Running | StatusKind::Stopping) => {
                status.with_connection_url(Self::connection_url(record.port))
            }
            _ => status,
        }
    }

    async fn process_status(&self, id: &LocalBotId, record: Option<&BotRecord>) -> BotStatus {
        if let Some(ChildState::Exited(exit)) = self.children.state(id.process) {
            return exit.to_status();
        }
        if let Some(record) = record
            && record.started_in_earlier_boot(proc_table::boot_id().as_deref())
        {
            return BotStatus::new(StatusKind::Stopped)
                .with_raw("ended")
                .with_reason("the machine has restarted since the bot started, which ended it");
        }
        let stop_requested = record.is_some_and(|r| r.stop_requested);
        let liveness = proc_table::liveness(id.process);
        if liveness.is_alive() {
            return if stop_requested {
                BotStatus::new(StatusKind::Stopping)
                    .with_raw("alive")
                    .with_reason("stop requested; the process is still running")
            } else {
                BotStatus::new(StatusKind::Running).with_raw("alive")
            };
        }
        match self
            .children
            .wait_for_end(id.process, EXIT_COLLECTION_WAIT)
            .await
        {
            Some(ChildState::Exited(exit)) => return exit.to_status(),
            Some(ChildState::Lost) => return ended_without_status(stop_requested, ""),
            Some(ChildState::Running) => {
                return BotStatus::new(StatusKind::Stopping)
                    .with_raw("ending")
                    .with_reason("the process has ended; its exit status is being collected");
            }
            None => {}
        }
        if let Some(exit) = record.and_then(|r| r.exit) {
            return exit.to_status();
        }
        if let Some(exit) = self.collect_adopted_zombie(id, stop_requested).await {
            return exit.to_status();
        }
        let detail = match liveness {
            Liveness::Reused => " (its pid now belongs to another process)",
            _ => "",
        };
        ended_without_status(stop_requested, detail)
    }

    /// See [`process_control::collect_adopted_zombie`]; records what it
    /// collects. The caller must not hold the bot's deploy lock.
    pub(super) async fn collect_adopted_zombie(
        &self,
        id: &LocalBotId,
        stop_requested: bool,
    ) -> Option<RecordedExit> {
        let exit = self.reap_adopted_zombie(id, stop_requested)?;
        record_exit(&self.state, &id.instance, id.process, exit).await;
        Some(exit)
    }

    /// [`Self::collect_adopted_zombie`] for a caller that holds the bot's
    /// deploy lock.
    pub(super) fn collect_adopted_zombie_locked(
        &self,
        id: &LocalBotId,
        stop_requested: bool,
    ) -> Option<RecordedExit> {
        let exit = self.reap_adopted_zombie(id, stop_requested)?;
        record_exit_locked(&self.state, &id.instance, id.process, exit);
        Some(exit)
    }

    /// Collects the exit status of a zombie child of this process that no
    /// watcher in this process waits for (a bot adopted from an earlier run
    /// when the service is PID 1 of a container).
    fn reap_adopted_zombie(&self, id: &LocalBotId, stop_requested: bool) -> Option<RecordedExit> {
        if children::is_watched_in_this_process(id.process) {
            return None;
        }
        let status = process_control::collect_adopted_zombie(id.process)?;
        RecordedExit::from_wait(status, stop_requested)
    }
}
