//! A small stateful Kubernetes API server behind wiremock, speaking the
//! real wire format of the pod endpoints (`/api/v1/namespaces/{ns}/pods`):
//! create with `AlreadyExists` on a taken name, get, list by equality label
//! selector with `limit`/`continue` pages, graceful delete that sets
//! `deletionTimestamp` and removes the pod when the "kubelet" is done,
//! `metav1.Status` error bodies, and SelfSubjectAccessReviews.
//!
//! Pods it creates walk their lifecycle as they are read (Pending with
//! `ContainerCreating` first, then Running and Ready with a pod IP). Pods a
//! test puts in (fixtures) keep the status they came with.

#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// One pod the fake keeps.
#[derive(Clone, Debug)]
struct StoredPod {
    object: Value,
    /// Reads since creation; the lifecycle advances with them.
    reads: u32,
    /// A fixture keeps its status as given.
    scripted: bool,
    /// When a graceful deletion's kubelet is done with it.
    remove_at: Option<Instant>,
}

/// An error the next matching requests answer with.
#[derive(Clone, Debug)]
struct Failure {
    method: &'static str,
    /// `pods` (collection), `pod` (one pod), or `any`.
    target: &'static str,
    code: u16,
    reason: &'static str,
    message: String,
    retry_after: Option<u32>,
}

#[derive(Debug)]
struct State {
    pods: BTreeMap<(String, String), StoredPod>,
    next_uid: u64,
    resource_version: u64,
    failures: VecDeque<Failure>,
    /// How long a graceful deletion takes (the bot leaving its meeting);
    /// `None`: the pod stays terminating until deleted without grace.
    terminate_after: Option<Duration>,
    /// Reads a new pod is Pending for.
    pending_reads: u32,
    /// The `pods` quota of the namespace, enforced like a ResourceQuota.
    quota: Option<usize>,
    /// Whether SelfSubjectAccessReviews are allowed.
    allowed: bool,
    /// The next list with a continue token answers 410 Expired.
    expire_next_continue: bool,
    /// Count of answered requests by `METHOD target`.
    calls: BTreeMap<String, u32>,
}

/// The fake. Clones share state, so a test keeps one to look inside while
/// the server answers with another.
#[derive(Clone)]
pub struct FakeApi {
    state: Arc<Mutex<State>>,
}

impl Default for FakeApi {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeApi {
    /// An empty cluster: pods are Pending for one read, graceful deletions
    /// take 50 ms, no quota, every access allowed.
    pub fn new() -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                pods: BTreeMap::new(),
                next_uid: 1,
                resource_version: 1000,
                failures: VecDeque::new(),
                terminate_after: Some(Duration::from_millis(50)),
                pending_reads: 1,
                quota: None,
                allowed: true,
                expire_next_continue: false,
                calls: BTreeMap::new(),
            })),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Serves every request on `server`.
    pub async fn mount(&self, server: &MockServer) {
        Mock::given(wiremock::matchers::any())
            .respond_with(self.clone())
            .mount(server)
            .await;
    }

    /// A graceful deletion completes after `after`; `None`: never (a pod
    /// stuck terminating, as on a lost node).
    pub fn terminate_after(&self, after: Option<Duration>) {
        self.state().terminate_after = after;
    }

    /// New pods stay Pending for `reads` reads.
    pub fn pending_reads(&self, reads: u32) {
        self.state().pending_reads = reads;
    }

    /// Enforces a `pods` ResourceQuota of `max`.
    pub fn pods_quota(&self, max: usize) {
        self.state().quota = Some(max);
    }

    /// Whether access reviews are allowed.
    pub fn allow_access(&self, allowed: bool) {
        self.state().allowed = allowed;
    }

    /// The next list page asked with a continue token answers 410.
    pub fn expire_next_continue(&self) {
        self.state().expire_next_continue = true;
    }

    /// The next `count` `method` requests on `target` (`pods`: the
    /// collection, `pod`: one pod, `any`) fail with this status.
    pub fn fail_next(
        &self,
        count: usize,
        method: &'static str,
        target: &'static str,
        code: u16,
        reason: &'static str,
        message: &str,
    ) {
        self.fail_next_after(count, method, target, code, reason, message, None);
    }

    /// As [`fail_next`](Self::fail_next), with `details.retryAfterSeconds`
    /// and a `Retry-After` header.
    #[allow(clippy::too_many_arguments)]
    pub fn fail_next_after(
        &self,
        count: usize,
        method: &'static str,
        target: &'static str,
        code: u16,
        reason: &'static str,
        message: &str,
        retry_after: Option<u32>,
    ) {
        let mut state = self.state();
        for _ in 0..count {
            state.failures.push_back(Failure {
                method,
                target,
                code,
                reason,
                message: message.to_owned(),
                retry_after,
            });
        }
    }

    /// Puts a pod in as it is (a fixture); its status never changes.
    pub fn insert_pod(&self, pod: Value) {
        let namespace = pod["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_owned();
        let name = pod["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        self.state().pods.insert(
            (namespace, name),
            StoredPod {
                object: pod,
                reads: 0,
                scripted: true,
                remove_at: None,
            },
        );
    }

    /// Removes a pod as if someone else deleted it.
    pub fn remove_pod(&self, namespace: &str, name: &str) {
        self.state()
            .pods
            .remove(&(namespace.to_owned(), name.to_owned()));
    }

    /// The pod as stored, if any.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<Value> {
        let mut state = self.state();
        state.reap();
        state
            .pods
            .get(&(namespace.to_owned(), name.to_owned()))
            .map(|p| p.object.clone())
    }

    /// How many pods exist.
    pub fn pod_count(&self) -> usize {
        let mut state = self.state();
        state.reap();
        state.pods.len()
    }

    /// How many requests of `key` (`POST pods`, `GET pods`, `GET pod`,
    /// `DELETE pod`, `POST access`) were answered.
    pub fn calls(&self, key: &str) -> u32 {
        self.state().calls.get(key).copied().unwrap_or(0)
    }

    /// Forgets the call counts.
    pub fn reset_calls(&self) {
        self.state().calls.clear();
    }
}

impl State {
    /// Removes pods whose graceful deletion has finished.
    fn reap(&mut self) {
        let now = Instant::now();
        self.pods
            .retain(|_, p| p.remove_at.is_none_or(|at| at > now));
    }

    fn next_version(&mut self) -> String {
        self.resource_version += 1;
        self.resource_version.to_string()
    }

    /// The pod as a read sees it, advancing its lifecycle.
    fn read(&mut self, key: &(String, String)) -> Option<Value> {
        let pending_reads = self.pending_reads;
        let pod = self.pods.get_mut(key)?;
        if !pod.scripted && pod.object["metadata"]["deletionTimestamp"].is_null() {
            let status = if pod.reads < pending_reads {
                pending_status(&pod.object)
            } else {
                running_status(&pod.object, pod.reads)
            };
            pod.object["status"] = status;
        }
        pod.reads += 1;
        Some(pod.object.clone())
    }
}

fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

fn rfc3339(at: SystemTime) -> String {
    let secs = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{d:02}T{h:02}:{m:02}:{s:02}Z")
}

fn container_names(pod: &Value) -> Vec<String> {
    pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(str::to_owned))
        .collect()
}

fn pending_status(pod: &Value) -> Value {
    let statuses: Vec<Value> = container_names(pod)
        .iter()
        .map(|name| {
            json!({
                "name": name, "ready": false, "restartCount": 0, "started": false,
                "image": "registry.example/meeboter/bot:1.4.2", "imageID": "",
                "state": {"waiting": {"reason": "ContainerCreating"}}
            })
        })
        .collect();
    json!({
        "phase": "Pending",
        "conditions": [
            {"type": "PodReadyToStartContainers", "status": "False", "lastTransitionTime": now_rfc3339()},
            {"type": "Initialized", "status": "True", "lastTransitionTime": now_rfc3339()},
            {"type": "Ready", "status": "False", "lastTransitionTime": now_rfc3339(), "reason": "ContainersNotReady", "message": "containers with unready status: [bot]"},
            {"type": "ContainersReady", "status": "False", "lastTransitionTime": now_rfc3339(), "reason": "ContainersNotReady", "message": "containers with unready status: [bot]"},
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now_rfc3339()}
        ],
        "hostIP": "10.0.3.17",
        "hostIPs": [{"ip": "10.0.3.17"}],
        "startTime": now_rfc3339(),
        "containerStatuses": statuses,
        "qosClass": "Burstable"
    })
}

fn running_status(pod: &Value, reads: u32) -> Value {
    let statuses: Vec<Value> = container_names(pod)
        .iter()
        .map(|name| {
            json!({
                "name": name, "ready": true, "restartCount": 0, "started": true,
                "image": "registry.example/meeboter/bot:1.4.2",
                "imageID": "registry.example/meeboter/bot@sha256:7f3a9c0d2b4e6f8a1c3e5d7f9b0a2c4e6d8f0a1b3c5e7d9f1a3b5c7d9e0f1a2b",
                "containerID": "containerd://4be5c3a2f0e1d9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4",
                "state": {"running": {"startedAt": now_rfc3339()}}
            })
        })
        .collect();
    let uid = pod["metadata"]["uid"].as_str().unwrap_or("0");
    let last = uid.bytes().map(u32::from).sum::<u32>() % 250 + 2;
    let _ = reads;
    json!({
        "phase": "Running",
        "conditions": [
            {"type": "PodReadyToStartContainers", "status": "True", "lastTransitionTime": now_rfc3339()},
            {"type": "Initialized", "status": "True", "lastTransitionTime": now_rfc3339()},
            {"type": "Ready", "status": "True", "lastTransitionTime": now_rfc3339()},
            {"type": "ContainersReady", "status": "True", "lastTransitionTime": now_rfc3339()},
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now_rfc3339()}
        ],
        "hostIP": "10.0.3.17",
        "hostIPs": [{"ip": "10.0.3.17"}],
        "podIP": format!("10.244.1.{last}"),
        "podIPs": [{"ip": format!("10.244.1.{last}")}],
        "startTime": now_rfc3339(),
        "containerStatuses": statuses,
        "qosClass": "Burstable"
    })
}

/// A `metav1.Status` error answer.
pub fn status_body(code: u16, reason: &str, message: &str, name: Option<&str>) -> Value {
    let mut body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code
    });
    if let Some(name) = name {
        body["details"] = json!({"name": name, "kind": "pods"});
    }
    body
}

fn answer(code: u16, body: Value) -> ResponseTemplate {
    ResponseTemplate::new(code).set_body_json(body)
}

fn selector_matches(pod: &Value, selector: &str) -> bool {
    selector.split(',').filter(|s| !s.is_empty()).all(|term| {
        let Some((key, value)) = term.split_once('=') else {
            return false;
        };
        pod["metadata"]["labels"][key].as_str() == Some(value)
    })
}

impl Respond for FakeApi {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut state = self.state();
        state.reap();
        let method = request.method.as_str().to_owned();
        let path: Vec<String> = request
            .url
            .path_segments()
            .map(|s| s.map(str::to_owned).collect())
            .unwrap_or_default();
        let query: BTreeMap<String, String> = request
            .url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let segments: Vec<&str> = path.iter().map(String::as_str).collect();

        if method == "POST"
            && segments
                == [
                    "apis",
                    "authorization.k8s.io",
                    "v1",
                    "selfsubjectaccessreviews",
                ]
        {
            *state.calls.entry("POST access".into()).or_default() += 1;
            let mut review: Value = request.body_json().unwrap_or(Value::Null);
            let allowed = state.allowed;
            review["status"] = if allowed {
                json!({"allowed": true, "reason": "RBAC: allowed by RoleBinding \"meeboter-deploy/bots\" of Role \"meeboter-deploy\" to ServiceAccount \"meeboter-deploy/bots\""})
            } else {
                json!({"allowed": false})
            };
            return answer(201, review);
        }

        let (namespace, name) = match segments.as_slice() {
            ["api", "v1", "namespaces", ns, "pods"] => ((*ns).to_owned(), None),
            ["api", "v1", "namespaces", ns, "pods", name] => {
                ((*ns).to_owned(), Some((*name).to_owned()))
            }
            _ => {
                return answer(
                    404,
                    status_body(
                        404,
                        "NotFound",
                        "the server could not find the requested resource",
                        None,
                    ),
                );
            }
        };
        let target = if name.is_some() { "pod" } else { "pods" };
        *state.calls.entry(format!("{method} {target}")).or_default() += 1;

        if let Some(index) = state
            .failures
            .iter()
            .position(|f| f.method == method && (f.target == target || f.target == "any"))
            && let Some(failure) = state.failures.remove(index)
        {
            let mut body = status_body(
                failure.code,
                failure.reason,
                &failure.message,
                name.as_deref(),
            );
            let mut response = ResponseTemplate::new(failure.code);
            if let Some(after) = failure.retry_after {
                body["details"]["retryAfterSeconds"] = json!(after);
                response = response.insert_header("Retry-After", after.to_string().as_str());
            }
            return response.set_body_json(body);
        }

        match (method.as_str(), name) {
            ("POST", None) => {
                let Ok(mut pod) = request.body_json::<Value>() else {
                    return answer(
                        400,
                        status_body(
                            400,
                            "BadRequest",
                            "the body of the request was in an unknown format",
                            None,
                        ),
                    );
                };
                let Some(pod_name) = pod["metadata"]["name"].as_str().map(str::to_owned) else {
                    return answer(
                        422,
                        status_body(
                            422,
                            "Invalid",
                            "Pod \"\" is invalid: metadata.name: Required value: name or generateName is required",
                            None,
                        ),
                    );
                };
                let key = (namespace.clone(), pod_name.clone());
                if state.pods.contains_key(&key) {
                    return answer(
                        409,
                        status_body(
                            409,
                            "AlreadyExists",
                            &format!("pods \"{pod_name}\" already exists"),
                            Some(&pod_name),
                        ),
                    );
                }
                if let Some(max) = state.quota {
                    let used = state.pods.keys().filter(|(ns, _)| *ns == namespace).count();
                    if used >= max {
                        return answer(
                            403,
                            status_body(
                                403,
                                "Forbidden",
                                &format!(
                                    "pods \"{pod_name}\" is forbidden: exceeded quota: bot-pods, requested: pods=1, used: pods={used}, limited: pods={max}"
                                ),
                                Some(&pod_name),
                            ),
                        );
                    }
                }
                let uid = format!("5d0c7e2a-94b1-4c3e-8f6a-{:012x}", state.next_uid);
                state.next_uid += 1;
                let version = state.next_version();
                pod["metadata"]["uid"] = json!(uid);
                pod["metadata"]["resourceVersion"] = json!(version);
                pod["metadata"]["creationTimestamp"] = json!(now_rfc3339());
                pod["spec"]["nodeName"] = json!("worker-2");
                pod["status"] = json!({"phase": "Pending", "qosClass": "Burstable"});
                state.pods.insert(
                    key,
                    StoredPod {
                        object: pod.clone(),
                        reads: 0,
                        scripted: false,
                        remove_at: None,
                    },
                );
                answer(201, pod)
            }
            ("GET", Some(pod_name)) => match state.read(&(namespace, pod_name.clone())) {
                Some(pod) => answer(200, pod),
                None => answer(
                    404,
                    status_body(
                        404,
                        "NotFound",
                        &format!("pods \"{pod_name}\" not found"),
                        Some(&pod_name),
                    ),
                ),
            },
            ("GET", None) => {
                let selector = query.get("labelSelector").cloned().unwrap_or_default();
                let limit: usize = query
                    .get("limit")
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(usize::MAX);
                let offset: usize = match query.get("continue") {
                    Some(token) => {
                        if state.expire_next_continue {
                            state.expire_next_continue = false;
                            return answer(
                                410,
                                status_body(
                                    410,
                                    "Expired",
                                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                                    None,
                                ),
                            );
                        }
                        match token
                            .strip_prefix("fake-continue-")
                            .and_then(|o| o.parse().ok())
                        {
                            Some(offset) => offset,
                            None => {
                                return answer(
                                    400,
                                    status_body(
                                        400,
                                        "BadRequest",
                                        "continue key is not valid: illegal base64 data at input byte 0",
                                        None,
                                    ),
                                );
                            }
                        }
                    }
                    None => 0,
                };
                let keys: Vec<(String, String)> = state
                    .pods
                    .iter()
                    .filter(|((ns, _), p)| {
                        *ns == namespace && selector_matches(&p.object, &selector)
                    })
                    .map(|(k, _)| k.clone())
                    .collect();
                let page: Vec<(String, String)> =
                    keys.iter().skip(offset).take(limit).cloned().collect();
                let mut items = Vec::new();
                for key in &page {
                    if let Some(mut pod) = state.read(key) {
                        // List items carry no kind or apiVersion.
                        if let Some(object) = pod.as_object_mut() {
                            object.remove("kind");
                            object.remove("apiVersion");
                        }
                        items.push(pod);
                    }
                }
                let version = state.resource_version.to_string();
                let mut metadata = json!({"resourceVersion": version});
                if offset + page.len() < keys.len() {
                    metadata["continue"] = json!(format!("fake-continue-{}", offset + page.len()));
                }
                answer(
                    200,
                    json!({"kind": "PodList", "apiVersion": "v1", "metadata": metadata, "items": items}),
                )
            }
            ("DELETE", Some(pod_name)) => {
                let key = (namespace, pod_name.clone());
                let grace: u64 = query
                    .get("gracePeriodSeconds")
                    .and_then(|g| g.parse().ok())
                    .unwrap_or(30);
                let terminate_after = state.terminate_after;
                let version = state.next_version();
                let Some(pod) = state.pods.get_mut(&key) else {
                    return answer(
                        404,
                        status_body(
                            404,
                            "NotFound",
                            &format!("pods \"{pod_name}\" not found"),
                            Some(&pod_name),
                        ),
                    );
                };
                let ended = matches!(
                    pod.object["status"]["phase"].as_str(),
                    Some("Succeeded" | "Failed")
                );
                if grace == 0 || ended {
                    let object = pod.object.clone();
                    state.pods.remove(&key);
                    return answer(200, object);
                }
                if pod.object["metadata"]["deletionTimestamp"].is_null() {
                    pod.object["metadata"]["deletionTimestamp"] =
                        json!(rfc3339(SystemTime::now() + Duration::from_secs(grace)));
                    pod.object["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
                    pod.object["metadata"]["resourceVersion"] = json!(version);
                    pod.remove_at = terminate_after.map(|after| Instant::now() + after);
                }
                answer(200, pod.object.clone())
            }
            _ => answer(
                405,
                status_body(
                    405,
                    "MethodNotAllowed",
                    "the server does not allow this method on the requested resource",
                    None,
                ),
            ),
        }
    }
}
