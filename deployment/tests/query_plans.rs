//! The scheduler's queries, as the databases plan them: on SQLite both read
//! the partial index `bots_deploy_due`, never the whole table, so bots
//! scheduled far ahead cost a scheduler tick nothing; PostgreSQL explains
//! them too.

mod common;

use common::PgDatabase;
use deployment::Store;

#[tokio::test]
async fn sqlite_reads_due_bots_through_the_partial_index() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("plans.db").display());
    let store = Store::connect(&url).await.unwrap();
    let plans = store.scheduler_query_plans().await.unwrap();
    assert_eq!(
        plans.iter().map(|p| p.query).collect::<Vec<_>>(),
        [
            "claim of due bots",
            "due backlog",
            "bots ahead of a new bot"
        ]
    );
    // A create's count of the bots ahead reads the index alone.
    assert!(
        plans[2]
            .lines
            .iter()
            .any(|l| l.contains("USING COVERING INDEX bots_deploy_due")),
        "{:?}",
        plans[2]
    );
    for plan in &plans {
        assert!(
            plan.lines.iter().any(|l| l.contains("bots_deploy_due")),
            "{plan:?}"
        );
        assert!(
            !plan.lines.iter().any(|l| l.starts_with("SCAN bots")),
            "{plan:?}"
        );
    }
    store.close().await;
}

#[tokio::test]
async fn postgres_explains_the_same_queries() {
    let db = PgDatabase::create().await;
    let store = Store::connect(db.url()).await.unwrap();
    let plans = store.scheduler_query_plans().await.unwrap();
    assert_eq!(plans.len(), 3);
    for plan in &plans {
        assert!(plan.lines.iter().any(|l| l.contains("bots")), "{plan:?}");
    }
    store.close().await;
}
