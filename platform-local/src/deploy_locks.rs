//! Process-wide locks per bot deploy.
//!
//! A state record names its writer by *process*, so two platform instances
//! in one process on the same state directory (an embedding, a test) must
//! not start the same bot at once either: the locks live in a process-wide
//! table keyed by state directory and bot deploy, not in the instance.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, Weak};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use crate::identifier::InstanceKey;

/// What a lock protects: one bot deploy (of one installation), or the whole
/// state directory (the running-bot count checked against
/// `LOCAL_MAX_BOTS`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum LockScope {
    Deploy(PathBuf, InstanceKey),
    Capacity(PathBuf),
}

impl LockScope {
    pub(crate) fn deploy(state_dir: &Path, key: &InstanceKey) -> Self {
        Self::Deploy(state_dir.to_owned(), key.clone())
    }

    pub(crate) fn capacity(state_dir: &Path) -> Self {
        Self::Capacity(state_dir.to_owned())
    }
}

static LOCKS: LazyLock<Mutex<HashMap<LockScope, Weak<AsyncMutex<()>>>>> =
    LazyLock::new(Mutex::default);

/// Waits for the lock of `scope` and holds it until the guard is dropped.
pub(crate) async fn lock(scope: LockScope) -> OwnedMutexGuard<()> {
    let mutex = {
        let mut table = LOCKS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Forget locks nobody holds or waits for, so the table stays small.
        table.retain(|_, lock| lock.strong_count() > 0);
        match table.get(&scope).and_then(Weak::upgrade) {
            Some(mutex) => mutex,
            None => {
                let mutex = Arc::new(AsyncMutex::new(()));
                table.insert(scope, Arc::downgrade(&mutex));
                mutex
            }
        }
    };
    mutex.lock_owned().await
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use platform_core::{BotId, InstallationId};

    use super::*;

    #[tokio::test]
    async fn one_holder_per_scope_and_independent_scopes() {
        let dir = Path::new("/state");
        let installation = InstallationId::random();
        let key = InstanceKey::new(&installation, BotId(1), 1);
        let held = lock(LockScope::deploy(dir, &key)).await;
        // Another bot, the same bot elsewhere, or another installation's
        // bot 1 is not blocked.
        let other = InstanceKey::new(&installation, BotId(2), 1);
        let _other = lock(LockScope::deploy(dir, &other)).await;
        let _elsewhere = lock(LockScope::deploy(Path::new("/other"), &key)).await;
        let theirs = InstanceKey::new(&InstallationId::random(), BotId(1), 1);
        let _theirs = lock(LockScope::deploy(dir, &theirs)).await;
        let blocked = tokio::time::timeout(
            Duration::from_millis(50),
            lock(LockScope::deploy(dir, &key)),
        )
        .await;
        assert!(blocked.is_err(), "the same deploy must wait");
        drop(held);
        let again =
            tokio::time::timeout(Duration::from_secs(5), lock(LockScope::deploy(dir, &key))).await;
        assert!(again.is_ok());
    }
}
