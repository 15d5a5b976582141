//! The API's OpenAPI 3 document, generated from the handlers and types
//! themselves: served at `GET /openapi.json`, printed by
//! `meeboter-deploy openapi`, and written to `docs/openapi.json` by
//! `cargo xtask docs`.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::errors::{ERROR_CODES, ErrorBody, ErrorDetail, FieldProblem};
use super::{bot_protocol, bots, health, metrics, platforms, pool, webhooks};
use crate::webhooks::event::{
    EndedData, MeetingStatusChangedData, StatusChangedData, WebhookEvent,
};

/// Declares the bearer scheme every protected route names.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The service's API_TOKEN (generated and printed at start when unset on a loopback address).",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "bot_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A bot's own token (BOT_TOKEN in its environment), for its own /v1/bot/{id}/… endpoints only; the API_TOKEN is refused there.",
                    ))
                    .build(),
            ),
        );
    }
}

/// Writes the version and the table of error codes into the description,
/// from the same list the code answers with.
struct Description;

impl Modify for Description {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let mut text = String::from(
            "Deploys, tracks and stops meeting bots on the platform this service runs (Coolify, AWS ECS or local processes).\n\n\
             Every endpoint but /healthz, /readyz and /metrics needs `Authorization: Bearer <API_TOKEN>`, \
             except the bot protocol (/v1/bot/{id}/…), which takes only the bot's own `BOT_TOKEN`.\n\n\
             Errors are JSON: `{\"error\": {\"code\", \"message\", \"retryable\", \"retry_after_secs\", \"fields\", \"bot_id\"}}`; \
             retryable ones also carry `Retry-After`. The codes are stable:\n\n\
             | code | status | meaning |\n| --- | --- | --- |\n",
        );
        for (code, status, meaning) in ERROR_CODES {
            text.push_str(&format!("| `{code}` | {status} | {meaning} |\n"));
        }
        openapi.info.description = Some(text);
        openapi.info.version = env!("CARGO_PKG_VERSION").to_owned();
    }
}

/// Lists the platform names the `platform` filter accepts, which depend on
/// the plugins compiled in, as the parameter's enum.
struct PlatformNames;

impl Modify for PlatformNames {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::RefOr;
        use utoipa::openapi::schema::{Object, Schema, Type};
        let names = crate::platforms::known_platform_names();
        for item in openapi.paths.paths.values_mut() {
            for operation in [item.get.as_mut()].into_iter().flatten() {
                for parameter in operation.parameters.iter_mut().flatten() {
                    if parameter.name == "platform" {
                        let mut object = Object::with_type(Type::String);
                        object.enum_values = Some(names.iter().map(|n| (*n).into()).collect());
                        parameter.schema = Some(RefOr::T(Schema::Object(object)));
                    }
                }
            }
        }
    }
}

/// The document's derivation: every handler and the types they use.
#[derive(OpenApi)]
#[openapi(
    info(title = "Meeboter deploy API", license(name = "Apache-2.0")),
    paths(
        bots::create_bot,
        bots::list_bots,
        bots::get_bot,
        bots::update_bot,
        bots::deploy_bot,
        bots::stop_bot,
        bots::leave_bot,
        bots::bot_status,
        bot_protocol::heartbeat,
        bot_protocol::report_event,
        bot_protocol::bot_config,
        platforms::list_platforms,
        pool::pool_summary,
        webhooks::bot_webhooks,
        webhooks::retry_delivery,
        openapi_json,
        health::healthz,
        health::readyz,
        metrics::metrics,
    ),
    components(schemas(
        ErrorBody,
        ErrorDetail,
        FieldProblem,
        WebhookEvent<StatusChangedData>,
        WebhookEvent<MeetingStatusChangedData>,
        WebhookEvent<EndedData>,
    )),
    modifiers(&BearerScheme, &Description, &PlatformNames),
    tags(
        (name = "bots", description = "Create, deploy, stop and inspect meeting bots"),
        (name = "bot protocol", description = "What a bot calls with its own token: heartbeat, meeting-status events, its configuration"),
        (name = "service", description = "The platforms and pools of this service"),
        (name = "webhooks", description = "Status webhooks: each bot's deliveries and their attempts, and sending one again. The bodies POSTed to receivers are the WebhookEvent schemas (type bot.status_changed, bot.meeting_status_changed or bot.ended), signed by the Standard Webhooks specification (webhook-id, webhook-timestamp, webhook-signature headers); see docs/WEBHOOKS.md"),
        (name = "health", description = "Liveness, readiness and metrics, open without a token"),
    )
)]
struct ApiDoc;

/// The OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The OpenAPI document as pretty JSON, as `meeboter-deploy openapi`
/// prints it.
pub fn openapi_json_text() -> String {
    // Serialising a tree of plain data into a String cannot fail; if it
    // ever did, an empty object is still valid JSON for the caller to
    // reject loudly.
    openapi()
        .to_pretty_json()
        .unwrap_or_else(|_| "{}".to_owned())
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "service",
    responses(
        (status = 200, description = "The OpenAPI 3 document of this API", content_type = "application/json", body = Object),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi())
}
