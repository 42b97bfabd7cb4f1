//! switchyard: the adapters and the HTTP surface around [`switchyard_core`]: the router, the
//! API and the dashboard (axum on `lambda_http`), the DynamoDB store, the Lambda fan-out,
//! Secrets Manager, EMF metrics, the forge clients and the module runtime.
//!
//! The core's modules are re-exported under their own names, so `switchyard::event::Event`
//! and `switchyard_core::event::Event` are one type. The path of one webhook:
//! [`webhook`] verifies and normalizes it, [`dispatch::Dispatcher::dispatch`] de-duplicates,
//! matches, records and fans out. Module functions run under [`module::run`].

#![warn(missing_docs)]

pub use switchyard_core::{
    auth, clock, config, context, dispatch, errors, event, explain, glob, manifest, pattern,
    payload, registry, report, routing, schedule, scheduler, settings, signature, source, yaml,
};

pub use switchyard_aws::{sdk as aws, secrets};

pub mod api;
pub mod dashboard;
pub mod fanout;
pub mod forge;
pub use forge::app as github_app;
pub mod hooks;
pub mod module;
pub mod problem;
pub mod runtime;
pub mod store;
pub mod tls;
pub mod webhook;
pub use api::workers;

pub use config::{Config, Source, SourceKind};
pub use dispatch::{Dispatcher, ModuleContext};
pub use event::{Event, EventType};
pub use manifest::Registry;
