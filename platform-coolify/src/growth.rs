//! How fast the pool may grow: at most [`MAX_CREATIONS_PER_DEPLOY`] slot
//! applications per deploy, and at most `COOLIFY_POOL_CREATIONS_PER_MINUTE`
//! per minute in this process.
//!
//! The pool also stops at the first creation that yields no new slot (see
//! the pool); these bounds are the safety net behind that check, so that no
//! answer of Coolify's, however odd, can make the pool create applications
//! without end.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use platform_core::{Error, MeetingPlatform};
use tokio::time::Instant;

use crate::PLATFORM;
use crate::config::COOLIFY_POOL_CREATIONS_PER_MINUTE;

/// Most slot applications one deploy creates. One is what a deploy needs;
/// the second covers a slot that a concurrent deploy took first, or one
/// that turned out broken.
pub const MAX_CREATIONS_PER_DEPLOY: u32 = 2;

const WINDOW: Duration = Duration::from_secs(60);

/// The creations one deploy may still make.
#[derive(Debug)]
pub(crate) struct CreationBudget {
    spent: u32,
}

impl CreationBudget {
    /// A fresh deploy's budget.
    pub(crate) fn per_deploy() -> Self {
        Self { spent: 0 }
    }

    /// Takes one creation, or says why there is none left.
    pub(crate) fn spend(&mut self, meeting_platform: MeetingPlatform) -> Result<(), Error> {
        if self.spent >= MAX_CREATIONS_PER_DEPLOY {
            return Err(Error::Capacity {
                platform: PLATFORM,
                resource: format!("a new {meeting_platform} slot"),
                reason: format!(
                    "this deploy already created {MAX_CREATIONS_PER_DEPLOY} slot applications, the most one deploy creates, without getting a slot it could run in (other deploys took them, or they were broken); try again"
                ),
                retryable: true,
            });
        }
        self.spent += 1;
        Ok(())
    }
}

/// The creations of the last minute, shared by every deploy of the process.
#[derive(Debug)]
pub(crate) struct CreationWindow {
    limit: usize,
    sent: Mutex<VecDeque<Instant>>,
}

impl CreationWindow {
    /// A window allowing `per_minute` creations per minute.
    pub(crate) fn new(per_minute: u32) -> Self {
        Self {
            limit: usize::try_from(per_minute.max(1)).unwrap_or(usize::MAX),
            sent: Mutex::new(VecDeque::new()),
        }
    }

    /// Records a creation about to be sent, or refuses it while the last
    /// minute already holds the limit.
    pub(crate) fn admit(&self, meeting_platform: MeetingPlatform) -> Result<(), Error> {
        let now = Instant::now();
        let mut sent = self.sent.lock().unwrap_or_else(PoisonError::into_inner);
        while sent
            .front()
            .is_some_and(|at| now.duration_since(*at) >= WINDOW)
        {
            sent.pop_front();
        }
        if sent.len() >= self.limit {
            let oldest = sent.front().copied().unwrap_or(now);
            let wait = WINDOW.saturating_sub(now.duration_since(oldest));
            return Err(Error::Capacity {
                platform: PLATFORM,
                resource: format!("a new {meeting_platform} slot"),
                reason: format!(
                    "the pool created {} slot applications in the last minute, the most {} allows; it can create the next in {} s",
                    sent.len(),
                    COOLIFY_POOL_CREATIONS_PER_MINUTE.name,
                    wait.as_secs().max(1)
                ),
                retryable: true,
            });
        }
        sent.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deploy_creates_at_most_its_budget() {
        let mut budget = CreationBudget::per_deploy();
        for _ in 0..MAX_CREATIONS_PER_DEPLOY {
            budget.spend(MeetingPlatform::Zoom).unwrap();
        }
        let error = budget.spend(MeetingPlatform::Zoom).unwrap_err();
        assert!(error.is_retryable());
        assert!(error.nothing_started());
        assert!(
            error.to_string().contains("the most one deploy creates"),
            "{error}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_window_admits_its_limit_per_minute() {
        let window = CreationWindow::new(2);
        window.admit(MeetingPlatform::Zoom).unwrap();
        tokio::time::advance(Duration::from_secs(20)).await;
        window.admit(MeetingPlatform::Meet).unwrap();
        let error = window.admit(MeetingPlatform::Zoom).unwrap_err();
        assert!(error.is_retryable());
        let text = error.to_string();
        assert!(text.contains("COOLIFY_POOL_CREATIONS_PER_MINUTE"), "{text}");
        assert!(text.contains("the next in 40 s"), "{text}");
        tokio::time::advance(Duration::from_secs(40)).await;
        window.admit(MeetingPlatform::Zoom).unwrap();
    }
}
