//! What runs or is held under this installation's mark, for the service's
//! orphan sweep: every bot deploy with a record in this installation's
//! directory, and every live process carrying this installation's marker,
//! whichever state directory it was started from.

use std::collections::BTreeMap;

use platform_core::MarkedBot;

use super::LocalPlatform;
use crate::error::LocalError;
use crate::identifier::{InstanceKey, LocalBotId};
use crate::proc_table::{self, ProcStat};
use crate::process_control;
use crate::state_dir::BotRecord;

impl LocalPlatform {
    /// One entry per bot deploy, sorted by bot and attempt:
    ///
    /// - a deploy whose record names its process, running or not (the
    ///   record, and possibly a zombie or processes the bot left, are still
    ///   held until `cleanup`);
    /// - a deploy with live processes carrying its marker and no such record
    ///   here (started from another state directory, or by a deploy that
    ///   crashed between spawn and record), under the identifier of its
    ///   leader, so `stop_bot` and `cleanup` end all of them.
    ///
    /// A record that is only an intent, with no process carrying its marker,
    /// holds nothing to stop and is not listed: a repeated deploy replaces
    /// it. Bots deployed before installation ids existed carry no
    /// installation and are never listed.
    pub(super) fn marked_bots(&self) -> Result<Vec<MarkedBot>, LocalError> {
        let records = self
            .state
            .list(&self.installation)
            .map_err(|e| self.state_error("list bot records", e))?;
        let mut listed: BTreeMap<InstanceKey, MarkedBot> = BTreeMap::new();
        for record in &records {
            if let Some(marked) = self.recorded(record) {
                listed.insert(record.key(), marked);
            }
        }
        let mut unrecorded: BTreeMap<InstanceKey, (Vec<ProcStat>, String)> = BTreeMap::new();
        for (stat, value) in process_control::processes_where(|value| self.marks_ours(value)) {
            let Some((key, root)) = process_control::parse_marker(&value) else {
                continue;
            };
            if !listed.contains_key(&key) {
                let root = root.to_owned();
                unrecorded
                    .entry(key)
                    .or_insert_with(|| (Vec::new(), root))
                    .0
                    .push(stat);
            }
        }
        for (key, (processes, root)) in unrecorded {
            if let Some(marked) = self.unrecorded(&key, &processes, &root) {
                listed.insert(key, marked);
            }
        }
        Ok(listed.into_values().collect())
    }

    fn recorded(&self, record: &BotRecord) -> Option<MarkedBot> {
        let process = record.process?;
        let key = record.key();
        let state = if record.started_in_earlier_boot(proc_table::boot_id().as_deref()) {
            "ended with an earlier boot"
        } else if proc_table::liveness(process).is_alive() {
            "running"
        } else {
            "ended"
        };
        let description = format!(
            "process {} (bot {} attempt {}), {state}; record {}",
            process.pid,
            key.bot_id,
            key.attempt,
            self.state.record_path(&key).display()
        );
        Some(MarkedBot {
            identifier: LocalBotId {
                process,
                instance: key.clone(),
            }
            .to_platform_id(),
            bot: key.bot_id,
            attempt: Some(key.attempt),
            description,
        })
    }

    fn unrecorded(
        &self,
        key: &InstanceKey,
        processes: &[ProcStat],
        root: &str,
    ) -> Option<MarkedBot> {
        let leader = process_control::bot_process(processes)?;
        let others = processes.len() - 1;
        let description = format!(
            "process {} (bot {} attempt {}){}, started from the state directory {root}, with no record in {}",
            leader.pid,
            key.bot_id,
            key.attempt,
            match others {
                0 => String::new(),
                1 => " and 1 more process carrying its marker".to_owned(),
                n => format!(" and {n} more processes carrying its marker"),
            },
            self.state.root().display()
        );
        Some(MarkedBot {
            identifier: LocalBotId {
                process: leader.identity(),
                instance: key.clone(),
            }
            .to_platform_id(),
            bot: key.bot_id,
            attempt: Some(key.attempt),
            description,
        })
    }
}
