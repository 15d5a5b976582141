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
    /// Every platform answers with our credentials (the error names those
    /// that do not). The service is ready when at least one does: bots go
    /// to the platforms that answer.
    pub platform: Check,
}

impl BotService {
    /// Whether the database and the platform answer.
    pub async fn readiness(&self) -> Readiness {
        let reach_all = futures::future::join_all(
            self.inner
                .platforms
                .iter()
                .map(|p| async move { (p.name(), p.calls.check_reachable().await) }),
        );
        let (database, reached) = tokio::join!(self.store_ref().ping(), reach_all);
        let database = Check::from_result(database);
        let any_ok = reached.iter().any(|(_, r)| r.is_ok());
        let failures: Vec<String> = reached
            .iter()
            .filter_map(|(name, r)| r.as_ref().err().map(|e| format!("{name}: {e}")))
            .collect();
        let platform = Check {
            ok: failures.is_empty(),
            error: (!failures.is_empty()).then(|| failures.join("; ")),
        };
        Readiness {
            ready: database.ok && any_ok,
            database,
            platform,
        }
    }
}
