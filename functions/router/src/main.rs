//! The router function: `POST /webhooks/{source}`. Start-up reads the config, builds the
//! SDK clients and the dispatcher once, then serves (Lambda, or plain HTTP outside it).

use std::sync::Arc;

use switchyard::Config;
use switchyard::forge::Forges;
use switchyard::webhook::{RouterState, app, serve};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// One thread unless `SWITCHYARD_SERVE_THREADS` asks for more: Lambda hands an instance one
/// request at a time, and on one thread a delivery's DynamoDB calls and the connection that
/// carries them never wake another thread (docs/performance.md measures what that saves).
fn main() -> Result<(), lambda_http::Error> {
    let threads: usize = std::env::var("SWITCHYARD_SERVE_THREADS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(1);
    let runtime = match threads {
        0 | 1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build()?,
    };
    runtime.block_on(run())
}

async fn run() -> Result<(), lambda_http::Error> {
    switchyard::runtime::init_logging();
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
