//! What answers at the configured URL, and whether what a deploy needs is
//! there: for `doctor` ([`check_setup`]), for readiness ([`identify`]), and
//! for start-up errors that would otherwise mislead (a URL that serves some
//! other web site must not read as "no such project").

use platform_core::{ConfigProblem, Error, ErrorKind, InstallationId, MeetingPlatform, SetupCheck};
use reqwest::StatusCode;

use crate::PLATFORM;
use crate::client::{CoolifyClient, VersionAnswer};
use crate::config::{
    COOLIFY_API_KEY, COOLIFY_API_URL, COOLIFY_ENVIRONMENT_NAME, COOLIFY_PROJECT_UUID,
    COOLIFY_SERVER_UUID, CoolifyConfig, image_variable, pool_max_variable,
};
use crate::error::{ApiError, Failure};
use crate::naming::SlotName;
use crate::retrying::idempotent;
use crate::wire::{Application, ErrorBody};
use platform_core::reason::{looks_like_html, one_line};

/// What answered `GET /version` at the configured URL.
#[derive(Debug)]
pub(crate) enum Identity {
    /// Coolify's API, with its version.
    Coolify {
        /// `4.3.11`.
        version: String,
    },
    /// Coolify's API (its JSON error), refusing the token or this host.
    Refused {
        /// The HTTP status.
        status: u16,
        /// Coolify's message (`Unauthenticated.`, `API is disabled.`).
        message: String,
    },
    /// Something that is not Coolify's API; says what it answered.
    NotCoolify(String),
    /// No verdict: nothing answered, or a server error or throttling.
    Unknown(Error),
}

impl Identity {
    /// The identity as the answer to "can Coolify be used?".
    pub(crate) fn into_result(self, client: &CoolifyClient) -> Result<String, Error> {
        match self {
            Self::Coolify { version } => Ok(version),
            Self::Refused { status, message } => Err(Error::Unauthorized {
                platform: PLATFORM,
                resource: "Coolify API".into(),
                message: format!("HTTP {status}: {}", one_line(&message, 200)),
            }),
            Self::NotCoolify(what) => Err(not_coolify(client, &what)),
            Self::Unknown(error) => Err(error),
        }
    }
}

/// Asks `GET /version` and says what answered.
pub(crate) async fn identify(client: &CoolifyClient) -> Identity {
    match client.probe_version().await {
        Ok(answer) => classify(&answer),
        Err(error) => Identity::Unknown(error.into()),
    }
}

fn classify(answer: &VersionAnswer) -> Identity {
    let status = answer.status;
    let body = answer.body.trim();
    let code = status.as_u16();
    let kind_of_body = || {
        if body.is_empty() {
            "an empty answer".to_owned()
        } else if looks_like_html(body) {
            "an HTML page".to_owned()
        } else if serde_json::from_str::<serde_json::Value>(body).is_ok() {
            format!("JSON that is not Coolify's ({})", one_line(body, 80))
        } else {
            format!("{:?}", one_line(body, 60))
        }
    };
    if status.is_success() {
        return if is_version(body) {
            Identity::Coolify {
                version: body.to_owned(),
            }
        } else {
            Identity::NotCoolify(format!(
                "answered HTTP {code} with {} instead of Coolify's version",
                kind_of_body()
            ))
        };
    }
    if status.is_redirection() {
        return Identity::NotCoolify(format!(
            "answered HTTP {code}, redirecting to {} (Coolify's API does not redirect)",
            answer.location.as_deref().unwrap_or("nowhere")
        ));
    }
    let coolify_message = serde_json::from_str::<ErrorBody>(body)
        .ok()
        .and_then(|b| b.describe());
    match (status, coolify_message) {
        (
            StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN,
            Some(message),
        ) => Identity::Refused {
            status: code,
            message,
        },
        (StatusCode::TOO_MANY_REQUESTS, message) => Identity::Unknown(
            ApiError::new(
                "Coolify version",
                Failure::Status {
                    code,
                    message: message.unwrap_or_else(|| "Too Many Requests".into()),
                    retry_after: answer.retry_after,
                },
            )
            .into(),
        ),
        (s, message) if s.is_server_error() => Identity::Unknown(
            ApiError::new(
                "Coolify version",
                Failure::Status {
                    code,
                    message: message.unwrap_or_else(|| {
                        format!(
                            "{} ({})",
                            s.canonical_reason().unwrap_or("server error"),
                            kind_of_body()
                        )
                    }),
                    retry_after: None,
                },
            )
            .into(),
        ),
        (s, _) => Identity::NotCoolify(format!(
            "answered HTTP {code} {} with {}",
            s.canonical_reason().unwrap_or_default(),
            kind_of_body()
        )),
    }
}

/// Whether `text` reads as a Coolify version (`4.3.11`, `v4.0.0-beta.420`).
fn is_version(text: &str) -> bool {
    let digits = text.strip_prefix('v').unwrap_or(text);
    (1..=40).contains(&text.len())
        && digits.starts_with(|c: char| c.is_ascii_digit())
        && digits.contains('.')
        && digits
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '_'))
}

/// The configuration error for a URL that does not serve Coolify's API.
pub(crate) fn not_coolify(client: &CoolifyClient, what: &str) -> Error {
    Error::Config {
        platform: PLATFORM,
        problems: vec![ConfigProblem::new(
            COOLIFY_API_URL.name,
            not_coolify_text(client, what),
        )],
    }
}

fn not_coolify_text(client: &CoolifyClient, what: &str) -> String {
    format!(
        "does not serve Coolify's API: GET {}/version {what}; set it to your Coolify instance's address, e.g. https://coolify.example.com (/api/v1 is added)",
        client.base().as_str().trim_end_matches('/')
    )
}

/// Whether an error of a call that expected Coolify's JSON means that
/// something else may be answering at the URL: a not-found, or an answer
/// that is not Coolify's JSON.
pub(crate) fn may_not_be_coolify(error: &Error) -> bool {
    matches!(error.kind(), ErrorKind::NotFound | ErrorKind::Internal)
}

/// Everything `doctor` checks, each named, none changing anything.
pub(crate) async fn check_setup(
    client: &CoolifyClient,
    config: &CoolifyConfig,
    installation: &InstallationId,
) -> Vec<SetupCheck> {
    let mut checks = Vec::new();
    let api = format!("Coolify API at {}", client.base());
    let usable = match identify(client).await {
        Identity::Coolify { version } => {
            checks.push(SetupCheck::ok(format!("{api} (Coolify {version})")));
            true
        }
        Identity::Refused { status, message } => {
            checks.push(SetupCheck::problem(
                api,
                format!(
                    "Coolify refused the request (HTTP {status}: {}): check {} (a token from Keys & Tokens > API tokens with the read, write and deploy abilities), and in Coolify's settings that the API is enabled and allows this host's IP address",
                    one_line(&message, 200),
                    COOLIFY_API_KEY.name
                ),
            ));
            false
        }
        Identity::NotCoolify(what) => {
            checks.push(SetupCheck::problem(
                api,
                format!(
                    "{} {}",
                    COOLIFY_API_URL.name,
                    not_coolify_text(client, &what)
                ),
            ));
            false
        }
        Identity::Unknown(error) => {
            checks.push(SetupCheck::problem(api, error.to_string()));
            false
        }
    };
    let project_check = format!(
        "project {}={}",
        COOLIFY_PROJECT_UUID.name, config.project_uuid
    );
    let environment_check = format!(
        "environment {}={}",
        COOLIFY_ENVIRONMENT_NAME.name, config.environment_name
    );
    let server_check = format!("server {}={}", COOLIFY_SERVER_UUID.name, config.server_uuid);
    let slots_check = |platform: MeetingPlatform| format!("{platform} bots");
    if !usable {
        let why = "Coolify's API could not be used (see above)";
        checks.push(SetupCheck::not_checked(project_check, why));
        checks.push(SetupCheck::not_checked(environment_check, why));
        checks.push(SetupCheck::not_checked(server_check, why));
        for platform in MeetingPlatform::ALL {
            checks.push(SetupCheck::not_checked(slots_check(platform), why));
        }
        return checks;
    }

    let retry = &config.retry;
    let project = &config.project_uuid;
    let resource = format!("environments of project {project}");
    match idempotent(retry, &resource, || client.list_environments(project)).await {
        Ok(environments) => {
            checks.push(SetupCheck::ok(project_check));
            if environments
                .iter()
                .any(|e| e.name == config.environment_name)
            {
                checks.push(SetupCheck::ok(environment_check));
            } else {
                let names: Vec<&str> = environments.iter().map(|e| e.name.as_str()).collect();
                checks.push(SetupCheck::problem(
                    environment_check,
                    format!(
                        "{:?} is not an environment of project {project}; it has: {}",
                        config.environment_name,
                        names.join(", ")
                    ),
                ));
            }
        }
        Err(error) if error.is_not_found() => {
            checks.push(SetupCheck::problem(
                project_check,
                format!(
                    "no project {project} is visible to this API token; {}",
                    visible_projects(client, config).await
                ),
            ));
            checks.push(SetupCheck::not_checked(
                environment_check,
                "the project was not found",
            ));
        }
        Err(error) => {
            checks.push(SetupCheck::problem(project_check, error.to_string()));
            checks.push(SetupCheck::not_checked(
                environment_check,
                "the project could not be read",
            ));
        }
    }

    let server = &config.server_uuid;
    let resource = format!("server {server}");
    checks.push(
        match idempotent(retry, &resource, || client.get_server(server)).await {
            Ok(found) => SetupCheck::ok(match found.name {
                Some(name) => format!("{server_check} ({name})"),
                None => server_check,
            }),
            Err(error) if error.is_not_found() => SetupCheck::problem(
                server_check,
                format!(
                    "no server {server} is visible to this API token, so new slots cannot be created; {}",
                    visible_servers(client, config).await
                ),
            ),
            Err(error) => SetupCheck::problem(server_check, error.to_string()),
        },
    );

    match idempotent(retry, "applications", || client.list_applications()).await {
        Ok(applications) => {
            let slots = SlotCensus::of(&applications, installation);
            for platform in MeetingPlatform::ALL {
                checks.push(meeting_platform_check(
                    slots_check(platform),
                    platform,
                    slots.ours(platform),
                    config,
                    installation,
                ));
            }
            if !slots.unmarked.is_empty() {
                checks.push(SetupCheck::warning(
                    "slot applications from before installation ids",
                    format!(
                        "{} named without an installation id, so no installation uses {}: to give one to this installation, rename it in Coolify to meeboter-slot-{installation}-<meeting platform>-<number> (e.g. {}); otherwise delete it",
                        list_of_names(&slots.unmarked),
                        if slots.unmarked.len() == 1 { "it" } else { "them" },
                        SlotName::new(installation, MeetingPlatform::Zoom, 1).format()
                    ),
                ));
            }
        }
        Err(error) => {
            for platform in MeetingPlatform::ALL {
                checks.push(SetupCheck::not_checked(
                    slots_check(platform),
                    format!("the applications could not be listed: {error}"),
                ));
            }
        }
    }
    checks.push(SetupCheck::not_checked(
        format!("{} abilities (write, deploy)", COOLIFY_API_KEY.name),
        "checking them would change something in Coolify; the first deploy shows whether the token may write environment variables and start applications",
    ));
    checks
}

fn meeting_platform_check(
    name: String,
    platform: MeetingPlatform,
    slots: usize,
    config: &CoolifyConfig,
    installation: &InstallationId,
) -> SetupCheck {
    let max = *config.pool_max.get(platform);
    let max_variable = pool_max_variable(platform);
    let image_variable = image_variable(platform);
    let slot_count = match slots {
        1 => "1 slot".to_owned(),
        n => format!("{n} slots"),
    };
    match config.images.get(platform) {
        Some(image) if max > 0 || slots > 0 => SetupCheck::ok(format!(
            "{name}: image {image}, {slot_count} of this installation, up to {max_variable}={max}"
        )),
        Some(_) => SetupCheck::warning(
            name,
            format!(
                "{max_variable} is 0 and this installation has no {platform} slot, so no {platform} bot can run"
            ),
        ),
        None if slots > 0 => SetupCheck::ok(format!(
            "{name}: {slot_count} of this installation ({image_variable} is not set, so the pool does not grow)"
        )),
        None if max == 0 => SetupCheck::warning(
            name,
            format!(
                "{max_variable} is 0 and {image_variable} is not set: no {platform} bot can run"
            ),
        ),
        None => SetupCheck::problem(
            name,
            format!(
                "no {platform} bot can run: {image_variable} is not set and the project has no {platform} slot application of this installation (named like {}); set {image_variable} to the bot image with its tag (e.g. ghcr.io/acme/{platform}-bot:1.4.2), or {max_variable}=0 if this installation runs no {platform} bots",
                SlotName::new(installation, platform, 1).format()
            ),
        ),
    }
}

/// The slot applications a listing shows, by owner.
struct SlotCensus {
    ours: Vec<MeetingPlatform>,
    unmarked: Vec<String>,
}

impl SlotCensus {
    fn of(applications: &[Application], installation: &InstallationId) -> Self {
        let mut census = Self {
            ours: Vec::new(),
            unmarked: Vec::new(),
        };
        for app in applications {
            let Some(name) = app.name.as_deref() else {
                continue;
            };
            match SlotName::parse(name) {
                Some(slot) if slot.belongs_to(installation) => {
                    census.ours.push(slot.meeting_platform);
                }
                Some(slot) if slot.installation.is_none() => {
                    census.unmarked.push(name.to_owned());
                }
                _ => {}
            }
        }
        census.unmarked.sort();
        census
    }

    fn ours(&self, platform: MeetingPlatform) -> usize {
        self.ours.iter().filter(|p| **p == platform).count()
    }
}

/// `a, b, c and 4 more`.
pub(crate) fn list_of_names(names: &[String]) -> String {
    const SHOWN: usize = 5;
    let shown = names
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    match names.len().saturating_sub(SHOWN) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    }
}

/// `it sees: Bots (abc), Web (def)`, or why that is not known.
pub(crate) async fn visible_projects(client: &CoolifyClient, config: &CoolifyConfig) -> String {
    match idempotent(&config.retry, "projects", || client.list_projects()).await {
        Ok(projects) if projects.is_empty() => {
            "it sees no project at all (is the token of the right team?)".to_owned()
        }
        Ok(projects) => format!(
            "it sees: {} (the UUID is in the project's URL in Coolify)",
            list_of_names(
                &projects
                    .iter()
                    .map(|p| named(p.name.as_deref(), &p.uuid))
                    .collect::<Vec<_>>()
            )
        ),
        Err(error) => format!("its projects could not be listed: {error}"),
    }
}

async fn visible_servers(client: &CoolifyClient, config: &CoolifyConfig) -> String {
    match idempotent(&config.retry, "servers", || client.list_servers()).await {
        Ok(servers) if servers.is_empty() => "it sees no server at all".to_owned(),
        Ok(servers) => format!(
            "it sees: {}",
            list_of_names(
                &servers
                    .iter()
                    .map(|s| named(s.name.as_deref(), &s.uuid))
                    .collect::<Vec<_>>()
            )
        ),
        Err(error) => format!("its servers could not be listed: {error}"),
    }
}

fn named(name: Option<&str>, uuid: &str) -> String {
    match name {
        Some(name) => format!("{} ({uuid})", one_line(name, 60)),
        None => uuid.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> VersionAnswer {
        VersionAnswer {
            status: StatusCode::from_u16(status).unwrap(),
            location: None,
            body: body.into(),
            retry_after: None,
        }
    }

    #[test]
    fn coolify_answers_its_version_in_text() {
        for version in ["4.3.11", "4.0.0-beta.420.6", "v4.0.0"] {
            let identity = classify(&answer(200, version));
            assert!(
                matches!(identity, Identity::Coolify { .. }),
                "{version}: {identity:?}"
            );
        }
    }

    #[test]
    fn other_servers_are_recognised_as_such() {
        let cases = [
            (
                200,
                "<!DOCTYPE html><html><body>Welcome</body></html>",
                "an HTML page",
            ),
            (
                404,
                "<html><body>Not Found</body></html>",
                "HTTP 404 Not Found with an HTML page",
            ),
            (
                404,
                r#"{"error":"not found"}"#,
                "HTTP 404 Not Found with JSON that is not Coolify's",
            ),
            (200, r#"{"status":"ok"}"#, "JSON that is not Coolify's"),
            (200, "hello", "\"hello\""),
        ];
        for (status, body, expected) in cases {
            match classify(&answer(status, body)) {
                Identity::NotCoolify(what) => assert!(what.contains(expected), "{what}"),
                other => panic!("{status} {body}: {other:?}"),
            }
        }
        let mut redirect = answer(302, "");
        redirect.location = Some("https://coolify.example.com/login".into());
        let Identity::NotCoolify(what) = classify(&redirect) else {
            panic!("a redirect is not Coolify's API");
        };
        assert!(
            what.contains("redirecting to https://coolify.example.com/login"),
            "{what}"
        );
    }

    #[test]
    fn coolify_refusing_the_token_is_not_another_server() {
        let identity = classify(&answer(401, r#"{"message":"Unauthenticated."}"#));
        assert!(
            matches!(identity, Identity::Refused { status: 401, ref message } if message == "Unauthenticated."),
            "{identity:?}"
        );
        let identity = classify(&answer(
            403,
            r#"{"success":true,"message":"API is disabled."}"#,
        ));
        assert!(
            matches!(identity, Identity::Refused { status: 403, .. }),
            "{identity:?}"
        );
    }

    #[test]
    fn server_errors_and_throttling_give_no_verdict() {
        for status in [429, 500, 502, 503] {
            let identity = classify(&answer(status, "<html>oops</html>"));
            let Identity::Unknown(error) = identity else {
                panic!("{status}: {identity:?}");
            };
            assert!(error.is_retryable(), "{error}");
            assert!(!error.to_string().contains('<'), "{error}");
        }
    }
}
