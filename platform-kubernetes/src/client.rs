//! The Kubernetes API calls this platform makes, one request each, paced
//! and bounded in time. Retries are the service's (with the contract's
//! retry policy), so a call here is exactly one request.
//!
//! Requests are built here rather than through `kube::Api`, so the wire is
//! exactly what the tests check: the pod body as the template merge made it
//! (fields newer than our API types included), the deletion's grace and
//! propagation policy in the query string and in a `DeleteOptions` body
//! alike, the list's selector, `limit` and `continue`.

use std::time::Duration;

use http::{Method, Request};
use k8s_openapi::List;
use k8s_openapi::api::core::v1::Pod;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::{Value, json};

use crate::error::ApiError;
use platform_core::pacing::TokenBucket;

/// The field manager the API server records for what this service writes.
pub const FIELD_MANAGER: &str = "meeboter-deploy";

/// One page of a pod list.
#[derive(Debug)]
pub(crate) struct PodPage {
    pub(crate) pods: Vec<Pod>,
    /// The token of the next page, if there is one.
    pub(crate) next: Option<String>,
}

/// The API server, as this platform calls it.
#[derive(Clone)]
pub(crate) struct KubeApi {
    client: kube::Client,
    /// `K8S_API_QPS`: one bucket for every call (the API server meters a
    /// client as a whole, not per verb), holding one second's worth, so no
    /// second sees more than the rate and a lone call never waits.
    pacer: std::sync::Arc<TokenBucket>,
    timeout: Duration,
}

impl KubeApi {
    /// Calls through `client`, at most `qps` requests a second, each
    /// answered within `timeout`.
    pub(crate) fn new(client: kube::Client, qps: u32, timeout: Duration) -> Self {
        Self {
            client,
            pacer: std::sync::Arc::new(TokenBucket::new(
                "Kubernetes API",
                f64::from(qps.max(1)),
                f64::from(qps.max(1)),
            )),
            timeout,
        }
    }

    /// How fast this client's pacer lets bots start: a deploy is one pod
    /// creation, so the bucket's own burst and rate, as configured.
    pub(crate) fn deploy_pace(&self, typical_start: Duration) -> platform_core::DeployPace {
        self.pacer.deploy_pace(typical_start)
    }

    /// `POST /api/v1/namespaces/{ns}/pods`. The answer (the pod, with the
    /// bot's secrets in its environment) is not kept.
    pub(crate) async fn create_pod(&self, namespace: &str, pod: &Value) -> Result<(), ApiError> {
        let body = serde_json::to_vec(pod).map_err(|e| ApiError::Unexpected {
            message: format!("the pod did not serialise: {e}"),
        })?;
        let uri = format!(
            "{}?{}",
            pods_path(namespace),
            query(&[("fieldManager", FIELD_MANAGER)])
        );
        self.send::<IgnoredAny>(Method::POST, &uri, body)
            .await
            .map(|_| ())
    }

    /// `GET /api/v1/namespaces/{ns}/pods/{name}`; `None` when there is no
    /// such pod.
    pub(crate) async fn get_pod(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Pod>, ApiError> {
        let uri = format!("{}/{name}", pods_path(namespace));
        match self.send(Method::GET, &uri, Vec::new()).await {
            Ok(pod) => Ok(Some(pod)),
            Err(ApiError::NotFound { .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// `DELETE /api/v1/namespaces/{ns}/pods/{name}` with `grace` (SIGTERM,
    /// then SIGKILL after it). Returns whether the pod existed.
    pub(crate) async fn delete_pod(
        &self,
        namespace: &str,
        name: &str,
        grace: Duration,
    ) -> Result<bool, ApiError> {
        let grace = grace.as_secs().to_string();
        let uri = format!(
            "{}/{name}?{}",
            pods_path(namespace),
            query(&[
                ("gracePeriodSeconds", &grace),
                ("propagationPolicy", "Background")
            ])
        );
        let body = json!({
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "gracePeriodSeconds": grace.parse::<u64>().unwrap_or_default(),
            "propagationPolicy": "Background",
        });
        let body = serde_json::to_vec(&body).unwrap_or_default();
        match self.send::<IgnoredAny>(Method::DELETE, &uri, body).await {
            Ok(_) => Ok(true),
            Err(ApiError::NotFound { .. }) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// One page of `GET /api/v1/namespaces/{ns}/pods?labelSelector=…&limit=…`.
    pub(crate) async fn list_pods(
        &self,
        namespace: &str,
        selector: &str,
        limit: usize,
        continue_token: Option<&str>,
    ) -> Result<PodPage, ApiError> {
        let limit = limit.to_string();
        let mut pairs = vec![("labelSelector", selector), ("limit", limit.as_str())];
        if let Some(token) = continue_token {
            pairs.push(("continue", token));
        }
        let uri = format!("{}?{}", pods_path(namespace), query(&pairs));
        let list: List<Pod> = self.send(Method::GET, &uri, Vec::new()).await?;
        Ok(PodPage {
            pods: list.items,
            next: list.metadata.continue_.filter(|t| !t.is_empty()),
        })
    }

    /// Asks the API server whether this service may `verb` `resource` in
    /// `namespace` (a SelfSubjectAccessReview, which every authenticated
    /// client may create). Starts nothing.
    pub(crate) async fn may(
        &self,
        namespace: &str,
        verb: &str,
        resource: &str,
    ) -> Result<(bool, Option<String>), ApiError> {
        let review = json!({
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "spec": {"resourceAttributes": {
                "namespace": namespace, "verb": verb, "resource": resource, "group": ""
            }}
        });
        let body = serde_json::to_vec(&review).unwrap_or_default();
        let answer: Value = self
            .send(
                Method::POST,
                "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                body,
            )
            .await?;
        let status = &answer["status"];
        let reason = status["reason"]
            .as_str()
            .or_else(|| status["evaluationError"].as_str())
            .filter(|r| !r.is_empty())
            .map(str::to_owned);
        Ok((status["allowed"].as_bool().unwrap_or(false), reason))
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        uri: &str,
        body: Vec<u8>,
    ) -> Result<T, ApiError> {
        let mut request = Request::builder().method(method.clone()).uri(uri);
        if !body.is_empty() {
            request = request.header(http::header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .header(http::header::ACCEPT, "application/json")
            .body(body)
            .map_err(|e| ApiError::Unexpected {
                message: format!("could not build the request: {e}"),
            })?;
        self.pacer.acquire().await;
        let text = match tokio::time::timeout(self.timeout, self.client.request_text(request)).await
        {
            Ok(Ok(text)) => text,
            Ok(Err(error)) => return Err(ApiError::from_kube(error)),
            Err(_) => {
                return Err(ApiError::TimedOut {
                    after: self.timeout,
                });
            }
        };
        serde_json::from_str(&text).map_err(|e| ApiError::Unexpected {
            message: format!("the API server's answer to {method} did not parse: {e}"),
        })
    }
}

fn pods_path(namespace: &str) -> String {
    format!("/api/v1/namespaces/{namespace}/pods")
}

fn query(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}
