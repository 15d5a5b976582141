//! The Kubernetes platform of Meeboter deploy: each meeting bot runs as one
//! pod, made from the operator's pod template for its meeting platform.
//!
//! - **Deploy** creates one pod per bot (`restartPolicy: Never`), named
//!   from the installation, the bot and the attempt
//!   (`meeboter-<installation>-<bot>-<attempt>`), so a deploy repeated
//!   after a crash finds the pod it created (`AlreadyExists`: read it, check
//!   its labels, return it) and never starts a second. Labels mark the
//!   installation, bot, attempt and meeting platform. The identifier is
//!   `namespace/name`, never the pod's UID.
//! - **The operator's template** (`K8S_POD_TEMPLATE_ZOOM|TEAMS|MEET`, a Pod,
//!   PodTemplate or PodTemplateSpec in YAML) is read and checked at
//!   start-up; the service sets name, labels, restart policy,
//!   `activeDeadlineSeconds` and the bot's environment (from
//!   [`platform_core::bot_environment`]) and keeps everything else. See
//!   [`pod_manifest`].
//! - **Status** of every bot comes from one LIST per 500 pods by label
//!   selector (`limit`/`continue`), never one GET per pod; see [`status`]
//!   for how each pod condition maps, the raw phase and Kubernetes' reason
//!   kept.
//! - **Stop** deletes the pod with `K8S_STOP_GRACE` so the bot can leave
//!   its meeting; **cleanup** waits until the pod is gone, deleting it again
//!   without grace once the grace has passed. Both are idempotent.
//! - **Capacity**: `K8S_MAX_BOTS`, and a ResourceQuota's "exceeded quota"
//!   refusal, are "no capacity, nothing started" (retryable). 429 and 5xx
//!   answers are retried with the contract's retry policy; every request is
//!   paced under `K8S_API_QPS`.
//!
//! Registered as `kubernetes` (feature `kubernetes` of `deployment`);
//! configured with the variables in [`config::ENV_SPECS`].
//! `DEPLOYMENT_PLATFORM=auto` picks it, after Coolify and AWS, when the
//! service runs in a cluster (`KUBERNETES_SERVICE_HOST` is set) or
//! `K8S_NAMESPACE` is set.
//!
//! # Secrets
//!
//! The bot's meeting URL and password travel in the pod's environment, so
//! anyone who may read pods in the namespace can read them: give the bots a
//! namespace of their own. Nothing this crate logs or returns contains them.

mod capacity;
mod client;
pub mod config;
mod connect;
mod deletions;
mod error;
pub mod names;
pub mod pod_manifest;
pub mod quantity;
mod service;
pub mod setup;
pub mod status;
pub mod template;

use std::sync::Arc;

use platform_core::{AutoSelect, PlatformContext, PlatformDescriptor, PlatformService};

pub use client::FIELD_MANAGER;
pub use config::{BotPodTarget, ClusterFiles, KubernetesConfig};
pub use names::PodRef;
pub use service::{FORCE_DELETE_AFTER, KubernetesPlatform, LIST_PAGE_SIZE};
pub use template::{PodTemplate, TemplateAdvice, TemplateProblem};

/// The platform's registered name.
pub const PLATFORM_NAME: &str = "kubernetes";

/// The platform as the registry sees it.
pub const DESCRIPTOR: PlatformDescriptor = PlatformDescriptor {
    name: PLATFORM_NAME,
    description: "Kubernetes: one pod per bot, from the operator's pod template per meeting platform",
    feature: "kubernetes",
    env: config::ENV_SPECS,
    auto: AutoSelect::DetectAny {
        order: 30,
        markers: config::DETECTION_MARKERS,
    },
    build: |context: PlatformContext| {
        Box::pin(async move {
            let platform =
                KubernetesPlatform::from_env(context.env.as_ref(), context.installation).await?;
            Ok(Arc::new(platform) as Arc<dyn PlatformService>)
        })
    },
};

platform_core::register_platform!(DESCRIPTOR);
