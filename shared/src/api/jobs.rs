//! `GET /jobs`, `GET /jobs/{id}` and `POST /jobs/{id}/cancel`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::input::{JobsQuery, Since};
use super::{
    ApiState, Caller, Invoke, Params, Read, no_such, page_json, public_view, store_failure,
    valid_job_id,
};
use crate::problem::{ApiError, Code};
use crate::store::{JobQuery, JobStatus};

/// `GET /jobs`: newest first, filtered by module and status, one page per call.
pub(super) async fn list(
    _: Caller<Read>,
    State(st): State<ApiState>,
    Params(q): Params<JobsQuery>,
) -> Result<Json<Value>, ApiError> {
    let now = st.dispatcher.clock().now();
    let query = JobQuery {
        module: q.module.map(|m| m.0),
        status: q.status,
        since: Since::or_horizon(q.since, now - st.dispatcher.settings().job_ttl),
        limit: q.limit.0,
        cursor: q.cursor.map(|c| c.0),
    };
    let page = (st.lists.list_jobs(&query, now).await).map_err(|e| store_failure(&e))?;
    Ok(page_json(page, |j| {
        public_view(serde_json::to_value(j).unwrap_or_default())
    }))
}

/// `GET /jobs/{id}`.
pub(super) async fn get(
    _: Caller<Read>,
    State(st): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    valid_job_id(&id)?;
    match st.jobs.get_job(&id).await.map_err(|e| store_failure(&e))? {
        Some(j) => Ok(Json(public_view(
            serde_json::to_value(j).unwrap_or_default(),
        ))),
        None => Err(no_such(format_args!("job `{id}`"))),
    }
}

/// `POST /jobs/{id}/cancel`: a queued job is cancelled (200); a running one is asked to
/// stop (202, its runtime sees it at its next heartbeat); a finished one is 409.
pub(super) async fn cancel(
    caller: Caller<Invoke>,
    State(st): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    valid_job_id(&id)?;
    caller.require_job(&st, &id).await?;
    let now = st.dispatcher.clock().now();
    let status = (st.jobs.request_cancel(&id, now).await).map_err(|e| store_failure(&e))?;
    match status {
        None => Err(no_such(format_args!("job `{id}`"))),
        Some(JobStatus::Cancelled) => {
            Ok(Json(json!({"job_id": id, "status": "cancelled"})).into_response())
        }
        Some(JobStatus::Running) => {
            let body = json!({"job_id": id, "status": "running", "cancel_requested": true});
            Ok((StatusCode::ACCEPTED, Json(body)).into_response())
        }
        Some(other) => Err(ApiError::new(
            Code::AlreadyFinished,
            format!("job `{id}` is already {}", other.as_str()),
        )),
    }
}
