//! Listings over the secondary indexes (events and jobs, newest first, opaque cursors) and
//! the registry's versioned items. Queries only, never scans.
//!
//! Each index spreads its entries over `shards` partition keys, so a listing asks every
//! shard at once for its newest entries below the cursor and merges them. Sort keys are
//! unique (`<ms>#<id>`), so one sort key is the whole cursor: the page gave out every entry
//! above it. With a filter a shard may stop before it found enough; entries below the
//! highest point where a shard stopped are unknown and wait for the next round or page.
//! Indexes project only keys and attributes that never change; the page's items are then
//! read with one BatchGetItem (eventually consistent, as index queries are).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{DynamoStore, decode, keys, n, s, unavailable};
use crate::store::{
    EventQuery, EventRecord, JobQuery, JobRecord, ListStore, Page, RegistryStore, RegistryVersion,
    StoreError,
};

/// Rounds of shard queries one page may take before it answers with what it has.
const MAX_ROUNDS: usize = 4;

/// Where a listing stopped: every entry above `b` was given out. `i` names the listing
/// (a cursor of one listing is refused by another).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cursor {
    i: String,
    b: String,
}

/// One listing over one index.
struct Listing {
    /// Its name in cursors.
    id: &'static str,
    index: &'static str,
    hash: &'static str,
    range: &'static str,
    /// The index partitions (one per shard).
    partitions: Vec<String>,
    /// Nothing older than this sort key.
    floor: String,
    /// Equality filters on projected attributes.
    filters: Vec<(&'static str, String)>,
    limit: usize,
}

/// A sort key's shape: 13 digits, `#`, an id.
fn valid_sort_key(k: &str) -> bool {
    k.len() > 14
        && k.len() <= 1024
        && k.as_bytes()[..13].iter().all(u8::is_ascii_digit)
        && k.as_bytes()[13] == b'#'
}

impl Listing {
    fn encode(&self, boundary: &str) -> String {
        let json = serde_json::to_vec(&Cursor {
            i: self.id.to_owned(),
            b: boundary.to_owned(),
        })
        .unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    /// The boundary a cursor of this listing names.
    fn start(&self, cursor: Option<&str>) -> Result<Option<String>, StoreError> {
        let Some(text) = cursor else {
            return Ok(None);
        };
        let bad = || StoreError::Invalid("the cursor is not one this listing gave out".into());
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| bad())?;
        let c: Cursor = serde_json::from_slice(&json).map_err(|_| bad())?;
        // DynamoDB refuses empty or over-long key values (as a 500-class error): an edited
        // cursor is the client's mistake.
        if c.i != self.id || !valid_sort_key(&c.b) {
            return Err(bad());
        }
        Ok(Some(c.b))
    }
}

/// One shard's answer to one round: its entries' (pk, sk, index sort key), and where it
/// stopped when it has more.
struct ShardPage {
    entries: Vec<(String, String, String)>,
    stopped_at: Option<String>,
}

impl DynamoStore {
    async fn query_shard(
        &self,
        listing: &Listing,
        partition: &str,
        below: Option<&str>,
        read: usize,
    ) -> Result<ShardPage, StoreError> {
        let mut names = HashMap::from([
            ("#h".to_owned(), listing.hash.to_owned()),
            ("#r".to_owned(), listing.range.to_owned()),
        ]);
        let mut values = HashMap::from([
            (":h".to_owned(), s(partition)),
            (":floor".to_owned(), s(listing.floor.clone())),
            // Sort keys start with 13 digits: `~` sorts above every one of them.
            (":top".to_owned(), s(below.unwrap_or("~"))),
        ]);
        let mut filter = Vec::new();
        for (i, (attr, value)) in listing.filters.iter().enumerate() {
            names.insert(format!("#f{i}"), (*attr).to_owned());
            values.insert(format!(":f{i}"), s(value.clone()));
            filter.push(format!("#f{i} = :f{i}"));
        }
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(listing.index)
            .key_condition_expression("#h = :h AND #r BETWEEN :floor AND :top")
            .set_filter_expression((!filter.is_empty()).then(|| filter.join(" AND ")))
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .projection_expression("pk, sk, #r")
            .scan_index_forward(false)
            .limit(i32::try_from(read).unwrap_or(500))
            .send()
            .await
            .map_err(unavailable("list"))?;
        let text = |item: &HashMap<String, AttributeValue>, k: &str| {
            item.get(k).and_then(|v| v.as_s().ok()).cloned()
        };
        let entries = out
            .items()
            .iter()
            .filter_map(|i| Some((text(i, "pk")?, text(i, "sk")?, text(i, listing.range)?)))
            // BETWEEN includes the boundary, which the previous page gave out.
            .filter(|(_, _, sk)| below != Some(sk.as_str()))
            .collect();
        let stopped_at = out
            .last_evaluated_key
            .as_ref()
            .and_then(|k| k.get(listing.range))
            .and_then(|v| v.as_s().ok())
            .cloned();
        Ok(ShardPage {
            entries,
            stopped_at,
        })
    }

    /// One page of `listing` below `cursor`: the items (read from the table) and the next
    /// cursor. `keep` drops items the index cannot filter (status, expiry).
    async fn list(
        &self,
        listing: &Listing,
        cursor: Option<&str>,
        keep: impl Fn(&HashMap<String, AttributeValue>) -> bool,
    ) -> Result<(Vec<HashMap<String, AttributeValue>>, Option<String>), StoreError> {
        let limit = listing.limit.max(1);
        let mut boundary = listing.start(cursor)?;
        // DynamoDB applies Limit before the filter: read more when filtering.
        let read = if listing.filters.is_empty() {
            limit
        } else {
            (limit * 2).clamp(50, 500)
        };
        let mut chosen: Vec<(String, String, String)> = Vec::new();
        let mut next = None;
        for round in 0..MAX_ROUNDS {
            // One more than needed: the boundary's own entry (BETWEEN includes it) is read
            // again by its shard and must not use up the shard's Limit.
            let read = read + usize::from(boundary.is_some());
            let pages = futures::future::try_join_all(
                listing
                    .partitions
                    .iter()
                    .map(|p| self.query_shard(listing, p, boundary.as_deref(), read)),
            )
            .await?;
            // Above the highest point where a shard stopped, every shard has answered.
            let known_down_to = pages.iter().filter_map(|p| p.stopped_at.clone()).max();
            // Each round reaches further down; one that did not would repeat for ever.
            if let (Some(k), Some(b)) = (&known_down_to, &boundary) {
                if k >= b {
                    return Err(StoreError::Unavailable {
                        operation: "list",
                        source: "an index query made no progress".into(),
                    });
                }
            }
            let mut entries: Vec<(String, String, String)> = pages
                .into_iter()
                .flat_map(|p| p.entries)
                .filter(|e| known_down_to.as_ref().is_none_or(|k| e.2 >= *k))
                .collect();
            entries.sort_by(|a, b| b.2.cmp(&a.2));
            entries.truncate(limit - chosen.len());
            chosen.extend(entries);
            if chosen.len() == limit {
                next = chosen.last().map(|e| listing.encode(&e.2));
                break;
            }
            match known_down_to {
                None => break,
                Some(k) => {
                    if round + 1 == MAX_ROUNDS {
                        next = Some(listing.encode(&k));
                    }
                    // The stopping point itself was given out (or filtered out) above.
                    boundary = Some(k);
                }
            }
        }
        let items = self.get_listed(&chosen).await?;
        Ok((items.into_iter().filter(|i| keep(i)).collect(), next))
    }

    /// The table items of index entries, in the entries' order (missing ones left out).
    async fn get_listed(
        &self,
        entries: &[(String, String, String)],
    ) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
        let keys: Vec<(String, String)> = entries
            .iter()
            .map(|(pk, sk, _)| (pk.clone(), sk.clone()))
            .collect();
        let mut found = self.batch_get_keys(&keys, false, "list").await?;
        Ok(keys.iter().filter_map(|k| found.remove(k)).collect())
    }
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

/// Unexpired (TTL deletes lazily) and, when given, in `status`.
fn live(item: &HashMap<String, AttributeValue>, now: OffsetDateTime, status: Option<&str>) -> bool {
    let expires = item
        .get("expires_at")
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(0);
    expires > now.unix_timestamp()
        && status.is_none_or(|st| {
            item.get("status")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str)
                == Some(st)
        })
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
        let status = query.status.and_then(|st| {
            serde_json::to_value(st)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
        });
        let listing = Listing {
            id: "events",
            index: keys::EVENTS_INDEX,
            hash: "gsi1pk",
            range: "gsi1sk",
            partitions: (0..self.shards).map(keys::events_shard).collect(),
            floor: keys::time_sort(query.since, ""),
            filters,
            limit: query.limit,
        };
        let (items, next_cursor) = self
            .list(&listing, query.cursor.as_deref(), |i| {
                live(i, now, status.as_deref())
            })
            .await?;
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
            .module
            .as_ref()
            .map(|m| vec![("module", m.clone())])
            .unwrap_or_default();
        let listing = Listing {
            id: if query.module.is_some() {
                "jobs_of_module"
            } else {
                "jobs"
            },
            index: keys::JOBS_INDEX,
            hash: "gsi2pk",
            range: "gsi2sk",
            partitions: (0..self.shards).map(keys::jobs_shard).collect(),
            floor: keys::time_sort(query.since, ""),
            filters,
            limit: query.limit,
        };
        let status = query.status.map(|st| st.as_str());
        let (items, next_cursor) = self
            .list(&listing, query.cursor.as_deref(), |i| live(i, now, status))
            .await?;
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
