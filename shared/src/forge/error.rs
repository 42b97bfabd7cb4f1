//! What a forge call that failed says: one error type for the REST clients and the GitHub
//! App token exchange, never carrying a token.

/// A forge call that failed.
#[derive(Debug, thiserror::Error)]
pub enum ForgeError {
    /// 401: the token is missing, wrong or expired.
    #[error("{method} {path}: 401 unauthorized: the token is missing, wrong or expired")]
    Unauthorized {
        /// HTTP method.
        method: String,
        /// Path called.
        path: String,
    },
    /// 403 (not a rate limit): the token lacks a permission.
    #[error("{method} {path}: 403 forbidden: the token lacks a permission ({message})")]
    Forbidden {
        /// HTTP method.
        method: String,
        /// Path called.
        path: String,
        /// The forge's message.
        message: String,
    },
    /// 404: no such repository, issue, comment or label (or no access to it).
    #[error("{method} {path}: 404 not found (or not visible to the token)")]
    NotFound {
        /// HTTP method.
        method: String,
        /// Path called.
        path: String,
    },
    /// Still rate limited or failing after the retries.
    #[error("{method} {path}: gave up after {attempts} attempts: {last}")]
    GaveUp {
        /// HTTP method.
        method: String,
        /// Path called.
        path: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// Another 4xx.
    #[error("{method} {path}: {status}: {message}")]
    Rejected {
        /// HTTP method.
        method: String,
        /// Path called.
        path: String,
        /// Status code.
        status: u16,
        /// The forge's message.
        message: String,
    },
    /// The answer was not the expected JSON.
    #[error("{method} {path}: unexpected answer: {reason}")]
    Decode {
        /// HTTP method.
        method: String,
        /// Path called.
        path: String,
        /// What did not parse.
        reason: String,
    },
    /// A missing setting.
    #[error("missing environment variable {0}")]
    Config(String),
}

switchyard_core::message_error! {
    /// Why a job's status could not be shown on its forge (the caller journals it; it never
    /// fails the job).
    ReportError
}
