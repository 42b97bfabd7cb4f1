//! A custom router binary on the `switchyard` library: the stock pipeline plus a redaction
//! filter (no e-mail address reaches a module) and an audit action (one line per dispatched
//! module, written off the request path). Build it as your own function's binary.

use std::sync::Arc;

use serde_json::Value;
use switchyard::clock::SystemClock;
use switchyard::dispatch::{DispatchPorts, DispatchSettings, Dispatcher};
use switchyard::fanout::LambdaFanout;
use switchyard::hooks::emf::Emf;
use switchyard::hooks::{Flow, Hooks};
use switchyard::webhook::{RouterState, app, serve};
use switchyard::{Config, Registry};

/// Removes every `email` field, at any depth.
fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("email");
            map.values_mut().for_each(redact);
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let registry = Registry::builtin().map_err(|e| format!("invalid manifests: {e:?}"))?;
    let sdk = switchyard::aws::sdk_config().await;
    let store = Arc::new(switchyard::aws::dynamo_store(&sdk, config.table.clone())?);
    let fanout = Arc::new(LambdaFanout::new(switchyard::aws::lambda(
        &sdk,
        config.invoke_timeout,
    )));

    let hooks = Arc::new(Hooks::default());
    // Redaction: runs on every module's context before it is sent.
    hooks.context_filter.on(0, |ctx| {
        let mut ctx = ctx.clone();
        redact(&mut Arc::make_mut(&mut ctx.event).payload);
        Ok(Flow::Replace(ctx))
    });
    // Audit trail: async, so it never delays the answer to the sender.
    hooks.module_dispatched.on_async(10, |d| async move {
        tracing::info!(target: "audit", module = %d.module, job_id = %d.job_id, event_id = %d.event_id, "dispatched");
        Ok(())
    });
    if let Some(namespace) = &config.metrics_namespace {
        Arc::new(Emf::stdout(namespace.clone())).register(&hooks);
    }

    let dispatcher = Dispatcher::new(
        DispatchPorts::from_store(store),
        fanout,
        Arc::new(SystemClock),
        Arc::new(registry),
        DispatchSettings::from_config(&config),
    )
    .with_hooks(hooks);
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

#[cfg(test)]
mod tests {
    #[test]
    fn redact_removes_emails_at_any_depth() {
        let mut v = serde_json::json!({"pusher": {"name": "a", "email": "a@x"}, "commits": [{"author": {"email": "b@x"}}]});
        super::redact(&mut v);
        assert!(!v.to_string().contains("@x"));
    }
}
