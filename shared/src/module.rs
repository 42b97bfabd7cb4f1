//! The module runtime: what every module function runs under. It receives the
//! [`ModuleContext`], claims the job (`queued` -> `running`, so a duplicate asynchronous
//! invoke does nothing), runs the handler, and records `succeeded` with a bounded output or
//! `failed` with the error. A later issue completes it (panics, cancellation, journal).

use std::future::Future;
use std::sync::Arc;

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use tracing::{error, info, warn};

use crate::clock::{Clock, SystemClock};
use crate::dispatch::ModuleContext;
use crate::hooks::emf::Emf;
use crate::hooks::{Hooks, JobFinished};
use crate::store::{DynamoStore, JobStatus, JobStore, bounded};

/// Largest output summary kept on a job, in bytes of JSON.
pub const MAX_OUTPUT_BYTES: usize = 4096;

/// What became of one invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// The handler ran and succeeded.
    Succeeded,
    /// The handler ran and failed.
    Failed,
    /// The job was not `queued` (a duplicate invoke, or cancelled): the handler did not run.
    Skipped,
}

/// Runs one job: claim, handle, record. Errors are store failures only (the caller lets
/// Lambda retry those); a handler failure is recorded on the job, not returned.
pub async fn run_job<F, Fut>(
    jobs: &dyn JobStore,
    clock: &dyn Clock,
    hooks: &Hooks,
    ctx: ModuleContext,
    handler: &F,
) -> Result<RunOutcome, crate::store::StoreError>
where
    F: Fn(ModuleContext) -> Fut,
    Fut: Future<Output = anyhow::Result<Value>>,
{
    let job_id = ctx.job_id.clone();
    if !jobs.start_job(&job_id, clock.now()).await? {
        info!(job_id = %job_id, module = %ctx.module, "job is not queued: duplicate invoke ignored");
        return Ok(RunOutcome::Skipped);
    }
    let module = ctx.module.clone();
    let started = std::time::Instant::now();
    let finished = |status: JobStatus| {
        crate::hooks::log_failures(hooks.job_finished.dispatch(&JobFinished {
            module: module.clone(),
            job_id: job_id.clone(),
            status,
            duration: started.elapsed(),
        }));
    };
    match handler(ctx).await {
        Ok(output) => {
            let text = output.to_string();
            let output = if text.len() > MAX_OUTPUT_BYTES {
                Value::String(bounded(&text, MAX_OUTPUT_BYTES))
            } else {
                output
            };
            jobs.finish_job(
                &job_id,
                JobStatus::Succeeded,
                None,
                Some(&output),
                clock.now(),
            )
            .await?;
            info!(job_id = %job_id, "job succeeded");
            finished(JobStatus::Succeeded);
            Ok(RunOutcome::Succeeded)
        }
        Err(e) => {
            let message = format!("{e:#}");
            warn!(job_id = %job_id, error = %message, "job failed");
            jobs.finish_job(
                &job_id,
                JobStatus::Failed,
                Some(&message),
                None,
                clock.now(),
            )
            .await?;
            finished(JobStatus::Failed);
            Ok(RunOutcome::Failed)
        }
    }
}

/// The entry point of a module function: reads `SWITCHYARD_TABLE`, builds the store once,
/// and serves invocations with `handler`.
///
/// The function reports success to Lambda once the job's outcome is recorded, also when the
/// handler failed: the job record is the truth, and Lambda's own retries would only find
/// the job no longer queued. It reports an error when recording failed, so Lambda retries.
pub async fn run<F, Fut>(handler: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn(ModuleContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<Value>> + Send,
{
    lambda_runtime::tracing::init_default_subscriber();
    let table = std::env::var("SWITCHYARD_TABLE")
        .ok()
        .filter(|t| !t.trim().is_empty())
        .ok_or("missing required environment variable SWITCHYARD_TABLE")?;
    let sdk = crate::aws::sdk_config().await;
    let store = Arc::new(DynamoStore::new(crate::aws::dynamodb(&sdk), table));
    let handler = Arc::new(handler);
    let hooks = Arc::new(Hooks::default());
    let env: std::collections::BTreeMap<String, String> = std::env::vars().collect();
    let get = |name: &str| env.get(name).map(String::as_str).filter(|v| !v.is_empty());
    if let Some(namespace) = crate::config::metrics_namespace(&get)? {
        Arc::new(Emf::stdout(namespace)).register(&hooks);
    }
    lambda_runtime::run(service_fn(move |event: LambdaEvent<ModuleContext>| {
        let store = store.clone();
        let handler = handler.clone();
        let hooks = hooks.clone();
        async move {
            match run_job(
                store.as_ref(),
                &SystemClock,
                &hooks,
                event.payload,
                handler.as_ref(),
            )
            .await
            {
                Ok(outcome) => Ok(serde_json::json!({ "outcome": format!("{outcome:?}") })),
                Err(e) => {
                    error!(error = %crate::webhook::error_chain(&e), "could not record the job");
                    Err(lambda_runtime::Error::from(e.to_string()))
                }
            }
        }
    }))
    .await
}
