//! The router function: `POST /webhooks/{source}`. Start-up reads the config, builds the
//! SDK clients and the dispatcher once, then serves (Lambda, or plain HTTP outside it).

use std::sync::Arc;

use switchyard::clock::SystemClock;
use switchyard::dispatch::{DispatchSettings, Dispatcher};
use switchyard::fanout::LambdaFanout;
use switchyard::hooks::Hooks;
use switchyard::hooks::emf::Emf;
use switchyard::store::DynamoStore;
use switchyard::webhook::{RouterState, app, serve};
use switchyard::{Config, Registry};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let registry = Registry::builtin().map_err(|errors| {
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        format!("invalid module manifests: {}", text.join("; "))
    })?;
    let sdk = switchyard::aws::sdk_config().await;
    let store = Arc::new(DynamoStore::new(
        switchyard::aws::dynamodb(&sdk),
        config.table.clone(),
    ));
    let fanout = Arc::new(LambdaFanout::new(switchyard::aws::lambda(
        &sdk,
        config.invoke_timeout,
    )));
    let dispatcher = Dispatcher::new(
        store,
        fanout,
        Arc::new(SystemClock),
        Arc::new(registry),
        DispatchSettings::from_config(&config),
    );
    let hooks = Arc::new(Hooks::default());
    if let Some(namespace) = &config.metrics_namespace {
        Arc::new(Emf::stdout(namespace.clone())).register(&hooks);
    }
    let dispatcher = dispatcher.with_hooks(hooks);
    let listen = config.listen;
    serve(
        app(RouterState {
            config: Arc::new(config),
            dispatcher,
        }),
        listen,
    )
    .await
}
