//! Deploying a bot: intent, spawn, record, start check; and finding the
//! bot an interrupted deploy started.

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::SystemTime;

use platform_core::{BotDeploymentConfig, DeployResult, bot_environment};
use tokio::process::{Child, Command};
use tokio::sync::OwnedMutexGuard;

use super::{BOT_PORT_VAR, LOG_TAIL_LINES, LocalPlatform, intent_in_flight, record_exit};
use crate::children::ChildState;
use crate::deploy_locks::{self, LockScope};
use crate::error::LocalError;
use crate::identifier::{InstanceKey, LocalBotId, ProcessIdentity};
use crate::proc_table;
use crate::process_control::{self, INSTANCE_MARKER_VAR};
use crate::redaction::redact_secrets;
use crate::state_dir::BotRecord;

impl LocalPlatform {
    pub(super) async fn deploy(
        &self,
        config: &BotDeploymentConfig,
        attempt: u32,
    ) -> Result<DeployResult, LocalError> {
        let key = self.key(config.bot_id(), attempt);
        let _deploying = deploy_locks::lock(LockScope::deploy(self.state.root(), &key)).await;
        // Whether a record exists that the intent must replace.
        let mut replace_existing = true;
        // Without a readable record nobody can tell whether an earlier call
        // started the bot: such a failure is not "nothing started".
        let existing = match self.state.read(&key) {
            Ok(record) => {
                replace_existing = record.is_some();
                record
            }
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                tracing::warn!(bot_id = %key.bot_id, attempt, error = %e, "replacing an unreadable bot record");
                None
            }
            Err(e) => return Err(self.state_error("read a bot record", e)),
        };
        if let Some(record) = existing {
            if let Some(process) = record.process {
                tracing::info!(bot_id = %key.bot_id, attempt, pid = process.pid, "deploy repeated: the bot was already started");
                return Ok(Self::deploy_result(&key, process, record.port));
            }
            // An intent without a process: the deploy that wrote it crashed
            // or was cancelled, or is still running in another process.
            if intent_in_flight(&record) {
                let writer = record.writer;
                return Err(LocalError::StartedElsewhere { key, writer });
            }
            if let Some(adopted) = self.adopt_unrecorded_bot(&key, &record)? {
                return Ok(adopted);
            }
        }
        // From here until the spawn, no process of this deploy runs (no
        // record has one, and the marker found none), so a failure proves
        // that nothing was started.
        //
        // Held until the record is complete, so concurrent deploys count
        // each other.
        let (program, _capacity, port) = match self.prepare_spawn(&key).await {
            Ok(prepared) => prepared,
            Err(e) => {
                // An interrupted deploy's intent that started nothing is
                // not left behind by a deploy that cannot start anything.
                if replace_existing {
                    let _ = self.state.remove(&key);
                }
                return Err(e.nothing_started());
            }
        };
        let intent = BotRecord::intent(
            &key,
            proc_table::this_process(),
            proc_table::boot_id(),
            port,
        );
        let written = if replace_existing {
            self.state.replace(&intent).map(|()| true)
        } else {
            self.state.create(&intent)
        };
        match written {
            Ok(true) => {}
            Ok(false) => {
                // Another process wrote an intent since we looked.
                let writer = self
                    .state
                    .read(&key)
                    .ok()
                    .flatten()
                    .map_or(intent.writer, |r| r.writer);
                return Err(LocalError::StartedElsewhere { key, writer });
            }
            Err(e) => {
                return Err(self.state_error("write a bot record", e).nothing_started());
            }
        }
        let (child, process) = match self.spawn(&key, &program, config, port) {
            Ok(spawned) => spawned,
            Err(e) => {
                // Nothing was started: leave no intent behind.
                let _ = self.state.remove(&key);
                return Err(e);
            }
        };
        self.watch_child(&key, child, process);
        let id = LocalBotId {
            process,
            instance: key.clone(),
        };
        if let Err(e) = self.state.replace(&intent.clone().spawned(process)) {
            // Without a record a restarted service could not find the bot:
            // do not leave it running.
            let _ = self.clean_up_locked(&id).await;
            return Err(self.state_error("write a bot record", e));
        }
        tracing::info!(bot_id = %key.bot_id, attempt, pid = process.pid, port, "bot process started");
        if !self.config.start_check.is_zero()
            && let Some(ended @ (ChildState::Exited(_) | ChildState::Lost)) = self
                .children
                .wait_for_end(process, self.config.start_check)
                .await
        {
            let how = match ended {
                ChildState::Exited(exit) => exit.describe(),
                _ => "ended".to_owned(),
            };
            let log = self.state.log_path(&key);
            let tail = redact_secrets(&self.state.log_tail(&key, LOG_TAIL_LINES), config);
            // Whatever it started goes too, and its record: a failed deploy
            // holds nothing. The log stays for the operator.
            let _ = self.clean_up_locked(&id).await;
            return Err(LocalError::ExitedAtStart {
                key,
                detail: format!(
                    "the bot process {how} within {} ms of starting (BOT_PORT {port}); last lines of {}:\n{tail}",
                    self.config.start_check.as_millis(),
                    log.display(),
                ),
            });
        }
        Ok(Self::deploy_result(&key, process, port))
    }

    /// The program to run, the capacity guard (when `LOCAL_MAX_BOTS` is
    /// set) and a port: everything checked before an intent is written.
    async fn prepare_spawn(
        &self,
        key: &InstanceKey,
    ) -> Result<(PathBuf, Option<OwnedMutexGuard<()>>, u16), LocalError> {
        let program = self
            .config
            .command
            .resolve()
            .map_err(|problem| LocalError::Program { problem })?;
        let capacity = match self.config.max_bots {
            Some(max) => {
                let guard = deploy_locks::lock(LockScope::capacity(self.state.root())).await;
                let running = self.count_running_bots(key)?;
                if running >= max {
                    return Err(LocalError::AtCapacity { running, max });
                }
                Some(guard)
            }
            None => None,
        };
        let port = self
            .ports
            .pick()
            .map_err(|source| LocalError::Port { source })?;
        Ok((program, capacity, port))
    }

    /// After a crash between spawn and the completed record, the bot may
    /// be running with nothing on disk pointing at it: find it by its
    /// marker and record it.
    fn adopt_unrecorded_bot(
        &self,
        key: &InstanceKey,
        intent: &BotRecord,
    ) -> Result<Option<DeployResult>, LocalError> {
        let processes = process_control::processes_with_marker(&self.marker(key));
        let Some(&leader) = process_control::bot_process(&processes) else {
            return Ok(None);
        };
        let port = proc_table::environment_value(leader.pid, BOT_PORT_VAR)
            .and_then(|p| p.parse().ok())
            .unwrap_or(intent.port);
        let record = BotRecord {
            port,
            writer: proc_table::this_process(),
            ..intent.clone()
        }
        .spawned(leader.identity());
        self.state
            .replace(&record)
            .map_err(|e| self.state_error("write a bot record", e))?;
        tracing::info!(bot_id = %key.bot_id, attempt = key.attempt, pid = leader.pid, "found the bot an interrupted deploy had started");
        Ok(Some(Self::deploy_result(key, leader.identity(), port)))
    }

    /// Bots of this state directory (of every installation: they share
    /// the machine) that are running or being started, other than
    /// `except`.
    fn count_running_bots(&self, except: &InstanceKey) -> Result<usize, LocalError> {
        let boot = proc_table::boot_id();
        let records = self
            .state
            .list_all()
            .map_err(|e| self.state_error("list bot records", e))?;
        Ok(records
            .iter()
            .filter(|record| record.key() != *except)
            .filter(|record| match record.process {
                Some(process) => {
                    !record.started_in_earlier_boot(boot.as_deref())
                        && proc_table::liveness(process).is_alive()
                }
                None => proc_table::liveness(record.writer).is_alive(),
            })
            .count())
    }

    /// Spawns the bot. An error before the process exists is
    /// [`nothing_started`](LocalError::nothing_started).
    fn spawn(
        &self,
        key: &InstanceKey,
        program: &Path,
        config: &BotDeploymentConfig,
        port: u16,
    ) -> Result<(Child, ProcessIdentity), LocalError> {
        let mut log = self.state.open_log(key).map_err(|e| {
            self.state_error("open the bot's log file", e)
                .nothing_started()
        })?;
        let unix_time = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        // The header names no secret and no argument (an operator may put a
        // token in the command line).
        let _ = writeln!(
            log,
            "--- meeboter-deploy: starting bot {} attempt {} ({}) on 127.0.0.1:{port} at unix time {unix_time} ---",
            key.bot_id,
            key.attempt,
            program.display(),
        );
        let stdout = log.try_clone().map_err(|e| {
            self.state_error("open the bot's log file", e)
                .nothing_started()
        })?;
        let mut command = Command::new(program);
        command
            .args(self.config.command.args())
            // Only what the bot needs: the service's own environment holds
            // its credentials.
            .env_clear()
            .envs(std::env::vars_os().filter(|(name, _)| {
                name.to_str()
                    .is_some_and(|name| self.config.passes_env(name))
            }))
            .envs(
                bot_environment(config)
                    .iter()
                    .map(|var| (var.name(), var.value())),
            )
            .env(BOT_PORT_VAR, port.to_string())
            .env(INSTANCE_MARKER_VAR, self.marker(key).value())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(log)
            // Its own process group: one signal reaches everything the bot
            // starts, and the terminal's Ctrl-C to the service does not.
            .process_group(0)
            // Bots outlive the service and its handles.
            .kill_on_drop(false);
        let child = command.spawn().map_err(|source| {
            LocalError::Spawn {
                program: program.to_owned(),
                source,
            }
            .nothing_started()
        })?;
        // The child cannot have been collected yet (only its watcher will
        // do that), so its pid and /proc entry are there, zombie or not.
        let process = child
            .id()
            .and_then(proc_table::read_stat)
            .map(|stat| stat.identity());
        match process {
            Some(process) => Ok((child, process)),
            None => Err(LocalError::Spawn {
                program: program.to_owned(),
                source: io::Error::other("the new process vanished before it could be identified"),
            }),
        }
    }

    fn watch_child(&self, key: &InstanceKey, child: Child, process: ProcessIdentity) {
        let state = self.state.clone();
        let state_for_flag = self.state.clone();
        let key_for_flag = key.clone();
        let key = key.clone();
        self.children.watch(
            child,
            process,
            move || {
                state_for_flag
                    .read(&key_for_flag)
                    .ok()
                    .flatten()
                    .is_some_and(|r| r.describes(process) && r.stop_requested)
            },
            move |exit| async move {
                record_exit(&state, &key, process, exit).await;
            },
        );
    }
}
