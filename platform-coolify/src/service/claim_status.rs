//! What a claim's slot and its Coolify application say about the bot: the
//! slot store's view of the claim, the application's state and, when the
//! application is not up, its deployment.

use platform_core::{BotStatus, Result, Slot, SlotState, StatusKind};

use super::CoolifyPlatform;
use crate::claim::SlotClaim;
use crate::ledger::DeploymentOutcome;
use crate::retrying::idempotent;
use crate::status::{AppState, DeploymentState};
use crate::wire::{Application, Deployment};

/// What the slot store says about a claim.
pub(super) enum ClaimView {
    /// The identifier is not a claim.
    NotAClaim,
    /// The store has no such slot.
    NoSlot,
    /// The bot still holds the slot.
    Held,
    /// The slot is back in the pool, or serves another bot now.
    Ended(&'static str),
    /// The slot is marked failed.
    SlotFailed(String),
}

impl ClaimView {
    pub(super) fn of(claim: &SlotClaim, slot: Option<&Slot>) -> Self {
        match slot.map(|s| &s.state) {
            None => Self::NoSlot,
            Some(SlotState::Claimed { bot_id }) if *bot_id == claim.bot_id => Self::Held,
            Some(SlotState::Claimed { .. }) => Self::Ended(
                "this bot's claim of the slot has ended; the slot now serves another bot",
            ),
            Some(SlotState::Idle) => {
                Self::Ended("this bot's claim of the slot has ended; the slot is back in the pool")
            }
            Some(SlotState::Failed { reason }) => Self::SlotFailed(reason.clone()),
        }
    }

    /// The status of a claim that is not held.
    pub(super) fn settled_status(&self, claim: Option<&SlotClaim>) -> BotStatus {
        match self {
            Self::NotAClaim => BotStatus::unknown(
                "not a Coolify slot claim; expected <application uuid>/bot-<bot id>",
            ),
            Self::NoSlot => BotStatus::unknown(format!(
                "the coolify pool has no slot {}",
                claim.map_or("", |c| c.application_uuid.as_str())
            )),
            Self::Ended(reason) => BotStatus::new(StatusKind::Stopped).with_reason(*reason),
            Self::SlotFailed(reason) => BotStatus::new(StatusKind::Failed)
                .with_reason(format!("the slot was marked failed: {reason}")),
            Self::Held => BotStatus::unknown("the claim is held; its application was not read"),
        }
    }
}

/// What is known about a claim's deployment.
enum DeploymentView {
    /// Queued or in progress.
    Pending,
    /// Ended.
    Ended(DeploymentOutcome),
    /// The slot was never deployed.
    None,
    /// A status this version does not know.
    Unrecognised(String),
}

impl CoolifyPlatform {
    /// The status of a claim whose slot application has disappeared.
    pub(super) async fn application_gone(&self, claim: &SlotClaim) -> BotStatus {
        let reason = "its Coolify application no longer exists";
        self.fail_slot(claim, reason).await;
        BotStatus::new(StatusKind::Failed).with_reason(format!("the slot failed: {reason}"))
    }

    /// The status of a claim the bot still holds, from its application and,
    /// when the application is not up, its deployment. `running` lists the
    /// deployments queued or in progress, when the caller read them.
    pub(super) async fn held_status(
        &self,
        claim: &SlotClaim,
        app: &Application,
        running: Option<&[Deployment]>,
    ) -> Result<BotStatus> {
        let raw = app.status.clone().unwrap_or_default();
        let state = AppState::parse(&raw);
        let record = self.ledger.get(claim);
        let status = |kind: StatusKind| {
            let status = BotStatus::new(kind).with_raw(raw.clone());
            match app.connection_url() {
                Some(url) => status.with_connection_url(url),
                None => status,
            }
        };
        if record.as_ref().is_some_and(|r| r.stop_requested) {
            return Ok(if state.is_up() {
                status(StatusKind::Stopping).with_reason("stop requested")
            } else {
                status(StatusKind::Stopped).with_reason("stopped on request")
            });
        }
        if state.is_up() {
            return Ok(status(state.settled_kind().0));
        }
        // Not up: after a start the container is down until its deployment
        // runs, so the deployment decides.
        let known_uuid = record.as_ref().and_then(|r| r.deployment_uuid.clone());
        let view = match record.and_then(|r| r.outcome) {
            Some(outcome) => DeploymentView::Ended(outcome),
            None if running.is_some_and(|list| {
                list.iter()
                    .any(|d| is_claim_deployment(d, known_uuid.as_deref(), app))
            }) =>
            {
                DeploymentView::Pending
            }
            None => self.read_deployment(claim, known_uuid.as_deref()).await?,
        };
        Ok(match view {
            DeploymentView::Pending => status(StatusKind::Starting)
                .with_reason("its Coolify deployment is queued or in progress"),
            DeploymentView::None => status(StatusKind::Unknown)
                .with_reason("the slot is claimed but has not been deployed yet"),
            DeploymentView::Unrecognised(deployment_status) => status(StatusKind::Unknown)
                .with_reason(format!(
                    "Coolify reports deployment status {deployment_status:?}, which this version does not know"
                )),
            DeploymentView::Ended(DeploymentOutcome::Finished) => {
                let (kind, reason) = state.settled_kind();
                let status = status(kind);
                match reason {
                    Some(reason) => status.with_reason(reason),
                    None => status,
                }
            }
            DeploymentView::Ended(DeploymentOutcome::Failed(reason)) => {
                self.fail_slot(claim, &reason).await;
                status(StatusKind::Failed).with_reason(reason)
            }
            DeploymentView::Ended(
                DeploymentOutcome::Cancelled(reason) | DeploymentOutcome::NeverQueued(reason),
            ) => status(StatusKind::Failed).with_reason(reason),
        })
    }

    /// Reads the claim's deployment: the one its start queued when known,
    /// otherwise the application's newest. An ended deployment is
    /// remembered, so it is read once.
    async fn read_deployment(
        &self,
        claim: &SlotClaim,
        deployment_uuid: Option<&str>,
    ) -> Result<DeploymentView> {
        let retry = &self.config.retry;
        let app_uuid = claim.application_uuid.as_str();
        let deployment = match deployment_uuid {
            Some(uuid) => {
                let resource = format!("deployment {uuid}");
                match idempotent(retry, &resource, || self.client.get_deployment(uuid)).await {
                    Ok(deployment) => deployment,
                    // Coolify answers a start with a deployment UUID even
                    // when its queue is full and nothing was queued.
                    Err(e) if e.is_not_found() => {
                        let outcome = DeploymentOutcome::NeverQueued(format!(
                            "Coolify answered the start with deployment {uuid} but never queued it (the server's deployment queue was probably full)"
                        ));
                        self.ledger.record_outcome(claim, outcome.clone());
                        return Ok(DeploymentView::Ended(outcome));
                    }
                    Err(e) => return Err(e),
                }
            }
            None => {
                let resource = format!("deployments of application {app_uuid}");
                match idempotent(retry, &resource, || self.client.latest_deployment(app_uuid))
                    .await?
                {
                    Some(deployment) => deployment,
                    None => return Ok(DeploymentView::None),
                }
            }
        };
        let uuid = deployment
            .deployment_uuid
            .clone()
            .or_else(|| deployment_uuid.map(str::to_owned))
            .unwrap_or_default();
        let outcome = match deployment_state(&deployment) {
            DeploymentState::Pending => return Ok(DeploymentView::Pending),
            DeploymentState::Other => {
                return Ok(DeploymentView::Unrecognised(
                    deployment.status.unwrap_or_default(),
                ));
            }
            DeploymentState::Finished => DeploymentOutcome::Finished,
            DeploymentState::Failed => DeploymentOutcome::Failed(format!(
                "Coolify deployment {uuid} of application {app_uuid} failed; its log in Coolify says why"
            )),
            DeploymentState::Cancelled => DeploymentOutcome::Cancelled(format!(
                "Coolify deployment {uuid} of application {app_uuid} was cancelled"
            )),
        };
        self.ledger.record_outcome(claim, outcome.clone());
        Ok(DeploymentView::Ended(outcome))
    }
}

pub(super) fn deployment_state(deployment: &Deployment) -> DeploymentState {
    DeploymentState::parse(deployment.status.as_deref().unwrap_or_default())
}

/// Whether a running deployment belongs to the claim: the one its start
/// queued, or one of its application (slot names are unique).
fn is_claim_deployment(
    deployment: &Deployment,
    known_uuid: Option<&str>,
    app: &Application,
) -> bool {
    let same_uuid = known_uuid.is_some() && deployment.deployment_uuid.as_deref() == known_uuid;
    let same_app = app.name.is_some() && deployment.application_name == app.name;
    (same_uuid || same_app) && deployment_state(deployment) == DeploymentState::Pending
}
