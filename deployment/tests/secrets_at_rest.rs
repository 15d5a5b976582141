//! Secrets at rest: a bot's meeting URL and password are kept only while
//! it may still need (re)deploying, and once erased they are gone from the
//! database files, not only from the table.

mod common;

use std::sync::Arc;

use common::{TestDb, create, service_on, zoom_input};
use platform_core::testkit::FakePlatform;

#[tokio::test]
async fn an_ended_bots_secrets_are_gone_from_the_sqlite_files() {
    let db = TestDb::sqlite();
    let fake = Arc::new(FakePlatform::new());
    let service = service_on(db.store().await, fake);
    // Bots around it keep their pages busy, so the ended bot's secrets are
    // not simply dropped with a rewritten page.
    for n in 10..14 {
        let mut input = zoom_input(n);
        input.meeting_password = Some("other-pw".into());
        input.meeting_url = format!("https://us02web.zoom.us/j/8{n:010}?pwd=otherpass");
        service.create_bot(create(input, true)).await.unwrap();
    }
    let bot = service
        .create_bot(create(zoom_input(7), true))
        .await
        .unwrap()
        .bot;
    for n in 20..24 {
        let mut input = zoom_input(n);
        input.meeting_password = Some("other-pw".into());
        input.meeting_url = format!("https://us02web.zoom.us/j/8{n:010}?pwd=otherpass");
        service.create_bot(create(input, true)).await.unwrap();
    }
    let TestDb::Sqlite(dir) = &db else {
        unreachable!()
    };
    let files = || {
        ["bots.db", "bots.db-wal"]
            .iter()
            .filter_map(|f| std::fs::read(dir.path().join(f)).ok())
            .collect::<Vec<_>>()
    };
    let holds = |needle: &str| {
        files()
            .iter()
            .any(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
    };
    // While the bot may still need redeploying, its secrets are kept…
    assert!(holds("hunter2-pw") && holds("s3cr3tpass"));
    service.stop(bot.id).await.unwrap();
    // …and once it ended they are nowhere in the files, not even in free
    // pages or the write-ahead log.
    assert!(
        !holds("hunter2-pw"),
        "the meeting password is still in the files"
    );
    assert!(
        !holds("s3cr3tpass"),
        "the meeting passcode is still in the files"
    );
}
