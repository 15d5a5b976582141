//! One bot's pod: the operator's template with what the service owns set on
//! it, everything else kept as written.
//!
//! The service owns the pod's name and namespace, its labels (added to the
//! operator's), `restartPolicy: Never` (a bot that ended must not rejoin
//! its meeting), `activeDeadlineSeconds`, and the bot's environment on the
//! bot container (set before the operator's own variables, which may refer
//! to it with `$(BOT_ID)`; an operator variable of the same name is
//! replaced). Node selectors, tolerations, affinity, resources, volumes,
//! probes, security contexts, other containers and fields newer than this
//! crate's API types all go through untouched.

use std::collections::BTreeMap;

use platform_core::BotEnvironment;
use serde_json::{Map, Value, json};

use crate::template::PodTemplate;

/// What the service sets on a bot's pod.
#[derive(Debug)]
pub struct PodOwnFields<'a> {
    /// The pod's name.
    pub name: &'a str,
    /// Its namespace.
    pub namespace: &'a str,
    /// The labels that mark it.
    pub labels: &'a BTreeMap<&'static str, String>,
    /// The bot's environment.
    pub environment: &'a BotEnvironment,
    /// `activeDeadlineSeconds`.
    pub active_deadline_seconds: u64,
}

/// The pod to create: `template` with `own` set on it.
pub fn bot_pod(template: &PodTemplate, own: &PodOwnFields<'_>) -> Value {
    let mut pod = template.as_json().clone();
    let root = object(&mut pod);
    root.insert("apiVersion".into(), json!("v1"));
    root.insert("kind".into(), json!("Pod"));

    let metadata = object(root.entry("metadata").or_insert_with(|| json!({})));
    metadata.insert("name".into(), json!(own.name));
    metadata.insert("namespace".into(), json!(own.namespace));
    let labels = object(metadata.entry("labels").or_insert_with(|| json!({})));
    for (key, value) in own.labels {
        labels.insert((*key).to_owned(), json!(value));
    }

    let spec = object(root.entry("spec").or_insert_with(|| json!({})));
    spec.insert("restartPolicy".into(), json!("Never"));
    spec.insert(
        "activeDeadlineSeconds".into(),
        json!(own.active_deadline_seconds),
    );
    let containers = spec
        .entry("containers")
        .or_insert_with(|| json!([]))
        .as_array_mut();
    let bot = containers
        .into_iter()
        .flatten()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(template.container()));
    if let Some(bot) = bot {
        let bot = object(bot);
        let theirs = match bot.remove("env") {
            Some(Value::Array(env)) => env,
            _ => Vec::new(),
        };
        let ours: Vec<Value> = own
            .environment
            .iter()
            .map(|var| json!({"name": var.name(), "value": var.value()}))
            .collect();
        let kept = theirs.into_iter().filter(|entry| {
            let name = entry.get("name").and_then(Value::as_str);
            !own.environment.iter().any(|var| Some(var.name()) == name)
        });
        bot.insert(
            "env".into(),
            Value::Array(ours.into_iter().chain(kept).collect()),
        );
    }
    pod
}

/// The JSON object at `value`, made one if it was anything else (a template
/// that checked out has objects where we write).
fn object(value: &mut Value) -> &mut Map<String, Value> {
    if !value.is_object() {
        *value = Value::Object(Map::new());
    }
    match value {
        Value::Object(map) => map,
        _ => unreachable!("made an object above"),
    }
}
