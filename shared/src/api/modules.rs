//! `GET /whoami`, `GET /modules` and `POST /modules/{name}/invoke`: who the token is, what
//! modules there are, and starting one by hand through the dispatcher.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::{error, info};

use super::input::object;
use super::{Any, ApiState, Caller, Invoke, Read, no_such};
use crate::dispatch::Outcome;
use crate::event::{Event, EventType, Sender};
use crate::manifest::{Module, Trigger};
use crate::problem::{ApiError, Code};
use crate::source::SourceKind;
use crate::store::{bounded, ids};
use crate::webhook::error_chain;

/// `GET /whoami`: the calling token's name and scopes (any valid token), so clients such
/// as the dashboard show only what the token may do.
pub(super) async fn whoami(caller: Caller<Any>) -> Json<Value> {
    let token = &caller.token;
    let scopes: Vec<&str> = token.scopes.iter().map(|s| s.as_str()).collect();
    Json(json!({ "name": token.name, "scopes": scopes, "restrictions": token.restrictions }))
}

fn glob_json(b: &crate::manifest::GlobFilter) -> Value {
    json!({"patterns": b.globs.patterns(), "ignore": b.ignore})
}

fn trigger_json(t: &Trigger) -> Value {
    match t {
        Trigger::Webhook(w) => json!({
            "kind": "webhook", "sources": w.sources, "events": w.events, "actions": w.actions,
            "cooldown_seconds": w.cooldown.map(|d| d.as_secs()),
            "branches": w.branches.as_ref().map(glob_json),
            "paths": w.paths.as_ref().map(glob_json),
        }),
        Trigger::Schedule(s) => {
            json!({"kind": "schedule", "cron": s.expression, "timezone": s.timezone})
        }
        Trigger::Invoke(_) => json!({"kind": "invoke"}),
    }
}

fn module_json(m: &Module) -> Value {
    let triggers: Vec<Value> = m.triggers.iter().map(trigger_json).collect();
    json!({
        "name": m.name, "description": m.description, "function": m.function,
        "feature_flag": m.flag, "triggers": triggers,
    })
}

/// `GET /modules`: the active registry's modules and version.
pub(super) async fn list(_: Caller<Read>, State(st): State<ApiState>) -> Json<Value> {
    let active = st.dispatcher.active_registry().await;
    let list: Vec<Value> = active.registry.modules().iter().map(module_json).collect();
    Json(json!({
        "version": active.version, "published": active.version.is_some(), "modules": list,
    }))
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

impl InvokeBody {
    /// The body (blank is `{}`), checked.
    fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let request: Self = if body.iter().all(u8::is_ascii_whitespace) {
            Self::default()
        } else {
            object(body)?
        };
        if request.config.as_ref().is_some_and(|c| !c.is_object()) {
            return Err(ApiError::bad_request("`config` must be an object"));
        }
        if (request.entity.as_ref()).is_some_and(|e| e.is_empty() || e.len() > 512) {
            return Err(ApiError::bad_request(
                "`entity` must be 1 to 512 characters",
            ));
        }
        Ok(request)
    }
}

/// The `Idempotency-Key` header: 1 to 200 visible ASCII characters, if given.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    match v.to_str() {
        Ok(k) if !k.is_empty() && k.len() <= 200 && k.chars().all(|c| c.is_ascii_graphic()) => {
            Ok(Some(k.to_owned()))
        }
        _ => Err(ApiError::bad_request(
            "Idempotency-Key must be 1 to 200 visible ASCII characters",
        )),
    }
}

/// `POST /modules/{name}/invoke`: starts module `name` with the body's payload (202 with
/// the job), de-duplicated by the `Idempotency-Key`.
pub(super) async fn invoke(
    caller: Caller<Invoke>,
    State(st): State<ApiState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require_module(&name)?;
    let registry = st.dispatcher.active_registry().await.registry.clone();
    let Some(module) = registry.get(&name) else {
        return Err(no_such(format_args!("module named `{name}`")));
    };
    if !module
        .triggers
        .iter()
        .any(|t| matches!(t, Trigger::Invoke(_)))
    {
        return Err(ApiError::new(
            Code::NotInvokable,
            format!("module `{name}` has no invoke trigger"),
        ));
    }
    let request = InvokeBody::parse(&body)?;
    let key = idempotency_key(&headers)?;
    // The repository picks the settings scope the start runs under: a token bound to
    // repositories names one of them (or none: the global scope).
    let repository = request.payload.as_ref().and_then(repository_of);
    if let Some(repo) = &repository
        && !caller.token.restrictions.allows_repo(repo)
    {
        return Err(caller.not_bound(&format!("repository `{}`", bounded(repo, 200))));
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
    let entity = (request.entity.clone()).unwrap_or_else(|| format!("invoke:{name}"));
    let event = MadeEvent {
        id: id.clone(),
        source: "api".into(),
        kind: SourceKind::Api,
        event_type: EventType::Invoke,
        action: None,
        entity,
        repository,
    }
    .by(&caller, &canonical, payload, st.dispatcher.clock().now());
    let job_id = ids::job_id("api", &id, &name);
    let outcome = st.dispatcher.dispatch(&event).await.map_err(|e| {
        error!(module = %name, error = %error_chain(&e), "store failure: nothing dispatched");
        ApiError::Unavailable
    })?;
    invoke_answer(&st, &caller, &name, &job_id, outcome).await
}

/// The answer to a start: 202 with the job (also for a resent key whose job exists), 409
/// when the module is switched off or the key was used with another body.
async fn invoke_answer(
    st: &ApiState,
    caller: &Caller<Invoke>,
    name: &str,
    job_id: &str,
    outcome: Outcome,
) -> Result<Response, ApiError> {
    let accepted = |duplicate: bool| {
        let body = json!({
            "job_id": job_id, "status_url": format!("/jobs/{job_id}"), "duplicate": duplicate,
        });
        (StatusCode::ACCEPTED, Json(body)).into_response()
    };
    match outcome {
        Outcome::Dispatched(d) if !d.jobs.is_empty() => {
            info!(module = name, job_id = %job_id, token = %caller.name(), "module invoked");
            Ok(accepted(false))
        }
        Outcome::Dispatched(d) => {
            let why = (d.skipped.first())
                .and_then(|s| s.detail.clone())
                .unwrap_or_default();
            Err(ApiError::new(
                Code::Disabled,
                format!("module `{name}` is switched off: {why}"),
            ))
        }
        // The key's first use made the job, unless the module was switched off then: that
        // answer (409 disabled) is the key's answer for good, never a job that is not there.
        Outcome::Duplicate { .. } => match st.jobs.get_job(job_id).await {
            Ok(Some(_)) => Ok(accepted(true)),
            Ok(None) => Err(ApiError::new(
                Code::Disabled,
                format!(
                    "this Idempotency-Key was first used while module `{name}` was switched off, and no job was made; send a new key"
                ),
            )),
            Err(e) => Err(super::store_failure(&e)),
        },
        Outcome::Conflict => Err(ApiError::new(
            Code::IdempotencyConflict,
            "this Idempotency-Key was used with another body",
        )),
        Outcome::InProgress { retry_after } => Err(ApiError::InProgress(retry_after)),
        Outcome::Incomplete(d) => Err(ApiError::DispatchIncomplete(
            serde_json::to_value(d).unwrap_or_default(),
        )),
    }
}

/// What the caller names of an event the API makes (an invoke, an internal event).
pub(super) struct MadeEvent {
    pub(super) id: String,
    pub(super) source: String,
    pub(super) kind: SourceKind,
    pub(super) event_type: EventType,
    pub(super) action: Option<String>,
    pub(super) entity: String,
    pub(super) repository: Option<String>,
}

impl MadeEvent {
    /// The event, made now by `caller`: its sender is the token's name and its digest is of
    /// `canonical`, the request without its id, so that a resend is a duplicate and a reused
    /// id with another request a conflict.
    pub(super) fn by<S>(
        self,
        caller: &Caller<S>,
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
                login: caller.name().to_owned(),
                bot: false,
            }),
            payload: payload.into(),
        }
    }
}

/// The repository an API-made event is about: the payload's `repository`, as a name or an
/// object with `full_name` (scopes settings like a forge event's repository).
pub(super) fn repository_of(payload: &Value) -> Option<String> {
    let r = payload.get("repository")?;
    r.as_str()
        .or_else(|| r.get("full_name").and_then(Value::as_str))
        .map(str::to_owned)
}
