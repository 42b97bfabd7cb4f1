//! switchyard: a serverless webhook router for bots and automation.
//!
//! The library holds every decision; functions are thin adapters. The path of one webhook:
//! [`signature::verify`] over the raw bytes, [`event::normalize`] into an [`event::Event`],
//! then [`dispatch::Dispatcher::dispatch`]: de-duplicate ([`store::EventStore`]), match
//! ([`routing::plan`] against a [`manifest::Registry`]), cool down and record jobs
//! ([`store::DispatchStore`]), fan out ([`fanout::Fanout`]) and record the outcome.
//! Module functions run under [`module::run`].

pub mod api;
pub mod auth;
pub mod aws;
pub mod clock;
pub mod config;
pub mod dashboard;
pub mod dispatch;
pub mod event;
pub mod explain;
pub mod fanout;
pub mod forge;
pub mod github_app;
pub mod glob;
pub mod hooks;
pub mod manifest;
pub mod module;
pub mod pattern;
pub mod payload;
pub mod registry;
pub mod routing;
pub mod runtime;
pub mod schedule;
pub mod scheduler;
pub mod secrets;
pub mod settings;
pub mod signature;
pub mod store;
pub mod webhook;
pub mod workers;

pub use config::{Config, Source, SourceKind};
pub use dispatch::{Dispatcher, ModuleContext};
pub use event::{Event, EventType};
pub use manifest::Registry;
