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
use crate::registry::RegistrySource;
use crate::store::DynamoStore;

/// A start-up failure, with the reason in its text.
pub type StartupError = Box<dyn std::error::Error + Send + Sync>;

/// Log lines on standard output as `lambda_http`'s default subscriber writes them (its
/// level and format variables), through the buffer the EMF lines share: a delivery's INFO
/// lines go out in the same `write` as its metrics lines ([`crate::hooks::emf::stdout_log_line`]).
pub fn init_logging() {
    lambda_http::tracing::init_default_subscriber_with_writer(SharedStdout);
}

/// The [`MakeWriter`](lambda_http::tracing::subscriber::fmt::MakeWriter) of [`init_logging`]:
/// INFO and below may wait for the held metrics lines, WARN and ERROR never do.
struct SharedStdout;

impl<'a> lambda_http::tracing::subscriber::fmt::MakeWriter<'a> for SharedStdout {
    type Writer = crate::hooks::emf::LogLine;

    fn make_writer(&'a self) -> Self::Writer {
        crate::hooks::emf::stdout_log_line(false)
    }

    fn make_writer_for(&'a self, meta: &lambda_http::tracing::Metadata<'_>) -> Self::Writer {
        crate::hooks::emf::stdout_log_line(*meta.level() > lambda_http::tracing::Level::WARN)
    }
}

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
        crate::aws::dynamo_store(&sdk, config.table.clone())?.with_shards(config.index_shards),
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
