//! The tasks this installation runs on ECS, for the orphan sweep:
//! `ListTasks` by `startedBy` (desired status RUNNING, 100 a page), then
//! `DescribeTasks` with their tags, 100 at a time, keeping only the tasks
//! tagged with this installation's id.

use std::collections::HashSet;

use aws_sdk_ecs::primitives::DateTimeFormat;
use aws_sdk_ecs::types::Task;
use futures::{StreamExt, TryStreamExt};
use platform_core::{Error, MarkedBot, PlatformId, Result, retry};

use crate::PLATFORM_NAME;
use crate::client::LIST_TASKS_PAGE;
use crate::marks::{TaskMark, read_mark, tags};
use crate::service::{AwsEcsPlatform, DESCRIBE_CONCURRENCY, DESCRIBE_TASKS_BATCH, task_id};
use crate::task_ref::cluster_name;

/// The most ListTasks pages one listing reads (100 000 tasks, far beyond
/// any account's Fargate quota): an endpoint that hands out page tokens
/// without end gets an error, not a loop.
const MAX_PAGES: usize = 1000;

impl AwsEcsPlatform {
    /// Every task of the configured cluster that is meant to run (desired
    /// status RUNNING), was started with `ECS_STARTED_BY`, and carries this
    /// installation's tag, with the bot and attempt its tags name.
    pub(crate) async fn list_marked_tasks(&self) -> Result<Vec<MarkedBot>> {
        let cluster = self.config.cluster.as_str();
        let arns = self.running_task_arns(cluster).await?;
        let calls: Vec<_> = arns
            .chunks(DESCRIBE_TASKS_BATCH)
            .map(|chunk| self.describe_with_tags(cluster, chunk))
            .collect();
        let described: Vec<Vec<Task>> = futures::stream::iter(calls)
            .buffer_unordered(DESCRIBE_CONCURRENCY)
            .try_collect()
            .await?;
        let mut marked = Vec::new();
        for task in described.iter().flatten() {
            // Listed a moment ago, stopped (or asked to stop) since: nothing
            // to sweep.
            if task.desired_status() == Some("STOPPED") || task.last_status() == Some("STOPPED") {
                continue;
            }
            let Some(arn) = task.task_arn().filter(|arn| !arn.is_empty()) else {
                continue;
            };
            match read_mark(task, &self.installation) {
                TaskMark::NotOurs => {}
                TaskMark::Unreadable => tracing::warn!(
                    task = arn,
                    "the task carries this installation's tag but no readable {} tag, so the orphan sweep cannot tell which bot it belongs to and leaves it alone; stop it by hand if no bot uses it",
                    tags::BOT_ID
                ),
                TaskMark::Bot { bot, attempt } => marked.push(MarkedBot {
                    identifier: PlatformId::new(arn),
                    bot,
                    attempt,
                    description: describe(task, arn),
                }),
            }
        }
        marked.sort_by(|a, b| a.identifier.cmp(&b.identifier));
        Ok(marked)
    }

    /// The ARNs of the cluster's tasks started with `ECS_STARTED_BY` whose
    /// desired status is RUNNING, every page, each once.
    async fn running_task_arns(&self, cluster: &str) -> Result<Vec<String>> {
        let started_by = self.config.started_by.as_str();
        let resource = format!(
            "tasks started by {started_by} in cluster {}",
            cluster_name(cluster)
        );
        let mut arns = Vec::new();
        let mut seen = HashSet::new();
        let mut next_token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let token = next_token.as_deref();
            let page = retry(&self.retry, &resource, |_| async {
                self.ecs
                    .list_running_tasks(cluster, started_by, LIST_TASKS_PAGE, token)
                    .await
                    .map_err(|e| e.into_platform(resource.clone()))
            })
            .await?;
            arns.extend(page.arns.into_iter().filter(|arn| seen.insert(arn.clone())));
            match page.next_token {
                Some(next) if next_token.as_deref() == Some(next.as_str()) => {
                    return Err(Error::Internal {
                        platform: PLATFORM_NAME,
                        resource,
                        message: "ListTasks answered the same page token twice".into(),
                    });
                }
                Some(next) => next_token = Some(next),
                None => return Ok(arns),
            }
        }
        Err(Error::Internal {
            platform: PLATFORM_NAME,
            resource,
            message: format!(
                "ListTasks still had more pages after {MAX_PAGES} pages of {LIST_TASKS_PAGE} tasks"
            ),
        })
    }

    /// DescribeTasks with tags for at most 100 tasks. Tasks ECS no longer
    /// knows (`failures[]`) are left out: they do not run.
    async fn describe_with_tags(&self, cluster: &str, chunk: &[String]) -> Result<Vec<Task>> {
        let resource = format!(
            "tags of {} tasks in cluster {}",
            chunk.len(),
            cluster_name(cluster)
        );
        let (tasks, _missing) = retry(&self.retry, &resource, |_| async {
            self.ecs
                .describe_tasks(cluster, chunk, true)
                .await
                .map_err(|e| e.into_platform(resource.clone()))
        })
        .await?;
        Ok(tasks)
    }
}

/// `task 0f3e… (RUNNING, zoom, started 2026-11-27T09:00:00Z)`.
fn describe(task: &Task, arn: &str) -> String {
    let mut facts = vec![task.last_status().unwrap_or("status unknown").to_owned()];
    let meeting_platform = task
        .tags()
        .iter()
        .find(|t| t.key() == Some(tags::MEETING_PLATFORM))
        .and_then(|t| t.value());
    if let Some(platform) = meeting_platform {
        facts.push(platform.to_owned());
    }
    if let Some(created) = task
        .created_at()
        .and_then(|at| at.fmt(DateTimeFormat::DateTime).ok())
    {
        facts.push(format!("started {created}"));
    }
    format!("task {} ({})", task_id(arn), facts.join(", "))
}
