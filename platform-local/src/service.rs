//! [`LocalPlatform`]: the [`PlatformService`] that runs each bot as a child
//! process of this service.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use nix::sys::signal::Signal;
use platform_core::{
    BotDeploymentConfig, BotId, BotStatus, ConfigProblem, DeployResult, Error, PlatformId,
    PlatformService, StatusKind, bot_environment,
};
use tokio::process::{Child, Command};
use tokio::time::Instant;

use crate::children::{ChildState, Children};
use crate::config::{LOCAL_BOT_COMMAND, LOCAL_STATE_DIR, LocalConfig};
use crate::deploy_locks::{self, LockScope};
use crate::error::{LocalError, PLATFORM};
use crate::exit_status::{RecordedExit, ended_without_status};
use crate::identifier::{InstanceKey, LocalBotId, ProcessIdentity};
use crate::ports::PortPicker;
use crate::proc_table::{self, Liveness};
use crate::process_control::{self, INSTANCE_MARKER_VAR, marker_value};
use crate::redaction::redact_secrets;
use crate::state_dir::{BotRecord, LOG_RETENTION, StateDir};

/// The variable that tells a bot which port on 127.0.0.1 to listen on.
pub const BOT_PORT_VAR: &str = "BOT_PORT";

/// How long a status read waits for the exit status of a child that has
/// just ended, so a bot reads `running` and then its real end, never a
/// guess in between.
const EXIT_COLLECTION_WAIT: Duration = Duration::from_secs(2);

/// How long processes may take to disappear after SIGKILL (a process in
/// uninterruptible I/O dies when the I/O ends).
const KILL_WAIT: Duration = Duration::from_secs(5);

/// Polling of a stopping process starts fast (most bots exit within
/// milliseconds of SIGTERM) and slows down to this.
const MAX_POLL: Duration = Duration::from_millis(100);

/// Old logs are pruned at most this often.
const LOG_PRUNE_INTERVAL: Duration = Duration::from_secs(600);

/// Lines of a bot's log quoted when it fails to start.
const LOG_TAIL_LINES: usize = 20;

/// A live process started for a bot of this state directory, as found in
/// `/proc` (see [`LocalPlatform::live_processes`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveProcess {
    /// Its process id.
    pub pid: u32,
    /// Its process group (the bot's pid, unless it left the group).
    pub process_group: u32,
    /// The bot deploy it belongs to.
    pub instance: InstanceKey,
}

/// Runs each meeting bot as a child process of this service: the configured
/// command, with the bot's environment and a free port on 127.0.0.1.
///
/// - **Deploy** writes an intent record, spawns the bot in its own process
///   group with its output going to its log file, completes the record with
///   the pid and start time, and watches the bot for
///   [`LocalConfig::start_check`]: a bot that exits at once fails the
///   deploy with its exit status and the end of its log. A repeated deploy
///   of the same bot and attempt returns the bot already started, found
///   through its record or, after a crash between spawn and record, through
///   the marker in its environment.
/// - **Stop** sends SIGTERM to the bot's process group, waits up to
///   [`LocalConfig::stop_grace`], then sends SIGKILL.
/// - **Status** comes from `/proc` and, for bots this process started and
///   saw end, their exit status.
/// - **Cleanup** kills whatever is left of the bot (its group, and any
///   process carrying its marker), collects its exit status and removes its
///   record; its log is kept (see [`LOG_RETENTION`]).
///
/// Bots outlive the service: a restarted service finds them through their
/// identifiers and records. Dropping a `LocalPlatform` leaves its bots
/// running.
pub struct LocalPlatform {
    config: LocalConfig,
    state: StateDir,
    children: Children,
    ports: PortPicker,
    last_log_prune: AtomicU64,
}

impl fmt::Debug for LocalPlatform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalPlatform")
            .field("command", &self.config.command)
            .field("state_dir", &self.state.root())
            .finish_non_exhaustive()
    }
}

impl LocalPlatform {
    /// A platform running bots as `config` says. Creates the state
    /// directory if needed; fails with a configuration error naming
    /// `LOCAL_STATE_DIR` if it cannot.
    pub fn new(config: LocalConfig) -> Result<Self, Error> {
        let state = StateDir::open(&config.state_dir).map_err(|e| Error::Config {
            platform: PLATFORM,
            problems: vec![ConfigProblem::new(
                LOCAL_STATE_DIR.name,
                format!(
                    "{} cannot be created or opened: {e}",
                    config.state_dir.display()
                ),
            )],
        })?;
        if let Err(problem) = config.command.resolve() {
            tracing::warn!(
                platform = PLATFORM,
                "{}: {problem}; deploys will fail until it is fixed",
                LOCAL_BOT_COMMAND.name
            );
        }
        let platform = Self {
            config,
            state,
            children: Children::default(),
            ports: PortPicker::default(),
            last_log_prune: AtomicU64::new(0),
        };
        platform.prune_logs_now_and_then();
        Ok(platform)
    }

    /// The configuration.
    pub fn config(&self) -> &LocalConfig {
        &self.config
    }

    /// The state directory, as an absolute path.
    pub fn state_dir(&self) -> &Path {
        self.state.root()
    }

    /// Where the output of `bot_id`'s deploy number `attempt` is written.
    pub fn log_path(&self, bot_id: BotId, attempt: u32) -> PathBuf {
        self.state.log_path(InstanceKey::new(bot_id, attempt))
    }

    /// Every live process started for a bot of this state directory,
    /// including what the bots started themselves, found by their marker.
    /// After every bot has been stopped and cleaned up this is empty: what
    /// it lists then is leaked.
    pub fn live_processes(&self) -> Vec<LiveProcess> {
        let suffix = format!("@{}", self.state.root().display());
        process_control::processes_where(|value| value.ends_with(&suffix))
            .into_iter()
            .filter_map(|(stat, marker)| {
                let instance = marker.strip_suffix(&suffix)?.parse().ok()?;
                Some(LiveProcess {
                    pid: stat.pid,
                    process_group: stat.process_group,
                    instance,
                })
            })
            .collect()
    }

    fn connection_url(port: u16) -> String {
        format!("http://127.0.0.1:{port}")
    }

    fn deploy_result(key: InstanceKey, process: ProcessIdentity, port: u16) -> DeployResult {
        DeployResult {
            identifier: LocalBotId {
                process,
                instance: key,
            }
            .to_platform_id(),
            connection_url: Some(Self::connection_url(port)),
        }
    }

    fn marker(&self, key: InstanceKey) -> String {
        marker_value(key, self.state.root())
    }

    fn state_error(&self, action: &'static str, source: io::Error) -> LocalError {
        LocalError::state_dir(self.state.root(), action, source)
    }

    // ----- deploy -----

    async fn deploy(
        &self,
        config: &BotDeploymentConfig,
        attempt: u32,
    ) -> Result<DeployResult, LocalError> {
        let key = InstanceKey::new(config.bot_id(), attempt);
        let _deploying = deploy_locks::lock(LockScope::deploy(self.state.root(), key)).await;
        // Whether a record exists that the intent must replace.
        let mut replace_existing = true;
        let existing = match self.state.read(key) {
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
                return Ok(Self::deploy_result(key, process, record.port));
            }
            // An intent without a process: the deploy that wrote it crashed
            // or was cancelled, or is still running in another process.
            let writer = record.writer;
            if writer != proc_table::this_process() && proc_table::liveness(writer).is_alive() {
                return Err(LocalError::StartedElsewhere { key, writer });
            }
            if let Some(adopted) = self.adopt_unrecorded_bot(key, &record)? {
                return Ok(adopted);
            }
        }
        let program = self
            .config
            .command
            .resolve()
            .map_err(|problem| LocalError::Program { problem })?;
        // Held until the record is complete, so concurrent deploys count
        // each other.
        let _capacity = match self.config.max_bots {
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
        let intent =
            BotRecord::intent(key, proc_table::this_process(), proc_table::boot_id(), port);
        if replace_existing {
            self.state
                .replace(&intent)
                .map_err(|e| self.state_error("write a bot record", e))?;
        } else if !self
            .state
            .create(&intent)
            .map_err(|e| self.state_error("write a bot record", e))?
        {
            // Another process wrote an intent since we looked.
            let writer = self
                .state
                .read(key)
                .ok()
                .flatten()
                .map_or(intent.writer, |r| r.writer);
            return Err(LocalError::StartedElsewhere { key, writer });
        }
        let (child, process) = match self.spawn(key, &program, config, port) {
            Ok(spawned) => spawned,
            Err(e) => {
                // Nothing was started: leave no intent behind.
                let _ = self.state.remove(key);
                return Err(e);
            }
        };
        self.watch_child(key, child, process);
        let id = LocalBotId {
            process,
            instance: key,
        };
        if let Err(e) = self.state.replace(&intent.clone().spawned(process)) {
            // Without a record a restarted service could not find the bot:
            // do not leave it running.
            let _ = self.clean_up_locked(id).await;
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
            let log = self.state.log_path(key);
            let tail = redact_secrets(&self.state.log_tail(key, LOG_TAIL_LINES), config);
            // Whatever it started goes too, and its record: a failed deploy
            // holds nothing. The log stays for the operator.
            let _ = self.clean_up_locked(id).await;
            return Err(LocalError::ExitedAtStart {
                key,
                detail: format!(
                    "the bot process {how} within {} ms of starting (BOT_PORT {port}); last lines of {}:\n{tail}",
                    self.config.start_check.as_millis(),
                    log.display(),
                ),
            });
        }
        Ok(Self::deploy_result(key, process, port))
    }

    /// After a crash between spawn and the completed record, the bot may
    /// be running with nothing on disk pointing at it: find it by its
    /// marker and record it.
    fn adopt_unrecorded_bot(
        &self,
        key: InstanceKey,
        intent: &BotRecord,
    ) -> Result<Option<DeployResult>, LocalError> {
        let Some(leader) = process_control::processes_with_marker(&self.marker(key))
            .into_iter()
            .filter(|stat| stat.pid == stat.process_group)
            .min_by_key(|stat| stat.start_ticks)
        else {
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

    /// Bots of this state directory that are running or being started,
    /// other than `except`.
    fn count_running_bots(&self, except: InstanceKey) -> Result<usize, LocalError> {
        let boot = proc_table::boot_id();
        let records = self
            .state
            .list()
            .map_err(|e| self.state_error("list bot records", e))?;
        Ok(records
            .iter()
            .filter(|record| record.key() != except)
            .filter(|record| match record.process {
                Some(process) => {
                    !record.started_in_earlier_boot(boot.as_deref())
                        && proc_table::liveness(process).is_alive()
                }
                None => proc_table::liveness(record.writer).is_alive(),
            })
            .count())
    }

    fn spawn(
        &self,
        key: InstanceKey,
        program: &Path,
        config: &BotDeploymentConfig,
        port: u16,
    ) -> Result<(Child, ProcessIdentity), LocalError> {
        let mut log = self
            .state
            .open_log(key)
            .map_err(|e| self.state_error("open the bot's log file", e))?;
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
        let stdout = log
            .try_clone()
            .map_err(|e| self.state_error("open the bot's log file", e))?;
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
            .env(INSTANCE_MARKER_VAR, self.marker(key))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(log)
            // Its own process group: one signal reaches everything the bot
            // starts, and the terminal's Ctrl-C to the service does not.
            .process_group(0)
            // Bots outlive the service and its handles.
            .kill_on_drop(false);
        let child = command.spawn().map_err(|source| LocalError::Spawn {
            program: program.to_owned(),
            source,
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

    fn watch_child(&self, key: InstanceKey, child: Child, process: ProcessIdentity) {
        let state = self.state.clone();
        let state_for_flag = self.state.clone();
        self.children.watch(
            child,
            process,
            move || {
                state_for_flag
                    .read(key)
                    .ok()
                    .flatten()
                    .is_some_and(|r| r.describes(process) && r.stop_requested)
            },
            move |exit| async move {
                record_exit(&state, key, process, exit).await;
            },
        );
    }

    // ----- status -----

    async fn status(&self, identifier: &PlatformId) -> BotStatus {
        let id = match LocalBotId::parse(identifier) {
            Ok(id) => id,
            Err(e) => return BotStatus::unknown(e.to_string()),
        };
        let record = self
            .state
            .read(id.instance)
            .ok()
            .flatten()
            .filter(|r| r.describes(id.process));
        let status = self.process_status(id, record.as_ref()).await;
        match (&record, status.kind) {
            (Some(record), StatusKind::Running | StatusKind::Stopping) => {
                status.with_connection_url(Self::connection_url(record.port))
            }
            _ => status,
        }
    }

    async fn process_status(&self, id: LocalBotId, record: Option<&BotRecord>) -> BotStatus {
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
    /// collects.
    async fn collect_adopted_zombie(
        &self,
        id: LocalBotId,
        stop_requested: bool,
    ) -> Option<RecordedExit> {
        if self.children.is_watched(id.process) {
            return None;
        }
        let status = process_control::collect_adopted_zombie(id.process)?;
        let exit = RecordedExit::from_wait(status, stop_requested)?;
        record_exit(&self.state, id.instance, id.process, exit).await;
        Some(exit)
    }

    // ----- stop -----

    async fn stop(&self, identifier: &PlatformId) -> Result<(), LocalError> {
        let Ok(id) = LocalBotId::parse(identifier) else {
            tracing::warn!(platform = PLATFORM, identifier = %identifier, "stop of an identifier the local platform never issues; nothing to stop");
            return Ok(());
        };
        self.children.mark_stop_requested(id.process);
        let record_is_ours = self.record_stop_request(id).await;
        let marker = self.marker(id.instance);
        if !self.owns_group(id, &marker, record_is_ours) {
            return Ok(());
        }
        tracing::info!(bot_id = %id.instance.bot_id, attempt = id.instance.attempt, pid = id.pid(), "stopping bot: SIGTERM");
        self.signal_bot(id, Signal::SIGTERM)?;
        if self.wait_until_ended(id, self.config.stop_grace).await {
            return Ok(());
        }
        if !self.owns_group(id, &marker, record_is_ours) {
            return Ok(());
        }
        tracing::warn!(
            bot_id = %id.instance.bot_id,
            attempt = id.instance.attempt,
            pid = id.pid(),
            grace_s = self.config.stop_grace.as_secs(),
            "bot did not stop within its grace period: SIGKILL"
        );
        self.signal_bot(id, Signal::SIGKILL)?;
        if !self.wait_until_ended(id, KILL_WAIT).await {
            tracing::warn!(
                pid = id.pid(),
                "bot still running after SIGKILL; cleanup will try again"
            );
        }
        Ok(())
    }

    /// Writes the stop request into the bot's record, so its end reads as
    /// stopped, not failed, whoever collects its exit status. A failure to
    /// write it does not prevent the stop. Returns whether the record (if
    /// any) is the one of this identifier's process.
    async fn record_stop_request(&self, id: LocalBotId) -> bool {
        let _locked = deploy_locks::lock(LockScope::deploy(self.state.root(), id.instance)).await;
        match self.state.read(id.instance) {
            Ok(Some(mut record)) if record.describes(id.process) => {
                if !record.stop_requested {
                    record.stop_requested = true;
                    if let Err(e) = self.state.replace(&record) {
                        tracing::warn!(pid = id.pid(), error = %e, "could not record the stop request");
                    }
                }
                true
            }
            Ok(Some(_)) => false,
            Ok(None) | Err(_) => true,
        }
    }

    /// Whether process group `id.pid()` is this bot's: its leader still
    /// holds the pid, or (when no record says the deploy now has another
    /// process) a live member carries the bot's marker. Otherwise the bot
    /// has ended and the number may belong to someone else.
    fn owns_group(&self, id: LocalBotId, marker: &str, record_is_ours: bool) -> bool {
        proc_table::liveness(id.process).holds_pid()
            || (record_is_ours && process_control::group_carries_marker(id.pid(), marker))
    }

    fn signal_bot(&self, id: LocalBotId, signal: Signal) -> Result<(), LocalError> {
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
    async fn wait_until_ended(&self, id: LocalBotId, limit: Duration) -> bool {
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

    // ----- cleanup -----

    async fn cleanup(&self, identifier: &PlatformId) -> Result<(), LocalError> {
        let Ok(id) = LocalBotId::parse(identifier) else {
            tracing::warn!(platform = PLATFORM, identifier = %identifier, "cleanup of an identifier the local platform never issues; nothing to clean up");
            return Ok(());
        };
        let _locked = deploy_locks::lock(LockScope::deploy(self.state.root(), id.instance)).await;
        self.clean_up_locked(id).await
    }

    /// Kills what is left of the bot, collects its exit status and removes
    /// its record. The caller holds the bot's deploy lock.
    async fn clean_up_locked(&self, id: LocalBotId) -> Result<(), LocalError> {
        let record = match self.state.read(id.instance) {
            Ok(record) => record,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => None,
            Err(e) => return Err(self.state_error("read a bot record", e)),
        };
        // A record of a later process for the same deploy is not ours to
        // remove, nor are the processes carrying its marker.
        let record_is_ours = record.as_ref().is_none_or(|r| r.describes(id.process));
        let marker = self.marker(id.instance);
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
            let _ = self.collect_adopted_zombie(id, true).await;
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
                .remove(id.instance)
                .map_err(|e| self.state_error("remove a bot record", e))?;
        }
        self.children.forget(id.process);
        self.prune_logs_now_and_then();
        Ok(())
    }

    fn prune_logs_now_and_then(&self) {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = self.last_log_prune.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= LOG_PRUNE_INTERVAL.as_secs()
            && self
                .last_log_prune
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.state.prune_logs(LOG_RETENTION);
        }
    }

    // ----- reachability -----

    fn check(&self) -> Result<(), Error> {
        let mut problems = Vec::new();
        if let Err(problem) = self.config.command.resolve() {
            problems.push(ConfigProblem::new(
                LOCAL_BOT_COMMAND.name,
                problem.to_string(),
            ));
        }
        let writable = StateDir::open(&self.config.state_dir).and_then(|dir| dir.probe_writable());
        if let Err(e) = writable {
            problems.push(ConfigProblem::new(
                LOCAL_STATE_DIR.name,
                format!("{} is not writable: {e}", self.config.state_dir.display()),
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Config {
                platform: PLATFORM,
                problems,
            })
        }
    }
}

/// Writes a collected exit status into the bot's record, if the record is
/// still the one of that process (cleanup may have removed it).
async fn record_exit(
    state: &StateDir,
    key: InstanceKey,
    process: ProcessIdentity,
    exit: RecordedExit,
) {
    let _locked = deploy_locks::lock(LockScope::deploy(state.root(), key)).await;
    if let Ok(Some(mut record)) = state.read(key)
        && record.describes(process)
        && record.exit.is_none()
    {
        record.exit = Some(exit);
        if let Err(e) = state.replace(&record) {
            tracing::warn!(pid = process.pid, error = %e, "could not record a bot's exit status");
        }
    }
    tracing::info!(bot_id = %key.bot_id, attempt = key.attempt, pid = process.pid, "bot process {}", exit.describe());
}

fn resource_of_deploy(config: &BotDeploymentConfig, attempt: u32) -> String {
    format!("bot {} attempt {attempt}", config.bot_id())
}

fn resource_of(identifier: &PlatformId) -> String {
    format!("bot process {identifier}")
}

#[async_trait]
impl PlatformService for LocalPlatform {
    fn platform_name(&self) -> &'static str {
        PLATFORM
    }

    async fn deploy_bot(
        &self,
        config: &BotDeploymentConfig,
        attempt: u32,
    ) -> platform_core::Result<DeployResult> {
        self.deploy(config, attempt)
            .await
            .map_err(|e| e.into_platform_error(resource_of_deploy(config, attempt)))
    }

    async fn stop_bot(&self, identifier: &PlatformId) -> platform_core::Result<()> {
        self.stop(identifier)
            .await
            .map_err(|e| e.into_platform_error(resource_of(identifier)))
    }

    async fn get_bot_status(&self, identifier: &PlatformId) -> platform_core::Result<BotStatus> {
        Ok(self.status(identifier).await)
    }

    async fn get_bot_statuses(
        &self,
        identifiers: &[PlatformId],
    ) -> platform_core::Result<HashMap<PlatformId, BotStatus>> {
        let mut statuses = HashMap::with_capacity(identifiers.len());
        for identifier in identifiers {
            if !statuses.contains_key(identifier) {
                let status = self.status(identifier).await;
                statuses.insert(identifier.clone(), status);
            }
        }
        Ok(statuses)
    }

    async fn cleanup(&self, identifier: &PlatformId) -> platform_core::Result<()> {
        LocalPlatform::cleanup(self, identifier)
            .await
            .map_err(|e| e.into_platform_error(resource_of(identifier)))
    }

    async fn check_reachable(&self) -> platform_core::Result<()> {
        self.check()
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt;

    use platform_core::testkit::Fixtures;
    use platform_core::{ErrorKind, PlatformService, StatusKind};

    use super::*;
    use crate::command_line::BotCommand;

    /// A platform whose bots, and the processes a test spawns as if a
    /// crashed deploy had, are killed when the test ends, even by a panic.
    struct Guarded {
        platform: LocalPlatform,
        spawned: Vec<std::process::Child>,
    }

    impl std::ops::Deref for Guarded {
        type Target = LocalPlatform;

        fn deref(&self) -> &LocalPlatform {
            &self.platform
        }
    }

    impl Drop for Guarded {
        fn drop(&mut self) {
            for child in &mut self.spawned {
                let _ = child.kill();
                let _ = child.wait();
            }
            for process in self.platform.live_processes() {
                let _ = process_control::signal_group(process.process_group, Signal::SIGKILL);
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(process.pid as i32),
                    Signal::SIGKILL,
                );
            }
        }
    }

    fn platform(dir: &Path) -> Guarded {
        let command = BotCommand::parse("sleep 1000").unwrap();
        Guarded {
            platform: LocalPlatform::new(LocalConfig::new(command, dir.join("state"))).unwrap(),
            spawned: Vec::new(),
        }
    }

    fn config(bot_id: u64) -> BotDeploymentConfig {
        Fixtures::new("2:1:1-1").config(bot_id)
    }

    /// A service process that is gone: this process with another start time.
    fn dead_writer() -> ProcessIdentity {
        let me = proc_table::this_process();
        ProcessIdentity {
            start_ticks: me.start_ticks + 1,
            ..me
        }
    }

    /// A bot process as an interrupted deploy would have spawned it.
    fn spawn_marked(platform: &mut Guarded, key: InstanceKey, port: u16) -> ProcessIdentity {
        let child = std::process::Command::new("sleep")
            .arg("1000")
            .env(INSTANCE_MARKER_VAR, platform.marker(key))
            .env(BOT_PORT_VAR, port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let process = proc_table::read_stat(child.id()).unwrap().identity();
        platform.spawned.push(child);
        process
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_bot_spawned_just_before_a_crash_is_found_not_started_twice() {
        let dir = tempfile::tempdir().unwrap();
        let mut platform = platform(dir.path());
        let key = InstanceKey::new(BotId(11), 1);
        // The crashed deploy wrote its intent, spawned the bot and died
        // before completing the record.
        let intent = BotRecord::intent(key, dead_writer(), proc_table::boot_id(), 45_678);
        assert!(platform.state.create(&intent).unwrap());
        let orphan = spawn_marked(&mut platform, key, 45_678);

        let deployed = platform.deploy_bot(&config(11), 1).await.unwrap();
        let id = LocalBotId::parse(&deployed.identifier).unwrap();
        assert_eq!(id.process, orphan);
        assert_eq!(
            deployed.connection_url.as_deref(),
            Some("http://127.0.0.1:45678")
        );
        assert_eq!(platform.live_processes().len(), 1);
        let record = platform.state.read(key).unwrap().unwrap();
        assert!(record.describes(id.process));
        // Found once, the bot is now recorded: the next repeat agrees.
        assert_eq!(platform.deploy_bot(&config(11), 1).await.unwrap(), deployed);

        platform.stop_bot(&deployed.identifier).await.unwrap();
        platform.cleanup(&deployed.identifier).await.unwrap();
        assert!(platform.live_processes().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_interrupted_deploy_that_started_nothing_starts_the_bot() {
        let dir = tempfile::tempdir().unwrap();
        let platform = platform(dir.path());
        let key = InstanceKey::new(BotId(12), 1);
        let intent = BotRecord::intent(key, dead_writer(), proc_table::boot_id(), 45_679);
        assert!(platform.state.create(&intent).unwrap());

        let deployed = platform.deploy_bot(&config(12), 1).await.unwrap();
        let status = platform.get_bot_status(&deployed.identifier).await.unwrap();
        assert_eq!(status.kind, StatusKind::Running);
        let record = platform.state.read(key).unwrap().unwrap();
        assert_eq!(record.writer, proc_table::this_process());
        platform.stop_bot(&deployed.identifier).await.unwrap();
        platform.cleanup(&deployed.identifier).await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_deploy_under_way_in_another_live_service_is_not_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let platform = platform(dir.path());
        let key = InstanceKey::new(BotId(13), 1);
        // Another live process (init stands in for it) wrote the intent.
        let other = proc_table::read_stat(1).unwrap().identity();
        let intent = BotRecord::intent(key, other, proc_table::boot_id(), 45_680);
        assert!(platform.state.create(&intent).unwrap());

        let err = platform.deploy_bot(&config(13), 1).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
        assert!(err.is_retryable());
        assert!(
            err.to_string()
                .contains("another meeboter-deploy process (pid 1)"),
            "{err}"
        );
        assert!(platform.live_processes().is_empty());
        assert_eq!(platform.state.read(key).unwrap(), Some(intent));
    }

    /// When the service runs as PID 1 of a container, bots of its previous
    /// run become its children without a handle watching them: their exit
    /// status is collected when their status is read.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_adopted_bot_that_ended_is_collected_with_its_exit_status() {
        let dir = tempfile::tempdir().unwrap();
        let mut platform = platform(dir.path());
        let key = InstanceKey::new(BotId(14), 1);
        let process = spawn_marked(&mut platform, key, 45_681);
        let record =
            BotRecord::intent(key, dead_writer(), proc_table::boot_id(), 45_681).spawned(process);
        platform.state.replace(&record).unwrap();
        let id = LocalBotId {
            process,
            instance: key,
        }
        .to_platform_id();

        platform.spawned[0].kill().unwrap();
        // Not collected by the std handle: a zombie child of this process.
        for _ in 0..500 {
            if matches!(proc_table::liveness(process), Liveness::Zombie(_)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(matches!(proc_table::liveness(process), Liveness::Zombie(_)));
        let status = platform.get_bot_status(&id).await.unwrap();
        assert_eq!(status.kind, StatusKind::Failed, "{status}");
        assert_eq!(status.reason.as_deref(), Some("killed by SIGKILL"));
        assert_eq!(proc_table::liveness(process), Liveness::Gone, "collected");
        let recorded = platform.state.read(key).unwrap().unwrap();
        assert!(recorded.exit.is_some());
        platform.cleanup(&id).await.unwrap();
        // The platform collected it, so its std handle finds nothing left.
        assert!(platform.spawned.pop().unwrap().wait().is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_repeated_deploy_of_a_bot_that_ended_returns_it_and_starts_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let platform = Guarded {
            platform: LocalPlatform::new(LocalConfig::new(
                BotCommand::parse("sh -c 'sleep 0.3'").unwrap(),
                dir.path().join("state"),
            ))
            .unwrap(),
            spawned: Vec::new(),
        };
        let first = platform.deploy_bot(&config(15), 1).await.unwrap();
        let id = LocalBotId::parse(&first.identifier).unwrap();
        for _ in 0..500 {
            if !proc_table::liveness(id.process).holds_pid() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let again = platform.deploy_bot(&config(15), 1).await.unwrap();
        assert_eq!(again, first);
        assert!(platform.live_processes().is_empty(), "nothing new started");
        let status = platform.get_bot_status(&first.identifier).await.unwrap();
        assert_eq!(status.kind, StatusKind::Stopped, "{status}");
        platform.cleanup(&first.identifier).await.unwrap();
    }
}
