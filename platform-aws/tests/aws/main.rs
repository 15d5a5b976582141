//! The AWS ECS platform against ECS mocks on loopback that speak awsJson1_1
//! (`X-Amz-Target` routing, ECS's response and error shapes).

mod conformance;
mod deploy;
mod registry;
mod secrets;
mod status;
mod stop;
mod support;
mod throttling;
