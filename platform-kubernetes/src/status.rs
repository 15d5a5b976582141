//! What a pod says about its bot, as the contract's [`BotStatus`], with the
//! pod's phase as the raw status and Kubernetes' own reason kept.
//!
//! | pod | status |
//! | --- | --- |
//! | being deleted, not ended | `stopping` |
//! | `Pending`: scheduling, `ContainerCreating`, `PodInitializing` | `starting` |
//! | `Pending`, `Unschedulable` | `starting` with the scheduler's message (the service fails it at its deploy timeout) |
//! | `Pending`, `ErrImagePull`, `ImagePullBackOff`, `CreateContainerConfigError` | `starting` within the image pull grace, then `failed` with the reason |
//! | `Pending`, `InvalidImageName`, `ErrImageNeverPull` | `failed` at once |
//! | `Running`, ready | `running`, connection URL from the pod IP |
//! | `Running`, not ready | `starting` |
//! | `Running`, bot container ended (a sidecar still runs) | as the bot container ended |
//! | `Succeeded` | `stopped` |
//! | `Failed`: `OOMKilled`, `Error` with exit code, `DeadlineExceeded`, `Evicted`, … | `failed` with the reason |
//! | `Unknown` (the node stopped reporting) | `unknown` |
//! | gone after this service deleted it | `stopped` |
//! | gone otherwise | `unknown` |

use std::time::Duration;

use k8s_openapi::api::core::v1::{ContainerState, ContainerStatus, Pod};
use k8s_openapi::jiff::Timestamp;
use platform_core::{BotStatus, StatusKind};

/// Waiting reasons that end a bot at once: retrying cannot fix them.
const PERMANENT_WAITING: &[&str] = &["InvalidImageName", "ErrImageNeverPull"];

/// Waiting reasons that end a bot once the image pull grace has passed: a
/// registry hiccup or a secret created a moment later clears them.
const TRANSIENT_WAITING: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
];

/// What the mapping needs besides the pod.
#[derive(Clone, Copy, Debug)]
pub struct StatusContext<'a> {
    /// The container that runs the bot.
    pub bot_container: &'a str,
    /// The bot's port, for its connection URL.
    pub bot_port: u16,
    /// How long pull errors count as transient after the pod's creation.
    pub image_pull_grace: Duration,
    /// Now, by this machine's clock.
    pub now: Timestamp,
}

/// The status of a bot whose pod is `pod`.
pub fn pod_status(pod: &Pod, context: &StatusContext<'_>) -> BotStatus {
    let status = pod.status.as_ref();
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("Pending");
    let bot = status
        .and_then(|s| s.container_statuses.as_deref())
        .unwrap_or_default()
        .iter()
        .find(|c| c.name == context.bot_container);
    let ended = matches!(phase, "Succeeded" | "Failed");
    if let Some(deleted_at) = pod.metadata.deletion_timestamp.as_ref()
        && !ended
    {
        return BotStatus::new(StatusKind::Stopping)
            .with_raw(format!("{phase}, terminating"))
            .with_reason(format!(
                "deletion requested; the pod is removed by {}",
                deleted_at.0
            ));
    }
    match phase {
        "Pending" => pending(pod, context),
        "Running" => running(pod, bot, context),
        "Succeeded" => BotStatus::new(StatusKind::Stopped)
            .with_raw("Succeeded")
            .with_reason(
                bot.and_then(terminated_reason)
                    .unwrap_or_else(|| "the pod's containers completed".into()),
            ),
        "Failed" => BotStatus::new(StatusKind::Failed)
            .with_raw("Failed")
            .with_reason(failed_reason(pod, bot)),
        "Unknown" => BotStatus::new(StatusKind::Unknown)
            .with_raw("Unknown")
            .with_reason(
                joined(
                    status.and_then(|s| s.reason.as_deref()),
                    status.and_then(|s| s.message.as_deref()),
                )
                .unwrap_or_else(|| "the pod's node stopped reporting its state".into()),
            ),
        other => BotStatus::unknown(format!(
            "pod phase {other:?} is not one Kubernetes documents"
        ))
        .with_raw(other),
    }
}

/// A pod that is gone: `stopped` when this service deleted it, else
/// `unknown` (evidence for nothing: the service decides).
pub fn gone_status(deleted_by_us: bool) -> BotStatus {
    if deleted_by_us {
        BotStatus::new(StatusKind::Stopped)
            .with_raw("gone")
            .with_reason("the pod was deleted by this service and is gone")
    } else {
        BotStatus::unknown(
            "no such pod: it is gone, and not because this service deleted it (deleted by hand, by a node's eviction or garbage collection)",
        )
        .with_raw("gone")
    }
}

fn pending(pod: &Pod, context: &StatusContext<'_>) -> BotStatus {
    let status = pod.status.as_ref();
    let starting = |reason: String| {
        BotStatus::new(StatusKind::Starting)
            .with_raw("Pending")
            .with_reason(reason)
    };
    // Init containers first: the bot container waits on them.
    let waiting = status
        .into_iter()
        .flat_map(|s| {
            s.init_container_statuses
                .iter()
                .flatten()
                .chain(s.container_statuses.iter().flatten())
        })
        .find_map(|c| waiting(c).map(|(reason, message)| (c, reason, message)));
    if let Some((container, reason, message)) = waiting {
        let said = joined(Some(reason), message)
            .map(|r| format!("container {:?}: {r}", container.name))
            .unwrap_or_default();
        if PERMANENT_WAITING.contains(&reason) {
            return BotStatus::new(StatusKind::Failed)
                .with_raw("Pending")
                .with_reason(said);
        }
        if TRANSIENT_WAITING.contains(&reason) {
            let age = pod
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|created| context.now.duration_since(created.0))
                .and_then(|d| Duration::try_from(d).ok())
                .unwrap_or_default();
            if age >= context.image_pull_grace {
                return BotStatus::new(StatusKind::Failed)
                    .with_raw("Pending")
                    .with_reason(format!(
                        "{said} (still failing {} s after the pod was created)",
                        age.as_secs()
                    ));
            }
            return starting(format!("{said} (may be transient; retried by the kubelet)"));
        }
        return starting(said);
    }
    let scheduled = status
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default()
        .iter()
        .find(|c| c.type_ == "PodScheduled");
    match scheduled {
        Some(c) if c.status == "False" => starting(
            joined(c.reason.as_deref(), c.message.as_deref())
                .unwrap_or_else(|| "waiting to be scheduled".into()),
        ),
        Some(c) if c.status == "True" => starting("scheduled; starting its containers".into()),
        _ => starting("waiting to be scheduled".into()),
    }
}

fn running(pod: &Pod, bot: Option<&ContainerStatus>, context: &StatusContext<'_>) -> BotStatus {
    // With restartPolicy Never the pod stays Running while any container
    // does: a sidecar can outlive the bot, which has ended all the same.
    if let Some(state) = bot.and_then(|b| b.state.as_ref())
        && let Some(terminated) = state.terminated.as_ref()
    {
        let reason = bot
            .and_then(terminated_reason)
            .unwrap_or_else(|| "the bot container ended".into());
        let kind = if terminated.exit_code == 0 {
            StatusKind::Stopped
        } else {
            StatusKind::Failed
        };
        return BotStatus::new(kind)
            .with_raw("Running, bot container terminated")
            .with_reason(format!("{reason} (other containers of the pod still run)"));
    }
    let status = pod.status.as_ref();
    let ready = status
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default()
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    if !ready {
        return BotStatus::new(StatusKind::Starting)
            .with_raw("Running")
            .with_reason("containers started, not ready yet");
    }
    let mut running = BotStatus::new(StatusKind::Running).with_raw("Running");
    if let Some(ip) = status
        .and_then(|s| s.pod_ip.as_deref())
        .filter(|ip| !ip.is_empty())
    {
        let host = if ip.contains(':') {
            format!("[{ip}]")
        } else {
            ip.to_owned()
        };
        running = running.with_connection_url(format!("http://{host}:{}", context.bot_port));
    }
    running
}

fn failed_reason(pod: &Pod, bot: Option<&ContainerStatus>) -> String {
    let status = pod.status.as_ref();
    // The pod's own reason (Evicted, DeadlineExceeded, Shutdown) says more
    // than the container's "Error 137" that follows from it.
    let pod_reason = joined(
        status.and_then(|s| s.reason.as_deref()),
        status.and_then(|s| s.message.as_deref()),
    );
    let container = bot.and_then(terminated_reason);
    match (pod_reason, container) {
        (Some(pod), Some(container)) => format!("{pod}; {container}"),
        (Some(pod), None) => pod,
        (None, Some(container)) => container,
        (None, None) => "the pod failed without a reason".into(),
    }
}

/// `OOMKilled (exit code 137)`, `Error (exit code 1): message`.
fn terminated_reason(container: &ContainerStatus) -> Option<String> {
    let state = container
        .state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .or_else(|| {
            container
                .last_state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
        })?;
    let reason = state.reason.as_deref().unwrap_or("Terminated");
    let mut text = format!(
        "container {:?} {reason} (exit code {})",
        container.name, state.exit_code
    );
    if let Some(signal) = state.signal {
        text.push_str(&format!(", signal {signal}"));
    }
    if let Some(message) = state.message.as_deref().filter(|m| !m.trim().is_empty()) {
        text.push_str(": ");
        text.push_str(message.trim());
    }
    Some(text)
}

fn waiting(container: &ContainerStatus) -> Option<(&str, Option<&str>)> {
    let ContainerState { waiting, .. } = container.state.as_ref()?;
    let waiting = waiting.as_ref()?;
    let reason = waiting.reason.as_deref()?;
    Some((reason, waiting.message.as_deref()))
}

fn joined(reason: Option<&str>, message: Option<&str>) -> Option<String> {
    let message = message.map(str::trim).filter(|m| !m.is_empty());
    match (reason.filter(|r| !r.is_empty()), message) {
        (Some(r), Some(m)) => Some(format!("{r}: {m}")),
        (Some(r), None) => Some(r.to_owned()),
        (None, Some(m)) => Some(m.to_owned()),
        (None, None) => None,
    }
}
