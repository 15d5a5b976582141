//! The typed Coolify API client: one method per call the pool makes.
//!
//! Every call goes through [`CoolifyClient::send`], which paces it, sends the
//! bearer token and `Accept: application/json` (without it Laravel answers
//! errors such as 429 in HTML), reads the `X-RateLimit-*` headers, and turns
//! an error answer into an [`ApiError`] with the server's own message, cut
//! to one readable line. What was cut (an HTML error page, the chain of a
//! connection error) goes to the log at debug level, with the token
//! removed and never for a call that carried a bot's secrets. Redirects are
//! not followed: Coolify's API never redirects, and a redirect means the
//! URL points at something else (a login page, an `http` to `https` hop
//! that would turn a POST into a GET). Retrying is the caller's business:
//! only it knows whether a call is safe to repeat.

use std::error::Error as _;
use std::time::Duration;

use platform_core::{BotEnvironment, Error, SecretString};
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, LOCATION, RETRY_AFTER,
};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use url::Url;

use crate::PLATFORM;
use crate::config::CoolifyConfig;
use crate::error::{ApiError, Failure};
use crate::pacer::Pacer;
use crate::wire::{
    Application, BulkEnv, Created, Deployment, DeploymentPage, EnvItem, EnvVar, Environment,
    ErrorBody, NewDockerImageApplication, Project, Rename, Server, StartAnswer,
};
use platform_core::reason::{looks_like_html, one_line, without_os_error};

/// How much of a plain-text error body is kept in a message.
const MAX_PLAIN_ERROR_CHARS: usize = 200;

/// How much of a raw error answer goes to the debug log.
const MAX_LOGGED_BODY_CHARS: usize = 2000;

/// `Accept` for the calls Coolify answers in text (`/version`): JSON first,
/// so that Laravel still renders an error (401, 429) as JSON, then the
/// `text/html` Coolify's success answer actually carries. A server that
/// negotiates strictly can satisfy it; `application/json` alone it cannot.
const ACCEPT_TEXT: &str = "application/json, text/html;q=0.9, text/plain;q=0.8";

/// Whether a request's body carries a bot's secrets, so that nothing the
/// server echoes back is logged.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Echo {
    /// The raw error answer may be logged (token removed).
    Loggable,
    /// The request carried meeting URLs or passwords: an error page that
    /// echoes the request would show them, so its body is not logged.
    Secret,
}

/// What `GET /version` answered, whatever it was: how the setup checks tell
/// Coolify from another web server at the configured URL.
#[derive(Clone, Debug)]
pub(crate) struct VersionAnswer {
    /// The HTTP status.
    pub status: StatusCode,
    /// Where a redirect pointed.
    pub location: Option<String>,
    /// The body (the token removed).
    pub body: String,
    /// `Retry-After`, on a 429.
    pub retry_after: Option<Duration>,
}
/// A Coolify API client. Cheap to share behind a reference; the pacer is
/// shared by every call made through it.
#[derive(Debug)]
pub(crate) struct CoolifyClient {
    http: reqwest::Client,
    base: Url,
    pacer: Pacer,
    request_timeout: Duration,
    /// Kept only to remove it from raw answers before they are logged.
    api_key: SecretString,
}

impl CoolifyClient {
    /// A client for `config.api_url` with its token, timeouts and pacing.
    pub(crate) fn new(config: &CoolifyConfig) -> Result<Self, Error> {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let mut bearer = HeaderValue::from_str(&format!("Bearer {}", config.api_key.expose()))
            .map_err(|_| Error::Config {
                platform: PLATFORM,
                problems: vec![platform_core::ConfigProblem::new(
                    crate::config::COOLIFY_API_KEY.name,
                    "contains characters that cannot be sent in an HTTP header",
                )],
            })?;
        // Keeps the token out of any Debug output of the headers.
        bearer.set_sensitive(true);
        headers.insert(AUTHORIZATION, bearer);
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(headers)
            .user_agent(concat!("meeboter-deploy/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .build()
            .map_err(|e| Error::Internal {
                platform: PLATFORM,
                resource: "HTTP client".into(),
                message: error_chain(&e),
            })?;
        Ok(Self {
            http,
            base: config.api_url.clone(),
            pacer: Pacer::new(config.pacing),
            request_timeout: config.request_timeout,
            api_key: config.api_key.clone(),
        })
    }

    /// How fast this client's pacer lets bots start (see
    /// [`Pacer::deploy_pace`]).
    pub(crate) fn deploy_pace(
        &self,
        calls_per_deploy: u32,
        typical_start: Duration,
    ) -> platform_core::DeployPace {
        self.pacer.deploy_pace(calls_per_deploy, typical_start)
    }

    /// The API base, for messages.
    pub(crate) fn base(&self) -> &Url {
        &self.base
    }

    /// `base` + path segments, each percent-encoded.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn request(&self, method: Method, segments: &[&str]) -> RequestBuilder {
        self.http.request(method, self.url(segments))
    }

    /// Paces and sends one request and reads the rate-limit headers of
    /// whatever answered. Fails only when no answer came.
    async fn exchange(
        &self,
        resource: &str,
        request: RequestBuilder,
    ) -> Result<Response, ApiError> {
        self.pacer.acquire().await;
        let response = request.send().await.map_err(|e| {
            tracing::debug!(
                platform = PLATFORM,
                resource,
                error = %error_chain(&e),
                "a Coolify request failed without an answer"
            );
            let summary = summarise_transport(&e, &self.base);
            // A failed connection is checked first: a connect timeout is
            // both, and it provably sent nothing.
            let failure = if e.is_connect() {
                Failure::Connect(summary)
            } else if e.is_timeout() {
                Failure::Timeout(self.request_timeout)
            } else {
                Failure::Transport(summary)
            };
            ApiError::new(resource, failure)
        })?;
        // A 429's `Retry-After` says exactly when the server's window
        // starts again; its "0 remaining" is read there instead.
        if response.status() != StatusCode::TOO_MANY_REQUESTS {
            self.pacer.observe_limits(
                header_number(response.headers(), "x-ratelimit-limit"),
                header_number(response.headers(), "x-ratelimit-remaining"),
            );
        }
        Ok(response)
    }

    /// Paces and sends one request; any answer but a success becomes an
    /// [`ApiError`].
    async fn send(&self, resource: &str, request: RequestBuilder) -> Result<Response, ApiError> {
        self.send_checked(resource, request, Echo::Loggable).await
    }

    async fn send_checked(
        &self,
        resource: &str,
        request: RequestBuilder,
        echo: Echo,
    ) -> Result<Response, ApiError> {
        let response = self.exchange(resource, request).await?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let retry_after = retry_after(status, response.headers());
        if status == StatusCode::TOO_MANY_REQUESTS {
            self.pacer.throttled(retry_after);
        }
        let content_type = header_text(response.headers(), CONTENT_TYPE.as_str());
        let location = header_text(response.headers(), LOCATION.as_str());
        let is_json = content_type.as_deref().is_some_and(|v| v.contains("json"));
        let body = response.text().await.unwrap_or_default();
        if echo == Echo::Loggable {
            tracing::debug!(
                platform = PLATFORM,
                resource,
                status = status.as_u16(),
                content_type = content_type.as_deref().unwrap_or_default(),
                body = %self.loggable(&body),
                "Coolify answered an error"
            );
        } else {
            tracing::debug!(
                platform = PLATFORM,
                resource,
                status = status.as_u16(),
                content_type = content_type.as_deref().unwrap_or_default(),
                body_bytes = body.len(),
                "Coolify answered an error (its body is not logged: the request carried a bot's secrets)"
            );
        }
        let message = serde_json::from_str::<ErrorBody>(&body)
            .ok()
            .and_then(|b| b.describe())
            .unwrap_or_else(|| plain_message(status, &body, is_json, location.as_deref()));
        Err(ApiError::new(
            resource,
            Failure::Status {
                code: status.as_u16(),
                message,
                retry_after,
            },
        ))
    }

    /// A raw answer as it may be logged: cut, and without the token (a
    /// debug page of the server may echo the request's headers).
    fn loggable(&self, body: &str) -> String {
        let cut: String = body.chars().take(MAX_LOGGED_BODY_CHARS).collect();
        let token = self.api_key.expose();
        if token.is_empty() {
            cut
        } else {
            cut.replace(token, "[redacted]")
        }
    }

    async fn send_json<T: DeserializeOwned>(
        &self,
        resource: &str,
        request: RequestBuilder,
    ) -> Result<T, ApiError> {
        let response = self.send(resource, request).await?;
        let bytes = response.bytes().await.map_err(|e| {
            ApiError::new(
                resource,
                Failure::Transport(summarise_transport(&e, &self.base)),
            )
        })?;
        serde_json::from_slice(&bytes).map_err(|e| {
            tracing::debug!(
                platform = PLATFORM,
                resource,
                body = %self.loggable(&String::from_utf8_lossy(&bytes)),
                error = %e,
                "a success answer that is not the JSON Coolify sends"
            );
            ApiError::new(resource, Failure::Body(unreadable(&bytes, &e)))
        })
    }

    /// `GET /applications`: every application the token's team can see.
    pub(crate) async fn list_applications(&self) -> Result<Vec<Application>, ApiError> {
        self.send_json("applications", self.request(Method::GET, &["applications"]))
            .await
    }

    /// `GET /applications/{uuid}`.
    pub(crate) async fn get_application(&self, uuid: &str) -> Result<Application, ApiError> {
        self.send_json(
            &format!("application {uuid}"),
            self.request(Method::GET, &["applications", uuid]),
        )
        .await
    }

    /// `GET /projects/{uuid}/environments`.
    pub(crate) async fn list_environments(
        &self,
        project_uuid: &str,
    ) -> Result<Vec<Environment>, ApiError> {
        self.send_json(
            &format!("environments of project {project_uuid}"),
            self.request(Method::GET, &["projects", project_uuid, "environments"]),
        )
        .await
    }

    /// `POST /applications/dockerimage`. Not idempotent: see the pool for
    /// how a failure that may have created the application is reconciled.
    pub(crate) async fn create_docker_image_application(
        &self,
        body: &NewDockerImageApplication,
    ) -> Result<Created, ApiError> {
        self.send_json(
            &format!("new application {}", body.name),
            self.request(Method::POST, &["applications", "dockerimage"])
                .json(body),
        )
        .await
    }

    /// `GET /applications/{uuid}/envs`.
    pub(crate) async fn list_envs(&self, uuid: &str) -> Result<Vec<EnvVar>, ApiError> {
        self.send_json(
            &format!("environment variables of application {uuid}"),
            self.request(Method::GET, &["applications", uuid, "envs"]),
        )
        .await
    }

    /// `PATCH /applications/{uuid}/envs/bulk` with `{"data": […]}`: creates
    /// or updates every variable of `env` (runtime, not preview). Secret
    /// values are marked shown-once so the Coolify UI hides them.
    pub(crate) async fn upsert_envs(
        &self,
        uuid: &str,
        env: &BotEnvironment,
    ) -> Result<(), ApiError> {
        let body = BulkEnv {
            data: env
                .iter()
                .map(|var| EnvItem {
                    key: var.name(),
                    value: var.value(),
                    is_preview: false,
                    is_literal: true,
                    is_multiline: false,
                    is_shown_once: var.is_secret(),
                })
                .collect(),
        };
        self.send_checked(
            &format!("environment variables of application {uuid}"),
            self.request(Method::PATCH, &["applications", uuid, "envs", "bulk"])
                .json(&body),
            Echo::Secret,
        )
        .await
        .map(drop)
    }

    /// `DELETE /applications/{uuid}/envs/{env_uuid}`.
    pub(crate) async fn delete_env(
        &self,
        uuid: &str,
        env_uuid: &str,
        key: &str,
    ) -> Result<(), ApiError> {
        self.send(
            &format!("environment variable {key} of application {uuid}"),
            self.request(Method::DELETE, &["applications", uuid, "envs", env_uuid]),
        )
        .await
        .map(drop)
    }

    /// `POST /applications/{uuid}/start`: queues a deployment, which for a
    /// docker-image application (re)creates the container with the current
    /// environment.
    pub(crate) async fn start_application(&self, uuid: &str) -> Result<StartAnswer, ApiError> {
        self.send_json(
            &format!("application {uuid}"),
            self.request(Method::POST, &["applications", uuid, "start"]),
        )
        .await
    }

    /// `POST /applications/{uuid}/stop?docker_cleanup=false`. The Docker
    /// cleanup Coolify runs by default prunes unused images, which would
    /// throw away the cached bot image that makes a warm slot fast.
    pub(crate) async fn stop_application(&self, uuid: &str) -> Result<(), ApiError> {
        self.send(
            &format!("application {uuid}"),
            self.request(Method::POST, &["applications", uuid, "stop"])
                .query(&[("docker_cleanup", "false")]),
        )
        .await
        .map(drop)
    }

    /// `DELETE /applications/{uuid}` with its configuration, volumes and
    /// networks.
    pub(crate) async fn delete_application(&self, uuid: &str) -> Result<(), ApiError> {
        self.send(
            &format!("application {uuid}"),
            self.request(Method::DELETE, &["applications", uuid])
                .query(&[
                    ("delete_configurations", "true"),
                    ("delete_volumes", "true"),
                    ("docker_cleanup", "true"),
                    ("delete_connected_networks", "true"),
                ]),
        )
        .await
        .map(drop)
    }

    /// `GET /deployments/{uuid}`.
    pub(crate) async fn get_deployment(&self, uuid: &str) -> Result<Deployment, ApiError> {
        self.send_json(
            &format!("deployment {uuid}"),
            self.request(Method::GET, &["deployments", uuid]),
        )
        .await
    }

    /// `GET /deployments`: the deployments queued or in progress on the
    /// team's servers.
    pub(crate) async fn list_running_deployments(&self) -> Result<Vec<Deployment>, ApiError> {
        self.send_json(
            "running deployments",
            self.request(Method::GET, &["deployments"]),
        )
        .await
    }

    /// The newest deployment of an application
    /// (`GET /deployments/applications/{uuid}?skip=0&take=1`).
    pub(crate) async fn latest_deployment(
        &self,
        app_uuid: &str,
    ) -> Result<Option<Deployment>, ApiError> {
        let page: DeploymentPage = self
            .send_json(
                &format!("deployments of application {app_uuid}"),
                self.request(Method::GET, &["deployments", "applications", app_uuid])
                    .query(&[("skip", "0"), ("take", "1")]),
            )
            .await?;
        Ok(page.deployments.into_iter().next())
    }

    /// `GET /projects`: the projects the token's team can see.
    pub(crate) async fn list_projects(&self) -> Result<Vec<Project>, ApiError> {
        self.send_json("projects", self.request(Method::GET, &["projects"]))
            .await
    }

    /// `GET /servers`: the servers the token's team can see.
    pub(crate) async fn list_servers(&self) -> Result<Vec<Server>, ApiError> {
        self.send_json("servers", self.request(Method::GET, &["servers"]))
            .await
    }

    /// `GET /servers/{uuid}`.
    pub(crate) async fn get_server(&self, uuid: &str) -> Result<Server, ApiError> {
        self.send_json(
            &format!("server {uuid}"),
            self.request(Method::GET, &["servers", uuid]),
        )
        .await
    }

    /// `PATCH /applications/{uuid}` with a new name. Idempotent.
    pub(crate) async fn rename_application(&self, uuid: &str, name: &str) -> Result<(), ApiError> {
        self.send(
            &format!("application {uuid}"),
            self.request(Method::PATCH, &["applications", uuid])
                .json(&Rename { name }),
        )
        .await
        .map(drop)
    }

    /// `GET /version`, whatever answers: Coolify answers its version in
    /// plain text (needs the `read` ability); another web server at the
    /// configured URL answers something else, which the setup checks
    /// describe. Fails only when nothing answered.
    pub(crate) async fn probe_version(&self) -> Result<VersionAnswer, ApiError> {
        let resource = "Coolify version";
        let response = self
            .exchange(
                resource,
                self.request(Method::GET, &["version"])
                    .header(ACCEPT, ACCEPT_TEXT),
            )
            .await?;
        let status = response.status();
        let headers = response.headers();
        let content_type = header_text(headers, CONTENT_TYPE.as_str());
        let location = header_text(headers, LOCATION.as_str());
        let retry_after = retry_after(status, headers);
        if status == StatusCode::TOO_MANY_REQUESTS {
            self.pacer.throttled(retry_after);
        }
        let body = response.text().await.map_err(|e| {
            ApiError::new(
                resource,
                Failure::Transport(summarise_transport(&e, &self.base)),
            )
        })?;
        let body = self.loggable(&body);
        tracing::debug!(
            platform = PLATFORM,
            status = status.as_u16(),
            content_type = content_type.as_deref().unwrap_or_default(),
            body = %body,
            "GET /version answered"
        );
        Ok(VersionAnswer {
            status,
            location,
            body,
            retry_after,
        })
    }
}

fn header_number(headers: &HeaderMap, name: &str) -> Option<u32> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    Some(headers.get(name)?.to_str().ok()?.trim().to_owned())
}

/// `Retry-After` of a 429, in whole seconds as Laravel sends it.
fn retry_after(status: StatusCode, headers: &HeaderMap) -> Option<Duration> {
    (status == StatusCode::TOO_MANY_REQUESTS)
        .then(|| header_number(headers, RETRY_AFTER.as_str()))
        .flatten()
        .map(|secs| Duration::from_secs(u64::from(secs)))
}

/// A reqwest error with all its causes, for the debug log. The URL it
/// names holds nothing secret: the token travels only in a header.
fn error_chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A reqwest error as one sentence an operator can act on (`could not
/// connect to coolify.example.com:443: connection refused`), instead of its
/// chain of wrappers (`error sending request for url (…): client error
/// (Connect): tcp connect error: …`).
fn summarise_transport(error: &reqwest::Error, base: &Url) -> String {
    let url = error.url().unwrap_or(base);
    let host = url.host_str().unwrap_or("the Coolify host");
    let address = match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    let mut causes = Vec::new();
    let mut source = error.source();
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    let root = causes
        .last()
        .map(|c| without_os_error(c))
        .unwrap_or_default();
    let all = causes.join(" ").to_ascii_lowercase();
    let with_root = |text: String| {
        if root.is_empty() {
            text
        } else {
            format!("{text}: {root}")
        }
    };
    if error.is_connect() {
        if all.contains("dns error") || all.contains("failed to lookup") {
            with_root(format!("the name {host} could not be resolved"))
        } else if ["certificate", "tls", "handshake", "alert"]
            .iter()
            .any(|w| all.contains(w))
        {
            with_root(format!("the TLS handshake with {address} failed"))
        } else if error.is_timeout() || all.contains("timed out") {
            format!("could not connect to {address} in time")
        } else {
            with_root(format!("could not connect to {address}"))
        }
    } else if error.is_timeout() {
        format!("no answer from {address} in time")
    } else if error.is_body() || error.is_decode() {
        with_root(format!("the answer from {address} broke off"))
    } else {
        with_root(format!(
            "the connection to {address} failed after the request was sent"
        ))
    }
}

/// Why a success answer could not be read, for an operator: an HTML page
/// (the URL points at a web site, a login page, a proxy), JSON of another
/// shape, or no JSON at all.
fn unreadable(bytes: &[u8], error: &serde_json::Error) -> String {
    let text = String::from_utf8_lossy(bytes);
    if text.trim().is_empty() {
        "the answer was empty where Coolify sends JSON".to_owned()
    } else if looks_like_html(&text) {
        "the answer was an HTML page where Coolify's API sends JSON; COOLIFY_API_URL may point at something that is not Coolify's API".to_owned()
    } else if serde_json::from_slice::<serde_json::Value>(bytes).is_ok() {
        format!("the answer is JSON but not what Coolify sends ({error})")
    } else {
        format!("the answer is not JSON: {}", one_line(&text, 80))
    }
}

/// The message of an error answer that is not Coolify's JSON: an HTML page
/// from a proxy or from Laravel is reduced to its status line, a redirect
/// says where it points, plain text is kept (cut).
fn plain_message(status: StatusCode, body: &str, is_json: bool, location: Option<&str>) -> String {
    let reason = status.canonical_reason().unwrap_or("error");
    let body = body.trim();
    if status.is_redirection() {
        return match location {
            Some(to) => format!("{reason}, redirecting to {}", one_line(to, 120)),
            None => reason.to_owned(),
        };
    }
    if body.starts_with('<') {
        format!("{reason} (the answer was an HTML page)")
    } else if body.is_empty() || is_json {
        reason.to_owned()
    } else {
        format!("{reason}: {}", one_line(body, MAX_PLAIN_ERROR_CHARS))
    }
}

#[cfg(test)]
mod tests {
    use platform_core::SecretString;

    use super::*;

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let config = CoolifyConfig::new(
            "https://coolify.example.com",
            SecretString::new("5|t0ken-never-printed"),
            "p",
            "s",
        )
        .unwrap();
        let client = CoolifyClient::new(&config).unwrap();
        let shown = format!("{client:?} {config:?}");
        assert!(!shown.contains("t0ken-never-printed"), "{shown}");
        assert_eq!(
            client.url(&["applications", "a b", "start"]).as_str(),
            "https://coolify.example.com/api/v1/applications/a%20b/start"
        );
    }

    #[test]
    fn non_json_error_bodies_are_reduced() {
        assert_eq!(
            plain_message(StatusCode::BAD_GATEWAY, "<html>nginx</html>", false, None),
            "Bad Gateway (the answer was an HTML page)"
        );
        assert_eq!(
            plain_message(StatusCode::SERVICE_UNAVAILABLE, "maintenance", false, None),
            "Service Unavailable: maintenance"
        );
        assert_eq!(
            plain_message(StatusCode::NOT_FOUND, "", false, None),
            "Not Found"
        );
        assert_eq!(
            plain_message(
                StatusCode::FOUND,
                "",
                false,
                Some("https://coolify.example.com/login")
            ),
            "Found, redirecting to https://coolify.example.com/login"
        );
        let long = "maintenance until tomorrow ".repeat(30);
        let message = plain_message(StatusCode::SERVICE_UNAVAILABLE, &long, false, None);
        assert!(message.ends_with('…'), "{message}");
        assert!(message.chars().count() < 240, "{message}");
    }

    #[test]
    fn unreadable_answers_say_what_came_instead() {
        let error = serde_json::from_str::<Vec<u8>>("{}").unwrap_err();
        assert!(unreadable(b"<!DOCTYPE html><html></html>", &error).contains("HTML page"));
        assert!(unreadable(b"{\"ok\":true}", &error).contains("JSON but not what Coolify sends"));
        assert!(unreadable(b"", &error).contains("empty"));
        assert!(unreadable(b"hello", &error).contains("not JSON: hello"));
    }
}
