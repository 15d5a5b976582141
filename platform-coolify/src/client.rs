//! The typed Coolify API client: one method per call the pool makes.
//!
//! Every call goes through [`CoolifyClient::send`], which paces it, sends the
//! bearer token and `Accept: application/json` (without it Laravel answers
//! errors such as 429 in HTML), reads the `X-RateLimit-*` headers, and turns
//! an error answer into an [`ApiError`] with the server's own message.
//! Retrying is the caller's business: only it knows whether a call is safe
//! to repeat.

use std::error::Error as _;
use std::time::Duration;

use platform_core::{BotEnvironment, Error};
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use url::Url;

use crate::PLATFORM;
use crate::config::CoolifyConfig;
use crate::error::{ApiError, Failure};
use crate::pacer::Pacer;
use crate::wire::{
    Application, BulkEnv, Created, Deployment, DeploymentPage, EnvItem, EnvVar, Environment,
    ErrorBody, NewDockerImageApplication, StartAnswer,
};

/// How much of a non-JSON error body is kept in a message.
const MAX_PLAIN_ERROR_CHARS: usize = 200;

/// A Coolify API client. Cheap to share behind a reference; the pacer is
/// shared by every call made through it.
#[derive(Debug)]
pub(crate) struct CoolifyClient {
    http: reqwest::Client,
    base: Url,
    pacer: Pacer,
    request_timeout: Duration,
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
            .default_headers(headers)
            .user_agent(concat!("meeboter-deploy/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .build()
            .map_err(|e| Error::Internal {
                platform: PLATFORM,
                resource: "HTTP client".into(),
                message: describe(&e),
            })?;
        Ok(Self {
            http,
            base: config.api_url.clone(),
            pacer: Pacer::new(config.pacing),
            request_timeout: config.request_timeout,
        })
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

    /// Paces and sends one request; any answer but a success becomes an
    /// [`ApiError`].
    async fn send(&self, resource: &str, request: RequestBuilder) -> Result<Response, ApiError> {
        self.pacer.acquire().await;
        let response = request.send().await.map_err(|e| {
            let failure = if e.is_timeout() {
                Failure::Timeout(self.request_timeout)
            } else if e.is_connect() {
                Failure::Connect(describe(&e))
            } else {
                Failure::Transport(describe(&e))
            };
            ApiError::new(resource, failure)
        })?;
        self.pacer.observe_limits(
            header_number(response.headers(), "x-ratelimit-limit"),
            header_number(response.headers(), "x-ratelimit-remaining"),
        );
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let retry_after = (status == StatusCode::TOO_MANY_REQUESTS)
            .then(|| header_number(response.headers(), RETRY_AFTER.as_str()))
            .flatten()
            .map(|secs| Duration::from_secs(u64::from(secs)));
        if let Some(after) = retry_after {
            self.pacer.hold_for(after);
        }
        let is_json = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("json"));
        let body = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<ErrorBody>(&body)
            .ok()
            .and_then(|b| b.describe())
            .unwrap_or_else(|| plain_message(status, &body, is_json));
        Err(ApiError::new(
            resource,
            Failure::Status {
                code: status.as_u16(),
                message,
                retry_after,
            },
        ))
    }

    async fn send_json<T: DeserializeOwned>(
        &self,
        resource: &str,
        request: RequestBuilder,
    ) -> Result<T, ApiError> {
        let response = self.send(resource, request).await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ApiError::new(resource, Failure::Transport(describe(&e))))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::new(
                resource,
                Failure::Body(format!("could not read Coolify's answer: {e}")),
            )
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
        self.send(
            &format!("environment variables of application {uuid}"),
            self.request(Method::PATCH, &["applications", uuid, "envs", "bulk"])
                .json(&body),
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

    /// `GET /version`: plain text such as `4.3.11`; needs the `read` ability.
    pub(crate) async fn version(&self) -> Result<String, ApiError> {
        let resource = "Coolify version";
        let response = self
            .send(resource, self.request(Method::GET, &["version"]))
            .await?;
        let text = response
            .text()
            .await
            .map_err(|e| ApiError::new(resource, Failure::Transport(describe(&e))))?;
        Ok(text.trim().to_owned())
    }
}

fn header_number(headers: &HeaderMap, name: &str) -> Option<u32> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// A reqwest error with its causes (`connection refused`). The URL it names
/// holds nothing secret: the token travels only in a header.
fn describe(error: &reqwest::Error) -> String {
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

/// The message of an error answer that is not Coolify's JSON: an HTML page
/// from a proxy or from Laravel is reduced to its status line.
fn plain_message(status: StatusCode, body: &str, is_json: bool) -> String {
    let reason = status.canonical_reason().unwrap_or("error");
    let body = body.trim();
    let looks_like_html = body.starts_with('<');
    if body.is_empty() || looks_like_html || is_json {
        reason.to_owned()
    } else {
        let short: String = body.chars().take(MAX_PLAIN_ERROR_CHARS).collect();
        format!("{reason}: {short}")
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
            plain_message(StatusCode::BAD_GATEWAY, "<html>nginx</html>", false),
            "Bad Gateway"
        );
        assert_eq!(
            plain_message(StatusCode::SERVICE_UNAVAILABLE, "maintenance", false),
            "Service Unavailable: maintenance"
        );
        assert_eq!(plain_message(StatusCode::NOT_FOUND, "", false), "Not Found");
    }
}
