//! The HTTP API (`functions/api`): start modules by hand, read jobs and events, cancel jobs,
//! publish the registry, pull work. Every handler is an adapter: a [`Caller`] extractor
//! checks the bearer token and its scope, [`Params`] and [`JsonBody`] parse the query and
//! the body into typed, validated structs, and the handler returns `Result<_, ApiError>`.
//! Starts go through the same dispatcher as webhooks and schedules (one code path decides,
//! records and fans out).

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use serde_json::Value;
use tracing::error;

use crate::dispatch::Dispatcher;
use crate::problem::{ApiError, Code, json_errors};
use crate::store::{
    EventStore, JobStore, ListStore, PayloadStore, RegistryStore, SettingsStore, StoreError,
    WorkQueue,
};
use crate::webhook::error_chain;
use switchyard_core::auth::Tokens;

mod admin;
mod caller;
mod events;
mod input;
mod jobs;
mod modules;
pub mod workers;

pub use caller::{Admin, Any, Caller, Emit, Invoke, Read, RequiredScope, Work};
pub use input::{JsonBody, Params};

/// What the API app needs: the dispatcher and the store ports its routes use.
#[derive(Clone)]
pub struct ApiState {
    /// The dispatcher shared with the router.
    pub dispatcher: Dispatcher,
    /// Jobs.
    pub jobs: Arc<dyn JobStore>,
    /// Events.
    pub events: Arc<dyn EventStore>,
    /// Listings over the secondary indexes.
    pub lists: Arc<dyn ListStore>,
    /// Published registry versions.
    pub registry: Arc<dyn RegistryStore>,
    /// Per-scope settings.
    pub settings: Arc<dyn SettingsStore>,
    /// Pull jobs' queues and leases.
    pub queue: Arc<dyn WorkQueue>,
    /// Large payloads (inlined into leased pull jobs' contexts).
    pub payloads: Arc<dyn PayloadStore>,
    /// Configured tokens.
    pub tokens: Arc<Tokens>,
}

impl ApiState {
    /// The state over one store that serves every port.
    pub fn new<S>(dispatcher: Dispatcher, store: Arc<S>, tokens: Tokens) -> Self
    where
        S: JobStore
            + EventStore
            + ListStore
            + RegistryStore
            + SettingsStore
            + WorkQueue
            + PayloadStore
            + 'static,
    {
        Self {
            dispatcher,
            queue: store.clone(),
            payloads: store.clone(),
            jobs: store.clone(),
            events: store.clone(),
            lists: store.clone(),
            registry: store.clone(),
            settings: store,
            tokens: Arc::new(tokens),
        }
    }
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState").finish_non_exhaustive()
    }
}

/// Every route of the API app, as (method, path template): the OpenAPI document is checked
/// against this list.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/modules"),
    ("POST", "/modules/{name}/invoke"),
    ("GET", "/jobs"),
    ("GET", "/jobs/{id}"),
    ("POST", "/jobs/{id}/cancel"),
    ("GET", "/events"),
    ("GET", "/events/{id}"),
    ("POST", "/events/{id}/replay"),
    ("POST", "/admin/registry"),
    ("GET", "/admin/registry/versions"),
    ("POST", "/admin/registry/rollback/{version}"),
    ("GET", "/admin/settings/{scope}"),
    ("PUT", "/admin/settings/{scope}"),
    ("POST", "/workers/lease"),
    ("POST", "/jobs/{id}/heartbeat"),
    ("POST", "/jobs/{id}/finish"),
    ("POST", "/events"),
    ("GET", "/whoami"),
    ("GET", "/dashboard"),
    ("GET", "/dashboard/{asset}"),
];

/// The API app.
pub fn app(state: ApiState) -> Router {
    Router::new()
        .route("/modules", get(modules::list))
        .route("/modules/{name}/invoke", post(modules::invoke))
        .route("/jobs", get(jobs::list))
        .route("/jobs/{id}", get(jobs::get))
        .route("/jobs/{id}/cancel", post(jobs::cancel))
        .route("/events", get(events::list).post(workers::emit))
        .route("/events/{id}", get(events::get))
        .route("/events/{id}/replay", post(events::replay))
        .route("/admin/registry", post(admin::publish))
        .route("/admin/registry/versions", get(admin::versions))
        .route("/admin/registry/rollback/{version}", post(admin::rollback))
        .route(
            "/admin/settings/{*scope}",
            get(admin::get_settings).put(admin::put_settings),
        )
        .route("/whoami", get(modules::whoami))
        .route("/dashboard", get(crate::dashboard::page))
        .route("/dashboard/{asset}", get(crate::dashboard::asset))
        .route("/workers/lease", post(workers::lease))
        .route("/jobs/{id}/heartbeat", post(workers::heartbeat))
        .route("/jobs/{id}/finish", post(workers::finish))
        .fallback(|| async { ApiError::NotFound })
        .with_state(state)
        .layer(axum::middleware::map_response(json_errors))
}

/// A store failure as the API answers it: an invalid request to the store is 400, anything
/// else is logged and 503.
fn store_failure(e: &StoreError) -> ApiError {
    if let StoreError::Invalid(message) = e {
        return ApiError::bad_request(message.clone());
    }
    error!(error = %error_chain(e), "store failure");
    ApiError::Unavailable
}

/// A record as JSON without the fields that are the store's business: the lease token (a
/// fencing secret of the attempt holding an event) and the stored payload's reference.
/// Records carry no table keys (those are the adapter's), so there are none to strip.
fn public_view(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        for k in ["lease_token", "payload_ref"] {
            o.remove(k);
        }
    }
    v
}

/// A listing page as the API answers it: `{items, next_cursor}`, each item as `item` says.
fn page_json<T>(page: crate::store::Page<T>, item: impl Fn(T) -> Value) -> axum::Json<Value> {
    let items: Vec<Value> = page.items.into_iter().map(item).collect();
    axum::Json(serde_json::json!({ "items": items, "next_cursor": page.next_cursor }))
}

/// 404 `not_found` for `what` (e.g. "job `abc`").
fn no_such(what: impl std::fmt::Display) -> ApiError {
    ApiError::new(Code::NotFound, format!("no {what}"))
}

/// Longest job or delivery id the API looks up (ids it makes are 32 characters; delivery
/// ids are at most 200): longer ones are refused with 400 before the store sees them.
pub const MAX_ID_BYTES: usize = 200;

/// 400 unless `id` can be a job id (1 to [`MAX_ID_BYTES`] visible ASCII characters).
fn valid_job_id(id: &str) -> Result<(), ApiError> {
    if (1..=MAX_ID_BYTES).contains(&id.len()) && id.chars().all(|c| c.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "job ids are 1 to {MAX_ID_BYTES} visible ASCII characters"
        )))
    }
}
