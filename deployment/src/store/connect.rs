//! Opening the database named by `DATABASE_URL` and bringing its schema up
//! to date.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use platform_core::InstallationId;

use super::{DbPool, Store, StoreError};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// How long a statement waits for a SQLite write lock held by another
/// connection or process before failing. Writes are short; a wait this long
/// means something is stuck.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(15);

/// How long to wait for a connection from the pool (or for PostgreSQL to
/// answer a connect) before reporting the database unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections per service process. SQLite serialises writers anyway; a few
/// connections let reads go on beside a write. PostgreSQL gets more so
/// concurrent requests and the reconciler do not queue behind each other.
const SQLITE_CONNECTIONS: u32 = 4;
const POSTGRES_CONNECTIONS: u32 = 16;

impl Store {
    /// Opens the database `url` (`sqlite:<path>` or `postgres://…`) and runs
    /// the embedded migrations. A SQLite file is created on first use,
    /// readable by its owner only (it holds meeting links); its directory
    /// must exist.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let url = url.trim();
        let target = redact_url(url);
        if url.starts_with("sqlite:") {
            Self::connect_sqlite(url, target).await
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Self::connect_postgres(url, target).await
        } else {
            let scheme = url.split(':').next().unwrap_or_default();
            Err(StoreError::InvalidUrl {
                message: format!(
                    "the scheme {:?} is not supported; allowed: sqlite:<path> (e.g. sqlite:meeboter-deploy.db) or postgres://user@host:5432/database",
                    scheme.chars().take(32).collect::<String>()
                ),
            })
        }
    }

    /// The installation id of the database `url`, without creating a
    /// database that does not exist yet (`None` then): what `platforms`
    /// shows.
    pub async fn existing_installation(url: &str) -> Result<Option<InstallationId>, StoreError> {
        let url = url.trim();
        if url.starts_with("sqlite:") {
            let options =
                SqliteConnectOptions::from_str(url).map_err(|e| StoreError::InvalidUrl {
                    message: e.to_string(),
                })?;
            let in_memory = url.contains(":memory:") || url.contains("mode=memory");
            if in_memory || !options.get_filename().exists() {
                return Ok(None);
            }
        }
        let store = Self::connect(url).await?;
        let installation = store.installation().clone();
        store.close().await;
        Ok(Some(installation))
    }

    async fn connect_sqlite(url: &str, target: String) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url).map_err(|e| StoreError::InvalidUrl {
            message: e.to_string(),
        })?;
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        if !in_memory {
            create_private_file(options.get_filename(), &target)?;
        }
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Every committed intent must survive a crash of the machine, not
            // only of the process: the reconciler relies on it.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            .foreign_keys(true)
            // Erased meeting URLs and passwords are overwritten with
            // zeros in the file, not merely unlinked from the table.
            .pragma("secure_delete", "ON");
        let pool = SqlitePoolOptions::new()
            .max_connections(if in_memory { 1 } else { SQLITE_CONNECTIONS })
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| open_error(&target, e))?;
        SQLITE_MIGRATIONS
            .run(&pool)
            .await
            .map_err(|e| StoreError::Migrate {
                target: target.clone(),
                message: e.to_string(),
            })?;
        let installation = read_installation(
            sqlx::query_scalar("SELECT id FROM installation WHERE singleton = 1")
                .fetch_one(&pool)
                .await,
            &target,
        )?;
        Ok(Self {
            pool: DbPool::Sqlite(pool),
            target,
            installation,
            outbox: super::outbox::Outbox::default(),
        })
    }

    async fn connect_postgres(url: &str, target: String) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(|e| StoreError::InvalidUrl {
            message: e.to_string().replace(url, &target),
        })?;
        let pool = PgPoolOptions::new()
            .max_connections(POSTGRES_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| open_error(&target, e))?;
        // sqlx takes an advisory lock while migrating, so several service
        // processes starting together migrate once.
        POSTGRES_MIGRATIONS
            .run(&pool)
            .await
            .map_err(|e| StoreError::Migrate {
                target: target.clone(),
                message: e.to_string(),
            })?;
        let installation = read_installation(
            sqlx::query_scalar("SELECT id FROM installation WHERE singleton = 1")
                .fetch_one(&pool)
                .await,
            &target,
        )?;
        Ok(Self {
            pool: DbPool::Postgres(pool),
            target,
            installation,
            outbox: super::outbox::Outbox::default(),
        })
    }
}

/// The installation id the schema holds, checked.
fn read_installation(
    row: Result<String, sqlx::Error>,
    target: &str,
) -> Result<InstallationId, StoreError> {
    let id = row.map_err(|e| open_error(target, e))?;
    InstallationId::new(id).map_err(|e| {
        StoreError::Corrupt(format!("the installation id of {target} is unusable: {e}"))
    })
}

/// Creates the SQLite file with owner-only permissions if it does not exist,
/// so the meeting links and passwords in it are not world-readable. Fails,
/// creating nothing, when the directory does not exist.
fn create_private_file(path: &Path, target: &str) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    if path.exists() {
        return Ok(());
    }
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return Err(StoreError::Open {
            target: target.to_owned(),
            message: format!(
                "the directory {} does not exist; create it or point DATABASE_URL elsewhere",
                parent.display()
            ),
            transient: false,
        });
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(drop)
        .or_else(|e| match e.kind() {
            // Another process created it between our check and now.
            std::io::ErrorKind::AlreadyExists => Ok(()),
            _ => Err(StoreError::Open {
                target: target.to_owned(),
                message: e.to_string(),
                transient: false,
            }),
        })
}

fn open_error(target: &str, error: sqlx::Error) -> StoreError {
    let transient = matches!(
        error,
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_)
    );
    StoreError::Open {
        target: target.to_owned(),
        message: error.to_string(),
        transient,
    }
}

/// The URL with any password replaced by `***` and its query (which may
/// carry `password=…` or a TLS key path) dropped, read by the `url` crate so
/// a password holding `/`, `?`, `#` or `@` is hidden whole.
pub(crate) fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        // `sqlite:bots.db` has no authority: nothing to hide but a query.
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.set_query(None);
            parsed.set_fragment(None);
            parsed.to_string()
        }
        // Not a URL the database driver could use either; show only its
        // scheme so nothing in it can leak.
        Err(_) => match url.split_once(':') {
            Some((scheme, _))
                if scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '+') =>
            {
                format!("{scheme}:…")
            }
            _ => "the database URL".to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_appear_in_the_target() {
        assert_eq!(
            redact_url("postgres://app:hunter2@db.internal:5432/meeboter?sslmode=require"),
            "postgres://app:***@db.internal:5432/meeboter"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1:5432/test"),
            "postgres://postgres@127.0.0.1:5432/test"
        );
        assert_eq!(
            redact_url("postgres://h/db?password=hunter2"),
            "postgres://h/db"
        );
        assert_eq!(redact_url("sqlite:meeboter.db"), "sqlite:meeboter.db");
        // Passwords with URL delimiters in them, percent-encoded as they
        // must be in a URL, are hidden whole.
        for url in [
            "postgres://app:p%2Fss%3Fw%23rd@db:5432/meeboter",
            "postgres://app:a%40b@db/meeboter?sslmode=require",
            "postgresql://app:hunter2@[::1]:5432/meeboter",
        ] {
            let shown = redact_url(url);
            assert!(shown.contains("app:***@"), "{shown}");
            for secret in ["p%2Fss", "w%23rd", "a%40b", "hunter2"] {
                assert!(!shown.contains(secret), "{shown}");
            }
        }
        // A password written raw, delimiters and all, is not a URL the
        // driver accepts either; nothing of it shows.
        let shown = redact_url("postgres://app:pa/ss?word@db/meeboter");
        assert!(!shown.contains("ss?word"), "{shown}");
    }
}
