//! The router's HTTP surface: `POST /webhooks/{source}` as an axum app, served by
//! `lambda_http` on Lambda and as plain HTTP elsewhere. Source lookup, size limit,
//! verification and normalization happen here, in that order; every decision after that is
//! the dispatcher's. One error type maps to responses with a stable `{code, message}` body.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;
use tracing::{error, info, warn};

use crate::config::{Config, ServeLimits};
use crate::dispatch::{DispatchError, Dispatcher, Outcome};
use crate::hooks::{RequestRejected, log_failures};
use crate::signature::verify;

pub use crate::problem::{ApiError, Code, json_errors};
pub use switchyard_core::errors::error_chain;

/// The `source` that requests to an unconfigured `/webhooks/{source}` are reported under
/// (logs, hooks, metrics), whatever the path said.
pub const UNKNOWN_SOURCE: &str = "(unknown)";

/// What the router app needs.
#[derive(Debug, Clone)]
pub struct RouterState {
    /// Configuration read at cold start.
    pub config: Arc<Config>,
    /// The dispatcher.
    pub dispatcher: Dispatcher,
}

/// The router app: `POST /webhooks/{source}`; every other path answers 404 JSON.
pub fn app(state: RouterState) -> Router {
    Router::new()
        .route("/webhooks/{source}", post(receive))
        .fallback(|| async { ApiError::NotFound })
        .with_state(state)
        .layer(axum::middleware::map_response(json_errors))
}

async fn receive(
    State(state): State<RouterState>,
    Path(source_id): Path<String>,
    request: Request,
) -> Response {
    match handle(&state, &source_id, request).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

async fn handle(
    state: &RouterState,
    source_id: &str,
    request: Request,
) -> Result<Response, ApiError> {
    let Some(source) = state.config.source(source_id) else {
        // The path segment is the sender's: metrics get one fixed value (every distinct
        // dimension is a billed CloudWatch metric); the log line keeps a bounded copy.
        return Err(reject(
            state,
            UNKNOWN_SOURCE,
            ApiError::NotFound,
            format!("unknown source {:?}", crate::store::bounded(source_id, 64)),
        ));
    };
    let limit = state.config.max_body_bytes;
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(reject(
            state,
            source_id,
            ApiError::TooLarge(limit),
            "body over the limit (declared)".into(),
        ));
    }
    let Ok(body) = axum::body::to_bytes(body, limit).await else {
        return Err(reject(
            state,
            source_id,
            ApiError::TooLarge(limit),
            "body over the limit".into(),
        ));
    };
    let headers: &HeaderMap = &parts.headers;
    let received = state.dispatcher.clock().now();
    let verified = verify(source, headers, &body, received).map_err(|e| {
        reject(
            state,
            source_id,
            ApiError::Unauthorized,
            format!("signature verification failed: {e}"),
        )
    })?;
    let delivered = (state.dispatcher.deliver(verified, received).await).map_err(|e| {
        reject(
            state,
            source_id,
            ApiError::BadRequest(e.to_string()),
            format!("unusable body after a valid signature: {e}"),
        )
    })?;
    dispatch_answer(delivered.result, &delivered.event)
}

/// The router's answer to a dispatch (also `POST /events`): 202 with the jobs, 200 for a
/// duplicate, 409 for a reused id or an attempt in progress, 503 `dispatch_incomplete` when
/// some invokes failed (the others went out), 503 `unavailable` when the store failed
/// (nothing dispatched).
pub(crate) fn dispatch_answer(
    result: Result<Outcome, DispatchError>,
    event: &crate::event::Event,
) -> Result<Response, ApiError> {
    match result {
        Ok(Outcome::Dispatched(d)) => Ok((StatusCode::ACCEPTED, axum::Json(d)).into_response()),
        Ok(Outcome::Incomplete(d)) => Err(ApiError::DispatchIncomplete(
            serde_json::to_value(d).unwrap_or_default(),
        )),
        Ok(Outcome::Duplicate { event_id }) => Ok((
            StatusCode::OK,
            axum::Json(json!({ "duplicate": true, "event_id": event_id })),
        )
            .into_response()),
        Ok(Outcome::Conflict) => Err(ApiError::Conflict),
        Ok(Outcome::InProgress { retry_after }) => Err(ApiError::InProgress(retry_after)),
        Err(DispatchError::Store(e)) => {
            error!(source = %event.source, event_id = %event.id, error = %error_chain(&e), "store failure: nothing dispatched");
            Err(ApiError::Unavailable)
        }
    }
}

/// Logs a 4xx at warn (never the body) and tells the `request_rejected` hook.
fn reject(state: &RouterState, source: &str, err: ApiError, reason: String) -> ApiError {
    let code = err.code();
    warn!(source, status = code.status().as_u16(), code = code.as_str(), reason = %reason, "request rejected");
    log_failures(
        state
            .dispatcher
            .hooks()
            .request_rejected
            .dispatch(&RequestRejected {
                source: source.to_owned(),
                status: code.status().as_u16(),
                code: code.as_str(),
                reason,
            }),
    );
    err
}

/// Serves `app` on Lambda when the runtime API is present, as plain HTTP on `listen`
/// otherwise (self-hosting, benchmarks), until Ctrl-C or SIGTERM. Off Lambda, `limits` hold:
/// a header-read timeout per connection, a timeout per request, a cap on open connections
/// and one on requests in flight (see [`ServeLimits`]).
pub async fn serve(
    app: Router,
    listen: SocketAddr,
    limits: ServeLimits,
) -> Result<(), lambda_http::Error> {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        return lambda_http::run(app).await;
    }
    let listener = tokio::net::TcpListener::bind(listen).await?;
    info!(address = %listener.local_addr()?, ?limits, "serving HTTP");
    serve_http(listener, app, limits, shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = term => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// How long a stop waits for open connections to finish their requests.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves `app` on `listener` under `limits` until `shutdown` completes, then lets open
/// connections finish their requests (up to 10 s).
pub async fn serve_http(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: ServeLimits,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let in_flight = Arc::new(tokio::sync::Semaphore::new(limits.max_in_flight));
    let app = app.layer(axum::middleware::from_fn(
        move |req: Request, next: axum::middleware::Next| {
            let in_flight = in_flight.clone();
            async move { limited(&in_flight, limits.request_timeout, req, next).await }
        },
    ));
    let connections = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        // At the connection cap, nothing more is accepted: new clients wait in the backlog.
        let permit = tokio::select! {
            p = connections.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                // Out of descriptors and the like: back off instead of spinning.
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = async { let _ = stop.wait_for(|s| *s).await; } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    let _ = stop_tx.send(true);
    // Every permit back means every connection closed.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(DRAIN, connections.acquire_many(all)).await;
    Ok(())
}

/// One request under the in-flight cap and the request timeout.
async fn limited(
    in_flight: &tokio::sync::Semaphore,
    timeout: std::time::Duration,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    // Refused before the body is read: an overload costs no memory.
    let Ok(_permit) = in_flight.try_acquire() else {
        return ApiError::new(Code::Overloaded, "too many requests in flight; retry later")
            .into_response();
    };
    match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => {
            warn!(
                timeout_seconds = timeout.as_secs(),
                "request timed out: answered 408"
            );
            ApiError::new(
                Code::RequestTimeout,
                format!(
                    "the request did not complete within {} s",
                    timeout.as_secs()
                ),
            )
            .into_response()
        }
    }
}
