//! The operator's template: what is checked at start-up, what the doctor
//! warns about, and what the merge keeps.

use std::collections::BTreeMap;

use platform_core::{BotId, InstallationId, MeetingPlatform, bot_environment};
use platform_kubernetes::names::pod_labels;
use platform_kubernetes::pod_manifest::{PodOwnFields, bot_pod};
use platform_kubernetes::{PodTemplate, TemplateProblem};
use serde_json::{Value, json};

use crate::support::{MEET_TEMPLATE, TEAMS_TEMPLATE, ZOOM_TEMPLATE, zoom_bot};

fn merged(template: &PodTemplate) -> Value {
    let installation = InstallationId::new("0123abcd").unwrap();
    let labels: BTreeMap<&'static str, String> =
        pod_labels(&installation, BotId(5), 1, MeetingPlatform::Zoom);
    let environment = bot_environment(&zoom_bot(5));
    bot_pod(
        template,
        &PodOwnFields {
            name: "meeboter-0123abcd-5-1",
            namespace: "bots",
            labels: &labels,
            environment: &environment,
            active_deadline_seconds: 3600,
        },
    )
}

#[test]
fn tolerations_node_selectors_volumes_and_the_operators_env_survive() {
    let template = PodTemplate::parse(ZOOM_TEMPLATE, "bot", "bots").unwrap();
    let pod = merged(&template);
    assert_eq!(pod["spec"]["nodeSelector"], json!({"pool": "meeting-bots"}));
    assert_eq!(pod["spec"]["tolerations"][0]["key"], "dedicated");
    assert_eq!(pod["spec"]["volumes"][0]["emptyDir"]["sizeLimit"], "1Gi");
    assert_eq!(
        pod["spec"]["containers"][0]["volumeMounts"][0]["mountPath"],
        "/dev/shm"
    );
    let env = pod["spec"]["containers"][0]["env"].as_array().unwrap();
    let value = |name: &str| {
        env.iter()
            .filter(|e| e["name"] == name)
            .map(|e| e["value"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(value("LOG_LEVEL"), [json!("debug")]);
    assert_eq!(
        value("CALLBACK_URL"),
        [json!("http://meeboter-api.bots.svc/bots/$(BOT_ID)/events")]
    );
    assert_eq!(value("BOT_ID"), [json!("5")], "ours wins, once");
    assert_eq!(pod["spec"]["restartPolicy"], "Never");
    assert_eq!(pod["spec"]["activeDeadlineSeconds"], 3600);
}

#[test]
fn fields_newer_than_our_api_types_and_env_from_sources_survive() {
    let yaml = r#"
spec:
  hostUsers: false
  someFutureField: {enabled: true}
  containers:
    - name: bot
      image: registry.example/bot:1
      env:
        - name: API_KEY
          valueFrom:
            secretKeyRef: {name: bot-secrets, key: api-key}
      envFrom:
        - configMapRef: {name: bot-settings}
      resources:
        requests: {memory: 2Gi}
      volumeMounts: [{name: shm, mountPath: /dev/shm}]
  volumes:
    - name: shm
      emptyDir: {medium: Memory}
"#;
    let template = PodTemplate::parse(yaml, "bot", "bots").unwrap();
    assert!(template.advice().is_empty(), "{:?}", template.advice());
    let pod = merged(&template);
    assert_eq!(pod["spec"]["someFutureField"], json!({"enabled": true}));
    assert_eq!(pod["spec"]["hostUsers"], false);
    let bot = &pod["spec"]["containers"][0];
    assert_eq!(
        bot["envFrom"],
        json!([{"configMapRef": {"name": "bot-settings"}}])
    );
    assert!(
        bot["env"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "bot-secrets", "key": "api-key"}}}))
    );
}

#[test]
fn pods_pod_templates_and_pod_template_specs_are_all_accepted() {
    assert!(PodTemplate::parse(ZOOM_TEMPLATE, "bot", "bots").is_ok());
    assert!(PodTemplate::parse(TEAMS_TEMPLATE, "teams-bot", "bots").is_ok());
    let meet = PodTemplate::parse(MEET_TEMPLATE, "bot", "bots").unwrap();
    assert_eq!(meet.as_json()["metadata"]["labels"]["app"], "meeboter-bot");
}

#[test]
fn a_template_without_the_bot_container_names_the_ones_it_has() {
    let error = PodTemplate::parse(ZOOM_TEMPLATE, "zoom-bot", "bots").unwrap_err();
    assert!(error.concerns_container());
    let text = error.to_string();
    assert!(
        text.contains("\"zoom-bot\"") && text.contains("bot, log-shipper"),
        "{text}"
    );
}

#[test]
fn what_is_not_a_pod_template_says_why() {
    let cases = [
        (
            "apiVersion: apps/v1\nkind: Deployment\nspec: {}\n",
            "it is a Deployment",
        ),
        ("- a\n- list\n", "not a YAML mapping"),
        ("metadata: {name: x}\n", "no `spec`"),
        (
            "spec: {containers: [{name: bot, image: x, resources: {requests: {memory: [1]}}}]}\n",
            "not a pod template",
        ),
        ("spec: {containers: [{name: bot\n", "not YAML"),
    ];
    for (yaml, expected) in cases {
        let error = PodTemplate::parse(yaml, "bot", "bots").unwrap_err();
        assert!(error.to_string().contains(expected), "{yaml:?}: {error}");
    }
}

#[test]
fn a_template_in_another_namespace_is_refused() {
    let error = PodTemplate::parse(ZOOM_TEMPLATE, "bot", "default").unwrap_err();
    assert!(
        matches!(error, TemplateProblem::OtherNamespace { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("K8S_NAMESPACE=bots"), "{error}");
}

#[test]
fn no_memory_request_and_no_large_dev_shm_are_warned_about_with_why() {
    let teams = PodTemplate::parse(TEAMS_TEMPLATE, "teams-bot", "bots").unwrap();
    let checks: Vec<&str> = teams.advice().iter().map(|a| a.check).collect();
    assert_eq!(checks, ["memory request", "/dev/shm"]);
    assert!(
        teams.advice()[0].warning.contains("OOM-killed"),
        "{:?}",
        teams.advice()
    );
    assert!(
        teams.advice()[1].warning.contains("64 MiB"),
        "{:?}",
        teams.advice()
    );
    assert!(
        teams.advice()[1].warning.contains("Chromium"),
        "{:?}",
        teams.advice()
    );

    let meet = PodTemplate::parse(MEET_TEMPLATE, "bot", "bots").unwrap();
    let advice = meet.advice();
    assert_eq!(advice.len(), 1, "{advice:?}");
    assert!(
        advice[0]
            .warning
            .contains("no more than the default 64 MiB"),
        "{advice:?}"
    );

    let zoom = PodTemplate::parse(ZOOM_TEMPLATE, "bot", "bots").unwrap();
    assert!(zoom.advice().is_empty(), "{:?}", zoom.advice());

    // A memory limit alone is the request too.
    let limit_only =
        "spec: {containers: [{name: bot, image: x, resources: {limits: {memory: 2Gi}}}]}";
    let template = PodTemplate::parse(limit_only, "bot", "bots").unwrap();
    assert!(
        template
            .advice()
            .iter()
            .all(|a| a.check != "memory request")
    );
}

#[test]
fn a_template_does_not_print_its_env_values() {
    let template = PodTemplate::parse(ZOOM_TEMPLATE, "bot", "bots").unwrap();
    assert!(!format!("{template:?}").contains("debug"));
}
