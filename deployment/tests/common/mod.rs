//! Shared test helpers: real SQLite files and real PostgreSQL databases,
//! each test with its own, and services over the fake platform.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the helpers"
)]

use std::sync::Arc;
use std::time::Duration;

use deployment::{BotDetails, BotService, CreateBot, ServiceOptions, Store};
use platform_core::testkit::FakePlatform;
use platform_core::{BotDeploymentInput, BotId, PlatformService, SecretString};
use sqlx::Connection;

/// Where the test PostgreSQL server is; `.ci/run` sets it.
pub fn postgres_admin_url() -> String {
    std::env::var("MEEBOTER_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A database of its own on the test PostgreSQL server, dropped (even when
/// the test panics) when this value is dropped.
pub struct PgDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl PgDatabase {
    /// Creates a fresh database. Fails the test — never skips it — when the
    /// server cannot be reached.
    pub async fn create() -> Self {
        let admin_url = postgres_admin_url();
        let name = format!("meeboter_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL for tests is not reachable at {admin_url} ({e}); start it (see .ci/run) or set MEEBOTER_TEST_POSTGRES_URL"
                )
            });
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await
            .expect("create the test database");
        let _ = admin.close().await;
        let base = admin_url
            .split('?')
            .next()
            .and_then(|u| u.rsplit_once('/'))
            .map(|(base, _)| base.to_owned())
            .expect("the admin URL names a database");
        let url = format!("{base}/{name}");
        Self {
            admin_url,
            name,
            url,
        }
    }

    /// The database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop may run inside a runtime; use a thread with its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for dropping the test database");
            runtime.block_on(async move {
                if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await {
                    let _ =
                        sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                            .execute(&mut admin)
                            .await;
                    let _ = admin.close().await;
                }
            });
        });
        let _ = dropped.join();
    }
}

/// A test database: a SQLite file in a temporary directory, or a fresh
/// PostgreSQL database. Keep it alive as long as the store is used.
pub enum TestDb {
    /// SQLite.
    Sqlite(tempfile::TempDir),
    /// PostgreSQL.
    Postgres(PgDatabase),
}

impl TestDb {
    /// A new SQLite file.
    pub fn sqlite() -> Self {
        Self::Sqlite(tempfile::tempdir().expect("a temporary directory"))
    }

    /// A new PostgreSQL database.
    pub async fn postgres() -> Self {
        Self::Postgres(PgDatabase::create().await)
    }

    /// Its `DATABASE_URL`.
    pub fn url(&self) -> String {
        match self {
            Self::Sqlite(dir) => format!("sqlite:{}", dir.path().join("bots.db").display()),
            Self::Postgres(db) => db.url().to_owned(),
        }
    }

    /// Opens (and migrates) the store.
    pub async fn store(&self) -> Store {
        Store::connect(&self.url())
            .await
            .expect("open the test store")
    }
}

/// Options for tests: short timeouts.
pub fn test_options() -> ServiceOptions {
    ServiceOptions {
        deploy_timeout: Duration::from_secs(300),
        platform_call_timeout: Duration::from_secs(5),
        ..ServiceOptions::default()
    }
}

/// A service over `store` and a fake platform.
pub fn service_on(store: Store, platform: Arc<FakePlatform>) -> BotService {
    BotService::new(store, platform as Arc<dyn PlatformService>, test_options())
}

/// A service over `store` and a fake platform with `options`, whose freed
/// capacity waits for the next pass (the tests drive every round).
pub fn driven_service(
    store: Store,
    platform: &Arc<FakePlatform>,
    options: ServiceOptions,
) -> BotService {
    let service = BotService::new(
        store,
        Arc::clone(platform) as Arc<dyn PlatformService>,
        options,
    );
    service.set_background_drain(false);
    service
}

/// An instant in ms as RFC 3339, as a client sends `join_at`.
pub fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// An instant the service showed, in ms.
pub fn ms(at: time::OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap()
}

/// A valid Zoom request with a passcode and a password.
pub fn zoom_input(n: u64) -> BotDeploymentInput {
    BotDeploymentInput {
        meeting_platform: "zoom".into(),
        meeting_url: format!("https://us02web.zoom.us/j/8{n:010}?pwd=s3cr3tpass"),
        meeting_password: Some(SecretString::from("hunter2-pw")),
        display_name: Some(format!("Notes {n}")),
        ..Default::default()
    }
}

/// A create request for `input`, deployed at once or not.
pub fn create(input: BotDeploymentInput, deploy: bool) -> CreateBot {
    CreateBot {
        input,
        idempotency: None,
        deploy,
        priority: 0,
        webhook_url: None,
        join_at: None,
    }
}

/// The bot's history, one `from->to: reason` line per transition.
pub async fn history_text(service: &BotService, id: BotId) -> String {
    service
        .get(id)
        .await
        .unwrap()
        .history
        .iter()
        .map(|h| format!("{:?}->{}: {}", h.from, h.to, h.reason))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Waits (at most 10 s) for the bot to end, with nothing left to clean up.
pub async fn until_ended(service: &BotService, id: BotId) -> BotDetails {
    for _ in 0..200 {
        let details = service.get(id).await.unwrap();
        if details.bot.status.is_terminal() && !details.bot.cleanup_pending {
            return details;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "bot {id} did not end: {:?}",
        service.get(id).await.unwrap().bot
    );
}

/// Runs `check` on SQLite and on PostgreSQL, one test each.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let db = $crate::common::TestDb::sqlite();
                    super::$name(db.store().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let db = $crate::common::TestDb::postgres().await;
                    let store = db.store().await;
                    super::$name(store.clone()).await;
                    store.close().await;
                }
            )*
        }
    };
}

pub mod receiver;
