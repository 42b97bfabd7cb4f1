//! The fan-out adapter: an asynchronous Lambda Invoke (`InvocationType::Event`) of a
//! module's function with its context.

use async_trait::async_trait;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;

pub use switchyard_core::fanout::{Fanout, FanoutError};

/// Asynchronous Lambda Invoke.
#[derive(Debug, Clone)]
pub struct LambdaFanout {
    client: aws_sdk_lambda::Client,
}

impl LambdaFanout {
    /// A fan-out over a client built once at start-up.
    pub fn new(client: aws_sdk_lambda::Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl Fanout for LambdaFanout {
    async fn invoke(&self, function: &str, payload: Vec<u8>) -> Result<(), FanoutError> {
        let out = self
            .client
            .invoke()
            .function_name(function)
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(payload))
            .send()
            .await
            .map_err(|e| FanoutError::Invoke {
                function: function.to_owned(),
                source: Box::new(e),
            })?;
        // Real Lambda answers 202 to an Event invoke; the local emulator runs it and may
        // answer 200. Only a reported function error counts as a failure.
        if let Some(err) = out.function_error() {
            return Err(FanoutError::Invoke {
                function: function.to_owned(),
                source: format!("function error: {err}").into(),
            });
        }
        Ok(())
    }
}
