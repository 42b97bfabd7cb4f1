//! Executing a plan whose reservation holds, in named steps: skip modules whose cooldown
//! another job was seen holding ([`Dispatcher::unheld`]), build the claims
//! ([`Dispatcher::claims_for`]), claim them and store the event in one round trip
//! ([`Dispatcher::claim_and_store`]), write each module's context
//! ([`Dispatcher::contexts`], [`Dispatcher::by_reference`]), send them
//! ([`Dispatcher::send`]) and record the outcome ([`Dispatcher::record`]).

use std::collections::HashMap;
use std::sync::Arc;

use time::OffsetDateTime;
use tracing::{error, info, warn};

use super::{DispatchError, Dispatched, Dispatcher, JobOut, Outcome, PULL_FUNCTION, secs};
use crate::context::{ModuleContext, SharedEvent, TriggerRef};
use crate::errors::error_chain;
use crate::event::Event;
use crate::fanout::FanoutError;
use crate::hooks::{ModuleDispatched, ModuleSkipped, log_failures};
use crate::routing::{Plan, Planned, Skip};
use crate::store::{
    Claim, ClaimOutcome, Closing, Cooling, EventRecord, EventStatus, Finish, JobRecord, JobRef,
    JobStatus, PackedPayload, PayloadRef, bounded, ids, rfc3339,
};

/// Seconds of its reservation's lease an attempt must have left to write its outcome ahead
/// with a plain put ([`Closing`]): more than a store call can take (10 s at most, retries
/// included), so the put cannot land after another attempt took the event over.
const CLOSING_MARGIN_SECONDS: i64 = 30;

/// What [`Dispatcher::execute`] does with the delivery's event JSON.
pub(super) enum Payload {
    /// Store it (a first attempt); `None` when it did not serialize.
    Store(Option<Vec<u8>>),
    /// An earlier attempt stored it here.
    Stored(PayloadRef),
    /// Not kept (an event stored before there was anything to keep).
    None,
}

/// A cooldown seen held before the claim: (module, entity) and its holder.
pub(super) type Held = ((String, String), Cooling);

/// One execution: the event, the reservation it runs under, and the event's jobs (those
/// kept as they are, then every job this run settles).
pub(super) struct Run<'a> {
    shared: &'a SharedEvent,
    token: &'a str,
    jobs: Vec<JobRef>,
    force: bool,
    /// The record this run's reservation created the event item from, if it did.
    reserved: Option<&'a EventRecord>,
}

impl<'a> Run<'a> {
    /// A run of `shared` under the reservation `token` of its event item, keeping `jobs`;
    /// `force` ignores cooldowns (a forced replay).
    pub(super) fn new(
        shared: &'a SharedEvent,
        token: &'a str,
        jobs: Vec<JobRef>,
        force: bool,
    ) -> Self {
        Self {
            shared,
            token,
            jobs,
            force,
            reserved: None,
        }
    }

    /// This run's reservation created the event item from `record` (no item was there):
    /// its outcome may be written ahead ([`Closing`]).
    pub(super) fn created_from(self, record: &'a EventRecord) -> Self {
        Self {
            reserved: Some(record),
            ..self
        }
    }

    fn event(&self) -> &'a Event {
        &self.shared.event
    }

    fn settle(&mut self, job: &JobRecord, dispatched: bool) {
        self.jobs.push(JobRef {
            module: job.module.clone(),
            job_id: job.job_id.clone(),
            dispatched,
        });
    }
}

/// A claimed module's context and its JSON (or why it cannot be sent); `usize` indexes the
/// run's modules and claims.
type Prepared = (usize, ModuleContext, Result<Vec<u8>, FanoutError>);

/// What [`Dispatcher::send`] sends: the run's modules, their claims, and the stored event
/// still to write (see [`Dispatcher::claim_and_store`]).
struct Sent<'a> {
    todo: &'a [Planned],
    claims: &'a [Claim],
    pending: Option<PackedPayload>,
    /// The outcome to write ahead with the pending stored event, if it may be.
    closing: Option<Finish>,
}

/// A job whose context did not go out.
struct Failure {
    module: String,
    job_id: String,
    error: String,
}

impl Dispatcher {
    /// Claims, invokes and records the outcome of `plan` for `run`.
    pub(super) async fn execute(
        &self,
        mut run: Run<'_>,
        plan: Plan,
        payload: Payload,
        held: &[Held],
    ) -> Result<Outcome, DispatchError> {
        let now = self.clock.now();
        let event = run.event();
        let mut skipped = plan.skipped;
        let todo = self.unheld(&run, plan.matched, held, now, &mut skipped);
        let claims = self.claims_for(event, &todo, run.force, now);
        // A delivery for one pull module writes its stored event with the job's queue item
        // (one call less; the reference is known before the write), and maybe its outcome
        // too ([`Dispatcher::closing`]). With two or more, a worker could lease a job before
        // the event it names was written: not deferred.
        let defer = matches!(todo.as_slice(), [only] if only.pull.is_some());
        let (claimed, stored_event, pending) =
            (self.claim_and_store(event, &claims, payload, defer, now)).await?;
        for &(i, until) in &claimed.cooling {
            skipped.push(cooling_skip(&todo[i], until));
        }
        for &i in &claimed.already {
            run.settle(&claims[i].job, true);
        }
        let by_ref = stored_event.is_some();
        let mut prepared = self.contexts(run.shared, &todo, &claims, &claimed.claimed, by_ref);
        (self.by_reference(run.shared, &todo, &mut prepared, stored_event.as_ref(), now)).await;
        let reporting: Vec<(&Planned, &JobRecord)> = (prepared.iter())
            .map(|(i, _, _)| (&todo[*i], &claims[*i].job))
            .collect();
        self.report_queued(event, &reporting).await;
        let closing = self.closing(&run, &todo, &claims, &prepared, pending.as_ref(), &skipped);
        let sent = Sent {
            todo: &todo,
            claims: &claims,
            pending,
            closing,
        };
        let (failures, stored, closed) = self.send(&mut run, sent, prepared, now).await;
        let stored_event = stored_event.filter(|_| stored);
        Ok(self
            .record(run, skipped, failures, stored_event, closed, now)
            .await)
    }

    /// The outcome a delivery for one pull module can write ahead with its queue item and
    /// its stored event (one call less than recording it after): only when this run's
    /// reservation created the event item, that lease has [`CLOSING_MARGIN_SECONDS`] left,
    /// and the one job's context is ready. It is the finish [`Dispatcher::record`] would
    /// write once the queue item is in; if anything turns out otherwise, the record writes
    /// the real one over it.
    fn closing(
        &self,
        run: &Run<'_>,
        todo: &[Planned],
        claims: &[Claim],
        prepared: &[Prepared],
        pending: Option<&PackedPayload>,
        skipped: &[Skip],
    ) -> Option<Finish> {
        let reserved = run.reserved?;
        let pending = pending?;
        let [(i, _, Ok(_))] = prepared else {
            return None;
        };
        let now_s = self.clock.now().unix_timestamp();
        if todo[*i].pull.is_none() || now_s + CLOSING_MARGIN_SECONDS >= reserved.lease_expires_at {
            return None;
        }
        let job = &claims[*i].job;
        let mut jobs = run.jobs.clone();
        jobs.push(JobRef {
            module: job.module.clone(),
            job_id: job.job_id.clone(),
            dispatched: true,
        });
        Some(outcome(jobs, skipped, &[], Some(pending.reference.clone())))
    }

    /// The matched modules without a job kept from before, but for those whose cooldown
    /// the look before the claim found held by another job: those are skipped without a
    /// write (unless the run is forced).
    fn unheld(
        &self,
        run: &Run<'_>,
        matched: Vec<Planned>,
        held: &[Held],
        now: OffsetDateTime,
        skipped: &mut Vec<Skip>,
    ) -> Vec<Planned> {
        let event = run.event();
        let now_s = now.unix_timestamp();
        let mut todo = Vec::new();
        for m in matched {
            if run.jobs.iter().any(|j| j.module == m.module) {
                continue;
            }
            let own = ids::job_id(&event.source, &event.id, &m.module);
            let entity = ids::cooldown_entity(&event.source, &m.entity);
            let holder = held.iter().find(|((module, e), c)| {
                *module == m.module && *e == *entity && c.job_id != own && c.until > now_s
            });
            match holder {
                Some((_, c)) if m.cooldown.is_some() && !run.force => {
                    skipped.push(cooling_skip(&m, Some(c.until)));
                }
                _ => todo.push(m),
            }
        }
        todo
    }

    /// One claim per module: its job, `queued`, and its cooldown unless `force`.
    fn claims_for(
        &self,
        event: &Event,
        todo: &[Planned],
        force: bool,
        now: OffsetDateTime,
    ) -> Vec<Claim> {
        let now_s = now.unix_timestamp();
        let created_at = rfc3339(now);
        let claim = |m: &Planned| Claim {
            job: JobRecord {
                job_id: ids::job_id(&event.source, &event.id, &m.module),
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
            cooldown_until: match force {
                true => None,
                false => m.cooldown.map(|d| now_s + secs(d)),
            },
            pull: m.pull,
        };
        todo.iter().map(claim).collect()
    }

    /// The claims and the stored event, in one round trip. The event is stored once per
    /// delivery, only now that the reservation holds, and never again by a resumed attempt
    /// (it finds the reference on the event item). With `defer` it is only packed here,
    /// and answered as pending: [`Dispatcher::send`] writes it with a queue item.
    async fn claim_and_store(
        &self,
        event: &Event,
        claims: &[Claim],
        payload: Payload,
        defer: bool,
        now: OffsetDateTime,
    ) -> Result<(ClaimOutcome, Option<PayloadRef>, Option<PackedPayload>), DispatchError> {
        let claim = async {
            match claims.is_empty() {
                true => Ok(ClaimOutcome::default()),
                false => self.claims.claim(claims, now).await,
            }
        };
        let expires_at = now.unix_timestamp() + secs(self.settings.event_ttl);
        if let (true, Payload::Store(Some(json))) = (defer, &payload) {
            let key = ids::event_payload(&event.source, &event.id, &event.body_digest);
            // Packed before the claim: a failure here has dispatched nothing.
            let packed = self.payloads.pack_payload(&key, json, expires_at)?;
            let claimed = claim.await?;
            return Ok((claimed, Some(packed.reference.clone()), Some(packed)));
        }
        let store = async {
            match payload {
                Payload::Stored(reference) => Ok(Some(reference)),
                Payload::None | Payload::Store(None) => Ok(None),
                Payload::Store(Some(json)) => {
                    let key = ids::event_payload(&event.source, &event.id, &event.body_digest);
                    self.payloads
                        .put_payload(&key, &json, expires_at)
                        .await
                        .map(Some)
                }
            }
        };
        let (claimed, stored) = futures::future::try_join(claim, store).await?;
        Ok((claimed, stored, None))
    }

    /// Each claimed module's context (after the context filter) and its JSON. The event,
    /// the bulk of every context, is shared and written to JSON once. With `by_ref` (the
    /// event is stored), a pull job's JSON is left empty: [`Dispatcher::by_reference`]
    /// writes it, naming the stored event, and the whole one would be thrown away.
    fn contexts(
        &self,
        shared: &SharedEvent,
        todo: &[Planned],
        claims: &[Claim],
        claimed: &[usize],
        by_ref: bool,
    ) -> Vec<Prepared> {
        let context = |i: usize| {
            let (planned, job) = (&todo[i], &claims[i].job);
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
            let bytes = match by_ref && planned.pull.is_some() {
                true => Ok(Vec::new()),
                false => (shared.context_json(&context))
                    .map_err(|e| unsent(&context, format!("context did not serialize: {e}"))),
            };
            (i, context, bytes)
        };
        claimed.iter().map(|&i| context(i)).collect()
    }

    /// Contexts over the async invoke limit carry their payload by reference, stored
    /// compressed once per distinct payload and loaded by the module runtime. A pull job's
    /// context waits in its queue: it carries the stored event by reference too (the API
    /// puts the payload back when a worker leases it), so the queue item stays small.
    async fn by_reference(
        &self,
        shared: &SharedEvent,
        todo: &[Planned],
        prepared: &mut [Prepared],
        stored_event: Option<&PayloadRef>,
        now: OffsetDateTime,
    ) {
        let limit = self.settings.max_invoke_bytes;
        let mut stored: HashMap<String, Result<PayloadRef, String>> = HashMap::new();
        for (i, context, bytes) in prepared {
            let queued = todo[*i].pull.is_some() && stored_event.is_some();
            if !queued && !matches!(bytes, Ok(b) if b.len() > limit) {
                continue;
            }
            // The delivery's stored event serves every context that shares it (only without
            // an event filter is the shared event the stored, received one); a context
            // filter's replacement is stored on its own, once per distinct event.
            let received =
                self.hooks.event_filter.is_empty() && Arc::ptr_eq(&context.event, &shared.event);
            let reference = match stored_event {
                Some(reference) if received => Ok(reference.clone()),
                _ => {
                    let event = &shared.event;
                    (self.store_context_event(event, context, &mut stored, now)).await
                }
            };
            *bytes = match reference {
                Ok(reference) => referencing(context, reference, limit),
                Err(e) => Err(unsent(
                    context,
                    format!("storing the large payload failed: {e}"),
                )),
            };
        }
    }

    /// Stores the event of `context` (a context filter's own), once per distinct event,
    /// under the delivery `event`'s key.
    async fn store_context_event(
        &self,
        event: &Event,
        context: &ModuleContext,
        stored: &mut HashMap<String, Result<PayloadRef, String>>,
        now: OffsetDateTime,
    ) -> Result<PayloadRef, String> {
        let json = serde_json::to_vec(&*context.event).unwrap_or_default();
        let digest = crate::event::body_digest(&json);
        if let Some(done) = stored.get(&digest) {
            return done.clone();
        }
        let hex = digest.trim_start_matches("xxh3:");
        let (source, id) = (&event.source, &event.id);
        let key = format!("{source}#{id}#{}", &hex[..16]);
        let expires_at = now.unix_timestamp() + secs(self.settings.event_ttl);
        let result =
            (self.payloads.put_payload(&key, &json, expires_at).await).map_err(|e| e.to_string());
        stored.insert(digest, result.clone());
        result
    }

    /// Sends every prepared context, concurrently: an asynchronous invoke of the module's
    /// function, or, for a pull module, its job into the queue (the first one with the
    /// pending stored event, if any, and the outcome to write ahead). Settles each job on
    /// `run`; answers the jobs that did not go out, whether the stored event is stored, and
    /// the outcome written ahead, if it was.
    async fn send(
        &self,
        run: &mut Run<'_>,
        sent: Sent<'_>,
        prepared: Vec<Prepared>,
        now: OffsetDateTime,
    ) -> (Vec<Failure>, bool, Option<Finish>) {
        let Sent {
            todo,
            claims,
            pending,
            closing,
        } = sent;
        let ahead = (run.reserved.zip(closing.as_ref())).map(|(reserved, finish)| Closing {
            reserved,
            token: run.token,
            finish,
        });
        let carrier = (pending.as_ref()).and_then(|_| {
            (prepared.iter()).position(|(i, _, bytes)| todo[*i].pull.is_some() && bytes.is_ok())
        });
        let pending_ref = pending.as_ref();
        let invokes = prepared
            .into_iter()
            .enumerate()
            .map(|(n, (i, context, bytes))| async move {
                let job = &claims[i].job;
                let with = pending_ref.filter(|_| carrier == Some(n));
                let result = match (bytes, todo[i].pull) {
                    (Ok(bytes), Some(pull)) => {
                        let queued = match with {
                            Some(packed) => {
                                (self.queue)
                                    .enqueue_with(job, &bytes, pull, now, packed, ahead.as_ref())
                                    .await
                            }
                            None => self.queue.enqueue(job, &bytes, pull, now).await,
                        };
                        queued.map_err(|e| FanoutError::Invoke {
                            function: PULL_FUNCTION.into(),
                            source: format!("queueing the job failed: {}", error_chain(&e)).into(),
                        })
                    }
                    (Ok(bytes), None) => self.fanout.invoke(&context.function, bytes).await,
                    (Err(e), _) => Err(e),
                };
                (job, result, Arc::new(context), with.is_some())
            });
        let event = run.event();
        let mut failures = Vec::new();
        let mut carried = false;
        for (job, result, context, with) in futures::future::join_all(invokes).await {
            carried |= with && result.is_ok();
            run.settle(job, result.is_ok());
            match result {
                Ok(()) => log_failures(self.hooks.module_dispatched.dispatch(&ModuleDispatched {
                    source: event.source.clone(),
                    event_id: event.id.clone(),
                    module: job.module.clone(),
                    job_id: job.job_id.clone(),
                    context,
                })),
                Err(e) => {
                    // The whole chain, bounded: the job's error says why (an SDK error's own
                    // text is only its kind).
                    let error = bounded(&error_chain(&e), 1024);
                    error!(module = %job.module, job_id = %job.job_id, error = %error, "invoke failed");
                    failures.push(Failure {
                        module: job.module.clone(),
                        job_id: job.job_id.clone(),
                        error,
                    });
                }
            }
        }
        let closed = closing.filter(|_| carried);
        // No queue item took the pending stored event (none was claimed, or its write
        // failed): it is written on its own, and not recorded if that fails too.
        let stored = match (&pending, carried) {
            (Some(packed), false) => match self.payloads.put_packed(packed).await {
                Ok(()) => true,
                Err(e) => {
                    error!(error = %error_chain(&e), "storing the event failed after its jobs were queued");
                    false
                }
            },
            _ => true,
        };
        (failures, stored, closed)
    }

    /// Records the outcome on the event item (unless `closed`, the outcome written ahead, is
    /// this one) and tells the hooks what was skipped. A failed write after the invokes went
    /// out is logged, not answered: an error would only make the sender resend what is
    /// already running (the event stays in progress until its lease ends).
    async fn record(
        &self,
        run: Run<'_>,
        skipped: Vec<Skip>,
        failures: Vec<Failure>,
        stored_event: Option<PayloadRef>,
        closed: Option<Finish>,
        now: OffsetDateTime,
    ) -> Outcome {
        let event = run.event();
        let finish = outcome(run.jobs.clone(), &skipped, &failures, stored_event);
        // Written ahead with the queue item, as it stands: not written again.
        let finished = match closed.as_ref() == Some(&finish) {
            true => Ok(()),
            false => {
                (self.events)
                    .finish(&event.source, &event.id, run.token, &finish, now)
                    .await
            }
        };
        if let Err(e) = finished {
            error!(error = %e, "recording the outcome failed after fan-out");
        }
        let out = |module: &str, job_id: &str| JobOut {
            module: module.to_owned(),
            job_id: job_id.to_owned(),
        };
        let dispatched = Dispatched {
            event_id: event.id.clone(),
            jobs: (run.jobs.iter().filter(|j| j.dispatched))
                .map(|j| out(&j.module, &j.job_id))
                .collect(),
            skipped,
            failed: failures.iter().map(|f| out(&f.module, &f.job_id)).collect(),
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
        match dispatched.failed.is_empty() {
            true => Outcome::Dispatched(dispatched),
            false => Outcome::Incomplete(dispatched),
        }
    }
}

/// The finish of an event with `jobs`, `skipped` modules, the jobs whose invoke `failed` and
/// its stored event: `completed` unless some invoke failed.
fn outcome(
    jobs: Vec<JobRef>,
    skipped: &[Skip],
    failed: &[Failure],
    payload_ref: Option<PayloadRef>,
) -> Finish {
    Finish {
        status: match failed.is_empty() {
            true => EventStatus::Completed,
            false => EventStatus::Failed,
        },
        jobs,
        skipped: skipped.to_vec(),
        failed_jobs: (failed.iter())
            .map(|f| (f.job_id.clone(), f.error.clone()))
            .collect(),
        payload_ref,
    }
}

/// Why `context` was not sent.
fn unsent(context: &ModuleContext, message: String) -> FanoutError {
    FanoutError::Invoke {
        function: context.function.clone(),
        source: message.into(),
    }
}

/// `context` with its event's payload replaced by `reference`, as JSON under `limit`.
fn referencing(
    context: &mut ModuleContext,
    reference: PayloadRef,
    limit: usize,
) -> Result<Vec<u8>, FanoutError> {
    Arc::make_mut(&mut context.event).payload = Default::default();
    context.payload_ref = Some(reference);
    match serde_json::to_vec(&*context) {
        Ok(b) if b.len() > limit => Err(FanoutError::TooLarge {
            bytes: b.len(),
            limit,
        }),
        Ok(b) => Ok(b),
        Err(e) => Err(unsent(context, format!("context did not serialize: {e}"))),
    }
}

/// The skip of a module whose cooldown another job holds (until `until`, when known).
fn cooling_skip(m: &Planned, until: Option<i64>) -> Skip {
    let detail = match until.and_then(|u| OffsetDateTime::from_unix_timestamp(u).ok()) {
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
