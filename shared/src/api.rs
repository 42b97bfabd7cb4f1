//! The HTTP API (`functions/api`): start modules by hand, read jobs and events, cancel jobs.
//! Bearer tokens with scopes guard every route. Starts go through the same dispatcher as
//! webhooks and schedules (one code path decides, records and fans out).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tracing::{error, info, warn};

use crate::auth::{Scope, TokenEntry, Tokens};
use crate::config::SourceKind;
use crate::dispatch::{Dispatcher, Outcome};
use crate::event::{Event, EventType, Sender};
use crate::manifest::{Module, Trigger};
use crate::store::{EventStore, JobStatus, JobStore, keys};
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
    /// Configured tokens.
    pub tokens: Arc<Tokens>,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState").finish_non_exhaustive()
    }
}

fn problem(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::Problem {
        status,
        code,
        message: message.into(),
    }
}

/// Checks the bearer token and its scope: 401 without a valid token, 403 without the scope.
fn authorize<'t>(
    tokens: &'t Tokens,
    headers: &HeaderMap,
    scope: Scope,
) -> Result<&'t TokenEntry, ApiError> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(entry) = bearer.and_then(|t| tokens.check(t)) else {
        warn!(
            has_header = bearer.is_some(),
            "API request without a valid token"
        );
        return Err(problem(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid bearer token is required",
        ));
    };
    if !entry.scopes.contains(&scope) {
        warn!(token = %entry.name, ?scope, "API token lacks the scope");
        return Err(problem(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("the token lacks the {scope:?} scope"),
        ));
    }
    Ok(entry)
}

/// The API app.
pub fn app(state: ApiState) -> Router {
    Router::new()
        .route("/modules", get(modules))
        .route("/modules/{name}/invoke", post(invoke))
        .route("/jobs/{id}", get(job))
        .route("/jobs/{id}/cancel", post(cancel))
        .route("/events/{id}", get(event))
        .fallback(|| async { ApiError::NotFound })
        .with_state(state)
}

fn respond(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

fn trigger_json(t: &Trigger) -> Value {
    match t {
        Trigger::Webhook(w) => json!({
            "kind": "webhook", "sources": w.sources, "events": w.events, "actions": w.actions,
            "cooldown_seconds": w.cooldown.map(|d| d.as_secs()),
        }),
        Trigger::Schedule(s) => {
            json!({"kind": "schedule", "cron": s.expression, "timezone": s.timezone})
        }
        Trigger::Invoke(_) => json!({"kind": "invoke"}),
    }
}

async fn modules(State(st): State<ApiState>, headers: HeaderMap) -> Response {
    respond((|| {
        authorize(&st.tokens, &headers, Scope::Read)?;
        let list: Vec<Value> = st
            .dispatcher
            .registry()
            .modules()
            .iter()
            .map(|m| {
                json!({
                    "name": m.name, "description": m.description, "function": m.function,
                    "feature_flag": m.flag, "triggers": m.triggers.iter().map(trigger_json).collect::<Vec<_>>(),
                })
            })
            .collect();
        Ok(axum::Json(json!({ "version": "builtin", "modules": list })).into_response())
    })())
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
    let registry = st.dispatcher.registry();
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
    let repository = request
        .payload
        .as_ref()
        .and_then(|p| p.get("repository"))
        .and_then(|r| {
            r.as_str()
                .or_else(|| r.get("full_name").and_then(Value::as_str))
        })
        .map(str::to_owned);
    let event = Event {
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
        received_at: st.dispatcher.clock().now(),
        body_sha256: hex::encode(Sha256::digest(canonical.to_string().as_bytes())),
        git_ref: None,
        changed_paths: None,
        sender: Some(Sender {
            login: token.name.clone(),
            bot: false,
        }),
        payload,
    };
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
        Ok(Outcome::Duplicate { .. }) => Ok(accepted(true)),
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

fn without_keys(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("pk");
        o.remove("sk");
        o.remove("lease_token");
    }
    v
}

fn store_failure(e: &crate::store::StoreError) -> ApiError {
    error!(error = %error_chain(e), "store failure");
    ApiError::Unavailable
}

async fn job(State(st): State<ApiState>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    respond(
        async {
            authorize(&st.tokens, &headers, Scope::Read)?;
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
            authorize(&st.tokens, &headers, Scope::Invoke)?;
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

async fn event(State(st): State<ApiState>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    respond(
        async {
            authorize(&st.tokens, &headers, Scope::Read)?;
            // Event ids in the API are `<source>:<delivery id>`.
            let Some((source, delivery)) = id.split_once(':') else {
                return Err(problem(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "event ids are `<source>:<delivery id>`",
                ));
            };
            match st
                .events
                .get_event(&keys::event(source, delivery))
                .await
                .map_err(|e| store_failure(&e))?
            {
                Some(e) => Ok(axum::Json(without_keys(
                    serde_json::to_value(e).unwrap_or_default(),
                ))
                .into_response()),
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
