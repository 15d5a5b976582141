//! `meeboter-deploy doctor`: checks the service's configuration, the
//! database (and its installation id), the chosen platform's configuration,
//! and what a deploy will need on the platform (`check_setup`: task
//! definitions, pools, images, templates), naming every problem.

use std::process::ExitCode;
use std::sync::Arc;

use platform_core::{
    CheckOutcome, InMemorySlotStore, InstallationId, ProcessEnv, SetupCheck, SlotStore,
};
use serde::Serialize;

use super::exit;
use super::output::{self, Printer};
use crate::error::ServiceError;
use crate::platforms;
use crate::settings::ServiceSettings;
use crate::store::Store;

/// How one check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Status {
    /// In order.
    Ok,
    /// Works, but worth knowing.
    Warning,
    /// Could not be checked from here.
    NotChecked,
    /// A deploy will fail because of it.
    Problem,
}

impl Status {
    /// The mark `doctor` prints before the check.
    pub(super) fn mark(self) -> &'static str {
        match self {
            Self::Ok => "ok  ",
            Self::Warning => "warn",
            Self::NotChecked => "skip",
            Self::Problem => "FAIL",
        }
    }
}

/// One line of `doctor`'s report.
#[derive(Serialize)]
pub(super) struct DoctorCheck {
    pub(super) check: String,
    /// `false` only for a problem.
    pub(super) ok: bool,
    pub(super) status: Status,
    /// The problems, warnings or reasons it was not checked.
    pub(super) problems: Vec<String>,
}

impl DoctorCheck {
    fn new(check: impl Into<String>, status: Status, problems: Vec<String>) -> Self {
        Self {
            check: check.into(),
            ok: status != Status::Problem,
            status,
            problems,
        }
    }

    fn passed(check: impl Into<String>) -> Self {
        Self::new(check, Status::Ok, Vec::new())
    }

    fn failed(check: impl Into<String>, problems: Vec<String>) -> Self {
        Self::new(check, Status::Problem, problems)
    }
}

impl From<SetupCheck> for DoctorCheck {
    fn from(check: SetupCheck) -> Self {
        match check.outcome {
            CheckOutcome::Ok => Self::passed(check.name),
            CheckOutcome::Warning(why) => Self::new(check.name, Status::Warning, vec![why]),
            CheckOutcome::NotChecked(why) => Self::new(check.name, Status::NotChecked, vec![why]),
            CheckOutcome::Problem(why) => Self::failed(check.name, vec![why]),
        }
    }
}

#[derive(Serialize)]
pub(super) struct DoctorReport {
    pub(super) ok: bool,
    pub(super) platform: Option<&'static str>,
    /// The database's installation id, when the database could be opened.
    pub(super) installation_id: Option<InstallationId>,
    pub(super) checks: Vec<DoctorCheck>,
}

/// Runs every check and prints the report; the exit code is the worst
/// problem's (a configuration problem wins).
pub(super) async fn run(
    printer: &Printer,
    settings: Result<ServiceSettings, platform_core::Error>,
) -> ExitCode {
    let mut checks = Vec::new();
    let mut exit_code = exit::OK;
    let mut fail = |code: u8| {
        if exit_code == exit::OK || code == exit::CONFIGURATION {
            exit_code = code;
        }
    };
    let config_problems = |e: &platform_core::Error| match e {
        platform_core::Error::Config { problems, .. } => {
            problems.iter().map(ToString::to_string).collect()
        }
        other => vec![other.to_string()],
    };
    checks.push(match &settings {
        Ok(_) => DoctorCheck::passed("service configuration"),
        Err(e) => {
            fail(exit::CONFIGURATION);
            DoctorCheck::failed("service configuration", config_problems(e))
        }
    });
    let store = match &settings {
        Ok(settings) => match Store::connect(settings.database_url.expose()).await {
            Ok(store) => {
                checks.push(DoctorCheck::passed(format!(
                    "database {} (installation {})",
                    store.target(),
                    store.installation()
                )));
                Some(store)
            }
            Err(e) => {
                let error = ServiceError::Storage(e);
                fail(exit::for_error(&error));
                checks.push(DoctorCheck::failed("database", vec![error.to_string()]));
                None
            }
        },
        Err(_) => None,
    };
    // The platform's configuration is checked even when the database is
    // not usable, over an in-memory slot store and a throwaway
    // installation id (nothing is deployed).
    let slots: Arc<dyn SlotStore> = match &store {
        Some(store) => Arc::new(store.clone()),
        None => Arc::new(InMemorySlotStore::new()),
    };
    let installation = store.as_ref().map(|s| s.installation().clone());
    let for_check = installation.clone().unwrap_or_else(InstallationId::random);
    let mut chosen = None;
    match platforms::build_platform(Arc::new(ProcessEnv), slots, for_check).await {
        Ok((selection, platform)) => {
            chosen = Some(selection.descriptor.name);
            if let Ok(settings) = &settings {
                checks.push(match settings.bot_api_url_for(selection.descriptor.name) {
                    Ok(url) => DoctorCheck::passed(format!(
                        "bot protocol: bots reach this service at {url}"
                    )),
                    Err(problem) => {
                        fail(exit::CONFIGURATION);
                        DoctorCheck::failed("bot protocol (BOT_API_URL)", vec![problem.to_string()])
                    }
                });
            }
            checks.push(DoctorCheck::new(
                "platform configuration",
                if selection.warnings.is_empty() {
                    Status::Ok
                } else {
                    Status::Warning
                },
                selection.warnings.clone(),
            ));
            let timeout = settings
                .as_ref()
                .map(|s| s.platform_call_timeout)
                .unwrap_or(std::time::Duration::from_secs(60));
            let late = |what: &str| {
                format!(
                    "the platform did not finish {what} within PLATFORM_CALL_TIMEOUT ({} s)",
                    timeout.as_secs()
                )
            };
            let reachable = tokio::time::timeout(timeout, platform.check_reachable())
                .await
                .unwrap_or_else(|_| {
                    Err(platform_core::Error::Timeout {
                        platform: selection.descriptor.name,
                        resource: "the platform".into(),
                        after: timeout,
                    })
                });
            match reachable {
                Ok(()) => {
                    checks.push(DoctorCheck::passed("platform reachable"));
                    let setup = tokio::time::timeout(timeout, platform.check_setup())
                        .await
                        .unwrap_or_else(|_| {
                            vec![SetupCheck::problem("platform setup", late("its checks"))]
                        });
                    if setup.iter().any(SetupCheck::is_problem) {
                        fail(exit::CONFIGURATION);
                    }
                    checks.extend(setup.into_iter().map(DoctorCheck::from));
                }
                Err(error) => {
                    fail(exit::UNAVAILABLE);
                    checks.push(DoctorCheck::failed(
                        "platform reachable",
                        vec![error.to_string()],
                    ));
                }
            }
        }
        Err(error) => {
            fail(exit::for_error(&error));
            let problems = match &error {
                ServiceError::Config(e) => config_problems(e),
                other => vec![other.to_string()],
            };
            checks.push(DoctorCheck::failed("platform configuration", problems));
        }
    }
    if let Some(store) = store {
        store.close().await;
    }
    let report = DoctorReport {
        ok: exit_code == exit::OK,
        platform: chosen,
        installation_id: installation,
        checks,
    };
    printer.print(&report, output::doctor);
    ExitCode::from(exit_code)
}
