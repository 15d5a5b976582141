//! Reasons people can read: whatever a platform says, a bot's reason and
//! its history are one line of at most a few hundred characters.

mod common;

use std::sync::Arc;

use common::{TestDb, create, service_on, zoom_input};
use deployment::BotState;
use platform_core::Error;
use platform_core::testkit::FakePlatform;

#[tokio::test]
async fn a_platform_that_answers_with_a_page_leaves_a_one_line_reason() {
    let db = TestDb::sqlite();
    let fake = Arc::new(FakePlatform::new());
    let service = service_on(db.store().await, Arc::clone(&fake));
    let page = format!(
        "<html>\r\n<head><title>500 Internal Server Error</title></head>\r\n<body>\r\n{}\r\n</body></html>",
        "<p>stack frame</p>\n".repeat(400)
    );
    fake.fail_next_deploys([Error::Rejected {
        platform: "fake",
        resource: "bot 1 attempt 1".into(),
        message: page,
    }]);
    let bot_id = match service.create_bot(create(zoom_input(1), true)).await {
        Err(deployment::ServiceError::DeployFailed { bot, .. }) => bot,
        other => panic!("expected deploy_failed, got {other:?}"),
    };
    let details = service.get(bot_id).await.unwrap();
    assert_eq!(details.bot.status, BotState::Failed);
    let reason = details.bot.reason.unwrap();
    assert!(!reason.contains('\n'), "{reason}");
    assert!(
        reason.chars().count() <= 500,
        "{} chars",
        reason.chars().count()
    );
    assert!(reason.ends_with('…'), "{reason}");
    for entry in &details.history {
        assert!(!entry.reason.contains('\n'), "{}", entry.reason);
        assert!(entry.reason.chars().count() <= 500);
    }
}
