//! The admin routes (scope `admin`): publish and roll back the registry, list its
//! versions, read and replace per-scope settings.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::{info, warn};

use super::input::{VersionsQuery, object};
use super::{Admin, ApiState, Caller, Params, no_such, store_failure};
use crate::problem::{ApiError, Code};
use crate::registry::{self, PublishError, Report};
use crate::settings::Settings;
use crate::webhook::error_chain;

/// Largest registry bundle: manifests and bytes per manifest.
const MAX_BUNDLE_MANIFESTS: usize = 500;
const MAX_MANIFEST_BYTES: usize = 64 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Bundle {
    manifests: BTreeMap<String, String>,
}

impl Bundle {
    fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let bundle: Self = object(body).map_err(|e| {
            ApiError::bad_request(format!(
                "{e}; expected {{\"manifests\": {{\"<file>\": \"<YAML or JSON>\"}}}}"
            ))
        })?;
        let oversized = |(k, v): (&String, &String)| {
            k.is_empty() || k.len() > 200 || v.len() > MAX_MANIFEST_BYTES
        };
        if bundle.manifests.len() > MAX_BUNDLE_MANIFESTS || bundle.manifests.iter().any(oversized) {
            return Err(ApiError::bad_request(format!(
                "a bundle holds at most {MAX_BUNDLE_MANIFESTS} manifests, named by 1 to 200 characters, of at most {MAX_MANIFEST_BYTES} bytes each"
            )));
        }
        Ok(bundle)
    }
}

fn publish_failure(e: PublishError) -> ApiError {
    match e {
        PublishError::Store(e) => store_failure(&e),
        PublishError::Contended => ApiError::new(
            Code::Contended,
            "the registry kept changing under this publish; try again",
        ),
        PublishError::NoSuchVersion(v) => no_such(format_args!("registry version {v}")),
    }
}

/// This process uses the new version at once; the others within their refresh interval.
async fn published(st: &ApiState, report: Report) -> Json<Report> {
    if let Err(e) = st.dispatcher.registry_source().refresh_now().await {
        warn!(error = %error_chain(&e), "published, but reloading here failed");
    }
    Json(report)
}

/// `POST /admin/registry`: validates and publishes a bundle of manifests.
pub(super) async fn publish(
    caller: Caller<Admin>,
    State(st): State<ApiState>,
    body: Bytes,
) -> Result<Json<Report>, ApiError> {
    let bundle = Bundle::parse(&body)?;
    let now = st.dispatcher.clock().now();
    let report = registry::publish(
        st.registry.as_ref(),
        &bundle.manifests,
        None,
        caller.name(),
        now,
    )
    .await
    .map_err(publish_failure)?;
    Ok(published(&st, report).await)
}

/// `POST /admin/registry/rollback/{version}`: publishes an earlier version again.
pub(super) async fn rollback(
    caller: Caller<Admin>,
    State(st): State<ApiState>,
    Path(version): Path<String>,
) -> Result<Json<Report>, ApiError> {
    let Some(version) = version.parse::<u64>().ok().filter(|v| *v >= 1) else {
        return Err(ApiError::bad_request("the version is a positive integer"));
    };
    let now = st.dispatcher.clock().now();
    let none = BTreeMap::new();
    let report = registry::publish(
        st.registry.as_ref(),
        &none,
        Some(version),
        caller.name(),
        now,
    )
    .await
    .map_err(publish_failure)?;
    Ok(published(&st, report).await)
}

/// `GET /admin/registry/versions`: the active version and the newest published ones.
pub(super) async fn versions(
    _: Caller<Admin>,
    State(st): State<ApiState>,
    Params(q): Params<VersionsQuery>,
) -> Result<Json<Value>, ApiError> {
    let (active, list) = tokio::try_join!(
        st.registry.registry_version(),
        st.registry.list_registry(q.limit.0)
    )
    .map_err(|e| store_failure(&e))?;
    Ok(Json(json!({ "active": active, "versions": list })))
}

fn scope_of(scope: &str) -> Result<String, ApiError> {
    let scope = scope.trim_start_matches('/');
    crate::settings::validate_scope(scope).map_err(ApiError::bad_request)?;
    Ok(scope.to_owned())
}

/// `GET /admin/settings/{scope}`.
pub(super) async fn get_settings(
    _: Caller<Admin>,
    State(st): State<ApiState>,
    Path(scope): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let scope = scope_of(&scope)?;
    let found = (st.settings.get_settings(std::slice::from_ref(&scope)).await)
        .map_err(|e| store_failure(&e))?;
    match found.into_iter().next() {
        Some((scope, s)) => Ok(Json(
            json!({ "scope": scope, "flags": s.flags, "config": s.config }),
        )),
        None => Err(no_such(format_args!("settings for scope `{scope}`"))),
    }
}

/// Largest settings body (the item also holds the scope; DynamoDB's item limit is 400 KB).
const MAX_SETTINGS_BYTES: usize = 64 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsBody {
    #[serde(default)]
    flags: BTreeMap<String, bool>,
    #[serde(default)]
    config: BTreeMap<String, Value>,
}

impl SettingsBody {
    fn parse(body: &[u8]) -> Result<Settings, ApiError> {
        let parsed: Self = object(body)?;
        if body.len() > MAX_SETTINGS_BYTES {
            return Err(ApiError::new(
                Code::PayloadTooLarge,
                format!("settings are at most {MAX_SETTINGS_BYTES} bytes"),
            ));
        }
        let mut names = parsed.flags.keys().chain(parsed.config.keys());
        if names.any(|k| k.is_empty() || k.len() > 200) {
            return Err(ApiError::bad_request(
                "flag and module names are 1 to 200 characters",
            ));
        }
        for v in parsed.config.values() {
            crate::store::storable(v, 1).map_err(|e| ApiError::bad_request(e.to_string()))?;
        }
        if parsed.config.values().any(|v| !v.is_object()) {
            return Err(ApiError::bad_request(
                "each `config` entry is an object (by module name)",
            ));
        }
        Ok(Settings {
            flags: parsed.flags,
            config: parsed.config,
        })
    }
}

/// `PUT /admin/settings/{scope}`: replaces the scope's flags and module config.
pub(super) async fn put_settings(
    caller: Caller<Admin>,
    State(st): State<ApiState>,
    Path(scope): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let scope = scope_of(&scope)?;
    let settings = SettingsBody::parse(&body)?;
    let now = st.dispatcher.clock().now();
    (st.settings.put_settings(&scope, &settings, now).await).map_err(|e| store_failure(&e))?;
    info!(scope = %scope, token = %caller.name(), "settings replaced");
    Ok(Json(json!({
        "scope": scope, "flags": settings.flags, "config": settings.config,
        "effective_within_seconds": st.dispatcher.settings().settings_ttl.as_secs(),
    })))
}
