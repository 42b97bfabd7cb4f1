//! Pull workers and internal events, served by the API app: `POST /workers/lease` (long
//! poll), `POST /jobs/{id}/heartbeat`, `POST /jobs/{id}/finish` (scope `work`, fenced by
//! the lease token), and `POST /events` (scope `emit`), which dispatches a service's event
//! exactly like a webhook.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::{info, warn};

use super::modules::{MadeEvent, repository_of};
use super::{
    ApiState, Caller, Emit, JsonBody, Work, no_such, public_view, store_failure, valid_job_id,
};
use crate::event::EventType;
use crate::hooks::JobFinished;
use crate::problem::{ApiError, Code};
use crate::source::SourceKind;
use crate::store::{Heartbeat, JobStatus, LeaseFinish, PayloadRef, rfc3339};

/// Longest `wait_seconds` of a lease request: below API Gateway's 30 s integration limit,
/// with room for the last lease attempt.
pub const MAX_WAIT_SECONDS: u64 = 20;
/// How often a waiting lease request looks at the queues again.
const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// Largest `output` a finish may record (its JSON), like a module's bounded output.
pub const MAX_OUTPUT_BYTES: usize = 16 * 1024;
/// Source names `POST /events` refuses: they belong to switchyard itself or to forges, so an
/// `emit` token cannot pass an event off as a signed webhook, a tick or an API start.
pub const RESERVED_SOURCES: &[&str] = &[
    "api", "schedule", "github", "gitlab", "gitea", "forgejo", "standard", "hmac",
];

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message)
}

fn printable(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.chars().all(|c| c.is_ascii_graphic())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LeaseRequest {
    modules: Vec<String>,
    #[serde(default)]
    wait_seconds: u64,
    #[serde(default)]
    worker: Option<String>,
}

/// `POST /workers/lease`: a job of one of the modules with its context and lease, or 204
/// when none came within `wait_seconds`.
pub(super) async fn lease(
    caller: Caller<Work>,
    State(st): State<ApiState>,
    JsonBody(request): JsonBody<LeaseRequest>,
) -> Result<Response, ApiError> {
    let st = &st;
    if request.modules.is_empty() || request.modules.len() > 20 {
        return Err(bad("`modules` lists 1 to 20 pull modules"));
    }
    if request.wait_seconds > MAX_WAIT_SECONDS {
        return Err(bad(format!("`wait_seconds` is 0 to {MAX_WAIT_SECONDS}")));
    }
    if request
        .worker
        .as_deref()
        .is_some_and(|w| !printable(w, 100))
    {
        return Err(bad("`worker` must be 1 to 100 visible ASCII characters"));
    }
    for name in &request.modules {
        caller.require_module(name)?;
    }
    let registry = st.dispatcher.active_registry().await.registry.clone();
    for name in &request.modules {
        match registry.get(name) {
            None => return Err(no_such(format_args!("module named `{name}`"))),
            Some(m) if m.pull.is_none() => {
                return Err(ApiError::new(
                    Code::NotPull,
                    format!("module `{name}` is invoked as a function, not pulled"),
                ));
            }
            Some(_) => {}
        }
    }
    let holder = match &request.worker {
        Some(w) => format!("{}/{w}", caller.name()),
        None => caller.name().to_owned(),
    };
    let clock = st.dispatcher.clock();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(request.wait_seconds);
    loop {
        let now = clock.now();
        let leased = st
            .queue
            .lease(&request.modules, &holder, now)
            .await
            .map_err(|e| store_failure(&e))?;
        if let Some(mut leased) = leased {
            inline_payload(st, &mut leased.context).await?;
            // A reporting module's check run moves to in progress as a worker takes the job.
            if leased.context.get("report") == Some(&Value::Bool(true))
                && let Some(Ok(event)) = leased
                    .context
                    .get("event")
                    .map(|e| serde_json::from_value::<crate::Event>(e.clone()))
            {
                let phase = crate::forge::JobPhase::InProgress;
                st.dispatcher
                    .report_job(&event, &leased.job.module, &leased.job.job_id, &phase)
                    .await;
            }
            info!(job_id = %leased.job.job_id, module = %leased.job.module, holder = %holder, attempts = leased.job.attempts, "pull job leased");
            let answer = json!({
                "job": public_view(serde_json::to_value(&leased.job).unwrap_or_default()),
                "context": leased.context,
                "lease_token": leased.lease_token,
                "lease_expires_at": rfc3339(leased.lease_expires_at),
                "lease_seconds": (leased.lease_expires_at - now).whole_seconds(),
            });
            return Ok(Json(answer).into_response());
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        tokio::time::sleep(POLL_INTERVAL.min(deadline - now)).await;
    }
}

/// A context whose payload was stored apart (too large to travel inline) gets it back:
/// workers cannot read the table.
async fn inline_payload(st: &ApiState, context: &mut Value) -> Result<(), ApiError> {
    let Some(reference) = context.get("payload_ref").filter(|r| !r.is_null()) else {
        return Ok(());
    };
    let reference: PayloadRef = serde_json::from_value(reference.clone()).map_err(|e| {
        store_failure(&crate::store::StoreError::Corrupt {
            key: "payload_ref".into(),
            reason: e.to_string(),
        })
    })?;
    let json = st
        .payloads
        .get_payload(&reference)
        .await
        .map_err(|e| store_failure(&e))?;
    // The stored document is the event; its payload goes back into the context.
    let payload: Value = serde_json::from_slice::<Value>(&json)
        .ok()
        .and_then(|mut v| v.get_mut("payload").map(Value::take))
        .unwrap_or(Value::Null);
    if let Some(obj) = context.as_object_mut() {
        obj.remove("payload_ref");
        if let Some(event) = obj.get_mut("event").and_then(Value::as_object_mut) {
            event.insert("payload".into(), payload);
        }
    }
    Ok(())
}

/// 400 unless `token` can be a lease token (the store would refuse an empty one with a
/// 500-class error).
fn valid_lease_token(token: &str) -> Result<(), ApiError> {
    if printable(token, 200) {
        Ok(())
    } else {
        Err(bad("`lease_token` is 1 to 200 visible ASCII characters"))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HeartbeatRequest {
    lease_token: String,
}

fn lease_lost(id: &str) -> ApiError {
    ApiError::new(
        Code::LeaseLost,
        format!(
            "the lease token is not job `{id}`'s current lease (expired and taken, or finished)"
        ),
    )
}

/// `POST /jobs/{id}/heartbeat`: extends the lease; says whether a cancel was requested.
pub(super) async fn heartbeat(
    caller: Caller<Work>,
    State(st): State<ApiState>,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<HeartbeatRequest>,
) -> Result<Json<Value>, ApiError> {
    valid_job_id(&id)?;
    valid_lease_token(&request.lease_token)?;
    caller.require_job(&st, &id).await?;
    let now = st.dispatcher.clock().now();
    let beat = (st.queue.heartbeat(&id, &request.lease_token, now).await)
        .map_err(|e| store_failure(&e))?;
    match beat {
        Heartbeat::Extended {
            cancel_requested,
            lease_expires_at,
        } => Ok(Json(json!({
            "job_id": id,
            "cancel_requested": cancel_requested,
            "lease_expires_at": rfc3339(lease_expires_at),
        }))),
        Heartbeat::Stale => {
            warn!(job_id = %id, "heartbeat with a stale lease token");
            Err(lease_lost(&id))
        }
        Heartbeat::Missing => Err(no_such(format_args!("job `{id}`"))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FinishRequest {
    lease_token: String,
    status: String,
    #[serde(default)]
    output: Option<Value>,
    #[serde(default)]
    error: Option<String>,
}

/// `POST /jobs/{id}/finish`: records the outcome of a leased job (fenced by its token).
pub(super) async fn finish(
    caller: Caller<Work>,
    State(st): State<ApiState>,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<FinishRequest>,
) -> Result<Json<Value>, ApiError> {
    valid_job_id(&id)?;
    valid_lease_token(&request.lease_token)?;
    caller.require_job(&st, &id).await?;
    let status = match request.status.as_str() {
        "succeeded" => JobStatus::Succeeded,
        "failed" => JobStatus::Failed,
        "cancelled" => JobStatus::Cancelled,
        other => {
            return Err(bad(format!(
                "`status` is succeeded, failed or cancelled, not `{other}`"
            )));
        }
    };
    if let Some(out) = &request.output {
        let size = serde_json::to_vec(out).map_or(usize::MAX, |v| v.len());
        if size > MAX_OUTPUT_BYTES {
            return Err(bad(format!(
                "`output` is {size} bytes of JSON; at most {MAX_OUTPUT_BYTES}"
            )));
        }
        crate::store::storable(out, 0).map_err(|e| bad(e.to_string()))?;
    }
    let now = st.dispatcher.clock().now();
    let recorded = st
        .queue
        .finish_leased(
            &id,
            &request.lease_token,
            status,
            request.error.as_deref(),
            request.output.as_ref(),
            now,
        )
        .await
        .map_err(|e| store_failure(&e))?;
    let job = match recorded {
        LeaseFinish::Recorded(job) => job,
        LeaseFinish::Stale => {
            warn!(job_id = %id, "finish with a stale lease token refused");
            return Err(lease_lost(&id));
        }
        LeaseFinish::Missing => {
            return Err(no_such(format_args!("job `{id}`")));
        }
    };
    let duration = job
        .started_at
        .as_deref()
        .and_then(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        })
        .map(|t| (now - t).unsigned_abs())
        .unwrap_or_default();
    crate::hooks::log_failures(st.dispatcher.hooks().job_finished.dispatch(&JobFinished {
        module: job.module.clone(),
        job_id: id.clone(),
        status,
        duration,
    }));
    report_finished(
        &st,
        &job,
        status,
        request.error.as_deref(),
        request.output.as_ref(),
    )
    .await;
    info!(job_id = %id, module = %job.module, status = status.as_str(), "pull job finished");
    Ok(Json(json!({"job_id": id, "status": status.as_str()})))
}

/// A reporting module's pull job, finished: its check run (or commit status) is completed.
/// Costs one event read, for reporting modules only.
async fn report_finished(
    st: &ApiState,
    job: &crate::store::JobRecord,
    status: JobStatus,
    error: Option<&str>,
    output: Option<&Value>,
) {
    let active = st.dispatcher.active_registry().await;
    let reports = active
        .registry
        .modules()
        .iter()
        .any(|m| m.name == job.module && m.report.is_some());
    if !reports {
        return;
    }
    let event = match st.events.load_event(&job.event_source, &job.event_id).await {
        Ok(Some(event)) => event,
        Ok(None) => return,
        Err(e) => {
            warn!(job_id = %job.job_id, error = %e, "the event to report on did not load");
            return;
        }
    };
    let phase = crate::forge::JobPhase::finished(status, error, output);
    st.dispatcher
        .report_job(&event, &job.module, &job.job_id, &phase)
        .await;
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EmitRequest {
    id: String,
    source: String,
    #[serde(rename = "type")]
    event_type: String,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    entity: Option<String>,
    #[serde(default)]
    payload: Option<Value>,
}

fn name_like(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.'))
}

/// `POST /events`: an internal event through the dispatcher, answered as the router answers.
pub(super) async fn emit(
    caller: Caller<Emit>,
    State(st): State<ApiState>,
    JsonBody(request): JsonBody<EmitRequest>,
) -> Result<Response, ApiError> {
    if !name_like(&request.source, 64) || request.source.contains('.') {
        return Err(bad(
            "`source` is 1 to 64 lower-case letters, digits, `_` or `-`",
        ));
    }
    if !caller.token.restrictions.allows_source(&request.source) {
        return Err(caller.not_bound(&format!("source `{}`", request.source)));
    }
    if RESERVED_SOURCES.contains(&request.source.as_str()) {
        return Err(bad(format!(
            "`source` `{}` is reserved (webhook kinds, `api`, `schedule`); name your service",
            request.source
        )));
    }
    if !name_like(&request.event_type, 100) {
        return Err(bad(
            "`type` is 1 to 100 lower-case letters, digits, `_`, `-` or `.`",
        ));
    }
    // Starts and ticks come from the invoke route and the scheduler only.
    if matches!(request.event_type.as_str(), "invoke" | "schedule") {
        return Err(bad(format!(
            "`type` `{}` is reserved: start a module with POST /modules/{{name}}/invoke",
            request.event_type
        )));
    }
    if request
        .action
        .as_deref()
        .is_some_and(|a| !name_like(a, 100))
    {
        return Err(bad(
            "`action` is 1 to 100 lower-case letters, digits, `_`, `-` or `.`",
        ));
    }
    if !printable(&request.id, 200) {
        return Err(bad("`id` is 1 to 200 visible ASCII characters"));
    }
    if request
        .entity
        .as_deref()
        .is_some_and(|e| e.is_empty() || e.len() > 512)
    {
        return Err(bad("`entity` is 1 to 512 characters"));
    }
    let payload = request.payload.unwrap_or_else(|| json!({}));
    if !payload.is_object() {
        return Err(bad("`payload` must be a JSON object"));
    }
    // The id de-duplicates; the rest of the request tells a resend from a reused id.
    let canonical = json!({
        "source": request.source, "type": request.event_type, "action": request.action,
        "entity": request.entity, "payload": payload,
    });
    // Recorded as `internal.<source>`: apart from every webhook source's ids, triggers and
    // cooldowns (webhook source ids have no `.`).
    let source = format!("{}{}", crate::event::INTERNAL_SOURCE_PREFIX, request.source);
    let event = MadeEvent {
        id: request.id,
        entity: request.entity.unwrap_or_else(|| source.clone()),
        source,
        kind: SourceKind::Internal,
        event_type: EventType::from_name(&request.event_type),
        action: request.action,
        repository: repository_of(&payload),
    }
    .by(&caller, &canonical, payload, st.dispatcher.clock().now());
    info!(source = %event.source, event_id = %event.id, event_type = event.event_type.as_str(), token = %caller.name(), "internal event");
    crate::webhook::dispatch_answer(st.dispatcher.dispatch(&event).await, &event)
}
