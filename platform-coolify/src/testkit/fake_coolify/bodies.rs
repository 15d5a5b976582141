//! The JSON bodies the fake answers with, shaped like the real server's.

use serde_json::{Value, json};

use super::{FakeApp, FakeDeployment, FakeEnv, PROJECT, now_string};

/// An application as `GET /applications/{uuid}` shows it.
pub(super) fn app_json(app: &FakeApp) -> Value {
    json!({
        "uuid": app.uuid,
        "name": app.name,
        "description": null,
        "fqdn": app.fqdn,
        "status": app.status,
        "build_pack": "dockerimage",
        "docker_registry_image_name": app.image,
        "docker_registry_image_tag": app.tag,
        "ports_exposes": "3000",
        "environment_id": app.environment_id,
        "destination_type": "App\\Models\\StandaloneDocker",
        "destination_id": 1,
        "health_check_enabled": false,
        "created_at": now_string(),
        "updated_at": now_string(),
        "deleted_at": null,
    })
}

/// A deployment as `GET /deployments/{uuid}` shows it.
pub(super) fn deployment_json(d: &FakeDeployment) -> Value {
    json!({
        "id": 1,
        "application_id": "3",
        "deployment_uuid": d.uuid,
        "pull_request_id": 0,
        "force_rebuild": false,
        "commit": "HEAD",
        "status": d.status,
        "is_webhook": false,
        "is_api": true,
        "created_at": now_string(),
        "updated_at": now_string(),
        "logs": "[]",
        "restart_only": false,
        "server_id": 0,
        "application_name": d.app_name,
        "server_name": "localhost",
        "deployment_url": format!("/project/{PROJECT}/environment/production/application/{}/deployment/{}", d.app_uuid, d.uuid),
    })
}

/// An environment variable as `GET /applications/{uuid}/envs` shows it.
pub(super) fn env_json(app_id: usize, env: &FakeEnv) -> Value {
    json!({
        "id": 1,
        "uuid": env.uuid,
        "resourceable_type": "App\\Models\\Application",
        "resourceable_id": app_id,
        "is_literal": env.is_literal,
        "is_multiline": false,
        "is_preview": env.is_preview,
        "is_runtime": true,
        "is_buildtime": false,
        "is_shared": false,
        "is_shown_once": env.is_shown_once,
        "key": env.key,
        "comment": null,
        "version": "4.3.11",
        "created_at": now_string(),
        "updated_at": now_string(),
    })
}
