//! A small stateful ECS behind wiremock, for the conformance suite: RunTask
//! with client-token idempotency, DescribeTasks that is eventually
//! consistent and walks tasks through their lifecycle, StopTask, and
//! DescribeClusters.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

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
}

impl MiniTask {
    fn to_json(&self) -> Value {
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
        task
    }
}

#[derive(Default)]
struct State {
    tasks: BTreeMap<String, MiniTask>,
    /// client token → (task ARN, the request it came with)
    tokens: HashMap<String, (String, Value)>,
    next_task: u64,
    run_task_calls: u32,
    failing_run_tasks: VecDeque<(u16, &'static str, &'static str)>,
}

/// The mini-ECS. Clones share state, so a test keeps one to look inside
/// while the server answers with another.
#[derive(Clone, Default)]
pub struct MiniEcs {
    state: Arc<Mutex<State>>,
}

impl MiniEcs {
    /// An empty ECS with the test cluster.
    pub fn new() -> Self {
        Self::default()
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
        self.state.lock().unwrap().run_task_calls
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
        state.run_task_calls += 1;
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
            let task = state.tasks[arn].to_json();
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
        };
        let answer = task.to_json();
        state
            .tokens
            .insert(token.to_owned(), (task.arn.clone(), body.clone()));
        state.tasks.insert(task.arn.clone(), task);
        ecs_ok(json!({"tasks": [answer], "failures": []}))
    }

    fn describe_tasks(&self, body: &Value) -> ResponseTemplate {
        let mut state = self.state.lock().unwrap();
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
                "STOPPING" => "STOPPED",
                other => other,
            };
            tasks.push(task.to_json());
        }
        ecs_ok(json!({"tasks": tasks, "failures": failures}))
    }

    fn stop_task(&self, body: &Value) -> ResponseTemplate {
        let mut state = self.state.lock().unwrap();
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
        ecs_ok(json!({"task": task.to_json()}))
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

impl Respond for MiniEcs {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = request.body_json().unwrap_or(Value::Null);
        match operation_of(request).as_str() {
            "RunTask" => self.run_task(&body),
            "DescribeTasks" => self.describe_tasks(&body),
            "StopTask" => self.stop_task(&body),
            "DescribeClusters" => Self::describe_clusters(&body),
            other => ecs_error(
                400,
                "UnknownOperationException",
                &format!("the mini-ECS does not do {other:?}"),
            ),
        }
    }
}
