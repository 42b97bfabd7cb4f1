//! HTTP errors of every app (router, API, dashboard): the stable error codes as one enum
//! ([`Code`]), the error handlers return ([`ApiError`]), and the middleware that gives
//! axum's own rejections the same `{code, message}` body ([`json_errors`]).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A stable error code: the `code` of every error body, with its HTTP status. Clients
/// match on these; renaming one is a breaking change (docs/api.md lists them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// 400: the request is malformed or a value is out of range.
    BadRequest,
    /// 401: no valid bearer token, or a webhook signature that does not verify.
    Unauthorized,
    /// 403: the token lacks the scope, or is not bound to the resource.
    Forbidden,
    /// 404: no such route, source, module, job, event or version.
    NotFound,
    /// 405: the route exists, the method does not.
    MethodNotAllowed,
    /// 408: the request did not complete within the serve mode's timeout.
    RequestTimeout,
    /// 409: a delivery id was used with another body.
    Conflict,
    /// 409: another attempt of this delivery is running (`Retry-After` says when).
    InProgress,
    /// 409: the job already finished.
    AlreadyFinished,
    /// 409: the registry kept changing under a publish.
    Contended,
    /// 409: the module is switched off by a flag.
    Disabled,
    /// 409: an `Idempotency-Key` was used with another body.
    IdempotencyConflict,
    /// 409: the lease token is not the job's current lease.
    LeaseLost,
    /// 409: the module has no invoke trigger.
    NotInvokable,
    /// 409: the module is invoked as a function, not pulled.
    NotPull,
    /// 409: the event has no stored payload.
    NotReplayable,
    /// 413: the body is over the limit.
    PayloadTooLarge,
    /// 415: the body's media type is not accepted.
    UnsupportedMediaType,
    /// 500: an unexpected failure of ours.
    Internal,
    /// 503: some invokes failed; a redelivery retries them.
    DispatchIncomplete,
    /// 503: the store is unreachable; nothing was dispatched.
    Unavailable,
    /// 503: too many requests in flight (serve mode).
    Overloaded,
}

impl Code {
    /// The code's text in error bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::RequestTimeout => "request_timeout",
            Self::Conflict => "conflict",
            Self::InProgress => "in_progress",
            Self::AlreadyFinished => "already_finished",
            Self::Contended => "contended",
            Self::Disabled => "disabled",
            Self::IdempotencyConflict => "idempotency_conflict",
            Self::LeaseLost => "lease_lost",
            Self::NotInvokable => "not_invokable",
            Self::NotPull => "not_pull",
            Self::NotReplayable => "not_replayable",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::Internal => "internal",
            Self::DispatchIncomplete => "dispatch_incomplete",
            Self::Unavailable => "unavailable",
            Self::Overloaded => "overloaded",
        }
    }

    /// The HTTP status the code is answered with.
    pub fn status(self) -> StatusCode {
        match self {
            Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::Conflict
            | Self::InProgress
            | Self::AlreadyFinished
            | Self::Contended
            | Self::Disabled
            | Self::IdempotencyConflict
            | Self::LeaseLost
            | Self::NotInvokable
            | Self::NotPull
            | Self::NotReplayable => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::DispatchIncomplete | Self::Unavailable | Self::Overloaded => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    /// The code for a status axum answered by itself (a rejection, a missing route).
    fn of_status(status: StatusCode) -> Self {
        match status {
            StatusCode::METHOD_NOT_ALLOWED => Self::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge,
            StatusCode::NOT_FOUND => Self::NotFound,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType,
            s if s.is_server_error() => Self::Internal,
            _ => Self::BadRequest,
        }
    }
}

/// An HTTP-level failure with its stable code. 4xx are the sender's; 5xx are ours.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No such route or source.
    #[error("not found")]
    NotFound,
    /// The body is over the configured limit.
    #[error("body is over the {0} byte limit")]
    TooLarge(usize),
    /// Signature verification failed (which check is only logged).
    #[error("signature verification failed")]
    Unauthorized,
    /// The verified body is not usable.
    #[error("{0}")]
    BadRequest(String),
    /// The delivery id was seen with another body.
    #[error("delivery id was already used with a different body")]
    Conflict,
    /// Another attempt of this delivery is running.
    #[error("this delivery is being processed; retry later")]
    InProgress(u64),
    /// Some invokes failed; a redelivery retries them.
    #[error("some modules could not be started; redeliver to retry them")]
    DispatchIncomplete(serde_json::Value),
    /// The store is unreachable: nothing was dispatched.
    #[error("storage is unavailable; nothing was dispatched, retry later")]
    Unavailable,
    /// Any other answer: a code and a message for people.
    #[error("{message}")]
    Problem {
        /// Stable code (and status).
        code: Code,
        /// For people.
        message: String,
    },
}

impl ApiError {
    /// An answer with `code` and `message`.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self::Problem {
            code,
            message: message.into(),
        }
    }

    /// 400 `bad_request` with `message`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(Code::BadRequest, message)
    }

    /// The error's stable code.
    pub fn code(&self) -> Code {
        match self {
            Self::NotFound => Code::NotFound,
            Self::TooLarge(_) => Code::PayloadTooLarge,
            Self::Unauthorized => Code::Unauthorized,
            Self::BadRequest(_) => Code::BadRequest,
            Self::Conflict => Code::Conflict,
            Self::InProgress(_) => Code::InProgress,
            Self::DispatchIncomplete(_) => Code::DispatchIncomplete,
            Self::Unavailable => Code::Unavailable,
            Self::Problem { code, .. } => *code,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.code();
        let status = code.status();
        let mut body = json!({ "code": code.as_str(), "message": self.to_string() });
        if let Self::DispatchIncomplete(detail) = &self {
            body["detail"] = detail.clone();
        }
        let mut resp = (status, axum::Json(body)).into_response();
        if let Self::InProgress(secs) = self {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        } else if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        resp
    }
}

/// Gives every error axum answers by itself (unknown method, rejected extractor) the same
/// JSON body as ours; JSON answers and successes pass through.
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if status.as_u16() < 400 || is_json {
        return response;
    }
    let code = Code::of_status(status);
    let message = status.canonical_reason().unwrap_or("error").to_lowercase();
    let mut out = (
        status,
        axum::Json(json!({ "code": code.as_str(), "message": message })),
    )
        .into_response();
    if let Some(allow) = response.headers().get(header::ALLOW) {
        out.headers_mut().insert(header::ALLOW, allow.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_answers_its_code_and_status() {
        let cases = [
            (ApiError::NotFound, 404, "not_found"),
            (ApiError::TooLarge(10), 413, "payload_too_large"),
            (ApiError::Unauthorized, 401, "unauthorized"),
            (ApiError::InProgress(3), 409, "in_progress"),
            (ApiError::Unavailable, 503, "unavailable"),
            (ApiError::new(Code::LeaseLost, "x"), 409, "lease_lost"),
            (ApiError::bad_request("x"), 400, "bad_request"),
        ];
        for (err, status, code) in cases {
            assert_eq!(err.code().as_str(), code);
            assert_eq!(err.into_response().status().as_u16(), status, "{code}");
        }
    }
}
