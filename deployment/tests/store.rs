//! The database store on real SQLite and real PostgreSQL: the core
//! slot-store suite, migrations, and refusals of unusable URLs.

mod common;

use std::sync::Arc;

use deployment::{ServiceError, Store};
use platform_core::testkit;
use platform_core::{BotId, MeetingPlatform, NewSlot, SlotState, SlotStore};

async fn passes_the_slot_store_suite(store: Store) {
    testkit::run_slot_store_suite(Arc::new(store), "suite")
        .await
        .unwrap_or_else(|v| panic!("{v}"));
}

async fn many_concurrent_claims_never_share_a_slot(store: Store) {
    let store: Arc<dyn SlotStore> = Arc::new(store);
    testkit::claims_are_exclusive(store, "big", 40, 100)
        .await
        .unwrap_or_else(|v| panic!("{v}"));
}

async fn a_released_slot_goes_to_the_next_bot(store: Store) {
    for id in ["s1", "s2"] {
        store
            .add_slot(NewSlot {
                pool: "p".into(),
                slot_id: id.into(),
                meeting_platform: MeetingPlatform::Teams,
                connection_url: Some(format!("http://{id}.internal")),
            })
            .await
            .unwrap();
    }
    let a = store
        .claim_slot("p", MeetingPlatform::Teams, BotId(1))
        .await
        .unwrap()
        .unwrap();
    let b = store
        .claim_slot("p", MeetingPlatform::Teams, BotId(2))
        .await
        .unwrap()
        .unwrap();
    assert_ne!(a.slot_id, b.slot_id);
    assert!(
        store
            .claim_slot("p", MeetingPlatform::Teams, BotId(3))
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.release_slot("p", &a.slot_id, BotId(1)).await.unwrap());
    let c = store
        .claim_slot("p", MeetingPlatform::Teams, BotId(3))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.slot_id, a.slot_id);
    assert_eq!(c.state, SlotState::Claimed { bot_id: BotId(3) });
    assert_eq!(c.connection_url.as_deref(), Some("http://s1.internal"));
    assert_eq!(store.pool_names().await.unwrap(), ["p"]);
}

async fn migrations_run_once_and_reopening_keeps_data(store: Store) {
    store
        .add_slot(NewSlot {
            pool: "keep".into(),
            slot_id: "k1".into(),
            meeting_platform: MeetingPlatform::Zoom,
            connection_url: None,
        })
        .await
        .unwrap();
    store.ping().await.unwrap();
}

on_both_databases!(
    passes_the_slot_store_suite,
    many_concurrent_claims_never_share_a_slot,
    a_released_slot_goes_to_the_next_bot,
    migrations_run_once_and_reopening_keeps_data,
);

#[tokio::test]
async fn reopening_a_database_keeps_its_rows() {
    for db in [common::TestDb::sqlite(), common::TestDb::postgres().await] {
        let first = db.store().await;
        migrations_run_once_and_reopening_keeps_data(first.clone()).await;
        first.close().await;
        let second = db.store().await;
        let slot = second.get_slot("keep", "k1").await.unwrap();
        assert!(slot.is_some(), "{:?} lost its rows", second.dialect());
        second.close().await;
    }
}

#[tokio::test]
async fn the_sqlite_file_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("private.db");
    let store = Store::connect(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "mode {mode:o}");
    store.close().await;
}

#[tokio::test]
async fn unusable_urls_are_refused_clearly_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let missing_dir = dir.path().join("no/such/dir/bots.db");
    let err = Store::connect(&format!("sqlite:{}", missing_dir.display()))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("does not exist"), "{text}");
    assert!(!missing_dir.exists());
    assert_eq!(ServiceError::from(err).code(), "database_config");

    let err = Store::connect("mysql://root:hunter2@db/x")
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("allowed: sqlite:<path>"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");

    // Nothing listens on port 1: refused, retryable, no password shown.
    let err = Store::connect("postgres://app:hunter2@127.0.0.1:1/db")
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("postgres://app:***@127.0.0.1:1/db"), "{text}");
    assert!(ServiceError::from(err).is_retryable());
}
