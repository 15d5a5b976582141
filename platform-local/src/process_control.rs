//! Signals to bot processes and their process groups, and finding a bot's
//! processes by the marker in their environment.
//!
//! Every bot is spawned as the leader of its own process group, so the
//! group id is the bot's pid and one signal reaches the bot and whatever it
//! started (a browser). Before a group is signalled its ownership is
//! checked: the kernel does not reuse a pid while it is a live group id, so
//! a group whose leader still has our recorded start time, or whose members
//! carry our marker, is ours.
//!
//! The marker names the installation, the bot and the attempt, which
//! together name one deploy on this machine whatever the state directory:
//! the database that holds the bot counts its attempts, and another
//! database has another installation. So a bot's processes are found by
//! their marker alone, even by a service started on another state
//! directory (an operator changed `LOCAL_STATE_DIR`, or ran the CLI from
//! another working directory with the relative default), and never those
//! of another installation. The state directory is in the marker too, for
//! an operator reading `ps e`, but is not compared, except for bots
//! deployed before installation ids existed, whose marker has nothing else
//! to tell two databases apart.

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use std::path::Path;

use crate::identifier::{InstanceKey, ProcessIdentity};
use crate::proc_table::{self, ProcStat};

/// The variable that marks a bot's processes: every process a bot starts
/// inherits it, so the bot's processes can be found after a crash of the
/// service and even when they left the bot's process group. Its value is
/// `<installation>:<bot id>-<attempt>@<state dir>` (before installation ids
/// existed: `<bot id>-<attempt>@<state dir>`).
pub const INSTANCE_MARKER_VAR: &str = "MEEBOTER_LOCAL_INSTANCE";

/// The marker of one bot deploy's processes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Marker {
    key: InstanceKey,
    /// The state directory, as the bot's environment carries it.
    root: String,
}

impl Marker {
    /// The marker of `key`'s processes, started from the state directory
    /// `root`.
    pub(crate) fn new(key: &InstanceKey, root: &Path) -> Self {
        Self {
            key: key.clone(),
            root: root.display().to_string(),
        }
    }

    /// The value put into the bot's environment.
    pub(crate) fn value(&self) -> String {
        format!("{}@{}", self.key, self.root)
    }

    /// Whether a process whose marker is `value` belongs to this deploy:
    /// the same installation, bot and attempt, from any state directory
    /// (see the module's documentation).
    pub(crate) fn is_carried_by(&self, value: &str) -> bool {
        match &self.key.installation {
            Some(_) => parse_marker(value).is_some_and(|(key, _)| key == self.key),
            None => value == self.value(),
        }
    }
}

/// The deploy and the state directory a marker value names. A value
/// without an installation is `None`: it cannot be told apart from another
/// database's.
pub(crate) fn parse_marker(value: &str) -> Option<(InstanceKey, &str)> {
    let (key, root) = value.split_once('@')?;
    let key: InstanceKey = key.parse().ok()?;
    key.installation.is_some().then_some((key, root))
}

fn pid(raw: u32) -> Pid {
    // Pids come from `/proc` or from a parsed identifier, which refuses
    // numbers beyond i32; a negative number would address a process group.
    Pid::from_raw(i32::try_from(raw).unwrap_or(i32::MAX))
}

/// Sends `signal` to process group `group`. `Ok(false)`: no such group.
pub(crate) fn signal_group(group: u32, signal: Signal) -> Result<bool, Errno> {
    match killpg(pid(group), signal) {
        Ok(()) => Ok(true),
        Err(Errno::ESRCH) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Sends `signal` to one process, if it is still the process we know.
/// `Ok(false)`: it has ended.
pub(crate) fn signal_process(process: ProcessIdentity, signal: Signal) -> Result<bool, Errno> {
    if !proc_table::liveness(process).is_alive() {
        return Ok(false);
    }
    match kill(pid(process.pid), signal) {
        Ok(()) => Ok(true),
        Err(Errno::ESRCH) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether group `group` still has a member that is not a zombie.
pub(crate) fn group_has_live_members(group: u32) -> bool {
    match killpg(pid(group), None) {
        Err(Errno::ESRCH) => false,
        // Members exist; they may all be zombies waiting to be collected.
        _ => {
            if let Some(leader) = proc_table::read_stat(group)
                && leader.process_group == group
                && !leader.is_zombie()
            {
                return true;
            }
            proc_table::all_pids()
                .into_iter()
                .filter_map(proc_table::read_stat)
                .any(|stat| stat.process_group == group && !stat.is_zombie())
        }
    }
}

/// Whether group `group` has a live member carrying `marker`: proof that
/// the group is the bot's even when its leader has ended.
pub(crate) fn group_carries_marker(group: u32, marker: &Marker) -> bool {
    proc_table::all_pids()
        .into_iter()
        .filter_map(proc_table::read_stat)
        .filter(|stat| stat.process_group == group && !stat.is_zombie())
        .any(|stat| {
            proc_table::environment_value(stat.pid, INSTANCE_MARKER_VAR)
                .is_some_and(|value| marker.is_carried_by(&value))
        })
}

/// Live processes carrying `marker`.
pub(crate) fn processes_with_marker(marker: &Marker) -> Vec<ProcStat> {
    processes_where(|value| marker.is_carried_by(value))
        .into_iter()
        .map(|(stat, _)| stat)
        .collect()
}

/// Of one deploy's live processes, the bot's own: the one that started the
/// others, that is a group leader whose parent is none of them (a helper
/// that left the group with `setsid` leads a group too, but its parent is
/// the bot). When the bot has ended, the first of what it left. Ties go to
/// the earlier start, then the lower pid: a helper can start within the
/// bot's clock tick.
pub(crate) fn bot_process(processes: &[ProcStat]) -> Option<&ProcStat> {
    processes.iter().min_by_key(|stat| {
        let started_by_another = processes.iter().any(|p| p.pid == stat.parent_pid);
        let leads_a_group = stat.pid == stat.process_group;
        (
            started_by_another,
            !leads_a_group,
            stat.start_ticks,
            stat.pid,
        )
    })
}

/// Live processes whose marker satisfies `accept`, with their marker.
pub(crate) fn processes_where(accept: impl Fn(&str) -> bool) -> Vec<(ProcStat, String)> {
    proc_table::all_pids()
        .into_iter()
        .filter_map(|pid| {
            let marker = proc_table::environment_value(pid, INSTANCE_MARKER_VAR)?;
            if !accept(&marker) {
                return None;
            }
            let stat = proc_table::read_stat(pid)?;
            (!stat.is_zombie()).then_some((stat, marker))
        })
        .collect()
}

/// Collects the exit status of `process` if it is a zombie child of this
/// service that no process handle watches: a bot adopted after a restart
/// when the service runs as PID 1 (a container without an init) and so
/// became the parent of orphans. Never call it for a child a
/// `tokio::process::Child` watches: the handle would lose the status.
pub(crate) fn collect_adopted_zombie(process: ProcessIdentity) -> Option<WaitStatus> {
    let stat = proc_table::read_stat(process.pid)?;
    if stat.start_ticks != process.start_ticks
        || !stat.is_zombie()
        || stat.parent_pid != std::process::id()
    {
        return None;
    }
    match waitpid(pid(process.pid), Some(WaitPidFlag::WNOHANG)) {
        Ok(status @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => Some(status),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    use std::time::Duration;

    use platform_core::{BotId, InstallationId};

    use super::*;

    #[test]
    fn markers_name_installation_bot_and_attempt() {
        let installation = InstallationId::new("0123456789abcdef").unwrap();
        let key = InstanceKey::new(&installation, BotId(42), 1);
        let marker = Marker::new(&key, Path::new("/var/lib/meeboter"));
        assert_eq!(marker.value(), "0123456789abcdef:42-1@/var/lib/meeboter");
        assert_eq!(
            parse_marker(&marker.value()),
            Some((key.clone(), "/var/lib/meeboter"))
        );
        assert!(marker.is_carried_by("0123456789abcdef:42-1@/somewhere/else"));
        assert!(!marker.is_carried_by("fedcba9876543210:42-1@/var/lib/meeboter"));
        assert!(!marker.is_carried_by("0123456789abcdef:42-2@/var/lib/meeboter"));
        assert!(!marker.is_carried_by("42-1@/var/lib/meeboter"));

        // A marker of the time before installation ids: only its own state
        // directory tells two databases' bot 42 apart.
        let old = Marker::new(
            &InstanceKey::without_installation(BotId(42), 1),
            Path::new("/var/lib/meeboter"),
        );
        assert_eq!(old.value(), "42-1@/var/lib/meeboter");
        assert_eq!(parse_marker(&old.value()), None);
        assert!(old.is_carried_by("42-1@/var/lib/meeboter"));
        assert!(!old.is_carried_by("42-1@/somewhere/else"));
        assert!(!old.is_carried_by("0123456789abcdef:42-1@/var/lib/meeboter"));
    }

    fn stat(pid: u32, parent_pid: u32, process_group: u32, start_ticks: u64) -> ProcStat {
        ProcStat {
            pid,
            state: 'S',
            parent_pid,
            process_group,
            start_ticks,
        }
    }

    #[test]
    fn the_bot_is_the_process_that_started_the_others() {
        // The bot (100), its child in its group, and a helper that left the
        // group with setsid in the same clock tick.
        let bot = stat(100, 1, 100, 50);
        let child = stat(101, 100, 100, 50);
        let helper = stat(102, 100, 102, 50);
        for order in [
            vec![helper, child, bot],
            vec![bot, helper, child],
            vec![child, bot, helper],
        ] {
            assert_eq!(bot_process(&order), Some(&bot));
        }
        // The bot has ended: what it left, reparented, the earliest first.
        let orphan_helper = stat(102, 1, 102, 51);
        let orphan_child = stat(101, 1, 100, 52);
        assert_eq!(
            bot_process(&[orphan_child, orphan_helper]),
            Some(&orphan_helper)
        );
        assert_eq!(bot_process(&[orphan_child]), Some(&orphan_child));
        assert_eq!(bot_process(&[]), None);
    }

    #[tokio::test]
    async fn a_group_is_found_by_its_marker_and_signalled() {
        let installation = InstallationId::random();
        let key = InstanceKey::new(&installation, BotId(77), 1);
        let marker = Marker::new(&key, Path::new("/process-control-test"));
        let mut child = Command::new("sh")
            .args(["-c", "sleep 30 & wait"])
            .env(INSTANCE_MARKER_VAR, marker.value())
            .stdout(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let group = child.id();
        // The shell and its `sleep` both carry the marker.
        let mut found = Vec::new();
        for _ in 0..100 {
            found = processes_with_marker(&marker);
            if found.len() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found.iter().all(|stat| stat.process_group == group));
        assert!(group_has_live_members(group));
        assert!(group_carries_marker(group, &marker));
        // The same deploy from another state directory is the same bot;
        // another attempt, or another installation's bot 77, is not.
        assert!(group_carries_marker(
            group,
            &Marker::new(&key, Path::new("/elsewhere"))
        ));
        let next_attempt = InstanceKey::new(&installation, BotId(77), 2);
        assert!(!group_carries_marker(
            group,
            &Marker::new(&next_attempt, Path::new("/process-control-test"))
        ));
        let other_installation = InstanceKey::new(&InstallationId::random(), BotId(77), 1);
        assert!(!group_carries_marker(
            group,
            &Marker::new(&other_installation, Path::new("/process-control-test"))
        ));

        assert!(signal_group(group, Signal::SIGKILL).unwrap());
        let status = child.wait().unwrap();
        assert!(!status.success());
        for _ in 0..100 {
            if !group_has_live_members(group) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!group_has_live_members(group));
        assert!(processes_with_marker(&marker).is_empty());
    }
}
