//! A temporary state directory and platform per test, and a guard that
//! kills whatever a test leaves running, even when it fails.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use platform_core::testkit::Fixtures;
use platform_core::{BotDeploymentConfig, InstallationId, PlatformId};
use platform_local::{BotCommand, LocalBotId, LocalConfig, LocalPlatform};
use tempfile::TempDir;

/// A bot that exits 0 on SIGTERM; it has a child (`sleep`) in its group.
pub const WELL_BEHAVED: &str = r#"sh -c 'trap "exit 0" TERM; sleep 1000 & wait'"#;

/// A bot that is one process.
pub const SINGLE_PROCESS: &str = "sleep 1000";

/// A bot (and its child) that ignores SIGTERM.
pub const IGNORES_TERM: &str = r#"sh -c 'trap "" TERM; sleep 1000 & wait'"#;

/// An identifier no process has (pids never get this large), of a bot
/// deployed before installation ids existed.
pub const UNKNOWN_ID: &str = "2147483646:1:1-1";

/// A platform of its own installation on its own temporary state directory.
/// Dropping it kills every process carrying its installation's marker.
pub struct TestBed {
    pub platform: Arc<LocalPlatform>,
    config: LocalConfig,
    dir: TempDir,
}

impl TestBed {
    pub fn new(command: &str) -> Self {
        Self::with(command, |config| config)
    }

    pub fn with(command: &str, tweak: impl FnOnce(LocalConfig) -> LocalConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = tweak(
            LocalConfig::new(
                BotCommand::parse(command).unwrap(),
                dir.path().join("state"),
            )
            .with_stop_grace(Duration::from_secs(5)),
        );
        let platform =
            Arc::new(LocalPlatform::new(config.clone(), InstallationId::random()).unwrap());
        Self {
            platform,
            config,
            dir,
        }
    }

    pub fn installation(&self) -> &InstallationId {
        self.platform.installation()
    }

    /// A second platform on the same state directory: the service after a
    /// restart.
    pub fn restarted(&self) -> LocalPlatform {
        LocalPlatform::new(self.config.clone(), self.installation().clone()).unwrap()
    }

    /// A second platform on another state directory: the service restarted
    /// after an operator changed `LOCAL_STATE_DIR`, or from another working
    /// directory with the relative default.
    pub fn restarted_on_another_state_dir(&self) -> LocalPlatform {
        let mut config = self.config.clone();
        config.state_dir = self.dir.path().join("another-state");
        LocalPlatform::new(config, self.installation().clone()).unwrap()
    }

    /// A platform of another installation (another database) on the same
    /// state directory. The caller kills what it leaves running.
    pub fn other_installation(&self) -> LocalPlatform {
        LocalPlatform::new(self.config.clone(), InstallationId::random()).unwrap()
    }

    /// Fixtures whose unknown identifier is of this installation.
    pub fn fixtures(&self) -> Fixtures {
        Fixtures::new(format!("2147483646:1:{}:1-1", self.installation()))
    }

    pub fn state_dir(&self) -> &Path {
        self.platform.state_dir()
    }

    /// The records of this installation.
    pub fn records(&self) -> Vec<PathBuf> {
        records_of(&self.platform)
    }
}

/// The records `platform` keeps in its state directory.
pub fn records_of(platform: &LocalPlatform) -> Vec<PathBuf> {
    let dir = platform
        .state_dir()
        .join("bots")
        .join(platform.installation().as_str());
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

/// Kills every process carrying `platform`'s installation's marker.
pub fn kill_everything_of(platform: &LocalPlatform) {
    for process in platform.live_processes() {
        let _ = killpg(pid(process.process_group), Signal::SIGKILL);
        let _ = kill(pid(process.pid), Signal::SIGKILL);
    }
}

impl Drop for TestBed {
    fn drop(&mut self) {
        kill_everything_of(&self.platform);
    }
}

/// A platform a test builds itself, whose processes are killed when the
/// test ends, even by a panic.
pub struct KillAllOnDrop(pub LocalPlatform);

impl std::ops::Deref for KillAllOnDrop {
    type Target = LocalPlatform;

    fn deref(&self) -> &LocalPlatform {
        &self.0
    }
}

impl Drop for KillAllOnDrop {
    fn drop(&mut self) {
        kill_everything_of(&self.0);
    }
}

fn pid(raw: u32) -> Pid {
    Pid::from_raw(i32::try_from(raw).unwrap())
}

pub fn fixtures() -> Fixtures {
    Fixtures::new(UNKNOWN_ID)
}

pub fn bot(bot_id: u64) -> BotDeploymentConfig {
    fixtures().config(bot_id)
}

/// The fields of `/proc/<pid>/stat` after the command name, read
/// independently of the crate under test. The name is bytes (the kernel
/// cuts it at 15, inside a character if need be), so only what follows it
/// is decoded.
pub fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    let name_end = stat.iter().rposition(|b| *b == b')')?;
    let after_name = std::str::from_utf8(&stat[name_end + 1..]).ok()?;
    Some(after_name.split_whitespace().map(str::to_owned).collect())
}

/// The start time of process `pid` from `/proc` (zombies included).
pub fn start_ticks(pid: u32) -> Option<u64> {
    stat_fields(pid)?.get(19)?.parse().ok()
}

/// The state letter of `pid` (`Z` for a zombie).
pub fn state_of(pid: u32) -> Option<char> {
    stat_fields(pid)?.first()?.chars().next()
}

/// The process name the kernel keeps for `pid`, as bytes.
pub fn name_of(pid: u32) -> Option<Vec<u8>> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    let start = stat.iter().position(|b| *b == b'(')? + 1;
    let end = stat.iter().rposition(|b| *b == b')')?;
    Some(stat[start..end].to_vec())
}

/// Whether the process an identifier names still exists in any form,
/// zombie included.
pub fn process_exists(id: &PlatformId) -> bool {
    let id = LocalBotId::parse(id).unwrap();
    start_ticks(id.pid()) == Some(id.process.start_ticks)
}

/// The environment `pid` was started with.
pub fn environment_of(pid: u32) -> Vec<(String, String)> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .unwrap()
        .split(|b| *b == 0)
        .filter(|entry| !entry.is_empty())
        .filter_map(|entry| {
            let entry = String::from_utf8_lossy(entry).into_owned();
            let (name, value) = entry.split_once('=')?;
            Some((name.to_owned(), value.to_owned()))
        })
        .collect()
}

/// A process a test starts itself, killed when the test ends, even by a
/// panic.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `condition` for up to 10 s.
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..500 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("still not true after 10 s: {what}");
}
