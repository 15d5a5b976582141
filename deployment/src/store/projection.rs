//! The counts the deploy projection reads: bots not started yet ahead of a
//! bot in deploy order, bots placed and waiting for their platform call,
//! capacity used per meeting platform, and the lateness of a platform's
//! backlog. Each is one query over an index (`bots_deploy_due`, named to
//! SQLite by `schedule::due_rows`; `bots_by_status`;
//! `bots_holding_capacity`), bounded by a time range or by the bots that
//! are due: none reads every scheduled bot.

use platform_core::BotId;

use super::schedule::{DUE, due_rows};
use super::{Store, StoreError, counts_by_name, with_pool};

/// Placed on a platform whose call has not answered yet.
const WAITING: &str = "status = 'deploying' AND platform_id IS NULL";

/// How many look-back windows the projection counts in (see
/// `service::projection`).
pub const WINDOWS: usize = 6;

/// Bots ahead of one bot, counted in windows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AheadCounts {
    /// Per window: bots ahead whose deploy time is at or after the window's
    /// start (every bot ahead for a window that reaches back to now).
    pub all: [u64; WINDOWS],
    /// The same, of the bot's meeting platform only.
    pub same_meeting: [u64; WINDOWS],
}

/// What one query asks for [`Store::unplaced_ahead`].
#[derive(Clone, Copy, Debug)]
pub struct AheadQuery<'a> {
    /// The bot; only bots before it in deploy order (`deploy_at`, then id)
    /// are counted.
    pub bot: BotId,
    /// Its deploy time (ms).
    pub deploy_at: i64,
    /// Its meeting platform.
    pub meeting_platform: &'a str,
    /// Nothing with an earlier deploy time is read (ms).
    pub from: i64,
    /// Each window's start (ms); `None`: the window counts every bot read.
    pub starts: [Option<i64>; WINDOWS],
}

/// A platform's backlog in deploy order, reduced to what its largest
/// lateness needs.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BacklogJoins {
    /// The earliest `join_at` among its bots (ms).
    pub earliest_join_at: Option<i64>,
    /// The largest `rank × ms_per_deploy − join_at` among its bots (rank 1
    /// is the first to go).
    pub latest_by_rank: Option<f64>,
}

impl From<(Option<i64>, Option<f64>)> for BacklogJoins {
    /// A `(MIN(join_at), MAX(rank × ms − join_at))` row.
    fn from((earliest, latest): (Option<i64>, Option<f64>)) -> Self {
        Self {
            earliest_join_at: earliest,
            latest_by_rank: latest,
        }
    }
}

/// The count of [`Store::unplaced_ahead`]: `$1` the range's start, `$2`
/// and `$3` the bot's deploy time and id, `$4` its meeting platform, then
/// each window's start. It reads the index alone (migration 0007 keeps the
/// meeting platform and status in `bots_deploy_due`), so a day's schedule
/// costs a create a range of index entries, not a row read each.
pub(super) fn unplaced_ahead_sql(dialect: super::Dialect) -> String {
    let mut columns = Vec::new();
    for i in 0..WINDOWS {
        let start = 5 + i;
        columns.push(format!(
            "SUM(CASE WHEN deploy_at >= ${start} THEN 1 ELSE 0 END)"
        ));
        columns.push(format!(
            "SUM(CASE WHEN deploy_at >= ${start} AND meeting_platform = $4 THEN 1 ELSE 0 END)"
        ));
    }
    format!(
        "SELECT {} FROM {} WHERE {DUE} AND deploy_at >= $1 \
         AND (deploy_at < $2 OR (deploy_at = $2 AND id < $3))",
        columns.join(", "),
        due_rows(dialect)
    )
}

impl Store {
    /// Bots not placed yet (pending or scheduled with a deploy time) that
    /// come before `q.bot` in deploy order and whose deploy time is at or
    /// after `q.from`, counted per window of `q.starts`: one count over
    /// that range of the `bots_deploy_due` index.
    pub async fn unplaced_ahead(&self, q: &AheadQuery<'_>) -> Result<AheadCounts, StoreError> {
        let sql = unplaced_ahead_sql(self.dialect());
        // Unbounded windows start at the range's own start.
        let starts = q.starts.map(|s| s.unwrap_or(q.from));
        let row: Vec<Option<i64>> = with_pool!(self, |pool| {
            // Twelve columns: read one by one, not as a tuple.
            let mut query = sqlx::query(&sql)
                .bind(q.from)
                .bind(q.deploy_at)
                .bind(super::bots::db_id(q.bot))
                .bind(q.meeting_platform);
            for start in starts {
                query = query.bind(start);
            }
            let row = query.fetch_one(pool).await?;
            (0..WINDOWS * 2)
                .map(|i| sqlx::Row::try_get::<Option<i64>, _>(&row, i))
                .collect::<Result<Vec<_>, _>>()?
        });
        let mut counts = AheadCounts::default();
        for i in 0..WINDOWS {
            let n = |v: Option<i64>| u64::try_from(v.unwrap_or(0)).unwrap_or(0);
            counts.all[i] = n(row[2 * i]);
            counts.same_meeting[i] = n(row[2 * i + 1]);
        }
        Ok(counts)
    }

    /// Bots placed on each platform whose platform call has not answered
    /// yet, by platform; with `before`, only those before that bot in
    /// deploy order (`deploy_at`, then id).
    pub async fn waiting_for_call(
        &self,
        before: Option<(i64, BotId)>,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let (deploy_at, id) = before.map_or((i64::MAX, i64::MAX), |(at, bot)| {
            (at, super::bots::db_id(bot))
        });
        let rows: Vec<(String, i64)> = with_pool!(self, |pool| {
            sqlx::query_as(&format!(
                "SELECT platform, COUNT(*) FROM bots WHERE {WAITING} \
                 AND (COALESCE(deploy_at, 0) < $1 OR (COALESCE(deploy_at, 0) = $1 AND id < $2)) \
                 GROUP BY platform ORDER BY platform"
            ))
            .bind(deploy_at)
            .bind(id)
            .fetch_all(pool)
            .await?
        });
        Ok(counts_by_name(rows))
    }

    /// How many bots hold capacity (deploying, running, stopping) on each
    /// platform, per meeting platform.
    pub async fn capacity_used_by_meeting(&self) -> Result<Vec<(String, String, u64)>, StoreError> {
        let rows: Vec<(String, String, i64)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT platform, meeting_platform, COUNT(*) FROM bots \
                 WHERE status IN ('deploying', 'running', 'stopping') \
                 GROUP BY platform, meeting_platform ORDER BY platform, meeting_platform",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(platform, meeting, n)| (platform, meeting, u64::try_from(n).unwrap_or_default()))
            .collect())
    }

    /// The bots placed on `platform` and waiting for their call, in deploy
    /// order, reduced for their largest lateness at `ms_per_deploy` (see
    /// [`BacklogJoins`]).
    pub async fn waiting_joins(
        &self,
        platform: &str,
        ms_per_deploy: f64,
    ) -> Result<BacklogJoins, StoreError> {
        let sql = format!(
            "SELECT MIN(join_at), MAX(rn * $2 - join_at) FROM (SELECT join_at, \
             ROW_NUMBER() OVER (ORDER BY deploy_at, id) AS rn FROM bots \
             WHERE {WAITING} AND platform = $1) AS waiting WHERE join_at IS NOT NULL"
        );
        let row: (Option<i64>, Option<f64>) = with_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(platform)
                .bind(ms_per_deploy)
                .fetch_one(pool)
                .await?
        });
        Ok(row.into())
    }

    /// The due bots not placed yet (deploy time at or before `due_at`), in
    /// deploy order, from the one after the first `skip` to the `skip +
    /// take`-th, ranked from `base + 1` on and reduced for their largest
    /// lateness at `ms_per_deploy` (see [`BacklogJoins`]).
    pub async fn due_joins(
        &self,
        due_at: i64,
        skip: u64,
        take: u64,
        base: u64,
        ms_per_deploy: f64,
    ) -> Result<BacklogJoins, StoreError> {
        let sql = format!(
            "SELECT MIN(join_at), MAX((rn - $2 + $4) * $5 - join_at) FROM (SELECT join_at, \
             ROW_NUMBER() OVER (ORDER BY deploy_at, id) AS rn FROM {} \
             WHERE {DUE} AND deploy_at <= $1) AS due \
             WHERE rn > $2 AND rn <= $2 + $3 AND join_at IS NOT NULL",
            due_rows(self.dialect())
        );
        let int = |n: u64| i64::try_from(n).unwrap_or(i64::MAX / 4);
        let row: (Option<i64>, Option<f64>) = with_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(due_at)
                .bind(int(skip))
                .bind(int(take))
                .bind(int(base))
                .bind(ms_per_deploy)
                .fetch_one(pool)
                .await?
        });
        Ok(row.into())
    }
}
