//! What `doctor` checks about the AWS setup beyond reaching the cluster:
//! each meeting platform's task definition (it exists, is ACTIVE, uses
//! awsvpc, can run on Fargate) and its bot container, the listing the
//! orphan sweep needs, and, said plainly, what cannot be checked from here.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use aws_sdk_ecs::types::{Compatibility, NetworkMode, TaskDefinition, TaskDefinitionStatus};
use platform_core::{ErrorKind, MeetingPlatform, SetupCheck, retry};

use crate::config::{ECS_SECURITY_GROUPS, ECS_STARTED_BY, ECS_SUBNETS, target_variables};
use crate::error::EcsError;
use crate::service::AwsEcsPlatform;
use crate::task_ref::cluster_name;

/// Capacity providers that run tasks on Fargate: a strategy made of these
/// alone still needs Fargate-compatible task definitions.
const FARGATE_PROVIDERS: &[&str] = &["FARGATE", "FARGATE_SPOT"];

impl AwsEcsPlatform {
    /// The checks of [`check_setup`](platform_core::PlatformService::check_setup).
    pub(crate) async fn setup_checks(&self) -> Vec<SetupCheck> {
        use platform_core::PlatformService as _;
        let mut checks = Vec::new();
        let cluster = format!(
            "cluster ECS_CLUSTER ({})",
            cluster_name(&self.config.cluster)
        );
        // Task definitions belong to the account, not the cluster, so a
        // missing cluster does not stop them being checked; no connection,
        // or credentials ECS refuses, does.
        let can_go_on = match self.check_reachable().await {
            Ok(()) => {
                checks.push(SetupCheck::ok(cluster));
                true
            }
            Err(error) => {
                let go_on = !error.is_retryable() && error.kind() != ErrorKind::Unauthorized;
                checks.push(SetupCheck::problem(cluster, error.to_string()));
                go_on
            }
        };
        if can_go_on {
            checks.extend(self.task_definition_checks().await);
            checks.push(self.listing_check().await);
        } else {
            for platform in MeetingPlatform::ALL {
                let (task_variable, container_variable) = target_variables(platform);
                let target = self.config.target(platform);
                let why = "ECS could not be asked (see the cluster check)";
                checks.push(SetupCheck::not_checked(
                    format!(
                        "task definition {task_variable} ({})",
                        target.task_definition
                    ),
                    why,
                ));
                checks.push(SetupCheck::not_checked(
                    format!("container {container_variable} ({})", target.container_name),
                    why,
                ));
            }
        }
        for (variable, what, call) in [
            (ECS_SUBNETS.name, "subnets", "ec2:DescribeSubnets"),
            (
                ECS_SECURITY_GROUPS.name,
                "security groups",
                "ec2:DescribeSecurityGroups",
            ),
        ] {
            checks.push(SetupCheck::not_checked(
                format!("{what} {variable}"),
                format!(
                    "checking that they exist needs the EC2 API ({call}), which this build does not \
                     include; {what} that do not exist fail the first deploy, with ECS's reason"
                ),
            ));
        }
        checks
    }

    /// Two checks per meeting platform: its task definition, and the bot
    /// container in it. A task definition used by several meeting
    /// platforms is described once.
    async fn task_definition_checks(&self) -> Vec<SetupCheck> {
        let needs_fargate = match &self.config.capacity_provider_strategy {
            None => true,
            Some(strategy) => strategy
                .shares()
                .iter()
                .all(|share| FARGATE_PROVIDERS.contains(&share.provider.as_str())),
        };
        let mut described: HashMap<&str, Result<TaskDefinition, Unreadable>> = HashMap::new();
        let mut checks = Vec::new();
        for platform in MeetingPlatform::ALL {
            let (task_variable, container_variable) = target_variables(platform);
            let target = self.config.target(platform);
            let name = target.task_definition.as_str();
            if !described.contains_key(name) {
                let answer = self.describe_task_definition(name).await;
                described.insert(name, answer);
            }
            let task_check = format!("task definition {task_variable} ({name})");
            let container_check =
                format!("container {container_variable} ({})", target.container_name);
            match &described[name] {
                Ok(definition) => {
                    let problems = definition_problems(definition, needs_fargate);
                    checks.push(if problems.is_empty() {
                        SetupCheck::ok(task_check)
                    } else {
                        SetupCheck::problem(
                            task_check,
                            format!("{task_variable}={name}: {}", problems.join("; ")),
                        )
                    });
                    checks.push(container_check_of(
                        definition,
                        container_check,
                        container_variable,
                        &target.container_name,
                        self.config.bot_port,
                    ));
                }
                Err(Unreadable::NotAllowed(error)) => {
                    checks.push(SetupCheck::not_checked(
                        task_check,
                        format!(
                            "the credentials may not describe task definitions (this check needs \
                             ecs:DescribeTaskDefinition): {error}"
                        ),
                    ));
                    checks.push(SetupCheck::not_checked(
                        container_check,
                        format!("the task definition {task_variable} could not be read"),
                    ));
                }
                Err(Unreadable::Failed(error)) => {
                    checks.push(SetupCheck::problem(
                        task_check,
                        format!(
                            "{task_variable}={name}: ECS could not describe it ({error}); set it \
                             to a task definition of Region {} as `family`, `family:revision` or \
                             its ARN",
                            self.config.region
                        ),
                    ));
                    checks.push(SetupCheck::not_checked(
                        container_check,
                        format!("the task definition {task_variable} could not be read"),
                    ));
                }
            }
        }
        checks
    }

    /// DescribeTaskDefinition, retried like every other call. A failure
    /// that retrying cannot help is answered as this crate's own error, so
    /// the check can tell a refused permission from a task definition that
    /// does not exist and quote ECS's words alone; one that retrying did
    /// not help is the contract's (attempts, time spent).
    async fn describe_task_definition(&self, name: &str) -> Result<TaskDefinition, Unreadable> {
        let resource = format!("task definition {name}");
        let last = Mutex::new(None);
        let answer = retry(&self.retry, &resource, |_| async {
            self.ecs
                .describe_task_definition(name)
                .await
                .map_err(|error| {
                    let contract = error.clone().into_platform(resource.clone());
                    *last.lock().unwrap_or_else(PoisonError::into_inner) = Some(error);
                    contract
                })
        })
        .await;
        answer.map_err(
            |contract| match last.into_inner().unwrap_or_else(PoisonError::into_inner) {
                Some(error @ EcsError::Unauthorized { .. }) => {
                    Unreadable::NotAllowed(error.to_string())
                }
                Some(error) if !contract.is_retryable() => Unreadable::Failed(error.to_string()),
                _ => Unreadable::Failed(contract.to_string()),
            },
        )
    }

    /// One ListTasks call, as the orphan sweep makes them: a missing
    /// permission does not stop deploys, so it is a warning.
    async fn listing_check(&self) -> SetupCheck {
        let name = format!(
            "orphan sweep: listing tasks started by {} ({})",
            self.config.started_by, ECS_STARTED_BY.name
        );
        let resource = "the tasks of this installation";
        let listed = retry(&self.retry, resource, |_| async {
            self.ecs
                .list_running_tasks(&self.config.cluster, &self.config.started_by, 1, None)
                .await
                .map_err(|e| e.into_platform(resource))
        })
        .await;
        match listed {
            Ok(_) => SetupCheck::ok(name),
            Err(error) if error.kind() == ErrorKind::Unauthorized => SetupCheck::warning(
                name,
                format!(
                    "the orphan sweep cannot list this installation's tasks, so a task whose bot \
                     was lost keeps running; the credentials need ecs:ListTasks and \
                     ecs:DescribeTasks: {error}"
                ),
            ),
            Err(error) => SetupCheck::warning(name, error.to_string()),
        }
    }
}

/// Why a task definition could not be read.
enum Unreadable {
    /// The credentials lack `ecs:DescribeTaskDefinition`: not known to be
    /// wrong, only not checked.
    NotAllowed(String),
    /// ECS does not have it, or could not be asked.
    Failed(String),
}

/// What is wrong with a task definition for running bots, each problem
/// saying what is allowed.
fn definition_problems(definition: &TaskDefinition, needs_fargate: bool) -> Vec<String> {
    let mut problems = Vec::new();
    match definition.status() {
        Some(TaskDefinitionStatus::Active) | None => {}
        Some(status) => problems.push(format!(
            "it is {}, and only an ACTIVE revision can run tasks (register a new revision, or name \
             an ACTIVE one)",
            status.as_str()
        )),
    }
    match definition.network_mode() {
        Some(NetworkMode::Awsvpc) => {}
        mode => problems.push(format!(
            "its network mode is {}, and bots need awsvpc (each task gets its own network \
             interface in ECS_SUBNETS)",
            mode.map_or("not set (bridge on EC2)", NetworkMode::as_str)
        )),
    }
    if needs_fargate {
        let fargate = |list: &[Compatibility]| list.contains(&Compatibility::Fargate);
        if !fargate(definition.requires_compatibilities()) && !fargate(definition.compatibilities())
        {
            let required: Vec<&str> = definition
                .requires_compatibilities()
                .iter()
                .map(Compatibility::as_str)
                .collect();
            problems.push(format!(
                "it is not Fargate-compatible (requiresCompatibilities is [{}]) and tasks launch on \
                 Fargate: register it with FARGATE in requiresCompatibilities, or set \
                 ECS_CAPACITY_PROVIDER_STRATEGY to capacity that can run it",
                required.join(", ")
            ));
        }
    }
    problems
}

/// Whether the task definition has the bot container, and whether it
/// listens where the service will look for it.
fn container_check_of(
    definition: &TaskDefinition,
    check: String,
    variable: &str,
    container: &str,
    bot_port: u16,
) -> SetupCheck {
    let containers = definition.container_definitions();
    let Some(found) = containers.iter().find(|c| c.name() == Some(container)) else {
        let names: Vec<&str> = containers.iter().filter_map(|c| c.name()).collect();
        return SetupCheck::problem(
            check,
            format!(
                "{variable}={container}: the task definition has no container of that name; its \
                 containers are {}. Set {variable} to the one that runs the bot",
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            ),
        );
    };
    let ports: Vec<i32> = found
        .port_mappings()
        .iter()
        .filter_map(|p| p.container_port())
        .collect();
    if !ports.is_empty() && !ports.contains(&i32::from(bot_port)) {
        let ports: Vec<String> = ports.iter().map(ToString::to_string).collect();
        return SetupCheck::warning(
            check,
            format!(
                "the container maps port(s) {} but not ECS_BOT_PORT={bot_port}, where the service \
                 looks for the bot",
                ports.join(", ")
            ),
        );
    }
    SetupCheck::ok(check)
}

#[cfg(test)]
mod tests {
    use aws_sdk_ecs::types::{ContainerDefinition, PortMapping};
    use platform_core::CheckOutcome;

    use super::*;

    fn definition(
        status: TaskDefinitionStatus,
        mode: NetworkMode,
        compatibilities: &[Compatibility],
    ) -> TaskDefinition {
        TaskDefinition::builder()
            .status(status)
            .network_mode(mode)
            .set_requires_compatibilities(Some(compatibilities.to_vec()))
            .container_definitions(
                ContainerDefinition::builder()
                    .name("zoom-bot")
                    .port_mappings(PortMapping::builder().container_port(8080).build())
                    .build(),
            )
            .container_definitions(ContainerDefinition::builder().name("log-router").build())
            .build()
    }

    #[test]
    fn a_fargate_awsvpc_active_definition_is_in_order() {
        let good = definition(
            TaskDefinitionStatus::Active,
            NetworkMode::Awsvpc,
            &[Compatibility::Fargate],
        );
        assert!(definition_problems(&good, true).is_empty());
    }

    #[test]
    fn each_problem_says_what_is_allowed() {
        let bad = definition(
            TaskDefinitionStatus::Inactive,
            NetworkMode::Bridge,
            &[Compatibility::Ec2],
        );
        let problems = definition_problems(&bad, true);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("INACTIVE") && problems[0].contains("ACTIVE revision"));
        assert!(problems[1].contains("bridge") && problems[1].contains("awsvpc"));
        assert!(problems[2].contains("[EC2]") && problems[2].contains("FARGATE"));
        // With EC2 capacity providers, Fargate compatibility is not needed.
        assert_eq!(definition_problems(&bad, false).len(), 2);
    }

    #[test]
    fn the_container_check_names_the_containers_there_are() {
        let def = definition(
            TaskDefinitionStatus::Active,
            NetworkMode::Awsvpc,
            &[Compatibility::Fargate],
        );
        let check = container_check_of(&def, "c".into(), "ECS_CONTAINER_ZOOM", "bot", 8080);
        let CheckOutcome::Problem(why) = check.outcome else {
            panic!("expected a problem, got {check:?}");
        };
        assert!(
            why.starts_with("ECS_CONTAINER_ZOOM=bot: the task definition has no container of that name; its containers are zoom-bot, log-router."),
            "{why}"
        );
        let ok = container_check_of(&def, "c".into(), "ECS_CONTAINER_ZOOM", "zoom-bot", 8080);
        assert_eq!(ok.outcome, CheckOutcome::Ok);
        let other_port =
            container_check_of(&def, "c".into(), "ECS_CONTAINER_ZOOM", "zoom-bot", 3000);
        assert!(
            matches!(other_port.outcome, CheckOutcome::Warning(ref w) if w.contains("8080") && w.contains("ECS_BOT_PORT=3000")),
            "{other_port:?}"
        );
    }
}
