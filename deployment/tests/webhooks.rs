//! Status webhooks over real HTTP: a loopback receiver, the outbox on real
//! SQLite and PostgreSQL databases, the delivery worker in this process,
//! signatures checked with the Standard Webhooks reference verifier.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::receiver::{Answer, Received, Receiver};
use common::{TestDb, test_options, zoom_input};
use deployment::api::StopSignal;
use deployment::service::WebhookPolicy;
use deployment::webhooks::{
    DeliveryWorker, RetrySchedule, Sender, Signer, SigningSecret, WorkerOptions,
};
use deployment::{BotService, CreateBot, ServiceOptions, Store};
use platform_core::PlatformService;
use platform_core::testkit::FakePlatform;

/// A schedule fast enough for tests, shaped like the production one.
fn quick_schedule() -> RetrySchedule {
    RetrySchedule {
        first_retry: Duration::from_millis(200),
        max_delay: Duration::from_secs(2),
        max_age: Duration::from_secs(120),
    }
}

fn options(allow_private: bool) -> ServiceOptions {
    ServiceOptions {
        webhooks: WebhookPolicy {
            enabled: true,
            allow_private,
        },
        ..test_options()
    }
}

fn service(store: Store, allow_private: bool) -> BotService {
    let fake = Arc::new(FakePlatform::new());
    BotService::new(
        store,
        fake as Arc<dyn PlatformService>,
        options(allow_private),
    )
}

/// Runs a delivery worker until the returned signal is stopped.
fn start_worker(store: &Store, signer: Signer, schedule: RetrySchedule) -> StopSignal {
    let sender = Sender::new(signer, Duration::from_secs(5), true).unwrap();
    let worker = DeliveryWorker::new(
        store.clone(),
        sender,
        WorkerOptions {
            concurrency: 8,
            poll_interval: Duration::from_millis(100),
            schedule,
        },
    );
    let stop = StopSignal::new();
    tokio::spawn(worker.run(stop.stopped()));
    stop
}

fn create(n: u64, webhook_url: Option<String>, deploy: bool) -> CreateBot {
    CreateBot {
        input: zoom_input(n),
        idempotency: None,
        deploy,
        priority: 0,
        webhook_url,
        join_at: None,
    }
}

fn header_map(received: &Received) -> axum::http::HeaderMap {
    received.headers.clone()
}

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn signatures_verify_with_the_reference_verifier_and_a_changed_byte_fails() {
    let receiver = Receiver::start(|_, _| Answer::ok()).await;
    let db = TestDb::sqlite();
    let store = db
        .store()
        .await
        .with_operator_webhook(Some(receiver.url("/operator?token=abc")));
    let current = SigningSecret::random();
    let previous = SigningSecret::random();
    let stop = start_worker(
        &store,
        Signer::new(current.clone(), Some(previous.clone())),
        quick_schedule(),
    );
    let service = service(store.clone(), true);
    let bot = service.create_bot(create(1, None, true)).await.unwrap().bot;
    service.stop(bot.id).await.unwrap();
    // created, deploying, running, stopping, stopped, ended.
    receiver.wait_until(WAIT, |r| r.len() >= 6).await;
    let received = receiver.received();
    let verify_current = standardwebhooks::Webhook::new(&current.expose()).unwrap();
    let verify_previous = standardwebhooks::Webhook::new(&previous.expose()).unwrap();
    for request in &received {
        let headers = header_map(request);
        verify_current
            .verify(&request.body, &headers)
            .expect("the current secret's signature verifies");
        verify_previous
            .verify(&request.body, &headers)
            .expect("the previous secret's signature verifies during rotation");
        let mut changed = request.body.to_vec();
        let last = changed.len() - 2;
        changed[last] ^= 0x01;
        assert!(verify_current.verify(&changed, &headers).is_err());
        let mut wrong_id = headers.clone();
        wrong_id.insert("webhook-id", "msg_other".parse().unwrap());
        assert!(verify_current.verify(&request.body, &wrong_id).is_err());
        assert_eq!(request.path, "/operator?token=abc");
        assert_eq!(
            request.headers.get("content-type").unwrap(),
            "application/json"
        );
        let text = String::from_utf8_lossy(&request.body);
        assert!(!text.contains("hunter2-pw"), "{text}");
        assert!(!text.contains("s3cr3tpass"), "a passcode leaked: {text}");
    }
    let kinds: Vec<(String, Option<String>, Option<String>)> = received
        .iter()
        .map(|r| {
            let json = r.json();
            let kind = json["type"].as_str().unwrap().to_owned();
            let from = json["data"]["from"].as_str().map(str::to_owned);
            let to = json["data"]["to"]
                .as_str()
                .or(json["data"]["status"].as_str())
                .map(str::to_owned);
            (kind, from, to)
        })
        .collect();
    let s = |x: &str| Some(x.to_owned());
    assert_eq!(
        kinds,
        [
            ("bot.status_changed".into(), None, s("pending")),
            ("bot.status_changed".into(), s("pending"), s("deploying")),
            ("bot.status_changed".into(), s("deploying"), s("running")),
            ("bot.status_changed".into(), s("running"), s("stopping")),
            ("bot.status_changed".into(), s("stopping"), s("stopped")),
            ("bot.ended".into(), None, s("stopped")),
        ]
    );
    let ended = received[5].json();
    assert_eq!(ended["data"]["bot"]["id"], bot.id.0);
    assert_eq!(ended["data"]["bot"]["status"], "stopped");
    assert!(ended["timestamp"].as_str().unwrap().ends_with('Z'));
    stop.stop();
    store.close().await;
}

async fn retries_keep_the_webhook_id_and_follow_the_schedule(store: Store) {
    let receiver = Receiver::start(|_, nth| {
        if nth <= 3 {
            Answer::status(500)
        } else {
            Answer::ok()
        }
    })
    .await;
    let store = store.with_operator_webhook(Some(receiver.url("/hook")));
    let schedule = quick_schedule();
    let stop = start_worker(&store, Signer::new(SigningSecret::random(), None), schedule);
    let service = service(store.clone(), true);
    let bot = service
        .create_bot(create(2, None, false))
        .await
        .unwrap()
        .bot;
    receiver.wait_until(WAIT, |r| r.len() >= 4).await;
    // The view is written right after the answer: wait for it.
    let mut view = service.webhooks(bot.id).await.unwrap();
    for _ in 0..100 {
        if view.deliveries[0].state == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        view = service.webhooks(bot.id).await.unwrap();
    }
    stop.stop();
    let received = receiver.received();
    assert_eq!(received.len(), 4, "accepted once, never sent again");
    let id = received[0].webhook_id();
    assert!(id.starts_with("msg_"), "{id}");
    assert!(received.iter().all(|r| r.webhook_id() == id));
    assert!(received.iter().all(|r| r.body == received[0].body));
    let statuses: Vec<u16> = received.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 500, 500, 200]);
    assert_eq!(view.deliveries.len(), 1);
    let delivery = &view.deliveries[0];
    assert_eq!(delivery.state, "delivered");
    assert_eq!(delivery.webhook_id, id);
    assert_eq!(delivery.attempts, 4);
    assert_eq!(delivery.url, receiver.url("/hook"));
    let log = &delivery.attempt_log;
    let codes: Vec<Option<u16>> = log.iter().map(|a| a.status_code).collect();
    assert_eq!(codes, [Some(500), Some(500), Some(500), Some(200)]);
    assert_eq!(
        log[0].error.as_deref(),
        Some("the receiver answered 500 Internal Server Error")
    );
    assert_eq!(log[0].response.as_deref(), Some("receiver says hello"));
    // Each retry waited at least the schedule's wait less its jitter after
    // the attempt before it ended (the times are recorded in ms).
    for n in 1..log.len() {
        let ended = log[n - 1].at + time::Duration::milliseconds(log[n - 1].duration_ms as i64);
        let waited = log[n].at - ended;
        let nominal = schedule.nominal_delay(n as u32);
        let floor = nominal.mul_f64(0.8);
        assert!(
            waited >= time::Duration::try_from(floor).unwrap() - time::Duration::milliseconds(2),
            "attempt {} came {waited} after attempt {n}; the schedule waits at least {floor:?}",
            n + 1
        );
    }
    store.close().await;
}

async fn retry_after_is_honoured(store: Store) {
    let receiver = Receiver::start(|_, nth| {
        if nth == 1 {
            Answer {
                status: 503,
                delay: Duration::ZERO,
                retry_after: Some("2"),
            }
        } else {
            Answer::ok()
        }
    })
    .await;
    let store = store.with_operator_webhook(Some(receiver.url("/hook")));
    let schedule = RetrySchedule {
        first_retry: Duration::from_millis(50),
        ..quick_schedule()
    };
    let stop = start_worker(&store, Signer::new(SigningSecret::random(), None), schedule);
    let service = service(store.clone(), true);
    service.create_bot(create(3, None, false)).await.unwrap();
    receiver.wait_until(WAIT, |r| r.len() >= 2).await;
    stop.stop();
    let received = receiver.received();
    let waited = received[1].at - received[0].answered_at;
    assert!(
        waited >= Duration::from_millis(1990),
        "Retry-After: 2 was not honoured: {waited:?}"
    );
    store.close().await;
}

async fn a_failed_delivery_can_be_retried_by_hand(store: Store) {
    let healthy = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let receiver = Receiver::start({
        let healthy = Arc::clone(&healthy);
        move |_, _| {
            if healthy.load(std::sync::atomic::Ordering::SeqCst) {
                Answer::ok()
            } else {
                Answer::status(502)
            }
        }
    })
    .await;
    let store = store.with_operator_webhook(Some(receiver.url("/hook")));
    let schedule = RetrySchedule {
        first_retry: Duration::from_millis(100),
        max_delay: Duration::from_millis(300),
        max_age: Duration::from_secs(1),
    };
    let stop = start_worker(&store, Signer::new(SigningSecret::random(), None), schedule);
    let service = service(store.clone(), true);
    let bot = service
        .create_bot(create(4, None, false))
        .await
        .unwrap()
        .bot;
    let mut view = service.webhooks(bot.id).await.unwrap();
    for _ in 0..200 {
        if view.deliveries[0].state == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        view = service.webhooks(bot.id).await.unwrap();
    }
    let failed = view.deliveries[0].clone();
    assert_eq!(failed.state, "failed", "{failed:?}");
    assert!(failed.attempts >= 2);
    assert!(failed.next_attempt_at.is_none());
    let summary = store.outbox_summary().await.unwrap();
    assert!(summary.by_state.contains(&("failed".to_owned(), 1)));
    assert_eq!(summary.oldest_pending_at, None);
    healthy.store(true, std::sync::atomic::Ordering::SeqCst);
    let retried = service.retry_webhook(failed.id).await.unwrap();
    assert_eq!(retried.state, "pending");
    receiver
        .wait_until(WAIT, |r| r.iter().any(|r| r.status == 200))
        .await;
    for _ in 0..100 {
        view = service.webhooks(bot.id).await.unwrap();
        if view.deliveries[0].state == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(view.deliveries[0].state, "delivered");
    let again = service.retry_webhook(failed.id).await.unwrap_err();
    assert_eq!(again.code(), "delivery_already_delivered");
    let missing = service.retry_webhook(987_654).await.unwrap_err();
    assert_eq!(missing.code(), "delivery_not_found");
    stop.stop();
    store.close().await;
}

async fn order_per_bot_holds_with_a_slow_and_a_fast_receiver(store: Store) {
    let receiver = Receiver::start(|path, _| {
        if path.starts_with("/slow") {
            Answer::ok().after(Duration::from_millis(250))
        } else {
            Answer::ok()
        }
    })
    .await;
    let stop = start_worker(
        &store,
        Signer::new(SigningSecret::random(), None),
        quick_schedule(),
    );
    let service = service(store.clone(), true);
    let slow = service
        .create_bot(create(5, Some(receiver.url("/slow")), true))
        .await
        .unwrap()
        .bot;
    let fast = service
        .create_bot(create(6, Some(receiver.url("/fast")), true))
        .await
        .unwrap()
        .bot;
    service.stop(slow.id).await.unwrap();
    service.stop(fast.id).await.unwrap();
    receiver.wait_until(WAIT, |r| r.len() >= 12).await;
    stop.stop();
    let received = receiver.received();
    let expected = [
        "null>pending",
        "pending>deploying",
        "deploying>running",
        "running>stopping",
        "stopping>stopped",
        "ended:stopped",
    ];
    for (path, bot) in [("/slow", slow.id), ("/fast", fast.id)] {
        let seen: Vec<String> = received
            .iter()
            .filter(|r| r.path == path)
            .map(|r| {
                let json = r.json();
                assert_eq!(json["data"]["bot"]["id"], bot.0);
                match json["type"].as_str().unwrap() {
                    "bot.ended" => format!("ended:{}", json["data"]["status"].as_str().unwrap()),
                    _ => format!(
                        "{}>{}",
                        json["data"]["from"].as_str().unwrap_or("null"),
                        json["data"]["to"].as_str().unwrap()
                    ),
                }
            })
            .collect();
        assert_eq!(seen, expected, "{path}");
    }
    // The slow receiver did not hold the fast one back.
    let last = |path: &str| {
        received
            .iter()
            .filter(|r| r.path == path)
            .map(|r| r.answered_at)
            .max()
            .unwrap()
    };
    assert!(last("/fast") < last("/slow"));
    store.close().await;
}

async fn private_receivers_are_refused_on_create(store: Store) {
    let service = service(store.clone(), false);
    for (url, code) in [
        ("https://127.0.0.1/hook", "webhook_url_forbidden"),
        ("https://10.0.0.1/hook", "webhook_url_forbidden"),
        (
            "https://169.254.169.254/latest/meta-data",
            "webhook_url_forbidden",
        ),
        ("https://[::1]/hook", "webhook_url_forbidden"),
        ("https://localhost/hook", "webhook_url_forbidden"),
        ("http://hooks.example.com/in", "invalid_webhook_url"),
        (
            "https://user:pw@hooks.example.com/in",
            "invalid_webhook_url",
        ),
        ("ftp://hooks.example.com/in", "invalid_webhook_url"),
    ] {
        let error = service
            .create_bot(create(7, Some(url.into()), false))
            .await
            .unwrap_err();
        assert_eq!(error.code(), code, "{url}: {error}");
        assert!(!error.to_string().contains("pw@"), "{error}");
    }
    // Nothing was written.
    let page = service
        .list(&deployment::service::ListQuery::default())
        .await
        .unwrap();
    assert!(page.bots.is_empty());
    // Without a signing secret no receiver is accepted at all.
    let unsigned = BotService::new(
        store.clone(),
        Arc::new(FakePlatform::new()) as Arc<dyn PlatformService>,
        test_options(),
    );
    let error = unsigned
        .create_bot(create(
            8,
            Some("https://hooks.example.com/in".into()),
            false,
        ))
        .await
        .unwrap_err();
    assert_eq!(error.code(), "webhooks_not_configured");
    store.close().await;
}

async fn replicas_race_for_every_event(store: Store, url: String) {
    let receiver = Receiver::start(|_, _| Answer::ok().after(Duration::from_millis(15))).await;
    let operator = Some(receiver.url("/hook"));
    let store = store.with_operator_webhook(operator.clone());
    let other = Store::connect(&url)
        .await
        .unwrap()
        .with_operator_webhook(operator);
    let secret = SigningSecret::random();
    // Both workers start before the events exist and race for each.
    let stop_a = start_worker(&store, Signer::new(secret.clone(), None), quick_schedule());
    let stop_b = start_worker(&other, Signer::new(secret.clone(), None), quick_schedule());
    let service_a = service(store.clone(), true);
    let service_b = service(other.clone(), true);
    let mut ids = Vec::new();
    for n in 0..20 {
        let service = if n % 2 == 0 { &service_a } else { &service_b };
        let bot = service.create_bot(create(n, None, true)).await.unwrap().bot;
        ids.push(bot.id);
    }
    // 20 bots × created, deploying, running.
    receiver.wait_until(WAIT, |r| r.len() >= 60).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop_a.stop();
    stop_b.stop();
    let received = receiver.received();
    assert_eq!(receiver.overlaps(), 0, "an event was sent twice at once");
    let mut webhook_ids: Vec<String> = received.iter().map(Received::webhook_id).collect();
    webhook_ids.sort();
    let all = webhook_ids.len();
    webhook_ids.dedup();
    assert_eq!(all, 60, "every event exactly once");
    assert_eq!(webhook_ids.len(), 60);
    for id in ids {
        let view = service_a.webhooks(id).await.unwrap();
        assert_eq!(view.deliveries.len(), 3);
        assert!(
            view.deliveries
                .iter()
                .all(|d| d.state == "delivered" && d.attempts == 1)
        );
    }
    other.close().await;
    store.close().await;
}

mod sqlite {
    use super::*;

    macro_rules! on_sqlite {
        ($($name:ident),*) => {$(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let db = TestDb::sqlite();
                super::$name(db.store().await).await;
            }
        )*};
    }

    on_sqlite!(
        retries_keep_the_webhook_id_and_follow_the_schedule,
        retry_after_is_honoured,
        a_failed_delivery_can_be_retried_by_hand,
        order_per_bot_holds_with_a_slow_and_a_fast_receiver,
        private_receivers_are_refused_on_create
    );

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_processes_on_one_file_never_send_one_event_twice_at_once() {
        let db = TestDb::sqlite();
        replicas_race_for_every_event(db.store().await, db.url()).await;
    }
}

mod postgres {
    use super::*;

    macro_rules! on_postgres {
        ($($name:ident),*) => {$(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let db = TestDb::postgres().await;
                super::$name(db.store().await).await;
            }
        )*};
    }

    on_postgres!(
        retries_keep_the_webhook_id_and_follow_the_schedule,
        a_failed_delivery_can_be_retried_by_hand,
        order_per_bot_holds_with_a_slow_and_a_fast_receiver,
        private_receivers_are_refused_on_create
    );

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_replicas_never_send_one_event_twice_at_once() {
        let db = TestDb::postgres().await;
        replicas_race_for_every_event(db.store().await, db.url()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_to_bots_are_checked_again_at_connect_time() {
    // A receiver that passed the check at create time and now resolves to
    // loopback (DNS rebinding), or a row with a literal private address:
    // refused before any byte is sent.
    let receiver = Receiver::start(|_, _| Answer::ok()).await;
    let sender = Sender::new(
        Signer::new(SigningSecret::random(), None),
        Duration::from_secs(5),
        false,
    )
    .unwrap();
    let port = receiver.addr.port();
    for (url, expected) in [
        (format!("https://localhost:{port}/hook"), "resolves to"),
        (format!("https://127.0.0.1:{port}/hook"), "127.0.0.1"),
        (format!("http://localhost:{port}/hook"), "must use https"),
    ] {
        let delivery = deployment::store::DeliveryRecord {
            id: 1,
            message_id: "msg_test".into(),
            bot_id: 1,
            destination: "bot".into(),
            url: url.clone(),
            event_type: "bot.status_changed".into(),
            payload: "{}".into(),
            state: "pending".into(),
            attempts: 0,
            created_at: 0,
            age_from: 0,
            next_attempt_at: 0,
            claimed_by: None,
            claim_until: None,
            last_attempt_at: None,
            last_status_code: None,
            last_error: None,
            last_response: None,
            delivered_at: None,
            updated_at: 0,
        };
        let result = sender.send(&delivery).await;
        assert!(!result.delivered, "{url}");
        assert_eq!(result.status_code, None, "{url}");
        let error = result.error.unwrap_or_default();
        assert!(error.contains(expected), "{url}: {error}");
    }
    assert!(receiver.received().is_empty());
}
