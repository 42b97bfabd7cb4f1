//! The router function: `POST /webhooks/{source}`. Start-up reads the config, builds the
//! SDK clients and the dispatcher once, then serves (Lambda, or plain HTTP outside it).

use std::sync::Arc;

use switchyard::Config;
use switchyard::forge::Forges;
use switchyard::webhook::{RouterState, app, serve};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let env = switchyard::secrets::environment().await?;
    let config = Config::from_vars(env.clone())?;
    let (_, dispatcher) = switchyard::runtime::dispatcher(&config, Forges::from_vars(&env)).await?;
    let (listen, limits) = (config.listen, config.serve);
    serve(
        app(RouterState {
            config: Arc::new(config),
            dispatcher,
        }),
        listen,
        limits,
    )
    .await
}
