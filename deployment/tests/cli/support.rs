//! One operator's machine: the binary run in a directory of its own.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_meeboter-deploy");

/// One operator's machine: a working directory with the database and the
/// local platform's state.
pub struct Machine {
    dir: tempfile::TempDir,
}

impl Machine {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("bots.db")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("local")
    }

    pub fn marker(&self) -> String {
        self.dir
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env(
                "DATABASE_URL",
                format!("sqlite:{}", self.db_path().display()),
            )
            .env("DEPLOYMENT_PLATFORM", "local")
            .env("LOCAL_STATE_DIR", self.state_dir())
            .env("LOCAL_BOT_COMMAND", format!("{BIN} sim-bot"))
            .env("LOCAL_STOP_GRACE_SECONDS", "5")
            .env("PLATFORM_CALL_TIMEOUT", "1")
            .env("LOG_LEVEL", "warn")
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    pub fn json(&self, args: &[&str]) -> (i32, Value) {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.run(&all);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {stdout}\nstderr: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().unwrap_or(-1), value)
    }

    pub fn bot_processes(&self) -> Vec<u32> {
        let marker = self.marker();
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
            if environ.split(|b| *b == 0).any(|var| {
                var.starts_with(b"MEEBOTER_LOCAL_INSTANCE=")
                    && String::from_utf8_lossy(var).contains(&marker)
            }) {
                found.push(pid);
            }
        }
        found
    }

    pub fn wait_for_no_bot_process(&self) -> Vec<u32> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = self.bot_processes();
            if left.is_empty() || Instant::now() > deadline {
                return left;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs the command until it prints `failpoint <name> reached`, then
    /// kills it with SIGKILL, as a crash would.
    /// Runs `during` while `reconcile` runs in the background (every
    /// second), then stops it with SIGTERM and checks that it ended cleanly.
    pub fn with_reconciler_running<T>(&self, during: impl FnOnce() -> T) -> T {
        let reconciler = self
            .command(&["reconcile"])
            .env("RECONCILE_INTERVAL", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let result = during();
        let pid = nix::unistd::Pid::from_raw(i32::try_from(reconciler.id()).unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let out = reconciler.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "the reconciler did not stop cleanly on SIGTERM"
        );
        result
    }

    /// `status ID`, read every 200 ms until `done` holds for the bot's
    /// status or `limit` has passed; the last answer.
    pub fn status_until(&self, id: &str, limit: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let (_, status) = self.json(&["status", id]);
            if done(&status["bot"]["status"]) || Instant::now() > deadline {
                return status;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn crash_at(&self, failpoint: &str, args: &[&str]) {
        let mut child = self
            .command(args)
            .env("MEEBOTER_TEST_FAILPOINT", failpoint)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let expected = format!("failpoint {failpoint} reached");
        let mut seen = Vec::new();
        for line in stderr.lines() {
            let line = line.unwrap();
            let reached = line.contains(&expected);
            seen.push(line);
            if reached {
                break;
            }
        }
        assert!(
            seen.iter().any(|l| l.contains(&expected)),
            "the failpoint was not reached: {seen:?}"
        );
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(!status.success());
    }
}

/// `deploy` of a Zoom bot for the meeting at `url`, then `extra` flags.
pub fn deploy_zoom<'a>(url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["deploy", "--meeting-platform", "zoom", "--meeting-url", url];
    args.extend_from_slice(extra);
    args
}

/// Asserts that the command ended with exit `code` and that its standard
/// error says each of `says`.
pub fn assert_exit(out: &Output, code: i32, says: &[&str]) {
    let text = stderr(out);
    assert_eq!(out.status.code(), Some(code), "{text}");
    for said in says {
        assert!(text.contains(said), "{said:?} not in: {text}");
    }
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub const ZOOM: &str = "https://us02web.zoom.us/j/81234567890?pwd=s3cr3tpass";
