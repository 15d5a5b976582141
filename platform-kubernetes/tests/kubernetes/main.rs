//! The Kubernetes platform against a fake API server on loopback that
//! speaks the pod endpoints' real wire format.

mod conformance;
mod deploy;
mod manifests;
mod registry;
mod setup;
mod statuses;
mod stop_cleanup;
mod support;
mod template_merge;
