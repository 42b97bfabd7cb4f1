//! One TLS crypto provider for the process: every HTTP client switchyard builds (the forge
//! clients, the GitHub App token exchange, notify's webhook, the CLI) starts from
//! [`http_client`], which installs aws-lc-rs (the AWS SDK's) as rustls's provider first.

/// A reqwest client builder over the process's one TLS provider.
pub fn http_client() -> reqwest::ClientBuilder {
    switchyard_aws::sdk::install_crypto_provider();
    reqwest::Client::builder()
}
