//! The status sweep at scale: 1,000 bot pods (`BENCH_PODS` to change it) in
//! the fake API server, every bot's status read with one
//! `get_bot_statuses` call, as the reconciler does each pass. Prints the API
//! calls one sweep makes (one LIST per 500 pods is the goal) and the time
//! per sweep, measured on loopback HTTP with the real wire format, so it is
//! this crate's work (request building, JSON decoding of every pod, the
//! mapping) plus the fake's.
//!
//! `cargo bench -p platform-kubernetes` runs it. Pacing is set out of the
//! way (`K8S_API_QPS=1000`) so the time is the work, not the wait; at the
//! default 20 requests a second two LISTs never wait either.

#[path = "../tests/kubernetes/support/fake_api.rs"]
mod fake_api;

use std::time::{Duration, Instant};

use platform_core::{InstallationId, MapEnv, PlatformId, PlatformService, StatusKind};
use platform_kubernetes::{ClusterFiles, KubernetesConfig, KubernetesPlatform};
use serde_json::{Value, json};

const INSTALLATION: &str = "0a1b2c3d4e5f6071";
const SWEEPS: usize = 30;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() {
    let pods: u64 = std::env::var("BENCH_PODS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let server = wiremock::MockServer::start().await;
        let api = fake_api::FakeApi::new();
        api.mount(&server).await;

        let fixture: Value =
            serde_json::from_str(include_str!("../tests/fixtures/pods/running-ready.json"))
                .expect("the fixture parses");
        let mut ids = Vec::new();
        for bot in 1..=pods {
            let name = format!("meeboter-{INSTALLATION}-{bot}-1");
            let mut pod = fixture.clone();
            pod["metadata"]["name"] = json!(name);
            pod["metadata"]["labels"]["meeboter.io/bot-id"] = json!(bot.to_string());
            api.insert_pod(pod);
            ids.push(PlatformId::new(format!("bots/{name}")));
        }

        let dir = tempfile::tempdir().expect("a temporary directory");
        let template = dir.path().join("bot.yaml");
        std::fs::write(
            &template,
            "spec: {containers: [{name: bot, image: registry.example/bot:1}]}\n",
        )
        .expect("template written");
        let path = template.display().to_string();
        let env = MapEnv::from([("K8S_NAMESPACE", "bots"), ("K8S_API_QPS", "1000")])
            .with("K8S_POD_TEMPLATE_ZOOM", path.clone())
            .with("K8S_POD_TEMPLATE_TEAMS", path.clone())
            .with("K8S_POD_TEMPLATE_MEET", path);
        let files = ClusterFiles {
            namespace_file: dir.path().join("no-namespace-file"),
        };
        let config = KubernetesConfig::from_env_with(&env, &files).expect("valid config");
        let platform = KubernetesPlatform::with_kube_config(
            config,
            InstallationId::new(INSTALLATION).expect("valid id"),
            kube::Config::new(server.uri().parse().expect("a URL")),
        )
        .expect("a client");

        // One sweep to warm the connection pool.
        platform.get_bot_statuses(&ids).await.expect("a sweep");
        api.reset_calls();
        let mut samples = Vec::with_capacity(SWEEPS);
        for _ in 0..SWEEPS {
            let started = Instant::now();
            let statuses = platform.get_bot_statuses(&ids).await.expect("a sweep");
            samples.push(started.elapsed());
            assert_eq!(statuses.len(), ids.len());
            assert!(statuses.values().all(|s| s.kind == StatusKind::Running));
        }
        let lists = api.calls("GET pods");
        let gets = api.calls("GET pod");
        samples.sort();
        let mean = samples.iter().sum::<Duration>() / SWEEPS as u32;
        println!("status sweep of {pods} bot pods, {SWEEPS} sweeps");
        println!(
            "calls per sweep   {:.1} LIST ({} pods per page), {} GET",
            f64::from(lists) / SWEEPS as f64,
            platform_kubernetes::LIST_PAGE_SIZE,
            gets / SWEEPS as u32
        );
        println!(
            "time per sweep    p50 {:.1} ms   p99 {:.1} ms   mean {:.1} ms   ({:.1} µs per bot)",
            percentile(&samples, 50.0).as_secs_f64() * 1e3,
            percentile(&samples, 99.0).as_secs_f64() * 1e3,
            mean.as_secs_f64() * 1e3,
            mean.as_secs_f64() * 1e6 / pods as f64,
        );
    });
}
