//! The state directory (`LOCAL_STATE_DIR`): one small JSON record per bot
//! deploy, so a restarted service (or a repeated deploy after a crash) finds
//! the bots it started, and one log file per bot deploy, each in its
//! installation's directory, so installations sharing a state directory (two
//! databases run from one place) never read each other's records.
//!
//! ```text
//! <state dir>/bots/<installation>/bot-42-attempt-1.json   the record (no secrets in it)
//! <state dir>/logs/<installation>/bot-42-attempt-1.log    the bot's stdout and stderr
//! ```
//!
//! Bots deployed before installation ids existed have their record and log
//! directly in `bots/` and `logs/`; they are still read, cleaned up and
//! pruned through their identifiers, never listed as any installation's.
//!
//! Records are written atomically (a temporary file renamed over the old
//! one), so a crash never leaves a half-written record. A record is created
//! before the bot is spawned (the intent: who is starting it and on which
//! port) and completed right after (its pid and start time); `cleanup`
//! removes it. Log files are kept after cleanup for the operator to read,
//! and deleted [`LOG_RETENTION`] after the bot's record is gone.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use platform_core::{BotId, InstallationId};
use serde::{Deserialize, Serialize};

use crate::exit_status::RecordedExit;
use crate::identifier::{InstanceKey, ProcessIdentity};

/// How long a bot's log file is kept after its record was cleaned up: a week
/// is long enough to look into last week's failed meeting, short enough that
/// a busy host does not fill its disk with logs.
pub const LOG_RETENTION: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// The record layout: 1 before installation ids, 2 with the installation.
const RECORD_FORMAT: u32 = 2;

/// What the state directory knows about one bot deploy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BotRecord {
    /// The record layout, for later changes.
    pub(crate) format: u32,
    /// The installation whose bot it is (absent in records written before
    /// installation ids existed).
    #[serde(default)]
    pub(crate) installation: Option<InstallationId>,
    pub(crate) bot_id: u64,
    pub(crate) attempt: u32,
    /// The service process that wrote the intent: while it lives, nobody
    /// else may start this bot.
    pub(crate) writer: ProcessIdentity,
    /// The boot the process was started in.
    pub(crate) boot_id: Option<String>,
    /// The bot's `BOT_PORT`.
    pub(crate) port: u16,
    /// The bot's process, once spawned. `None` is an intent: the spawn may
    /// or may not have happened.
    pub(crate) process: Option<ProcessIdentity>,
    /// When the process was spawned, in seconds since the Unix epoch.
    pub(crate) started_at_unix: Option<u64>,
    /// Whether a stop has been asked for.
    #[serde(default)]
    pub(crate) stop_requested: bool,
    /// How the process ended, when this service collected it.
    #[serde(default)]
    pub(crate) exit: Option<RecordedExit>,
}

impl BotRecord {
    /// An intent to start `key` on `port`, written by `writer`.
    pub(crate) fn intent(
        key: &InstanceKey,
        writer: ProcessIdentity,
        boot_id: Option<String>,
        port: u16,
    ) -> Self {
        Self {
            format: RECORD_FORMAT,
            installation: key.installation.clone(),
            bot_id: key.bot_id.0,
            attempt: key.attempt,
            writer,
            boot_id,
            port,
            process: None,
            started_at_unix: None,
            stop_requested: false,
            exit: None,
        }
    }

    pub(crate) fn key(&self) -> InstanceKey {
        InstanceKey {
            installation: self.installation.clone(),
            bot_id: BotId(self.bot_id),
            attempt: self.attempt,
        }
    }

    /// Marks the bot as spawned.
    pub(crate) fn spawned(mut self, process: ProcessIdentity) -> Self {
        self.process = Some(process);
        self.started_at_unix = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs());
        self
    }

    /// Whether the record describes this process of this boot.
    pub(crate) fn describes(&self, process: ProcessIdentity) -> bool {
        self.process == Some(process)
    }

    /// Whether the record was written in an earlier boot of this machine.
    pub(crate) fn started_in_earlier_boot(&self, current_boot: Option<&str>) -> bool {
        match (self.boot_id.as_deref(), current_boot) {
            (Some(recorded), Some(current)) => recorded != current,
            _ => false,
        }
    }
}

/// The state directory, created on first use with owner-only permissions:
/// logs may contain whatever a bot prints.
#[derive(Clone, Debug)]
pub(crate) struct StateDir {
    root: PathBuf,
    bots: PathBuf,
    logs: PathBuf,
}

/// Tells temporary file names of concurrent writers apart.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl StateDir {
    /// Creates the directory, with `installation`'s record and log
    /// directories, if needed, and resolves it to an absolute path that
    /// does not change when the service's working directory does.
    pub(crate) fn open(path: &Path, installation: &InstallationId) -> io::Result<Self> {
        let mut builder = DirBuilder::new();
        builder.recursive(true).mode(0o700);
        builder.create(path)?;
        let root = fs::canonicalize(path)?;
        let bots = root.join("bots");
        let logs = root.join("logs");
        builder.create(bots.join(installation.as_str()))?;
        builder.create(logs.join(installation.as_str()))?;
        Ok(Self { root, bots, logs })
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of `installation`'s files under `base` (`bots` or
    /// `logs`); `base` itself for bots of the time before installation ids.
    fn dir_of(base: &Path, installation: Option<&InstallationId>) -> PathBuf {
        match installation {
            Some(installation) => base.join(installation.as_str()),
            None => base.to_owned(),
        }
    }

    pub(crate) fn record_path(&self, key: &InstanceKey) -> PathBuf {
        Self::dir_of(&self.bots, key.installation.as_ref())
            .join(format!("{}.json", key.file_stem()))
    }

    pub(crate) fn log_path(&self, key: &InstanceKey) -> PathBuf {
        Self::dir_of(&self.logs, key.installation.as_ref()).join(format!("{}.log", key.file_stem()))
    }

    /// The record of `key`. A record that cannot be parsed (written by a
    /// newer version, or damaged by a power cut) is `InvalidData`.
    pub(crate) fn read(&self, key: &InstanceKey) -> io::Result<Option<BotRecord>> {
        read_record(&self.record_path(key))
    }

    /// Writes `record` only if `key` has none yet. Returns whether it did.
    pub(crate) fn create(&self, record: &BotRecord) -> io::Result<bool> {
        let path = self.record_path(&record.key());
        let temp = self.write_temp(record)?;
        // A hard link fails if the target exists: an atomic "create with
        // this content unless present".
        let linked = fs::hard_link(&temp, &path);
        let _ = fs::remove_file(&temp);
        match linked {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Writes `record`, replacing the one of its key.
    pub(crate) fn replace(&self, record: &BotRecord) -> io::Result<()> {
        let path = self.record_path(&record.key());
        let temp = self.write_temp(record)?;
        fs::rename(&temp, &path).inspect_err(|_| {
            let _ = fs::remove_file(&temp);
        })
    }

    /// Removes the record of `key`; a missing one is fine.
    pub(crate) fn remove(&self, key: &InstanceKey) -> io::Result<()> {
        match fs::remove_file(self.record_path(key)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Every readable record of `installation`.
    pub(crate) fn list(&self, installation: &InstallationId) -> io::Result<Vec<BotRecord>> {
        records_in(&self.bots.join(installation.as_str()), Some(installation))
    }

    /// Every readable record in the state directory, whatever its
    /// installation: what runs from here, for the running-bot cap.
    pub(crate) fn list_all(&self) -> io::Result<Vec<BotRecord>> {
        let mut records = records_in(&self.bots, None)?;
        for entry in fs::read_dir(&self.bots)? {
            let entry = entry?;
            let installation = entry
                .file_name()
                .to_str()
                .and_then(|name| name.parse::<InstallationId>().ok());
            if let Some(installation) = installation
                && entry.file_type()?.is_dir()
            {
                records.extend(records_in(&entry.path(), Some(&installation))?);
            }
        }
        Ok(records)
    }

    fn write_temp(&self, record: &BotRecord) -> io::Result<PathBuf> {
        let key = record.key();
        let temp = Self::dir_of(&self.bots, key.installation.as_ref()).join(format!(
            ".{}.json.tmp-{}-{}",
            key.file_stem(),
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let json = serde_json::to_vec_pretty(record).map_err(io::Error::other)?;
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        let written = file.write_all(&json).and_then(|()| file.flush());
        if let Err(e) = written {
            let _ = fs::remove_file(&temp);
            return Err(e);
        }
        Ok(temp)
    }

    /// The bot's log file, opened for appending (a bot started again for the
    /// same deploy after a crash appends to the same log).
    pub(crate) fn open_log(&self, key: &InstanceKey) -> io::Result<File> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(self.log_path(key))
    }

    /// The last `max_lines` lines of the bot's log, from its last 8 KiB.
    pub(crate) fn log_tail(&self, key: &InstanceKey, max_lines: usize) -> String {
        const WINDOW: u64 = 8 * 1024;
        let Ok(mut file) = File::open(self.log_path(key)) else {
            return String::new();
        };
        let length = file.metadata().map(|m| m.len()).unwrap_or(0);
        let start = length.saturating_sub(WINDOW);
        let mut bytes = Vec::new();
        if file.seek(SeekFrom::Start(start)).is_err() || file.read_to_end(&mut bytes).is_err() {
            return String::new();
        }
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.lines().collect();
        // The first line of a window cut mid-file is partial.
        let skip = usize::from(start > 0 && lines.len() > 1);
        let lines = &lines[skip..];
        lines[lines.len().saturating_sub(max_lines)..].join("\n")
    }

    /// Deletes the log files of `installation`'s bots, and of bots from
    /// before installation ids, that have no record any more and whose log
    /// was last written more than `retention` ago. Another installation's
    /// logs are its own to prune.
    pub(crate) fn prune_logs(&self, installation: &InstallationId, retention: Duration) {
        self.prune_logs_in(Some(installation), retention);
        self.prune_logs_in(None, retention);
    }

    fn prune_logs_in(&self, installation: Option<&InstallationId>, retention: Duration) {
        let Ok(entries) = fs::read_dir(Self::dir_of(&self.logs, installation)) else {
            return;
        };
        let now = SystemTime::now();
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            let Some(key) = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|stem| InstanceKey::from_file_stem(installation, stem))
            else {
                continue;
            };
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|modified| now.duration_since(modified).ok())
                .is_some_and(|age| age >= retention);
            if old && !self.record_path(&key).exists() {
                match fs::remove_file(&path) {
                    Ok(()) => tracing::debug!(log = %path.display(), "deleted an old bot log"),
                    Err(e) => {
                        tracing::warn!(log = %path.display(), error = %e, "could not delete an old bot log")
                    }
                }
            }
        }
    }

    /// Checks that `installation`'s records can be written here.
    pub(crate) fn probe_writable(&self, installation: &InstallationId) -> io::Result<()> {
        let probe = self
            .bots
            .join(installation.as_str())
            .join(format!(".probe-{}", std::process::id()));
        File::create(&probe)?;
        fs::remove_file(&probe)
    }
}

/// The readable records directly in `dir`, which holds `installation`'s.
fn records_in(dir: &Path, installation: Option<&InstallationId>) -> io::Result<Vec<BotRecord>> {
    let mut records = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let is_record = path.extension().is_some_and(|e| e == "json")
            && path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|stem| InstanceKey::from_file_stem(installation, stem))
                .is_some();
        // A record whose content names another installation than its
        // directory was moved there by hand: not this installation's.
        if is_record
            && let Ok(Some(record)) = read_record(&path)
            && record.installation.as_ref() == installation
        {
            records.push(record);
        }
    }
    Ok(records)
}

fn read_record(path: &Path) -> io::Result<Option<BotRecord>> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> ProcessIdentity {
        ProcessIdentity {
            pid: 10,
            start_ticks: 20,
        }
    }

    fn installation() -> InstallationId {
        InstallationId::new("0123456789abcdef").unwrap()
    }

    fn key(bot: u64) -> InstanceKey {
        InstanceKey::new(&installation(), BotId(bot), 1)
    }

    #[test]
    fn records_are_created_once_replaced_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(&dir.path().join("state"), &installation()).unwrap();
        let key = key(42);
        assert_eq!(state.read(&key).unwrap(), None);

        let intent = BotRecord::intent(&key, me(), Some("boot".into()), 4000);
        assert!(state.create(&intent).unwrap());
        assert!(
            !state
                .create(&BotRecord::intent(&key, me(), None, 5000))
                .unwrap()
        );
        assert_eq!(state.read(&key).unwrap(), Some(intent.clone()));
        assert!(
            dir.path()
                .join("state/bots/0123456789abcdef/bot-42-attempt-1.json")
                .exists()
        );

        let child = ProcessIdentity {
            pid: 30,
            start_ticks: 40,
        };
        let spawned = intent.spawned(child);
        state.replace(&spawned).unwrap();
        let read = state.read(&key).unwrap().unwrap();
        assert!(read.describes(child));
        assert_eq!(state.list(&installation()).unwrap(), vec![read]);

        state.remove(&key).unwrap();
        state.remove(&key).unwrap();
        assert_eq!(state.read(&key).unwrap(), None);
        // No temporary file is left behind.
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("state/bots/0123456789abcdef"))
            .unwrap()
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn installations_sharing_a_state_directory_keep_apart() {
        let dir = tempfile::tempdir().unwrap();
        let other = InstallationId::new("fedcba9876543210").unwrap();
        let ours = StateDir::open(dir.path(), &installation()).unwrap();
        let theirs = StateDir::open(dir.path(), &other).unwrap();
        let our_bot = key(1);
        let their_bot = InstanceKey::new(&other, BotId(1), 1);
        assert!(
            ours.create(&BotRecord::intent(&our_bot, me(), None, 1))
                .unwrap()
        );
        // Their bot 1 attempt 1 is another bot: its intent is written too.
        assert!(
            theirs
                .create(&BotRecord::intent(&their_bot, me(), None, 2))
                .unwrap()
        );
        assert_eq!(ours.read(&our_bot).unwrap().unwrap().port, 1);
        assert_eq!(theirs.read(&their_bot).unwrap().unwrap().port, 2);
        assert_ne!(ours.log_path(&our_bot), theirs.log_path(&their_bot));

        let listed: Vec<_> = ours
            .list(&installation())
            .unwrap()
            .iter()
            .map(BotRecord::key)
            .collect();
        assert_eq!(listed, std::slice::from_ref(&our_bot));
        // The running-bot cap counts every installation's, and bots of the
        // time before installation ids.
        let old = InstanceKey::without_installation(BotId(1), 1);
        ours.replace(&BotRecord::intent(&old, me(), None, 3))
            .unwrap();
        assert!(dir.path().join("bots/bot-1-attempt-1.json").exists());
        let mut all: Vec<_> = ours
            .list_all()
            .unwrap()
            .iter()
            .map(BotRecord::key)
            .collect();
        all.sort();
        let mut expected = vec![old, our_bot, their_bot];
        expected.sort();
        assert_eq!(all, expected);
    }

    #[test]
    fn a_record_of_the_time_before_installation_ids_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path(), &installation()).unwrap();
        // As the previous version wrote it.
        fs::write(
            dir.path().join("bots/bot-5-attempt-2.json"),
            r#"{"format":1,"bot_id":5,"attempt":2,"writer":{"pid":10,"start_ticks":20},"boot_id":null,"port":4000,"process":{"pid":30,"start_ticks":40},"started_at_unix":1,"stop_requested":false,"exit":null}"#,
        )
        .unwrap();
        let old = InstanceKey::without_installation(BotId(5), 2);
        let record = state.read(&old).unwrap().unwrap();
        assert_eq!(record.key(), old);
        assert_eq!(record.port, 4000);
        // Never listed as this installation's.
        assert!(state.list(&installation()).unwrap().is_empty());
        state.remove(&old).unwrap();
        assert_eq!(state.read(&old).unwrap(), None);
    }

    #[test]
    fn a_damaged_record_is_invalid_data() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path(), &installation()).unwrap();
        let key = key(1);
        fs::write(state.record_path(&key), "{ not json").unwrap();
        assert_eq!(
            state.read(&key).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        assert!(state.list(&installation()).unwrap().is_empty());
    }

    #[test]
    fn the_directory_is_private_and_absolute() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(&dir.path().join("a/b"), &installation()).unwrap();
        assert!(state.root().is_absolute());
        for path in [
            state.root().to_owned(),
            state.root().join("bots/0123456789abcdef"),
            state.root().join("logs/0123456789abcdef"),
        ] {
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700, "{}", path.display());
        }
        state.probe_writable(&installation()).unwrap();
    }

    #[test]
    fn log_tail_gives_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path(), &installation()).unwrap();
        let key = key(1);
        let mut log = state.open_log(&key).unwrap();
        for i in 0..5000 {
            writeln!(log, "line {i}").unwrap();
        }
        assert_eq!(state.log_tail(&key, 3), "line 4997\nline 4998\nline 4999");
        assert_eq!(state.log_tail(&self::key(2), 3), "");
    }

    #[test]
    fn old_logs_of_cleaned_up_bots_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path(), &installation()).unwrap();
        let other = InstallationId::new("fedcba9876543210").unwrap();
        let theirs = StateDir::open(dir.path(), &other).unwrap();
        let gone = key(1);
        let live = key(2);
        let old_gone = InstanceKey::without_installation(BotId(3), 1);
        let their_gone = InstanceKey::new(&other, BotId(1), 1);
        for key in [&gone, &live, &old_gone] {
            state.open_log(key).unwrap();
        }
        theirs.open_log(&their_gone).unwrap();
        state
            .replace(&BotRecord::intent(&live, me(), None, 1))
            .unwrap();
        state.prune_logs(&installation(), Duration::from_secs(3600));
        assert!(state.log_path(&gone).exists(), "recent logs are kept");
        state.prune_logs(&installation(), Duration::ZERO);
        assert!(!state.log_path(&gone).exists());
        assert!(!state.log_path(&old_gone).exists());
        assert!(
            state.log_path(&live).exists(),
            "a bot with a record keeps its log"
        );
        assert!(
            theirs.log_path(&their_gone).exists(),
            "another installation's logs are its own to prune"
        );
    }
}
