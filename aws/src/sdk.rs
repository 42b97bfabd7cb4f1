//! SDK clients, built once at cold start, with operation and attempt timeouts (the SDK has
//! none by default). Endpoints come from `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL_LAMBDA`,
//! which `aws-config` reads itself.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

/// Makes aws-lc-rs, the TLS crypto library the AWS SDK links, the process's rustls provider,
/// so every TLS client (the SDK's and reqwest's) uses the one library. Idempotent; call it
/// before building a reqwest client (`switchyard::tls::http_client` does).
pub fn install_crypto_provider() {
    // Err means a provider is installed already: the first one stays.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Loads the shared SDK configuration from the environment.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// A DynamoDB client: 3 s per attempt, 10 s per operation, standard retries.
pub fn dynamodb(sdk: &SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::from_conf(dynamodb_config(sdk).build())
}

/// The DynamoDB store of a function: the SDK client of [`dynamodb`] and the lean client of
/// the delivery path ([`crate::dynamo::wire::Wire::from_sdk`]), over `table`.
pub fn dynamo_store(
    sdk: &SdkConfig,
    table: impl Into<String>,
) -> Result<crate::dynamo::DynamoStore, crate::dynamo::wire::WireError> {
    let wire = crate::dynamo::wire::Wire::from_sdk(sdk)?;
    Ok(crate::dynamo::DynamoStore::new(dynamodb(sdk), wire, table))
}

/// The DynamoDB client configuration of [`dynamodb`], for callers that add to it
/// (interceptors in tests).
pub fn dynamodb_config(sdk: &SdkConfig) -> aws_sdk_dynamodb::config::Builder {
    aws_sdk_dynamodb::config::Builder::from(sdk)
        // Every call reports its consumed capacity into the unit of work (delivery, job).
        .interceptor(crate::dynamo::metered::Metered)
        .timeout_config(short_calls())
}

/// 2 s to connect, 3 s per attempt, 10 s per operation: for calls that answer in
/// milliseconds (DynamoDB, Secrets Manager).
fn short_calls() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(Duration::from_secs(3))
        .operation_timeout(Duration::from_secs(10))
        .build()
}

/// A Secrets Manager client (cold start only): 3 s per attempt, 10 s per operation.
pub fn secretsmanager(sdk: &SdkConfig) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::config::Builder::from(sdk)
            .timeout_config(short_calls())
            .build(),
    )
}

/// A Lambda client for asynchronous invokes with `invoke_timeout` per operation.
///
/// Against a local endpoint (`cargo lambda watch`) retries are off: it runs `Event`
/// invokes synchronously and answers a function error with HTTP 500, which the SDK would
/// retry, running the function three times.
pub fn lambda(sdk: &SdkConfig, invoke_timeout: Duration) -> aws_sdk_lambda::Client {
    let local = std::env::var_os("AWS_ENDPOINT_URL_LAMBDA").is_some();
    aws_sdk_lambda::Client::from_conf(lambda_config(sdk, invoke_timeout, local).build())
}

/// The Lambda client configuration of [`lambda`]; `local` turns retries off.
pub fn lambda_config(
    sdk: &SdkConfig,
    invoke_timeout: Duration,
    local: bool,
) -> aws_sdk_lambda::config::Builder {
    let retry = if local {
        RetryConfig::disabled()
    } else {
        RetryConfig::standard().with_max_attempts(3)
    };
    aws_sdk_lambda::config::Builder::from(sdk)
        .retry_config(retry)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(invoke_timeout)
                .operation_timeout(invoke_timeout)
                .build(),
        )
}
