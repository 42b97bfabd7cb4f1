//! switchyard-core: the domain, the ports and the services of switchyard, with no AWS SDK
//! and no HTTP framework (adapters live in the `switchyard` crate).
//!
//! The path of one webhook: [`signature::verify`] over the raw bytes, [`event::normalize`]
//! into an [`event::Event`], then [`dispatch::Dispatcher::dispatch`]: de-duplicate
//! ([`store::EventStore`]), match ([`routing::plan`] against a [`manifest::Registry`]), cool
//! down and record jobs ([`store::DispatchStore`]), fan out ([`fanout::Fanout`]) and record
//! the outcome.

#![warn(missing_docs)]

pub mod auth;
pub mod clock;
pub mod config;
pub mod context;
pub mod dispatch;
pub mod errors;
pub mod event;
pub mod explain;
pub mod fanout;
pub mod glob;
pub mod hooks;
pub mod manifest;
pub mod pattern;
pub mod payload;
pub mod registry;
pub mod report;
pub mod routing;
pub mod schedule;
pub mod scheduler;
pub mod settings;
pub mod signature;
pub mod source;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod text;
pub mod yaml;

pub use config::{Config, Source, SourceKind};
pub use dispatch::{Dispatcher, ModuleContext};
pub use event::{Event, EventType};
pub use manifest::Registry;
