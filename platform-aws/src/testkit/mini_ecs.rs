//! A small stateful ECS behind wiremock, for the conformance suite: RunTask
//! with client-token idempotency and tags, DescribeTasks that is eventually
//! consistent, walks tasks through their lifecycle and answers tags only
//! when asked (`include: ["TAGS"]`), ListTasks with its `startedBy` and
//! `desiredStatus` filters and pages, StopTask, DescribeClusters and
//! DescribeTaskDefinition, in ECS's wire format. On request it enforces
//! ECS's request token buckets and answers `ThrottlingException` past them.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{EcsBucket, EcsRateLimits};

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::{ACCOUNT, CLUSTER, REGION, ecs_error, ecs_ok, operation_of, task_arn, task_json};

/// One task the mini-ECS keeps.
#[derive(Clone, Debug)]
struct MiniTask {
    arn: String,
    last_status: &'static str,
    desired_status: &'static str,
    /// DescribeTasks calls that saw the task since it was started or
    /// stopped; the lifecycle advances with them.
    describes: u32,
    ip: String,
    stopped_reason: Option<String>,
    started_by: String,
    /// `[{"key": …, "value": …}]`, as RunTask was given them.
    tags: Value,
}

impl MiniTask {
    /// The task as ECS describes it; its tags only when asked for, as
    /// DescribeTasks does without `include: ["TAGS"]`.
    fn to_json(&self, with_tags: bool) -> Value {
        let ip =
            (self.describes > 0 || self.last_status != "PROVISIONING").then_some(self.ip.as_str());
        let mut task = task_json(&self.arn, self.last_status, ip);
        task["desiredStatus"] = json!(self.desired_status);
        task["startedBy"] = json!(self.started_by);
        if self.last_status == "STOPPED" {
            task["stopCode"] = json!("UserInitiated");
            task["containers"][0]["exitCode"] = json!(143);
        }
        if let Some(reason) = &self.stopped_reason {
            task["stoppedReason"] = json!(reason);
        }
        match task.as_object_mut() {
            Some(fields) if !with_tags => {
                fields.remove("tags");
            }
            _ => task["tags"] = self.tags.clone(),
        }
        task
    }
}

/// A task definition the mini-ECS knows, by `family:revision`.
#[derive(Clone, Debug)]
struct MiniTaskDefinition {
    family: String,
    revision: u32,
    body: Value,
}

/// The task definitions of the test environment (`support::env`): Fargate,
/// awsvpc, ACTIVE, with the default bot container names.
fn default_task_definitions() -> Vec<MiniTaskDefinition> {
    [
        ("meeboter-zoom", 3, "zoom-bot"),
        ("meeboter-teams", 5, "teams-bot"),
        ("meeboter-meet", 2, "meet-bot"),
    ]
    .into_iter()
    .map(|(family, revision, container)| MiniTaskDefinition {
        family: family.to_owned(),
        revision,
        body: task_definition_json(family, revision, container),
    })
    .collect()
}

/// A task definition as DescribeTaskDefinition answers it.
pub fn task_definition_json(family: &str, revision: u32, container: &str) -> Value {
    json!({
        "taskDefinitionArn": format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{family}:{revision}"),
        "containerDefinitions": [{
            "name": container,
            "image": format!("ghcr.io/meeboter/{container}:1.8.0"),
            "cpu": 0,
            "portMappings": [{"containerPort": 8080, "hostPort": 8080, "protocol": "tcp"}],
            "essential": true,
            "environment": [],
            "mountPoints": [],
            "volumesFrom": [],
            "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/meeboter", "awslogs-region": REGION, "awslogs-stream-prefix": "bot"}}
        }],
        "family": family,
        "executionRoleArn": format!("arn:aws:iam::{ACCOUNT}:role/ecsTaskExecutionRole"),
        "networkMode": "awsvpc",
        "revision": revision,
        "volumes": [],
        "status": "ACTIVE",
        "requiresAttributes": [{"name": "com.amazonaws.ecs.capability.logging-driver.awslogs"}, {"name": "ecs.capability.task-eni"}],
        "placementConstraints": [],
        "compatibilities": ["EC2", "FARGATE"],
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "1024",
        "memory": "2048",
        "registeredAt": 1_764_000_000.0,
        "registeredBy": format!("arn:aws:iam::{ACCOUNT}:user/operator")
    })
}

/// One of ECS's token buckets, on the wall clock.
struct Bucket {
    shape: EcsBucket,
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn full(shape: EcsBucket) -> Self {
        Self {
            shape,
            tokens: shape.burst,
            updated: Instant::now(),
        }
    }

    /// Refills up to now; whether a whole token is there. (A billionth of
    /// a token short counts as there: ECS does not meter to the
    /// nanosecond either.)
    fn has_token(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.shape.per_second).min(self.shape.burst);
        self.updated = now;
        self.tokens >= 1.0 - 1e-9
    }
}

/// ECS's buckets: Fargate launches, modify (RunTask and StopTask), read
/// (DescribeTasks and ListTasks).
struct Buckets {
    launches: Bucket,
    modify: Bucket,
    read: Bucket,
}

/// What the mini-ECS counts of the calls it was sent.
#[derive(Clone, Debug, Default)]
pub struct CallCounts {
    /// RunTask calls the buckets let through (a throttled call is only
    /// counted in `throttled`).
    pub run_task: u32,
    /// StopTask calls the buckets let through.
    pub stop_task: u32,
    /// DescribeTasks calls the buckets let through.
    pub describe_tasks: u32,
    /// Calls answered `ThrottlingException` by the enforced buckets.
    pub throttled: u32,
    /// When the first RunTask that started a task arrived.
    pub first_launch: Option<Instant>,
    /// When the last RunTask that started a task arrived.
    pub last_launch: Option<Instant>,
}

#[derive(Default)]
struct State {
    tasks: BTreeMap<String, MiniTask>,
    task_definitions: Vec<MiniTaskDefinition>,
    /// client token → (task ARN, the request it came with)
    tokens: HashMap<String, (String, Value)>,
    next_task: u64,
    list_tasks_calls: u32,
    failing_run_tasks: VecDeque<(u16, &'static str, &'static str)>,
    buckets: Option<Buckets>,
    counts: CallCounts,
    /// DescribeTasks calls a stopping task stays STOPPING for.
    stopping_describes: u32,
    /// How long RunTask answers are held back.
    run_task_delay: Option<Duration>,
}

/// Whether the buckets throttle `operation`; when they let it through, its
/// tokens are taken.
fn throttle(buckets: Option<&mut Buckets>, operation: &str) -> bool {
    let Some(buckets) = buckets else {
        return false;
    };
    let now = Instant::now();
    let allowed = match operation {
        "RunTask" => {
            let ok = buckets.launches.has_token(now) && buckets.modify.has_token(now);
            if ok {
                buckets.launches.tokens -= 1.0;
                buckets.modify.tokens -= 1.0;
            }
            ok
        }
        "StopTask" => {
            let ok = buckets.modify.has_token(now);
            if ok {
                buckets.modify.tokens -= 1.0;
            }
            ok
        }
        "DescribeTasks" | "ListTasks" => {
            let ok = buckets.read.has_token(now);
            if ok {
                buckets.read.tokens -= 1.0;
            }
            ok
        }
        _ => true,
    };
    !allowed
}

/// The mini-ECS. Clones share state, so a test keeps one to look inside
/// while the server answers with another.
#[derive(Clone, Default)]
pub struct MiniEcs {
    state: Arc<Mutex<State>>,
}

impl MiniEcs {
    /// An ECS with the test cluster, the test environment's task
    /// definitions, and no task.
    pub fn new() -> Self {
        let ecs = Self::default();
        ecs.state.lock().unwrap().task_definitions = default_task_definitions();
        ecs
    }

    /// Registers (or replaces) a task definition revision.
    pub fn register_task_definition(&self, family: &str, revision: u32, body: Value) {
        let mut state = self.state.lock().unwrap();
        state
            .task_definitions
            .retain(|d| !(d.family == family && d.revision == revision));
        state.task_definitions.push(MiniTaskDefinition {
            family: family.to_owned(),
            revision,
            body,
        });
    }

    /// Forgets every revision of a task definition family.
    pub fn delete_task_definition_family(&self, family: &str) {
        self.state
            .lock()
            .unwrap()
            .task_definitions
            .retain(|d| d.family != family);
    }

    /// Enforces ECS's request buckets of the shape of `limits` from now on
    /// (full at first): a call past them is answered `ThrottlingException`
    /// "Rate exceeded" and does nothing.
    pub fn enforce_limits(&self, limits: EcsRateLimits) {
        self.state.lock().unwrap().buckets = Some(Buckets {
            launches: Bucket::full(limits.launches),
            modify: Bucket::full(limits.modify),
            read: Bucket::full(limits.read),
        });
    }

    /// From now on every RunTask answer is held back for `delay` (`None`:
    /// answered at once again): a slow ECS, whose callers give up before
    /// the answer comes. The task is started when the request arrives, as
    /// ECS starts it whether or not its caller hears back.
    pub fn hold_run_tasks(&self, delay: Option<Duration>) {
        self.state.lock().unwrap().run_task_delay = delay;
    }

    /// A stopped task stays STOPPING for this many more DescribeTasks
    /// calls before it is STOPPED (default 0: STOPPED at the first look).
    pub fn stay_stopping_for(&self, describes: u32) {
        self.state.lock().unwrap().stopping_describes = describes;
    }

    /// What was sent so far.
    pub fn counts(&self) -> CallCounts {
        self.state.lock().unwrap().counts.clone()
    }

    /// Starts a task the way someone else would (another installation, an
    /// older version, an operator): RUNNING at once, with these `startedBy`
    /// and tags. Returns its ARN.
    pub fn start_task_directly(&self, started_by: &str, tags: &[(&str, &str)]) -> String {
        let mut state = self.state.lock().unwrap();
        state.next_task += 1;
        let n = state.next_task;
        let task = MiniTask {
            arn: task_arn(0xec5_0000 + n),
            last_status: "RUNNING",
            desired_status: "RUNNING",
            describes: 1,
            ip: format!("10.0.{}.{}", n / 250, n % 250 + 1),
            stopped_reason: None,
            started_by: started_by.to_owned(),
            tags: Value::Array(
                tags.iter()
                    .map(|(key, value)| json!({"key": key, "value": value}))
                    .collect(),
            ),
        };
        let arn = task.arn.clone();
        state.tasks.insert(arn.clone(), task);
        arn
    }

    /// How many ListTasks requests arrived.
    pub fn list_tasks_calls(&self) -> u32 {
        self.state.lock().unwrap().list_tasks_calls
    }

    /// The tags of a task, as `key=value`.
    pub fn tags_of(&self, arn: &str) -> Vec<String> {
        let state = self.state.lock().unwrap();
        state.tasks[arn]
            .tags
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                format!(
                    "{}={}",
                    t["key"].as_str().unwrap_or_default(),
                    t["value"].as_str().unwrap_or_default()
                )
            })
            .collect()
    }

    /// Serves every ECS call on `server`.
    pub async fn mount(&self, server: &MockServer) {
        Mock::given(method("POST"))
            .and(path("/"))
            .respond_with(self.clone())
            .mount(server)
            .await;
    }

    /// The next `count` RunTask calls fail with this error, without
    /// starting anything.
    pub fn fail_next_run_tasks(
        &self,
        count: usize,
        status: u16,
        kind: &'static str,
        message: &'static str,
    ) {
        let mut state = self.state.lock().unwrap();
        for _ in 0..count {
            state.failing_run_tasks.push_back((status, kind, message));
        }
    }

    /// How many RunTask requests arrived.
    pub fn run_task_calls(&self) -> u32 {
        self.state.lock().unwrap().counts.run_task
    }

    /// How many tasks were ever started.
    pub fn tasks_started(&self) -> usize {
        self.state.lock().unwrap().tasks.len()
    }

    /// Tasks not stopped yet.
    pub fn tasks_not_stopped(&self) -> Vec<String> {
        let state = self.state.lock().unwrap();
        state
            .tasks
            .values()
            .filter(|t| t.last_status != "STOPPED")
            .map(|t| t.arn.clone())
            .collect()
    }

    fn run_task(&self, body: &Value) -> ResponseTemplate {
        let mut state = self.state.lock().unwrap();
        state.counts.run_task += 1;
        if let Some((status, kind, message)) = state.failing_run_tasks.pop_front() {
            return ecs_error(status, kind, message);
        }
        if body["cluster"] != json!(CLUSTER) {
            return ecs_error(400, "ClusterNotFoundException", "Cluster not found.");
        }
        if body["count"] != json!(1) {
            return ecs_error(
                400,
                "InvalidParameterException",
                "count must be 1 for this mock",
            );
        }
        if body.get("launchType").is_some() && body.get("capacityProviderStrategy").is_some() {
            return ecs_error(
                400,
                "InvalidParameterException",
                "Specifying both a launch type and capacity provider strategy is not supported.",
            );
        }
        let Some(definition) = find_task_definition(
            &state.task_definitions,
            body["taskDefinition"].as_str().unwrap_or_default(),
        ) else {
            return ecs_error(400, "ClientException", "TaskDefinition not found.");
        };
        let containers: Vec<&str> = definition.body["containerDefinitions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str())
            .collect();
        for wanted in body["overrides"]["containerOverrides"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| o["name"].as_str())
        {
            if !containers.contains(&wanted) {
                return ecs_error(
                    400,
                    "InvalidParameterException",
                    &format!(
                        "Override for container named {wanted} is not a container in the TaskDefinition."
                    ),
                );
            }
        }
        let Some(token) = body["clientToken"].as_str() else {
            return ecs_error(
                400,
                "InvalidParameterException",
                "this mock wants a clientToken",
            );
        };
        if let Some((arn, earlier)) = state.tokens.get(token) {
            if earlier != body {
                let conflict = json!({
                    "__type": "ConflictException",
                    "message": "The specified clientToken is already in use with a different RunTask request.",
                    "resourceIds": [arn],
                });
                return ResponseTemplate::new(400)
                    .set_body_raw(conflict.to_string(), "application/x-amz-json-1.1");
            }
            let task = state.tasks[arn].to_json(true);
            return ecs_ok(json!({"tasks": [task], "failures": []}));
        }
        state.next_task += 1;
        let n = state.next_task;
        let task = MiniTask {
            arn: task_arn(0xec5_0000 + n),
            last_status: "PROVISIONING",
            desired_status: "RUNNING",
            describes: 0,
            ip: format!("10.0.{}.{}", n / 250, n % 250 + 1),
            stopped_reason: None,
            started_by: body["startedBy"].as_str().unwrap_or_default().to_owned(),
            tags: body.get("tags").cloned().unwrap_or_else(|| json!([])),
        };
        let answer = task.to_json(true);
        state
            .tokens
            .insert(token.to_owned(), (task.arn.clone(), body.clone()));
        state.tasks.insert(task.arn.clone(), task);
        let now = Instant::now();
        state.counts.first_launch.get_or_insert(now);
        state.counts.last_launch = Some(now);
        ecs_ok(json!({"tasks": [answer], "failures": []}))
    }

    fn describe_tasks(&self, body: &Value) -> ResponseTemplate {
        let mut state = self.state.lock().unwrap();
        state.counts.describe_tasks += 1;
        let stopping_describes = state.stopping_describes;
        let with_tags = body["include"]
            .as_array()
            .is_some_and(|fields| fields.iter().any(|f| f == "TAGS"));
        let asked: Vec<String> = body["tasks"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if asked.is_empty() || asked.len() > 100 {
            return ecs_error(
                400,
                "InvalidParameterException",
                "Tasks cannot be empty or more than 100.",
            );
        }
        let mut tasks = Vec::new();
        let mut failures = Vec::new();
        for arn in asked {
            let Some(task) = state.tasks.get_mut(&arn) else {
                failures.push(json!({"arn": arn, "reason": "MISSING"}));
                continue;
            };
            task.describes += 1;
            // Eventually consistent: a task is not listed by the first
            // describe after its launch.
            if task.last_status == "PROVISIONING" && task.describes == 1 {
                failures.push(json!({"arn": arn, "reason": "MISSING"}));
                continue;
            }
            task.last_status = match task.last_status {
                "PROVISIONING" => "PENDING",
                "PENDING" => "RUNNING",
                "STOPPING" if task.describes > stopping_describes => "STOPPED",
                other => other,
            };
            tasks.push(task.to_json(with_tags));
        }
        ecs_ok(json!({"tasks": tasks, "failures": failures}))
    }

    fn stop_task(&self, body: &Value) -> ResponseTemplate {
        let mut state = self.state.lock().unwrap();
        state.counts.stop_task += 1;
        let arn = body["task"].as_str().unwrap_or_default();
        let Some(task) = state.tasks.get_mut(arn) else {
            return ecs_error(
                400,
                "InvalidParameterException",
                "The referenced task was not found.",
            );
        };
        if task.last_status != "STOPPED" {
            task.last_status = "STOPPING";
            task.desired_status = "STOPPED";
            task.describes = 0;
            task.stopped_reason = body["reason"].as_str().map(str::to_owned);
        }
        ecs_ok(json!({"task": task.to_json(false)}))
    }

    /// ListTasks of the test cluster: `startedBy` (which ECS wants as the
    /// only filter besides the desired status), `desiredStatus` (RUNNING
    /// when not given), pages of `maxResults` (1 to 100, default 100) with
    /// an opaque `nextToken`.
    fn list_tasks(&self, body: &Value) -> ResponseTemplate {
        let mut state = self.state.lock().unwrap();
        state.list_tasks_calls += 1;
        if body["cluster"] != json!(CLUSTER) {
            return ecs_error(400, "ClusterNotFoundException", "Cluster not found.");
        }
        let started_by = body["startedBy"].as_str();
        if started_by.is_some()
            && ["family", "serviceName", "containerInstance"]
                .iter()
                .any(|other| body.get(*other).is_some())
        {
            return ecs_error(
                400,
                "InvalidParameterException",
                "startedBy must be the only filter when it is specified.",
            );
        }
        let desired = body["desiredStatus"].as_str().unwrap_or("RUNNING");
        if !["RUNNING", "PENDING", "STOPPED"].contains(&desired) {
            return ecs_error(400, "InvalidParameterException", "Invalid desiredStatus.");
        }
        let page_size = match body.get("maxResults") {
            None => 100,
            Some(n) => match n.as_u64() {
                Some(n @ 1..=100) => n as usize,
                _ => {
                    return ecs_error(
                        400,
                        "InvalidParameterException",
                        "maxResults must be between 1 and 100.",
                    );
                }
            },
        };
        let start = match body["nextToken"].as_str() {
            None => 0,
            Some(token) => match token
                .strip_prefix("mini-ecs-page-")
                .and_then(|n| n.parse().ok())
            {
                Some(start) => start,
                None => return ecs_error(400, "InvalidParameterException", "Invalid nextToken."),
            },
        };
        let matching: Vec<String> = state
            .tasks
            .values_mut()
            .filter(|t| t.desired_status == desired)
            .filter(|t| started_by.is_none_or(|s| s == t.started_by))
            .map(|t| {
                // Listed, so visible from now on.
                t.describes = t.describes.max(1);
                t.arn.clone()
            })
            .collect();
        let page: Vec<&String> = matching.iter().skip(start).take(page_size).collect();
        let mut answer = json!({"taskArns": page});
        if start + page_size < matching.len() {
            answer["nextToken"] = json!(format!("mini-ecs-page-{}", start + page_size));
        }
        ecs_ok(answer)
    }

    /// DescribeTaskDefinition by `family`, `family:revision` or ARN.
    fn describe_task_definition(&self, body: &Value) -> ResponseTemplate {
        let state = self.state.lock().unwrap();
        let asked = body["taskDefinition"].as_str().unwrap_or_default();
        match find_task_definition(&state.task_definitions, asked) {
            Some(definition) => ecs_ok(json!({"taskDefinition": definition.body, "tags": []})),
            None => ecs_error(
                400,
                "ClientException",
                "Unable to describe task definition.",
            ),
        }
    }

    fn describe_clusters(body: &Value) -> ResponseTemplate {
        let asked = body["clusters"][0].as_str().unwrap_or("default");
        if asked == CLUSTER {
            ecs_ok(json!({
                "clusters": [{
                    "clusterArn": format!("arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{CLUSTER}"),
                    "clusterName": CLUSTER,
                    "status": "ACTIVE",
                    "registeredContainerInstancesCount": 0,
                    "runningTasksCount": 0,
                    "pendingTasksCount": 0,
                    "activeServicesCount": 0
                }],
                "failures": []
            }))
        } else {
            ecs_ok(json!({
                "clusters": [],
                "failures": [{"arn": format!("arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{asked}"), "reason": "MISSING"}]
            }))
        }
    }
}

/// The task definition `asked` names: `family` (its latest ACTIVE
/// revision), `family:revision`, or an ARN ending in either.
fn find_task_definition<'a>(
    definitions: &'a [MiniTaskDefinition],
    asked: &str,
) -> Option<&'a MiniTaskDefinition> {
    let name = asked
        .rsplit_once(":task-definition/")
        .map_or(asked, |(_, name)| name);
    match name.split_once(':') {
        Some((family, revision)) => {
            let revision: u32 = revision.parse().ok()?;
            definitions
                .iter()
                .find(|d| d.family == family && d.revision == revision)
        }
        None => definitions
            .iter()
            .filter(|d| d.family == name && d.body["status"] == "ACTIVE")
            .max_by_key(|d| d.revision),
    }
}

impl Respond for MiniEcs {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = request.body_json().unwrap_or(Value::Null);
        let operation = operation_of(request);
        {
            let mut state = self.state.lock().unwrap();
            if throttle(state.buckets.as_mut(), &operation) {
                state.counts.throttled += 1;
                return ecs_error(400, "ThrottlingException", "Rate exceeded");
            }
        }
        match operation.as_str() {
            "RunTask" => {
                let answer = self.run_task(&body);
                match self.state.lock().unwrap().run_task_delay {
                    Some(delay) => answer.set_delay(delay),
                    None => answer,
                }
            }
            "DescribeTasks" => self.describe_tasks(&body),
            "StopTask" => self.stop_task(&body),
            "DescribeClusters" => Self::describe_clusters(&body),
            "ListTasks" => self.list_tasks(&body),
            "DescribeTaskDefinition" => self.describe_task_definition(&body),
            other => ecs_error(
                400,
                "UnknownOperationException",
                &format!("the mini-ECS does not do {other:?}"),
            ),
        }
    }
}
