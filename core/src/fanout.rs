//! The fan-out port: start a module's function with its context. The functions' adapter is
//! an asynchronous Lambda Invoke, in the AWS adapter crate.

use async_trait::async_trait;

/// Why an invoke did not go out.
#[derive(Debug, thiserror::Error)]
pub enum FanoutError {
    /// The Lambda API refused or could not be reached.
    #[error("invoke of {function} failed")]
    Invoke {
        /// The function.
        function: String,
        /// The adapter's error (no payload, no secret).
        #[source]
        source: crate::errors::BoxError,
    },
    /// The context is over the size limit of an asynchronous invoke.
    #[error("module context of {bytes} bytes is over the {limit} byte invoke limit")]
    TooLarge {
        /// Context size.
        bytes: usize,
        /// The configured limit.
        limit: usize,
    },
}

/// Starts module functions.
#[async_trait]
pub trait Fanout: Send + Sync {
    /// Invokes `function` asynchronously with `payload` (the module context as JSON).
    async fn invoke(&self, function: &str, payload: Vec<u8>) -> Result<(), FanoutError>;
}
