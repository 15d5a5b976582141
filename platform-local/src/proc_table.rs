//! What the kernel says about processes, read from `/proc`.
//!
//! Reads of `/proc` never wait on a disk, so they are done inline from async
//! code.

use std::sync::OnceLock;

use crate::identifier::ProcessIdentity;

/// The fields of `/proc/<pid>/stat` the platform uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ProcStat {
    pub(crate) pid: u32,
    /// `R`, `S`, `D`, `Z` (zombie), `T`, …
    pub(crate) state: char,
    pub(crate) parent_pid: u32,
    pub(crate) process_group: u32,
    pub(crate) start_ticks: u64,
}

impl ProcStat {
    pub(crate) fn identity(&self) -> ProcessIdentity {
        ProcessIdentity {
            pid: self.pid,
            start_ticks: self.start_ticks,
        }
    }

    /// A zombie has ended and waits for its parent to collect its exit
    /// status; it runs nothing.
    pub(crate) fn is_zombie(&self) -> bool {
        matches!(self.state, 'Z' | 'X')
    }
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) is in parentheses
/// and may itself contain spaces and parentheses, so fields are counted from
/// the last `)`. The file is bytes, not text: the name is whatever the
/// program was called, cut by the kernel at 15 bytes, which can split a
/// multibyte character, so only the fields around it are decoded.
pub(crate) fn parse_stat(bytes: &[u8]) -> Option<ProcStat> {
    let name_end = bytes.iter().rposition(|b| *b == b')')?;
    let (head, tail) = (&bytes[..name_end], &bytes[name_end + 1..]);
    let name_start = head.windows(2).position(|w| w == b" (")?;
    let pid = std::str::from_utf8(&head[..name_start])
        .ok()?
        .trim()
        .parse()
        .ok()?;
    // Everything after the name is ASCII numbers and the state letter.
    let tail = std::str::from_utf8(tail).ok()?;
    let fields: Vec<&str> = tail.split_whitespace().collect();
    // `fields[0]` is field 3 of proc(5); field N is `fields[N - 3]`.
    Some(ProcStat {
        pid,
        state: fields.first()?.chars().next()?,
        parent_pid: fields.get(1)?.parse().ok()?,
        process_group: fields.get(2)?.parse().ok()?,
        start_ticks: fields.get(19)?.parse().ok()?,
    })
}

/// The process `pid`, if it exists (a zombie included).
pub(crate) fn read_stat(pid: u32) -> Option<ProcStat> {
    let bytes = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&bytes)
}

/// What has become of a process we know by its identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Liveness {
    /// Running (or sleeping, or stopped by a signal): not ended.
    Alive(ProcStat),
    /// Ended; its parent has not collected its exit status yet.
    Zombie(ProcStat),
    /// Ended and collected: no process has that pid.
    Gone,
    /// Ended: the pid now belongs to a different process.
    Reused,
}

impl Liveness {
    pub(crate) fn is_alive(&self) -> bool {
        matches!(self, Self::Alive(_))
    }

    /// Alive or a zombie: the pid (and so the process group id) still
    /// belongs to this process and cannot be reused.
    pub(crate) fn holds_pid(&self) -> bool {
        matches!(self, Self::Alive(_) | Self::Zombie(_))
    }
}

pub(crate) fn liveness(process: ProcessIdentity) -> Liveness {
    match read_stat(process.pid) {
        None => Liveness::Gone,
        Some(stat) if stat.start_ticks != process.start_ticks => Liveness::Reused,
        Some(stat) if stat.is_zombie() => Liveness::Zombie(stat),
        Some(stat) => Liveness::Alive(stat),
    }
}

/// Every process id currently in `/proc` (the numeric entries; the others
/// are the kernel's own files).
pub(crate) fn all_pids() -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name();
            std::str::from_utf8(name.as_encoded_bytes())
                .ok()?
                .parse()
                .ok()
        })
        .collect()
}

/// The value of `name` in the environment `pid` was started with, when the
/// process is readable (ours, and not a zombie: a zombie's environment reads
/// empty). An environment is bytes: a value that is not UTF-8 is `None`,
/// never a lossy copy that could match another.
pub(crate) fn environment_value(pid: u32, name: &str) -> Option<String> {
    let bytes = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let prefix = format!("{name}=");
    let value = bytes
        .split(|b| *b == 0)
        .find_map(|entry| entry.strip_prefix(prefix.as_bytes()))?;
    String::from_utf8(value.to_vec()).ok()
}

/// This service process, as it would appear in a state file's `writer`.
pub(crate) fn this_process() -> ProcessIdentity {
    static SELF: OnceLock<ProcessIdentity> = OnceLock::new();
    *SELF.get_or_init(|| {
        let pid = std::process::id();
        let start_ticks = read_stat(pid).map_or(0, |stat| stat.start_ticks);
        ProcessIdentity { pid, start_ticks }
    })
}

/// The kernel's id of the current boot. Start ticks count from boot, so a
/// state file from an earlier boot describes a process that is gone even if
/// a new process has the same pid and start time.
pub(crate) fn boot_id() -> Option<String> {
    static BOOT_ID: OnceLock<Option<String>> = OnceLock::new();
    BOOT_ID
        .get_or_init(|| {
            let bytes = std::fs::read("/proc/sys/kernel/random/boot_id").ok()?;
            let id = String::from_utf8(bytes).ok()?.trim().to_owned();
            (!id.is_empty()).then_some(id)
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_command_names_parse() {
        let line = "4242 (my (odd) bot) S 100 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654 1000 10 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let stat = parse_stat(line.as_bytes()).unwrap();
        assert_eq!(
            stat,
            ProcStat {
                pid: 4242,
                state: 'S',
                parent_pid: 100,
                process_group: 4242,
                start_ticks: 987_654,
            }
        );
        assert!(!stat.is_zombie());
        assert!(parse_stat(b"garbage").is_none());
        assert!(parse_stat(b"12 (x) Z 1 12").is_none());
    }

    #[test]
    fn a_name_cut_inside_a_multibyte_character_still_parses() {
        // `bot-ééééééé` cut by the kernel at 15 bytes ends in half an `é`.
        let mut line =
            b"4242 (bot-\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3) S 100 4242 4242".to_vec();
        line.extend_from_slice(b" 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654 1000 10 1");
        assert!(
            std::str::from_utf8(&line).is_err(),
            "the test needs a cut character"
        );
        let stat = parse_stat(&line).unwrap();
        assert_eq!(stat.pid, 4242);
        assert_eq!(stat.process_group, 4242);
        assert_eq!(stat.start_ticks, 987_654);
    }

    #[test]
    fn this_process_is_alive_and_readable() {
        let me = this_process();
        assert_eq!(me.pid, std::process::id());
        assert!(liveness(me).is_alive());
        let reused = ProcessIdentity {
            start_ticks: me.start_ticks + 1,
            ..me
        };
        assert_eq!(liveness(reused), Liveness::Reused);
        assert!(all_pids().contains(&me.pid));
        assert!(environment_value(me.pid, "PATH").is_some());
        assert!(boot_id().is_some());
    }
}
