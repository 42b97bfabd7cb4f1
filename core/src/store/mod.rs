//! The store port: what the dispatcher and the module runtime need from persistence, as
//! small traits split by use, plus the typed records they take and give. Records carry no
//! keys: how an item is addressed is the adapter's business (`switchyard_aws::dynamo`).

pub mod ids;
pub mod usage;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::routing::Skip;

/// A store failure. The request path maps `Unavailable` to 503.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// DynamoDB could not be reached or refused the call.
    #[error("store unavailable during {operation}")]
    Unavailable {
        /// The operation that failed (`reserve`, `claim`, ...).
        operation: &'static str,
        /// The SDK error.
        #[source]
        source: crate::errors::BoxError,
    },
    /// The caller asked for something that cannot be served (a cursor that is not ours).
    #[error("{0}")]
    Invalid(String),
    /// An item did not have the expected shape.
    #[error("item {key} is not a valid record: {reason}")]
    Corrupt {
        /// The item's partition key.
        key: String,
        /// What was wrong.
        reason: String,
    },
}

/// Lifecycle of a delivery's event item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    /// Reserved by an attempt that holds the lease.
    InProgress,
    /// Every matched module was dispatched; redeliveries are duplicates.
    Completed,
    /// Some dispatch failed; a redelivery resumes what did not go out.
    Failed,
}

/// Lifecycle of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Recorded, invoke sent or about to be.
    Queued,
    /// The module claimed it.
    Running,
    /// The module finished without error.
    Succeeded,
    /// The module or its dispatch failed.
    Failed,
    /// Cancelled before or while running.
    Cancelled,
}

impl JobStatus {
    /// The name stored in the table and shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Whether nothing moves the job any more (succeeded, failed or cancelled).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

/// A module's job as recorded on its event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRef {
    /// Module name.
    pub module: String,
    /// Job id.
    pub job_id: String,
    /// Whether the invoke went out.
    pub dispatched: bool,
}

/// The event item: de-duplication reservation and outcome of one delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Source id.
    pub source: String,
    /// Delivery id.
    pub event_id: String,
    /// Event type.
    pub event_type: String,
    /// Action, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Entity key.
    pub entity: String,
    /// RFC 3339 receive time of the first attempt.
    pub received_at: String,
    /// Hex SHA-256 of the body.
    pub body_digest: String,
    /// Where the delivery stands.
    pub status: EventStatus,
    /// Unix seconds until which the current attempt holds the reservation.
    #[serde(default)]
    pub lease_expires_at: i64,
    /// Fencing token of the attempt holding the reservation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_token: Option<String>,
    /// Attempts so far (first delivery and redeliveries that took over).
    #[serde(default)]
    pub attempts: u32,
    /// Jobs created for it.
    #[serde(default)]
    pub jobs: Vec<JobRef>,
    /// Modules skipped, with reasons.
    #[serde(default)]
    pub skipped: Vec<Skip>,
    /// Unix seconds after which the item is garbage (TTL).
    pub expires_at: i64,
    /// Where the normalized event (its payload included) is stored, for replay and for
    /// contexts too large to send inline: written once, in items of its own, after the
    /// reservation holds; recorded here by the finish.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_ref: Option<PayloadRef>,
}

/// A job item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// Job id.
    pub job_id: String,
    /// Module name.
    pub module: String,
    /// Function invoked.
    pub function: String,
    /// Source of the event.
    pub event_source: String,
    /// Delivery id of the event.
    pub event_id: String,
    /// Entity key.
    pub entity: String,
    /// Trigger kind (`webhook`).
    pub trigger: String,
    /// Where the job stands.
    pub status: JobStatus,
    /// Dispatch attempts.
    #[serde(default)]
    pub attempts: u32,
    /// RFC 3339 times.
    pub created_at: String,
    /// When the module claimed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// When it reached a final status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// The error, for failed jobs (bounded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The module's output summary (bounded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<serde_json::Value>,
    /// Set when someone asked to cancel the job.
    #[serde(default)]
    pub cancel_requested: bool,
    /// Log lines the module appended (bounded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub journal: Vec<String>,
    /// Pull jobs: the worker holding (or last holding) the lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_holder: Option<String>,
    /// Pull jobs: when the lease ends unless a heartbeat extends it (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_expires_at: Option<String>,
    /// Pull jobs: how many leases the job may get before it fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// Unix seconds (TTL).
    pub expires_at: i64,
}

/// What starting a job found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOutcome {
    /// It was `queued` and is now `running`.
    Started,
    /// A cancel was requested while it was queued: it is now `cancelled`.
    Cancelled,
    /// It was not `queued` (already running or finished): a duplicate invoke.
    NotQueued,
}

/// Largest journal: lines per job and bytes per line.
pub const JOURNAL_MAX_LINES: usize = 100;
/// Largest journal line, in bytes.
pub const JOURNAL_MAX_LINE_BYTES: usize = 500;

/// Where a stored JSON document (a delivery's event, a context's replaced event) is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayloadRef {
    /// Items `PAYLOAD#{key}` / `PART#nnnn`.
    pub key: String,
    /// Number of parts.
    pub parts: u32,
    /// Size of the JSON, uncompressed.
    pub bytes: usize,
    /// XXH3-128 of the JSON (`xxh3:<hex>`), checked on load: it guards against a torn or
    /// mixed-up read, not an attacker (the table is ours), so the fast hash is enough.
    pub digest: String,
}

/// A JSON document packed for the store and not yet written ([`PayloadStore::pack_payload`]):
/// its reference is known before the write, so a pull job's context can name it and the
/// two go out in one call ([`WorkQueue::enqueue_with`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedPayload {
    /// Where it is once written.
    pub reference: PayloadRef,
    /// When it expires (epoch seconds).
    pub expires_at: i64,
    /// The adapter's bytes, one entry per part ([`PayloadRef::parts`] of them).
    pub parts: Vec<Vec<u8>>,
}

/// Stored JSON documents, compressed (zstd) and split under the 400 KB item limit.
#[async_trait]
pub trait PayloadStore: Send + Sync {
    /// Packs `json` (an event's JSON) for `key`, kept until `expires_at`: compression and
    /// parts, no I/O.
    fn pack_payload(
        &self,
        key: &str,
        json: &[u8],
        expires_at: i64,
    ) -> Result<PackedPayload, StoreError>;
    /// Writes a packed document.
    async fn put_packed(&self, packed: &PackedPayload) -> Result<(), StoreError>;
    /// Stores `json` (an event's JSON) under `key` until `expires_at`.
    async fn put_payload(
        &self,
        key: &str,
        json: &[u8],
        expires_at: i64,
    ) -> Result<PayloadRef, StoreError> {
        let packed = self.pack_payload(key, json, expires_at)?;
        self.put_packed(&packed).await?;
        Ok(packed.reference)
    }
    /// Loads and checks a stored payload's JSON text.
    async fn get_payload(&self, reference: &PayloadRef) -> Result<Vec<u8>, StoreError>;
}

/// What a delivery's reservation found.
#[derive(Debug, Clone, PartialEq)]
pub enum Reservation {
    /// First time seen (or the old item had expired): dispatch everything.
    Fresh {
        /// Fencing token for [`EventStore::finish`].
        token: String,
        /// No item was there at all: the reservation created the event item from the record
        /// it was given, and no earlier attempt under this id left anything on it.
        created: bool,
    },
    /// A failed or abandoned earlier attempt: resume what did not go out.
    Resumed {
        /// Fencing token for [`EventStore::finish`].
        token: String,
        /// The item as the earlier attempt left it.
        previous: Box<EventRecord>,
    },
    /// Already completed: dispatch nothing.
    Duplicate(Box<EventRecord>),
    /// Same id, different body.
    Conflict,
    /// Another attempt holds the reservation.
    InProgress {
        /// Seconds until its lease expires.
        retry_after: u64,
    },
}

/// One module's dispatch to record atomically: its job, and its cooldown if it has one.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    /// The job to write as `queued`.
    pub job: JobRecord,
    /// Unix seconds until which the (module, entity) cooldown holds, if any.
    pub cooldown_until: Option<i64>,
    /// A pull module's queue settings: the claim also records where the job waits in its
    /// queue, so [`WorkQueue::enqueue`] then writes only the queue item.
    pub pull: Option<crate::manifest::PullTarget>,
}

/// The result of [`DispatchStore::claim`], as indexes into the claims given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaimOutcome {
    /// Recorded: invoke these.
    pub claimed: Vec<usize>,
    /// An unexpired cooldown of another event holds the entity: (claim, until, unix seconds).
    pub cooling: Vec<(usize, Option<i64>)>,
    /// The job already exists past `queued`/`failed` (an earlier attempt got it out).
    pub already: Vec<usize>,
}

/// An unexpired cooldown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cooling {
    /// Unix seconds it holds until.
    pub until: i64,
    /// The job that holds it.
    pub job_id: String,
}

/// The final write of a delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Finish {
    /// `Completed`, or `Failed` when some invoke failed.
    pub status: EventStatus,
    /// Every job of the event.
    pub jobs: Vec<JobRef>,
    /// Skipped modules.
    pub skipped: Vec<Skip>,
    /// Jobs whose invoke failed, with the error to record.
    pub failed_jobs: Vec<(String, String)>,
    /// Where the event is stored, when this attempt stored it.
    pub payload_ref: Option<PayloadRef>,
}

/// A delivery's outcome written ahead, with the queue item of its only job
/// ([`WorkQueue::enqueue_with`]): the event item as the reservation created it from
/// `reserved`, then [`EventStore::finish`] recorded `finish`, put whole, but for the
/// reservation's `token`, which it keeps (its lease released): if the call fails with the
/// put applied and the rest not, the finish can still write the real outcome over it. A
/// plain put has no condition, so the dispatcher writes one only for an event item its own
/// reservation created ([`Reservation::Fresh`] with `created`) while that lease has a
/// margin left; the finish it stands for is then not written again.
#[derive(Debug, Clone, Copy)]
pub struct Closing<'a> {
    /// The record the reservation created the event item from.
    pub reserved: &'a EventRecord,
    /// The reservation's fencing token.
    pub token: &'a str,
    /// The outcome, as the finish would record it.
    pub finish: &'a Finish,
}

/// De-duplication and outcome of deliveries.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Reserves the delivery for this attempt (one conditional write).
    async fn reserve(
        &self,
        record: &EventRecord,
        now: OffsetDateTime,
    ) -> Result<Reservation, StoreError>;
    /// Records the outcome and releases the reservation (one write), fenced by `token`.
    async fn finish(
        &self,
        source: &str,
        event_id: &str,
        token: &str,
        finish: &Finish,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// Reads the event item of delivery `event_id` from `source`.
    async fn get_event(
        &self,
        source: &str,
        event_id: &str,
    ) -> Result<Option<EventRecord>, StoreError>;
    /// The normalized event kept with an event item, for replay; `None` when the item or
    /// its envelope is gone.
    async fn load_event(
        &self,
        source: &str,
        event_id: &str,
    ) -> Result<Option<crate::event::Event>, StoreError>;
    /// Takes the reservation of an existing, unexpired event again for a replay (one
    /// conditional write); refuses while another attempt holds its lease.
    async fn reopen(
        &self,
        source: &str,
        event_id: &str,
        lease_expires_at: i64,
        now: OffsetDateTime,
    ) -> Result<Reopened, StoreError>;
}

/// What [`EventStore::reopen`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum Reopened {
    /// The reservation is ours again.
    Taken {
        /// Fencing token for [`EventStore::finish`].
        token: String,
        /// The item before the replay.
        previous: Box<EventRecord>,
    },
    /// No such event (or it expired).
    Missing,
    /// Another attempt holds it.
    InProgress {
        /// Seconds until its lease expires.
        retry_after: u64,
    },
}

/// Cooldowns and job creation: single-item conditional writes, issued together.
#[async_trait]
pub trait DispatchStore: Send + Sync {
    /// Writes every claim's job and cooldown; claims whose cooldown holds or whose job
    /// already ran are left out and reported.
    async fn claim(
        &self,
        claims: &[Claim],
        now: OffsetDateTime,
    ) -> Result<ClaimOutcome, StoreError>;
    /// For each (module, entity), the unexpired cooldown holding it, if one does: its end
    /// (Unix seconds) and its job. Reads only (dry runs, and the look before a claim);
    /// `consistent: false` halves the read units and may miss a cooldown written a moment
    /// ago, which the claim's condition then catches.
    async fn cooldowns(
        &self,
        pairs: &[(String, String)],
        consistent: bool,
        now: OffsetDateTime,
    ) -> Result<Vec<Option<Cooling>>, StoreError>;
}

/// Per-scope settings (kept until changed; no TTL).
#[async_trait]
pub trait SettingsStore: Send + Sync {
    /// The settings of the given scopes that exist, in the order given (one round trip).
    async fn get_settings(
        &self,
        scopes: &[String],
    ) -> Result<Vec<(String, crate::settings::Settings)>, StoreError>;
    /// Replaces a scope's settings.
    async fn put_settings(
        &self,
        scope: &str,
        settings: &crate::settings::Settings,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
}

/// The scheduler's progress and its record of ticks it could not run.
#[async_trait]
pub trait SchedulerStore: Send + Sync {
    /// The last minute (since the Unix epoch) the scheduler has processed.
    async fn last_tick(&self) -> Result<Option<i64>, StoreError>;
    /// Records `minute` as processed; never moves backwards.
    async fn advance_tick(&self, minute: i64, now: OffsetDateTime) -> Result<(), StoreError>;
    /// Writes an event item for a tick that was skipped, unless one exists; `true` when written.
    async fn record_skipped_tick(&self, record: &EventRecord) -> Result<bool, StoreError>;
}

/// Job lifecycle, as the module runtime sees it.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Reads a job.
    async fn get_job(&self, job_id: &str) -> Result<Option<JobRecord>, StoreError>;
    /// Reads several jobs (batched); missing ones are left out.
    async fn get_jobs(&self, job_ids: &[String]) -> Result<Vec<JobRecord>, StoreError>;
    /// Moves a `queued` job to `running`, or to `cancelled` when a cancel was requested.
    async fn start_job(
        &self,
        job_id: &str,
        now: OffsetDateTime,
    ) -> Result<StartOutcome, StoreError>;
    /// Appends a line to the job's journal (bounded: lines past the limit are dropped).
    async fn append_journal(&self, job_id: &str, line: &str) -> Result<(), StoreError>;
    /// Asks for a job to be cancelled: a queued job becomes `cancelled` at once, a running
    /// one sees the request; returns the job's status after the request.
    async fn request_cancel(
        &self,
        job_id: &str,
        now: OffsetDateTime,
    ) -> Result<Option<JobStatus>, StoreError>;
    /// Moves a `running` job to a final status with its error or output.
    async fn finish_job(
        &self,
        job_id: &str,
        status: JobStatus,
        error: Option<&str>,
        output: Option<&serde_json::Value>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
}

/// A pull job handed to a worker.
#[derive(Debug, Clone, PartialEq)]
pub struct Leased {
    /// The job as it stands after the lease (status `running`, attempts raised).
    pub job: JobRecord,
    /// The module context (JSON), as a function would have received it.
    pub context: serde_json::Value,
    /// The fencing token: heartbeats and the finish must present it.
    pub lease_token: String,
    /// When the lease ends unless a heartbeat extends it.
    pub lease_expires_at: OffsetDateTime,
}

/// What a heartbeat found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heartbeat {
    /// The lease is extended.
    Extended {
        /// Someone asked to cancel the job: stop and finish it `cancelled`.
        cancel_requested: bool,
        /// The new end of the lease.
        lease_expires_at: OffsetDateTime,
    },
    /// The token is not the job's current lease (expired and taken, or finished).
    Stale,
    /// No such job.
    Missing,
}

/// Pull jobs: a queue per module, leases with fencing tokens.
#[async_trait]
pub trait WorkQueue: Send + Sync {
    /// Puts a claimed (queued) pull job in its module's queue with its context (one write:
    /// the claim of `job`, made with its [`Claim::pull`], recorded where it waits).
    async fn enqueue(
        &self,
        job: &JobRecord,
        context: &[u8],
        pull: crate::manifest::PullTarget,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// [`WorkQueue::enqueue`], with `with` (the delivery's stored event, which the context
    /// names) written in the same call: one call where there would be two. With `closing`,
    /// the delivery's event item goes out in that call too, whole, as its outcome leaves it
    /// (see [`Closing`]). On an error any of them may be missing.
    async fn enqueue_with(
        &self,
        job: &JobRecord,
        context: &[u8],
        pull: crate::manifest::PullTarget,
        now: OffsetDateTime,
        with: &PackedPayload,
        closing: Option<&Closing<'_>>,
    ) -> Result<(), StoreError>;
    /// Leases the oldest available job of one of `modules` to `holder`: a queued job, or a
    /// running one whose lease expired (raising its attempts; past `max_attempts` it fails
    /// instead). Conditional writes: two workers never both win a job.
    async fn lease(
        &self,
        modules: &[String],
        holder: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Leased>, StoreError>;
    /// Extends the lease held with `token`.
    async fn heartbeat(
        &self,
        job_id: &str,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<Heartbeat, StoreError>;
    /// Records the outcome of a leased job and removes it from the queue (nothing is
    /// written unless `token` is the current lease).
    async fn finish_leased(
        &self,
        job_id: &str,
        token: &str,
        status: JobStatus,
        error: Option<&str>,
        output: Option<&serde_json::Value>,
        now: OffsetDateTime,
    ) -> Result<LeaseFinish, StoreError>;
}

/// What finishing a leased job found.
#[derive(Debug, Clone, PartialEq)]
pub enum LeaseFinish {
    /// Recorded; the job as it was read just before (module, start time).
    Recorded(Box<JobRecord>),
    /// The token is not the job's current lease: nothing changed.
    Stale,
    /// No such job.
    Missing,
}

/// A page of a listing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    /// The items, newest first.
    pub items: Vec<T>,
    /// Opaque cursor of the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// What `GET /events` asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct EventQuery {
    /// Only this source.
    pub source: Option<String>,
    /// Only this event type.
    pub event_type: Option<String>,
    /// Only this status.
    pub status: Option<EventStatus>,
    /// Nothing received before this time (and never past the event lifetime).
    pub since: OffsetDateTime,
    /// Page size.
    pub limit: usize,
    /// Where the previous page stopped.
    pub cursor: Option<String>,
}

/// What `GET /jobs` asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct JobQuery {
    /// Only this module's jobs (served by the adapter's jobs index).
    pub module: Option<String>,
    /// Only jobs in this status.
    pub status: Option<JobStatus>,
    /// Nothing created before this time (the job lifetime, for the by-day listing).
    pub since: OffsetDateTime,
    /// Page size.
    pub limit: usize,
    /// Where the previous page stopped.
    pub cursor: Option<String>,
}

/// Listings served by the secondary indexes (queries, never scans).
#[async_trait]
pub trait ListStore: Send + Sync {
    /// Events, newest first.
    async fn list_events(
        &self,
        query: &EventQuery,
        now: OffsetDateTime,
    ) -> Result<Page<EventRecord>, StoreError>;
    /// Jobs, newest first.
    async fn list_jobs(
        &self,
        query: &JobQuery,
        now: OffsetDateTime,
    ) -> Result<Page<JobRecord>, StoreError>;
}

/// One published registry version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistryVersion {
    /// Version number, from 1, consecutive.
    pub version: u64,
    /// RFC 3339 publish time.
    pub published_at: String,
    /// Token name of the publisher.
    pub published_by: String,
    /// Manifest text by module name (the last good one for modules whose new one failed).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub manifests: std::collections::BTreeMap<String, String>,
    /// The module names, for listings that do not load the manifests.
    #[serde(default)]
    pub modules: Vec<String>,
    /// The publish report (`added`, `refreshed`, `removed`, `failed`, `rolled_back_to`).
    #[serde(default)]
    pub report: serde_json::Value,
}

/// Published registry versions (kept, no TTL).
#[async_trait]
pub trait RegistryStore: Send + Sync {
    /// The active version number, if any was published (one small read).
    async fn registry_version(&self) -> Result<Option<u64>, StoreError>;
    /// A version with its manifests.
    async fn get_registry(&self, version: u64) -> Result<Option<RegistryVersion>, StoreError>;
    /// Writes `next` and makes it active if the active version is still `expected`
    /// (one transaction); `false` when another publish got there first.
    async fn put_registry(
        &self,
        expected: Option<u64>,
        next: &RegistryVersion,
    ) -> Result<bool, StoreError>;
    /// Versions, newest first, without their manifests.
    async fn list_registry(&self, limit: usize) -> Result<Vec<RegistryVersion>, StoreError>;
}

/// RFC 3339 text of a time, as stored.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// Whether the store keeps a JSON value as given (job outputs, settings): numbers with a
/// magnitude from 1e-130 to below 1e125 and at most 30 levels of nesting below `depth`, the
/// range and depth every adapter must take (DynamoDB's number type is the narrowest).
/// The error says what is out of range.
pub fn storable(v: &serde_json::Value, depth: usize) -> Result<(), Unstorable> {
    if depth > 30 {
        return Err(Unstorable("the value nests deeper than 30 levels".into()));
    }
    match v {
        serde_json::Value::Number(n) => match n.as_f64() {
            Some(x) if x == 0.0 || (1e-130..1e125).contains(&x.abs()) => Ok(()),
            _ => Err(Unstorable(format!(
                "the number {n} is outside the range the store keeps (1e-130 to 1e125)"
            ))),
        },
        serde_json::Value::Array(items) => items.iter().try_for_each(|i| storable(i, depth + 1)),
        serde_json::Value::Object(map) => map.iter().try_for_each(|(k, i)| {
            if k.is_empty() {
                return Err(Unstorable("object keys must not be empty".into()));
            }
            storable(i, depth + 1)
        }),
        _ => Ok(()),
    }
}

/// Why a JSON value is out of what the store keeps ([`storable`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unstorable(pub String);

/// Truncates `text` to at most `max` bytes on a character boundary, marking the cut.
pub fn bounded(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max.saturating_sub(3);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}
