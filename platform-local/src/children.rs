//! The bot processes this service spawned and is the parent of: each one is
//! watched by a task that collects its exit status as soon as it ends, so
//! no child is ever left a zombie and its exit status is known.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use tokio::process::Child;
use tokio::sync::watch;

use crate::exit_status::RecordedExit;
use crate::identifier::ProcessIdentity;

/// What a watched child is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChildState {
    Running,
    Exited(RecordedExit),
    /// Waiting for it failed: it is gone, its status unknown.
    Lost,
}

struct Watched {
    state: watch::Receiver<ChildState>,
    stop_requested: Arc<AtomicBool>,
}

/// Every child that a watcher of any platform instance in this process
/// waits for. Only its watcher may collect it: another `waitpid` on it would
/// take its exit status from the watcher and, once the pid is reused, could
/// collect a process that is not the bot at all.
static WATCHED_IN_THIS_PROCESS: LazyLock<Mutex<HashSet<ProcessIdentity>>> =
    LazyLock::new(Mutex::default);

fn watched_in_this_process() -> std::sync::MutexGuard<'static, HashSet<ProcessIdentity>> {
    WATCHED_IN_THIS_PROCESS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Whether a watcher of some platform instance in this process waits for
/// `process` (so nothing else may collect its exit status).
pub(crate) fn is_watched_in_this_process(process: ProcessIdentity) -> bool {
    watched_in_this_process().contains(&process)
}

/// The children of this platform instance.
#[derive(Default)]
pub(crate) struct Children {
    table: Mutex<HashMap<ProcessIdentity, Watched>>,
}

impl Children {
    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<ProcessIdentity, Watched>> {
        self.table
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Watches `child` (whose identity is `process`) until it ends. When it
    /// does, `stop_requested_elsewhere` tells whether a stop was asked for
    /// through the state directory (by another service instance), and
    /// `on_exit` is called with the outcome (to record it on disk).
    pub(crate) fn watch<Persist, Fut>(
        &self,
        mut child: Child,
        process: ProcessIdentity,
        stop_requested_elsewhere: impl FnOnce() -> bool + Send + 'static,
        on_exit: Persist,
    ) where
        Persist: FnOnce(RecordedExit) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let (sender, receiver) = watch::channel(ChildState::Running);
        let stop_requested = Arc::new(AtomicBool::new(false));
        self.table().insert(
            process,
            Watched {
                state: receiver,
                stop_requested: Arc::clone(&stop_requested),
            },
        );
        watched_in_this_process().insert(process);
        tokio::spawn(async move {
            let waited = child.wait().await;
            watched_in_this_process().remove(&process);
            let outcome = match waited {
                Ok(status) => {
                    let stopped =
                        stop_requested.load(Ordering::SeqCst) || stop_requested_elsewhere();
                    ChildState::Exited(RecordedExit::from_status(status, stopped))
                }
                Err(error) => {
                    tracing::warn!(pid = process.pid, %error, "lost track of a bot process's exit status");
                    ChildState::Lost
                }
            };
            sender.send_replace(outcome);
            if let ChildState::Exited(exit) = outcome {
                on_exit(exit).await;
            }
        });
    }

    /// The child's state, if this instance watches it.
    pub(crate) fn state(&self, process: ProcessIdentity) -> Option<ChildState> {
        self.table().get(&process).map(|w| *w.state.borrow())
    }

    /// Waits up to `timeout` for a watched child to end. `None` when it is
    /// not watched here; `Some(Running)` when it did not end in time.
    pub(crate) async fn wait_for_end(
        &self,
        process: ProcessIdentity,
        timeout: Duration,
    ) -> Option<ChildState> {
        let mut receiver = self.table().get(&process)?.state.clone();
        let ended = tokio::time::timeout(
            timeout,
            receiver.wait_for(|state| *state != ChildState::Running),
        )
        .await;
        Some(match ended {
            Ok(Ok(state)) => *state,
            // The watcher never drops its sender before sending an end.
            Ok(Err(_)) => ChildState::Lost,
            Err(_) => ChildState::Running,
        })
    }

    /// Notes that a stop was asked for, before signalling the child.
    pub(crate) fn mark_stop_requested(&self, process: ProcessIdentity) {
        if let Some(watched) = self.table().get(&process) {
            watched.stop_requested.store(true, Ordering::SeqCst);
        }
    }

    /// Forgets a child that has been cleaned up.
    pub(crate) fn forget(&self, process: ProcessIdentity) {
        self.table().remove(&process);
    }
}
