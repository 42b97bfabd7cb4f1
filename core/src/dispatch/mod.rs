//! The dispatcher: one code path that de-duplicates, matches, cools down, records jobs and
//! fans out, whoever triggered it. Store round trips per delivery: reserve (with the look at
//! the cooldowns beside it), claim (every job and cooldown as single-item conditional writes,
//! and the stored event, all at once), finish; invokes run concurrently between the last
//! two. A delivery for one pull module writes its stored event with the job's queue item
//! instead, and, when its reservation created the event item, its outcome too, as a put of
//! the whole item (three calls in all; see [`crate::store::Closing`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use tracing::{info, instrument, warn};

use crate::clock::Clock;
use crate::config::Config;
pub use crate::context::{ModuleContext, SharedEvent, TriggerRef};
use crate::event::{NormalizeError, normalize};
use crate::signature::Verified;
use execute::{Held, Payload, Run};
pub use replay::{Replay, ReplayPlan};
use time::OffsetDateTime;

mod execute;
mod replay;

use crate::event::{Event, EventType};
use crate::fanout::Fanout;
use crate::hooks::{EventCompleted, EventGate, EventReceived, Hooks, log_failures};
use crate::manifest::Registry;
use crate::registry::{Active, RegistrySource};
use crate::routing::{self, Planned, Skip};
use crate::settings::{ScopedSettings, Settings, scopes_for};
use crate::store::{
    DispatchStore, EventRecord, EventStatus, EventStore, JobRecord, JobRef, JobStore, PayloadStore,
    Reservation, SettingsStore, StoreError, WorkQueue, ids, rfc3339,
};

/// Dispatcher settings, from [`Config`].
#[derive(Debug, Clone)]
pub struct DispatchSettings {
    /// How long an attempt holds a delivery's reservation.
    pub lease: Duration,
    /// Event item lifetime.
    pub event_ttl: Duration,
    /// Job item lifetime.
    pub job_ttl: Duration,
    /// Largest context sent inline.
    pub max_invoke_bytes: usize,
    /// Function per module (env-key spelling of the module name).
    pub function_overrides: BTreeMap<String, String>,
    /// How long per-scope settings are cached in the process.
    pub settings_ttl: Duration,
    /// The module that gets events no module claims.
    pub fallback_module: Option<String>,
}

impl DispatchSettings {
    /// The settings in `config`.
    pub fn from_config(config: &Config) -> Self {
        Self {
            lease: config.lease,
            event_ttl: config.event_ttl,
            job_ttl: config.job_ttl,
            max_invoke_bytes: config.max_invoke_bytes,
            function_overrides: config.function_overrides.clone(),
            settings_ttl: config.settings_ttl,
            fallback_module: config.fallback_module.clone(),
        }
    }

    fn function_for(&self, planned: &Planned) -> String {
        crate::config::function_for(&self.function_overrides, &planned.module, &planned.function)
    }
}

/// A module's job in an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobOut {
    /// Module name.
    pub module: String,
    /// Job id.
    pub job_id: String,
}

/// What a delivery led to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dispatched {
    /// The delivery id.
    pub event_id: String,
    /// Jobs of the event (including those an earlier attempt dispatched).
    pub jobs: Vec<JobOut>,
    /// Modules that listen for the event but did not run, with reasons.
    pub skipped: Vec<Skip>,
    /// Jobs whose invoke failed (the event stays resumable).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<JobOut>,
}

/// The dispatcher's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Recorded and fanned out (possibly to no module).
    Dispatched(Dispatched),
    /// Some invokes failed: those jobs are failed, the event is resumable.
    Incomplete(Dispatched),
    /// Already completed: nothing dispatched.
    Duplicate {
        /// The delivery id.
        event_id: String,
    },
    /// Same id, different body: nothing dispatched.
    Conflict,
    /// Another attempt holds the delivery.
    InProgress {
        /// Seconds until it may be retried.
        retry_after: u64,
    },
}

/// A failure of ours: nothing was dispatched.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// The store failed before any invoke went out.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why an outbound port (job reports, pull request files) could not do its part: the
/// adapter's own error, kept as the source.
pub type PortError = crate::errors::BoxError;

/// A verified delivery, normalized and dispatched ([`Dispatcher::deliver`]).
#[derive(Debug)]
pub struct Delivered {
    /// The normalized event.
    pub event: Event,
    /// What dispatching it did.
    pub result: Result<Outcome, DispatchError>,
}

// Per-scope settings cached in the process: a changed setting takes effect within the TTL,
// and a warm cache costs no round trip.
#[derive(Default)]
struct SettingsCache {
    entries: Mutex<HashMap<String, (Instant, Option<Settings>)>>,
}

// Bound on cached scopes; past it the cache starts over (one BatchGetItem per miss).
const SETTINGS_CACHE_MAX: usize = 10_000;

impl SettingsCache {
    fn get(&self, scopes: &[String], ttl: Duration) -> Option<ScopedSettings> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let mut layers = Vec::new();
        for scope in scopes {
            let (at, value) = entries.get(scope)?;
            if at.elapsed() > ttl {
                return None;
            }
            if let Some(v) = value {
                layers.push((scope.clone(), v.clone()));
            }
        }
        Some(ScopedSettings { layers })
    }

    fn put(&self, scopes: &[String], found: &[(String, Settings)]) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() > SETTINGS_CACHE_MAX {
            entries.clear();
        }
        let now = Instant::now();
        for scope in scopes {
            let value = found
                .iter()
                .find(|(s, _)| s == scope)
                .map(|(_, v)| v.clone());
            entries.insert(scope.clone(), (now, value));
        }
    }
}

/// Decides, records and fans out.
#[derive(Clone)]
pub struct Dispatcher {
    events: Arc<dyn EventStore>,
    claims: Arc<dyn DispatchStore>,
    payloads: Arc<dyn PayloadStore>,
    settings_store: Arc<dyn SettingsStore>,
    settings_cache: Arc<SettingsCache>,
    fanout: Arc<dyn Fanout>,
    clock: Arc<dyn Clock>,
    jobs: Arc<dyn JobStore>,
    queue: Arc<dyn WorkQueue>,
    registry: Arc<RegistrySource>,
    settings: DispatchSettings,
    hooks: Arc<Hooks>,
    pr_files: Option<Arc<dyn PullRequestFiles>>,
    reports: Option<Arc<dyn JobReports>>,
}

/// The store ports a [`Dispatcher`] uses, one object each: the wiring hands over exactly
/// these, so what a function is given is what its policy lets it touch.
#[derive(Clone)]
pub struct DispatchPorts {
    /// Reservation and outcome of deliveries.
    pub events: Arc<dyn EventStore>,
    /// Cooldowns and job creation.
    pub claims: Arc<dyn DispatchStore>,
    /// The stored event of each delivery (replay, contexts sent by reference).
    pub payloads: Arc<dyn PayloadStore>,
    /// Per-scope settings (feature flags, config overrides).
    pub settings: Arc<dyn SettingsStore>,
    /// Jobs: journal lines about dispatch, the jobs a replay keeps.
    pub jobs: Arc<dyn JobStore>,
    /// Pull modules' queues.
    pub queue: Arc<dyn WorkQueue>,
}

impl DispatchPorts {
    /// Every port served by one adapter (the DynamoDB store does them all).
    pub fn from_store<S>(store: Arc<S>) -> Self
    where
        S: EventStore
            + DispatchStore
            + SettingsStore
            + PayloadStore
            + JobStore
            + WorkQueue
            + 'static,
    {
        Self {
            events: store.clone(),
            claims: store.clone(),
            payloads: store.clone(),
            settings: store.clone(),
            jobs: store.clone(),
            queue: store,
        }
    }
}

impl std::fmt::Debug for DispatchPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DispatchPorts").finish_non_exhaustive()
    }
}

/// Shows a job's status on its event's forge, for modules with `report: check`: queued by
/// the router, in progress and completed by the API for pull jobs. The functions' is
/// `switchyard::forge::ForgeReports`.
#[async_trait::async_trait]
pub trait JobReports: Send + Sync {
    /// Shows `job_id` of `module` at `phase`; an error is journaled on the job, never fatal.
    async fn report(
        &self,
        event: &Event,
        module: &str,
        job_id: &str,
        phase: &crate::report::JobPhase,
    ) -> Result<(), PortError>;
}

/// Lists a pull request's changed files, for `paths:` filters (its payload has none). The
/// router's is `switchyard::forge::ForgeFiles`.
#[async_trait::async_trait]
pub trait PullRequestFiles: Send + Sync {
    /// The paths the event's pull request changes, or why they cannot be had.
    async fn files(&self, event: &Event) -> Result<Vec<String>, PortError>;
}

/// Whether matching `event` needs its pull request's files: a pull request event without a
/// path list, and a module listening for it with a path filter.
fn wants_pr_files(registry: &Registry, event: &Event) -> bool {
    let kind = event.event_type.as_str();
    kind.starts_with("pull_request")
        && event.changed_paths.is_none()
        && !event.changed_paths_truncated
        && event.changed_paths_unknown.is_none()
        && registry.candidates(kind).any(|m| {
            m.triggers
                .iter()
                .any(|t| matches!(t, crate::manifest::Trigger::Webhook(w) if w.paths.is_some()))
        })
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("registry", &self.registry)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The `function` recorded on pull jobs: no function is invoked, workers lease them.
pub const PULL_FUNCTION: &str = "pull";

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2)
}

impl Dispatcher {
    /// A dispatcher over its ports.
    pub fn new(
        ports: DispatchPorts,
        fanout: Arc<dyn Fanout>,
        clock: Arc<dyn Clock>,
        registry: Arc<Registry>,
        settings: DispatchSettings,
    ) -> Self {
        let DispatchPorts {
            events,
            claims,
            payloads,
            settings: settings_store,
            jobs,
            queue,
        } = ports;
        Self {
            events,
            claims,
            payloads,
            jobs,
            queue,
            settings_store,
            settings_cache: Arc::new(SettingsCache::default()),
            fanout,
            clock,
            registry: Arc::new(RegistrySource::fixed(registry)),
            settings,
            hooks: Arc::new(Hooks::default()),
            pr_files: None,
            reports: None,
        }
    }

    /// Shows the jobs of modules with `report: check` as queued on the forge through
    /// `reports`, before they are sent (so the module's own updates come after).
    pub fn with_job_reports(mut self, reports: Arc<dyn JobReports>) -> Self {
        self.reports = Some(reports);
        self
    }

    /// Shows `job_id` of `module` at `phase` on the event's forge (when job reports are
    /// configured); a failure is journaled on the job and logged, never returned.
    pub async fn report_job(
        &self,
        event: &Event,
        module: &str,
        job_id: &str,
        phase: &crate::report::JobPhase,
    ) {
        let Some(reports) = &self.reports else {
            return;
        };
        if let Err(why) = reports.report(event, module, job_id, phase).await {
            warn!(job_id = %job_id, reason = %why, "job status not shown on the forge");
            let line = format!("report: the status was not shown: {why}");
            if let Err(e) = self.jobs.append_journal(job_id, &line).await {
                warn!(job_id = %job_id, error = %e, "journaling the report failure failed");
            }
        }
    }

    /// Marks the claimed jobs of reporting modules queued on the forge, concurrently.
    async fn report_queued(&self, event: &Event, jobs: &[(&Planned, &JobRecord)]) {
        let marks = jobs
            .iter()
            .filter(|(planned, _)| planned.report)
            .map(|(_, job)| {
                self.report_job(
                    event,
                    &job.module,
                    &job.job_id,
                    &crate::report::JobPhase::Queued,
                )
            });
        futures::future::join_all(marks).await;
    }

    /// Lists pull requests' files through `files` when a path filter needs them: once per
    /// delivery, however many triggers ask. Without it path filters match pull requests.
    pub fn with_pull_request_files(mut self, files: Arc<dyn PullRequestFiles>) -> Self {
        self.pr_files = Some(files);
        self
    }

    /// `event` with its pull request's files when a path filter needs them (or the reason
    /// they could not be had, so the filter matches and says why).
    async fn with_pr_files<'e>(
        &self,
        registry: &Registry,
        event: &'e Event,
    ) -> std::borrow::Cow<'e, Event> {
        if !wants_pr_files(registry, event) {
            return std::borrow::Cow::Borrowed(event);
        }
        let mut listed = event.clone();
        match &self.pr_files {
            None => {
                listed.changed_paths_unknown =
                    Some("no forge credentials to list the pull request's files".into());
            }
            Some(lister) => match lister.files(event).await {
                Ok(files) => listed.changed_paths = Some(files),
                Err(why) => {
                    let why = crate::errors::error_chain(why.as_ref());
                    warn!(reason = %why, "pull request files not listed; path filters match");
                    listed.changed_paths_unknown = Some(why);
                }
            },
        }
        std::borrow::Cow::Owned(listed)
    }

    /// Takes its registry from `source` (published versions, hot reload).
    pub fn with_registry_source(mut self, source: Arc<RegistrySource>) -> Self {
        self.registry = source;
        self
    }

    /// Uses `hooks` for the pipeline's hook points.
    pub fn with_hooks(mut self, hooks: Arc<Hooks>) -> Self {
        self.hooks = hooks;
        self
    }

    /// The hook points.
    pub fn hooks(&self) -> &Arc<Hooks> {
        &self.hooks
    }

    /// The settings layers for an event: from the cache, or one BatchGetItem.
    async fn scoped_settings(&self, event: &Event) -> Result<ScopedSettings, StoreError> {
        let scopes = scopes_for(event.repository.as_deref());
        if let Some(hit) = self.settings_cache.get(&scopes, self.settings.settings_ttl) {
            return Ok(hit);
        }
        let found = self.settings_store.get_settings(&scopes).await?;
        self.settings_cache.put(&scopes, &found);
        Ok(ScopedSettings { layers: found })
    }

    /// Events no module claims (no module matched; pings and schedule ticks aside) go to the
    /// fallback module, when one is configured and switched on for the event's scope.
    fn with_fallback(
        &self,
        registry: &Registry,
        mut plan: routing::Plan,
        event: &Event,
        scoped: &ScopedSettings,
    ) -> routing::Plan {
        let Some(name) = &self.settings.fallback_module else {
            return plan;
        };
        if !plan.matched.is_empty()
            || matches!(
                event.event_type,
                EventType::Ping | EventType::Schedule | EventType::Invoke
            )
        {
            return plan;
        }
        let Some(module) = registry.get(name) else {
            warn!(module = %name, "the fallback module is not in the registry");
            return plan;
        };
        let on = scoped.enablement(module);
        if !on.enabled {
            plan.skipped.push(Skip {
                module: module.name.clone(),
                reason: "disabled".into(),
                detail: Some(format!("fallback: flag {} is off", module.flag)),
            });
            return plan;
        }
        plan.matched.push(Planned {
            module: module.name.clone(),
            function: module.function.clone(),
            trigger: 0,
            kind: "fallback",
            entity: event.entity.clone(),
            cooldown: None,
            config: scoped.config(module),
            pull: module.pull,
            report: module.report.is_some(),
        });
        plan
    }

    /// The registry it matches against now (no I/O; see [`Dispatcher::active_registry`]).
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.snapshot().registry.clone()
    }

    /// The registry in use, after the periodic check for a newly published version.
    pub async fn active_registry(&self) -> Arc<Active> {
        self.registry.current().await
    }

    /// Where the registry comes from.
    pub fn registry_source(&self) -> &Arc<RegistrySource> {
        &self.registry
    }

    /// Its settings.
    pub fn settings(&self) -> &DispatchSettings {
        &self.settings
    }

    /// The clock it reads.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The entry point of a webhook: normalizes a verified delivery with the payload paths
    /// of one registry snapshot and dispatches it against that same snapshot. An unusable
    /// body is an error and records nothing.
    pub async fn deliver(
        &self,
        verified: Verified<'_>,
        received_at: OffsetDateTime,
    ) -> Result<Delivered, NormalizeError> {
        let active = self.registry.current().await;
        let event = normalize(verified, received_at, active.registry.payload_paths())?;
        let result = self.dispatch_in(&active.registry, &event).await;
        Ok(Delivered { event, result })
    }

    /// Runs one normalized event through de-duplication, matching, cooldowns, job records
    /// and fan-out (schedules, the API and internal events; webhooks come through
    /// [`Dispatcher::deliver`]).
    pub async fn dispatch(&self, event: &Event) -> Result<Outcome, DispatchError> {
        let active = self.registry.current().await;
        self.dispatch_in(&active.registry, event).await
    }

    /// [`Dispatcher::dispatch`] against `registry`, told to the hooks with its store usage.
    #[instrument(skip_all, fields(source = %event.source, event_id = %event.id, event_type = %event.event_type.as_str()))]
    async fn dispatch_in(
        &self,
        registry: &Registry,
        event: &Event,
    ) -> Result<Outcome, DispatchError> {
        let started = Instant::now();
        if !self.hooks.event_received.is_empty() {
            log_failures(self.hooks.event_received.dispatch(&EventReceived {
                event: Arc::new(event.clone()),
            }));
        }
        let (result, store) = crate::store::usage::measure(self.accept(registry, event)).await;
        let (label, jobs, skipped, failed) = match &result {
            Err(_) => ("error", 0, 0, 0),
            Ok((outcome, filtered)) => match outcome {
                Outcome::Dispatched(d) if *filtered => {
                    ("filtered", d.jobs.len(), d.skipped.len(), 0)
                }
                Outcome::Dispatched(d) => ("dispatched", d.jobs.len(), d.skipped.len(), 0),
                Outcome::Incomplete(d) => {
                    ("incomplete", d.jobs.len(), d.skipped.len(), d.failed.len())
                }
                Outcome::Duplicate { .. } => ("duplicate", 0, 0, 0),
                Outcome::Conflict => ("conflict", 0, 0, 0),
                Outcome::InProgress { .. } => ("in_progress", 0, 0, 0),
            },
        };
        log_failures(self.hooks.event_completed.dispatch(&EventCompleted {
            source: event.source.clone(),
            event_id: event.id.clone(),
            event_type: event.event_type.as_str().to_owned(),
            outcome: label,
            jobs,
            skipped,
            failed,
            duration: started.elapsed(),
            store,
        }));
        result.map(|(outcome, _)| outcome)
    }

    /// Reserves the delivery, then matches and executes it; says whether an event filter
    /// dropped it.
    async fn accept(
        &self,
        registry: &Registry,
        event: &Event,
    ) -> Result<(Outcome, bool), DispatchError> {
        let now = self.clock.now();
        let record = self.reservation(event, now);
        let (reservation, scoped, held) = self.reserve(registry, event, &record, now).await;
        let (token, previous, created) = match reservation? {
            Reservation::Fresh { token, created } => (token, None, created),
            Reservation::Resumed { token, previous } => (token, Some(previous), false),
            Reservation::Duplicate(_) => {
                info!("redelivery of a completed event: nothing dispatched");
                let event_id = event.id.clone();
                return Ok((Outcome::Duplicate { event_id }, false));
            }
            Reservation::Conflict => {
                warn!("delivery id reused with a different body: nothing dispatched");
                return Ok((Outcome::Conflict, false));
            }
            Reservation::InProgress { retry_after } => {
                info!(retry_after, "delivery in progress in another attempt");
                return Ok((Outcome::InProgress { retry_after }, false));
            }
        };
        let listed = self.with_pr_files(registry, event).await;
        let decision = self.decide(registry, &listed, &scoped?);
        let dropped = decision.dropped.is_some();
        // What an earlier attempt already got out is kept, never sent again; the event it
        // stored is not stored again. The event as received is what replay re-runs (an
        // event filter applies again then).
        let json = crate::context::event_json(event);
        let payload = match previous.as_ref().and_then(|p| p.payload_ref.clone()) {
            Some(reference) => Payload::Stored(reference),
            None => Payload::Store(json.clone()),
        };
        let jobs: Vec<JobRef> = (previous.into_iter())
            .flat_map(|p| p.jobs.into_iter().filter(|j| j.dispatched))
            .collect();
        // The received event's JSON serves contexts unless an event filter may change the
        // event or files were added to it.
        let shared = match json {
            Some(json)
                if self.hooks.event_filter.is_empty()
                    && matches!(listed, std::borrow::Cow::Borrowed(_)) =>
            {
                SharedEvent::with_json(decision.event, json)
            }
            _ => SharedEvent::new(decision.event),
        };
        let mut run = Run::new(&shared, &token, jobs, false);
        if created {
            run = run.created_from(&record);
        }
        let outcome = self.execute(run, decision.plan, payload, &held).await?;
        Ok((outcome, dropped))
    }

    /// The event item a delivery reserves: in progress, leased to this attempt.
    fn reservation(&self, event: &Event, now: OffsetDateTime) -> EventRecord {
        let now_s = now.unix_timestamp();
        EventRecord {
            source: event.source.clone(),
            event_id: event.id.clone(),
            event_type: event.event_type.as_str().to_owned(),
            action: event.action.clone(),
            entity: event.entity.clone(),
            received_at: rfc3339(event.received_at),
            body_digest: event.body_digest.clone(),
            status: EventStatus::InProgress,
            lease_expires_at: now_s + secs(self.settings.lease),
            lease_token: None,
            attempts: 1,
            jobs: Vec::new(),
            skipped: Vec::new(),
            expires_at: now_s + secs(self.settings.event_ttl),
            payload_ref: None,
        }
    }

    /// The reservation, with what matching needs read beside it in the same round trip:
    /// the scope's settings (when some module listens for the event's type; cached ones
    /// cost nothing) and the cooldowns the event would meet (eventually consistent reads,
    /// half a unit each, so that a module cooling down costs no job write). The looks are
    /// planned with the cached settings when there are any; a module the real settings add
    /// is caught by the claim's condition instead, and a failed look only costs the saving.
    async fn reserve(
        &self,
        registry: &Registry,
        event: &Event,
        record: &EventRecord,
        now: OffsetDateTime,
    ) -> (
        Result<Reservation, StoreError>,
        Result<ScopedSettings, StoreError>,
        Vec<Held>,
    ) {
        let listened = registry
            .candidates(event.event_type.as_str())
            .next()
            .is_some();
        let scopes = scopes_for(event.repository.as_deref());
        let cached = self.settings_cache.get(&scopes, self.settings.settings_ttl);
        let looks: Vec<(String, String)> = match listened {
            false => Vec::new(),
            true => (routing::plan(registry, event, &cached.clone().unwrap_or_default()).matched)
                .iter()
                .filter(|m| m.cooldown.is_some())
                .map(|m| {
                    let entity = ids::cooldown_entity(&event.source, &m.entity);
                    (m.module.clone(), entity.into_owned())
                })
                .collect(),
        };
        let settings = async {
            match (listened, cached) {
                (false, _) => Ok(ScopedSettings::default()),
                (true, Some(hit)) => Ok(hit),
                (true, None) => self.scoped_settings(event).await,
            }
        };
        let cooldowns = async {
            match looks.is_empty() {
                true => Ok(Vec::new()),
                false => self.claims.cooldowns(&looks, false, now).await,
            }
        };
        let (reservation, scoped, looked) =
            tokio::join!(self.events.reserve(record, now), settings, cooldowns);
        let held = (looks.into_iter().zip(looked.unwrap_or_default()))
            .filter_map(|(pair, c)| c.map(|c| (pair, c)))
            .collect();
        (reservation, scoped, held)
    }

    /// Filters the event and matches it: the event to dispatch, the plan, and the filter's
    /// reason when it dropped the event.
    fn decide(&self, registry: &Registry, event: &Event, scoped: &ScopedSettings) -> Decision {
        // The event filter may replace the event (redaction) or drop it.
        let mut dropped = None;
        let event = if self.hooks.event_filter.is_empty() {
            event.clone()
        } else {
            let out = self.hooks.event_filter.apply(EventGate {
                event: event.clone(),
                drop: None,
            });
            if let Some(f) = out.error {
                warn!(handler = f.handler, failure = ?f.kind, "event filter failed; using the last accepted event");
            }
            dropped = out.value.drop;
            out.value.event
        };
        let plan = match &dropped {
            None => self.with_fallback(
                registry,
                routing::plan(registry, &event, scoped),
                &event,
                scoped,
            ),
            Some(reason) => routing::Plan {
                matched: Vec::new(),
                skipped: registry
                    .candidates(event.event_type.as_str())
                    .map(|m| Skip {
                        module: m.name.clone(),
                        reason: "filtered".into(),
                        detail: Some(reason.clone()),
                    })
                    .collect(),
            },
        };
        Decision {
            event,
            plan,
            dropped,
        }
    }
}

/// A filtered event and its plan.
struct Decision {
    event: Event,
    plan: routing::Plan,
    dropped: Option<String>,
}

impl From<&JobRef> for JobOut {
    fn from(j: &JobRef) -> Self {
        Self {
            module: j.module.clone(),
            job_id: j.job_id.clone(),
        }
    }
}
