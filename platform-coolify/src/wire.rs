//! The JSON the Coolify API sends and accepts, as far as the pool uses it.
//!
//! Answers are read leniently (unknown fields ignored, most fields optional:
//! Coolify hides some fields depending on the token's abilities). Request
//! bodies carry only fields the real server accepts: it answers 422 "This
//! field is not allowed." to anything else.

use serde::{Deserialize, Serialize};

/// An application, from `GET /applications` or `GET /applications/{uuid}`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub(crate) struct Application {
    pub uuid: String,
    #[serde(default)]
    pub name: Option<String>,
    /// `state:health[:excluded]`, see [`crate::status`].
    #[serde(default)]
    pub status: Option<String>,
    /// The application's domains, comma-separated.
    #[serde(default)]
    pub fqdn: Option<String>,
    #[serde(default)]
    pub environment_id: Option<i64>,
}

impl Application {
    /// The first of the application's domains: where its bot answers.
    pub fn connection_url(&self) -> Option<String> {
        first_domain(self.fqdn.as_deref())
    }
}

/// The first entry of a comma-separated domain list, if any.
pub(crate) fn first_domain(domains: Option<&str>) -> Option<String> {
    domains?
        .split(',')
        .map(str::trim)
        .find(|d| !d.is_empty())
        .map(str::to_owned)
}

/// An environment of a project, from `GET /projects/{uuid}/environments`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub(crate) struct Environment {
    pub id: i64,
    pub name: String,
}

/// A project, from `GET /projects`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub(crate) struct Project {
    pub uuid: String,
    #[serde(default)]
    pub name: Option<String>,
}

/// A server, from `GET /servers` or `GET /servers/{uuid}`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub(crate) struct Server {
    pub uuid: String,
    #[serde(default)]
    pub name: Option<String>,
}

/// `PATCH /applications/{uuid}` with only a new name.
#[derive(Serialize)]
pub(crate) struct Rename<'a> {
    pub name: &'a str,
}

/// A deployment (`ApplicationDeploymentQueue`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub(crate) struct Deployment {
    #[serde(default)]
    pub deployment_uuid: Option<String>,
    /// `queued`, `in_progress`, `finished`, `failed`, `cancelled-by-user`.
    #[serde(default)]
    pub status: Option<String>,
    /// The application's name (slot names are unique by convention).
    #[serde(default)]
    pub application_name: Option<String>,
}

/// `GET /deployments/applications/{uuid}`: the real server answers
/// `{count, deployments}` (the spec's "array of Application" is wrong).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub(crate) struct DeploymentPage {
    #[serde(default)]
    pub deployments: Vec<Deployment>,
}

/// An environment variable of an application, from
/// `GET /applications/{uuid}/envs`. Values are not read: Coolify shows them
/// only to tokens with `read:sensitive`, and the pool needs only the keys.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub(crate) struct EnvVar {
    pub uuid: String,
    pub key: String,
    #[serde(default)]
    pub is_preview: bool,
}

/// `POST /applications/{uuid}/start`. `deployment_uuid` is missing when a
/// deployment was already queued ("Deployment already queued for this
/// commit.").
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub(crate) struct StartAnswer {
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub deployment_uuid: Option<String>,
}

/// `POST /applications/dockerimage` → 201.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub(crate) struct Created {
    pub uuid: String,
    /// Some Coolify versions return the generated domains as well.
    #[serde(default)]
    pub domains: Option<String>,
}

/// An error answer: `{"message": …, "errors": {field: [msg, …]}}`.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub errors: Option<serde_json::Map<String, serde_json::Value>>,
}

impl ErrorBody {
    /// `Validation failed. (name: The name field is required.)`.
    pub fn describe(&self) -> Option<String> {
        let message = self.message.clone()?;
        let mut details: Vec<String> = Vec::new();
        if let Some(error) = &self.error {
            details.push(error.clone());
        }
        for (field, value) in self.errors.iter().flatten() {
            let text = match value {
                serde_json::Value::Array(items) => items
                    .iter()
                    .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join(" "),
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            details.push(format!("{field}: {text}"));
        }
        Some(if details.is_empty() {
            message
        } else {
            format!("{message} ({})", details.join("; "))
        })
    }
}

/// The body of `POST /applications/dockerimage`: a slot application.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub(crate) struct NewDockerImageApplication {
    pub project_uuid: String,
    pub server_uuid: String,
    pub environment_name: String,
    pub docker_registry_image_name: String,
    pub docker_registry_image_tag: String,
    pub ports_exposes: String,
    pub name: String,
    pub description: String,
    /// Always false: a slot is deployed when a bot needs it, with that bot's
    /// environment.
    pub instant_deploy: bool,
}

/// One item of a bulk env upsert. Not `Debug`: `value` may be a meeting URL
/// or password.
#[derive(Serialize)]
pub(crate) struct EnvItem<'a> {
    pub key: &'a str,
    pub value: &'a str,
    pub is_preview: bool,
    /// Always true: Coolify would otherwise expand `$NAME` inside values,
    /// and a meeting password may contain `$`.
    pub is_literal: bool,
    pub is_multiline: bool,
    /// True for secrets, so the Coolify UI hides the value after saving.
    pub is_shown_once: bool,
}

/// `PATCH /applications/{uuid}/envs/bulk`: the real server wants the items
/// under `data`.
#[derive(Serialize)]
pub(crate) struct BulkEnv<'a> {
    pub data: Vec<EnvItem<'a>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_errors_read_well() {
        let body: ErrorBody = serde_json::from_str(
            r#"{"message":"Validation failed.","errors":{"docker_registry_image_tag":["This field is not allowed."]}}"#,
        )
        .unwrap();
        assert_eq!(
            body.describe().unwrap(),
            "Validation failed. (docker_registry_image_tag: This field is not allowed.)"
        );
        let body: ErrorBody = serde_json::from_str(
            r#"{"message":"Invalid request.","error":"Content-Type must be application/json."}"#,
        )
        .unwrap();
        assert_eq!(
            body.describe().unwrap(),
            "Invalid request. (Content-Type must be application/json.)"
        );
    }

    #[test]
    fn first_domain_of_a_list() {
        assert_eq!(
            first_domain(Some("https://a.example.com,https://b.example.com")),
            Some("https://a.example.com".into())
        );
        assert_eq!(first_domain(Some("")), None);
        assert_eq!(first_domain(None), None);
    }
}
