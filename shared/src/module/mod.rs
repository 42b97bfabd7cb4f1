//! The module SDK: what every module function runs under. [`run`] receives the
//! [`ModuleContext`], loads a payload passed by reference, claims the job (`queued` ->
//! `running`, so a duplicate asynchronous invoke does nothing and a cancelled job never
//! starts), runs the handler with a timeout below the function's, and records `succeeded`
//! with a bounded output, `failed` with the error, or `cancelled`. A panic is caught: the job
//! is `failed` and the notify module gets a crash notification. The handler gets a [`Job`]:
//! the context, its resolved config, a journal and the cancel flag.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tracing::{error, info, warn};

use crate::clock::Clock;
use crate::dispatch::{ModuleContext, TriggerRef};
use crate::event::Event;
use crate::fanout::Fanout;
use crate::hooks::{Hooks, JobFinished};
use crate::store::{
    Claim, DispatchStore, JobRecord, JobStatus, JobStore, PayloadStore, StartOutcome, StoreError,
    bounded, ids, rfc3339,
};

mod entry;
pub use entry::{module_runtime, run};

/// Largest output summary kept on a job, in bytes of JSON.
pub const MAX_OUTPUT_BYTES: usize = 4096;

/// What became of one invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// The handler ran and succeeded.
    Succeeded,
    /// The handler ran and failed (error or timeout).
    Failed,
    /// The handler panicked; the job is failed and a crash notification went out.
    Crashed,
    /// Cancelled before it started, or the handler stopped on a cancel request.
    Cancelled,
    /// The job was not `queued` (a duplicate invoke): the handler did not run.
    Skipped,
}

/// The handler's view of its job.
#[derive(Clone)]
pub struct Job {
    context: Arc<ModuleContext>,
    jobs: Arc<dyn JobStore>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("job_id", &self.context.job_id)
            .finish_non_exhaustive()
    }
}

impl Job {
    /// Everything the router sent.
    pub fn context(&self) -> &ModuleContext {
        &self.context
    }

    /// The event (with its payload, loaded when it came by reference).
    pub fn event(&self) -> &Event {
        &self.context.event
    }

    /// The job id.
    pub fn id(&self) -> &str {
        &self.context.job_id
    }

    /// The module's config, resolved per scope (manifest, then global, owner, repository).
    pub fn config(&self) -> &Value {
        &self.context.config
    }

    /// The config as a typed value.
    pub fn config_as<T: DeserializeOwned>(&self) -> anyhow::Result<T> {
        Ok(serde_json::from_value(self.context.config.clone())?)
    }

    /// Appends a line to the job's journal (at most 100 lines of 500 bytes; more are dropped).
    /// Best effort: a failure is logged, never returned.
    pub async fn log(&self, line: impl AsRef<str>) {
        if let Err(e) = self
            .jobs
            .append_journal(&self.context.job_id, line.as_ref())
            .await
        {
            warn!(job_id = %self.context.job_id, error = %e, "journal line not recorded");
        }
    }

    /// Whether someone asked to cancel this job (one read). Long handlers check it between
    /// steps and return early.
    pub async fn cancel_requested(&self) -> bool {
        match self.jobs.get_job(&self.context.job_id).await {
            Ok(Some(j)) => j.cancel_requested,
            _ => false,
        }
    }
}

/// Sends crash notifications through the notify module: a job of its own, then an invoke.
#[derive(Clone)]
pub struct CrashNotifier {
    claims: Arc<dyn DispatchStore>,
    fanout: Arc<dyn Fanout>,
    function: String,
    job_ttl: Duration,
}

impl std::fmt::Debug for CrashNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrashNotifier")
            .field("function", &self.function)
            .finish_non_exhaustive()
    }
}

impl CrashNotifier {
    /// Notifies through `function` (the notify module's function).
    pub fn new(
        claims: Arc<dyn DispatchStore>,
        fanout: Arc<dyn Fanout>,
        function: impl Into<String>,
        job_ttl: Duration,
    ) -> Self {
        Self {
            claims,
            fanout,
            function: function.into(),
            job_ttl,
        }
    }

    /// Records a notify job about the crash of `ctx`'s job and invokes notify with it.
    pub async fn notify(
        &self,
        ctx: &ModuleContext,
        error: &str,
        now: time::OffsetDateTime,
    ) -> Result<String, NotifyError> {
        (self.notify_text(ctx, error, now).await).map_err(NotifyError)
    }

    async fn notify_text(
        &self,
        ctx: &ModuleContext,
        error: &str,
        now: time::OffsetDateTime,
    ) -> Result<String, String> {
        let job_id = ids::job_id("crash", &ctx.job_id, "notify");
        let now_s = now.unix_timestamp();
        let job = JobRecord {
            job_id: job_id.clone(),
            module: "notify".into(),
            function: self.function.clone(),
            event_source: ctx.event.source.clone(),
            event_id: ctx.event.id.clone(),
            entity: ctx.entity.clone(),
            trigger: "crash".into(),
            status: JobStatus::Queued,
            attempts: 1,
            created_at: rfc3339(now),
            started_at: None,
            finished_at: None,
            error: None,
            output: None,
            cancel_requested: false,
            journal: Vec::new(),
            lease_holder: None,
            lease_expires_at: None,
            max_attempts: None,
            expires_at: now_s + i64::try_from(self.job_ttl.as_secs()).unwrap_or(i64::MAX / 2),
        };
        let claim = Claim {
            job,
            cooldown_until: None,
            pull: None,
        };
        let outcome = self
            .claims
            .claim(std::slice::from_ref(&claim), now)
            .await
            .map_err(|e| e.to_string())?;
        if outcome.claimed.is_empty() {
            return Ok(job_id); // already notified (a retried crash)
        }
        let mut event = (*ctx.event).clone();
        event.payload = Default::default();
        let context = ModuleContext {
            job_id: job_id.clone(),
            module: "notify".into(),
            function: self.function.clone(),
            trigger: TriggerRef {
                kind: "crash".into(),
                index: 0,
            },
            entity: ctx.entity.clone(),
            config: json!({ "crash": { "module": ctx.module, "job_id": ctx.job_id, "error": bounded(error, 1024) } }),
            event: Arc::new(event),
            payload_ref: None,
            report: false,
        };
        let bytes = serde_json::to_vec(&context).map_err(|e| e.to_string())?;
        self.fanout
            .invoke(&self.function, bytes)
            .await
            .map_err(|e| e.to_string())?;
        Ok(job_id)
    }
}

/// Runs jobs: the ports a module function needs, built once.
#[derive(Clone)]
pub struct ModuleRuntime {
    jobs: Arc<dyn JobStore>,
    payloads: Arc<dyn PayloadStore>,
    clock: Arc<dyn Clock>,
    hooks: Arc<Hooks>,
    crash: Option<CrashNotifier>,
    margin: Duration,
    reports: Option<crate::forge::ForgeReports>,
}

impl std::fmt::Debug for ModuleRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModuleRuntime")
            .field("margin", &self.margin)
            .finish_non_exhaustive()
    }
}

impl ModuleRuntime {
    /// A runtime over `store`; no crash notifier, no hooks, a 2 s timeout margin.
    pub fn new<S>(store: Arc<S>, clock: Arc<dyn Clock>) -> Self
    where
        S: JobStore + PayloadStore + 'static,
    {
        Self {
            jobs: store.clone(),
            payloads: store,
            clock,
            hooks: Arc::new(Hooks::default()),
            crash: None,
            margin: Duration::from_secs(2),
            reports: None,
        }
    }

    /// Shows the jobs of modules with `report: check` on the forge: in progress when the
    /// handler starts, completed when the outcome is recorded. Failures are journaled.
    pub fn with_reports(mut self, reports: crate::forge::ForgeReports) -> Self {
        self.reports = Some(reports);
        self
    }

    /// Shows `ctx`'s job at `phase` on the forge, if its module reports; a failure goes to
    /// the job's journal and the log, never to the job's outcome.
    async fn report(&self, ctx: &ModuleContext, phase: crate::forge::JobPhase) {
        let Some(reports) = self.reports.as_ref().filter(|_| ctx.report) else {
            return;
        };
        if let Err(why) = reports
            .report(&ctx.event, &ctx.module, &ctx.job_id, &phase)
            .await
        {
            warn!(job_id = %ctx.job_id, reason = %why, "job status not shown on the forge");
            let line = format!("report: the status was not shown: {why}");
            if let Err(e) = self.jobs.append_journal(&ctx.job_id, &line).await {
                warn!(job_id = %ctx.job_id, error = %e, "journaling the report failure failed");
            }
        }
    }

    /// Uses `hooks` (`job_finished`).
    pub fn with_hooks(mut self, hooks: Arc<Hooks>) -> Self {
        self.hooks = hooks;
        self
    }

    /// Sends crash notifications.
    pub fn with_crash_notifier(mut self, crash: CrashNotifier) -> Self {
        self.crash = Some(crash);
        self
    }

    /// Stops the handler this long before the function's deadline, to record the outcome.
    pub fn with_margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    async fn finish(
        &self,
        ctx: &ModuleContext,
        status: JobStatus,
        error: Option<&str>,
        output: Option<&Value>,
        started: std::time::Instant,
    ) -> Result<(), StoreError> {
        self.jobs
            .finish_job(&ctx.job_id, status, error, output, self.clock.now())
            .await?;
        self.report(ctx, crate::forge::JobPhase::finished(status, error, output))
            .await;
        crate::hooks::log_failures(self.hooks.job_finished.dispatch(&JobFinished {
            module: ctx.module.clone(),
            job_id: ctx.job_id.clone(),
            status,
            duration: started.elapsed(),
        }));
        Ok(())
    }

    /// Runs one job: load, claim, handle, record. `time_left` is the time until the
    /// function's deadline. Errors are store failures before the job was claimed or while
    /// recording; Lambda retries those.
    pub async fn run_job<F, Fut>(
        &self,
        mut ctx: ModuleContext,
        time_left: Option<Duration>,
        handler: &F,
    ) -> Result<RunOutcome, StoreError>
    where
        F: Fn(Job) -> Fut,
        Fut: Future<Output = anyhow::Result<Value>>,
    {
        // Load a payload passed by reference before claiming: if the store is down the job
        // stays queued for Lambda's retry.
        let mut load_error = None;
        if let Some(reference) = ctx.payload_ref.clone() {
            match self.payloads.get_payload(&reference).await {
                // The stored document is the event (its payload included), shared with replay.
                Ok(json) => match serde_json::from_slice::<crate::Event>(&json) {
                    Ok(stored) => Arc::make_mut(&mut ctx.event).payload = stored.payload,
                    Err(e) => load_error = Some(format!("stored event is not an event: {e}")),
                },
                Err(StoreError::Corrupt { reason, .. }) => {
                    load_error = Some(format!("stored payload is unusable: {reason}"))
                }
                Err(e) => return Err(e),
            }
        }
        match self.jobs.start_job(&ctx.job_id, self.clock.now()).await? {
            StartOutcome::Started => {}
            StartOutcome::Cancelled => {
                info!(job_id = %ctx.job_id, module = %ctx.module, "job was cancelled before it started");
                let phase = crate::forge::JobPhase::Completed {
                    conclusion: "cancelled",
                    summary: "Cancelled before it started.".into(),
                };
                self.report(&ctx, phase).await;
                return Ok(RunOutcome::Cancelled);
            }
            StartOutcome::NotQueued => {
                info!(job_id = %ctx.job_id, module = %ctx.module, "job is not queued: duplicate invoke ignored");
                return Ok(RunOutcome::Skipped);
            }
        }
        let started = std::time::Instant::now();
        self.report(&ctx, crate::forge::JobPhase::InProgress).await;
        if let Some(e) = load_error {
            self.finish(&ctx, JobStatus::Failed, Some(&e), None, started)
                .await?;
            return Ok(RunOutcome::Failed);
        }
        let ctx = Arc::new(ctx);
        let job = Job {
            context: ctx.clone(),
            jobs: self.jobs.clone(),
        };
        // A panic while building the future or while running it is caught alike.
        let run = async {
            match std::panic::catch_unwind(AssertUnwindSafe(|| handler(job))) {
                Ok(fut) => AssertUnwindSafe(fut).catch_unwind().await,
                Err(p) => Err(p),
            }
        };
        let budget = time_left.map(|t| t.saturating_sub(self.margin));
        let result = match budget {
            Some(b) => tokio::time::timeout(b, run).await.ok(),
            None => Some(run.await),
        };
        match result {
            Some(Ok(Ok(output))) => {
                // Checked before the write: an output DynamoDB refuses (nesting over 32
                // levels, numbers outside its range) would fail every attempt to record the
                // outcome and leave the job `running` for good.
                if let Err(why) = crate::store::storable(&output, 1) {
                    let message = format!("the handler's output cannot be stored: {why}");
                    warn!(job_id = %ctx.job_id, error = %message, "job failed");
                    self.finish(&ctx, JobStatus::Failed, Some(&message), None, started)
                        .await?;
                    return Ok(RunOutcome::Failed);
                }
                let text = output.to_string();
                let output = if text.len() > MAX_OUTPUT_BYTES {
                    Value::String(bounded(&text, MAX_OUTPUT_BYTES))
                } else {
                    output
                };
                self.finish(&ctx, JobStatus::Succeeded, None, Some(&output), started)
                    .await?;
                info!(job_id = %ctx.job_id, "job succeeded");
                Ok(RunOutcome::Succeeded)
            }
            Some(Ok(Err(e))) => {
                let message = format!("{e:#}");
                let cancelled = matches!(self.jobs.get_job(&ctx.job_id).await, Ok(Some(j)) if j.cancel_requested);
                if cancelled {
                    self.finish(&ctx, JobStatus::Cancelled, Some(&message), None, started)
                        .await?;
                    info!(job_id = %ctx.job_id, "job stopped on a cancel request");
                    return Ok(RunOutcome::Cancelled);
                }
                warn!(job_id = %ctx.job_id, error = %message, "job failed");
                self.finish(&ctx, JobStatus::Failed, Some(&message), None, started)
                    .await?;
                Ok(RunOutcome::Failed)
            }
            Some(Err(p)) => {
                let message = format!(
                    "panicked: {}",
                    switchyard_core::errors::panic_text(p.as_ref())
                );
                error!(job_id = %ctx.job_id, module = %ctx.module, error = %message, "job crashed");
                self.finish(&ctx, JobStatus::Failed, Some(&message), None, started)
                    .await?;
                // A crash while reporting a crash is not reported again (no loop).
                if let Some(crash) = self.crash.as_ref().filter(|_| ctx.trigger.kind != "crash") {
                    if let Err(e) = crash.notify(&ctx, &message, self.clock.now()).await {
                        warn!(job_id = %ctx.job_id, error = %e, "crash notification failed");
                    }
                }
                Ok(RunOutcome::Crashed)
            }
            None => {
                let message = format!(
                    "timed out after {} s ({} s before the function's deadline)",
                    budget.unwrap_or_default().as_secs(),
                    self.margin.as_secs()
                );
                warn!(job_id = %ctx.job_id, error = %message, "job timed out");
                self.finish(&ctx, JobStatus::Failed, Some(&message), None, started)
                    .await?;
                Ok(RunOutcome::Failed)
            }
        }
    }
}

switchyard_core::message_error! {
    /// Why a crash notification did not go out.
    NotifyError
}
