//! Signals to bot processes and their process groups, and finding a bot's
//! processes by the marker in their environment.
//!
//! Every bot is spawned as the leader of its own process group, so the
//! group id is the bot's pid and one signal reaches the bot and whatever it
//! started (a browser). Before a group is signalled its ownership is
//! checked: the kernel does not reuse a pid while it is a live group id, so
//! a group whose leader still has our recorded start time, or whose members
//! carry our marker, is ours.

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::identifier::{InstanceKey, ProcessIdentity};
use crate::proc_table::{self, ProcStat};

/// The variable that marks a bot's processes: every process a bot starts
/// inherits it, so the bot's processes can be found after a crash of the
/// service and even when they left the bot's process group. Its value is
/// `<bot id>-<attempt>@<state dir>`.
pub const INSTANCE_MARKER_VAR: &str = "MEEBOTER_LOCAL_INSTANCE";

/// The marker value of `key`'s processes in the state directory `root`.
pub(crate) fn marker_value(key: InstanceKey, root: &std::path::Path) -> String {
    format!("{key}@{}", root.display())
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
pub(crate) fn group_carries_marker(group: u32, marker: &str) -> bool {
    proc_table::all_pids()
        .into_iter()
        .filter_map(proc_table::read_stat)
        .filter(|stat| stat.process_group == group && !stat.is_zombie())
        .any(|stat| {
            proc_table::environment_value(stat.pid, INSTANCE_MARKER_VAR).as_deref() == Some(marker)
        })
}

/// Live processes whose environment carries exactly `marker`.
pub(crate) fn processes_with_marker(marker: &str) -> Vec<ProcStat> {
    processes_where(|value| value == marker)
        .into_iter()
        .map(|(stat, _)| stat)
        .collect()
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

    use platform_core::BotId;

    use super::*;

    #[tokio::test]
    async fn a_group_is_found_by_its_marker_and_signalled() {
        let marker = marker_value(
            InstanceKey::new(BotId(77), 1),
            std::path::Path::new("/process-control-test"),
        );
        let mut child = Command::new("sh")
            .args(["-c", "sleep 30 & wait"])
            .env(INSTANCE_MARKER_VAR, &marker)
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
        assert!(!group_carries_marker(group, "other"));

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
