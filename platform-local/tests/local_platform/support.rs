//! A temporary state directory and platform per test, and a guard that
//! kills whatever a test leaves running, even when it fails.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use platform_core::testkit::Fixtures;
use platform_core::{BotDeploymentConfig, PlatformId};
use platform_local::{BotCommand, LocalBotId, LocalConfig, LocalPlatform};
use tempfile::TempDir;

/// A bot that exits 0 on SIGTERM; it has a child (`sleep`) in its group.
pub const WELL_BEHAVED: &str = r#"sh -c 'trap "exit 0" TERM; sleep 1000 & wait'"#;

/// A bot that is one process.
pub const SINGLE_PROCESS: &str = "sleep 1000";

/// A bot (and its child) that ignores SIGTERM.
pub const IGNORES_TERM: &str = r#"sh -c 'trap "" TERM; sleep 1000 & wait'"#;

/// An identifier no process has: pids never get this large.
pub const UNKNOWN_ID: &str = "2147483646:1:1-1";

/// A platform on its own temporary state directory. Dropping it kills every
/// process carrying its state directory's marker.
pub struct TestBed {
    pub platform: Arc<LocalPlatform>,
    config: LocalConfig,
    _dir: TempDir,
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
        let platform = Arc::new(LocalPlatform::new(config.clone()).unwrap());
        Self {
            platform,
            config,
            _dir: dir,
        }
    }

    /// A second platform on the same state directory: the service after a
    /// restart.
    pub fn restarted(&self) -> LocalPlatform {
        LocalPlatform::new(self.config.clone()).unwrap()
    }

    pub fn state_dir(&self) -> &Path {
        self.platform.state_dir()
    }

    pub fn records(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.state_dir().join("bots"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect()
    }
}

impl Drop for TestBed {
    fn drop(&mut self) {
        for process in self.platform.live_processes() {
            let _ = killpg(pid(process.process_group), Signal::SIGKILL);
            let _ = kill(pid(process.pid), Signal::SIGKILL);
        }
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

/// The start time of process `pid` from `/proc` (zombies included), read
/// independently of the crate under test.
pub fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = stat.rsplit_once(')')?.1;
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// The state letter of `pid` (`Z` for a zombie).
pub fn state_of(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .next()?
        .chars()
        .next()
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
