//! Whether the service can do its work: the database and the platform
//! answer.

use serde::Serialize;

use super::BotService;

/// One readiness check.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Check {
    /// Whether it passed.
    pub ok: bool,
    /// What failed.
    pub error: Option<String>,
}

impl Check {
    fn from_result<E: std::fmt::Display>(result: Result<(), E>) -> Self {
        match result {
            Ok(()) => Self {
                ok: true,
                error: None,
            },
            Err(e) => Self {
                ok: false,
                error: Some(e.to_string()),
            },
        }
    }
}

/// Whether the service can do its work.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// Both checks passed.
    pub ready: bool,
    /// The database answers.
    pub database: Check,
    /// The platform answers with our credentials.
    pub platform: Check,
}

impl BotService {
    /// Whether the database and the platform answer.
    pub async fn readiness(&self) -> Readiness {
        let (database, platform) =
            tokio::join!(self.store_ref().ping(), self.calls().check_reachable());
        let database = Check::from_result(database);
        let platform = Check::from_result(platform);
        Readiness {
            ready: database.ok && platform.ok,
            database,
            platform,
        }
    }
}
