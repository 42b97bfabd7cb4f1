//! The scheduler: run every minute, it finds the schedule triggers due since its last run,
//! and dispatches each (module, minute) as an event of source `schedule` through the same
//! dispatcher as webhooks (jobs, cooldowns, settings, hooks, fan-out).
//!
//! Exactly once per tick: each (module, minute) is one event, `EVENT#schedule#<module>@<minute>`,
//! and the dispatcher's conditional reservation of that item is the tick's claim, so a
//! duplicate or overlapping invocation finds it taken. Catch-up: after an outage the
//! scheduler runs the missed minutes up to `max_catch_up`; older ticks are recorded as
//! skipped (reason `catch_up_bound`) with one log line.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::json;
use tracing::{error, info, warn};

use crate::dispatch::{DispatchError, Dispatcher, Outcome};
use crate::event::{Event, EventType};
use crate::manifest::{Module, ScheduleTrigger};
use crate::routing::Skip;
use crate::schedule::{minute_text, time_of};
use crate::source::SourceKind;
use crate::store::{EventRecord, EventStatus, SchedulerStore, StoreError, rfc3339};

/// What happened to one tick.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TickOutcome {
    /// Module.
    pub module: String,
    /// The scheduled minute, `YYYY-MM-DDTHH:MMZ`.
    pub minute: String,
    /// `dispatched`, `duplicate`, `in_progress`, `skipped`, `incomplete`, `catch_up_bound`.
    pub outcome: String,
    /// Job id when dispatched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// Skip reason when skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One scheduler run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TickReport {
    /// First minute considered (`YYYY-MM-DDTHH:MMZ`), when any.
    pub from: Option<String>,
    /// Last minute considered.
    pub to: Option<String>,
    /// Every due tick and its outcome.
    pub ticks: Vec<TickOutcome>,
}

/// A scheduler failure: the state was not advanced, the next run retries.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Finds due ticks and dispatches them.
#[derive(Clone)]
pub struct Scheduler {
    dispatcher: Dispatcher,
    store: Arc<dyn SchedulerStore>,
    max_catch_up: i64,
    event_ttl: Duration,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("max_catch_up", &self.max_catch_up)
            .finish_non_exhaustive()
    }
}

/// The event of one tick. Its body is a function of (module, trigger, minute) alone, so two
/// invocations build the same event and the second finds the first's reservation.
pub fn tick_event(
    module: &Module,
    index: usize,
    trigger: &ScheduleTrigger,
    minute: i64,
    received: time::OffsetDateTime,
) -> Event {
    let schedule = &trigger.schedule;
    let payload = json!({
        "module": module.name,
        "trigger": index,
        "scheduled_for": rfc3339(time_of(minute)),
        "scheduled_local": schedule.local_rfc3339(minute),
        "timezone": schedule.zone_name(),
        "cron": trigger.expression,
    });
    let body = payload.to_string();
    Event {
        id: format!("{}@{}", module.name, minute_text(minute)),
        source: "schedule".into(),
        kind: SourceKind::Schedule,
        event_type: EventType::Schedule,
        action: None,
        entity: format!("schedule:{}", module.name),
        repository: None,
        received_at: received,
        body_digest: crate::event::body_digest(body.as_bytes()),
        git_ref: None,
        changed_paths: None,
        changed_paths_truncated: false,
        changed_paths_unknown: None,
        sender: None,
        payload: payload.into(),
    }
}

impl Scheduler {
    /// A scheduler over the dispatcher it shares with webhooks.
    pub fn new(
        dispatcher: Dispatcher,
        store: Arc<dyn SchedulerStore>,
        max_catch_up: u32,
        event_ttl: Duration,
    ) -> Self {
        Self {
            dispatcher,
            store,
            max_catch_up: i64::from(max_catch_up.max(1)),
            event_ttl,
        }
    }

    /// Processes every minute since the last run, up to now.
    pub async fn run(&self) -> Result<TickReport, SchedulerError> {
        let now = self.dispatcher.clock().now();
        let to = now.unix_timestamp().div_euclid(60);
        let from = match self.store.last_tick().await? {
            Some(last) => last + 1,
            None => to,
        };
        let mut report = TickReport::default();
        if from > to {
            return Ok(report);
        }
        report.from = Some(minute_text(from));
        report.to = Some(minute_text(to));
        let registry = self.dispatcher.active_registry().await.registry.clone();
        let run_from = (to - self.max_catch_up + 1).max(from);
        if run_from > from {
            warn!(
                behind_minutes = to - from + 1,
                bound = self.max_catch_up,
                skipped_from = %minute_text(from),
                skipped_to = %minute_text(run_from - 1),
                "scheduler is behind more than its catch-up bound: skipping the oldest ticks"
            );
            for minute in from..run_from {
                for (module, _, trigger) in registry.schedules() {
                    if trigger.schedule.is_due(minute) {
                        self.record_skipped(module, minute, to - from + 1, now)
                            .await?;
                        report.ticks.push(TickOutcome {
                            module: module.name.clone(),
                            minute: minute_text(minute),
                            outcome: "catch_up_bound".into(),
                            job_id: None,
                            reason: Some("catch_up_bound".into()),
                        });
                    }
                }
            }
        }
        let mut failed = None;
        for minute in run_from..=to {
            for (module, index, trigger) in registry.schedules() {
                if !trigger.schedule.is_due(minute) {
                    continue;
                }
                let event = tick_event(module, index, trigger, minute, now);
                let outcome = match self.dispatcher.dispatch(&event).await {
                    Ok(o) => o,
                    Err(DispatchError::Store(e)) => {
                        error!(module = %module.name, minute = %minute_text(minute), error = %e, "tick not dispatched");
                        failed = Some(e);
                        continue;
                    }
                };
                report.ticks.push(describe(module, minute, outcome));
            }
        }
        if let Some(e) = failed {
            // Not advanced: the next run retries these minutes (the reservations keep the
            // ones that went out from running twice).
            return Err(e.into());
        }
        self.store.advance_tick(to, now).await?;
        info!(ticks = report.ticks.len(), from = ?report.from, to = ?report.to, "scheduler run");
        Ok(report)
    }

    async fn record_skipped(
        &self,
        module: &Module,
        minute: i64,
        behind: i64,
        now: time::OffsetDateTime,
    ) -> Result<(), StoreError> {
        let id = format!("{}@{}", module.name, minute_text(minute));
        let now_s = now.unix_timestamp();
        let record = EventRecord {
            source: "schedule".into(),
            event_id: id,
            event_type: "schedule".into(),
            action: None,
            entity: format!("schedule:{}", module.name),
            received_at: rfc3339(now),
            body_digest: String::new(),
            status: EventStatus::Completed,
            lease_expires_at: 0,
            lease_token: None,
            attempts: 0,
            jobs: Vec::new(),
            skipped: vec![Skip {
                module: module.name.clone(),
                reason: "catch_up_bound".into(),
                detail: Some(format!(
                    "the scheduler was {behind} minutes behind; it catches up at most {} minutes",
                    self.max_catch_up
                )),
            }],
            expires_at: now_s + i64::try_from(self.event_ttl.as_secs()).unwrap_or(i64::MAX / 2),
            payload_ref: None,
        };
        self.store.record_skipped_tick(&record).await.map(|_| ())
    }
}

fn describe(module: &Module, minute: i64, outcome: Outcome) -> TickOutcome {
    let mut t = TickOutcome {
        module: module.name.clone(),
        minute: minute_text(minute),
        outcome: String::new(),
        job_id: None,
        reason: None,
    };
    match outcome {
        Outcome::Dispatched(d) if !d.jobs.is_empty() => {
            t.outcome = "dispatched".into();
            t.job_id = d.jobs.first().map(|j| j.job_id.clone());
        }
        Outcome::Dispatched(d) => {
            t.outcome = "skipped".into();
            t.reason = d.skipped.first().map(|s| s.reason.clone());
        }
        Outcome::Incomplete(_) => t.outcome = "incomplete".into(),
        Outcome::Duplicate { .. } => t.outcome = "duplicate".into(),
        Outcome::InProgress { .. } => t.outcome = "in_progress".into(),
        Outcome::Conflict => t.outcome = "conflict".into(),
    }
    t
}
