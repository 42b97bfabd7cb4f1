//! Start-up wiring shared by the functions: SDK clients, store, fan-out, the builtin
//! registry and hooks with EMF metrics, built once at cold start.

use std::sync::Arc;

use crate::clock::SystemClock;
use crate::config::Config;
use crate::dispatch::{DispatchPorts, DispatchSettings, Dispatcher};
use crate::fanout::LambdaFanout;
use crate::forge::Forges;
use crate::hooks::Hooks;
use crate::hooks::emf::Emf;
use crate::manifest::Registry;
use crate::module::{CrashNotifier, ModuleRuntime};
use crate::registry::RegistrySource;
use crate::store::DynamoStore;
use std::time::Duration;

/// A start-up failure, with the reason in its text.
pub type StartupError = Box<dyn std::error::Error + Send + Sync>;

/// The store and the dispatcher of a function, from its configuration and its forge
/// credentials (for `paths:` on pull requests and `report: check`).
pub async fn dispatcher(
    config: &Config,
    forges: Forges,
) -> Result<(Arc<DynamoStore>, Dispatcher), StartupError> {
    let registry = Registry::builtin().map_err(|errors| {
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        format!("invalid module manifests: {}", text.join("; "))
    })?;
    let sdk = crate::aws::sdk_config().await;
    let store = Arc::new(
        DynamoStore::new(crate::aws::dynamodb(&sdk), config.table.clone())
            .with_shards(config.index_shards),
    );
    let fanout = Arc::new(LambdaFanout::new(crate::aws::lambda(
        &sdk,
        config.invoke_timeout,
    )));
    let hooks = Arc::new(Hooks::default());
    if let Some(namespace) = &config.metrics_namespace {
        Arc::new(Emf::stdout(namespace.clone())).register(&hooks);
    }
    let registry = Arc::new(registry);
    let source =
        RegistrySource::published(registry.clone(), store.clone(), config.registry_refresh);
    let dispatcher = Dispatcher::new(
        DispatchPorts::from_store(store.clone()),
        fanout,
        Arc::new(SystemClock),
        registry,
        DispatchSettings::from_config(config),
    )
    .with_registry_source(Arc::new(source))
    .with_hooks(hooks)
    .with_pull_request_files(Arc::new(crate::forge::ForgeFiles::new(
        forges.clone(),
        config.pr_files_timeout,
    )))
    .with_job_reports(Arc::new(crate::forge::ForgeReports::new(
        forges,
        config.dashboard_url.clone(),
        std::time::Duration::from_secs(3),
    )));
    Ok((store, dispatcher))
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
    let store = Arc::new(DynamoStore::new(crate::aws::dynamodb(&sdk), table).with_shards(shards));
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
