//! Reading a bot's platform identifier (an ECS task ARN) back into the
//! cluster and Region it lives in.
//!
//! Calls about a task go to the cluster named in its ARN, not to the one
//! configured now: an operator who changes `ECS_CLUSTER` must still be able
//! to stop the bots started before, or they keep running and billing.

/// A task identifier, read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TaskRef<'a> {
    /// The Region in the ARN; `None` for a bare task id.
    pub(crate) region: Option<&'a str>,
    /// The cluster name in the ARN; `None` for a bare id or an old-format
    /// ARN (`task/<id>`).
    pub(crate) cluster: Option<&'a str>,
}

/// Reads `identifier` as an ECS task ARN
/// (`arn:<partition>:ecs:<region>:<account>:task/[<cluster>/]<id>`) or a bare
/// task id. `None` when it is neither: not a task this platform could have
/// started.
pub(crate) fn parse_task_ref(identifier: &str) -> Option<TaskRef<'_>> {
    if is_task_id(identifier) {
        return Some(TaskRef {
            region: None,
            cluster: None,
        });
    }
    let mut fields = identifier.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("ecs"), Some(region), Some(account), Some(resource)) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return None;
    };
    if !partition.starts_with("aws") || region.is_empty() || account.is_empty() {
        return None;
    }
    let path = resource.strip_prefix("task/")?;
    match path.split('/').collect::<Vec<_>>().as_slice() {
        [id] if is_task_id(id) => Some(TaskRef {
            region: Some(region),
            cluster: None,
        }),
        [cluster, id] if !cluster.is_empty() && is_task_id(id) => Some(TaskRef {
            region: Some(region),
            cluster: Some(cluster),
        }),
        _ => None,
    }
}

/// A task id: 32 hex digits today, a UUID in old accounts.
fn is_task_id(id: &str) -> bool {
    (32..=36).contains(&id.len()) && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// The cluster name of a cluster given as a name or an ARN
/// (`arn:aws:ecs:<region>:<account>:cluster/<name>`).
pub(crate) fn cluster_name(cluster: &str) -> &str {
    match cluster.rsplit_once(":cluster/") {
        Some((_, name)) if cluster.starts_with("arn:") => name,
        _ => cluster,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_new_and_old_task_arns_and_bare_ids() {
        assert_eq!(
            parse_task_ref(
                "arn:aws:ecs:eu-west-1:123456789012:task/bots/0123456789abcdef0123456789abcdef"
            ),
            Some(TaskRef {
                region: Some("eu-west-1"),
                cluster: Some("bots")
            })
        );
        assert_eq!(
            parse_task_ref(
                "arn:aws-us-gov:ecs:us-gov-west-1:123456789012:task/0123456789abcdef0123456789abcdef"
            ),
            Some(TaskRef {
                region: Some("us-gov-west-1"),
                cluster: None
            })
        );
        assert_eq!(
            parse_task_ref("0123456789abcdef0123456789abcdef"),
            Some(TaskRef {
                region: None,
                cluster: None
            })
        );
    }

    #[test]
    fn other_identifiers_are_not_tasks() {
        for other in [
            "",
            "fake-1-1",
            "c4k8g0s0w8o4gk4oc0kw8gsc",
            "arn:aws:ecs:eu-west-1:123456789012:cluster/bots",
            "arn:aws:ecs:eu-west-1:123456789012:task/bots/not-a-task-id",
            "arn:aws:s3:eu-west-1:123456789012:task/bots/0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(parse_task_ref(other), None, "{other:?}");
        }
    }

    #[test]
    fn cluster_names_from_names_and_arns() {
        assert_eq!(cluster_name("bots"), "bots");
        assert_eq!(
            cluster_name("arn:aws:ecs:eu-west-1:123456789012:cluster/bots"),
            "bots"
        );
    }
}
