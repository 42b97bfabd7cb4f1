//! `GET /events`, `GET /events/{id}` and `POST /events/{id}/replay`. Event ids in the API
//! are `<source>:<delivery id>`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tracing::{error, info};

use super::input::{EventQuery, EventsQuery, Include, ReplayQuery, Since};
use super::{
    Any, ApiState, Caller, MAX_ID_BYTES, Params, Read, no_such, page_json, public_view,
    store_failure,
};
use crate::dispatch::{Outcome, Replay};
use crate::problem::{ApiError, Code};
use crate::store::{EventQuery as ListQuery, EventRecord};
use crate::webhook::error_chain;
use switchyard_core::auth::Scope;

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
            ApiError::bad_request(format!(
                "event ids are `<source>:<delivery id>`, visible ASCII, the delivery id at most {MAX_ID_BYTES} characters"
            ))
        })
}

fn event_json(e: &EventRecord) -> Value {
    let mut v = public_view(serde_json::to_value(e).unwrap_or_default());
    v["id"] = json!(format!("{}:{}", e.source, e.event_id));
    v
}

/// `GET /events`: newest first, filtered by source, type and status, one page per call.
pub(super) async fn list(
    _: Caller<Read>,
    State(st): State<ApiState>,
    Params(q): Params<EventsQuery>,
) -> Result<Json<Value>, ApiError> {
    let now = st.dispatcher.clock().now();
    let query = ListQuery {
        source: q.source.map(|s| s.0),
        event_type: q.event_type.map(|t| t.0),
        status: q.status,
        since: Since::or_horizon(q.since, now - st.dispatcher.settings().event_ttl),
        limit: q.limit.0,
        cursor: q.cursor.map(|c| c.0),
    };
    let page = (st.lists.list_events(&query, now).await).map_err(|e| store_failure(&e))?;
    Ok(page_json(page, |e| event_json(&e)))
}

/// `GET /events/{id}`: the event's record; with `?include=payload`, the normalized event
/// kept for replay too (null when it was not kept, as for skipped schedule ticks).
pub(super) async fn get(
    _: Caller<Read>,
    State(st): State<ApiState>,
    Path(id): Path<String>,
    Params(q): Params<EventQuery>,
) -> Result<Json<Value>, ApiError> {
    let (source, delivery) = event_id(&id)?;
    let record = st
        .events
        .get_event(source, delivery)
        .await
        .map_err(|e| store_failure(&e))?;
    let Some(record) = record else {
        return Err(no_such(format_args!("event `{id}`")));
    };
    let mut v = public_view(serde_json::to_value(record).unwrap_or_default());
    if q.include == Some(Include::Payload) {
        let event = st
            .events
            .load_event(source, delivery)
            .await
            .map_err(|e| store_failure(&e))?;
        v["event"] = serde_json::to_value(event).unwrap_or_default();
    }
    Ok(Json(v))
}

/// `POST /events/{id}/replay`: dispatches a stored event again (scope `invoke`), or says
/// what would run (`?dry_run=true`, scope `read`).
pub(super) async fn replay(
    // Who asks comes first: an anonymous request is 401 whatever its query says.
    caller: Caller<Any>,
    State(st): State<ApiState>,
    Path(id): Path<String>,
    Params(q): Params<ReplayQuery>,
) -> Result<Response, ApiError> {
    let (dry_run, force) = (q.dry_run.0, q.force.0);
    // A dry run only reads; a replay starts modules.
    caller.require(if dry_run { Scope::Read } else { Scope::Invoke })?;
    if !dry_run && caller.token.restrictions.modules.is_some() {
        // A replay starts whatever matches the event now: more than a bound token's
        // modules can promise.
        return Err(caller.not_bound("every module (a replay starts whatever matches)"));
    }
    let (source, delivery) = event_id(&id)?;
    let result = (st.dispatcher.replay(source, delivery, force, dry_run).await).map_err(|e| {
        error!(error = %error_chain(&e), "replay failed: nothing dispatched");
        ApiError::Unavailable
    })?;
    match result {
        Replay::Missing => Err(no_such(format_args!("event `{id}`"))),
        Replay::NotStored => Err(ApiError::new(
            Code::NotReplayable,
            format!("event `{id}` has no stored payload"),
        )),
        Replay::Planned(plan) => {
            let mut body = serde_json::to_value(plan).unwrap_or_default();
            body["dry_run"] = json!(true);
            Ok(Json(body).into_response())
        }
        Replay::Done(Outcome::Dispatched(d)) => {
            info!(event = %id, token = %caller.name(), force, jobs = d.jobs.len(), "event replayed");
            Ok((StatusCode::ACCEPTED, Json(d)).into_response())
        }
        Replay::Done(Outcome::Incomplete(d)) => Err(ApiError::DispatchIncomplete(
            serde_json::to_value(d).unwrap_or_default(),
        )),
        Replay::Done(Outcome::InProgress { retry_after }) => Err(ApiError::InProgress(retry_after)),
        Replay::Done(Outcome::Duplicate { .. } | Outcome::Conflict) => Err(ApiError::InProgress(1)),
    }
}
