//! Every route the API answers, listed once: [`routes`] builds the router
//! from this list, and a test compares the same list with the OpenAPI
//! document, so neither can gain a route the other lacks.

use std::any::Any;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, patch, post};
use tower_http::catch_panic::CatchPanicLayer;

use super::errors::ApiError;
use super::state::ApiState;
use super::{
    auth, bot_protocol, bots, health, metrics, openapi, platforms, pool, request_log, webhooks,
};

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone (health, readiness, metrics).
    Open,
    /// Only with `Authorization: Bearer <API_TOKEN>`.
    Bearer,
    /// Only with the bot's own token, `Authorization: Bearer <BOT_TOKEN>`,
    /// for the bot in the path (the bot protocol).
    Bot,
}

/// One route: method, path template (OpenAPI syntax), access.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The HTTP method.
    pub method: Method,
    /// The path, with `{id}`-style parameters.
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
}

fn route(
    method: Method,
    path: &'static str,
    access: Access,
    handler: MethodRouter<ApiState>,
) -> (Route, MethodRouter<ApiState>) {
    (
        Route {
            method,
            path,
            access,
        },
        handler,
    )
}

/// Every route with its handler. The one list.
pub fn routes() -> Vec<(Route, MethodRouter<ApiState>)> {
    use Access::{Bearer, Bot, Open};
    vec![
        route(Method::POST, "/v1/bots", Bearer, post(bots::create_bot)),
        route(Method::GET, "/v1/bots", Bearer, get(bots::list_bots)),
        route(Method::GET, "/v1/bots/{id}", Bearer, get(bots::get_bot)),
        route(
            Method::PATCH,
            "/v1/bots/{id}",
            Bearer,
            patch(bots::update_bot),
        ),
        route(
            Method::POST,
            "/v1/bots/{id}/deploy",
            Bearer,
            post(bots::deploy_bot),
        ),
        route(
            Method::POST,
            "/v1/bots/{id}/stop",
            Bearer,
            post(bots::stop_bot),
        ),
        route(
            Method::POST,
            "/v1/bots/{id}/leave",
            Bearer,
            post(bots::leave_bot),
        ),
        route(
            Method::GET,
            "/v1/bots/{id}/status",
            Bearer,
            get(bots::bot_status),
        ),
        route(
            Method::POST,
            "/v1/bot/{id}/heartbeat",
            Bot,
            post(bot_protocol::heartbeat),
        ),
        route(
            Method::POST,
            "/v1/bot/{id}/events",
            Bot,
            post(bot_protocol::report_event),
        ),
        route(
            Method::GET,
            "/v1/bot/{id}/config",
            Bot,
            get(bot_protocol::bot_config),
        ),
        route(
            Method::GET,
            "/v1/bots/{id}/webhooks",
            Bearer,
            get(webhooks::bot_webhooks),
        ),
        route(
            Method::POST,
            "/v1/webhooks/{delivery}/retry",
            Bearer,
            post(webhooks::retry_delivery),
        ),
        route(
            Method::GET,
            "/v1/platforms",
            Bearer,
            get(platforms::list_platforms),
        ),
        route(Method::GET, "/v1/pool", Bearer, get(pool::pool_summary)),
        route(
            Method::GET,
            "/openapi.json",
            Bearer,
            get(openapi::openapi_json),
        ),
        route(Method::GET, "/healthz", Open, get(health::healthz)),
        route(Method::GET, "/readyz", Open, get(health::readyz)),
        route(Method::GET, "/metrics", Open, get(metrics::metrics)),
    ]
}

/// The routes without their handlers.
pub fn route_table() -> Vec<Route> {
    routes().into_iter().map(|(route, _)| route).collect()
}

async fn no_such_endpoint() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint; the API is described at GET /openapi.json",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not answer this method; the API is described at GET /openapi.json",
    )
}

/// A panic is a bug; the client still gets a JSON answer and the
/// connection survives. The panic message is logged, never sent: it could
/// hold anything.
fn panic_answer(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    tracing::error!(panic = %message, "a request handler panicked");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        "the service failed unexpectedly (a bug, logged); the request may or may not have taken effect",
    )
    .into_response()
}

/// The API: every route of [`routes`], bearer auth on those that need it,
/// JSON answers for unknown routes and methods, a body limit, panics
/// caught, and each request logged and counted.
pub fn router(state: ApiState, max_body_bytes: usize) -> Router {
    let mut open = Router::new();
    let mut protected = Router::new();
    let mut bots = Router::new();
    for (route, handler) in routes() {
        match route.access {
            Access::Open => open = open.route(route.path, handler),
            Access::Bearer => protected = protected.route(route.path, handler),
            Access::Bot => bots = bots.route(route.path, handler),
        }
    }
    let protected = protected.route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        auth::require_bearer,
    ));
    // Layers run outside-in: the token first, then the bot's smaller
    // body limit, which replaces the API's for these routes.
    let bots = bots
        .route_layer(DefaultBodyLimit::max(bot_protocol::MAX_BOT_BODY_BYTES))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            bot_protocol::require_bot_token,
        ));
    let metrics = Arc::clone(state.service().metrics());
    open.merge(protected)
        .merge(bots)
        .fallback(no_such_endpoint)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(CatchPanicLayer::custom(panic_answer))
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            request_log::log_request,
        ))
        .with_state(state)
}
