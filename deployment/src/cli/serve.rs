//! `meeboter-deploy serve` (the HTTP API and the reconciler, until SIGTERM
//! or SIGINT) and `meeboter-deploy openapi` (the API's document).

use std::sync::Arc;

use platform_core::{ConfigProblem, ProcessEnv};
use tracing::Level;

use crate::api::{self, ServeOptions, TokenChoice};
use crate::error::ServiceError;
use crate::settings::{LISTEN_ADDR, LogFormat, ServiceSettings};
use crate::startup::open_service;
use crate::telemetry;

/// Prints the OpenAPI document on standard output.
pub(super) fn openapi() {
    super::output::write_stdout(&format!("{}\n", api::openapi_json_text()));
}

/// Runs the API until SIGTERM or SIGINT.
pub(super) async fn serve(settings: &ServiceSettings) -> Result<(), ServiceError> {
    // Decide on the token before touching anything: a public address
    // without one must not even open the database.
    let choice = api::choose_token(settings.listen_addr, settings.api_token.as_ref())?;
    let listener = match tokio::net::TcpListener::bind(settings.listen_addr).await {
        Ok(listener) => listener,
        Err(error) => {
            return Err(ServiceError::Config(platform_core::Error::Config {
                platform: "service",
                problems: vec![ConfigProblem::new(
                    LISTEN_ADDR.name,
                    format!(
                        "cannot listen on {}: {error}; choose another address or port",
                        settings.listen_addr
                    ),
                )],
            }));
        }
    };
    let address = listener.local_addr().unwrap_or(settings.listen_addr);
    // Bound first, so local bots are told the real address (port 0 asks
    // the system for a free one).
    let settings = &ServiceSettings {
        listen_addr: address,
        ..settings.clone()
    };
    let service = open_service(settings, Arc::new(ProcessEnv)).await?;
    for platform in service.platform_names() {
        if let Err(problem) = settings.bot_api_url_for(platform) {
            service.store().close().await;
            return Err(ServiceError::Config(platform_core::Error::Config {
                platform: "service",
                problems: vec![problem],
            }));
        }
    }
    let token = match choice {
        TokenChoice::Configured(token) => token,
        TokenChoice::Generated(token, value) => {
            // Printed once, on standard error only, never logged: the
            // operator copies it from here.
            let format = settings.log_format;
            match format {
                LogFormat::Human => telemetry::notice(
                    format,
                    Level::WARN,
                    &format!(
                        "\nAPI_TOKEN is not set, so this run uses a generated token (valid until the service stops):\n\n    {}\n\nSend it with every request: -H 'Authorization: Bearer <token>'. Set API_TOKEN to choose your own.\n",
                        value.expose()
                    ),
                    &[],
                ),
                LogFormat::Json => telemetry::notice(
                    format,
                    Level::WARN,
                    "API_TOKEN is not set, so this run uses the generated token in api_token (valid until the service stops); send it as Authorization: Bearer <token>, or set API_TOKEN to choose your own",
                    &[("api_token", value.expose())],
                ),
            }
            token
        }
    };
    telemetry::notice(
        settings.log_format,
        Level::INFO,
        &format!(
            "meeboter-deploy: listening on http://{address} (platform {}); stop with Ctrl-C or SIGTERM",
            service.platform_name()
        ),
        &[("address", &address.to_string())],
    );
    tracing::info!(%address, platform = service.platform_name(), "API listening");
    let webhook_worker = match crate::webhooks::worker_for(&settings.webhooks, service.store()) {
        Ok(worker) => worker,
        Err(error) => {
            service.store().close().await;
            return Err(error);
        }
    };
    let options = ServeOptions {
        reconcile_interval: settings.reconcile_interval,
        shutdown_grace: settings.shutdown_grace,
        max_body_bytes: settings.api_max_body_bytes,
        webhook_worker,
    };
    let served = api::serve(
        listener,
        service.clone(),
        token,
        options,
        api::terminate_signal(),
    )
    .await;
    service.store().close().await;
    served.map_err(|error| ServiceError::Server(error.to_string()))
}
