//! `meeboter-deploy sim-bot`: a stand-in meeting bot.
//!
//! **It is not a meeting bot.** It joins no meeting and records nothing. It
//! exists so the whole system can be tried, and tested end to end, without a
//! meeting-bot image: it is what the local platform runs by default
//! (`LOCAL_BOT_COMMAND`). It reads the bot environment a real bot gets
//! (`BOT_ID`, `MEETING_URL`, … from [`platform_core::bot_env::names`]) and
//! `BOT_PORT`, logs its config without secrets, answers `GET /health` on
//! `127.0.0.1:BOT_PORT`, and exits on its own after `SIM_BOT_LIFETIME`
//! seconds or on SIGTERM/SIGINT.
//!
//! Given `MEEBOTER_API_URL` and `BOT_TOKEN`, it speaks the bot protocol as a
//! real bot would: reports `joining`, then `in_waiting_room` for
//! `SIM_BOT_WAITING_ROOM_SECS`, then `in_call`; heartbeats every
//! `SIM_BOT_HEARTBEAT_SECS`; when an answer says leave, reports
//! `call_ended` (`left_on_request`) and exits; when its lifetime ends,
//! reports `call_ended` (`meeting_ended`). Reports are retried with a
//! doubling wait, so a restart of the service loses none.

mod protocol;

pub use protocol::{Delivery, ProtocolClient};

use std::net::SocketAddr;
use std::time::Duration;

use axum::Json;
use axum::routing::get;
use platform_core::bot_env::names;
use platform_core::{
    EnvLookup, EnvVarSpec, MeetingPlatform, MeetingUrl, SecretString, ValueKind, load_env,
};
use serde::Serialize;
use serde_json::json;

/// The port the bot answers health checks on (set by the local platform).
pub const BOT_PORT: EnvVarSpec = EnvVarSpec::required(
    "BOT_PORT",
    "The port the stand-in bot (sim-bot) answers GET /health on, on 127.0.0.1. The local platform sets it for each bot.",
)
.kind(ValueKind::Integer {
    min: 1,
    max: 65_535,
});

/// How long the stand-in bot lives.
pub const SIM_BOT_LIFETIME: EnvVarSpec = EnvVarSpec::with_default(
    "SIM_BOT_LIFETIME",
    "3600",
    "Seconds the stand-in bot (sim-bot) runs before exiting on its own, like a meeting that ends; 0 exits at once.",
)
.kind(ValueKind::Seconds {
    min: 0,
    max: 604_800,
});

/// How long the stand-in bot waits in the (pretend) waiting room.
pub const SIM_BOT_WAITING_ROOM_SECS: EnvVarSpec = EnvVarSpec::with_default(
    "SIM_BOT_WAITING_ROOM_SECS",
    "5",
    "Seconds the stand-in bot (sim-bot) reports in_waiting_room before it reports in_call (bot protocol); 0 goes in at once.",
)
.kind(ValueKind::Seconds {
    min: 0,
    max: 86_400,
});

/// How often the stand-in bot heartbeats.
pub const SIM_BOT_HEARTBEAT_SECS: EnvVarSpec = EnvVarSpec::with_default(
    "SIM_BOT_HEARTBEAT_SECS",
    "10",
    "Seconds between two heartbeats of the stand-in bot (sim-bot) to MEEBOTER_API_URL; the answer tells it when to leave.",
)
.kind(ValueKind::Seconds {
    min: 1,
    max: 3600,
});

/// Every variable the stand-in bot reads besides the bot environment.
pub const SIM_BOT_ENV: &[EnvVarSpec] = &[
    BOT_PORT,
    SIM_BOT_LIFETIME,
    SIM_BOT_WAITING_ROOM_SECS,
    SIM_BOT_HEARTBEAT_SECS,
];

#[derive(Clone, Serialize)]
struct Health {
    status: &'static str,
    bot_id: Option<String>,
    simulated: bool,
}

/// What the stand-in bot was configured with, safe to log: it keeps no
/// secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimBotConfig {
    /// `BOT_PORT`.
    pub port: u16,
    /// `SIM_BOT_LIFETIME`.
    pub lifetime: Duration,
    /// `BOT_ID`.
    pub bot_id: Option<String>,
    /// `MEETING_URL` with passcodes hidden.
    pub meeting_url: Option<String>,
    /// Whether `MEETING_PASSWORD` is set (its value is never kept).
    pub has_password: bool,
    /// `BOT_DISPLAY_NAME`.
    pub display_name: Option<String>,
    /// `RECORDING_ENABLED`.
    pub recording_enabled: Option<String>,
    /// The three leave timeouts, as given.
    pub timeouts: [Option<String>; 3],
    /// `MEEBOTER_API_URL`: where to speak the bot protocol, if anywhere.
    pub api_url: Option<String>,
    /// `BOT_TOKEN` (its `Debug` is redacted).
    pub token: Option<SecretString>,
    /// `SIM_BOT_WAITING_ROOM_SECS`.
    pub waiting_room: Duration,
    /// `SIM_BOT_HEARTBEAT_SECS`.
    pub heartbeat_every: Duration,
}

impl SimBotConfig {
    /// Reads the configuration from `env`, listing every problem at once.
    pub fn load(env: &dyn EnvLookup) -> Result<Self, platform_core::Error> {
        let values = load_env("sim-bot", SIM_BOT_ENV, env)?;
        let port = values
            .integer(&BOT_PORT)
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or_default();
        Ok(Self {
            port,
            lifetime: values.seconds(&SIM_BOT_LIFETIME).unwrap_or_default(),
            bot_id: env.get(names::BOT_ID),
            meeting_url: env.get(names::MEETING_URL).map(|url| redact(&url)),
            has_password: env.get(names::MEETING_PASSWORD).is_some(),
            display_name: env.get(names::BOT_DISPLAY_NAME),
            recording_enabled: env.get(names::RECORDING_ENABLED),
            timeouts: [
                env.get(names::WAITING_ROOM_TIMEOUT),
                env.get(names::NO_ONE_JOINED_TIMEOUT),
                env.get(names::EVERYONE_LEFT_TIMEOUT),
            ],
            api_url: env.get(names::MEEBOTER_API_URL),
            token: env.get(names::BOT_TOKEN).map(SecretString::from),
            waiting_room: values
                .seconds(&SIM_BOT_WAITING_ROOM_SECS)
                .unwrap_or_default(),
            heartbeat_every: values
                .seconds(&SIM_BOT_HEARTBEAT_SECS)
                .unwrap_or(Duration::from_secs(10)),
        })
    }
}

/// The URL with passcodes hidden, or nothing of it when it is not a meeting
/// URL we recognise (it might carry a secret anywhere).
fn redact(url: &str) -> String {
    MeetingPlatform::ALL
        .iter()
        .find_map(|p| MeetingUrl::parse(*p, url).ok())
        .map(|u| u.redacted())
        .unwrap_or_else(|| "[not a recognised meeting URL; withheld]".into())
}

/// Runs the stand-in bot until its lifetime ends or a signal arrives.
pub async fn run(config: SimBotConfig) -> std::io::Result<()> {
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    tracing::info!(
        bot_id = %dash(&config.bot_id),
        meeting_url = %dash(&config.meeting_url),
        has_password = config.has_password,
        display_name = %dash(&config.display_name),
        recording_enabled = %dash(&config.recording_enabled),
        waiting_room_timeout = %dash(&config.timeouts[0]),
        no_one_joined_timeout = %dash(&config.timeouts[1]),
        everyone_left_timeout = %dash(&config.timeouts[2]),
        port = config.port,
        lifetime_s = config.lifetime.as_secs(),
        "sim-bot started (a stand-in, not a real meeting bot)"
    );
    let health = Health {
        status: "ok",
        bot_id: config.bot_id.clone(),
        simulated: true,
    };
    let app = axum::Router::new().route("/health", get(move || async move { Json(health) }));
    let listener =
        tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], config.port))).await?;
    let client = match (&config.api_url, &config.token, &config.bot_id) {
        (Some(url), Some(token), Some(bot_id)) => {
            match ProtocolClient::new(url, bot_id, token.clone()) {
                Ok(client) => Some(client),
                Err(error) => {
                    tracing::warn!(error = %error, "sim-bot cannot build its HTTP client; it runs without the bot protocol");
                    None
                }
            }
        }
        _ => {
            tracing::info!(
                "no MEEBOTER_API_URL and BOT_TOKEN: sim-bot runs without the bot protocol"
            );
            None
        }
    };
    let lifetime = config.lifetime;
    let recording = config.recording_enabled.as_deref() == Some("true");
    let (waiting_room, heartbeat_every) = (config.waiting_room, config.heartbeat_every);
    let ended = async move {
        let why = match &client {
            Some(client) => tokio::select! {
                () = tokio::time::sleep(lifetime) => {
                    client.report(json!({"status": "call_ended", "sub_code": "meeting_ended", "message": "the stand-in bot's lifetime ended"})).await;
                    "its lifetime ended"
                }
                why = attend(client, waiting_room, heartbeat_every, recording) => why,
                why = shutdown_signal() => why,
            },
            None => tokio::select! {
                () = tokio::time::sleep(lifetime) => "its lifetime ended",
                why = shutdown_signal() => why,
            },
        };
        tracing::info!("sim-bot exiting: {why}");
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(ended)
        .await
}

/// Goes through a pretend meeting over the bot protocol until the service
/// says leave (then reports it left) or says the bot has ended.
async fn attend(
    client: &ProtocolClient,
    waiting_room: Duration,
    heartbeat_every: Duration,
    recording: bool,
) -> &'static str {
    let (leave_tx, mut leave_rx) = tokio::sync::watch::channel(false);
    let heartbeats = async {
        let mut ticker = tokio::time::interval(heartbeat_every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match client.heartbeat().await {
                Some(Delivery::Taken { leave: true }) => {
                    let _ = leave_tx.send(true);
                }
                Some(Delivery::Ended) => return "the service says this bot has ended",
                Some(_) => {}
                None => tracing::info!("heartbeat not answered; the next one retries"),
            }
        }
    };
    let meeting = async {
        let steps = [
            json!({"status": "joining"}),
            json!({"status": "in_waiting_room"}),
        ];
        for step in steps {
            if let Some(why) = stop_reporting(client.report(step).await, &leave_tx) {
                return why;
            }
        }
        tokio::select! {
            () = tokio::time::sleep(waiting_room) => {
                let in_call = json!({"status": "in_call", "recording": recording});
                if let Some(why) = stop_reporting(client.report(in_call).await, &leave_tx) {
                    return why;
                }
            }
            _ = leave_rx.changed() => {}
        }
        while !*leave_rx.borrow() {
            if leave_rx.changed().await.is_err() {
                break;
            }
        }
        client
            .report(json!({"status": "call_ended", "sub_code": "left_on_request"}))
            .await;
        "the service asked it to leave"
    };
    tokio::select! {
        why = heartbeats => why,
        why = meeting => why,
    }
}

/// Whether a report's answer ends the pretend meeting, and why; a leave in
/// the answer is passed on.
fn stop_reporting(
    delivery: Delivery,
    leave: &tokio::sync::watch::Sender<bool>,
) -> Option<&'static str> {
    match delivery {
        Delivery::Ended => Some("the service says this bot has ended"),
        Delivery::Taken { leave: true } => {
            let _ = leave.send(true);
            None
        }
        Delivery::Taken { .. } | Delivery::Refused(_) => None,
    }
}

async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

#[cfg(test)]
mod tests {
    use platform_core::MapEnv;

    use super::*;

    #[test]
    fn config_never_keeps_secrets() {
        let env = MapEnv::from([
            ("BOT_PORT", "4100"),
            ("BOT_ID", "7"),
            ("MEETING_URL", "https://us02web.zoom.us/j/812?pwd=s3cr3t"),
            ("MEETING_PASSWORD", "hunter2"),
        ]);
        let config = SimBotConfig::load(&env).unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(config.has_password);
        assert_eq!(config.port, 4100);
        assert_eq!(config.lifetime, Duration::from_secs(3600));
        assert_eq!(config.waiting_room, Duration::from_secs(5));
        assert_eq!(config.heartbeat_every, Duration::from_secs(10));
        let with_token = MapEnv::from([
            ("BOT_PORT", "4100"),
            ("MEEBOTER_API_URL", "http://127.0.0.1:8080"),
            ("BOT_TOKEN", "mbb_sekrit-token"),
        ]);
        let config = SimBotConfig::load(&with_token).unwrap();
        assert!(config.token.is_some());
        assert!(!format!("{config:?}").contains("sekrit"));
        let odd = MapEnv::from([
            ("BOT_PORT", "1"),
            ("MEETING_URL", "https://x.example/?token=abc"),
        ]);
        assert!(!format!("{:?}", SimBotConfig::load(&odd).unwrap()).contains("abc"));
    }

    #[test]
    fn a_missing_port_is_named() {
        let err = SimBotConfig::load(&MapEnv::new()).unwrap_err();
        assert!(err.to_string().contains("BOT_PORT is missing"), "{err}");
    }
}
