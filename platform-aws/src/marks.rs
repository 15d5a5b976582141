//! What this platform names and marks a bot's task with, and reading those
//! marks back: the RunTask idempotency token and the task's tags, each
//! carrying the installation so that two installations sharing a cluster
//! never take each other's tasks for their own.

use aws_sdk_ecs::types::Task;
use platform_core::installation::MAX_LEN as MAX_INSTALLATION_LEN;
use platform_core::{BotId, InstallationId, MeetingPlatform};

/// Tag keys put on every task, so an operator (or the orphan sweep) can tell
/// which installation, bot and attempt a task belongs to.
pub mod tags {
    /// The installation's id: the mark the orphan sweep lists by.
    pub const INSTALLATION: &str = "meeboter:installation";
    /// `ECS_STARTED_BY`, the task's `startedBy`.
    pub const STARTED_BY: &str = "meeboter:started-by";
    /// The Meeboter bot id.
    pub const BOT_ID: &str = "meeboter:bot-id";
    /// The deploy attempt of the bot.
    pub const ATTEMPT: &str = "meeboter:attempt";
    /// `zoom`, `teams` or `meet`.
    pub const MEETING_PLATFORM: &str = "meeboter:meeting-platform";
}

/// ECS's longest RunTask `clientToken`.
pub const MAX_CLIENT_TOKEN_LEN: usize = 64;
/// What every client token starts with, so one is recognised in CloudTrail.
const CLIENT_TOKEN_PREFIX: &str = "meeboter";
const _: () = assert!(
    CLIENT_TOKEN_PREFIX.len()
        + "-".len()
        + MAX_INSTALLATION_LEN
        + "-".len()
        + "18446744073709551615".len()
        + "-".len()
        + "4294967295".len()
        <= MAX_CLIENT_TOKEN_LEN,
    "the longest client token must fit ECS's 64 characters"
);

/// The RunTask idempotency token of `bot`'s `attempt` in `installation`:
/// `meeboter-<installation>-<bot id>-<attempt>`, at most 57 characters.
///
/// ECS keeps a token for 24 hours per cluster and answers a repeated one
/// with the task it started the first time. The installation is what keeps
/// two databases (which both count bots from 1) from sending the same
/// token; `ECS_STARTED_BY` is left out on purpose, so a retry after the
/// operator renamed it still finds the task the first call started.
pub fn client_token(installation: &InstallationId, bot: BotId, attempt: u32) -> String {
    format!("{CLIENT_TOKEN_PREFIX}-{installation}-{bot}-{attempt}")
}

/// The tags of a bot's task, in the order they are sent.
pub(crate) fn task_tags(
    installation: &InstallationId,
    started_by: &str,
    bot: BotId,
    attempt: u32,
    meeting_platform: MeetingPlatform,
) -> Vec<(String, String)> {
    [
        (tags::INSTALLATION, installation.to_string()),
        (tags::STARTED_BY, started_by.to_owned()),
        (tags::BOT_ID, bot.to_string()),
        (tags::ATTEMPT, attempt.to_string()),
        (tags::MEETING_PLATFORM, meeting_platform.as_str().to_owned()),
    ]
    .map(|(key, value)| (key.to_owned(), value))
    .into()
}

/// What a task's tags say about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TaskMark {
    /// Not marked by this installation (another installation's, one from
    /// before installations were marked, or not ours at all).
    NotOurs,
    /// Ours, but the bot id tag is missing or not a number (edited by hand).
    Unreadable,
    /// Ours: the bot and, when its tag is readable, the attempt.
    Bot { bot: BotId, attempt: Option<u32> },
}

/// Reads a task's tags (as DescribeTasks returns them with `include:
/// ["TAGS"]`) against `installation`.
pub(crate) fn read_mark(task: &Task, installation: &InstallationId) -> TaskMark {
    let tag = |key: &str| {
        task.tags()
            .iter()
            .find(|t| t.key() == Some(key))
            .and_then(|t| t.value())
    };
    if tag(tags::INSTALLATION) != Some(installation.as_str()) {
        return TaskMark::NotOurs;
    }
    match tag(tags::BOT_ID).and_then(|id| id.parse::<u64>().ok()) {
        Some(bot) => TaskMark::Bot {
            bot: BotId(bot),
            attempt: tag(tags::ATTEMPT).and_then(|a| a.parse().ok()),
        },
        None => TaskMark::Unreadable,
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_ecs::types::Tag;

    use super::*;

    fn installation(id: &str) -> InstallationId {
        InstallationId::new(id).unwrap()
    }

    #[test]
    fn tokens_differ_between_installations_and_repeat_within_one() {
        let (a, b) = (installation("aaaa1111"), installation("bbbb2222"));
        assert_ne!(client_token(&a, BotId(1), 1), client_token(&b, BotId(1), 1));
        assert_eq!(client_token(&a, BotId(1), 1), client_token(&a, BotId(1), 1));
        assert_ne!(client_token(&a, BotId(1), 1), client_token(&a, BotId(1), 2));
        assert_eq!(client_token(&a, BotId(42), 3), "meeboter-aaaa1111-42-3");
    }

    #[test]
    fn the_longest_token_fits_ecs() {
        let longest = client_token(&installation("0123456789abcdef"), BotId(u64::MAX), u32::MAX);
        assert!(longest.len() <= MAX_CLIENT_TOKEN_LEN, "{longest}");
    }

    fn task_with(tags: &[(&str, &str)]) -> Task {
        Task::builder()
            .set_tags(Some(
                tags.iter()
                    .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                    .collect(),
            ))
            .build()
    }

    #[test]
    fn a_mark_is_ours_only_with_our_installation() {
        let ours = installation("aaaa1111");
        let tags = task_tags(
            &ours,
            "meeboter-deploy",
            BotId(7),
            2,
            MeetingPlatform::Teams,
        );
        let pairs: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            read_mark(&task_with(&pairs), &ours),
            TaskMark::Bot {
                bot: BotId(7),
                attempt: Some(2)
            }
        );
        assert_eq!(
            read_mark(&task_with(&pairs), &installation("bbbb2222")),
            TaskMark::NotOurs
        );
        // Started by the same ECS_STARTED_BY before installations were marked.
        assert_eq!(
            read_mark(
                &task_with(&[
                    ("meeboter:started-by", "meeboter-deploy"),
                    ("meeboter:bot-id", "7")
                ]),
                &ours
            ),
            TaskMark::NotOurs
        );
        assert_eq!(
            read_mark(
                &task_with(&[
                    ("meeboter:installation", "aaaa1111"),
                    ("meeboter:bot-id", "x")
                ]),
                &ours
            ),
            TaskMark::Unreadable
        );
    }
}
