//! What each command does.

use std::io::BufRead;
use std::process::ExitCode;
use std::sync::Arc;

use platform_core::{BotDeploymentInput, EnvLookup, ProcessEnv, SecretString};
use serde::Serialize;

use super::output::{self, Printer};
use super::{Cli, Command, DeployArgs, ListArgs, PoolAction, WebhookAction, exit};
use crate::error::ServiceError;
use crate::service::{BotService, CreateBot, DeployWait, ListQuery, idempotency_key};
use crate::settings::{LOG_LEVEL, MEETING_PASSWORD_ENV, MEETING_URL_ENV, ServiceSettings};
use crate::sim_bot::SimBotConfig;
use crate::startup::open_service;
use crate::store::Store;
use crate::{platforms, telemetry};

pub(super) async fn run(cli: Cli) -> ExitCode {
    let env = ProcessEnv;
    let settings = ServiceSettings::load(&env);
    let printer = Printer {
        json: cli.json,
        log_format: settings
            .as_ref()
            .map_or(crate::settings::LogFormat::Human, |s| s.log_format),
    };
    // One-shot commands print their result; their progress logs would only
    // bury it, so they log warnings only unless LOG_LEVEL asks for more.
    // Long-running ones (the reconciler, the stand-in bot) log at LOG_LEVEL.
    let long_running = matches!(
        cli.command,
        Command::Reconcile { once: false } | Command::SimBot | Command::Serve
    );
    let level = |configured: &str| {
        if long_running || LOG_LEVEL.is_set(&env) {
            configured.to_owned()
        } else {
            "warn".to_owned()
        }
    };
    match &settings {
        Ok(s) => telemetry::init(s.log_format, &level(&s.log_level)),
        Err(_) => telemetry::init(crate::settings::LogFormat::Human, &level("info")),
    }
    let outcome = match cli.command {
        Command::Platforms => platforms_command(&printer, &env, settings.as_ref()).await,
        Command::Openapi => {
            super::serve::openapi();
            Ok(())
        }
        Command::Serve => match settings {
            Ok(settings) => super::serve::serve(&settings).await,
            Err(e) => Err(ServiceError::Config(e)),
        },
        Command::Doctor => return super::doctor::run(&printer, settings).await,
        Command::SimBot => return sim_bot(&printer).await,
        command => match settings {
            Ok(settings) => Box::pin(with_service(&printer, &settings, command)).await,
            Err(e) => Err(ServiceError::Config(e)),
        },
    };
    match outcome {
        Ok(()) => ExitCode::from(exit::OK),
        Err(error) => {
            printer.error(&error);
            ExitCode::from(exit::for_error(&error))
        }
    }
}

async fn platforms_command(
    printer: &Printer,
    env: &dyn EnvLookup,
    settings: Result<&ServiceSettings, &platform_core::Error>,
) -> Result<(), ServiceError> {
    let mut listing = platforms::listing(env)?;
    match settings {
        Ok(settings) => match Store::existing_installation(settings.database_url.expose()).await {
            Ok(Some(id)) => {
                listing.installation_id = Some(id);
                match open_service(settings, Arc::new(ProcessEnv)).await {
                    Ok(service) => {
                        match service.platforms_view().await {
                            Ok(view) => listing.capacity = Some(view),
                            Err(error) => listing.capacity_note = Some(error.to_string()),
                        }
                        service.store().close().await;
                    }
                    Err(error) => {
                        listing.capacity_note = Some(format!(
                            "the platforms cannot be opened to count their bots: {error}"
                        ));
                    }
                }
            }
            Ok(None) => {
                listing.installation_note = Some(
                    "the database does not exist yet; it gets its installation id when serve or a bot command first opens it".into(),
                );
            }
            Err(error) => {
                listing.installation_note = Some(format!("the database cannot be opened: {error}"));
            }
        },
        Err(_) => {
            listing.installation_note =
                Some("the service configuration is invalid; see meeboter-deploy doctor".into());
        }
    }
    printer.print(&listing, output::platforms);
    Ok(())
}

async fn with_service(
    printer: &Printer,
    settings: &ServiceSettings,
    command: Command,
) -> Result<(), ServiceError> {
    // Validate a new bot before touching the database: bad input writes
    // nothing and needs no database.
    let create = match &command {
        Command::Deploy(args) if args.bot.is_none() => Some(create_request(args)?),
        _ => None,
    };
    let service = open_service(settings, Arc::new(ProcessEnv)).await?;
    // A one-shot command ends with its process: capacity it frees is
    // drained by the next reconciler pass, not by a task cut off at exit.
    service.set_background_drain(matches!(command, Command::Reconcile { once: false }));
    let result = Box::pin(run_with_service(
        printer, settings, &service, command, create,
    ))
    .await;
    service.store().close().await;
    result
}

async fn run_with_service(
    printer: &Printer,
    settings: &ServiceSettings,
    service: &BotService,
    command: Command,
    create: Option<CreateBot>,
) -> Result<(), ServiceError> {
    match command {
        Command::Deploy(args) => {
            let wait = if args.no_wait {
                DeployWait::Later
            } else {
                DeployWait::UpTo(std::time::Duration::from_secs(args.wait_for))
            };
            let progress = super::progress::Progress::new(printer.log_format);
            let mut show = |bot: &crate::bot::Bot| progress.show(bot);
            let deployed = match (args.bot, create) {
                (Some(id), _) => service.deploy_with(id, wait, &mut show).await,
                (None, Some(request)) => service
                    .create_bot_with(request, wait, &mut show)
                    .await
                    .map(|created| created.bot),
                (None, None) => unreachable!("the request was built above"),
            };
            progress.finish();
            // A platform call still in flight finishes before the process
            // ends (each is bounded by PLATFORM_CALL_TIMEOUT).
            service.finish_jobs().await;
            let bot = deployed?;
            if wait == DeployWait::Later && bot.status == crate::bot::BotState::Pending {
                telemetry::notice(
                    printer.log_format,
                    tracing::Level::INFO,
                    &format!(
                        "bot {}: its deploy is due now; a running serve deploys it within a second (or the next reconcile)",
                        bot.id
                    ),
                    &[("bot_id", &bot.id.to_string())],
                );
            }
            printer.print(&bot, output::bot);
        }
        Command::Reschedule(args) => {
            let change = crate::service::Reschedule {
                join_at: args.join_at,
                display_name: args.display_name,
                automatic_leave: args.timeouts.any().then(|| args.timeouts.input()),
            };
            let bot = service.reschedule(args.id, change).await?;
            printer.print(&bot, output::bot);
        }
        Command::Stop { id } => {
            let bot = service.stop(id).await?;
            printer.print(&bot, output::bot);
        }
        Command::Leave { id } => {
            let bot = service.leave(id).await?;
            printer.print(&bot, output::bot);
        }
        Command::Status { ids } => {
            if let [id] = ids.as_slice() {
                let live = service.live_status(*id).await?;
                let details = service.get(*id).await?;
                #[derive(Serialize)]
                struct One {
                    #[serde(flatten)]
                    live: crate::service::LiveStatus,
                    history: Vec<crate::bot::HistoryEntry>,
                    meeting_history: Vec<crate::meeting::MeetingHistoryEntry>,
                }
                printer.print(
                    &One {
                        live,
                        history: details.history,
                        meeting_history: details.meeting_history,
                    },
                    |one| output::one_status(&one.live, &one.history, &one.meeting_history),
                );
            } else {
                let ids = (!ids.is_empty()).then_some(ids);
                let statuses = service.live_statuses(ids.as_deref()).await?;
                printer.print(&statuses, |s| output::statuses(s));
            }
        }
        Command::List(args) => {
            let page = service.list(&list_query(args)).await?;
            printer.print(&page, output::page);
        }
        Command::Pool { action: None } => {
            let summary = service.pool_summary().await?;
            printer.print(&summary, output::pool);
        }
        Command::Pool {
            action: Some(PoolAction::Recover { slot }),
        } => {
            let slot = service.recover_slot(&slot).await?;
            printer.print(&slot, |s| {
                format!(
                    "slot {} ({}, {}) is {} again\n",
                    s.slot_id,
                    s.pool,
                    s.meeting_platform,
                    s.state.as_str()
                )
            });
        }
        Command::Webhooks { id } => {
            let webhooks = service.webhooks(id).await?;
            printer.print(&webhooks, output::webhooks);
        }
        Command::Webhook {
            action: WebhookAction::Retry { delivery },
        } => {
            let delivery = service.retry_webhook(delivery).await?;
            printer.print(&delivery, |d| {
                format!(
                    "webhook delivery {} ({} of bot {} to {}) is due now\n",
                    d.id, d.event_type, d.bot_id, d.url
                )
            });
        }
        Command::Reconcile { once: true } => {
            let report = service.reconcile_once().await;
            service.release_sweep_lease().await;
            printer.print(&report?, output::report);
        }
        Command::Reconcile { once: false } => {
            tracing::info!(
                interval_s = settings.reconcile_interval.as_secs(),
                "reconciler running; stop it with SIGTERM or SIGINT"
            );
            service
                .run_reconciler(settings.reconcile_interval, crate::api::terminate_signal())
                .await;
        }
        Command::Platforms
        | Command::Doctor
        | Command::SimBot
        | Command::Serve
        | Command::Openapi => {
            unreachable!("handled without a service")
        }
    }
    Ok(())
}

fn list_query(args: ListArgs) -> ListQuery {
    ListQuery {
        status: args.status,
        platform: args.platform,
        meeting_status: args.meeting_status,
        cursor: args.cursor,
        limit: Some(args.limit),
    }
}

fn create_request(args: &DeployArgs) -> Result<CreateBot, ServiceError> {
    let env = ProcessEnv;
    let meeting_url = args
        .meeting_url
        .clone()
        .or_else(|| MEETING_URL_ENV.lookup(&env).map(|(_, url)| url));
    let url_missing = meeting_url.is_none();
    let platform_missing = args.meeting_platform.is_none();
    let meeting_url = meeting_url.unwrap_or_default();
    let password = if args.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| ServiceError::InvalidQuery {
                parameter: "--password-stdin",
                message: format!("could not read the password from standard input: {e}"),
            })?;
        Some(SecretString::from(
            line.trim_end_matches(['\r', '\n']).to_owned(),
        ))
    } else {
        MEETING_PASSWORD_ENV
            .lookup(&env)
            .map(|(_, p)| SecretString::from(p))
    };
    let input = BotDeploymentInput {
        meeting_platform: args.meeting_platform.clone().unwrap_or_default(),
        meeting_url,
        meeting_password: password,
        display_name: args.display_name.clone(),
        recording_enabled: args.record,
        automatic_leave: args.timeouts.input(),
    };
    // Check before anything is opened or written. What the command line
    // left out is named as the flag (or variable) that gives it.
    input
        .validate(platform_core::BotId(0))
        .map_err(|mut invalid| {
            for error in &mut invalid.errors {
                if error.field == "meeting_url" && url_missing {
                    error.message = format!(
                        "is missing: pass --meeting-url <invite link>, or set {} (which keeps a passcode in the link out of the process list)",
                        MEETING_URL_ENV.name
                    );
                } else if error.field == "meeting_platform" && platform_missing {
                    error.message =
                        "is missing: pass --meeting-platform zoom, teams or meet".into();
                }
            }
            ServiceError::InvalidRequest(invalid)
        })?;
    let idempotency = match &args.idempotency_key {
        Some(key) => {
            // The request as the key's fingerprint sees it: every field,
            // the password only through the digest.
            let body = format!(
                "{}\n{}\n{}\n{:?}\n{}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
                input.meeting_platform,
                input.meeting_url,
                input
                    .meeting_password
                    .as_ref()
                    .map(SecretString::expose)
                    .unwrap_or_default(),
                input.display_name,
                input.recording_enabled,
                input.automatic_leave.waiting_room_timeout,
                input.automatic_leave.no_one_joined_timeout,
                input.automatic_leave.everyone_left_timeout,
                args.webhook_url,
                args.join_at,
            );
            Some(idempotency_key(key, body.as_bytes())?)
        }
        None => None,
    };
    Ok(CreateBot {
        input,
        idempotency,
        deploy: !args.no_deploy,
        priority: args.priority,
        webhook_url: args.webhook_url.clone(),
        join_at: args.join_at.clone(),
    })
}

async fn sim_bot(printer: &Printer) -> ExitCode {
    let config = match SimBotConfig::load(&ProcessEnv) {
        Ok(config) => config,
        Err(e) => {
            let error = ServiceError::Config(e);
            printer.error(&error);
            return ExitCode::from(exit::for_error(&error));
        }
    };
    match crate::sim_bot::run(config).await {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            eprintln!("error: sim-bot could not serve its health check: {e}");
            ExitCode::from(exit::UNAVAILABLE)
        }
    }
}
