//! The scheduler function, invoked every minute by an EventBridge schedule: dispatches the
//! schedule triggers due since its last run through the same dispatcher as webhooks.

use serde_json::Value;
use switchyard::Config;
use switchyard::scheduler::Scheduler;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let env = switchyard::secrets::environment().await?;
    let config = Config::from_vars_without_sources(env.clone())?;
    let forges = switchyard::forge::Forges::from_vars(&env);
    let (store, dispatcher) = switchyard::runtime::dispatcher(&config, forges).await?;
    let scheduler = Scheduler::new(
        dispatcher,
        store,
        config.schedule_catch_up,
        config.event_ttl,
    );
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<Value>| {
            let scheduler = scheduler.clone();
            async move {
                // The EventBridge time is informational; the clock decides which minutes are due.
                tracing::info!(time = ?event.payload.get("time"), "tick");
                let report = scheduler.run().await?;
                Ok::<_, lambda_runtime::Error>(serde_json::to_value(report)?)
            }
        },
    ))
    .await
}
