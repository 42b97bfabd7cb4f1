//! Listings over the secondary indexes (events and jobs, newest first, opaque cursors) and
//! the registry's versioned items. Queries only, never scans.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{DynamoStore, decode, n, s, unavailable};
use crate::store::{
    EventQuery, EventRecord, JobQuery, JobRecord, ListStore, Page, RegistryStore, RegistryVersion,
    StoreError, keys,
};

/// Queries one listing may send before it answers with what it has and a cursor.
const MAX_QUERIES: usize = 10;

/// Where a listing stopped: the index partition and the last key read in it.
#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    p: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    k: Option<BTreeMap<String, String>>,
}

fn encode_cursor(partition: &str, key: Option<&HashMap<String, AttributeValue>>) -> String {
    let k = key.map(|k| {
        k.iter()
            .filter_map(|(name, v)| v.as_s().ok().map(|v| (name.clone(), v.clone())))
            .collect()
    });
    let json = serde_json::to_vec(&Cursor {
        p: partition.to_owned(),
        k,
    })
    .unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

/// One listing: a partition per step (newest first), an optional floor on the sort key and
/// an optional filter.
struct Listing {
    index: &'static str,
    hash: &'static str,
    range: &'static str,
    partitions: Vec<String>,
    floor: Option<String>,
    filters: Vec<(&'static str, String)>,
    limit: usize,
}

impl Listing {
    /// Decodes a cursor of this listing: the partition it names and the start key.
    fn start(
        &self,
        cursor: Option<&str>,
    ) -> Result<(usize, Option<HashMap<String, AttributeValue>>), StoreError> {
        let Some(text) = cursor else {
            return Ok((0, None));
        };
        let bad = || StoreError::Invalid("the cursor is not one this listing gave out".into());
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| bad())?;
        let c: Cursor = serde_json::from_slice(&json).map_err(|_| bad())?;
        let at = self
            .partitions
            .iter()
            .position(|p| *p == c.p)
            .ok_or_else(bad)?;
        let key = match c.k {
            None => None,
            Some(k) => {
                let expected = ["pk", "sk", self.hash, self.range];
                if k.len() != expected.len()
                    || !expected.iter().all(|name| k.contains_key(*name))
                    || k.get(self.hash) != Some(&c.p)
                    // DynamoDB refuses empty key values and sort keys over 1,024 bytes
                    // (as a 500-class error): an edited cursor is the client's mistake.
                    || k.values().any(|v| v.is_empty() || v.len() > 1024)
                {
                    return Err(bad());
                }
                Some(k.into_iter().map(|(name, v)| (name, s(v))).collect())
            }
        };
        Ok((at, key))
    }
}

impl DynamoStore {
    async fn list(
        &self,
        listing: &Listing,
        cursor: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<(Vec<HashMap<String, AttributeValue>>, Option<String>), StoreError> {
        let limit = listing.limit.max(1);
        let (mut at, mut start) = listing.start(cursor)?;
        let mut items = Vec::new();
        let mut queries = 0;
        let mut filter = vec!["expires_at > :now".to_owned()];
        let mut names = HashMap::new();
        let mut values = HashMap::from([(":now".to_owned(), n(now.unix_timestamp()))]);
        for (i, (attr, value)) in listing.filters.iter().enumerate() {
            names.insert(format!("#f{i}"), (*attr).to_owned());
            values.insert(format!(":f{i}"), s(value.clone()));
            filter.push(format!("#f{i} = :f{i}"));
        }
        let mut condition = "#h = :h".to_owned();
        names.insert("#h".into(), listing.hash.to_owned());
        if let Some(floor) = &listing.floor {
            condition.push_str(" AND #r >= :floor");
            names.insert("#r".into(), listing.range.to_owned());
            values.insert(":floor".into(), s(floor.clone()));
        }
        while at < listing.partitions.len() {
            let partition = &listing.partitions[at];
            if queries == MAX_QUERIES {
                return Ok((items, Some(encode_cursor(partition, start.as_ref()))));
            }
            queries += 1;
            let remaining = limit - items.len();
            // DynamoDB applies Limit before the filter: read more when filtering.
            let read = if listing.filters.is_empty() {
                remaining
            } else {
                (remaining * 2).clamp(50, 500)
            };
            let mut vals = values.clone();
            vals.insert(":h".into(), s(partition.clone()));
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(listing.index)
                .key_condition_expression(&condition)
                .filter_expression(filter.join(" AND "))
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(vals))
                .scan_index_forward(false)
                .limit(i32::try_from(read).unwrap_or(500))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(unavailable("list"))?;
            let next = out.last_evaluated_key.filter(|k| !k.is_empty());
            let got = out.items.unwrap_or_default();
            let count = got.len();
            for (i, item) in got.into_iter().enumerate() {
                let key: HashMap<String, AttributeValue> =
                    ["pk", "sk", listing.hash, listing.range]
                        .iter()
                        .filter_map(|name| item.get(*name).map(|v| ((*name).to_owned(), v.clone())))
                        .collect();
                items.push(item);
                if items.len() == limit {
                    let cursor = if i + 1 < count || next.is_some() {
                        Some(encode_cursor(partition, Some(&key)))
                    } else {
                        listing
                            .partitions
                            .get(at + 1)
                            .map(|p| encode_cursor(p, None))
                    };
                    return Ok((items, cursor));
                }
            }
            match next {
                Some(k) => start = Some(k),
                None => at += 1,
            }
        }
        Ok((items, None))
    }
}

/// The day partitions from `now` back to `since`, newest first.
fn days(now: OffsetDateTime, since: OffsetDateTime, on: fn(&str) -> String) -> Vec<String> {
    let mut out = Vec::new();
    let mut day = now;
    let last = keys::day(since);
    loop {
        let d = keys::day(day);
        let done = d <= last;
        out.push(on(&d));
        if done || out.len() > 400 {
            break;
        }
        day -= time::Duration::days(1);
    }
    out
}

fn decode_all<T: serde::de::DeserializeOwned>(
    items: Vec<HashMap<String, AttributeValue>>,
) -> Result<Vec<T>, StoreError> {
    items
        .into_iter()
        .map(|item| {
            let pk = item
                .get("pk")
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default();
            decode(&pk, item)
        })
        .collect()
}

#[async_trait]
impl ListStore for DynamoStore {
    async fn list_events(
        &self,
        query: &EventQuery,
        now: OffsetDateTime,
    ) -> Result<Page<EventRecord>, StoreError> {
        let mut filters = Vec::new();
        if let Some(source) = &query.source {
            filters.push(("source", source.clone()));
        }
        if let Some(t) = &query.event_type {
            filters.push(("event_type", t.clone()));
        }
        if let Some(st) = query.status {
            let text = serde_json::to_value(st)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            filters.push(("status", text));
        }
        let listing = Listing {
            index: keys::BY_TIME_INDEX,
            hash: "gsi1pk",
            range: "gsi1sk",
            partitions: days(now, query.since, keys::events_on),
            floor: Some(keys::time_sort(query.since, "")),
            filters,
            limit: query.limit,
        };
        let (items, next_cursor) = self.list(&listing, query.cursor.as_deref(), now).await?;
        Ok(Page {
            items: decode_all(items)?,
            next_cursor,
        })
    }

    async fn list_jobs(
        &self,
        query: &JobQuery,
        now: OffsetDateTime,
    ) -> Result<Page<JobRecord>, StoreError> {
        let filters = query
            .status
            .map(|st| vec![("status", st.as_str().to_owned())])
            .unwrap_or_default();
        let listing = match &query.module {
            Some(module) => Listing {
                index: keys::BY_MODULE_INDEX,
                hash: "gsi2pk",
                range: "gsi2sk",
                partitions: vec![keys::jobs_of(module)],
                floor: Some(keys::time_sort(query.since, "")),
                filters,
                limit: query.limit,
            },
            None => Listing {
                index: keys::BY_TIME_INDEX,
                hash: "gsi1pk",
                range: "gsi1sk",
                partitions: days(now, query.since, keys::jobs_on),
                floor: Some(keys::time_sort(query.since, "")),
                filters,
                limit: query.limit,
            },
        };
        let (items, next_cursor) = self.list(&listing, query.cursor.as_deref(), now).await?;
        Ok(Page {
            items: decode_all(items)?,
            next_cursor,
        })
    }
}

pub(super) fn deflate(bytes: &[u8]) -> Result<Vec<u8>, StoreError> {
    use std::io::Write as _;
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).map_err(unavailable("registry"))?;
    enc.finish().map_err(unavailable("registry"))
}

pub(super) fn inflate(key: &str, bytes: &[u8]) -> Result<Vec<u8>, StoreError> {
    use std::io::Read as _;
    let mut out = Vec::new();
    flate2::read::DeflateDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| StoreError::Corrupt {
            key: key.to_owned(),
            reason: e.to_string(),
        })?;
    Ok(out)
}

#[async_trait]
impl RegistryStore for DynamoStore {
    async fn registry_version(&self) -> Result<Option<u64>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(keys::REGISTRY_PK))
            .key("sk", s(keys::REGISTRY_CURRENT_SK))
            .projection_expression("#v")
            .expression_attribute_names("#v", "version")
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable("registry_version"))?;
        Ok(out
            .item
            .and_then(|i| i.get("version").and_then(|v| v.as_n().ok()?.parse().ok())))
    }

    async fn get_registry(&self, version: u64) -> Result<Option<RegistryVersion>, StoreError> {
        let sk = keys::registry_version(version);
        let Some(mut item) = self.get_raw(keys::REGISTRY_PK, &sk).await? else {
            return Ok(None);
        };
        let bundle = item.remove("bundle");
        let mut record: RegistryVersion = decode(&sk, item)?;
        if let Some(AttributeValue::B(b)) = bundle {
            let json = inflate(&sk, b.as_ref())?;
            record.manifests = serde_json::from_slice(&json).map_err(|e| StoreError::Corrupt {
                key: sk.clone(),
                reason: e.to_string(),
            })?;
        }
        Ok(Some(record))
    }

    async fn put_registry(
        &self,
        expected: Option<u64>,
        next: &RegistryVersion,
    ) -> Result<bool, StoreError> {
        let sk = keys::registry_version(next.version);
        let mut summary = next.clone();
        let manifests = std::mem::take(&mut summary.manifests);
        let mut item = super::encode(&sk, &summary)?;
        item.insert("pk".into(), s(keys::REGISTRY_PK));
        item.insert("sk".into(), s(sk.clone()));
        let json = serde_json::to_vec(&manifests).unwrap_or_default();
        item.insert(
            "bundle".into(),
            AttributeValue::B(Blob::new(deflate(&json)?)),
        );
        let version = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(unavailable("put_registry"))?;
        let mut current = Put::builder()
            .table_name(&self.table)
            .item("pk", s(keys::REGISTRY_PK))
            .item("sk", s(keys::REGISTRY_CURRENT_SK))
            .item(
                "version",
                n(i64::try_from(next.version).unwrap_or(i64::MAX)),
            )
            .item("published_at", s(next.published_at.clone()));
        current = match expected {
            Some(v) => current
                .condition_expression("#v = :expected")
                .expression_attribute_names("#v", "version")
                .expression_attribute_values(":expected", n(i64::try_from(v).unwrap_or(i64::MAX))),
            None => current.condition_expression("attribute_not_exists(pk)"),
        };
        let current = current.build().map_err(unavailable("put_registry"))?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(version).build())
            .transact_items(TransactWriteItem::builder().put(current).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(se)) => match se.into_err() {
                TransactWriteItemsError::TransactionCanceledException(c)
                    if c.cancellation_reasons().iter().any(|r| {
                        matches!(
                            r.code(),
                            Some("ConditionalCheckFailed" | "TransactionConflict")
                        )
                    }) =>
                {
                    Ok(false)
                }
                other => Err(unavailable("put_registry")(other)),
            },
            Err(other) => Err(unavailable("put_registry")(other)),
        }
    }

    async fn list_registry(&self, limit: usize) -> Result<Vec<RegistryVersion>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :v)")
            .expression_attribute_values(":pk", s(keys::REGISTRY_PK))
            .expression_attribute_values(":v", s("V#"))
            .projection_expression("pk, sk, #v, published_at, published_by, modules, report")
            .expression_attribute_names("#v", "version")
            .scan_index_forward(false)
            .limit(i32::try_from(limit.clamp(1, 100)).unwrap_or(100))
            .send()
            .await
            .map_err(unavailable("list_registry"))?;
        let items = out.items.unwrap_or_default();
        items
            .into_iter()
            .map(|mut item| {
                item.remove("pk");
                item.remove("sk");
                decode(keys::REGISTRY_PK, item)
            })
            .collect()
    }
}
