//! How the database answers the scheduler's queries: their plans, so an
//! operator (or the idle-schedule benchmark) can see that a large schedule
//! is read through the partial index `bots_deploy_due` and never scanned.

use super::projection::unplaced_ahead_sql;
use super::schedule::{claim_due_sql, due_backlog_sql};
use super::{DbPool, Store, StoreError};

/// The plan of one of the scheduler's queries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryPlan {
    /// What the query is for.
    pub query: &'static str,
    /// The plan, one line per step, as the database prints it (SQLite's
    /// `EXPLAIN QUERY PLAN`, PostgreSQL's `EXPLAIN`).
    pub lines: Vec<String>,
}

impl Store {
    /// The plans of the scheduler's two queries run on every tick, the
    /// claim of due bots ([`Store::claim_due`]) and the count of the due
    /// backlog ([`Store::due_backlog`]), and of the count a create's
    /// projection makes of the bots ahead of it
    /// ([`Store::unplaced_ahead`]). Nothing is claimed or changed: the
    /// queries are explained, not run.
    pub async fn scheduler_query_plans(&self) -> Result<Vec<QueryPlan>, StoreError> {
        // Each query with its placeholders' values: a text, then numbers
        // (the claim's owner), or numbers only. A plan does not depend on
        // the values.
        let queries: [(&str, String, &[usize]); 3] = [
            ("claim of due bots", claim_due_sql(self.dialect()), &[0]),
            ("due backlog", due_backlog_sql(self.dialect()), &[]),
            (
                "bots ahead of a new bot",
                unplaced_ahead_sql(self.dialect()),
                &[3],
            ),
        ];
        let mut plans = Vec::new();
        for (query, sql, texts) in queries {
            let binds = sql.matches('$').count();
            // The same binding for either database's row type.
            macro_rules! explain {
                ($pool:expr, $explain:expr, $row:ty, $line:expr) => {{
                    let explain = $explain;
                    let mut q = sqlx::query_as::<_, $row>(&explain);
                    for n in 0..binds {
                        q = if texts.contains(&n) {
                            q.bind("plan")
                        } else {
                            q.bind(0_i64)
                        };
                    }
                    q.fetch_all($pool).await?.into_iter().map($line).collect()
                }};
            }
            let lines: Vec<String> = match &self.pool {
                DbPool::Sqlite(pool) => explain!(
                    pool,
                    format!("EXPLAIN QUERY PLAN {sql}"),
                    (i64, i64, i64, String),
                    |(_, _, _, detail)| detail
                ),
                DbPool::Postgres(pool) => {
                    explain!(pool, format!("EXPLAIN {sql}"), (String,), |(line,)| line)
                }
            };
            plans.push(QueryPlan { query, lines });
        }
        Ok(plans)
    }
}
