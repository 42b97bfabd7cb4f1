//! Replay: a stored event run again against the current registry, or a dry run that says
//! what would run. Jobs of the event that are queued, running, succeeded or cancelled are
//! kept; the others (failed jobs, modules that did not match before) are dispatched,
//! cooldowns applying unless `force`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use tracing::instrument;

use super::execute::Payload;
use super::{DispatchError, Dispatcher, JobOut, Outcome, secs};
use crate::context::SharedEvent;
use crate::routing::{Planned, Skip};
use crate::store::{EventRecord, JobRef, JobStatus, Reopened, ids};

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
impl Dispatcher {
    /// Re-runs a stored event against the current registry; a dry run reads only and
    /// answers the plan.
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
        let record = match self.events.get_event(source, id).await? {
            Some(record) if record.expires_at > now_s => record,
            _ => return Ok(Replay::Missing),
        };
        let Some(event) = self.events.load_event(source, id).await? else {
            return Ok(Replay::NotStored);
        };
        let active = self.registry.current().await;
        let registry = &active.registry;
        let scoped = self.scoped_settings(&event).await?;
        let event = self.with_pr_files(registry, &event).await.into_owned();
        let decision = self.decide(registry, &event, &scoped);
        let kept = self.kept_jobs(&record).await?;
        if dry_run {
            let plan = self
                .dry_run(source, id, decision.plan, &kept, force)
                .await?;
            return Ok(Replay::Planned(plan));
        }
        let lease_until = now_s + secs(self.settings.lease);
        let token = match self.events.reopen(source, id, lease_until, now).await? {
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
        let shared = SharedEvent::new(decision.event);
        let run = super::execute::Run::new(&shared, &token, kept, force);
        let outcome = self.execute(run, decision.plan, payload, &[]).await?;
        Ok(Replay::Done(outcome))
    }

    /// The event's jobs a replay keeps as they are: queued, running, succeeded or
    /// cancelled (one batch read of their status).
    async fn kept_jobs(&self, record: &EventRecord) -> Result<Vec<JobRef>, DispatchError> {
        let ids: Vec<String> = record.jobs.iter().map(|j| j.job_id.clone()).collect();
        let statuses: HashMap<String, JobStatus> = if ids.is_empty() {
            HashMap::new()
        } else {
            let jobs = self.jobs.get_jobs(&ids).await?;
            jobs.into_iter().map(|j| (j.job_id, j.status)).collect()
        };
        let keeps = |j: &&JobRef| {
            statuses.get(&j.job_id).is_some_and(|st| {
                matches!(
                    st,
                    JobStatus::Queued
                        | JobStatus::Running
                        | JobStatus::Succeeded
                        | JobStatus::Cancelled
                )
            })
        };
        let kept = record.jobs.iter().filter(keeps).map(|j| JobRef {
            dispatched: true,
            ..j.clone()
        });
        Ok(kept.collect())
    }

    /// What a replay of `plan` would dispatch: the modules without a kept job whose
    /// cooldown is free (or `force`); a cooldown this event's own job set does not hold it
    /// back.
    async fn dry_run(
        &self,
        source: &str,
        id: &str,
        mut plan: crate::routing::Plan,
        kept: &[JobRef],
        force: bool,
    ) -> Result<ReplayPlan, DispatchError> {
        let todo: Vec<Planned> = (plan.matched.into_iter())
            .filter(|m| !kept.iter().any(|j| j.module == m.module))
            .collect();
        let cooling: Vec<Option<i64>> = if force {
            vec![None; todo.len()]
        } else {
            let pairs: Vec<(String, String)> = (todo.iter())
                .map(|m| {
                    (
                        m.module.clone(),
                        ids::cooldown_entity(source, &m.entity).into_owned(),
                    )
                })
                .collect();
            let held = self
                .claims
                .cooldowns(&pairs, true, self.clock.now())
                .await?;
            let own = |m: &Planned| ids::job_id(source, id, &m.module);
            (todo.iter().zip(held))
                .map(|(m, held)| {
                    held.filter(|c| m.cooldown.is_some() && c.job_id != own(m))
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
                    job_id: ids::job_id(source, id, &m.module),
                }),
            }
        }
        Ok(ReplayPlan {
            event_id: id.to_owned(),
            dispatch,
            kept: kept.iter().map(JobOut::from).collect(),
            skipped: plan.skipped,
        })
    }
}
