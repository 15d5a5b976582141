//! The AWS ECS platform against ECS mocks on loopback that speak awsJson1_1
//! (`X-Amz-Target` routing, ECS's response and error shapes).

mod conformance;
mod connection;
mod deploy;
mod installation;
mod listing;
mod reasons;
mod registry;
mod setup_checks;
mod status;
mod stop;
mod throttling;

use platform_aws::testkit as support;
