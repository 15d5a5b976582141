//! The `meeboter-deploy` command line.
//!
//! Human output by default; `--json` prints one JSON document on standard
//! output (errors too, as `{"error": {...}}`), for scripts. Logs go to
//! standard error. Exit codes are stable; see [`exit`].

mod commands;
mod doctor;
pub mod exit;
mod output;
mod progress;
mod serve;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use platform_core::BotId;

use crate::bot::BotState;
use crate::meeting::MeetingStatus;

const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  unexpected error (a bug, or an error of no other kind)
  2  invalid usage or input (bad flag, invalid meeting URL, unknown meeting platform)
  3  not found (no bot with that id)
  4  conflict: the bot's state forbids it (e.g. stopping a stopped bot)
  5  temporarily unavailable: retry later (pool exhausted, platform or database unreachable)
  6  configuration problem (service or platform variables, a DATABASE_URL that cannot be opened)
  7  the platform refused the bot (it is now failed, with the reason)

Configuration is read from environment variables; `meeboter-deploy platforms`
lists them and `meeboter-deploy doctor` checks them.";

/// Deploys, tracks and stops meeting bots on Coolify, AWS ECS or local
/// processes.
#[derive(Debug, Parser)]
#[command(name = "meeboter-deploy", version, about, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// Print one JSON document on standard output instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API on LISTEN_ADDR (default 127.0.0.1:8080) with the
    /// reconciler, until SIGTERM/SIGINT. Requests need `Authorization:
    /// Bearer <API_TOKEN>`; without API_TOKEN on a loopback address a token
    /// is generated and printed once.
    Serve,
    /// Print the HTTP API's OpenAPI 3 document (JSON) on standard output.
    Openapi,
    /// List the compiled-in platforms, their variables, and which one
    /// DEPLOYMENT_PLATFORM (and `auto`) would choose, and why.
    Platforms,
    /// Check the configuration of the service and the chosen platform,
    /// naming every problem, then check the platform and database answer.
    Doctor,
    /// Create a bot for a meeting and deploy it (or, with --bot, deploy a
    /// pending bot created earlier).
    Deploy(DeployArgs),
    /// Change a scheduled bot before its deploy starts: move its join time
    /// (its deploy time moves with it) or change its display name or
    /// timeouts. Refused (exit 4) once its deploy has started.
    Reschedule(RescheduleArgs),
    /// Stop a bot: the platform stops it and releases what it held. A
    /// scheduled bot is cancelled with nothing started.
    Stop {
        /// The bot's id.
        id: BotId,
    },
    /// Ask a bot to leave its meeting politely: its next heartbeat answers
    /// leave, it reports call_ended (left_on_request) and exits; one that
    /// has not ended within LEAVE_GRACE (default 60 s) is stopped as `stop`
    /// does. A pending bot is stopped at once.
    Leave {
        /// The bot's id.
        id: BotId,
    },
    /// Show bots with what their platform says now, from one batch call:
    /// the given ids, or every active bot. With one id, also its history.
    Status {
        /// Bot ids; none means every deploying, running or stopping bot.
        ids: Vec<BotId>,
    },
    /// List recorded bots, newest last, with filters and pagination.
    List(ListArgs),
    /// Show the warm pools' slots and how many bots are in each state, or
    /// recover a failed slot.
    Pool {
        /// What to do; nothing shows the pools.
        #[command(subcommand)]
        action: Option<PoolAction>,
    },
    /// Show a bot's webhook deliveries: each event, its receiver, state,
    /// attempts (with their answers) and next try.
    Webhooks {
        /// The bot's id.
        id: BotId,
    },
    /// Act on one webhook delivery (ids are shown by `webhooks`).
    Webhook {
        /// What to do.
        #[command(subcommand)]
        action: WebhookAction,
    },
    /// Run the reconciler: sync statuses, finish work a crash left
    /// half-done, release what ended bots held. Runs until SIGTERM/SIGINT.
    Reconcile {
        /// Run one pass and exit.
        #[arg(long)]
        once: bool,
    },
    /// Run the stand-in bot (NOT a real meeting bot): logs its config
    /// without secrets, answers GET /health on 127.0.0.1:$BOT_PORT, exits
    /// after $SIM_BOT_LIFETIME seconds or on SIGTERM/SIGINT. The local
    /// platform runs it by default.
    SimBot,
}

/// `pool`'s actions.
#[derive(Debug, Subcommand)]
pub enum PoolAction {
    /// Return a failed slot to the pool after fixing what made it fail (its
    /// reason is in `meeboter-deploy pool`). Only failed slots are accepted.
    Recover {
        /// The slot's id on the platform (a Coolify application UUID).
        slot: String,
    },
}

/// `webhook`'s actions.
#[derive(Debug, Subcommand)]
pub enum WebhookAction {
    /// Send a pending or failed delivery again now; a failed one gets a
    /// fresh WEBHOOK_MAX_AGE. A delivered one is refused (exit 4).
    Retry {
        /// The delivery's id.
        delivery: i64,
    },
}

/// `deploy`'s arguments.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Deploy this existing pending bot instead of creating one.
    #[arg(long, conflicts_with_all = ["meeting_platform", "meeting_url", "password_stdin", "display_name", "record", "no_deploy", "idempotency_key", "webhook_url", "join_at"])]
    pub bot: Option<BotId>,
    /// zoom, teams or meet.
    #[arg(long, required_unless_present = "bot")]
    pub meeting_platform: Option<String>,
    /// The invite link. A flag is visible to every user in `ps`: for links
    /// with a passcode, set MEEBOTER_MEETING_URL instead.
    #[arg(long)]
    pub meeting_url: Option<String>,
    /// Read the meeting password from the first line of standard input
    /// (otherwise from MEEBOTER_MEETING_PASSWORD, if set). There is no
    /// password flag: flags show in `ps`.
    #[arg(long)]
    pub password_stdin: bool,
    /// The name the bot shows in the meeting (default Meeboter).
    #[arg(long)]
    pub display_name: Option<String>,
    /// Record the meeting.
    #[arg(long)]
    pub record: bool,
    /// When the bot leaves on its own.
    #[command(flatten)]
    pub timeouts: LeaveTimeouts,
    /// Only create the bot (pending); deploy it later with `deploy --bot ID`.
    #[arg(long)]
    pub no_deploy: bool,
    /// Return at once: record the bot's deploy as due now and leave it to
    /// the running `serve` (its scheduler deploys it within a second) or
    /// the next `reconcile`, instead of deploying it here and waiting.
    #[arg(long, conflicts_with_all = ["no_deploy", "wait_for"])]
    pub no_wait: bool,
    /// How long to wait for the bot to be running (or to fail), in
    /// seconds, showing its progress; after that the command ends with the
    /// bot as it is, and the reconciler of `serve` follows it.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub wait_for: u64,
    /// When the bot must be in its meeting (RFC 3339, e.g.
    /// 2026-03-02T10:00:00Z): its deploy starts that much ahead of it that
    /// the slowest platform of PLATFORM_PRIORITY needs (AWS_DEPLOY_LEAD,
    /// …); until then it waits as scheduled, deployed by `serve` (or
    /// `reconcile`).
    #[arg(long)]
    pub join_at: Option<String>,
    /// Queue priority, -1000000 to 1000000 (default 0): when no platform
    /// has room the bot is queued, and higher priorities are placed first.
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    pub priority: i64,
    /// A key that makes retries safe: the same key and request return the
    /// same bot.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// The bot's own webhook receiver (https, public), besides WEBHOOK_URL.
    #[arg(long)]
    pub webhook_url: Option<String>,
}

/// `reschedule`'s arguments.
#[derive(Debug, Args)]
pub struct RescheduleArgs {
    /// The bot's id.
    pub id: BotId,
    /// The new time the bot must be in its meeting (RFC 3339).
    #[arg(long)]
    pub join_at: Option<String>,
    /// The new display name.
    #[arg(long)]
    pub display_name: Option<String>,
    /// New automatic-leave timeouts (the ones given replace the current).
    #[command(flatten)]
    pub timeouts: LeaveTimeouts,
}

/// The automatic-leave timeouts `deploy` sets and `reschedule` changes.
#[derive(Debug, Args)]
pub struct LeaveTimeouts {
    /// Seconds to wait in a waiting room (default 300).
    #[arg(long)]
    pub waiting_room_timeout: Option<u64>,
    /// Seconds to stay when nobody joins (default 300).
    #[arg(long)]
    pub no_one_joined_timeout: Option<u64>,
    /// Seconds to stay after everyone left (default 60).
    #[arg(long)]
    pub everyone_left_timeout: Option<u64>,
}

impl LeaveTimeouts {
    /// The timeouts as the service takes them (unset ones: `None`).
    pub fn input(&self) -> platform_core::AutomaticLeaveInput {
        platform_core::AutomaticLeaveInput {
            waiting_room_timeout: self.waiting_room_timeout,
            no_one_joined_timeout: self.no_one_joined_timeout,
            everyone_left_timeout: self.everyone_left_timeout,
        }
    }

    /// Whether any timeout was given.
    pub fn any(&self) -> bool {
        self.waiting_room_timeout.is_some()
            || self.no_one_joined_timeout.is_some()
            || self.everyone_left_timeout.is_some()
    }
}

/// `list`'s arguments.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only bots in this state.
    #[arg(long, value_parser = parse_state)]
    pub status: Option<BotState>,
    /// Only bots on this platform.
    #[arg(long)]
    pub platform: Option<String>,
    /// Only bots in this meeting status (unknown, joining, in_waiting_room,
    /// in_call, call_ended, fatal).
    #[arg(long, value_parser = parse_meeting_status)]
    pub meeting_status: Option<MeetingStatus>,
    /// At most this many (1 to 500).
    #[arg(long, default_value_t = crate::service::DEFAULT_PAGE_SIZE)]
    pub limit: u32,
    /// Continue after this cursor (printed with the previous page).
    #[arg(long)]
    pub cursor: Option<String>,
}

fn parse_meeting_status(s: &str) -> Result<MeetingStatus, String> {
    s.parse()
        .map_err(|e: crate::meeting::UnknownMeetingStatus| e.to_string())
}

fn parse_state(s: &str) -> Result<BotState, String> {
    s.parse()
        .map_err(|e: crate::bot::UnknownBotState| e.to_string())
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::INTERNAL);
        }
    };
    runtime.block_on(commands::run(cli))
}
