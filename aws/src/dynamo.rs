//! DynamoDB adapter of the store traits: one table (`pk`, `sk`), TTL on `expires_at`.
//! Every condition on a TTL'd item compares `expires_at` with now, because TTL deletion
//! lags by hours to days. Round trips per delivery: reserve (1); claims and the stored
//! event (1: single-item conditional writes, issued together; no transaction); finish (1).
//! Items stay under 1 KB but the stored event; the two indexes take one small entry per
//! event and per job, spread over `shards` partition keys (docs/scale.md).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ReturnValue, ReturnValuesOnConditionCheckFailure,
    ScalarAttributeType, TimeToLiveSpecification,
};
use switchyard_core::text::concat;
use time::OffsetDateTime;

use crate::settings::Settings;
use crate::store::{
    Claim, ClaimOutcome, Closing, DispatchStore, EventRecord, EventStatus, EventStore, Finish,
    JobRecord, JobStatus, JobStore, PackedPayload, PayloadRef, PayloadStore, Reservation,
    SchedulerStore, SettingsStore, StartOutcome, StoreError, ids, rfc3339,
};

mod http1;
pub mod keys;
mod listing;
pub mod metered;
mod queue;
pub mod wire;

/// The settings item of one scope, as stored (the adapter's own layout: keys included).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct SettingsRecord {
    /// `SETTINGS#{scope}`.
    pk: String,
    /// `SETTINGS`.
    sk: String,
    /// `global`, `owner/<owner>` or `repo/<owner>/<name>`.
    scope: String,
    /// Feature flags.
    #[serde(default)]
    flags: std::collections::BTreeMap<String, bool>,
    /// Config overrides by module.
    #[serde(default)]
    config: std::collections::BTreeMap<String, serde_json::Value>,
    /// RFC 3339 time of the last change.
    updated_at: String,
}

/// The DynamoDB store.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    /// The lean client of the single-item writes of a delivery (reserve, claims, the stored
    /// event, the queue item, finish) and of a module's job (start, journal, finish);
    /// everything else goes through `client`.
    wire: wire::Wire,
    table: String,
    shards: u16,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key(pk: impl Into<String>, sk: impl Into<String>) -> HashMap<String, AttributeValue> {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

/// The key of job `job_id`'s item.
fn job_key(job_id: &str) -> HashMap<String, AttributeValue> {
    key(keys::job(job_id), keys::JOB_SK)
}

fn unavailable<E: std::error::Error + Send + Sync + 'static>(
    operation: &'static str,
) -> impl FnOnce(E) -> StoreError {
    move |e| StoreError::Unavailable {
        operation,
        source: Box::new(e),
    }
}

/// Whether a call failed only because its condition did not hold (an expected outcome for
/// the conditional writes here, not a store failure).
fn condition_failed<E: aws_sdk_dynamodb::error::ProvideErrorMetadata, R>(
    e: &SdkError<E, R>,
) -> bool {
    e.as_service_error()
        .and_then(aws_sdk_dynamodb::error::ProvideErrorMetadata::code)
        == Some("ConditionalCheckFailedException")
}

fn decode<T: serde::de::DeserializeOwned>(
    key: &str,
    item: HashMap<String, AttributeValue>,
) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::Corrupt {
        key: key.to_owned(),
        reason: e.to_string(),
    })
}

fn encode<T: serde::Serialize>(
    key: &str,
    value: &T,
) -> Result<HashMap<String, AttributeValue>, StoreError> {
    serde_dynamo::to_item(value).map_err(|e| StoreError::Corrupt {
        key: key.to_owned(),
        reason: e.to_string(),
    })
}

fn encode_value<T: serde::Serialize>(key: &str, value: &T) -> Result<AttributeValue, StoreError> {
    serde_dynamo::to_attribute_value(value).map_err(|e| StoreError::Corrupt {
        key: key.to_owned(),
        reason: e.to_string(),
    })
}

/// Builds `SET #a0 = :v0, ...` with names and values, so reserved words need no care. The
/// clauses are written into one string as they come (a delivery's writes set about thirty
/// attributes; a `format!` and a `Vec` entry each were measurable).
/// Names and values are lists, not maps: a write has about twenty of each, named by this
/// code (never by a sender), and hashing them was measurable; a name asked for twice is
/// listed once.
struct Expr {
    /// The `SET` clauses, comma-separated.
    sets: String,
    names: Vec<(String, String)>,
    values: Vec<(String, AttributeValue)>,
}

impl Default for Expr {
    fn default() -> Self {
        Self {
            sets: String::with_capacity(512),
            names: Vec::with_capacity(24),
            values: Vec::with_capacity(24),
        }
    }
}

impl Expr {
    fn name(&mut self, attr: &str) -> String {
        let key = concat(&["#", attr]);
        self.add_name(&key, attr);
        key
    }
    /// Lists `#attr` once.
    fn add_name(&mut self, key: &str, attr: &str) {
        if !self.names.iter().any(|(k, _)| k == key) {
            self.names.push((key.to_owned(), attr.to_owned()));
        }
    }
    /// Sets `:placeholder`, replacing an earlier value of the same placeholder.
    fn add_value(&mut self, key: String, v: AttributeValue) {
        match self.values.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = v,
            None => self.values.push((key, v)),
        }
    }
    fn value(&mut self, placeholder: &str, v: AttributeValue) -> String {
        let key = concat(&[":", placeholder]);
        self.add_value(key.clone(), v);
        key
    }
    /// Starts a clause: the separator after the one before.
    fn clause(&mut self) -> &mut String {
        if !self.sets.is_empty() {
            self.sets.push_str(", ");
        }
        &mut self.sets
    }
    /// `#attr = :set_attr`.
    fn set(&mut self, attr: &str, v: AttributeValue) {
        self.add_name(&concat(&["#", attr]), attr);
        self.add_value(concat(&[":set_", attr]), v);
        let sets = self.clause();
        for part in ["#", attr, " = :set_", attr] {
            sets.push_str(part);
        }
    }
    /// `#attr = if_not_exists(#attr, :first_attr)`: the first write's value is kept.
    fn set_first(&mut self, attr: &str, v: AttributeValue) {
        self.add_name(&concat(&["#", attr]), attr);
        self.add_value(concat(&[":first_", attr]), v);
        let sets = self.clause();
        for part in [
            "#",
            attr,
            " = if_not_exists(#",
            attr,
            ", :first_",
            attr,
            ")",
        ] {
            sets.push_str(part);
        }
    }
    fn update_expression(&self, extra: &str) -> String {
        concat(&["SET ", &self.sets, extra])
    }
    /// The conditional `UpdateItem` of `key`: `SET` with these names and values, then
    /// `extra` (` ADD ...`, ` REMOVE ...`).
    fn into_update(
        self,
        key: HashMap<String, AttributeValue>,
        extra: &str,
        condition: String,
    ) -> wire::Write {
        wire::Write {
            key,
            update: Some(self.update_expression(extra)),
            condition: Some(condition),
            names: self.names,
            values: self.values,
            ..Default::default()
        }
    }
}

impl DynamoStore {
    /// A store over `table` with a client built once at start-up.
    pub fn new(client: Client, wire: wire::Wire, table: impl Into<String>) -> Self {
        Self {
            client,
            wire,
            table: table.into(),
            shards: keys::DEFAULT_SHARDS,
        }
    }

    /// Spreads index entries and queues over `shards` partition keys (1 to 256). Listings
    /// read every shard, so every function of a deployment must use the same number.
    pub fn with_shards(mut self, shards: u16) -> Self {
        self.shards = shards.clamp(1, 256);
        self
    }

    /// The number of index shards.
    pub fn shards(&self) -> u16 {
        self.shards
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table with TTL on `expires_at` if it does not exist (idempotent) and
    /// waits until it is active.
    pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
        let created = client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr_def("pk")?)
            .attribute_definitions(attr_def("sk")?)
            .attribute_definitions(attr_def("gsi1pk")?)
            .attribute_definitions(attr_def("gsi1sk")?)
            .attribute_definitions(attr_def("gsi2pk")?)
            .attribute_definitions(attr_def("gsi2sk")?)
            .key_schema(key_elem("pk", KeyType::Hash)?)
            .key_schema(key_elem("sk", KeyType::Range)?)
            .global_secondary_indexes(index(
                keys::EVENTS_INDEX,
                "gsi1pk",
                "gsi1sk",
                &["source", "event_type"],
            )?)
            .global_secondary_indexes(index(keys::JOBS_INDEX, "gsi2pk", "gsi2sk", &["module"])?)
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_resource_in_use_exception()) => {}
            Err(e) => return Err(unavailable("create_table")(e)),
        }
        for _ in 0..60 {
            let d = client
                .describe_table()
                .table_name(table)
                .send()
                .await
                .map_err(unavailable("describe_table"))?;
            if d.table()
                .and_then(|t| t.table_status())
                .is_some_and(|st| st.as_str() == "ACTIVE")
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
        let ttl = client
            .describe_time_to_live()
            .table_name(table)
            .send()
            .await
            .map_err(unavailable("describe_ttl"))?;
        let enabled = ttl
            .time_to_live_description()
            .and_then(|d| d.time_to_live_status())
            .is_some_and(|st| matches!(st.as_str(), "ENABLED" | "ENABLING"));
        if !enabled {
            let spec = TimeToLiveSpecification::builder()
                .attribute_name("expires_at")
                .enabled(true)
                .build()
                .map_err(unavailable("update_ttl"))?;
            client
                .update_time_to_live()
                .table_name(table)
                .time_to_live_specification(spec)
                .send()
                .await
                .map_err(unavailable("update_ttl"))?;
        }
        Ok(())
    }

    /// An UpdateItem on a job item, table and key filled in.
    fn job_update(
        &self,
        job_id: &str,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(job_key(job_id)))
    }

    /// Moves a queued job to `cancelled`; `true` when it did.
    async fn cancel_if_queued(
        &self,
        job_id: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let result = self
            .job_update(job_id)
            .update_expression("SET #status = :cancelled, finished_at = :now")
            .condition_expression("#status = :queued")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":cancelled", s(JobStatus::Cancelled.as_str()))
            .expression_attribute_values(":queued", s(JobStatus::Queued.as_str()))
            .expression_attribute_values(":now", s(rfc3339(now)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(unavailable("cancel")(e)),
        }
    }

    /// Reads items by partition key (one sort key for all); returns them by partition key.
    pub(super) async fn batch_get(
        &self,
        pks: &[String],
        sk: &str,
        consistent: bool,
        operation: &'static str,
    ) -> Result<HashMap<String, HashMap<String, AttributeValue>>, StoreError> {
        let keys: Vec<(String, String)> =
            pks.iter().map(|pk| (pk.clone(), sk.to_owned())).collect();
        Ok(self
            .batch_get_keys(&keys, consistent, operation)
            .await?
            .into_iter()
            .map(|((pk, _), item)| (pk, item))
            .collect())
    }

    /// Reads items by (partition key, sort key), 100 keys per BatchGetItem, unprocessed keys
    /// sent again; returns them by key (missing ones left out).
    pub(super) async fn batch_get_keys(
        &self,
        wanted: &[(String, String)],
        consistent: bool,
        operation: &'static str,
    ) -> Result<HashMap<(String, String), HashMap<String, AttributeValue>>, StoreError> {
        use aws_sdk_dynamodb::types::KeysAndAttributes;
        let mut found = HashMap::new();
        let mut unique: Vec<&(String, String)> = wanted.iter().collect();
        unique.sort();
        unique.dedup();
        for chunk in unique.chunks(100) {
            let keys: Vec<HashMap<String, AttributeValue>> = chunk
                .iter()
                .map(|(pk, sk)| HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))]))
                .collect();
            let mut request = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .consistent_read(consistent)
                    .build()
                    .map_err(unavailable(operation))?,
            );
            let mut attempt = 0u64;
            while let Some(r) = request.take() {
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, r)
                    .send()
                    .await
                    .map_err(unavailable(operation))?;
                for item in out
                    .responses
                    .and_then(|mut m| m.remove(&self.table))
                    .unwrap_or_default()
                {
                    if let (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) =
                        (item.get("pk"), item.get("sk"))
                    {
                        found.insert((pk.clone(), sk.clone()), item);
                    }
                }
                request = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .filter(|k| !k.keys().is_empty());
                attempt += 1;
                if request.is_some() {
                    if attempt > 5 {
                        return Err(StoreError::Unavailable {
                            operation,
                            source: "keys left unprocessed".into(),
                        });
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await;
                }
            }
        }
        Ok(found)
    }

    /// Writes an item as is (tests and tools; the request path uses the traits).
    pub async fn put_raw(&self, item: HashMap<String, AttributeValue>) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(unavailable("put"))?;
        Ok(())
    }

    /// Reads an item by partition key and sort key.
    pub async fn get_raw(
        &self,
        pk: &str,
        sk: &str,
    ) -> Result<Option<HashMap<String, AttributeValue>>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable("get"))?;
        Ok(out.item)
    }

    /// The cooldown write of a claim, conditioned on the cooldown being free (absent,
    /// expired, or held by this very job: an earlier attempt of the same delivery).
    async fn put_cooldown(
        &self,
        job: &JobRecord,
        until: i64,
        now: i64,
    ) -> Result<Written, StoreError> {
        let pk = keys::cooldown(
            &job.module,
            &ids::cooldown_entity(&job.event_source, &job.entity),
        );
        let mut item = key(pk, keys::COOLDOWN_SK);
        item.insert("job_id".into(), s(job.job_id.clone()));
        item.insert("expires_at".into(), n(until));
        let write = wire::Write {
            item: Some(item),
            condition: Some(
                "attribute_not_exists(pk) OR expires_at <= :now OR job_id = :job".into(),
            ),
            values: vec![
                (":now".into(), n(now)),
                (":job".into(), s(job.job_id.clone())),
            ],
            // The holder's expiry comes back with the refusal, for the explanation.
            old_on_failure: true,
            ..Default::default()
        };
        match self.wire.write(&self.table, write).await {
            Ok(_) => Ok(Written::Done),
            Err(wire::WireError::ConditionFailed(holder)) => {
                let until = holder.as_ref().and_then(|i| match i.get("expires_at") {
                    Some(AttributeValue::N(v)) => v.parse().ok(),
                    _ => None,
                });
                Ok(Written::Refused(until))
            }
            Err(e) => Err(unavailable("claim")(e)),
        }
    }

    /// The job write of a claim: created `queued`, or set back to `queued` when an earlier
    /// attempt left it queued or failed; refused when it is running or finished (an earlier
    /// attempt got it out). A pull job's claim also records its queue item's key and lease
    /// (and sets its lease attempts to 0), so its enqueue is the queue item's put alone.
    async fn put_job(
        &self,
        job: &JobRecord,
        pull: Option<crate::manifest::PullTarget>,
        now: i64,
    ) -> Result<Written, StoreError> {
        let mut e = Expr::default();
        for (attr, v) in [
            ("job_id", s(job.job_id.clone())),
            ("module", s(job.module.clone())),
            ("function", s(job.function.clone())),
            ("event_source", s(job.event_source.clone())),
            ("event_id", s(job.event_id.clone())),
            ("entity", s(job.entity.clone())),
            ("trigger", s(job.trigger.clone())),
            ("status", s(JobStatus::Queued.as_str())),
            ("created_at", s(job.created_at.clone())),
            ("expires_at", n(job.expires_at)),
        ] {
            e.set(attr, v);
        }
        if let Some(max) = job.max_attempts {
            e.set("max_attempts", n(i64::from(max)));
        }
        let created = parse_time(
            &job.created_at,
            OffsetDateTime::from_unix_timestamp(now).unwrap_or(OffsetDateTime::UNIX_EPOCH),
        );
        // The first attempt's place in the index is kept: a resumed delivery's job does not
        // move (and writes nothing to the index).
        for (attr, v) in [
            (
                "gsi2pk",
                s(keys::jobs_shard(keys::shard_of(&job.job_id, self.shards))),
            ),
            ("gsi2sk", s(keys::time_sort(created, &job.job_id))),
        ] {
            e.set_first(attr, v);
        }
        let attempts = e.name("attempts");
        let error = e.name("error");
        let finished = e.name("finished_at");
        let started = e.name("started_at");
        let status = e.name("status");
        let queued = e.value("queued", s(JobStatus::Queued.as_str()));
        let failed = e.value("failed", s(JobStatus::Failed.as_str()));
        let add = match pull {
            Some(pull) => {
                let (queue_pk, queue_sk) = queue::item_key(job, self.shards);
                e.set("queue_pk", s(queue_pk));
                e.set("queue_sk", s(queue_sk));
                e.set("lease_seconds", n(queue::lease_seconds(pull)));
                e.set("attempts", n(0));
                String::new()
            }
            None => {
                let one = e.value("one", n(1));
                concat(&[" ADD ", &attempts, " ", &one])
            }
        };
        let write = e.into_update(
            job_key(&job.job_id),
            &concat(&[&add, " REMOVE ", &error, ", ", &finished, ", ", &started]),
            concat(&[
                "attribute_not_exists(pk) OR ",
                &status,
                " IN (",
                &queued,
                ", ",
                &failed,
                ")",
            ]),
        );
        match self.wire.write(&self.table, write).await {
            Ok(_) => Ok(Written::Done),
            Err(wire::WireError::ConditionFailed(_)) => Ok(Written::Refused(None)),
            Err(e) => Err(unavailable("claim")(e)),
        }
    }

    /// Removes a job this attempt wrote but may not run (its cooldown was taken meanwhile),
    /// unless it left `queued`.
    async fn unclaim(&self, job_id: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(keys::job(job_id)))
            .key("sk", s(keys::JOB_SK))
            .condition_expression("#status = :queued")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":queued", s(JobStatus::Queued.as_str()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if condition_failed(&e) => Ok(()),
            Err(e) => Err(unavailable("claim")(e)),
        }
    }

    /// Marks a job whose invoke failed as `failed` (one conditional update).
    async fn fail_job(
        &self,
        job_id: &str,
        error: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let write = wire::Write {
            key: job_key(job_id),
            update: Some("SET #status = :failed, #error = :error, finished_at = :now".into()),
            condition: Some("#status = :queued".into()),
            names: vec![
                ("#status".into(), "status".into()),
                ("#error".into(), "error".into()),
            ],
            values: vec![
                (":failed".into(), s(JobStatus::Failed.as_str())),
                (":queued".into(), s(JobStatus::Queued.as_str())),
                (":error".into(), s(crate::store::bounded(error, 1024))),
                (":now".into(), s(rfc3339(now))),
            ],
            ..Default::default()
        };
        match self.wire.write(&self.table, write).await {
            Ok(_) => Ok(()),
            // It moved on (a retry of Lambda's ran it after all): nothing to record.
            Err(wire::WireError::ConditionFailed(_)) => Ok(()),
            Err(e) => Err(unavailable("finish")(e)),
        }
    }
}

/// What a conditional single-item write did.
enum Written {
    Done,
    /// The condition failed; a cooldown's refusal carries the holder's expiry.
    Refused(Option<i64>),
}

fn attr_def(name: &str) -> Result<AttributeDefinition, StoreError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(unavailable("create_table"))
}

/// An index that projects the keys and `include`: attributes that never change, so that
/// an item's later updates write nothing to it, and listings filter on them before reading
/// the items they show.
fn index(
    name: &str,
    hash: &str,
    range: &str,
    include: &[&str],
) -> Result<GlobalSecondaryIndex, StoreError> {
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key_elem(hash, KeyType::Hash)?)
        .key_schema(key_elem(range, KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::Include)
                .set_non_key_attributes(Some(include.iter().map(|a| (*a).to_owned()).collect()))
                .build(),
        )
        .build()
        .map_err(unavailable("create_table"))
}

/// The received time of a record (RFC 3339), or `fallback` when it does not parse.
fn parse_time(text: &str, fallback: OffsetDateTime) -> OffsetDateTime {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap_or(fallback)
}

fn key_elem(name: &str, kind: KeyType) -> Result<KeySchemaElement, StoreError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .map_err(unavailable("create_table"))
}

/// The events index entry of an event: (partition, sort key).
fn event_index_keys(
    record: &EventRecord,
    received_at: OffsetDateTime,
    shards: u16,
) -> (String, String) {
    let id = concat(&[&record.source, "#", &record.event_id]);
    (
        keys::events_shard(keys::shard_of(&id, shards)),
        keys::time_sort(received_at, &id),
    )
}

/// An event item with its index keys, for plain puts.
fn event_item(
    record: &EventRecord,
    shards: u16,
) -> Result<HashMap<String, AttributeValue>, StoreError> {
    let pk = keys::event(&record.source, &record.event_id);
    let mut item = encode(&pk, record)?;
    item.insert("pk".into(), s(pk));
    item.insert("sk".into(), s(keys::EVENT_SK));
    let received_at = parse_time(&record.received_at, OffsetDateTime::UNIX_EPOCH);
    let (pk, sk) = event_index_keys(record, received_at, shards);
    item.insert("gsi1pk".into(), s(pk));
    item.insert("gsi1sk".into(), s(sk));
    Ok(item)
}

/// The event item a reservation created from `closing.reserved` once the finish of
/// `closing.finish` is recorded on it: what those two writes leave, for one put, but for the
/// token, kept (the failed jobs a finish marks are not on it; an outcome written ahead has
/// none).
pub(super) fn closed_event_item(
    closing: &Closing<'_>,
    shards: u16,
) -> Result<HashMap<String, AttributeValue>, StoreError> {
    let (reserved, finish) = (closing.reserved, closing.finish);
    let record = EventRecord {
        status: finish.status,
        jobs: finish.jobs.clone(),
        skipped: finish.skipped.clone(),
        payload_ref: finish.payload_ref.clone(),
        // The reservation's first attempt, its lease released; its token kept, so that the
        // finish can still write over this item if the rest of the call failed.
        attempts: 1,
        lease_expires_at: 0,
        lease_token: Some(closing.token.to_owned()),
        ..reserved.clone()
    };
    event_item(&record, shards)
}

/// A reservation's fencing token: unique among every attempt of every router process, not
/// secret (it fences the router's own writes and no API takes it). A random 64-bit prefix
/// drawn once per process and a counter, so a delivery asks the kernel for no randomness
/// (`getrandom` was one system call per delivery). 32 hex digits, as a simple UUID.
fn reservation_token() -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static PREFIX: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| uuid::Uuid::new_v4().as_u64_pair().0);
    format!(
        "{prefix:016x}{:016x}",
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

#[async_trait]
impl EventStore for DynamoStore {
    async fn reserve(
        &self,
        record: &EventRecord,
        now: OffsetDateTime,
    ) -> Result<Reservation, StoreError> {
        let now_s = now.unix_timestamp();
        let token = reservation_token();
        let pk = keys::event(&record.source, &record.event_id);
        let mut e = Expr::default();
        for (attr, v) in [
            ("source", s(record.source.clone())),
            ("event_id", s(record.event_id.clone())),
            ("event_type", s(record.event_type.clone())),
            ("entity", s(record.entity.clone())),
            ("body_digest", s(record.body_digest.clone())),
            ("status", encode_value(&pk, &EventStatus::InProgress)?),
            ("lease_expires_at", n(record.lease_expires_at)),
            ("lease_token", s(token.clone())),
            ("expires_at", n(record.expires_at)),
        ] {
            e.set(attr, v);
        }
        if let Some(a) = &record.action {
            e.set("action", s(a.clone()));
        }
        // The first attempt's receive time (and its place in the index) is kept across
        // takeovers: a resumed delivery writes nothing to the index.
        let received_at = parse_time(&record.received_at, now);
        let (index_pk, index_sk) = event_index_keys(record, received_at, self.shards);
        for (attr, v) in [
            ("received_at", s(record.received_at.clone())),
            ("gsi1pk", s(index_pk)),
            ("gsi1sk", s(index_sk)),
        ] {
            e.set_first(attr, v);
        }
        let attempts = e.name("attempts");
        let one = e.value("one", n(1));
        let now_v = e.value("now", n(now_s));
        let status = e.name("status");
        let hash = e.name("body_digest");
        let lease = e.name("lease_expires_at");
        let expires = e.name("expires_at");
        let h = e.value("hash", s(record.body_digest.clone()));
        let failed = e.value("failed", encode_value(&pk, &EventStatus::Failed)?);
        let condition = concat(&[
            "attribute_not_exists(pk) OR ",
            &expires,
            " <= ",
            &now_v,
            " OR (",
            &hash,
            " = ",
            &h,
            " AND (",
            &status,
            " = ",
            &failed,
            " OR (",
            &status,
            " <> :completed AND ",
            &lease,
            " <= ",
            &now_v,
            ")))",
        ]);
        e.value("completed", encode_value(&pk, &EventStatus::Completed)?);
        let write = wire::Write {
            old: true,
            old_on_failure: true,
            ..e.into_update(
                key(pk.clone(), keys::EVENT_SK),
                &concat(&[" ADD ", &attempts, " ", &one]),
                condition,
            )
        };
        match self.wire.write(&self.table, write).await {
            Ok(Some(old)) if !old.is_empty() => {
                let previous: EventRecord = decode(&pk, old)?;
                if previous.expires_at <= now_s {
                    Ok(Reservation::Fresh {
                        token,
                        created: false,
                    })
                } else {
                    Ok(Reservation::Resumed {
                        token,
                        previous: Box::new(previous),
                    })
                }
            }
            Ok(_) => Ok(Reservation::Fresh {
                token,
                created: true,
            }),
            Err(wire::WireError::ConditionFailed(item)) => {
                let existing: EventRecord = decode(&pk, item.unwrap_or_default())?;
                if existing.lease_token.as_deref() == Some(token.as_str()) {
                    // Our own write: it was sent again after an attempt timed out with the
                    // write applied. This attempt holds the reservation; resume from the
                    // item as it stands (jobs of earlier attempts are on it).
                    return Ok(Reservation::Resumed {
                        token,
                        previous: Box::new(existing),
                    });
                }
                if existing.body_digest != record.body_digest {
                    Ok(Reservation::Conflict)
                } else if existing.status == EventStatus::Completed {
                    Ok(Reservation::Duplicate(Box::new(existing)))
                } else {
                    let retry_after = u64::try_from(existing.lease_expires_at - now_s)
                        .unwrap_or(1)
                        .max(1);
                    Ok(Reservation::InProgress { retry_after })
                }
            }
            Err(e) => Err(unavailable("reserve")(e)),
        }
    }

    async fn finish(
        &self,
        source: &str,
        event_id: &str,
        token: &str,
        finish: &Finish,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let pk = keys::event(source, event_id);
        let pk = pk.as_str();
        let mut e = Expr::default();
        e.set("status", encode_value(pk, &finish.status)?);
        e.set("jobs", encode_value(pk, &finish.jobs)?);
        e.set("skipped", encode_value(pk, &finish.skipped)?);
        // No stored event: none is named either (an outcome written ahead named the one its
        // failed call may not have stored).
        let unstored = match &finish.payload_ref {
            Some(reference) => {
                e.set("payload_ref", encode_value(pk, reference)?);
                String::new()
            }
            None => format!(", {}", e.name("payload_ref")),
        };
        // Releasing the lease lets a redelivery resume a failed event at once.
        e.set("lease_expires_at", n(0));
        let token_name = e.name("lease_token");
        let token_v = e.value("token", s(token));
        let condition = format!("{token_name} = {token_v}");
        let write = e.into_update(
            key(pk, keys::EVENT_SK),
            &format!(" REMOVE {token_name}{unstored}"),
            condition,
        );
        let event = async {
            (self.wire.write(&self.table, write).await)
                .map(|_| ())
                .map_err(unavailable("finish"))
        };
        // The failed jobs are single conditional updates beside it: the event says `failed`
        // and the redelivery that resumes it dispatches them again, whichever lands first.
        let jobs = futures::future::try_join_all(
            finish
                .failed_jobs
                .iter()
                .map(|(job_id, error)| self.fail_job(job_id, error, now)),
        );
        futures::future::try_join(event, jobs).await?;
        Ok(())
    }

    async fn get_event(
        &self,
        source: &str,
        event_id: &str,
    ) -> Result<Option<EventRecord>, StoreError> {
        let pk = keys::event(source, event_id);
        let pk = pk.as_str();
        self.get_raw(pk, keys::EVENT_SK)
            .await?
            .map(|item| decode(pk, item))
            .transpose()
    }

    async fn load_event(
        &self,
        source: &str,
        event_id: &str,
    ) -> Result<Option<crate::event::Event>, StoreError> {
        let pk = keys::event(source, event_id);
        let pk = pk.as_str();
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(keys::EVENT_SK))
            .projection_expression("payload_ref, expires_at")
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable("load_event"))?;
        let Some(r) = out.item.and_then(|mut i| i.remove("payload_ref")) else {
            return Ok(None);
        };
        let corrupt = |reason: String| StoreError::Corrupt {
            key: pk.to_owned(),
            reason,
        };
        let reference: PayloadRef =
            serde_dynamo::from_attribute_value(r).map_err(|e| corrupt(e.to_string()))?;
        let json = self.get_payload(&reference).await?;
        serde_json::from_slice(&json)
            .map(Some)
            .map_err(|e| corrupt(e.to_string()))
    }

    async fn reopen(
        &self,
        source: &str,
        event_id: &str,
        lease_expires_at: i64,
        now: OffsetDateTime,
    ) -> Result<crate::store::Reopened, StoreError> {
        let pk = keys::event(source, event_id);
        let pk = pk.as_str();
        let now_s = now.unix_timestamp();
        let token = reservation_token();
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(keys::EVENT_SK))
            .update_expression(
                "SET #status = :in_progress, lease_token = :token, lease_expires_at = :lease ADD attempts :one",
            )
            .condition_expression(
                "attribute_exists(pk) AND expires_at > :now AND (#status <> :in_progress OR lease_expires_at <= :now)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":in_progress", encode_value(pk, &EventStatus::InProgress)?)
            .expression_attribute_values(":token", s(token.clone()))
            .expression_attribute_values(":lease", n(lease_expires_at))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", n(now_s))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => Ok(crate::store::Reopened::Taken {
                token,
                previous: Box::new(decode(pk, out.attributes.unwrap_or_default())?),
            }),
            Err(SdkError::ServiceError(se)) => match se.into_err() {
                UpdateItemError::ConditionalCheckFailedException(c) => match c.item {
                    Some(item) if !item.is_empty() => {
                        let existing: EventRecord = decode(pk, item)?;
                        if existing.expires_at <= now_s {
                            Ok(crate::store::Reopened::Missing)
                        } else {
                            let retry_after = u64::try_from(existing.lease_expires_at - now_s)
                                .unwrap_or(1)
                                .max(1);
                            Ok(crate::store::Reopened::InProgress { retry_after })
                        }
                    }
                    _ => Ok(crate::store::Reopened::Missing),
                },
                other => Err(unavailable("reopen")(other)),
            },
            Err(other) => Err(unavailable("reopen")(other)),
        }
    }
}

#[async_trait]
impl DispatchStore for DynamoStore {
    async fn claim(
        &self,
        claims: &[Claim],
        now: OffsetDateTime,
    ) -> Result<ClaimOutcome, StoreError> {
        let now_s = now.unix_timestamp();
        // Every claim's job and cooldown at once, each a single-item conditional write: job
        // ids are deterministic and a cooldown names its job, so an attempt that resumes
        // finds its own writes and takes them again; no transaction (which bills twice) is
        // needed for that.
        let writes = claims.iter().map(|claim| async move {
            let cooldown = async {
                match claim.cooldown_until {
                    Some(until) => self.put_cooldown(&claim.job, until, now_s).await.map(Some),
                    None => Ok(None),
                }
            };
            let (cooldown, job) =
                futures::future::try_join(cooldown, self.put_job(&claim.job, claim.pull, now_s))
                    .await?;
            Ok::<_, StoreError>((cooldown, job))
        });
        let results = futures::future::try_join_all(writes).await?;
        let mut outcome = ClaimOutcome::default();
        let mut undo = Vec::new();
        for (i, (cooldown, job)) in results.into_iter().enumerate() {
            match (cooldown, job) {
                (Some(Written::Refused(until)), job) => {
                    outcome.cooling.push((i, until));
                    // Held by another event's job: the job written beside it may not run.
                    if matches!(job, Written::Done) {
                        undo.push(claims[i].job.job_id.as_str());
                    }
                }
                (_, Written::Refused(_)) => outcome.already.push(i),
                (_, Written::Done) => outcome.claimed.push(i),
            }
        }
        // Only when a cooldown was taken between the look before the claim and the claim.
        futures::future::try_join_all(undo.into_iter().map(|id| self.unclaim(id))).await?;
        Ok(outcome)
    }

    async fn cooldowns(
        &self,
        pairs: &[(String, String)],
        consistent: bool,
        now: OffsetDateTime,
    ) -> Result<Vec<Option<crate::store::Cooling>>, StoreError> {
        let now_s = now.unix_timestamp();
        let pks: Vec<String> = pairs
            .iter()
            .map(|(module, entity)| keys::cooldown(module, entity))
            .collect();
        let found = self
            .batch_get(&pks, keys::COOLDOWN_SK, consistent, "cooldowns")
            .await?;
        Ok(pks
            .iter()
            .map(|pk| {
                let item = found.get(pk)?;
                let until = match item.get("expires_at") {
                    Some(AttributeValue::N(v)) => v.parse::<i64>().ok()?,
                    _ => return None,
                };
                let job_id = item.get("job_id").and_then(|v| v.as_s().ok())?.clone();
                (until > now_s).then_some(crate::store::Cooling { until, job_id })
            })
            .collect())
    }
}

#[async_trait]
impl SettingsStore for DynamoStore {
    async fn get_settings(&self, scopes: &[String]) -> Result<Vec<(String, Settings)>, StoreError> {
        let pks: Vec<String> = scopes.iter().map(|scope| keys::settings(scope)).collect();
        let mut found: HashMap<String, SettingsRecord> = HashMap::new();
        for (pk, item) in self
            // Cached for SWITCHYARD_SETTINGS_CACHE_SECONDS anyway: an eventually consistent
            // read (half the units) is as good.
            .batch_get(&pks, keys::SETTINGS_SK, false, "get_settings")
            .await?
        {
            let record: SettingsRecord = decode(&pk, item)?;
            found.insert(record.scope.clone(), record);
        }
        Ok(scopes
            .iter()
            .filter_map(|scope| {
                found.remove(scope).map(|r| {
                    (
                        scope.clone(),
                        Settings {
                            flags: r.flags,
                            config: r.config,
                        },
                    )
                })
            })
            .collect())
    }

    async fn put_settings(
        &self,
        scope: &str,
        settings: &Settings,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let pk = keys::settings(scope);
        let record = SettingsRecord {
            pk: pk.clone(),
            sk: keys::SETTINGS_SK.into(),
            scope: scope.to_owned(),
            flags: settings.flags.clone(),
            config: settings.config.clone(),
            updated_at: rfc3339(now),
        };
        self.put_raw(encode(&pk, &record)?).await
    }
}

#[async_trait]
impl SchedulerStore for DynamoStore {
    async fn last_tick(&self) -> Result<Option<i64>, StoreError> {
        let item = self.get_raw(keys::SCHEDULER_PK, keys::SCHEDULER_SK).await?;
        Ok(item.and_then(|i| match i.get("last_minute") {
            Some(AttributeValue::N(v)) => v.parse().ok(),
            _ => None,
        }))
    }

    async fn advance_tick(&self, minute: i64, now: OffsetDateTime) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(keys::SCHEDULER_PK))
            .key("sk", s(keys::SCHEDULER_SK))
            .update_expression("SET last_minute = :m, updated_at = :now")
            .condition_expression("attribute_not_exists(last_minute) OR last_minute < :m")
            .expression_attribute_values(":m", n(minute))
            .expression_attribute_values(":now", s(rfc3339(now)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Another invocation got further: nothing to do.
            Err(e) if condition_failed(&e) => Ok(()),
            Err(e) => Err(unavailable("advance_tick")(e)),
        }
    }

    async fn record_skipped_tick(&self, record: &EventRecord) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(event_item(record, self.shards)?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(unavailable("record_skipped_tick")(e)),
        }
    }
}

// Parts stay well under DynamoDB's 400 KB item limit, with room for the key and attributes.
const PAYLOAD_PART_BYTES: usize = 350 * 1024;

// zstd level 1, with the small tables below: the 29 KB compact pull request packs into
// 3,661 bytes in 47.5 us, level 3 into 3,541 bytes in 59.2 us (cold, median of 200); both
// bill 4 write units. Over the 19 forge fixtures level 1 stores 3.3 % more bytes, which
// moves no fixture's units, for a fifth less of the compression's CPU, which item 7 of the
// storage issue counts (docs/performance.md, sessions 16 and 17). Level 9 packs the pull
// request's indented 35 KB into 4,096 bytes at 570 us, deflate (fast) 5,604 bytes at 390 us.
const PAYLOAD_ZSTD_LEVEL: i32 = 1;

// Match tables for a text of at most SMALL_PACK_BYTES: 2^12 hash and 2^12 chain entries
// (32 KB). For the 29 KB compact pull request level 3 picks 2^16 and 2^15 (384 KB), whose
// lookups miss cache and evict the rest of the delivery's data. The 19 forge fixtures,
// compact, pack into 23,467 bytes instead of 23,426 (+0.2 %), and zstd's share of
// `make load`'s router samples falls from 20 % to 14 % (docs/performance.md, session 15).
// Larger texts get the level's own tables.
const SMALL_PACK_BYTES: usize = 64 * 1024;
const SMALL_HASH_LOG: u32 = 12;
const SMALL_CHAIN_LOG: u32 = 12;

/// One compression context, and whether its tables are set for small texts.
struct Packer {
    context: zstd::bulk::Compressor<'static>,
    small: bool,
}

impl Packer {
    fn new() -> std::io::Result<Self> {
        Ok(Self {
            context: zstd::bulk::Compressor::new(PAYLOAD_ZSTD_LEVEL)?,
            small: false,
        })
    }

    fn compress(&mut self, json: &[u8]) -> std::io::Result<Vec<u8>> {
        use zstd::stream::raw::CParameter;
        let small = json.len() <= SMALL_PACK_BYTES;
        if small != self.small {
            // 0 is zstd's "level and size decide".
            let (hash, chain) = if small {
                (SMALL_HASH_LOG, SMALL_CHAIN_LOG)
            } else {
                (0, 0)
            };
            self.context.set_parameter(CParameter::HashLog(hash))?;
            self.context.set_parameter(CParameter::ChainLog(chain))?;
            self.small = small;
        }
        self.context.compress(json)
    }
}

/// The one compression of stored JSON (events, payloads, queued contexts): zstd at
/// [`PAYLOAD_ZSTD_LEVEL`], with small match tables for texts up to [`SMALL_PACK_BYTES`].
pub(crate) fn pack(json: &[u8], operation: &'static str) -> Result<Vec<u8>, StoreError> {
    thread_local! {
        // One compression context per thread, made once: making one asks the CPU for its
        // features (`cpuid`, a VM exit on a virtual machine) and allocates the match tables.
        // In `make load` that was 7 % of the router's CPU (docs/performance.md).
        static PACKER: std::cell::RefCell<Option<Packer>> = const { std::cell::RefCell::new(None) };
    }
    PACKER.with(|cell| {
        let mut slot = cell.borrow_mut();
        let packer = match slot.as_mut() {
            Some(p) => p,
            None => slot.insert(Packer::new().map_err(unavailable(operation))?),
        };
        packer.compress(json).map_err(unavailable(operation))
    })
}

/// [`pack`] undone, never past `max` bytes (a corrupt item cannot make it balloon); the
/// error says why, for a `Corrupt` store error.
pub(crate) fn unpack(bytes: &[u8], max: usize) -> Result<Vec<u8>, String> {
    zstd::bulk::decompress(bytes, max).map_err(|e| e.to_string())
}

/// The items of a packed document: `PAYLOAD#{key}` / `PART#nnnn`, its bytes in `data`.
pub(crate) fn payload_items(packed: &PackedPayload) -> Vec<HashMap<String, AttributeValue>> {
    let pk = keys::payload(&packed.reference.key);
    (packed.parts.iter().enumerate())
        .map(|(i, part)| {
            let mut item = self::key(pk.clone(), format!("PART#{i:04}"));
            item.insert(
                "data".to_owned(),
                AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(part.clone())),
            );
            item.insert("expires_at".to_owned(), n(packed.expires_at));
            item
        })
        .collect()
}

#[async_trait]
impl PayloadStore for DynamoStore {
    fn pack_payload(
        &self,
        key: &str,
        json: &[u8],
        expires_at: i64,
    ) -> Result<PackedPayload, StoreError> {
        let compressed = pack(json, "put_payload")?;
        // Almost always one part: the compressed bytes themselves, not a copy.
        let parts: Vec<Vec<u8>> = match compressed.len() <= PAYLOAD_PART_BYTES {
            true => vec![compressed],
            false => (compressed.chunks(PAYLOAD_PART_BYTES))
                .map(<[u8]>::to_vec)
                .collect(),
        };
        Ok(PackedPayload {
            reference: PayloadRef {
                key: key.to_owned(),
                parts: u32::try_from(parts.len()).unwrap_or(u32::MAX),
                bytes: json.len(),
                digest: crate::event::body_digest(json),
            },
            expires_at,
            parts,
        })
    }

    async fn put_packed(&self, packed: &PackedPayload) -> Result<(), StoreError> {
        (self.wire.put_all(&self.table, payload_items(packed)).await)
            .map_err(unavailable("put_payload"))
    }

    async fn get_payload(&self, reference: &PayloadRef) -> Result<Vec<u8>, StoreError> {
        let pk = keys::payload(&reference.key);
        let mut compressed = Vec::new();
        let mut parts = 0u32;
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(pk.clone()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(unavailable("get_payload"))?;
            for item in out.items() {
                if let Some(AttributeValue::B(b)) = item.get("data") {
                    compressed.extend_from_slice(b.as_ref());
                    parts += 1;
                }
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        let corrupt = |reason: String| StoreError::Corrupt {
            key: pk.clone(),
            reason,
        };
        if parts != reference.parts {
            return Err(corrupt(format!(
                "{parts} of {} parts found",
                reference.parts
            )));
        }
        // The recorded size bounds the output: a corrupt item cannot make it balloon.
        let json = unpack(&compressed, reference.bytes).map_err(corrupt)?;
        if json.len() != reference.bytes || crate::event::body_digest(&json) != reference.digest {
            return Err(corrupt("checksum mismatch".into()));
        }
        Ok(json)
    }
}

#[async_trait]
impl JobStore for DynamoStore {
    async fn get_job(&self, job_id: &str) -> Result<Option<JobRecord>, StoreError> {
        let pk = keys::job(job_id);
        self.get_raw(&pk, keys::JOB_SK)
            .await?
            .map(|item| decode(&pk, item))
            .transpose()
    }

    async fn get_jobs(&self, job_ids: &[String]) -> Result<Vec<JobRecord>, StoreError> {
        let pks: Vec<String> = job_ids.iter().map(|id| keys::job(id)).collect();
        let mut found = self.batch_get(&pks, keys::JOB_SK, true, "get_jobs").await?;
        pks.iter()
            .filter_map(|pk| found.remove(pk).map(|item| decode(pk, item)))
            .collect()
    }

    async fn start_job(
        &self,
        job_id: &str,
        now: OffsetDateTime,
    ) -> Result<StartOutcome, StoreError> {
        let write = wire::Write {
            key: job_key(job_id),
            update: Some("SET #status = :running, started_at = :now".into()),
            condition: Some(
                "#status = :queued AND (attribute_not_exists(cancel_requested) OR cancel_requested = :no)"
                    .into(),
            ),
            names: vec![("#status".into(), "status".into())],
            values: vec![
                (":running".into(), s(JobStatus::Running.as_str())),
                (":queued".into(), s(JobStatus::Queued.as_str())),
                (":no".into(), AttributeValue::Bool(false)),
                (":now".into(), s(rfc3339(now))),
            ],
            old_on_failure: true,
            ..Default::default()
        };
        match self.wire.write(&self.table, write).await {
            Ok(_) => Ok(StartOutcome::Started),
            Err(wire::WireError::ConditionFailed(old)) => {
                let old = old.unwrap_or_default();
                let status = match old.get("status") {
                    Some(AttributeValue::S(v)) => v.as_str(),
                    _ => "",
                };
                if status == JobStatus::Cancelled.as_str()
                    || (status == JobStatus::Queued.as_str()
                        && self.cancel_if_queued(job_id, now).await?)
                {
                    Ok(StartOutcome::Cancelled)
                } else {
                    Ok(StartOutcome::NotQueued)
                }
            }
            Err(e) => Err(unavailable("start_job")(e)),
        }
    }

    async fn append_journal(&self, job_id: &str, line: &str) -> Result<(), StoreError> {
        let line = crate::store::bounded(line, crate::store::JOURNAL_MAX_LINE_BYTES);
        let write = wire::Write {
            key: job_key(job_id),
            update: Some("SET journal = list_append(if_not_exists(journal, :empty), :line)".into()),
            condition: Some(
                "attribute_exists(pk) AND (attribute_not_exists(journal) OR size(journal) < :max)"
                    .into(),
            ),
            values: vec![
                (":empty".into(), AttributeValue::L(Vec::new())),
                (":line".into(), AttributeValue::L(vec![s(line)])),
                (":max".into(), n(crate::store::JOURNAL_MAX_LINES as i64)),
            ],
            ..Default::default()
        };
        match self.wire.write(&self.table, write).await {
            Ok(_) => Ok(()),
            // Full journal (or no such job): the line is dropped, the job goes on.
            Err(wire::WireError::ConditionFailed(_)) => Ok(()),
            Err(e) => Err(unavailable("append_journal")(e)),
        }
    }

    async fn request_cancel(
        &self,
        job_id: &str,
        now: OffsetDateTime,
    ) -> Result<Option<JobStatus>, StoreError> {
        let result = self
            .job_update(job_id)
            .update_expression("SET cancel_requested = :yes")
            .condition_expression("attribute_exists(pk) AND #status IN (:queued, :running)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(":queued", s(JobStatus::Queued.as_str()))
            .expression_attribute_values(":running", s(JobStatus::Running.as_str()))
            .send()
            .await;
        match result {
            Ok(_) => {
                if self.cancel_if_queued(job_id, now).await? {
                    return Ok(Some(JobStatus::Cancelled));
                }
                Ok(self.get_job(job_id).await?.map(|j| j.status))
            }
            Err(e) if condition_failed(&e) => Ok(self.get_job(job_id).await?.map(|j| j.status)),
            Err(e) => Err(unavailable("request_cancel")(e)),
        }
    }

    async fn finish_job(
        &self,
        job_id: &str,
        status: JobStatus,
        error: Option<&str>,
        output: Option<&serde_json::Value>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let pk = keys::job(job_id);
        let mut e = Expr::default();
        e.set("status", s(status.as_str()));
        e.set("finished_at", s(rfc3339(now)));
        if let Some(err) = error {
            e.set("error", s(crate::store::bounded(err, 1024)));
        }
        if let Some(out) = output {
            e.set("output", encode_value(&pk, out)?);
        }
        let status_name = e.name("status");
        let running = e.value("running", s(JobStatus::Running.as_str()));
        let write = e.into_update(job_key(job_id), "", format!("{status_name} = {running}"));
        (self.wire.write(&self.table, write).await).map_err(unavailable("finish_job"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expression_names_every_attribute_and_value_it_writes() {
        let mut e = Expr::default();
        e.set("status", s("queued"));
        e.set_first("received_at", s("t0"));
        let status = e.name("status");
        assert_eq!(status, "#status");
        assert_eq!(
            e.update_expression(" REMOVE #status"),
            "SET #status = :set_status, #received_at = if_not_exists(#received_at, :first_received_at) REMOVE #status"
        );
        // `#status` asked for twice, listed once; a placeholder set again holds the last value.
        assert_eq!(
            e.names,
            [
                ("#status".to_owned(), "status".to_owned()),
                ("#received_at".to_owned(), "received_at".to_owned())
            ]
        );
        e.value("first_received_at", s("t1"));
        assert_eq!(
            e.values,
            [
                (":set_status".to_owned(), s("queued")),
                (":first_received_at".to_owned(), s("t1"))
            ]
        );
    }

    #[test]
    fn reservation_tokens_differ_and_look_like_simple_uuids() {
        let tokens: std::collections::HashSet<String> =
            (0..1000).map(|_| reservation_token()).collect();
        assert_eq!(tokens.len(), 1000);
        assert!(
            tokens
                .iter()
                .all(|t| t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        );
    }

    #[test]
    fn the_reused_compression_context_packs_as_a_fresh_one_set_the_same_way() {
        use zstd::stream::raw::CParameter;
        let fresh = |json: &[u8], small: bool| {
            let mut c = zstd::bulk::Compressor::new(PAYLOAD_ZSTD_LEVEL).unwrap();
            if small {
                c.set_parameter(CParameter::HashLog(SMALL_HASH_LOG))
                    .unwrap();
                c.set_parameter(CParameter::ChainLog(SMALL_CHAIN_LOG))
                    .unwrap();
            }
            c.compress(json).unwrap()
        };
        let a = br#"{"action":"opened","number":1,"body":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}"#;
        let b: Vec<u8> = (0..40_000u32)
            .map(|i| b"abcdefgh"[(i % 7) as usize])
            .collect();
        // Over SMALL_PACK_BYTES, with matches farther apart than the small tables reach.
        let c: Vec<u8> = (0..200_000u32)
            .map(|i| b"0123456789abcdef"[(i.wrapping_mul(2_654_435_761) >> 28) as usize])
            .collect();
        let pr = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../events/github-pull_request-opened.json"
        ))
        .unwrap();
        let sequence = [&a[..], &b[..], &c[..], &a[..], &pr[..], &c[..], &b[..]];
        for (round, json) in sequence.into_iter().enumerate() {
            let packed = pack(json, "test").unwrap();
            let small = json.len() <= SMALL_PACK_BYTES;
            assert_eq!(packed, fresh(json, small), "round {round}");
            assert_eq!(unpack(&packed, json.len()).unwrap(), json);
        }
        // The large text went through the level's own tables, not the small ones.
        assert_eq!(
            pack(&c, "test").unwrap(),
            zstd::bulk::compress(&c, PAYLOAD_ZSTD_LEVEL).unwrap()
        );
        // The small tables cost the pull request fixture, compact as it is stored, under
        // 1 % of its packed size.
        let value: serde_json::Value = serde_json::from_slice(&pr).unwrap();
        let compact = serde_json::to_vec(&value).unwrap();
        let default = zstd::bulk::compress(&compact, PAYLOAD_ZSTD_LEVEL)
            .unwrap()
            .len();
        let small = pack(&compact, "test").unwrap().len();
        assert!(small * 100 <= default * 101, "{small} against {default}");
        // Never past `max`: a corrupt or lying item cannot balloon.
        assert!(unpack(&pack(&b, "test").unwrap(), 100).is_err());
    }
}
