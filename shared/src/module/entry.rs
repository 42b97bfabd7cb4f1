//! The Lambda entry point of a module function: [`run`] wires the module runtime to the AWS
//! adapters from the environment ([`module_runtime`]) and serves invokes. The SDK beside it
//! (`ModuleRuntime`, `Job`) takes ports and never names an adapter.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};
use tracing::error;

use super::{CrashNotifier, Job, ModuleContext, ModuleRuntime};
use crate::clock::SystemClock;
use crate::fanout::LambdaFanout;
use crate::hooks::Hooks;
use crate::hooks::emf::Emf;
use crate::runtime::StartupError;

/// The entry point of a module function:
///
/// ```no_run
/// #[tokio::main]
/// async fn main() -> Result<(), lambda_runtime::Error> {
///     switchyard::module::run(|job: switchyard::module::Job| async move {
///         job.log(format!("working on {}", job.event().entity)).await;
///         Ok(serde_json::json!({ "done": true }))
///     })
///     .await
/// }
/// ```
///
/// Reads `SWITCHYARD_TABLE`; crash notifications go to `SWITCHYARD_FUNCTION_NOTIFY` (default
/// `notify`) unless `SWITCHYARD_CRASH_NOTIFY=off`; metrics as EMF unless
/// `SWITCHYARD_METRICS=off`. The function reports success to Lambda once the job's outcome
/// is recorded, also when the handler failed: the job record is the truth, and a Lambda
/// retry would find the job no longer queued. It reports an error when the outcome could
/// not be recorded, so Lambda retries.
pub async fn run<F, Fut>(handler: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn(Job) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<Value>> + Send,
{
    lambda_runtime::tracing::init_default_subscriber();
    let runtime = module_runtime().await?;
    let handler = Arc::new(handler);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<ModuleContext>| {
        let runtime = runtime.clone();
        let handler = handler.clone();
        async move {
            let deadline = Duration::from_millis(event.context.deadline);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            let time_left = deadline.checked_sub(now);
            match runtime
                .run_job(event.payload, time_left, handler.as_ref())
                .await
            {
                Ok(outcome) => Ok(json!({ "outcome": format!("{outcome:?}") })),
                Err(e) => {
                    error!(error = %crate::webhook::error_chain(&e), "could not record the job");
                    Err(lambda_runtime::Error::from(e.to_string()))
                }
            }
        }
    }))
    .await
}

/// The module runtime of a module function, from its environment: `SWITCHYARD_TABLE`, the
/// forge credentials (for `report: check`), `SWITCHYARD_CRASH_NOTIFY` /
/// `SWITCHYARD_FUNCTION_NOTIFY` and `SWITCHYARD_METRICS` (see [`crate::module::run`]). It gets
/// the two ports a job needs (jobs, stored payloads), plus claims and fan-out for crash
/// notifications when those are on.
pub async fn module_runtime() -> Result<ModuleRuntime, StartupError> {
    let env: std::collections::BTreeMap<String, String> = std::env::vars().collect();
    let get = |name: &str| {
        env.get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    };
    let table =
        get("SWITCHYARD_TABLE").ok_or("missing required environment variable SWITCHYARD_TABLE")?;
    let sdk = crate::aws::sdk_config().await;
    let shards = crate::config::index_shards(&get)?;
    let store = Arc::new(crate::aws::dynamo_store(&sdk, table)?.with_shards(shards));
    let hooks = Arc::new(Hooks::default());
    if let Some(namespace) = crate::config::metrics_namespace(&get)? {
        Arc::new(Emf::stdout(namespace)).register(&hooks);
    }
    let mut runtime = ModuleRuntime::new(store.clone(), Arc::new(SystemClock)).with_hooks(hooks);
    // Job status on the forge for modules with `report: check` (the forge credentials of
    // the module's own client: the environment is resolved once per process).
    let resolved = crate::secrets::environment().await?;
    runtime = runtime.with_reports(crate::forge::ForgeReports::new(
        crate::forge::Forges::from_vars(&resolved),
        get("SWITCHYARD_DASHBOARD_URL").map(str::to_owned),
        Duration::from_secs(5),
    ));
    if get("SWITCHYARD_CRASH_NOTIFY") != Some("off") {
        let function = get("SWITCHYARD_FUNCTION_NOTIFY")
            .unwrap_or("notify")
            .to_owned();
        let lambda = crate::aws::lambda(&sdk, Duration::from_secs(10));
        let fanout = Arc::new(LambdaFanout::new(lambda));
        runtime = runtime.with_crash_notifier(CrashNotifier::new(
            store,
            fanout,
            function,
            Duration::from_secs(30 * 86_400),
        ));
    }
    Ok(runtime)
}
