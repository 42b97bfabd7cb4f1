//! DynamoDB adapter of the store traits: one table (`pk`, `sk`), TTL on `expires_at`.
//! Every condition on a TTL'd item compares `expires_at` with now, because TTL deletion
//! lags by hours to days. Round trips per delivery: reserve (1), claim (1 transaction, plus
//! one per retry when a cooldown or an earlier attempt's job cancels it), finish (1).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, Put, ReturnValue, ReturnValuesOnConditionCheckFailure,
    ScalarAttributeType, TimeToLiveSpecification, TransactWriteItem, Update,
};
use sha2::Digest as _;
use time::OffsetDateTime;

use super::{
    Claim, ClaimOutcome, DispatchStore, EventRecord, EventStatus, EventStore, Finish, JobRecord,
    JobStatus, JobStore, PayloadRef, PayloadStore, Reservation, SchedulerStore, SettingsRecord,
    SettingsStore, StartOutcome, StoreError, keys, rfc3339,
};
use crate::settings::Settings;

mod listing;
pub mod metered;
mod queue;

// DynamoDB allows 100 actions per transaction; a claim takes two (job and cooldown).
const MAX_TRANSACT_ITEMS: usize = 100;
// Retries of a transaction that lost a race (TransactionConflict) before giving up.
const CONFLICT_RETRIES: u32 = 5;

/// The DynamoDB store.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
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

/// Builds `SET #a0 = :v0, ...` with names and values, so reserved words need no care.
#[derive(Default)]
struct Expr {
    sets: Vec<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expr {
    fn name(&mut self, attr: &str) -> String {
        let key = format!("#{attr}");
        self.names.insert(key.clone(), attr.to_owned());
        key
    }
    fn value(&mut self, placeholder: &str, v: AttributeValue) -> String {
        let key = format!(":{placeholder}");
        self.values.insert(key.clone(), v);
        key
    }
    fn set(&mut self, attr: &str, v: AttributeValue) {
        let name = self.name(attr);
        let value = self.value(&format!("set_{attr}"), v);
        self.sets.push(format!("{name} = {value}"));
    }
    fn update_expression(&self, extra: &str) -> String {
        format!("SET {}{extra}", self.sets.join(", "))
    }
}

impl DynamoStore {
    /// A store over `table` with a client built once at start-up.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
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
            .global_secondary_indexes(index(keys::BY_TIME_INDEX, "gsi1pk", "gsi1sk")?)
            .global_secondary_indexes(index(keys::BY_MODULE_INDEX, "gsi2pk", "gsi2sk")?)
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
            .key("pk", s(keys::job(job_id)))
            .key("sk", s(keys::JOB_SK))
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

    /// Reads items by partition key (one sort key for all), 100 keys per BatchGetItem,
    /// unprocessed keys sent again; returns them by partition key.
    pub(super) async fn batch_get(
        &self,
        pks: &[String],
        sk: &str,
        operation: &'static str,
    ) -> Result<HashMap<String, HashMap<String, AttributeValue>>, StoreError> {
        use aws_sdk_dynamodb::types::KeysAndAttributes;
        let mut found = HashMap::new();
        let mut unique: Vec<&String> = pks.iter().collect();
        unique.sort();
        unique.dedup();
        for chunk in unique.chunks(100) {
            let keys: Vec<HashMap<String, AttributeValue>> = chunk
                .iter()
                .map(|pk| HashMap::from([("pk".to_owned(), s(*pk)), ("sk".to_owned(), s(sk))]))
                .collect();
            let mut request = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .consistent_read(true)
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
                    if let Some(AttributeValue::S(pk)) = item.get("pk") {
                        found.insert(pk.clone(), item);
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

    fn claim_items(&self, claim: &Claim, now: i64) -> Result<Vec<TransactWriteItem>, StoreError> {
        let job = &claim.job;
        let mut items = Vec::with_capacity(2);
        if let Some(until) = claim.cooldown_until {
            let pk = keys::cooldown(
                &job.module,
                &keys::cooldown_entity(&job.event_source, &job.entity),
            );
            let mut item = HashMap::new();
            item.insert("pk".to_owned(), s(pk.clone()));
            item.insert("sk".to_owned(), s(keys::COOLDOWN_SK));
            item.insert("module".to_owned(), s(job.module.clone()));
            item.insert("entity".to_owned(), s(job.entity.clone()));
            item.insert("job_id".to_owned(), s(job.job_id.clone()));
            item.insert("event_id".to_owned(), s(job.event_id.clone()));
            item.insert("expires_at".to_owned(), n(until));
            // Free when absent, expired (TTL may not have swept it yet), or set by this very
            // job (an earlier attempt of the same delivery).
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression(
                    "attribute_not_exists(pk) OR expires_at <= :now OR job_id = :job",
                )
                .expression_attribute_values(":now", n(now))
                .expression_attribute_values(":job", s(job.job_id.clone()))
                // The holder's expiry comes back with the cancellation, for the explanation.
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .build()
                .map_err(unavailable("claim"))?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
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
        let created = parse_time(
            &job.created_at,
            OffsetDateTime::from_unix_timestamp(now).unwrap_or(OffsetDateTime::UNIX_EPOCH),
        );
        let sort = keys::time_sort(created, &job.job_id);
        e.set("gsi1pk", s(keys::jobs_on(&keys::day(created))));
        e.set("gsi1sk", s(sort.clone()));
        e.set("gsi2pk", s(keys::jobs_of(&job.module)));
        e.set("gsi2sk", s(sort));
        let attempts = e.name("attempts");
        let one = e.value("one", n(1));
        let error = e.name("error");
        let finished = e.name("finished_at");
        let started = e.name("started_at");
        let status = e.name("status");
        let queued = e.value("queued", s(JobStatus::Queued.as_str()));
        let failed = e.value("failed", s(JobStatus::Failed.as_str()));
        let update = Update::builder()
            .table_name(&self.table)
            .key("pk", s(keys::job(&job.job_id)))
            .key("sk", s(keys::JOB_SK))
            .update_expression(e.update_expression(&format!(
                " ADD {attempts} {one} REMOVE {error}, {finished}, {started}"
            )))
            // A job that is running or finished was already dispatched by an earlier attempt.
            .condition_expression(format!(
                "attribute_not_exists(pk) OR {status} IN ({queued}, {failed})"
            ))
            .set_expression_attribute_names(Some(e.names))
            .set_expression_attribute_values(Some(e.values))
            .build()
            .map_err(unavailable("claim"))?;
        items.push(TransactWriteItem::builder().update(update).build());
        Ok(items)
    }

    fn fail_job_item(
        &self,
        job_id: &str,
        error: &str,
        now: OffsetDateTime,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .key("pk", s(keys::job(job_id)))
            .key("sk", s(keys::JOB_SK))
            .update_expression("SET #status = :failed, #error = :error, finished_at = :now")
            .condition_expression("#status = :queued")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#error", "error")
            .expression_attribute_values(":failed", s(JobStatus::Failed.as_str()))
            .expression_attribute_values(":queued", s(JobStatus::Queued.as_str()))
            .expression_attribute_values(":error", s(super::bounded(error, 1024)))
            .expression_attribute_values(":now", s(rfc3339(now)))
            .build()
            .map_err(unavailable("finish"))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

fn attr_def(name: &str) -> Result<AttributeDefinition, StoreError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(unavailable("create_table"))
}

fn index(name: &str, hash: &str, range: &str) -> Result<GlobalSecondaryIndex, StoreError> {
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key_elem(hash, KeyType::Hash)?)
        .key_schema(key_elem(range, KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
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

/// An event item with its by-day index keys, for plain puts.
fn event_item(record: &EventRecord) -> Result<HashMap<String, AttributeValue>, StoreError> {
    let mut item = encode(&record.pk, record)?;
    let received_at = parse_time(&record.received_at, OffsetDateTime::UNIX_EPOCH);
    item.insert("gsi1pk".into(), s(keys::events_on(&keys::day(received_at))));
    item.insert(
        "gsi1sk".into(),
        s(keys::time_sort(
            received_at,
            &format!("{}#{}", record.source, record.event_id),
        )),
    );
    Ok(item)
}

#[async_trait]
impl EventStore for DynamoStore {
    async fn reserve(
        &self,
        record: &EventRecord,
        now: OffsetDateTime,
    ) -> Result<Reservation, StoreError> {
        let now_s = now.unix_timestamp();
        let token = uuid::Uuid::new_v4().to_string();
        let mut e = Expr::default();
        for (attr, v) in [
            ("source", s(record.source.clone())),
            ("event_id", s(record.event_id.clone())),
            ("event_type", s(record.event_type.clone())),
            ("entity", s(record.entity.clone())),
            ("body_digest", s(record.body_digest.clone())),
            (
                "status",
                encode_value(&record.pk, &EventStatus::InProgress)?,
            ),
            ("lease_expires_at", n(record.lease_expires_at)),
            ("lease_token", s(token.clone())),
            ("expires_at", n(record.expires_at)),
        ] {
            e.set(attr, v);
        }
        if let Some(a) = &record.action {
            e.set("action", s(a.clone()));
        }
        // The first attempt's receive time (and its place in the by-day index) is kept
        // across takeovers.
        let received_at = parse_time(&record.received_at, now);
        for (attr, v) in [
            ("received_at", s(record.received_at.clone())),
            ("gsi1pk", s(keys::events_on(&keys::day(received_at)))),
            (
                "gsi1sk",
                s(keys::time_sort(
                    received_at,
                    &format!("{}#{}", record.source, record.event_id),
                )),
            ),
        ] {
            let name = e.name(attr);
            let value = e.value(&format!("first_{attr}"), v);
            e.sets
                .push(format!("{name} = if_not_exists({name}, {value})"));
        }
        match &record.envelope {
            Some(super::Envelope::Inline(bytes)) => e.set(
                "envelope",
                AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(bytes.clone())),
            ),
            Some(super::Envelope::Stored(reference)) => {
                e.set("envelope_ref", encode_value(&record.pk, reference)?);
            }
            None => {}
        }
        let attempts = e.name("attempts");
        let one = e.value("one", n(1));
        let now_v = e.value("now", n(now_s));
        let status = e.name("status");
        let hash = e.name("body_digest");
        let lease = e.name("lease_expires_at");
        let expires = e.name("expires_at");
        let h = e.value("hash", s(record.body_digest.clone()));
        let failed = e.value("failed", encode_value(&record.pk, &EventStatus::Failed)?);
        let condition = format!(
            "attribute_not_exists(pk) OR {expires} <= {now_v} OR ({hash} = {h} AND ({status} = {failed} OR ({status} <> :completed AND {lease} <= {now_v})))"
        );
        e.value(
            "completed",
            encode_value(&record.pk, &EventStatus::Completed)?,
        );
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(record.pk.clone()))
            .key("sk", s(keys::EVENT_SK))
            .update_expression(e.update_expression(&format!(" ADD {attempts} {one}")))
            .condition_expression(condition)
            .set_expression_attribute_names(Some(e.names))
            .set_expression_attribute_values(Some(e.values))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => match out.attributes {
                Some(old) if !old.is_empty() => {
                    let previous: EventRecord = decode(&record.pk, old)?;
                    if previous.expires_at <= now_s {
                        Ok(Reservation::Fresh { token })
                    } else {
                        Ok(Reservation::Resumed {
                            token,
                            previous: Box::new(previous),
                        })
                    }
                }
                _ => Ok(Reservation::Fresh { token }),
            },
            Err(SdkError::ServiceError(se)) => match se.into_err() {
                UpdateItemError::ConditionalCheckFailedException(c) => {
                    let existing: EventRecord = decode(&record.pk, c.item.unwrap_or_default())?;
                    if existing.lease_token.as_deref() == Some(token.as_str()) {
                        // Our own write: the SDK retried it after an attempt timed out with
                        // the write applied. This attempt holds the reservation; resume from
                        // the item as it stands (jobs of earlier attempts are on it).
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
                other => Err(unavailable("reserve")(other)),
            },
            Err(other) => Err(unavailable("reserve")(other)),
        }
    }

    async fn finish(
        &self,
        pk: &str,
        token: &str,
        finish: &Finish,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut e = Expr::default();
        e.set("status", encode_value(pk, &finish.status)?);
        e.set("jobs", encode_value(pk, &finish.jobs)?);
        e.set("skipped", encode_value(pk, &finish.skipped)?);
        // Releasing the lease lets a redelivery resume a failed event at once.
        e.set("lease_expires_at", n(0));
        let token_name = e.name("lease_token");
        let token_v = e.value("token", s(token));
        let expr = format!("{} REMOVE {token_name}", e.update_expression(""));
        let condition = format!("{token_name} = {token_v}");
        if finish.failed_jobs.is_empty() {
            self.client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(pk))
                .key("sk", s(keys::EVENT_SK))
                .update_expression(expr)
                .condition_expression(condition)
                .set_expression_attribute_names(Some(e.names))
                .set_expression_attribute_values(Some(e.values))
                .send()
                .await
                .map_err(unavailable("finish"))?;
            return Ok(());
        }
        let event_update = Update::builder()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(keys::EVENT_SK))
            .update_expression(expr)
            .condition_expression(condition)
            .set_expression_attribute_names(Some(e.names))
            .set_expression_attribute_values(Some(e.values))
            .build()
            .map_err(unavailable("finish"))?;
        let mut items = vec![TransactWriteItem::builder().update(event_update).build()];
        for (job_id, error) in &finish.failed_jobs {
            items.push(self.fail_job_item(job_id, error, now)?);
        }
        for chunk in items.chunks(MAX_TRANSACT_ITEMS) {
            self.client
                .transact_write_items()
                .set_transact_items(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(unavailable("finish"))?;
        }
        Ok(())
    }

    async fn get_event(&self, pk: &str) -> Result<Option<EventRecord>, StoreError> {
        self.get_raw(pk, keys::EVENT_SK)
            .await?
            .map(|item| decode(pk, item))
            .transpose()
    }

    async fn load_event(&self, pk: &str) -> Result<Option<crate::event::Event>, StoreError> {
        use std::io::Read as _;
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(keys::EVENT_SK))
            .projection_expression("envelope, envelope_ref, expires_at")
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable("load_event"))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let corrupt = |reason: String| StoreError::Corrupt {
            key: pk.to_owned(),
            reason,
        };
        let json = match (item.get("envelope"), item.get("envelope_ref")) {
            (Some(AttributeValue::B(b)), _) => {
                let mut json = Vec::new();
                flate2::read::DeflateDecoder::new(b.as_ref())
                    .read_to_end(&mut json)
                    .map_err(|e| corrupt(e.to_string()))?;
                json
            }
            (_, Some(r)) => {
                let reference: PayloadRef = serde_dynamo::from_attribute_value(r.clone())
                    .map_err(|e| corrupt(e.to_string()))?;
                self.get_payload(&reference).await?
            }
            _ => return Ok(None),
        };
        serde_json::from_slice(&json)
            .map(Some)
            .map_err(|e| corrupt(e.to_string()))
    }

    async fn reopen(
        &self,
        pk: &str,
        lease_expires_at: i64,
        now: OffsetDateTime,
    ) -> Result<super::Reopened, StoreError> {
        let now_s = now.unix_timestamp();
        let token = uuid::Uuid::new_v4().to_string();
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
            Ok(out) => Ok(super::Reopened::Taken {
                token,
                previous: Box::new(decode(pk, out.attributes.unwrap_or_default())?),
            }),
            Err(SdkError::ServiceError(se)) => match se.into_err() {
                UpdateItemError::ConditionalCheckFailedException(c) => match c.item {
                    Some(item) if !item.is_empty() => {
                        let existing: EventRecord = decode(pk, item)?;
                        if existing.expires_at <= now_s {
                            Ok(super::Reopened::Missing)
                        } else {
                            let retry_after = u64::try_from(existing.lease_expires_at - now_s)
                                .unwrap_or(1)
                                .max(1);
                            Ok(super::Reopened::InProgress { retry_after })
                        }
                    }
                    _ => Ok(super::Reopened::Missing),
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
        let mut outcome = ClaimOutcome::default();
        let mut pending: Vec<usize> = (0..claims.len()).collect();
        let mut conflicts = 0;
        while !pending.is_empty() {
            // Group whole claims into transactions of at most 100 actions.
            let mut batch: Vec<usize> = Vec::new();
            let mut items: Vec<TransactWriteItem> = Vec::new();
            // (item index -> (claim index, is_cooldown))
            let mut owners: Vec<(usize, bool)> = Vec::new();
            for &i in &pending {
                let claim_items = self.claim_items(&claims[i], now_s)?;
                if items.len() + claim_items.len() > MAX_TRANSACT_ITEMS {
                    break;
                }
                let has_cooldown = claim_items.len() == 2;
                if has_cooldown {
                    owners.push((i, true));
                }
                owners.push((i, false));
                items.extend(claim_items);
                batch.push(i);
            }
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items))
                .send()
                .await;
            match result {
                Ok(_) => {
                    outcome.claimed.extend(&batch);
                    pending.retain(|i| !batch.contains(i));
                }
                Err(SdkError::ServiceError(se)) => match se.into_err() {
                    TransactWriteItemsError::TransactionCanceledException(c) => {
                        let reasons = c.cancellation_reasons();
                        let mut dropped = false;
                        for (item_idx, reason) in reasons.iter().enumerate() {
                            if reason.code() != Some("ConditionalCheckFailed") {
                                continue;
                            }
                            let Some(&(claim_idx, is_cooldown)) = owners.get(item_idx) else {
                                continue;
                            };
                            dropped = true;
                            pending.retain(|&p| p != claim_idx);
                            if is_cooldown {
                                let until = reason.item().and_then(|i| match i.get("expires_at") {
                                    Some(AttributeValue::N(v)) => v.parse().ok(),
                                    _ => None,
                                });
                                if !outcome.cooling.iter().any(|(c, _)| *c == claim_idx) {
                                    outcome.cooling.push((claim_idx, until));
                                }
                            } else if !outcome.already.contains(&claim_idx) {
                                outcome.already.push(claim_idx);
                            }
                        }
                        if !dropped {
                            // Cancelled by a concurrent transaction on the same items: retry.
                            conflicts += 1;
                            if conflicts > CONFLICT_RETRIES {
                                return Err(StoreError::Unavailable {
                                    operation: "claim",
                                    source: "transaction kept conflicting with concurrent writes"
                                        .into(),
                                });
                            }
                            tokio::time::sleep(std::time::Duration::from_millis(
                                20 * u64::from(conflicts),
                            ))
                            .await;
                        }
                    }
                    other => return Err(unavailable("claim")(other)),
                },
                Err(other) => return Err(unavailable("claim")(other)),
            }
        }
        // A claim whose cooldown failed and whose job also failed counts once, as cooling.
        outcome
            .already
            .retain(|i| !outcome.cooling.iter().any(|(c, _)| c == i));
        Ok(outcome)
    }

    async fn cooldowns(
        &self,
        pairs: &[(String, String)],
        now: OffsetDateTime,
    ) -> Result<Vec<Option<i64>>, StoreError> {
        let now_s = now.unix_timestamp();
        let pks: Vec<String> = pairs
            .iter()
            .map(|(module, entity)| keys::cooldown(module, entity))
            .collect();
        let found = self.batch_get(&pks, keys::COOLDOWN_SK, "cooldowns").await?;
        Ok(pks
            .iter()
            .map(|pk| {
                found
                    .get(pk)
                    .and_then(|item| match item.get("expires_at") {
                        Some(AttributeValue::N(v)) => v.parse::<i64>().ok(),
                        _ => None,
                    })
                    .filter(|until| *until > now_s)
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
            .batch_get(&pks, keys::SETTINGS_SK, "get_settings")
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
            .set_item(Some(event_item(record)?))
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

#[async_trait]
impl PayloadStore for DynamoStore {
    async fn put_payload(
        &self,
        key: &str,
        json: &[u8],
        expires_at: i64,
    ) -> Result<PayloadRef, StoreError> {
        use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
        use std::io::Write as _;
        let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(json).map_err(unavailable("put_payload"))?;
        let compressed = enc.finish().map_err(unavailable("put_payload"))?;
        let pk = keys::payload(key);
        let mut requests = Vec::new();
        for (i, part) in compressed.chunks(PAYLOAD_PART_BYTES).enumerate() {
            let mut item = HashMap::new();
            item.insert("pk".to_owned(), s(pk.clone()));
            item.insert("sk".to_owned(), s(format!("PART#{i:04}")));
            item.insert(
                "data".to_owned(),
                AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(part)),
            );
            item.insert("expires_at".to_owned(), n(expires_at));
            let put = PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map_err(unavailable("put_payload"))?;
            requests.push(WriteRequest::builder().put_request(put).build());
        }
        let parts = u32::try_from(requests.len()).unwrap_or(u32::MAX);
        // 25 requests per batch; unprocessed ones are sent again a few times.
        for batch in requests.chunks(25) {
            let mut pending = batch.to_vec();
            for attempt in 0..5u64 {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(unavailable("put_payload"))?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.table))
                    .unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50 * (attempt + 1))).await;
            }
            if !pending.is_empty() {
                return Err(StoreError::Unavailable {
                    operation: "put_payload",
                    source: "payload parts left unprocessed".into(),
                });
            }
        }
        Ok(PayloadRef {
            key: key.to_owned(),
            parts,
            bytes: json.len(),
            sha256: hex::encode(sha2::Sha256::digest(json)),
        })
    }

    async fn get_payload(&self, reference: &PayloadRef) -> Result<Vec<u8>, StoreError> {
        use std::io::Read as _;
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
        let mut json = Vec::with_capacity(reference.bytes);
        flate2::read::DeflateDecoder::new(compressed.as_slice())
            .read_to_end(&mut json)
            .map_err(|e| corrupt(e.to_string()))?;
        if hex::encode(sha2::Sha256::digest(&json)) != reference.sha256 {
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
        let mut found = self.batch_get(&pks, keys::JOB_SK, "get_jobs").await?;
        pks.iter()
            .filter_map(|pk| found.remove(pk).map(|item| decode(pk, item)))
            .collect()
    }

    async fn start_job(
        &self,
        job_id: &str,
        now: OffsetDateTime,
    ) -> Result<StartOutcome, StoreError> {
        let result = self.job_update(job_id)
            .update_expression("SET #status = :running, started_at = :now")
            .condition_expression("#status = :queued AND (attribute_not_exists(cancel_requested) OR cancel_requested = :no)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":running", s(JobStatus::Running.as_str()))
            .expression_attribute_values(":queued", s(JobStatus::Queued.as_str()))
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .expression_attribute_values(":now", s(rfc3339(now)))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(StartOutcome::Started),
            Err(SdkError::ServiceError(se)) => match se.into_err() {
                UpdateItemError::ConditionalCheckFailedException(c) => {
                    let old = c.item.unwrap_or_default();
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
                other => Err(unavailable("start_job")(other)),
            },
            Err(e) => Err(unavailable("start_job")(e)),
        }
    }

    async fn append_journal(&self, job_id: &str, line: &str) -> Result<(), StoreError> {
        let line = super::bounded(line, super::JOURNAL_MAX_LINE_BYTES);
        let result = self
            .job_update(job_id)
            .update_expression("SET journal = list_append(if_not_exists(journal, :empty), :line)")
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(journal) OR size(journal) < :max)",
            )
            .expression_attribute_values(":empty", AttributeValue::L(Vec::new()))
            .expression_attribute_values(":line", AttributeValue::L(vec![s(line)]))
            .expression_attribute_values(":max", n(super::JOURNAL_MAX_LINES as i64))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Full journal (or no such job): the line is dropped, the job goes on.
            Err(e) if condition_failed(&e) => Ok(()),
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
            e.set("error", s(super::bounded(err, 1024)));
        }
        if let Some(out) = output {
            e.set("output", encode_value(&pk, out)?);
        }
        let status_name = e.name("status");
        let running = e.value("running", s(JobStatus::Running.as_str()));
        self.job_update(job_id)
            .update_expression(e.update_expression(""))
            .condition_expression(format!("{status_name} = {running}"))
            .set_expression_attribute_names(Some(e.names))
            .set_expression_attribute_values(Some(e.values))
            .send()
            .await
            .map_err(unavailable("finish_job"))?;
        Ok(())
    }
}
