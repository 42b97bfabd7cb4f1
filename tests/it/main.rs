//! Integration tests, one binary: the router app against DynamoDB Local, fanning out
//! through `cargo lambda watch`. Run by `make test`.

mod common;
mod cooldown;
mod dedupe;
mod e2e;
mod events;
mod failures;
mod round_trips;
mod routing;
