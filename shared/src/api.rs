//! The HTTP API (`functions/api`): start modules by hand, read jobs and events, cancel jobs.
//! Bearer tokens with scopes guard every route. Starts go through the same dispatcher as
//! webhooks and schedules (one code path decides, records and fans out).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::{error, info, warn};

use crate::auth::{Scope, TokenEntry, Tokens};
use crate::config::SourceKind;
use crate::dispatch::{Dispatcher, Outcome, Replay};
use crate::event::{Event, EventType, Sender};
use crate::manifest::{Module, Trigger};
use crate::registry::{self, PublishError};
use crate::store::{
    EventQuery, EventRecord, EventStatus, EventStore, JobQuery, JobStatus, JobStore, ListStore,
    PayloadStore, RegistryStore, SettingsStore, WorkQueue, keys,
};
use crate::webhook::{ApiError, error_chain};

/// What the API app needs.
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

pub(crate) fn problem(
    status: StatusCode,
    code: &'static str,
    message: impl Into<String>,
) -> ApiError {
    ApiError::Problem {
        status,
        code,
        message: message.into(),
    }
}

/// The bearer token of a request (`Authorization: Bearer <token>`; the scheme's case is
/// not significant, RFC 9110 section 11.1).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The entry of the request's bearer token: 401 without a valid one.
pub(crate) fn authenticate<'t>(
    tokens: &'t Tokens,
    headers: &HeaderMap,
) -> Result<&'t TokenEntry, ApiError> {
    let bearer = bearer(headers);
    match bearer.and_then(|t| tokens.check(t)) {
        Some(entry) => Ok(entry),
        None => {
            warn!(
                has_header = headers.contains_key(header::AUTHORIZATION),
                "API request without a valid token"
            );
            Err(problem(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a valid bearer token is required",
            ))
        }
    }
}

/// 403 unless `entry` has `scope`.
pub(crate) fn require(entry: &TokenEntry, scope: Scope) -> Result<(), ApiError> {
    if entry.scopes.contains(&scope) {
        return Ok(());
    }
    warn!(token = %entry.name, ?scope, "API token lacks the scope");
    Err(problem(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!("the token lacks the {} scope", scope.as_str()),
    ))
}

/// Checks the bearer token and its scope: 401 without a valid token, 403 without the scope.
pub(crate) fn authorize<'t>(
    tokens: &'t Tokens,
    headers: &HeaderMap,
    scope: Scope,
) -> Result<&'t TokenEntry, ApiError> {
    let entry = authenticate(tokens, headers)?;
    require(entry, scope)?;
    Ok(entry)
}

/// 403 for a token whose restrictions do not cover `what` (e.g. "module `release`").
pub(crate) fn not_bound(entry: &TokenEntry, what: &str) -> ApiError {
    warn!(token = %entry.name, what, "API token is not bound to the resource");
    problem(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!("the token is not bound to {what}"),
    )
}

/// For a token bound to modules: 403 unless job `id` is one of theirs (one read; unbound
/// tokens skip it). A missing job passes: the call itself answers 404.
pub(crate) async fn bound_to_job(
    st: &ApiState,
    token: &TokenEntry,
    id: &str,
) -> Result<(), ApiError> {
    if token.restrictions.modules.is_none() {
        return Ok(());
    }
    match st.jobs.get_job(id).await.map_err(|e| store_failure(&e))? {
        Some(job) => require_module(token, &job.module),
        None => Ok(()),
    }
}

/// 403 unless `entry` may act on `module`.
pub(crate) fn require_module(entry: &TokenEntry, module: &str) -> Result<(), ApiError> {
    if entry.restrictions.allows_module(module) {
        Ok(())
    } else {
        Err(not_bound(
            entry,
            &format!("module `{}`", crate::store::bounded(module, 100)),
        ))
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
        .route("/modules", get(modules))
        .route("/modules/{name}/invoke", post(invoke))
        .route("/jobs", get(list_jobs))
        .route("/jobs/{id}", get(job))
        .route("/jobs/{id}/cancel", post(cancel))
        .route("/events", get(list_events).post(crate::workers::emit))
        .route("/events/{id}", get(event))
        .route("/events/{id}/replay", post(replay))
        .route("/admin/registry", post(publish))
        .route("/admin/registry/versions", get(versions))
        .route("/admin/registry/rollback/{version}", post(rollback))
        .route(
            "/admin/settings/{*scope}",
            get(get_settings).put(put_settings),
        )
        .route("/whoami", get(whoami))
        .route("/dashboard", get(crate::dashboard::page))
        .route("/dashboard/{asset}", get(crate::dashboard::asset))
        .route("/workers/lease", post(crate::workers::lease))
        .route("/jobs/{id}/heartbeat", post(crate::workers::heartbeat))
        .route("/jobs/{id}/finish", post(crate::workers::finish))
        .fallback(|| async { ApiError::NotFound })
        .with_state(state)
        .layer(axum::middleware::map_response(crate::webhook::json_errors))
}

pub(crate) fn respond(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /whoami`: the calling token's name and scopes (any valid token), so clients such
/// as the dashboard show only what the token may do.
async fn whoami(State(st): State<ApiState>, headers: HeaderMap) -> Response {
    respond(authenticate(&st.tokens, &headers).map(|entry| {
        let scopes: Vec<&str> = entry.scopes.iter().map(|s| s.as_str()).collect();
        axum::Json(json!({
            "name": entry.name, "scopes": scopes, "restrictions": entry.restrictions,
        }))
        .into_response()
    }))
}

fn trigger_json(t: &Trigger) -> Value {
    match t {
        Trigger::Webhook(w) => json!({
            "kind": "webhook", "sources": w.sources, "events": w.events, "actions": w.actions,
            "cooldown_seconds": w.cooldown.map(|d| d.as_secs()),
            "branches": w.branches.as_ref().map(|b| json!({"patterns": b.globs.patterns(), "ignore": b.ignore})),
            "paths": w.paths.as_ref().map(|b| json!({"patterns": b.globs.patterns(), "ignore": b.ignore})),
        }),
        Trigger::Schedule(s) => {
            json!({"kind": "schedule", "cron": s.expression, "timezone": s.timezone})
        }
        Trigger::Invoke(_) => json!({"kind": "invoke"}),
    }
}

async fn modules(State(st): State<ApiState>, headers: HeaderMap) -> Response {
    if let Err(e) = authorize(&st.tokens, &headers, Scope::Read) {
        return e.into_response();
    }
    let active = st.dispatcher.active_registry().await;
    let list: Vec<Value> = active
            .registry
            .modules()
            .iter()
            .map(|m| {
                json!({
                    "name": m.name, "description": m.description, "function": m.function,
                    "feature_flag": m.flag, "triggers": m.triggers.iter().map(trigger_json).collect::<Vec<_>>(),
                })
            })
            .collect();
    axum::Json(json!({ "version": active.version, "published": active.version.is_some(), "modules": list })).into_response()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct InvokeBody {
    #[serde(default)]
    payload: Option<Value>,
    #[serde(default)]
    entity: Option<String>,
    #[serde(default)]
    config: Option<Value>,
}

fn invokable(m: &Module) -> bool {
    m.triggers.iter().any(|t| matches!(t, Trigger::Invoke(_)))
}

async fn invoke(
    State(st): State<ApiState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(invoke_inner(&st, &name, &headers, &body).await)
}

async fn invoke_inner(
    st: &ApiState,
    name: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let token = authorize(&st.tokens, headers, Scope::Invoke)?;
    require_module(token, name)?;
    let registry = st.dispatcher.active_registry().await.registry.clone();
    let Some(module) = registry.get(name) else {
        return Err(problem(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no module named `{name}`"),
        ));
    };
    if !invokable(module) {
        return Err(problem(
            StatusCode::CONFLICT,
            "not_invokable",
            format!("module `{name}` has no invoke trigger"),
        ));
    }
    let request: InvokeBody = if body.iter().all(u8::is_ascii_whitespace) {
        InvokeBody::default()
    } else {
        let bad = |e: String| {
            problem(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("invalid body: {e}"),
            )
        };
        // serde would also read a struct from a JSON array; only an object is a body.
        let value: Value = serde_json::from_slice(body).map_err(|e| bad(e.to_string()))?;
        if !value.is_object() {
            return Err(bad("expected a JSON object".into()));
        }
        serde_json::from_value(value).map_err(|e| bad(e.to_string()))?
    };
    if request.config.as_ref().is_some_and(|c| !c.is_object()) {
        return Err(problem(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "`config` must be an object",
        ));
    }
    if request
        .entity
        .as_ref()
        .is_some_and(|e| e.is_empty() || e.len() > 512)
    {
        return Err(problem(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "`entity` must be 1 to 512 characters",
        ));
    }
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => match v.to_str() {
            Ok(k) if !k.is_empty() && k.len() <= 200 && k.chars().all(|c| c.is_ascii_graphic()) => {
                Some(k.to_owned())
            }
            _ => {
                return Err(problem(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "Idempotency-Key must be 1 to 200 visible ASCII characters",
                ));
            }
        },
    };
    // The repository picks the settings scope the start runs under: a token bound to
    // repositories names one of them (or none: the global scope).
    let repository = request.payload.as_ref().and_then(repository_of);
    if let Some(repo) = &repository {
        if !token.restrictions.allows_repo(repo) {
            return Err(not_bound(
                token,
                &format!("repository `{}`", crate::store::bounded(repo, 200)),
            ));
        }
    }
    let payload = json!({
        "module": name,
        "payload": request.payload.clone().unwrap_or(Value::Object(Default::default())),
        "config": request.config.clone().unwrap_or(Value::Null),
    });
    let canonical = json!({"payload": payload, "entity": request.entity});
    let id = match &key {
        Some(k) => format!("{name}:{k}"),
        None => format!("{name}:{}", uuid::Uuid::new_v4()),
    };
    let event = MadeEvent {
        id: id.clone(),
        source: "api".into(),
        kind: SourceKind::Api,
        event_type: EventType::Invoke,
        action: None,
        entity: request
            .entity
            .clone()
            .unwrap_or_else(|| format!("invoke:{name}")),
        repository,
    }
    .by(token, &canonical, payload, st.dispatcher.clock().now());
    let job_id = keys::job_id("api", &id, name);
    let accepted = |duplicate: bool| {
        (
            StatusCode::ACCEPTED,
            axum::Json(json!({ "job_id": job_id, "status_url": format!("/jobs/{job_id}"), "duplicate": duplicate })),
        )
            .into_response()
    };
    match st.dispatcher.dispatch(&event).await {
        Ok(Outcome::Dispatched(d)) if !d.jobs.is_empty() => {
            info!(module = name, job_id = %job_id, token = %token.name, "module invoked");
            Ok(accepted(false))
        }
        Ok(Outcome::Dispatched(d)) => {
            let why = d
                .skipped
                .first()
                .and_then(|s| s.detail.clone())
                .unwrap_or_default();
            Err(problem(
                StatusCode::CONFLICT,
                "disabled",
                format!("module `{name}` is switched off: {why}"),
            ))
        }
        // The key's first use made the job, unless the module was switched off then: that
        // answer (409 disabled) is the key's answer for good, never a job that is not there.
        Ok(Outcome::Duplicate { .. }) => match st.jobs.get_job(&job_id).await {
            Ok(Some(_)) => Ok(accepted(true)),
            Ok(None) => Err(problem(
                StatusCode::CONFLICT,
                "disabled",
                format!(
                    "this Idempotency-Key was first used while module `{name}` was switched off, and no job was made; send a new key"
                ),
            )),
            Err(e) => Err(store_failure(&e)),
        },
        Ok(Outcome::Conflict) => Err(problem(
            StatusCode::CONFLICT,
            "idempotency_conflict",
            "this Idempotency-Key was used with another body",
        )),
        Ok(Outcome::InProgress { retry_after }) => Err(ApiError::InProgress(retry_after)),
        Ok(Outcome::Incomplete(d)) => Err(ApiError::DispatchIncomplete(
            serde_json::to_value(d).unwrap_or_default(),
        )),
        Err(e) => {
            error!(module = name, error = %error_chain(&e), "store failure: nothing dispatched");
            Err(ApiError::Unavailable)
        }
    }
}

/// What the caller names of an event the API makes (an invoke, an internal event).
pub(crate) struct MadeEvent {
    pub(crate) id: String,
    pub(crate) source: String,
    pub(crate) kind: SourceKind,
    pub(crate) event_type: EventType,
    pub(crate) action: Option<String>,
    pub(crate) entity: String,
    pub(crate) repository: Option<String>,
}

impl MadeEvent {
    /// The event, made now by `token`: its sender is the token's name and its digest is of
    /// `canonical`, the request without its id, so that a resend is a duplicate and a reused
    /// id with another request a conflict.
    pub(crate) fn by(
        self,
        token: &TokenEntry,
        canonical: &Value,
        payload: Value,
        now: time::OffsetDateTime,
    ) -> Event {
        Event {
            id: self.id,
            source: self.source,
            kind: self.kind,
            event_type: self.event_type,
            action: self.action,
            entity: self.entity,
            repository: self.repository,
            received_at: now,
            body_digest: crate::event::body_digest(canonical.to_string().as_bytes()),
            git_ref: None,
            changed_paths: None,
            changed_paths_truncated: false,
            changed_paths_unknown: None,
            sender: Some(Sender {
                login: token.name.clone(),
                bot: false,
            }),
            payload: payload.into(),
        }
    }
}

/// The repository an API-made event is about: the payload's `repository`, as a name or an
/// object with `full_name` (scopes settings like a forge event's repository).
pub(crate) fn repository_of(payload: &Value) -> Option<String> {
    let r = payload.get("repository")?;
    r.as_str()
        .or_else(|| r.get("full_name").and_then(Value::as_str))
        .map(str::to_owned)
}

pub(crate) fn without_keys(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        for k in [
            "pk",
            "sk",
            "lease_token",
            "gsi1pk",
            "gsi1sk",
            "gsi2pk",
            "gsi2sk",
            "payload_ref",
            "queue_pk",
            "queue_sk",
        ] {
            o.remove(k);
        }
    }
    v
}

pub(crate) fn store_failure(e: &crate::store::StoreError) -> ApiError {
    if let crate::store::StoreError::Invalid(message) = e {
        return problem(StatusCode::BAD_REQUEST, "bad_request", message.clone());
    }
    error!(error = %error_chain(e), "store failure");
    ApiError::Unavailable
}

async fn job(State(st): State<ApiState>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    respond(
        async {
            authorize(&st.tokens, &headers, Scope::Read)?;
            valid_job_id(&id)?;
            match st.jobs.get_job(&id).await.map_err(|e| store_failure(&e))? {
                Some(j) => Ok(axum::Json(without_keys(
                    serde_json::to_value(j).unwrap_or_default(),
                ))
                .into_response()),
                None => Err(problem(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    format!("no job `{id}`"),
                )),
            }
        }
        .await,
    )
}

async fn cancel(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            let token = authorize(&st.tokens, &headers, Scope::Invoke)?;
            valid_job_id(&id)?;
            bound_to_job(&st, token, &id).await?;
            let now = st.dispatcher.clock().now();
            match st
                .jobs
                .request_cancel(&id, now)
                .await
                .map_err(|e| store_failure(&e))?
            {
                None => Err(problem(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    format!("no job `{id}`"),
                )),
                Some(JobStatus::Cancelled) => {
                    Ok(axum::Json(json!({"job_id": id, "status": "cancelled"})).into_response())
                }
                Some(JobStatus::Running) => Ok((
                    StatusCode::ACCEPTED,
                    axum::Json(
                        json!({"job_id": id, "status": "running", "cancel_requested": true}),
                    ),
                )
                    .into_response()),
                Some(other) => Err(problem(
                    StatusCode::CONFLICT,
                    "already_finished",
                    format!("job `{id}` is already {}", other.as_str()),
                )),
            }
        }
        .await,
    )
}

async fn event(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            authorize(&st.tokens, &headers, Scope::Read)?;
            let p = params(raw, &["include"])?;
            let with_payload = match p.get("include").map(String::as_str) {
                None => false,
                Some("payload") => true,
                Some(other) => {
                    return Err(bad_request(format!(
                        "`include` is `payload`, not `{}`",
                        crate::store::bounded(other, 64)
                    )));
                }
            };
            // Event ids in the API are `<source>:<delivery id>`.
            let (source, delivery) = event_id(&id)?;
            match st
                .events
                .get_event(&keys::event(source, delivery))
                .await
                .map_err(|e| store_failure(&e))?
            {
                Some(e) => {
                    let mut v = without_keys(serde_json::to_value(e).unwrap_or_default());
                    if with_payload {
                        // The normalized event kept for replay (payload included), or null
                        // when it was not kept (skipped schedule ticks).
                        let pk = keys::event(source, delivery);
                        let event = st
                            .events
                            .load_event(&pk)
                            .await
                            .map_err(|e| store_failure(&e))?;
                        v["event"] = serde_json::to_value(event).unwrap_or_default();
                    }
                    Ok(axum::Json(v).into_response())
                }
                None => Err(problem(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    format!("no event `{id}`"),
                )),
            }
        }
        .await,
    )
}

/// Largest page of a listing.
pub const MAX_LIMIT: usize = 200;
/// Page size when none is asked for.
pub const DEFAULT_LIMIT: usize = 50;

fn bad_request(message: impl Into<String>) -> ApiError {
    problem(StatusCode::BAD_REQUEST, "bad_request", message)
}

/// Query parameters, each at most once, none unknown.
fn params(
    raw: Option<String>,
    allowed: &[&str],
) -> Result<std::collections::BTreeMap<String, String>, ApiError> {
    let mut map = std::collections::BTreeMap::new();
    let raw = raw.unwrap_or_default();
    for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
        if !allowed.contains(&k.as_ref()) {
            return Err(bad_request(format!(
                "unknown query parameter `{}` (known: {})",
                crate::store::bounded(&k, 64),
                allowed.join(", ")
            )));
        }
        if v.len() > 2048 {
            return Err(bad_request(format!("query parameter `{k}` is too long")));
        }
        if map.insert(k.to_string(), v.to_string()).is_some() {
            return Err(bad_request(format!("query parameter `{k}` is given twice")));
        }
    }
    Ok(map)
}

fn limit_param(p: &std::collections::BTreeMap<String, String>) -> Result<usize, ApiError> {
    match p.get("limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| bad_request(format!("`limit` must be 1 to {MAX_LIMIT}"))),
    }
}

fn bool_param(
    p: &std::collections::BTreeMap<String, String>,
    name: &str,
) -> Result<bool, ApiError> {
    match p.get(name).map(String::as_str) {
        None | Some("false" | "0") => Ok(false),
        Some("true" | "1") => Ok(true),
        Some(_) => Err(bad_request(format!("`{name}` must be true or false"))),
    }
}

/// `since` (RFC 3339), never earlier than `horizon` (what the TTL keeps).
fn since_param(
    p: &std::collections::BTreeMap<String, String>,
    horizon: time::OffsetDateTime,
) -> Result<time::OffsetDateTime, ApiError> {
    match p.get("since") {
        None => Ok(horizon),
        Some(v) => time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
            .map(|t| t.max(horizon))
            .map_err(|_| {
                bad_request("`since` must be an RFC 3339 time, e.g. 2026-01-31T12:00:00Z")
            }),
    }
}

fn short_param(
    p: &std::collections::BTreeMap<String, String>,
    name: &str,
) -> Result<Option<String>, ApiError> {
    // Cursors carry index keys (a few hundred characters); names are short.
    let max = if name == "cursor" { 2048 } else { 200 };
    match p.get(name) {
        None => Ok(None),
        Some(v) if !v.is_empty() && v.len() <= max && !v.chars().any(char::is_control) => {
            Ok(Some(v.clone()))
        }
        Some(_) => Err(bad_request(format!(
            "`{name}` must be 1 to {max} printable characters"
        ))),
    }
}

fn horizon(st: &ApiState, ttl: std::time::Duration) -> time::OffsetDateTime {
    st.dispatcher.clock().now() - ttl
}

fn event_json(e: &EventRecord) -> Value {
    let mut v = without_keys(serde_json::to_value(e).unwrap_or_default());
    v["id"] = json!(format!("{}:{}", e.source, e.event_id));
    v
}

async fn list_events(
    State(st): State<ApiState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            authorize(&st.tokens, &headers, Scope::Read)?;
            let p = params(
                raw,
                &["source", "type", "status", "since", "limit", "cursor"],
            )?;
            let status = match p.get("status").map(String::as_str) {
                None => None,
                Some("in_progress") => Some(EventStatus::InProgress),
                Some("completed") => Some(EventStatus::Completed),
                Some("failed") => Some(EventStatus::Failed),
                Some(_) => {
                    return Err(bad_request(
                        "`status` must be in_progress, completed or failed",
                    ));
                }
            };
            let query = EventQuery {
                source: short_param(&p, "source")?,
                event_type: short_param(&p, "type")?,
                status,
                since: since_param(&p, horizon(&st, st.dispatcher.settings().event_ttl))?,
                limit: limit_param(&p)?,
                cursor: short_param(&p, "cursor")?,
            };
            let page = st
                .lists
                .list_events(&query, st.dispatcher.clock().now())
                .await
                .map_err(|e| store_failure(&e))?;
            let items: Vec<Value> = page.items.iter().map(event_json).collect();
            Ok(
                axum::Json(json!({ "items": items, "next_cursor": page.next_cursor }))
                    .into_response(),
            )
        }
        .await,
    )
}

async fn list_jobs(
    State(st): State<ApiState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            authorize(&st.tokens, &headers, Scope::Read)?;
            let p = params(raw, &["module", "status", "since", "limit", "cursor"])?;
            let status = match p.get("status").map(String::as_str) {
                None => None,
                Some("queued") => Some(JobStatus::Queued),
                Some("running") => Some(JobStatus::Running),
                Some("succeeded") => Some(JobStatus::Succeeded),
                Some("failed") => Some(JobStatus::Failed),
                Some("cancelled") => Some(JobStatus::Cancelled),
                Some(_) => {
                    return Err(bad_request(
                        "`status` must be queued, running, succeeded, failed or cancelled",
                    ));
                }
            };
            let query = JobQuery {
                module: short_param(&p, "module")?,
                status,
                since: since_param(&p, horizon(&st, st.dispatcher.settings().job_ttl))?,
                limit: limit_param(&p)?,
                cursor: short_param(&p, "cursor")?,
            };
            let page = st
                .lists
                .list_jobs(&query, st.dispatcher.clock().now())
                .await
                .map_err(|e| store_failure(&e))?;
            let items: Vec<Value> = page
                .items
                .into_iter()
                .map(|j| without_keys(serde_json::to_value(j).unwrap_or_default()))
                .collect();
            Ok(
                axum::Json(json!({ "items": items, "next_cursor": page.next_cursor }))
                    .into_response(),
            )
        }
        .await,
    )
}

/// Splits an API event id, `<source>:<delivery id>`.
fn event_id(id: &str) -> Result<(&str, &str), ApiError> {
    // Checked here, not by DynamoDB: a key it refuses would answer 503, not 400.
    id.split_once(':')
        .filter(|(s, d)| {
            (1..=100).contains(&s.len())
                && (1..=MAX_ID_BYTES).contains(&d.len())
                && id.chars().all(|c| c.is_ascii_graphic())
        })
        .ok_or_else(|| {
            bad_request(format!(
                "event ids are `<source>:<delivery id>`, visible ASCII, the delivery id at most {MAX_ID_BYTES} characters"
            ))
        })
}

/// Longest job or delivery id the API looks up (ids it makes are 32 characters; delivery
/// ids are at most 200): longer ones are refused with 400 before the store sees them.
pub(crate) const MAX_ID_BYTES: usize = 200;

/// 400 unless `id` can be a job id (1 to [`MAX_ID_BYTES`] visible ASCII characters).
pub(crate) fn valid_job_id(id: &str) -> Result<(), ApiError> {
    if (1..=MAX_ID_BYTES).contains(&id.len()) && id.chars().all(|c| c.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(bad_request(format!(
            "job ids are 1 to {MAX_ID_BYTES} visible ASCII characters"
        )))
    }
}

async fn replay(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            // Who asks comes first: an anonymous request is 401 whatever its query says.
            let token = authenticate(&st.tokens, &headers)?;
            let p = params(raw, &["force", "dry_run"])?;
            let dry_run = bool_param(&p, "dry_run")?;
            let force = bool_param(&p, "force")?;
            // A dry run only reads; a replay starts modules.
            require(token, if dry_run { Scope::Read } else { Scope::Invoke })?;
            if !dry_run && token.restrictions.modules.is_some() {
                // A replay starts whatever matches the event now: more than a bound token's
                // modules can promise.
                return Err(not_bound(token, "every module (a replay starts whatever matches)"));
            }
            let (source, delivery) = event_id(&id)?;
            let result = st
                .dispatcher
                .replay(source, delivery, force, dry_run)
                .await
                .map_err(|e| {
                    error!(error = %error_chain(&e), "replay failed: nothing dispatched");
                    ApiError::Unavailable
                })?;
            match result {
                Replay::Missing => Err(problem(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    format!("no event `{id}`"),
                )),
                Replay::NotStored => Err(problem(
                    StatusCode::CONFLICT,
                    "not_replayable",
                    format!("event `{id}` has no stored payload"),
                )),
                Replay::Planned(plan) => {
                    let mut body = serde_json::to_value(plan).unwrap_or_default();
                    body["dry_run"] = json!(true);
                    Ok(axum::Json(body).into_response())
                }
                Replay::Done(Outcome::Dispatched(d)) => {
                    info!(event = %id, token = %token.name, force, jobs = d.jobs.len(), "event replayed");
                    Ok((StatusCode::ACCEPTED, axum::Json(d)).into_response())
                }
                Replay::Done(Outcome::Incomplete(d)) => Err(ApiError::DispatchIncomplete(
                    serde_json::to_value(d).unwrap_or_default(),
                )),
                Replay::Done(Outcome::InProgress { retry_after }) => {
                    Err(ApiError::InProgress(retry_after))
                }
                Replay::Done(Outcome::Duplicate { .. } | Outcome::Conflict) => {
                    Err(ApiError::InProgress(1))
                }
            }
        }
        .await,
    )
}

/// Largest registry bundle: manifests and bytes per manifest.
const MAX_BUNDLE_MANIFESTS: usize = 500;
const MAX_MANIFEST_BYTES: usize = 64 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Bundle {
    manifests: std::collections::BTreeMap<String, String>,
}

fn publish_failure(e: PublishError) -> ApiError {
    match e {
        PublishError::Store(e) => store_failure(&e),
        PublishError::Contended => problem(
            StatusCode::CONFLICT,
            "contended",
            "the registry kept changing under this publish; try again",
        ),
        PublishError::NoSuchVersion(v) => problem(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no registry version {v}"),
        ),
    }
}

async fn published(st: &ApiState, report: &crate::registry::Report) -> Response {
    // This process uses the new version at once; the others within their refresh interval.
    if let Err(e) = st.dispatcher.registry_source().refresh_now().await {
        warn!(error = %error_chain(&e), "published, but reloading here failed");
    }
    axum::Json(report).into_response()
}

async fn publish(State(st): State<ApiState>, headers: HeaderMap, body: Bytes) -> Response {
    let token = match authorize(&st.tokens, &headers, Scope::Admin) {
        Ok(t) => t.name.clone(),
        Err(e) => return e.into_response(),
    };
    let bundle: Bundle = match serde_json::from_slice::<Value>(&body)
        .map_err(|e| e.to_string())
        .and_then(|v| {
            if v.is_object() {
                serde_json::from_value(v).map_err(|e| e.to_string())
            } else {
                Err("expected a JSON object".into())
            }
        }) {
        Ok(b) => b,
        Err(e) => {
            return bad_request(format!(
                "invalid bundle ({e}); expected {{\"manifests\": {{\"<file>\": \"<YAML or JSON>\"}}}}"
            ))
            .into_response();
        }
    };
    if bundle.manifests.len() > MAX_BUNDLE_MANIFESTS
        || bundle
            .manifests
            .iter()
            .any(|(k, v)| k.is_empty() || k.len() > 200 || v.len() > MAX_MANIFEST_BYTES)
    {
        return bad_request(format!(
            "a bundle holds at most {MAX_BUNDLE_MANIFESTS} manifests, named by 1 to 200 characters, of at most {MAX_MANIFEST_BYTES} bytes each"
        ))
        .into_response();
    }
    let now = st.dispatcher.clock().now();
    match registry::publish(st.registry.as_ref(), &bundle.manifests, None, &token, now).await {
        Ok(report) => published(&st, &report).await,
        Err(e) => publish_failure(e).into_response(),
    }
}

async fn rollback(
    State(st): State<ApiState>,
    Path(version): Path<String>,
    headers: HeaderMap,
) -> Response {
    let token = match authorize(&st.tokens, &headers, Scope::Admin) {
        Ok(t) => t.name.clone(),
        Err(e) => return e.into_response(),
    };
    let Some(version) = version.parse::<u64>().ok().filter(|v| *v >= 1) else {
        return bad_request("the version is a positive integer").into_response();
    };
    let now = st.dispatcher.clock().now();
    match registry::publish(
        st.registry.as_ref(),
        &std::collections::BTreeMap::new(),
        Some(version),
        &token,
        now,
    )
    .await
    {
        Ok(report) => published(&st, &report).await,
        Err(e) => publish_failure(e).into_response(),
    }
}

async fn versions(
    State(st): State<ApiState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            authorize(&st.tokens, &headers, Scope::Admin)?;
            let p = params(raw, &["limit"])?;
            let limit = limit_param(&p)?;
            let (active, list) = tokio::try_join!(
                st.registry.registry_version(),
                st.registry.list_registry(limit)
            )
            .map_err(|e| store_failure(&e))?;
            Ok(axum::Json(json!({ "active": active, "versions": list })).into_response())
        }
        .await,
    )
}

fn scope_of(scope: &str) -> Result<String, ApiError> {
    let scope = scope.trim_start_matches('/');
    crate::settings::validate_scope(scope).map_err(bad_request)?;
    Ok(scope.to_owned())
}

async fn get_settings(
    State(st): State<ApiState>,
    Path(scope): Path<String>,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            authorize(&st.tokens, &headers, Scope::Admin)?;
            let scope = scope_of(&scope)?;
            let found = st
                .settings
                .get_settings(std::slice::from_ref(&scope))
                .await
                .map_err(|e| store_failure(&e))?;
            match found.into_iter().next() {
                Some((scope, s)) => Ok(axum::Json(
                    json!({ "scope": scope, "flags": s.flags, "config": s.config }),
                )
                .into_response()),
                None => Err(problem(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    format!("no settings for scope `{scope}`"),
                )),
            }
        }
        .await,
    )
}

/// Largest settings body (the item also holds the scope; DynamoDB's item limit is 400 KB).
const MAX_SETTINGS_BYTES: usize = 64 * 1024;

/// Whether DynamoDB can store a JSON value: numbers within its range (magnitude 1e-130 to
/// 9.99e125) and at most 32 levels of nesting.
pub(crate) fn storable(v: &Value, depth: usize) -> Result<(), String> {
    if depth > 30 {
        return Err("the value nests deeper than 30 levels".into());
    }
    match v {
        Value::Number(n) => match n.as_f64() {
            Some(x) if x == 0.0 || (1e-130..1e125).contains(&x.abs()) => Ok(()),
            _ => Err(format!(
                "the number {n} is outside the range the store keeps (1e-130 to 1e125)"
            )),
        },
        Value::Array(items) => items.iter().try_for_each(|i| storable(i, depth + 1)),
        Value::Object(map) => map.iter().try_for_each(|(k, i)| {
            if k.is_empty() {
                return Err("object keys must not be empty".into());
            }
            storable(i, depth + 1)
        }),
        _ => Ok(()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsBody {
    #[serde(default)]
    flags: std::collections::BTreeMap<String, bool>,
    #[serde(default)]
    config: std::collections::BTreeMap<String, Value>,
}

async fn put_settings(
    State(st): State<ApiState>,
    Path(scope): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(
        async {
            let token = authorize(&st.tokens, &headers, Scope::Admin)?;
            let scope = scope_of(&scope)?;
            let value: Value = serde_json::from_slice(&body)
                .map_err(|e| bad_request(format!("invalid body: {e}")))?;
            if !value.is_object() {
                return Err(bad_request(
                    "expected a JSON object with `flags` and `config`",
                ));
            }
            let parsed: SettingsBody = serde_json::from_value(value)
                .map_err(|e| bad_request(format!("invalid body: {e}")))?;
            if body.len() > MAX_SETTINGS_BYTES {
                return Err(problem(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("settings are at most {MAX_SETTINGS_BYTES} bytes"),
                ));
            }
            if parsed
                .flags
                .keys()
                .chain(parsed.config.keys())
                .any(|k| k.is_empty() || k.len() > 200)
            {
                return Err(bad_request("flag and module names are 1 to 200 characters"));
            }
            for v in parsed.config.values() {
                storable(v, 1).map_err(bad_request)?;
            }
            if parsed.config.values().any(|v| !v.is_object()) {
                return Err(bad_request(
                    "each `config` entry is an object (by module name)",
                ));
            }
            let settings = crate::settings::Settings {
                flags: parsed.flags,
                config: parsed.config,
            };
            st.settings
                .put_settings(&scope, &settings, st.dispatcher.clock().now())
                .await
                .map_err(|e| store_failure(&e))?;
            info!(scope = %scope, token = %token.name, "settings replaced");
            Ok(axum::Json(json!({
                "scope": scope, "flags": settings.flags, "config": settings.config,
                "effective_within_seconds": st.dispatcher.settings().settings_ttl.as_secs(),
            }))
            .into_response())
        }
        .await,
    )
}
