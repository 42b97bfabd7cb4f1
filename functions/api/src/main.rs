//! The API function: start-up reads the config and the token hashes, builds the dispatcher
//! once, then serves (Lambda, or plain HTTP on `SWITCHYARD_API_LISTEN` outside it).

use switchyard::Config;
use switchyard::api::{ApiState, app};
use switchyard::auth::Tokens;
use switchyard::forge::Forges;
use switchyard::webhook::serve;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let env = switchyard::secrets::environment().await?;
    let config = Config::from_vars_without_sources(env.clone())?;
    let tokens = env
        .get("SWITCHYARD_API_TOKENS")
        .ok_or("missing required environment variable SWITCHYARD_API_TOKENS")?;
    let tokens =
        Tokens::parse(tokens).map_err(|e| format!("invalid SWITCHYARD_API_TOKENS: {e}"))?;
    let listen = match env.get("SWITCHYARD_API_LISTEN") {
        Some(v) => v
            .parse()
            .map_err(|_| "invalid SWITCHYARD_API_LISTEN: expected host:port")?,
        None => std::net::SocketAddr::from(([127, 0, 0, 1], 3001)),
    };
    let (store, dispatcher) =
        switchyard::runtime::dispatcher(&config, Forges::from_vars(&env)).await?;
    let limits = config.serve;
    let state = ApiState::new(dispatcher, store, tokens);
    serve(app(state), listen, limits).await
}
