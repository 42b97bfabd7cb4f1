//! The dispatcher: one code path that de-duplicates, matches, cools down, records jobs and
//! fans out, whoever triggered it. Store round trips per delivery: reserve (with the look at
//! the cooldowns beside it), claim (every job and cooldown as single-item conditional writes,
//! and the stored event, all at once), finish; invokes run concurrently between the last
//! two.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use tracing::{error, info, instrument, warn};

use crate::clock::Clock;
use crate::config::Config;
pub use crate::context::{ModuleContext, SharedEvent, TriggerRef};
use crate::event::{Event, EventType};
use crate::fanout::{Fanout, FanoutError};
use crate::hooks::{
    EventCompleted, EventGate, EventReceived, Hooks, ModuleDispatched, ModuleSkipped, log_failures,
};
use crate::manifest::Registry;
use crate::registry::{Active, RegistrySource};
use crate::routing::{self, Planned, Skip};
use crate::settings::{ScopedSettings, Settings, scopes_for};
use crate::store::{
    Claim, ClaimOutcome, Cooling, DispatchStore, EventRecord, EventStatus, EventStore, Finish,
    JobRecord, JobRef, JobStatus, JobStore, PayloadRef, PayloadStore, Reopened, Reservation,
    SettingsStore, StoreError, WorkQueue, keys, rfc3339,
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
    ) -> Result<(), String>;
}

/// Lists a pull request's changed files, for `paths:` filters (its payload has none). The
/// router's is `switchyard::forge::ForgeFiles`.
#[async_trait::async_trait]
pub trait PullRequestFiles: Send + Sync {
    /// The paths the event's pull request changes, or why they cannot be had.
    async fn files(&self, event: &Event) -> Result<Vec<String>, String>;
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
    /// A dispatcher over its ports; `store` serves events, claims and settings.
    pub fn new<S>(
        store: Arc<S>,
        fanout: Arc<dyn Fanout>,
        clock: Arc<dyn Clock>,
        registry: Arc<Registry>,
        settings: DispatchSettings,
    ) -> Self
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
            jobs: store.clone(),
            queue: store.clone(),
            settings_store: store,
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

    /// The payload paths the active registry routes on, for [`crate::event::normalize`].
    pub async fn payload_paths(&self) -> Arc<crate::payload::PayloadPaths> {
        self.registry
            .current()
            .await
            .registry
            .payload_paths()
            .clone()
    }

    /// Runs one normalized event through de-duplication, matching, cooldowns, job records
    /// and fan-out.
    #[instrument(skip_all, fields(source = %event.source, event_id = %event.id, event_type = %event.event_type.as_str()))]
    pub async fn dispatch(&self, event: &Event) -> Result<Outcome, DispatchError> {
        let started = Instant::now();
        if !self.hooks.event_received.is_empty() {
            log_failures(self.hooks.event_received.dispatch(&EventReceived {
                event: Arc::new(event.clone()),
            }));
        }
        let (result, store) = crate::store::usage::measure(self.dispatch_inner(event)).await;
        if let Ok((outcome, filtered)) = &result {
            let (label, jobs, skipped, failed) = match outcome {
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
        }
        result.map(|(outcome, _)| outcome)
    }

    async fn dispatch_inner(&self, event: &Event) -> Result<(Outcome, bool), DispatchError> {
        let now = self.clock.now();
        let now_s = now.unix_timestamp();
        let active = self.registry.current().await;
        let registry = &active.registry;
        let pk = keys::event(&event.source, &event.id);
        // The event's JSON, written once: for the event item and, unless an event filter may
        // change the event, for every module's context.
        let json = crate::context::event_json(event);
        let record = EventRecord {
            pk: pk.clone(),
            sk: keys::EVENT_SK.into(),
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
        };
        // Settings are only needed when some module listens for this type; they load
        // concurrently with the reservation (or come from the cache).
        let listened = registry
            .candidates(event.event_type.as_str())
            .next()
            .is_some();
        // The cooldowns the event would meet, read beside the reservation (eventually
        // consistent: half a unit each) so that a module cooling down costs no job write.
        // Planned with the cached settings when there are any; a module the real settings
        // add is caught by the claim's condition instead.
        let cached = self.settings_cache.get(
            &scopes_for(event.repository.as_deref()),
            self.settings.settings_ttl,
        );
        let looks: Vec<(String, String)> = if listened {
            routing::plan(registry, event, &cached.clone().unwrap_or_default())
                .matched
                .iter()
                .filter(|m| m.cooldown.is_some())
                .map(|m| {
                    let entity = keys::cooldown_entity(&event.source, &m.entity);
                    (m.module.clone(), entity.into_owned())
                })
                .collect()
        } else {
            Vec::new()
        };
        let (reservation, scoped, looked) = tokio::join!(
            self.events.reserve(&record, now),
            async {
                match (listened, cached) {
                    (false, _) => Ok(None),
                    (true, Some(hit)) => Ok(Some(hit)),
                    (true, None) => self.scoped_settings(event).await.map(Some),
                }
            },
            async {
                if looks.is_empty() {
                    Ok(Vec::new())
                } else {
                    self.claims.cooldowns(&looks, false, now).await
                }
            }
        );
        let (token, previous) = match reservation? {
            Reservation::Fresh { token } => (token, None),
            Reservation::Resumed { token, previous } => (token, Some(previous)),
            Reservation::Duplicate(_) => {
                info!("redelivery of a completed event: nothing dispatched");
                return Ok((
                    Outcome::Duplicate {
                        event_id: event.id.clone(),
                    },
                    false,
                ));
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
        let scoped = scoped?.unwrap_or_default();
        // A failed look only costs the saving: the claim's condition decides anyway.
        let held: Vec<((String, String), Cooling)> = looks
            .into_iter()
            .zip(looked.unwrap_or_default())
            .filter_map(|(pair, c)| c.map(|c| (pair, c)))
            .collect();
        let listed = self.with_pr_files(registry, event).await;
        let decision = self.decide(registry, &listed, &scoped);
        // What an earlier attempt already got out is kept, never sent again; the event it
        // stored is not stored again.
        let previous_ref = previous.as_ref().and_then(|p| p.payload_ref.clone());
        let jobs: Vec<JobRef> = previous
            .map(|p| p.jobs.into_iter().filter(|j| j.dispatched).collect())
            .unwrap_or_default();
        let dropped = decision.dropped.is_some();
        // The event as received is what replay re-runs (an event filter applies again then).
        let payload = match previous_ref {
            Some(reference) => Payload::Stored(reference),
            None => Payload::Store(json.clone()),
        };
        let shared = match json {
            // The received event's JSON serves contexts unless files were added to it.
            Some(json)
                if self.hooks.event_filter.is_empty()
                    && matches!(listed, std::borrow::Cow::Borrowed(_)) =>
            {
                SharedEvent::with_json(decision.event, json)
            }
            _ => SharedEvent::new(decision.event),
        };
        let outcome = self
            .execute(
                &shared,
                &pk,
                &token,
                jobs,
                decision.plan,
                false,
                payload,
                &held,
            )
            .await?;
        Ok((outcome, dropped))
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

    /// Re-runs a stored event against the current registry. Modules whose job for the event
    /// is queued, running, succeeded or cancelled are kept; the others (failed jobs, modules
    /// that did not match before) are dispatched, cooldowns applying unless `force`. A dry
    /// run reads only and answers the plan.
    #[instrument(skip_all, fields(source = %source, event_id = %id))]
    pub async fn replay(
        &self,
        source: &str,
        id: &str,
        force: bool,
        dry_run: bool,
    ) -> Result<Replay, DispatchError> {
        let now = self.clock.now();
        let now_s = now.unix_timestamp();
        let pk = keys::event(source, id);
        let Some(record) = self.events.get_event(&pk).await? else {
            return Ok(Replay::Missing);
        };
        if record.expires_at <= now_s {
            return Ok(Replay::Missing);
        }
        let Some(event) = self.events.load_event(&pk).await? else {
            return Ok(Replay::NotStored);
        };
        let active = self.registry.current().await;
        let registry = &active.registry;
        let scoped = self.scoped_settings(&event).await?;
        let event = self.with_pr_files(registry, &event).await.into_owned();
        let decision = self.decide(registry, &event, &scoped);
        let ids: Vec<String> = record.jobs.iter().map(|j| j.job_id.clone()).collect();
        let statuses: HashMap<String, JobStatus> = if ids.is_empty() {
            HashMap::new()
        } else {
            self.jobs
                .get_jobs(&ids)
                .await?
                .into_iter()
                .map(|j| (j.job_id, j.status))
                .collect()
        };
        let kept: Vec<JobRef> = record
            .jobs
            .iter()
            .filter(|j| {
                statuses.get(&j.job_id).is_some_and(|st| {
                    matches!(
                        st,
                        JobStatus::Queued
                            | JobStatus::Running
                            | JobStatus::Succeeded
                            | JobStatus::Cancelled
                    )
                })
            })
            .map(|j| JobRef {
                dispatched: true,
                ..j.clone()
            })
            .collect();
        if dry_run {
            let mut plan = decision.plan;
            let todo: Vec<Planned> = plan
                .matched
                .into_iter()
                .filter(|m| !kept.iter().any(|j| j.module == m.module))
                .collect();
            let cooling = if force {
                vec![None; todo.len()]
            } else {
                let pairs: Vec<(String, String)> = todo
                    .iter()
                    .map(|m| {
                        let entity = keys::cooldown_entity(source, &m.entity);
                        (m.module.clone(), entity.into_owned())
                    })
                    .collect();
                let held = self.claims.cooldowns(&pairs, true, now).await?;
                // A cooldown this event's own job set does not hold it back.
                todo.iter()
                    .zip(held)
                    .map(|(m, held)| {
                        held.filter(|c| {
                            m.cooldown.is_some() && c.job_id != keys::job_id(source, id, &m.module)
                        })
                        .map(|c| c.until)
                    })
                    .collect()
            };
            let mut dispatch = Vec::new();
            for (m, until) in todo.iter().zip(cooling) {
                match until {
                    Some(u) => plan.skipped.push(Skip {
                        module: m.module.clone(),
                        reason: "cooldown".into(),
                        detail: Some(format!("cooldown until {u} (unix) for {}", m.entity)),
                    }),
                    None => dispatch.push(JobOut {
                        module: m.module.clone(),
                        job_id: keys::job_id(source, id, &m.module),
                    }),
                }
            }
            return Ok(Replay::Planned(ReplayPlan {
                event_id: id.to_owned(),
                dispatch,
                kept: kept.iter().map(JobOut::from).collect(),
                skipped: plan.skipped,
            }));
        }
        let token = match self
            .events
            .reopen(&pk, now_s + secs(self.settings.lease), now)
            .await?
        {
            Reopened::Taken { token, .. } => token,
            Reopened::Missing => return Ok(Replay::Missing),
            Reopened::InProgress { retry_after } => {
                return Ok(Replay::Done(Outcome::InProgress { retry_after }));
            }
        };
        // The stored event stays where it is.
        let payload = match record.payload_ref.clone() {
            Some(reference) => Payload::Stored(reference),
            None => Payload::None,
        };
        let outcome = self
            .execute(
                &SharedEvent::new(decision.event),
                &pk,
                &token,
                kept,
                decision.plan,
                force,
                payload,
                &[],
            )
            .await?;
        Ok(Replay::Done(outcome))
    }

    /// Claims, invokes and records the outcome of a plan whose reservation `token` holds;
    /// `jobs` are the event's jobs that are kept as they are.
    #[allow(clippy::too_many_arguments)]
    async fn execute(
        &self,
        shared: &SharedEvent,
        pk: &str,
        token: &str,
        mut jobs: Vec<JobRef>,
        plan: routing::Plan,
        force: bool,
        payload: Payload,
        held: &[((String, String), Cooling)],
    ) -> Result<Outcome, DispatchError> {
        let event: &Event = &shared.event;
        let now = self.clock.now();
        let now_s = now.unix_timestamp();
        let mut skipped = plan.skipped;
        // Modules whose cooldown the look before the claim found held by another job: skipped
        // without a write.
        let mut todo: Vec<Planned> = Vec::new();
        for m in plan
            .matched
            .into_iter()
            .filter(|m| !jobs.iter().any(|j| j.module == m.module))
        {
            let own = keys::job_id(&event.source, &event.id, &m.module);
            let entity = keys::cooldown_entity(&event.source, &m.entity);
            let holder = held.iter().find(|((module, e), c)| {
                *module == m.module && *e == *entity && c.job_id != own && c.until > now_s
            });
            match holder {
                Some((_, c)) if m.cooldown.is_some() && !force => {
                    skipped.push(cooling_skip(&m, Some(c.until)));
                }
                _ => todo.push(m),
            }
        }

        let created_at = rfc3339(now);
        let claims: Vec<Claim> = todo
            .iter()
            .map(|m| Claim {
                job: JobRecord {
                    pk: String::new(),
                    sk: keys::JOB_SK.into(),
                    job_id: keys::job_id(&event.source, &event.id, &m.module),
                    module: m.module.clone(),
                    function: match m.pull {
                        Some(_) => PULL_FUNCTION.into(),
                        None => self.settings.function_for(m),
                    },
                    event_source: event.source.clone(),
                    event_id: event.id.clone(),
                    entity: m.entity.clone(),
                    trigger: m.kind.into(),
                    status: JobStatus::Queued,
                    attempts: 1,
                    created_at: created_at.clone(),
                    started_at: None,
                    finished_at: None,
                    error: None,
                    output: None,
                    cancel_requested: false,
                    journal: Vec::new(),
                    lease_holder: None,
                    lease_expires_at: None,
                    max_attempts: m.pull.map(|p| p.max_attempts),
                    expires_at: now_s + secs(self.settings.job_ttl),
                },
                cooldown_until: if force {
                    None
                } else {
                    m.cooldown.map(|d| now_s + secs(d))
                },
            })
            .collect();
        // The claims and the stored event go out together (one round trip). The event is
        // stored once per delivery, only now that the reservation holds, and never again by
        // a resumed attempt (it finds the reference on the event item).
        let claim = async {
            if claims.is_empty() {
                Ok(ClaimOutcome::default())
            } else {
                self.claims.claim(&claims, now).await
            }
        };
        let store = async {
            match payload {
                Payload::Stored(reference) => Ok(Some(reference)),
                Payload::None => Ok(None),
                Payload::Store(None) => Ok(None),
                Payload::Store(Some(json)) => {
                    let key = keys::event_payload(&event.source, &event.id, &event.body_digest);
                    self.payloads
                        .put_payload(&key, &json, now_s + secs(self.settings.event_ttl))
                        .await
                        .map(Some)
                }
            }
        };
        let (claimed, stored_event) = futures::future::try_join(claim, store).await?;
        for &(i, until) in &claimed.cooling {
            skipped.push(cooling_skip(&todo[i], until));
        }
        for &i in &claimed.already {
            jobs.push(JobRef {
                module: todo[i].module.clone(),
                job_id: claims[i].job.job_id.clone(),
                dispatched: true,
            });
        }

        // Each module's context (after the context filter) and its JSON. The event, the bulk
        // of every context, is shared and written to JSON once.
        let mut prepared: Vec<(usize, ModuleContext, Result<Vec<u8>, FanoutError>)> = Vec::new();
        for &i in &claimed.claimed {
            let planned = &todo[i];
            let job = &claims[i].job;
            let mut context = ModuleContext {
                job_id: job.job_id.clone(),
                module: planned.module.clone(),
                function: job.function.clone(),
                trigger: TriggerRef {
                    kind: planned.kind.into(),
                    index: planned.trigger,
                },
                entity: planned.entity.clone(),
                config: planned.config.clone(),
                event: shared.event(),
                payload_ref: None,
                report: planned.report,
            };
            if !self.hooks.context_filter.is_empty() {
                let out = self.hooks.context_filter.apply(context);
                if let Some(f) = out.error {
                    warn!(handler = f.handler, failure = ?f.kind, "context filter failed; using the last accepted context");
                }
                context = out.value;
            }
            let bytes = shared
                .context_json(&context)
                .map_err(|e| FanoutError::Invoke {
                    function: context.function.clone(),
                    message: format!("context did not serialize: {e}"),
                });
            prepared.push((i, context, bytes));
        }
        // Contexts over the async invoke limit carry their payload by reference: stored
        // compressed in the table once per distinct payload, loaded by the module runtime.
        let limit = self.settings.max_invoke_bytes;
        let mut stored: HashMap<String, Result<PayloadRef, String>> = HashMap::new();
        for (i, context, bytes) in &mut prepared {
            // A pull job's context waits in its queue: it carries the stored event by
            // reference (the API puts the payload back in when a worker leases it), so the
            // queue item stays small.
            let queued = todo[*i].pull.is_some() && stored_event.is_some();
            if !queued && !matches!(bytes, Ok(b) if b.len() > limit) {
                continue;
            }
            // The delivery's stored event serves every context that shares it (only without
            // an event filter is the shared event the stored, received one); a context
            // filter's replacement is stored on its own, once per distinct event.
            let received =
                self.hooks.event_filter.is_empty() && Arc::ptr_eq(&context.event, &shared.event);
            let reference = match &stored_event {
                Some(reference) if received => Ok(reference.clone()),
                _ => {
                    let json = serde_json::to_vec(&*context.event).unwrap_or_default();
                    let digest = crate::event::body_digest(&json);
                    if !stored.contains_key(&digest) {
                        let hex = digest.trim_start_matches("xxh3:");
                        let key = format!("{}#{}#{}", event.source, event.id, &hex[..16]);
                        let result = self
                            .payloads
                            .put_payload(&key, &json, now_s + secs(self.settings.event_ttl))
                            .await
                            .map_err(|e| e.to_string());
                        stored.insert(digest.clone(), result);
                    }
                    stored[&digest].clone()
                }
            };
            *bytes = match reference {
                Ok(reference) => {
                    Arc::make_mut(&mut context.event).payload = Default::default();
                    context.payload_ref = Some(reference);
                    match serde_json::to_vec(&*context) {
                        Ok(b) if b.len() > limit => Err(FanoutError::TooLarge {
                            bytes: b.len(),
                            limit,
                        }),
                        Ok(b) => Ok(b),
                        Err(e) => Err(FanoutError::Invoke {
                            function: context.function.clone(),
                            message: format!("context did not serialize: {e}"),
                        }),
                    }
                }
                Err(e) => Err(FanoutError::Invoke {
                    function: context.function.clone(),
                    message: format!("storing the large payload failed: {e}"),
                }),
            };
        }
        let reporting: Vec<(&Planned, &JobRecord)> = prepared
            .iter()
            .map(|(i, _, _)| (&todo[*i], &claims[*i].job))
            .collect();
        self.report_queued(event, &reporting).await;
        let invokes = prepared.into_iter().map(|(i, context, bytes)| {
            let context = Arc::new(context);
            let pull = todo[i].pull;
            let job = &claims[i].job;
            async move {
                let result = match (bytes, pull) {
                    // A pull module's "invoke" is putting the job in its queue for workers.
                    (Ok(bytes), Some(pull)) => self
                        .queue
                        .enqueue(job, &bytes, pull, now)
                        .await
                        .map_err(|e| FanoutError::Invoke {
                            function: PULL_FUNCTION.into(),
                            message: format!("queueing the job failed: {e}"),
                        }),
                    (Ok(bytes), None) => self.fanout.invoke(&context.function, bytes).await,
                    (Err(e), _) => Err(e),
                };
                (i, result, context)
            }
        });
        let results = futures::future::join_all(invokes).await;

        let mut failed_jobs = Vec::new();
        let mut failed = Vec::new();
        for (i, result, context) in results {
            let job = &claims[i].job;
            match result {
                Ok(()) => {
                    jobs.push(JobRef {
                        module: job.module.clone(),
                        job_id: job.job_id.clone(),
                        dispatched: true,
                    });
                    log_failures(self.hooks.module_dispatched.dispatch(&ModuleDispatched {
                        source: event.source.clone(),
                        event_id: event.id.clone(),
                        module: job.module.clone(),
                        job_id: job.job_id.clone(),
                        context,
                    }));
                }
                Err(e) => {
                    error!(module = %job.module, job_id = %job.job_id, error = %e, "invoke failed");
                    failed_jobs.push((job.job_id.clone(), e.to_string()));
                    failed.push(JobOut {
                        module: job.module.clone(),
                        job_id: job.job_id.clone(),
                    });
                    jobs.push(JobRef {
                        module: job.module.clone(),
                        job_id: job.job_id.clone(),
                        dispatched: false,
                    });
                }
            }
        }

        let status = if failed_jobs.is_empty() {
            EventStatus::Completed
        } else {
            EventStatus::Failed
        };
        let finish = Finish {
            status,
            jobs: jobs.clone(),
            skipped: skipped.clone(),
            failed_jobs,
            payload_ref: stored_event,
        };
        if let Err(e) = self.events.finish(pk, token, &finish, now).await {
            // The invokes went out; answering an error would only make the sender resend
            // what is already running. The event stays in progress until its lease ends.
            error!(error = %e, "recording the outcome failed after fan-out");
        }
        let dispatched = Dispatched {
            event_id: event.id.clone(),
            jobs: jobs
                .iter()
                .filter(|j| j.dispatched)
                .map(|j| JobOut {
                    module: j.module.clone(),
                    job_id: j.job_id.clone(),
                })
                .collect(),
            skipped,
            failed,
        };
        info!(
            jobs = dispatched.jobs.len(),
            skipped = dispatched.skipped.len(),
            failed = dispatched.failed.len(),
            "dispatched"
        );
        for skip in &dispatched.skipped {
            log_failures(self.hooks.module_skipped.dispatch(&ModuleSkipped {
                source: event.source.clone(),
                event_id: event.id.clone(),
                module: skip.module.clone(),
                reason: skip.reason.clone(),
                detail: skip.detail.clone(),
            }));
        }
        let outcome = if dispatched.failed.is_empty() {
            Outcome::Dispatched(dispatched)
        } else {
            Outcome::Incomplete(dispatched)
        };
        Ok(outcome)
    }
}

/// What [`Dispatcher::execute`] does with the delivery's event JSON.
enum Payload {
    /// Store it (a first attempt); `None` when it did not serialize.
    Store(Option<Vec<u8>>),
    /// An earlier attempt stored it here.
    Stored(PayloadRef),
    /// Not kept (an event stored before there was anything to keep).
    None,
}

/// The skip of a module whose cooldown another job holds (until `until`, when known).
fn cooling_skip(m: &Planned, until: Option<i64>) -> Skip {
    let detail = match until.and_then(|u| time::OffsetDateTime::from_unix_timestamp(u).ok()) {
        Some(t) => format!(
            "cooldown until {:02}:{:02}:{:02}Z for {}",
            t.hour(),
            t.minute(),
            t.second(),
            m.entity
        ),
        None => format!("cooldown held by another event for {}", m.entity),
    };
    Skip {
        module: m.module.clone(),
        reason: "cooldown".into(),
        detail: Some(detail),
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

/// What a replay would do (dry run).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayPlan {
    /// The delivery id.
    pub event_id: String,
    /// Modules that would be dispatched, with the job ids they would use.
    pub dispatch: Vec<JobOut>,
    /// Jobs kept as they are (queued, running, succeeded or cancelled).
    pub kept: Vec<JobOut>,
    /// Modules that listen for the event but would not run, with reasons.
    pub skipped: Vec<Skip>,
}

/// The answer of [`Dispatcher::replay`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay {
    /// No such event (or it expired).
    Missing,
    /// The event item has no stored payload (recorded before payloads were kept).
    NotStored,
    /// A dry run's plan.
    Planned(ReplayPlan),
    /// What the replay dispatched.
    Done(Outcome),
}
