//! What an ECS task's state means for its bot: `lastStatus`, `desiredStatus`,
//! `stopCode` and container exit codes mapped to a [`BotStatus`].

use aws_sdk_ecs::types::{Container, Failure, Task, TaskStopCode};
use platform_core::{BotStatus, StatusKind};

use platform_core::reason::{MAX_MESSAGE_CHARS, one_line};

/// The attachment type of a task's awsvpc network interface.
const ENI_ATTACHMENT: &str = "ElasticNetworkInterface";
/// The ENI attachment detail holding the task's private address.
const PRIVATE_IPV4: &str = "privateIPv4Address";
/// ENI attachment states in which the address no longer belongs to the task.
const ENI_GONE: &[&str] = &["DETACHING", "DETACHED", "DELETED", "FAILED"];

/// The status of a task ECS described.
///
/// `bot_containers` are the configured bot container names: when the task
/// has one of them, only its exit code decides between `stopped` and
/// `failed` (a sidecar killed at shutdown does not make the bot a failure).
pub(crate) fn task_status(task: &Task, bot_containers: &[&str], bot_port: u16) -> BotStatus {
    let last = task.last_status().unwrap_or_default();
    let stop_requested = task.desired_status() == Some("STOPPED");
    let kind = match last {
        "PROVISIONING" | "PENDING" | "ACTIVATING" | "RUNNING" if stop_requested => {
            StatusKind::Stopping
        }
        "PROVISIONING" | "PENDING" | "ACTIVATING" => StatusKind::Starting,
        "RUNNING" => StatusKind::Running,
        "DEACTIVATING" | "STOPPING" | "DEPROVISIONING" => StatusKind::Stopping,
        "STOPPED" => stopped_kind(task, bot_containers),
        _ => StatusKind::Unknown,
    };
    let mut status = BotStatus::new(kind);
    if !last.is_empty() {
        status = status.with_raw(last);
    }
    if let Some(reason) = reason(task, kind, bot_containers) {
        status = status.with_reason(reason);
    }
    if !kind.is_terminal()
        && let Some(url) = connection_url(task, bot_port)
    {
        status = status.with_connection_url(url);
    }
    status
}

/// The status of an identifier ECS reported in `failures[]`: `MISSING` (not
/// known, or not yet: ECS is eventually consistent right after RunTask) or
/// another reason; either way unknown, never an error.
pub(crate) fn failure_status(failure: &Failure) -> BotStatus {
    let reason = failure.reason().unwrap_or("MISSING");
    let status = BotStatus::unknown(one_line(
        &match failure.detail() {
            Some(detail) if !detail.is_empty() => format!("{reason}: {detail}"),
            _ => reason.to_owned(),
        },
        MAX_MESSAGE_CHARS,
    ));
    status.with_raw(reason)
}

/// `http://<private IPv4>:<port>` once the task's network interface has an
/// address, and while it still belongs to the task.
pub(crate) fn connection_url(task: &Task, bot_port: u16) -> Option<String> {
    task.attachments()
        .iter()
        .filter(|a| a.r#type() == Some(ENI_ATTACHMENT))
        .filter(|a| !a.status().is_some_and(|s| ENI_GONE.contains(&s)))
        .flat_map(|a| a.details())
        .find(|d| d.name() == Some(PRIVATE_IPV4))
        .and_then(|d| d.value())
        .filter(|ip| !ip.is_empty())
        .map(|ip| format!("http://{ip}:{bot_port}"))
}

/// The containers whose exit decides whether a stopped task failed: the bot
/// container if the task has one of the configured names, otherwise all.
fn deciding_containers<'t>(task: &'t Task, bot_containers: &[&str]) -> Vec<&'t Container> {
    let bots: Vec<&Container> = task
        .containers()
        .iter()
        .filter(|c| c.name().is_some_and(|n| bot_containers.contains(&n)))
        .collect();
    if bots.is_empty() {
        task.containers().iter().collect()
    } else {
        bots
    }
}

fn stopped_kind(task: &Task, bot_containers: &[&str]) -> StatusKind {
    match task.stop_code() {
        // It never ran.
        Some(TaskStopCode::TaskFailedToStart) => StatusKind::Failed,
        // Taken away by AWS, not ended by the bot or by us.
        Some(
            TaskStopCode::SpotInterruption
            | TaskStopCode::TerminationNotice
            | TaskStopCode::InfrastructureHealth,
        ) => StatusKind::Failed,
        // Stopped on request (ours or an operator's): a container killed on
        // the way down is not a failure.
        Some(TaskStopCode::UserInitiated) => StatusKind::Stopped,
        // The bot exited on its own (or something else): its exit code
        // tells a finished meeting from a crash. A container that never got
        // an exit code but has a reason (image pull, OOM) failed.
        _ => {
            let failed =
                deciding_containers(task, bot_containers)
                    .iter()
                    .any(|c| match c.exit_code() {
                        Some(code) => code != 0,
                        None => c.reason().is_some_and(|r| !r.is_empty()),
                    });
            if failed {
                StatusKind::Failed
            } else {
                StatusKind::Stopped
            }
        }
    }
}

/// `stopCode: stoppedReason; <container> exited with code N: reason`, from
/// whatever ECS said, on one line of at most a few hundred characters.
fn reason(task: &Task, kind: StatusKind, bot_containers: &[&str]) -> Option<String> {
    let mut parts = Vec::new();
    let stop_code = task.stop_code().map(TaskStopCode::as_str);
    match (stop_code, task.stopped_reason().filter(|r| !r.is_empty())) {
        (Some(code), Some(why)) => parts.push(format!("{code}: {why}")),
        (Some(code), None) => parts.push(code.to_owned()),
        (None, Some(why)) => parts.push(why.to_owned()),
        (None, None) => {}
    }
    if kind.is_terminal() {
        for container in deciding_containers(task, bot_containers) {
            let name = container.name().unwrap_or("container");
            let why = container.reason().filter(|r| !r.is_empty());
            match (container.exit_code(), why) {
                (Some(code), Some(why)) => {
                    parts.push(format!("{name} exited with code {code}: {why}"))
                }
                (Some(code), None) => parts.push(format!("{name} exited with code {code}")),
                (None, Some(why)) => parts.push(format!("{name}: {why}")),
                (None, None) => {}
            }
        }
    }
    if parts.is_empty() {
        None
    } else {
        Some(one_line(&parts.join("; "), MAX_MESSAGE_CHARS))
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_ecs::types::{Attachment, KeyValuePair};

    use super::*;

    const BOTS: &[&str] = &["zoom-bot", "teams-bot", "meet-bot"];

    fn task(last: &str) -> aws_sdk_ecs::types::builders::TaskBuilder {
        Task::builder()
            .task_arn(
                "arn:aws:ecs:eu-west-1:123456789012:task/meeboter/0123456789abcdef0123456789abcdef",
            )
            .last_status(last)
            .desired_status("RUNNING")
    }

    fn eni(status: &str, ip: Option<&str>) -> Attachment {
        let mut attachment = Attachment::builder()
            .r#type("ElasticNetworkInterface")
            .status(status)
            .details(
                KeyValuePair::builder()
                    .name("subnetId")
                    .value("subnet-0a1b")
                    .build(),
            );
        if let Some(ip) = ip {
            attachment = attachment.details(
                KeyValuePair::builder()
                    .name("privateIPv4Address")
                    .value(ip)
                    .build(),
            );
        }
        attachment.build()
    }

    fn container(name: &str, exit: Option<i32>, reason: Option<&str>) -> Container {
        let mut c = Container::builder().name(name).last_status("STOPPED");
        if let Some(code) = exit {
            c = c.exit_code(code);
        }
        if let Some(reason) = reason {
            c = c.reason(reason);
        }
        c.build()
    }

    #[test]
    fn lifecycle_states_map_to_kinds() {
        let cases = [
            ("PROVISIONING", StatusKind::Starting),
            ("PENDING", StatusKind::Starting),
            ("ACTIVATING", StatusKind::Starting),
            ("RUNNING", StatusKind::Running),
            ("DEACTIVATING", StatusKind::Stopping),
            ("STOPPING", StatusKind::Stopping),
            ("DEPROVISIONING", StatusKind::Stopping),
            ("STOPPED", StatusKind::Stopped),
            ("SOMETHING_NEW", StatusKind::Unknown),
        ];
        for (last, kind) in cases {
            let status = task_status(&task(last).build(), BOTS, 8080);
            assert_eq!(status.kind, kind, "{last}");
            assert_eq!(status.raw.as_deref(), Some(last));
        }
    }

    #[test]
    fn a_running_task_asked_to_stop_is_stopping() {
        let t = task("RUNNING")
            .desired_status("STOPPED")
            .stopped_reason("Stopped by meeboter-deploy: bot stop requested")
            .build();
        let status = task_status(&t, BOTS, 8080);
        assert_eq!(status.kind, StatusKind::Stopping);
        assert_eq!(
            status.reason.as_deref(),
            Some("Stopped by meeboter-deploy: bot stop requested")
        );
    }

    #[test]
    fn connection_url_comes_from_the_attached_eni() {
        let provisioning = task("PROVISIONING")
            .attachments(eni("PRECREATED", None))
            .build();
        assert_eq!(task_status(&provisioning, BOTS, 8080).connection_url, None);
        let running = task("RUNNING")
            .attachments(eni("ATTACHED", Some("10.0.1.23")))
            .build();
        assert_eq!(
            task_status(&running, BOTS, 3000).connection_url.as_deref(),
            Some("http://10.0.1.23:3000")
        );
        // The address may go to another task once the interface is released.
        let detached = task("DEPROVISIONING")
            .attachments(eni("DETACHED", Some("10.0.1.23")))
            .build();
        assert_eq!(task_status(&detached, BOTS, 3000).connection_url, None);
        let stopped = task("STOPPED")
            .attachments(eni("ATTACHED", Some("10.0.1.23")))
            .build();
        assert_eq!(task_status(&stopped, BOTS, 3000).connection_url, None);
    }

    #[test]
    fn failed_to_start_keeps_stop_code_reason_and_container_reasons() {
        let t = task("STOPPED")
            .desired_status("STOPPED")
            .stop_code(TaskStopCode::TaskFailedToStart)
            .stopped_reason(
                "CannotPullContainerError: pull image manifest has been retried 5 time(s)",
            )
            .containers(container(
                "zoom-bot",
                None,
                Some("CannotPullContainerError: ref not found"),
            ))
            .build();
        let status = task_status(&t, BOTS, 8080);
        assert_eq!(status.kind, StatusKind::Failed);
        assert_eq!(
            status.reason.as_deref(),
            Some(
                "TaskFailedToStart: CannotPullContainerError: pull image manifest has been retried 5 time(s); \
                 zoom-bot: CannotPullContainerError: ref not found"
            )
        );
    }

    #[test]
    fn the_bot_containers_exit_code_decides_after_it_exits_on_its_own() {
        let exited = |code: i32| {
            task("STOPPED")
                .desired_status("STOPPED")
                .stop_code(TaskStopCode::EssentialContainerExited)
                .stopped_reason("Essential container in task exited")
                .containers(container("zoom-bot", Some(code), None))
                // A log sidecar killed at shutdown does not count.
                .containers(container("log-router", Some(137), None))
                .build()
        };
        let finished = task_status(&exited(0), BOTS, 8080);
        assert_eq!(finished.kind, StatusKind::Stopped);
        assert_eq!(
            finished.reason.as_deref(),
            Some(
                "EssentialContainerExited: Essential container in task exited; zoom-bot exited with code 0"
            )
        );
        let crashed = task_status(&exited(1), BOTS, 8080);
        assert_eq!(crashed.kind, StatusKind::Failed);
        assert!(
            crashed
                .reason
                .unwrap()
                .contains("zoom-bot exited with code 1")
        );
    }

    #[test]
    fn without_a_known_bot_container_any_nonzero_exit_is_a_failure() {
        let t = task("STOPPED")
            .stop_code(TaskStopCode::EssentialContainerExited)
            .containers(container("app", Some(0), None))
            .containers(container(
                "sidecar",
                Some(2),
                Some("OutOfMemoryError: Container killed due to memory usage"),
            ))
            .build();
        let status = task_status(&t, BOTS, 8080);
        assert_eq!(status.kind, StatusKind::Failed);
        assert!(status.reason.unwrap().ends_with(
            "sidecar exited with code 2: OutOfMemoryError: Container killed due to memory usage"
        ));
    }

    #[test]
    fn stopped_on_request_is_stopped_whatever_the_exit_code() {
        let t = task("STOPPED")
            .desired_status("STOPPED")
            .stop_code(TaskStopCode::UserInitiated)
            .stopped_reason("Stopped by meeboter-deploy")
            .containers(container("zoom-bot", Some(143), None))
            .build();
        let status = task_status(&t, BOTS, 8080);
        assert_eq!(status.kind, StatusKind::Stopped);
        assert_eq!(
            status.reason.as_deref(),
            Some("UserInitiated: Stopped by meeboter-deploy; zoom-bot exited with code 143")
        );
    }

    #[test]
    fn interrupted_by_aws_is_a_failure() {
        let t = task("STOPPED")
            .stop_code(TaskStopCode::SpotInterruption)
            .stopped_reason("Your Spot Task was interrupted.")
            .build();
        let status = task_status(&t, BOTS, 8080);
        assert_eq!(status.kind, StatusKind::Failed);
        assert_eq!(
            status.reason.as_deref(),
            Some("SpotInterruption: Your Spot Task was interrupted.")
        );
    }

    #[test]
    fn failures_are_unknown_with_their_reason() {
        let missing = Failure::builder()
            .arn(
                "arn:aws:ecs:eu-west-1:123456789012:task/meeboter/ffffffffffffffffffffffffffffffff",
            )
            .reason("MISSING")
            .build();
        let status = failure_status(&missing);
        assert_eq!(status.kind, StatusKind::Unknown);
        assert_eq!(status.raw.as_deref(), Some("MISSING"));
        assert_eq!(status.reason.as_deref(), Some("MISSING"));
        let other = Failure::builder()
            .reason("INACTIVE")
            .detail("cluster is inactive")
            .build();
        assert_eq!(
            failure_status(&other).reason.as_deref(),
            Some("INACTIVE: cluster is inactive")
        );
    }

    #[test]
    fn a_long_stop_reason_is_one_line_cut_at_a_word() {
        let pull = "CannotPullContainerError: pull image manifest has been retried 7 time(s): \
                    failed to resolve ref ghcr.io/meeboter/zoom-bot:1.8.0:\n failed to do request: \
                    Head \"https://ghcr.io/v2/meeboter/zoom-bot/manifests/1.8.0\": dial tcp: lookup \
                    ghcr.io on 10.0.0.2:53: read udp 10.0.1.23:45127->10.0.0.2:53: i/o timeout";
        let stopped = task("STOPPED")
            .desired_status("STOPPED")
            .stop_code(TaskStopCode::TaskFailedToStart)
            .stopped_reason(pull)
            .containers(container("zoom-bot", None, Some(pull)))
            .build();
        let status = task_status(&stopped, BOTS, 8080);
        let reason = status.reason.unwrap();
        assert!(reason.chars().count() <= MAX_MESSAGE_CHARS, "{reason}");
        assert!(!reason.contains('\n'), "{reason}");
        assert!(
            reason.starts_with("TaskFailedToStart: CannotPullContainerError"),
            "{reason}"
        );
        assert!(reason.ends_with('…'), "{reason}");
    }
}
