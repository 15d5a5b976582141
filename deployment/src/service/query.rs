//! Reading bots: one with its history, pages of them, and what the
//! platform says about them right now.

use std::collections::HashMap;

use platform_core::{BotId, BotStatus, PlatformId};
use serde::Serialize;

use super::BotService;

use crate::bot::{Bot, BotDetails, BotState};
use crate::error::{ServiceError, ServiceResult};
use crate::meeting::MeetingStatus;
use crate::store::{BotRecord, ListFilter};

/// Which bots to list, as a client asks.
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    /// Only bots in this state.
    pub status: Option<BotState>,
    /// Only bots on this platform.
    pub platform: Option<String>,
    /// Only bots in this meeting status.
    pub meeting_status: Option<MeetingStatus>,
    /// Where the previous page ended.
    pub cursor: Option<String>,
    /// Page size, 1 to [`MAX_PAGE_SIZE`]; default [`DEFAULT_PAGE_SIZE`].
    pub limit: Option<u32>,
}

/// The default page size of [`BotService::list`].
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// The largest page size of [`BotService::list`].
pub const MAX_PAGE_SIZE: u32 = 500;

/// One page of bots.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct BotPage {
    /// The bots, in id order.
    pub bots: Vec<Bot>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A bot with what its platform says right now.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct LiveStatus {
    /// The bot as recorded.
    pub bot: Bot,
    /// The platform's answer; absent when the bot has no identifier yet.
    pub platform_status: Option<BotStatus>,
    /// Why the platform could not be asked, if it could not.
    pub platform_error: Option<String>,
}

impl BotService {
    /// One bot with its history.
    pub async fn get(&self, id: BotId) -> ServiceResult<BotDetails> {
        let record = self.load(id).await?;
        let history = self.store_ref().history(id).await?;
        let meeting_history = self.store_ref().meeting_history(id).await?;
        Ok(BotDetails {
            bot: self.shown(record).await?,
            history,
            meeting_history,
        })
    }

    /// A page of bots.
    pub async fn list(&self, query: &ListQuery) -> ServiceResult<BotPage> {
        let limit = query.limit.unwrap_or(DEFAULT_PAGE_SIZE);
        if limit == 0 || limit > MAX_PAGE_SIZE {
            return Err(ServiceError::InvalidQuery {
                parameter: "limit",
                message: format!("is {limit}; allowed: 1 to {MAX_PAGE_SIZE}"),
            });
        }
        let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
        let filter = ListFilter {
            status: query.status,
            platform: query.platform.clone(),
            meeting_status: query.meeting_status,
            after,
            limit: limit + 1,
        };
        let mut records = self.store_ref().list_bots(&filter).await?;
        let more = records.len() > limit as usize;
        records.truncate(limit as usize);
        let next_cursor = more
            .then(|| records.last().map(|r| encode_cursor(r.id())))
            .flatten();
        let mut bots = Vec::with_capacity(records.len());
        for record in records {
            bots.push(self.shown(record).await?);
        }
        Ok(BotPage { bots, next_cursor })
    }

    /// What the platform says about one bot right now.
    pub async fn live_status(&self, id: BotId) -> ServiceResult<LiveStatus> {
        self.live_statuses(Some(&[id]))
            .await?
            .pop()
            .ok_or(ServiceError::BotNotFound(id))
    }

    /// What the platform says about several bots (or, with `None`, every
    /// active bot of this platform), from one batch call. An unknown id is
    /// `bot_not_found`.
    pub async fn live_statuses(&self, ids: Option<&[BotId]>) -> ServiceResult<Vec<LiveStatus>> {
        let records = match ids {
            Some(ids) => {
                let records = self.store_ref().get_bots(ids).await?;
                if let Some(missing) = ids
                    .iter()
                    .find(|id| !records.iter().any(|r| r.id() == **id))
                {
                    return Err(ServiceError::BotNotFound(*missing));
                }
                records
            }
            None => self.active_records().await?,
        };
        // One batch call per platform the bots are on.
        let mut statuses: HashMap<PlatformId, BotStatus> = HashMap::new();
        let mut errors: HashMap<&str, String> = HashMap::new();
        for platform in self.inner.platforms.iter() {
            let asked: Vec<PlatformId> = records
                .iter()
                .filter(|r| r.platform() == platform.name())
                .filter_map(BotRecord::platform_id)
                .collect();
            if asked.is_empty() {
                continue;
            }
            match platform.calls.statuses(&asked).await {
                Ok(found) => statuses.extend(found),
                Err(e) => {
                    errors.insert(platform.name(), e.to_string());
                }
            }
        }
        let mut live = Vec::with_capacity(records.len());
        for record in records {
            let platform_status = record.platform_id().and_then(|p| statuses.get(&p).cloned());
            let platform_error = if record.platform().is_empty() {
                None
            } else if self.inner.platforms.get(record.platform()).is_none() {
                Some(format!(
                    "bot runs on {}, which this service is not configured for (it holds: {}); it is left alone",
                    record.platform(),
                    self.platform_names().join(", ")
                ))
            } else if record.platform_id().is_some() {
                errors.get(record.platform()).cloned()
            } else {
                None
            };
            live.push(LiveStatus {
                bot: self.shown(record).await?,
                platform_status,
                platform_error,
            });
        }
        Ok(live)
    }

    /// A bot as shown, with the freshest heartbeat this process knows
    /// (the database's may be up to one flush behind).
    pub(crate) fn view(&self, record: &BotRecord) -> ServiceResult<Bot> {
        let mut bot = record.to_bot()?;
        if let Some(at) = self.latest_heartbeat(record) {
            bot.last_heartbeat_at = Some(crate::store::timestamp(at));
        }
        Ok(bot)
    }

    async fn active_records(&self) -> ServiceResult<Vec<BotRecord>> {
        let mut records = Vec::new();
        let mut pairs: Vec<(BotState, &'static str)> = Vec::new();
        for status in BotState::ACTIVE {
            for platform in self.platform_names() {
                pairs.push((status, platform));
            }
        }
        for (status, platform) in pairs {
            let mut after = None;
            loop {
                let filter = ListFilter {
                    status: Some(status),
                    platform: Some(platform.to_owned()),
                    meeting_status: None,
                    after,
                    limit: 1000,
                };
                let page = self.store_ref().list_bots(&filter).await?;
                let done = page.len() < 1000;
                after = page.last().map(BotRecord::id);
                records.extend(page);
                if done {
                    break;
                }
            }
        }
        records.sort_by_key(BotRecord::id);
        Ok(records)
    }
}

const CURSOR_PREFIX: &str = "after-";

fn encode_cursor(id: BotId) -> String {
    format!("{CURSOR_PREFIX}{id}")
}

fn decode_cursor(cursor: &str) -> ServiceResult<BotId> {
    cursor
        .strip_prefix(CURSOR_PREFIX)
        .and_then(|id| id.parse::<u64>().ok())
        .map(BotId)
        .ok_or_else(|| ServiceError::InvalidQuery {
            parameter: "cursor",
            message:
                "is not a cursor this service returned; pass the next_cursor of the previous page"
                    .into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        assert_eq!(decode_cursor(&encode_cursor(BotId(42))).unwrap(), BotId(42));
        let err = decode_cursor("42").unwrap_err();
        assert_eq!(err.code(), "invalid_query");
        assert!(err.to_string().contains("cursor"), "{err}");
    }
}
