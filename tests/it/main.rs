//! Integration tests, one binary: the router app against DynamoDB Local, fanning out
//! through `cargo lambda watch`. Run by `make test`.

// Test code may panic on what it did not expect; that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api;
mod api_admin;
mod capacity;
mod check_runs;
mod cli;
mod common;
mod concurrency;
mod cooldown;
mod dedupe;
mod e2e;
mod events;
mod failures;
mod faults;
mod forge_standin;
mod hooks;
mod hostile;
mod module_sdk;
mod modules;
mod openapi;
mod pr_paths;
mod round_trips;
mod routing;
mod scheduler;
mod secrets;
mod serve;
mod template;
mod triggers;
mod workers;
