//! Test support for this crate's tests and for the tests of services built
//! on it (feature `testkit`, never in a release build): an ECS endpoint on
//! loopback speaking awsJson1_1 (single answers, or the stateful
//! [`mini_ecs::MiniEcs`]), and a platform pointed at it with static test
//! credentials (so no test ever looks for real credentials or asks the EC2
//! metadata service).

pub mod mini_ecs;

use std::time::Duration;

use crate::{AwsConfig, AwsEcsPlatform};
use aws_sdk_ecs::config::{BehaviorVersion, Credentials, Region};
use platform_core::{
    BotDeploymentConfig, BotId, InstallationId, MapEnv, MeetingPlatform, MeetingUrl, RetryPolicy,
};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockBuilder, MockServer, ResponseTemplate};

/// The tests' Region.
pub const REGION: &str = "eu-west-1";
/// The tests' account.
pub const ACCOUNT: &str = "123456789012";
/// The tests' cluster.
pub const CLUSTER: &str = "meeboter";
/// The tests' secret access key (a test looks for it in what is printed).
pub const SECRET_KEY: &str = "wJalrXUtnFEMI-test-s3cret-key";
const TARGET_PREFIX: &str = "AmazonEC2ContainerServiceV20141113.";
const AMZ_JSON: &str = "application/x-amz-json-1.1";

/// A complete environment pointing at `endpoint`.
pub fn env(endpoint: &str) -> MapEnv {
    MapEnv::from([
        ("AWS_REGION", REGION),
        ("ECS_CLUSTER", CLUSTER),
        ("ECS_SUBNETS", "subnet-0a1b2c3d,subnet-4e5f6a7b"),
        ("ECS_SECURITY_GROUPS", "sg-0123abcd"),
        ("ECS_TASK_DEF_ZOOM", "meeboter-zoom:3"),
        ("ECS_TASK_DEF_TEAMS", "meeboter-teams:5"),
        ("ECS_TASK_DEF_MEET", "meeboter-meet:2"),
        ("AWS_ACCESS_KEY_ID", "AKIDTEST"),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
    ])
    .with("AWS_ENDPOINT_URL_ECS", endpoint)
}

/// An SDK configuration for a local endpoint: static test credentials, a
/// fixed Region, nothing read from the machine.
pub fn ecs_config(endpoint: &str) -> aws_sdk_ecs::Config {
    aws_sdk_ecs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(
            "AKIDTEST", SECRET_KEY, None, None, "tests",
        ))
        .endpoint_url(endpoint)
        .build()
}

/// Retries quick enough for tests, with the default's shape.
pub fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(200),
        budget: Duration::from_secs(20),
        ..RetryPolicy::default()
    }
}

/// The installation id the tests' platforms run under, unless a test
/// names another.
pub const INSTALLATION: &str = "test0001";

/// An installation id.
pub fn installation(id: &str) -> InstallationId {
    InstallationId::new(id).expect("test installation id is valid")
}

/// The platform, configured by `env`, talking to `server`.
pub fn platform_with(server: &MockServer, env: &MapEnv) -> AwsEcsPlatform {
    platform_of(server, env, installation(INSTALLATION))
}

/// The platform of `installation`, configured by `env`, talking to
/// `server`.
pub fn platform_of(
    server: &MockServer,
    env: &MapEnv,
    installation: InstallationId,
) -> AwsEcsPlatform {
    platform_at(&server.uri(), env, installation)
}

/// The platform of `installation`, configured by `env`, talking to
/// whatever listens at `endpoint`.
pub fn platform_at(endpoint: &str, env: &MapEnv, installation: InstallationId) -> AwsEcsPlatform {
    let config = AwsConfig::from_env(env).expect("test environment is valid");
    AwsEcsPlatform::with_ecs_config(config, installation, ecs_config(endpoint))
        .with_retry_policy(quick_retries())
}

/// The platform with the default test environment.
pub fn platform(server: &MockServer) -> AwsEcsPlatform {
    platform_with(server, &env(&server.uri()))
}

/// A mock of one ECS operation.
pub fn ecs_call(operation: &str) -> MockBuilder {
    Mock::given(method("POST")).and(path("/")).and(header(
        "x-amz-target",
        format!("{TARGET_PREFIX}{operation}").as_str(),
    ))
}

/// The ECS operation a request is for.
pub fn operation_of(request: &wiremock::Request) -> String {
    request
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix(TARGET_PREFIX))
        .unwrap_or_default()
        .to_owned()
}

/// A 200 answer the way ECS sends it.
pub fn ecs_ok(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("x-amzn-RequestId", "5a3b6d0e-3c2f-4f0e-9d7c-1b2a3c4d5e6f")
        .set_body_raw(body.to_string(), AMZ_JSON)
}

/// An error answer the way ECS sends it.
pub fn ecs_error(status: u16, kind: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("x-amzn-RequestId", "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f")
        .set_body_raw(
            json!({"__type": kind, "message": message}).to_string(),
            AMZ_JSON,
        )
}

/// The ARN of test task `n`.
pub fn task_arn(n: u64) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task/{CLUSTER}/{n:032x}")
}

/// A task as DescribeTasks or RunTask returns it.
pub fn task_json(arn: &str, last_status: &str, private_ip: Option<&str>) -> Value {
    let mut details = vec![json!({"name": "subnetId", "value": "subnet-0a1b2c3d"})];
    let eni_status = match (last_status, private_ip) {
        ("PROVISIONING", _) | (_, None) => "PRECREATED",
        ("DEPROVISIONING" | "STOPPED", _) => "DELETED",
        _ => "ATTACHED",
    };
    if let Some(ip) = private_ip {
        details.push(json!({"name": "networkInterfaceId", "value": "eni-0a1b2c3d4e5f"}));
        details.push(json!({"name": "privateIPv4Address", "value": ip}));
    }
    json!({
        "taskArn": arn,
        "clusterArn": format!("arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{CLUSTER}"),
        "taskDefinitionArn": format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/meeboter-zoom:3"),
        "lastStatus": last_status,
        "desiredStatus": if last_status == "STOPPED" { "STOPPED" } else { "RUNNING" },
        "launchType": "FARGATE",
        "platformVersion": "1.4.0",
        "cpu": "1024",
        "memory": "2048",
        "group": "family:meeboter-zoom",
        "startedBy": "meeboter-deploy",
        "version": 1,
        "createdAt": 1_764_220_000.123,
        "attachments": [{
            "id": "a1b2c3d4-5678-90ab-cdef-11111EXAMPLE",
            "type": "ElasticNetworkInterface",
            "status": eni_status,
            "details": details
        }],
        "containers": [{
            "containerArn": format!("arn:aws:ecs:{REGION}:{ACCOUNT}:container/{CLUSTER}/0f0f/aaaa"),
            "taskArn": arn,
            "name": "zoom-bot",
            "image": "ghcr.io/meeboter/zoom-bot:1.8.0",
            "lastStatus": last_status,
        }],
        "overrides": {"containerOverrides": [{"name": "zoom-bot"}], "inferenceAcceleratorOverrides": []},
        "tags": []
    })
}

/// A valid config for bot `id` on `platform`, with a passcode in its URL.
pub fn bot(id: u64, platform: MeetingPlatform) -> BotDeploymentConfig {
    let url = match platform {
        MeetingPlatform::Zoom => {
            format!("https://us02web.zoom.us/j/8{id:010}?pwd=zoomPasscode{id}")
        }
        MeetingPlatform::Teams => {
            format!("https://teams.live.com/meet/9{id:012}?p=teamsPasscode{id}")
        }
        MeetingPlatform::Meet => "https://meet.google.com/abc-defg-hij".to_owned(),
    };
    let url = MeetingUrl::parse(platform, &url).expect("test meeting URL is valid");
    BotDeploymentConfig::new(BotId(id), url)
}
