//! Pull jobs: a module's queue spread over `shards` partitions (`QUEUE#<module>#<nn>`, sort
//! key `<created>#<job>`), leased with a visibility time and a fencing token. Every lease,
//! heartbeat and finish is a transaction over the queue item and the job item, each
//! conditioned on what was read, so two workers never both win a job and a worker that lost
//! its lease changes nothing (atomicity is what these need). Enqueueing is one put of the
//! queue item (the claim recorded its key on the job), or, for a delivery's only pull job,
//! one `BatchWriteItem` of the queue item, the delivery's stored event and, when the
//! dispatcher writes it ahead, its event item with the outcome. A lease reads its queue page
//! by page until it finds a job it can take.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, TransactWriteItem, Update};
use time::OffsetDateTime;

use super::{DynamoStore, Expr, decode, encode_value, keys, n, s, unavailable};
use crate::manifest::PullTarget;
use crate::store::{
    Closing, Heartbeat, JobRecord, JobStatus, JobStore as _, LeaseFinish, Leased, PackedPayload,
    StoreError, WorkQueue, bounded, rfc3339,
};

/// What a lease attempt reads of a queue item (never the context).
#[derive(Debug)]
struct Candidate {
    pk: String,
    sk: String,
    job_id: String,
    visible_at: i64,
    attempts: u32,
    max_attempts: u32,
    lease_seconds: i64,
}

fn num(item: &HashMap<String, AttributeValue>, key: &str) -> i64 {
    item.get(key)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn text(item: &HashMap<String, AttributeValue>, key: &str) -> String {
    item.get(key)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

/// Queue items one query reads.
const QUEUE_PAGE: i32 = 100;

/// Query pages one lease request reads at most (1 MB each; the first round reads one per
/// shard) before it answers "nothing".
const MAX_LEASE_PAGES: usize = 256;

fn ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// Outcome of a transaction whose conditions may fail: which items' conditions failed.
enum Tx {
    Done,
    Refused(Vec<bool>),
}

impl DynamoStore {
    async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
        op: &'static str,
    ) -> Result<Tx, StoreError> {
        let count = items.len();
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(Tx::Done),
            Err(SdkError::ServiceError(se)) => match se.into_err() {
                TransactWriteItemsError::TransactionCanceledException(c) => {
                    let reasons = c.cancellation_reasons();
                    if reasons
                        .iter()
                        .any(|r| r.code() == Some("TransactionConflict"))
                    {
                        // Another writer was on the same items: as good as losing the race.
                        return Ok(Tx::Refused(vec![true; count]));
                    }
                    Ok(Tx::Refused(
                        (0..count)
                            .map(|i| {
                                reasons.get(i).and_then(|r| r.code())
                                    == Some("ConditionalCheckFailed")
                            })
                            .collect(),
                    ))
                }
                other => Err(unavailable(op)(other)),
            },
            Err(e) => Err(unavailable(op)(e)),
        }
    }

    fn queue_update(&self, pk: &str, sk: &str) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
        Update::builder()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
    }

    fn job_tx_update(&self, job_id: &str) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
        Update::builder()
            .table_name(&self.table)
            .key("pk", s(keys::job(job_id)))
            .key("sk", s(keys::JOB_SK))
    }

    fn queue_delete(&self, pk: &str, sk: &str) -> aws_sdk_dynamodb::types::builders::DeleteBuilder {
        Delete::builder()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
    }

    /// One page of queue shard `pk`'s items visible at `now`, oldest first (keys and
    /// counters only), and where the page stopped when there is more.
    async fn candidates(
        &self,
        pk: &str,
        start: Option<HashMap<String, AttributeValue>>,
        now: OffsetDateTime,
    ) -> Result<(Vec<Candidate>, Option<HashMap<String, AttributeValue>>), StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .filter_expression("visible_at <= :now AND expires_at > :now_s")
            .projection_expression("sk, job_id, visible_at, attempts, max_attempts, lease_seconds")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":now", n(ms(now)))
            .expression_attribute_values(":now_s", n(now.unix_timestamp()))
            .consistent_read(true)
            // Pages of QUEUE_PAGE items (DynamoDB's own cap is 1 MB): a lease reads little
            // when the head of the queue is leasable, and pages on when it is not.
            .limit(QUEUE_PAGE)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(unavailable("queue_query"))?;
        let next = out.last_evaluated_key.clone().filter(|k| !k.is_empty());
        let found = out
            .items()
            .iter()
            .map(|item| Candidate {
                pk: pk.to_owned(),
                sk: text(item, "sk"),
                job_id: text(item, "job_id"),
                visible_at: num(item, "visible_at"),
                attempts: u32::try_from(num(item, "attempts")).unwrap_or(0),
                max_attempts: u32::try_from(num(item, "max_attempts")).unwrap_or(1),
                lease_seconds: num(item, "lease_seconds").max(1),
            })
            .collect();
        Ok((found, next))
    }

    /// Removes a queue item whose job cannot be leased any more (finished, cancelled),
    /// unless someone leased it meanwhile; ends a running job whose cancel was requested.
    async fn retire(&self, c: &Candidate, now: OffsetDateTime) -> Result<(), StoreError> {
        let Some(job) = self.get_job(&c.job_id).await? else {
            return self.drop_item(c).await;
        };
        if job.status == JobStatus::Running && job.cancel_requested {
            self.close(
                c,
                JobStatus::Cancelled,
                "cancelled while its lease had expired",
                now,
            )
            .await?;
            return Ok(());
        }
        if job.status.is_final() {
            return self.drop_item(c).await;
        }
        Ok(())
    }

    async fn drop_item(&self, c: &Candidate) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(&c.pk))
            .key("sk", s(&c.sk))
            .condition_expression("visible_at = :seen")
            .expression_attribute_values(":seen", n(c.visible_at))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if super::condition_failed(&e) => Ok(()),
            Err(e) => Err(unavailable("queue_drop")(e)),
        }
    }

    /// A job whose last lease expired: fails it (and removes it from the queue).
    async fn exhaust(&self, c: &Candidate, now: OffsetDateTime) -> Result<(), StoreError> {
        let error = format!(
            "lease expired {} time(s) without a finish (max_attempts {})",
            c.attempts, c.max_attempts
        );
        match self.close(c, JobStatus::Failed, &error, now).await? {
            Tx::Done => {
                tracing::warn!(job_id = %c.job_id, attempts = c.attempts, "pull job failed: its leases expired");
                Ok(())
            }
            // The job is no longer running (finished by its last holder just now): only
            // the queue item is left to remove.
            Tx::Refused(failed) if failed.first() == Some(&true) => self.drop_item(c).await,
            Tx::Refused(_) => Ok(()),
        }
    }

    /// Ends a running job whose lease is over with `status` and `error`, and removes its
    /// queue item, in one transaction (conditioned on the job running and on the queue item
    /// as read). Item 0 is the job, item 1 the queue item.
    async fn close(
        &self,
        c: &Candidate,
        status: JobStatus,
        error: &str,
        now: OffsetDateTime,
    ) -> Result<Tx, StoreError> {
        let mut e = Expr::default();
        e.set("status", s(status.as_str()));
        e.set("finished_at", s(rfc3339(now)));
        e.set("error", s(error));
        let status_name = e.name("status");
        let running = e.value("running", s(JobStatus::Running.as_str()));
        let update = self
            .job_tx_update(&c.job_id)
            .update_expression(e.update_expression(""))
            .condition_expression(format!("{status_name} = {running}"))
            .set_expression_attribute_names(Some(e.names.into_iter().collect()))
            .set_expression_attribute_values(Some(e.values.into_iter().collect()))
            .build()
            .map_err(unavailable("queue_close"))?;
        let delete = self
            .queue_delete(&c.pk, &c.sk)
            .condition_expression("visible_at = :seen")
            .expression_attribute_values(":seen", n(c.visible_at))
            .build()
            .map_err(unavailable("queue_close"))?;
        self.transact(
            vec![
                TransactWriteItem::builder().update(update).build(),
                TransactWriteItem::builder().delete(delete).build(),
            ],
            "queue_close",
        )
        .await
    }

    /// Tries to lease one candidate; `None` when the race was lost or the job is done.
    async fn try_lease(
        &self,
        c: &Candidate,
        holder: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Leased>, StoreError> {
        let token = uuid::Uuid::new_v4().to_string();
        let attempts = c.attempts + 1;
        let until = now + time::Duration::seconds(c.lease_seconds);
        let queue = self
            .queue_update(&c.pk, &c.sk)
            .update_expression(
                "SET visible_at = :until, attempts = :attempts, lease_token = :token, holder = :holder",
            )
            .condition_expression("visible_at = :seen")
            .expression_attribute_values(":until", n(ms(until)))
            .expression_attribute_values(":attempts", n(i64::from(attempts)))
            .expression_attribute_values(":token", s(&token))
            .expression_attribute_values(":holder", s(holder))
            .expression_attribute_values(":seen", n(c.visible_at))
            .build()
            .map_err(unavailable("lease"))?;
        let job = self
            .job_tx_update(&c.job_id)
            .update_expression(
                "SET #status = :running, started_at = if_not_exists(started_at, :now), \
                 attempts = :attempts, lease_token = :token, lease_holder = :holder, \
                 lease_expires_at = :until_text REMOVE finished_at, #error",
            )
            .condition_expression(
                "#status = :queued OR (#status = :running AND \
                 (attribute_not_exists(cancel_requested) OR cancel_requested = :no))",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#error", "error")
            .expression_attribute_values(":running", s(JobStatus::Running.as_str()))
            .expression_attribute_values(":queued", s(JobStatus::Queued.as_str()))
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .expression_attribute_values(":now", s(rfc3339(now)))
            .expression_attribute_values(":attempts", n(i64::from(attempts)))
            .expression_attribute_values(":token", s(&token))
            .expression_attribute_values(":holder", s(holder))
            .expression_attribute_values(":until_text", s(rfc3339(until)))
            .build()
            .map_err(unavailable("lease"))?;
        match self
            .transact(
                vec![
                    TransactWriteItem::builder().update(queue).build(),
                    TransactWriteItem::builder().update(job).build(),
                ],
                "lease",
            )
            .await?
        {
            Tx::Done => {}
            Tx::Refused(failed) => {
                // The queue item's condition failing means another worker won it; the job's
                // failing means it is done or cancelled: clear its queue item.
                if failed.first() != Some(&true) && failed.get(1) == Some(&true) {
                    self.retire(c, now).await?;
                }
                return Ok(None);
            }
        }
        let queue_pk = c.pk.clone();
        let item = self
            .get_raw(&queue_pk, &c.sk)
            .await?
            .ok_or_else(|| StoreError::Corrupt {
                key: queue_pk.clone(),
                reason: "queue item vanished after its lease".into(),
            })?;
        let context = match item.get("context") {
            // A small context, stored as its JSON text.
            Some(AttributeValue::S(text)) => {
                serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
                    key: queue_pk.clone(),
                    reason: e.to_string(),
                })?
            }
            Some(AttributeValue::B(blob)) => {
                // Bounded by the item limit (400 KB) times zstd's ratio ceiling of the
                // contexts we write; a corrupt blob fails here, not later.
                let json = super::unpack(blob.as_ref(), 64 << 20).map_err(|reason| {
                    StoreError::Corrupt {
                        key: queue_pk.clone(),
                        reason,
                    }
                })?;
                serde_json::from_slice(&json).map_err(|e| StoreError::Corrupt {
                    key: queue_pk.clone(),
                    reason: e.to_string(),
                })?
            }
            _ => serde_json::Value::Null,
        };
        let Some(job) = self.get_job(&c.job_id).await? else {
            return Ok(None);
        };
        Ok(Some(Leased {
            job,
            context,
            lease_token: token,
            lease_expires_at: until,
        }))
    }
}

/// The queue item of a claimed pull job: its module's queue shard, and a sort key of the
/// claim's time, so the oldest job leases first. The claim records it on the job and the
/// enqueue writes the item under it: both compute it from the same job record.
pub(super) fn item_key(job: &JobRecord, shards: u16) -> (String, String) {
    (
        keys::queue_shard(&job.module, keys::shard_of(&job.job_id, shards)),
        switchyard_core::text::concat(&[&job.created_at, "#", &job.job_id]),
    )
}

impl DynamoStore {
    /// The queue item of a claimed pull job. Its context is kept as JSON text when the item
    /// still fits one write unit that way, compressed otherwise (see [`CONTEXT_TEXT_BYTES`]).
    fn queue_item(
        &self,
        job: &JobRecord,
        context: &[u8],
        pull: PullTarget,
        now: OffsetDateTime,
    ) -> Result<HashMap<String, AttributeValue>, StoreError> {
        let (pk, sk) = item_key(job, self.shards);
        let mut item = HashMap::with_capacity(9);
        item.insert("pk".to_owned(), s(&pk));
        item.insert("sk".to_owned(), s(&sk));
        item.insert("job_id".to_owned(), s(&job.job_id));
        item.insert("visible_at".to_owned(), n(ms(now)));
        item.insert("attempts".to_owned(), n(0));
        item.insert("max_attempts".to_owned(), n(i64::from(pull.max_attempts)));
        item.insert("lease_seconds".to_owned(), n(lease_seconds(pull)));
        item.insert("expires_at".to_owned(), n(job.expires_at));
        let context = match std::str::from_utf8(context) {
            Ok(text) if stored_size(&item) + "context".len() + text.len() <= CONTEXT_TEXT_BYTES => {
                s(text)
            }
            _ => AttributeValue::B(Blob::new(super::pack(context, "enqueue")?)),
        };
        item.insert("context".to_owned(), context);
        Ok(item)
    }
}

/// A queue item whose context as JSON text keeps it within this many bytes stores it so; a
/// larger one is compressed. One write unit is 1 KB: a pull request's context (674 bytes,
/// 416 compressed) fits beside the item's other 200-odd bytes, and compressing it cost about
/// 25 µs of a delivery's CPU for no unit saved (docs/performance.md).
pub(super) const CONTEXT_TEXT_BYTES: usize = 1024;

/// An item's size as DynamoDB bills it: each attribute's name and value bytes (numbers
/// counted as their decimal text, an upper bound of DynamoDB's own count).
fn stored_size(item: &HashMap<String, AttributeValue>) -> usize {
    (item.iter())
        .map(|(k, v)| {
            k.len()
                + match v {
                    AttributeValue::S(s) | AttributeValue::N(s) => s.len(),
                    AttributeValue::B(b) => b.as_ref().len(),
                    _ => 8,
                }
        })
        .sum()
}

/// A pull target's lease in seconds, as stored.
pub(super) fn lease_seconds(pull: PullTarget) -> i64 {
    i64::try_from(pull.lease.as_secs()).unwrap_or(300)
}

#[async_trait]
impl WorkQueue for DynamoStore {
    async fn enqueue(
        &self,
        job: &JobRecord,
        context: &[u8],
        pull: PullTarget,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        // One write: the claim recorded this key on the job already. If the job left
        // `queued` meanwhile (cancelled), its queue item is refused at its first lease and
        // removed then.
        let put = super::wire::Write {
            item: Some(self.queue_item(job, context, pull, now)?),
            ..Default::default()
        };
        (self.wire.write(&self.table, put).await).map_err(unavailable("enqueue"))?;
        Ok(())
    }

    async fn enqueue_with(
        &self,
        job: &JobRecord,
        context: &[u8],
        pull: PullTarget,
        now: OffsetDateTime,
        with: &PackedPayload,
        closing: Option<&Closing<'_>>,
    ) -> Result<(), StoreError> {
        // The stored event and the queue item in one BatchWriteItem: both are plain puts
        // (the event's key holds its body's digest; the queue item's key is the claim's),
        // and so is the event item written ahead (the dispatcher's lease fences it).
        let mut items = super::payload_items(with);
        items.push(self.queue_item(job, context, pull, now)?);
        if let Some(closing) = closing {
            items.push(super::closed_event_item(closing, self.shards)?);
        }
        (self.wire.put_all(&self.table, items).await).map_err(unavailable("enqueue"))
    }

    async fn lease(
        &self,
        modules: &[String],
        holder: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Leased>, StoreError> {
        let mut pages = 0;
        for module in modules {
            // Every shard's first page at once (one round trip), then only the shards with
            // more, page by page: a first page of leased or not yet visible items (a query
            // reads at most 1 MB) must not hide the jobs behind it.
            let mut open: Vec<(String, Option<HashMap<String, AttributeValue>>)> = (0..self.shards)
                .map(|i| (keys::queue_shard(module, i), None))
                .collect();
            while !open.is_empty() {
                if pages + open.len() > MAX_LEASE_PAGES {
                    return Ok(None);
                }
                pages += open.len();
                let answers =
                    futures::future::try_join_all(open.into_iter().map(|(pk, start)| async move {
                        self.candidates(&pk, start, now).await.map(|r| (pk, r))
                    }))
                    .await?;
                let mut found = Vec::new();
                open = Vec::new();
                for (pk, (candidates, next)) in answers {
                    found.extend(candidates);
                    if let Some(k) = next {
                        open.push((pk, Some(k)));
                    }
                }
                // Oldest first across the shards (sort keys start with the creation time).
                found.sort_by(|a, b| a.sk.cmp(&b.sk));
                for c in found {
                    if c.attempts >= c.max_attempts {
                        self.exhaust(&c, now).await?;
                        continue;
                    }
                    if let Some(leased) = self.try_lease(&c, holder, now).await? {
                        return Ok(Some(leased));
                    }
                }
            }
        }
        Ok(None)
    }

    async fn heartbeat(
        &self,
        job_id: &str,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<Heartbeat, StoreError> {
        let pk = keys::job(job_id);
        let Some(item) = self.get_raw(&pk, keys::JOB_SK).await? else {
            return Ok(Heartbeat::Missing);
        };
        if text(&item, "lease_token") != token
            || text(&item, "status") != JobStatus::Running.as_str()
        {
            return Ok(Heartbeat::Stale);
        }
        let job: JobRecord = decode(&pk, item.clone())?;
        let until = now + time::Duration::seconds(num(&item, "lease_seconds").max(1));
        let sk = text(&item, "queue_sk");
        let queue = self
            .queue_update(&text(&item, "queue_pk"), &sk)
            .update_expression("SET visible_at = :until")
            .condition_expression("lease_token = :token")
            .expression_attribute_values(":until", n(ms(until)))
            .expression_attribute_values(":token", s(token))
            .build()
            .map_err(unavailable("heartbeat"))?;
        let update = self
            .job_tx_update(job_id)
            .update_expression("SET lease_expires_at = :until")
            .condition_expression("lease_token = :token AND #status = :running")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":until", s(rfc3339(until)))
            .expression_attribute_values(":token", s(token))
            .expression_attribute_values(":running", s(JobStatus::Running.as_str()))
            .build()
            .map_err(unavailable("heartbeat"))?;
        Ok(
            match self
                .transact(
                    vec![
                        TransactWriteItem::builder().update(queue).build(),
                        TransactWriteItem::builder().update(update).build(),
                    ],
                    "heartbeat",
                )
                .await?
            {
                Tx::Done => Heartbeat::Extended {
                    cancel_requested: job.cancel_requested,
                    lease_expires_at: until,
                },
                Tx::Refused(_) => Heartbeat::Stale,
            },
        )
    }

    async fn finish_leased(
        &self,
        job_id: &str,
        token: &str,
        status: JobStatus,
        error: Option<&str>,
        output: Option<&serde_json::Value>,
        now: OffsetDateTime,
    ) -> Result<LeaseFinish, StoreError> {
        let pk = keys::job(job_id);
        let Some(item) = self.get_raw(&pk, keys::JOB_SK).await? else {
            return Ok(LeaseFinish::Missing);
        };
        if text(&item, "lease_token") != token {
            return Ok(LeaseFinish::Stale);
        }
        let job: JobRecord = decode(&pk, item.clone())?;
        let queue_pk = text(&item, "queue_pk");
        let sk = text(&item, "queue_sk");
        let mut e = Expr::default();
        e.set("status", s(status.as_str()));
        e.set("finished_at", s(rfc3339(now)));
        if let Some(err) = error {
            e.set("error", s(bounded(err, 1024)));
        }
        if let Some(out) = output {
            e.set("output", encode_value(&pk, out)?);
        }
        let status_name = e.name("status");
        let running = e.value("running", s(JobStatus::Running.as_str()));
        let token_value = e.value("token", s(token));
        let update = self
            .job_tx_update(job_id)
            .update_expression(e.update_expression(""))
            .condition_expression(format!(
                "{status_name} = {running} AND lease_token = {token_value}"
            ))
            .set_expression_attribute_names(Some(e.names.into_iter().collect()))
            .set_expression_attribute_values(Some(e.values.into_iter().collect()))
            .build()
            .map_err(unavailable("finish_leased"))?;
        let delete = self
            .queue_delete(&queue_pk, &sk)
            .condition_expression("lease_token = :token")
            .expression_attribute_values(":token", s(token))
            .build()
            .map_err(unavailable("finish_leased"))?;
        Ok(
            match self
                .transact(
                    vec![
                        TransactWriteItem::builder().update(update).build(),
                        TransactWriteItem::builder().delete(delete).build(),
                    ],
                    "finish_leased",
                )
                .await?
            {
                Tx::Done => LeaseFinish::Recorded(Box::new(job)),
                Tx::Refused(_) => LeaseFinish::Stale,
            },
        )
    }
}
