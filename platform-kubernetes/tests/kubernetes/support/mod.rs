//! What every test of the Kubernetes platform needs: pod templates on disk,
//! a fake API server on loopback, and a platform pointed at it with no
//! credentials from the machine.

#![allow(dead_code)]

pub mod fake_api;

use std::path::{Path, PathBuf};
use std::time::Duration;

use platform_core::{
    BotDeploymentConfig, BotId, InstallationId, MapEnv, MeetingPlatform, MeetingUrl, RetryPolicy,
    SecretString,
};
use platform_kubernetes::{ClusterFiles, KubernetesConfig, KubernetesPlatform};
use tempfile::TempDir;
use wiremock::MockServer;

pub use fake_api::FakeApi;

pub const NAMESPACE: &str = "bots";
pub const INSTALLATION: &str = "0a1b2c3d4e5f6071";
pub const MEETING_PASSWORD: &str = "s3cret-passcode-771";

/// A template like the operator's: tolerations, a node selector, volumes,
/// resources, a probe, and an env var of the operator's own.
pub const ZOOM_TEMPLATE: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: copied-from-kubectl
  namespace: bots
  uid: 9b1f3c2e-0000-4000-8000-000000000001
  resourceVersion: "4711"
  labels:
    app: meeboter-bot
    team: media
  annotations:
    cluster-autoscaler.kubernetes.io/safe-to-evict: "false"
spec:
  nodeSelector:
    pool: meeting-bots
  tolerations:
    - key: dedicated
      operator: Equal
      value: meeting-bots
      effect: NoSchedule
  terminationGracePeriodSeconds: 45
  securityContext:
    runAsNonRoot: true
    runAsUser: 1000
  containers:
    - name: bot
      image: registry.example/meeboter/zoom-bot:1.4.2
      env:
        - name: LOG_LEVEL
          value: debug
        - name: BOT_ID
          value: "should be replaced"
        - name: CALLBACK_URL
          value: "http://meeboter-api.bots.svc/bots/$(BOT_ID)/events"
      ports:
        - containerPort: 8080
      resources:
        requests:
          cpu: "1"
          memory: 2Gi
        limits:
          memory: 3Gi
      readinessProbe:
        httpGet:
          path: /health
          port: 8080
      volumeMounts:
        - name: dshm
          mountPath: /dev/shm
    - name: log-shipper
      image: registry.example/fluent-bit:3.1
  volumes:
    - name: dshm
      emptyDir:
        medium: Memory
        sizeLimit: 1Gi
status:
  phase: Running
"#;

/// A PodTemplateSpec without a memory request or `/dev/shm`.
pub const TEAMS_TEMPLATE: &str = r#"
metadata:
  labels:
    app: meeboter-bot
spec:
  containers:
    - name: teams-bot
      image: registry.example/meeboter/teams-bot:2.0.0
"#;

/// A PodTemplate (kind) around a template.
pub const MEET_TEMPLATE: &str = r#"
apiVersion: v1
kind: PodTemplate
metadata:
  name: meet-bot
template:
  metadata:
    labels:
      app: meeboter-bot
  spec:
    containers:
      - name: bot
        image: registry.example/meeboter/meet-bot:0.9.1
        resources:
          requests:
            memory: 1536Mi
        volumeMounts:
          - name: shm
            mountPath: /dev/shm
    volumes:
      - name: shm
        emptyDir:
          medium: Memory
          sizeLimit: 64Mi
"#;

/// Pod templates written to a temporary directory.
pub struct Templates {
    dir: TempDir,
}

impl Templates {
    pub fn new() -> Self {
        Self::with(ZOOM_TEMPLATE, TEAMS_TEMPLATE, MEET_TEMPLATE)
    }

    pub fn with(zoom: &str, teams: &str, meet: &str) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        for (file, text) in [
            ("zoom.yaml", zoom),
            ("teams.yaml", teams),
            ("meet.yaml", meet),
        ] {
            std::fs::write(dir.path().join(file), text).expect("template written");
        }
        Self { dir }
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A complete environment using these templates.
    pub fn env(&self) -> MapEnv {
        MapEnv::from([
            ("K8S_NAMESPACE", NAMESPACE),
            ("K8S_CONTAINER_TEAMS", "teams-bot"),
            ("K8S_STOP_GRACE", "30"),
        ])
        .with(
            "K8S_POD_TEMPLATE_ZOOM",
            self.path("zoom.yaml").display().to_string(),
        )
        .with(
            "K8S_POD_TEMPLATE_TEAMS",
            self.path("teams.yaml").display().to_string(),
        )
        .with(
            "K8S_POD_TEMPLATE_MEET",
            self.path("meet.yaml").display().to_string(),
        )
    }
}

/// Cluster files that do not exist: the tests never run in a pod.
pub fn no_cluster_files() -> ClusterFiles {
    ClusterFiles {
        namespace_file: PathBuf::from("/nonexistent/serviceaccount/namespace"),
    }
}

/// Retries quick enough for tests, with the default's shape.
pub fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(100),
        jitter: false,
        budget: Duration::from_secs(10),
        ..RetryPolicy::default()
    }
}

pub fn installation() -> InstallationId {
    InstallationId::new(INSTALLATION).expect("a valid installation id")
}

/// The platform configured by `env`, talking to `url`.
pub fn platform_at(url: &str, env: &MapEnv) -> KubernetesPlatform {
    let config = KubernetesConfig::from_env_with(env, &no_cluster_files())
        .expect("test environment is valid");
    let kube_config = kube::Config::new(url.parse().expect("a URL"));
    KubernetesPlatform::with_kube_config(config, installation(), kube_config)
        .expect("a client")
        .with_retry_policy(quick_retries())
}

/// A fake API server and the platform pointed at it.
pub struct Cluster {
    pub server: MockServer,
    pub api: FakeApi,
    pub templates: Templates,
}

impl Cluster {
    pub async fn start() -> Self {
        let server = MockServer::start().await;
        let api = FakeApi::new();
        api.mount(&server).await;
        Self {
            server,
            api,
            templates: Templates::new(),
        }
    }

    pub fn platform(&self) -> KubernetesPlatform {
        self.platform_with(&self.templates.env())
    }

    pub fn platform_with(&self, env: &MapEnv) -> KubernetesPlatform {
        platform_at(&self.server.uri(), env)
    }

    /// The requests the server answered, as `METHOD path?query`.
    pub async fn requests(&self) -> Vec<wiremock::Request> {
        self.server.received_requests().await.unwrap_or_default()
    }
}

/// A Zoom bot's config with a meeting password.
pub fn zoom_bot(id: u64) -> BotDeploymentConfig {
    let url = MeetingUrl::parse(
        MeetingPlatform::Zoom,
        &format!("https://us02web.zoom.us/j/8{id:010}?pwd=abc"),
    )
    .expect("a valid Zoom URL");
    BotDeploymentConfig::new(BotId(id), url)
        .with_meeting_password(Some(SecretString::from(MEETING_PASSWORD)))
        .expect("a valid password")
}

/// A bot of `platform`.
pub fn bot_on(platform: MeetingPlatform, id: u64) -> BotDeploymentConfig {
    let url = match platform {
        MeetingPlatform::Zoom => format!("https://us02web.zoom.us/j/8{id:010}"),
        MeetingPlatform::Teams => format!("https://teams.live.com/meet/9{id:012}"),
        MeetingPlatform::Meet => "https://meet.google.com/abc-defg-hij".to_owned(),
    };
    BotDeploymentConfig::new(
        BotId(id),
        MeetingUrl::parse(platform, &url).expect("valid URL"),
    )
}

/// The pod name of `bot` attempt `attempt` in the test installation.
pub fn pod_name(bot: u64, attempt: u32) -> String {
    format!("meeboter-{INSTALLATION}-{bot}-{attempt}")
}
