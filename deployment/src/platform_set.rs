//! The platforms a service holds, in the order bots are placed on them,
//! each with its cap and its wrapped calls.

use std::sync::Arc;

use platform_core::{PlatformCapacity, PlatformService};

use crate::metrics::Metrics;
use crate::platform_calls::PlatformCalls;

/// One platform of the priority list.
#[derive(Clone)]
pub(crate) struct ListedPlatform {
    pub(crate) calls: PlatformCalls,
    pub(crate) capacity: PlatformCapacity,
}

impl ListedPlatform {
    pub(crate) fn name(&self) -> &'static str {
        self.calls.name()
    }
}

/// Every platform the service holds, in priority order. Never empty, no
/// name twice.
#[derive(Clone)]
pub(crate) struct PlatformSet {
    listed: Vec<ListedPlatform>,
}

impl PlatformSet {
    /// The platforms in priority order. `Err` names what is wrong: none
    /// given, or one name twice.
    pub(crate) fn new(
        platforms: Vec<Arc<dyn PlatformService>>,
        timeout: std::time::Duration,
        metrics: &Arc<Metrics>,
    ) -> Result<Self, String> {
        if platforms.is_empty() {
            return Err("no platform to run bots on".into());
        }
        let mut listed: Vec<ListedPlatform> = Vec::with_capacity(platforms.len());
        for platform in platforms {
            let name = platform.platform_name();
            if listed.iter().any(|p| p.name() == name) {
                return Err(format!("the platform {name} is listed twice"));
            }
            let capacity = platform.capacity();
            listed.push(ListedPlatform {
                calls: PlatformCalls::new(platform, timeout, Arc::clone(metrics)),
                capacity,
            });
        }
        Ok(Self { listed })
    }

    /// In priority order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &ListedPlatform> {
        self.listed.iter()
    }

    /// The first of the list.
    pub(crate) fn first(&self) -> &ListedPlatform {
        // `new` refuses an empty list.
        &self.listed[0]
    }

    /// The platform named `name`, if the service holds it.
    pub(crate) fn get(&self, name: &str) -> Option<&ListedPlatform> {
        self.listed.iter().find(|p| p.name() == name)
    }

    /// The names, in priority order.
    pub(crate) fn names(&self) -> Vec<&'static str> {
        self.listed.iter().map(ListedPlatform::name).collect()
    }
}
