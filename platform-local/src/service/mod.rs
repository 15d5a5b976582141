//! [`LocalPlatform`]: the [`PlatformService`] that runs each bot as a child
//! process of this service.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use platform_core::{
    BotDeploymentConfig, BotId, BotStatus, ConfigProblem, DeployResult, Error, InstallationId,
    MarkedBot, PlatformId, PlatformService,
};

use crate::children::Children;
use crate::config::{LOCAL_BOT_COMMAND, LOCAL_STATE_DIR, LocalConfig};
use crate::deploy_locks::{self, LockScope};
use crate::error::{LocalError, PLATFORM};
use crate::exit_status::RecordedExit;
use crate::identifier::{InstanceKey, LocalBotId, ProcessIdentity};
use crate::ports::PortPicker;
use crate::proc_table;
use crate::process_control::{self, Marker};
use crate::state_dir::{BotRecord, LOG_RETENTION, StateDir};

mod deploy;
mod marked;
mod status;
mod teardown;
#[cfg(test)]
mod tests;

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

/// A live process started for a bot of this installation, as found in
/// `/proc` (see [`LocalPlatform::live_processes`]).
#[derive(Clone, Debug, PartialEq, Eq)]
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
/// Everything it names after a bot carries its installation (see
/// [`InstanceKey`]): records and logs live in the installation's directories
/// of the state directory and a bot's processes carry a marker naming the
/// installation, so installations sharing a state directory never find,
/// adopt, stop or clean up each other's bots, and
/// [`list_marked_bots`](PlatformService::list_marked_bots) lists this
/// installation's alone.
///
/// Bots outlive the service: a restarted service finds them through their
/// identifiers, records and markers, on this state directory or another
/// one. Dropping a `LocalPlatform` leaves its bots running.
pub struct LocalPlatform {
    config: LocalConfig,
    installation: InstallationId,
    state: StateDir,
    children: Children,
    ports: PortPicker,
    last_log_prune: AtomicU64,
}

impl fmt::Debug for LocalPlatform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalPlatform")
            .field("command", &self.config.command)
            .field("installation", &self.installation)
            .field("state_dir", &self.state.root())
            .finish_non_exhaustive()
    }
}

impl LocalPlatform {
    /// A platform running `installation`'s bots as `config` says. Creates
    /// the state directory if needed; fails with a configuration error
    /// naming `LOCAL_STATE_DIR` if it cannot.
    pub fn new(config: LocalConfig, installation: InstallationId) -> Result<Self, Error> {
        let state =
            StateDir::open(&config.state_dir, &installation).map_err(|e| Error::Config {
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
            installation,
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

    /// The installation whose bots this platform runs.
    pub fn installation(&self) -> &InstallationId {
        &self.installation
    }

    /// The state directory, as an absolute path.
    pub fn state_dir(&self) -> &Path {
        self.state.root()
    }

    /// Where the output of `bot_id`'s deploy number `attempt` is written.
    pub fn log_path(&self, bot_id: BotId, attempt: u32) -> PathBuf {
        self.state.log_path(&self.key(bot_id, attempt))
    }

    /// Every live process started for a bot of this installation (from
    /// any state directory), including what the bots started themselves,
    /// found by their marker. After every bot has been stopped and cleaned
    /// up this is empty: what it lists then is leaked.
    pub fn live_processes(&self) -> Vec<LiveProcess> {
        process_control::processes_where(|value| self.marks_ours(value))
            .into_iter()
            .filter_map(|(stat, marker)| {
                let (instance, _) = process_control::parse_marker(&marker)?;
                Some(LiveProcess {
                    pid: stat.pid,
                    process_group: stat.process_group,
                    instance,
                })
            })
            .collect()
    }

    fn key(&self, bot_id: BotId, attempt: u32) -> InstanceKey {
        InstanceKey::new(&self.installation, bot_id, attempt)
    }

    /// Whether a marker value names a bot of this installation.
    fn marks_ours(&self, value: &str) -> bool {
        process_control::parse_marker(value)
            .is_some_and(|(key, _)| key.installation.as_ref() == Some(&self.installation))
    }

    /// Whether this platform may act on `id`: a bot of its installation, or
    /// one deployed before installation ids existed (whose identifier only
    /// a database of that time holds). Another installation's identifier is
    /// never acted on.
    fn may_act_on(&self, id: &LocalBotId) -> bool {
        id.instance
            .installation
            .as_ref()
            .is_none_or(|installation| *installation == self.installation)
    }

    fn connection_url(port: u16) -> String {
        format!("http://127.0.0.1:{port}")
    }

    fn deploy_result(key: &InstanceKey, process: ProcessIdentity, port: u16) -> DeployResult {
        DeployResult {
            identifier: LocalBotId {
                process,
                instance: key.clone(),
            }
            .to_platform_id(),
            connection_url: Some(Self::connection_url(port)),
        }
    }

    fn marker(&self, key: &InstanceKey) -> Marker {
        Marker::new(key, self.state.root())
    }

    fn state_error(&self, action: &'static str, source: io::Error) -> LocalError {
        LocalError::state_dir(self.state.root(), action, source)
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
            self.state.prune_logs(&self.installation, LOG_RETENTION);
        }
    }

    fn check(&self) -> Result<(), Error> {
        let mut problems = Vec::new();
        if let Err(problem) = self.config.command.resolve() {
            problems.push(ConfigProblem::new(
                LOCAL_BOT_COMMAND.name,
                problem.to_string(),
            ));
        }
        let writable = StateDir::open(&self.config.state_dir, &self.installation)
            .and_then(|dir| dir.probe_writable(&self.installation));
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
    key: &InstanceKey,
    process: ProcessIdentity,
    exit: RecordedExit,
) {
    let _locked = deploy_locks::lock(LockScope::deploy(state.root(), key)).await;
    record_exit_locked(state, key, process, exit);
}

/// [`record_exit`] for a caller that holds the bot's deploy lock (the lock
/// is not reentrant: taking it again would wait for ever).
fn record_exit_locked(
    state: &StateDir,
    key: &InstanceKey,
    process: ProcessIdentity,
    exit: RecordedExit,
) {
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

/// Whether `record` is an intent that another live service process may be
/// acting on right now: it may spawn the bot at any moment.
fn intent_in_flight(record: &BotRecord) -> bool {
    record.process.is_none()
        && record.writer != proc_table::this_process()
        && proc_table::liveness(record.writer).is_alive()
}

/// Whether `record`, the record of `id`'s deploy if there is one, is
/// `id`'s: it names `id`'s process, or it is an intent whose deploy was
/// abandoned, so the process it announced is `id`'s or was never started. A
/// record of another process of the same deploy, or an intent another live
/// service may be acting on, is not: its processes and its record are left
/// alone.
fn record_is_of(record: Option<&BotRecord>, id: &LocalBotId) -> bool {
    record.is_none_or(|record| {
        record.describes(id.process) || (record.process.is_none() && !intent_in_flight(record))
    })
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

    fn capacity(&self) -> platform_core::PlatformCapacity {
        platform_core::PlatformCapacity::at_most(
            self.config
                .max_bots
                .map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
            crate::config::LOCAL_MAX_BOTS.name,
        )
        // A child process starts at once and nothing paces the starts.
        .with_deploy_pace(platform_core::DeployPace::unlimited(Duration::from_secs(1)))
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
        self.clean_up(identifier)
            .await
            .map_err(|e| e.into_platform_error(resource_of(identifier)))
    }

    async fn check_reachable(&self) -> platform_core::Result<()> {
        self.check()
    }

    async fn list_marked_bots(&self) -> platform_core::Result<Vec<MarkedBot>> {
        self.marked_bots().map_err(|e| {
            e.into_platform_error(format!("the bots of installation {}", self.installation))
        })
    }
}
