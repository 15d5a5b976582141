//! Reading requests: a JSON body, a bot id in the path, the list query.
//!
//! axum's own extractors answer bad input in plain text with wording we do
//! not control. These answer every problem as an [`ApiError`] with a stable
//! code and a message that says what was wrong and what is allowed — and
//! never repeat a value the client sent, which could be a meeting password.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use platform_core::BotId;
use serde::de::DeserializeOwned;

use super::errors::ApiError;
use crate::bot::BotState;
use crate::meeting::{MEETING_STATUS_NAMES, MeetingStatus};
use crate::service::{ListQuery, MAX_PAGE_SIZE};

/// A JSON body, parsed, with the exact bytes it came from (an idempotency
/// key fingerprints those).
#[derive(Debug)]
pub struct JsonBody<T> {
    /// The parsed body.
    pub value: T,
    /// The raw bytes.
    pub raw: Bytes,
}

pub(crate) fn is_json_content_type(parts_or_req: &axum::http::HeaderMap) -> bool {
    let Some(value) = parts_or_req
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json_content_type(request.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with the header Content-Type: application/json",
            ));
        }
        let raw = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "body_too_large",
                        "the body is larger than this service accepts (API_MAX_BODY_BYTES); a bot request is well under 4 KiB",
                    )
                } else {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "malformed_json",
                        "the body could not be read completely",
                    )
                }
            })?;
        let value = parse_json(&raw)?;
        // serde also builds a struct from a positional array; a request is
        // only ever an object with named fields.
        if raw.trim_ascii_start().first() != Some(&b'{') {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                "the body must be a JSON object with named fields",
            )
            .with_field("body", "must be a JSON object"));
        }
        Ok(Self { value, raw })
    }
}

/// Parses `raw` as a `T`, or says which field is wrong and how.
pub fn parse_json<T: DeserializeOwned>(raw: &[u8]) -> Result<T, ApiError> {
    let malformed = |error: &serde_json::Error| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("the body is not valid JSON: {error}"),
        )
    };
    let mut deserializer = serde_json::Deserializer::from_slice(raw);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let inner = error.inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let path = error.path().to_string();
                let problem = without_values(&inner.to_string());
                let field = match path.as_str() {
                    "." | "" => "body".to_owned(),
                    _ => path,
                };
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_body",
                    format!("{field}: {problem}"),
                )
                .with_field(field, problem)
            }
            _ => malformed(inner),
        }
    })?;
    // Trailing garbage after the document is a syntax error too.
    deserializer.end().map_err(|e| malformed(&e))?;
    Ok(value)
}

/// serde's data errors quote the offending value (`invalid type: string
/// "…", expected a boolean`). The value may be a meeting password sent in
/// the wrong place, so keep only its kind.
fn without_values(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix)
            && let Some(at) = rest.find(", expected ")
        {
            let unexpected = &rest[..at];
            let kind = unexpected
                .split(['"', '`'])
                .next()
                .unwrap_or_default()
                .trim();
            return format!("{prefix}{kind}{}", &rest[at..]);
        }
    }
    message.to_owned()
}

/// The largest bot id: ids are stored as signed 64-bit integers.
pub const MAX_BOT_ID: u64 = i64::MAX as u64;

/// A bot id from the path (`/v1/bots/{id}`), checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BotIdPath(pub BotId);

/// Checks a bot id as a client wrote it.
pub fn parse_bot_id(text: &str) -> Result<BotId, ApiError> {
    let invalid = |why: &str| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_bot_id",
            format!(
                "the bot id in the path {why}; bot ids are whole numbers from 1 to {MAX_BOT_ID}"
            ),
        )
        .with_field("id", why.to_owned())
    };
    if text.is_empty() {
        return Err(invalid("is empty"));
    }
    if text.starts_with('-') {
        return Err(invalid("is negative"));
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("is not a number"));
    }
    match text.parse::<u64>() {
        Ok(0) => Err(invalid("is 0")),
        Ok(id) if id <= MAX_BOT_ID => Ok(BotId(id)),
        _ => Err(invalid("is too large")),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for BotIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(text) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_bot_id",
                        "the bot id in the path could not be read; it must be a whole number",
                    )
                })?;
        parse_bot_id(&text).map(Self)
    }
}

/// The query parameters `GET /v1/bots` accepts, documented in the OpenAPI
/// document from this struct.
#[derive(Clone, Debug, Default, PartialEq, Eq, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListBotsParams {
    /// Only bots in this state.
    #[param(inline)]
    pub status: Option<BotState>,
    /// Only bots on this platform (one of the names the OpenAPI document
    /// lists: this project's platforms and any plugin compiled in).
    pub platform: Option<String>,
    /// Only bots in this meeting status (as the bots report it).
    #[param(inline)]
    pub meeting_status: Option<MeetingStatus>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to 500; default 50.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// The names [`ListBotsParams`] accepts.
pub const LIST_BOTS_PARAMS: [&str; 5] = ["status", "platform", "meeting_status", "cursor", "limit"];

impl ListBotsParams {
    /// Parses a query string, naming every parameter that is unknown,
    /// repeated or invalid.
    pub fn parse(query: Option<&str>) -> Result<Self, ApiError> {
        let mut params = Self::default();
        let mut seen: Vec<String> = Vec::new();
        let mut problems: Vec<(String, String)> = Vec::new();
        let mut problem = |field: &str, message: String| problems.push((field.to_owned(), message));
        for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            // Names are echoed (cut short); values never are.
            let shown: String = name.chars().take(40).collect();
            if !LIST_BOTS_PARAMS.contains(&name.as_ref()) {
                problem(
                    &shown,
                    format!(
                        "is not a parameter; allowed: {}",
                        LIST_BOTS_PARAMS.join(", ")
                    ),
                );
                continue;
            }
            if seen.iter().any(|s| *s == name) {
                problem(&shown, "is given more than once".into());
                continue;
            }
            seen.push(name.to_string());
            match name.as_ref() {
                "status" => match value.parse::<BotState>() {
                    Ok(state) => params.status = Some(state),
                    Err(_) => problem(
                        "status",
                        "is not a bot status; allowed: pending, deploying, running, stopping, stopped, failed".into(),
                    ),
                },
                "meeting_status" => match value.parse::<MeetingStatus>() {
                    Ok(status) => params.meeting_status = Some(status),
                    Err(_) => problem(
                        "meeting_status",
                        format!("is not a meeting status; allowed: {MEETING_STATUS_NAMES}"),
                    ),
                },
                "platform" => {
                    let known = crate::platforms::known_platform_names();
                    if known.contains(&value.as_ref()) {
                        params.platform = Some(value.into_owned());
                    } else {
                        problem(
                            "platform",
                            format!("is not a platform; allowed: {}", known.join(", ")),
                        );
                    }
                }
                "cursor" => {
                    if value.is_empty() || value.len() > 64 {
                        problem(
                            "cursor",
                            "must be the next_cursor of the previous page".into(),
                        );
                    } else {
                        params.cursor = Some(value.into_owned());
                    }
                }
                "limit" => match value.parse::<u32>() {
                    Ok(limit) if (1..=MAX_PAGE_SIZE).contains(&limit) => params.limit = Some(limit),
                    _ => problem(
                        "limit",
                        format!("must be a whole number from 1 to {MAX_PAGE_SIZE}"),
                    ),
                },
                _ => {}
            }
        }
        if problems.is_empty() {
            return Ok(params);
        }
        let summary = problems
            .iter()
            .map(|(field, message)| format!("{field} {message}"))
            .collect::<Vec<_>>()
            .join("; ");
        let error = ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("invalid query: {summary}"),
        );
        Err(problems.into_iter().fold(error, |error, (field, message)| {
            error.with_field(field, message)
        }))
    }

    /// The service's query.
    pub fn into_query(self) -> ListQuery {
        ListQuery {
            status: self.status,
            platform: self.platform,
            meeting_status: self.meeting_status,
            cursor: self.cursor,
            limit: self.limit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bot_ids_are_checked_with_reasons() {
        assert_eq!(parse_bot_id("42").unwrap(), BotId(42));
        assert_eq!(parse_bot_id("9223372036854775807").unwrap().0, MAX_BOT_ID);
        for (text, why) in [
            ("abc", "is not a number"),
            ("-1", "is negative"),
            ("0", "is 0"),
            ("9223372036854775808", "is too large"),
            ("99999999999999999999999", "is too large"),
            ("1.5", "is not a number"),
            ("+1", "is not a number"),
        ] {
            let error = parse_bot_id(text).unwrap_err();
            assert_eq!(error.code(), "invalid_bot_id", "{text}");
            assert!(error.body().error.message.contains(why), "{text}");
        }
    }

    #[test]
    fn data_errors_never_repeat_the_value() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code, reason = "only parsed, to provoke errors")]
        struct Body {
            flag: bool,
        }
        let error = parse_json::<Body>(br#"{"flag": "hunter2-secret"}"#).unwrap_err();
        assert_eq!(error.code(), "invalid_body");
        let text = serde_json::to_string(&error.body()).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(
            text.contains("invalid type: string, expected a boolean"),
            "{text}"
        );
        assert!(text.contains("\"field\":\"flag\""), "{text}");
        let error = parse_json::<Body>(b"{\"flag\": true} trailing").unwrap_err();
        assert_eq!(error.code(), "malformed_json");
        let error = parse_json::<Body>(b"{\"flag\": tr").unwrap_err();
        assert_eq!(error.code(), "malformed_json");
    }

    #[test]
    fn list_params_name_every_problem() {
        let params = ListBotsParams::parse(Some("status=running&limit=10&cursor=after-3")).unwrap();
        assert_eq!(params.status, Some(BotState::Running));
        assert_eq!(params.limit, Some(10));
        let error =
            ListBotsParams::parse(Some("staus=running&limit=0&limit=5&status=gone")).unwrap_err();
        assert_eq!(error.code(), "invalid_query");
        let fields: Vec<String> = error
            .body()
            .error
            .fields
            .iter()
            .map(|f| f.field.clone())
            .collect();
        assert_eq!(fields, ["staus", "limit", "limit", "status"]);
        assert!(ListBotsParams::parse(None).unwrap() == ListBotsParams::default());
    }
}
