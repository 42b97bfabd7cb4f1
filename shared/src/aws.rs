//! SDK clients, built once at cold start, with operation and attempt timeouts (the SDK has
//! none by default). Endpoints come from `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL_LAMBDA`,
//! which `aws-config` reads itself.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

/// Loads the shared SDK configuration from the environment.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// A DynamoDB client: 3 s per attempt, 10 s per operation, standard retries.
pub fn dynamodb(sdk: &SdkConfig) -> aws_sdk_dynamodb::Client {
    let conf = aws_sdk_dynamodb::config::Builder::from(sdk)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(Duration::from_secs(3))
                .operation_timeout(Duration::from_secs(10))
                .build(),
        )
        .build();
    aws_sdk_dynamodb::Client::from_conf(conf)
}

/// A Lambda client for asynchronous invokes with `invoke_timeout` per operation.
///
/// Against a local endpoint (`cargo lambda watch`) retries are off: it runs `Event`
/// invokes synchronously and answers a function error with HTTP 500, which the SDK would
/// retry, running the function three times.
pub fn lambda(sdk: &SdkConfig, invoke_timeout: Duration) -> aws_sdk_lambda::Client {
    let local = std::env::var_os("AWS_ENDPOINT_URL_LAMBDA").is_some();
    let retry = if local { RetryConfig::disabled() } else { RetryConfig::standard().with_max_attempts(3) };
    let conf = aws_sdk_lambda::config::Builder::from(sdk)
        .retry_config(retry)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(invoke_timeout)
                .operation_timeout(invoke_timeout)
                .build(),
        )
        .build();
    aws_sdk_lambda::Client::from_conf(conf)
}
