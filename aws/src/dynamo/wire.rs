//! A lean DynamoDB client for the delivery's hot path: the JSON protocol over kept-alive
//! HTTP/1.1 connections (`dynamo::http1`), signed with SigV4 here, with the same timeouts,
//! retries and consumed capacity records as the SDK client. The SDK's orchestrator costs
//! 290 to 680 µs of CPU a call on a 2-core machine (docs/performance.md); this client does
//! the same call for 40 to 80 µs. The single-item writes of a delivery and of a module's
//! job go through it; everything else stays on the SDK client.
//!
//! Requests and answers are DynamoDB's JSON wire format (`{"S": "..."}`); items are the
//! SDK's `AttributeValue` maps, so the adapter builds them the same way for both clients.
//! Request bodies are written straight into one buffer (`Body`); answers, small, are read
//! as `serde_json::Value`s.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use bytes::Bytes;
use hmac::{KeyInit, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::store::usage::{Call, record};
use switchyard_core::text::{concat, push_decimal};

type HmacSha256 = hmac::Hmac<Sha256>;

/// An item (or a key) as the adapter builds it.
pub type Item = HashMap<String, AttributeValue>;

/// Attempts per call (the SDK's standard retry mode makes three too).
const ATTEMPTS: u32 = 3;
/// Time for one attempt, and for the whole call with its retries.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The lean client. Cheap to clone (one pool, one credentials cache).
#[derive(Clone)]
pub struct Wire {
    inner: Arc<Inner>,
}

struct Inner {
    endpoint: super::http1::Endpoint,
    uri: http::Uri,
    region: String,
    credentials: SharedCredentialsProvider,
    cache: Mutex<Option<Signer>>,
}

impl std::fmt::Debug for Wire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wire")
            .field("endpoint", &self.inner.uri)
            .field("region", &self.inner.region)
            .finish_non_exhaustive()
    }
}

/// Credentials and the day's signing key derived from them.
#[derive(Clone)]
struct Signer {
    credentials: Credentials,
    day: String,
    key: [u8; 32],
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The write's condition did not hold; the item as it stood, when asked for.
    #[error("the conditional request failed")]
    ConditionFailed(Option<Item>),
    /// DynamoDB refused the call (a validation error, a missing table): not retried.
    #[error("DynamoDB refused the call: {kind}: {message}")]
    Refused {
        /// The exception's name (`ValidationException`).
        kind: String,
        /// Its message.
        message: String,
    },
    /// No usable answer within the attempts and the time allowed.
    #[error("DynamoDB did not answer: {0}")]
    Unavailable(String),
}

impl Wire {
    /// A client for `endpoint` (`https://dynamodb.us-east-1.amazonaws.com`, or a local
    /// `http://127.0.0.1:PORT`), signing for `region` with `credentials`.
    pub fn new(
        endpoint: &str,
        region: &str,
        credentials: SharedCredentialsProvider,
    ) -> Result<Self, WireError> {
        crate::sdk::install_crypto_provider();
        let uri: http::Uri = endpoint
            .parse()
            .map_err(|e| WireError::Unavailable(format!("endpoint {endpoint:?}: {e}")))?;
        let connections = super::http1::Endpoint::new(&uri, None)
            .map_err(|e| WireError::Unavailable(format!("endpoint {endpoint:?}: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                endpoint: connections,
                uri,
                region: region.to_owned(),
                credentials,
                cache: Mutex::new(None),
            }),
        })
    }

    /// The client for what `sdk` resolves: `AWS_ENDPOINT_URL_DYNAMODB`, else
    /// `AWS_ENDPOINT_URL`, else the region's public endpoint.
    pub fn from_sdk(sdk: &aws_config::SdkConfig) -> Result<Self, WireError> {
        let region = sdk
            .region()
            .map(ToString::to_string)
            .ok_or_else(|| WireError::Unavailable("no AWS region configured".into()))?;
        let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB")
            .ok()
            .or_else(|| sdk.endpoint_url().map(str::to_owned))
            .filter(|e| !e.trim().is_empty())
            .unwrap_or_else(|| format!("https://dynamodb.{region}.amazonaws.com"));
        let credentials = sdk
            .credentials_provider()
            .ok_or_else(|| WireError::Unavailable("no AWS credentials provider".into()))?;
        Self::new(&endpoint, &region, credentials)
    }

    /// Sends one call (`operation` is `PutItem`, `UpdateItem`, ...) with its JSON body,
    /// records its consumed capacity, and returns the answer's JSON.
    pub async fn call(&self, operation: &'static str, body: Vec<u8>) -> Result<Value, WireError> {
        let started = Instant::now();
        let body = Bytes::from(body);
        let result = match tokio::time::timeout(CALL_TIMEOUT, self.attempts(operation, body)).await
        {
            Ok(r) => r,
            Err(_) => Err(WireError::Unavailable(format!(
                "{operation} took over {CALL_TIMEOUT:?}"
            ))),
        };
        let read = matches!(operation, "GetItem" | "BatchGetItem" | "Query");
        let (table, indexes) = match &result {
            Ok(answer) => units(answer.get("ConsumedCapacity")),
            Err(_) => (0.0, 0.0),
        };
        record(Call {
            operation,
            table_write_units: if read { 0.0 } else { table },
            index_write_units: if read { 0.0 } else { indexes },
            read_units: if read { table + indexes } else { 0.0 },
            condition_failed: matches!(result, Err(WireError::ConditionFailed(_))),
            started,
            ended: Instant::now(),
        });
        result
    }

    async fn attempts(&self, operation: &'static str, body: Bytes) -> Result<Value, WireError> {
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                // 25 ms, 50 ms, with jitter from the clock's low bits.
                let jitter = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| u64::from(d.subsec_micros()) % 25);
                tokio::time::sleep(Duration::from_millis((25 << (attempt - 1)) + jitter)).await;
            }
            let sent =
                tokio::time::timeout(ATTEMPT_TIMEOUT, self.once(operation, body.clone())).await;
            let (status, answer) = match sent {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => {
                    last = e;
                    continue;
                }
                Err(_) => {
                    last = format!("{operation} attempt took over {ATTEMPT_TIMEOUT:?}");
                    continue;
                }
            };
            if status == 200 {
                return serde_json::from_slice(&answer)
                    .map_err(|e| WireError::Unavailable(format!("{operation} answer: {e}")));
            }
            let error: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
            let kind = error
                .get("__type")
                .and_then(Value::as_str)
                .and_then(|t| t.rsplit('#').next())
                .unwrap_or("")
                .to_owned();
            let message = error
                .get("message")
                .or_else(|| error.get("Message"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            if kind == "ConditionalCheckFailedException" {
                let item = error.get("Item").map(item_from_json).transpose()?;
                return Err(WireError::ConditionFailed(item));
            }
            let retried = status >= 500
                || matches!(
                    kind.as_str(),
                    "ProvisionedThroughputExceededException"
                        | "ThrottlingException"
                        | "RequestLimitExceeded"
                        | "LimitExceededException"
                        | "TransactionConflictException"
                );
            if !retried {
                return Err(WireError::Refused { kind, message });
            }
            last = format!("{status} {kind}: {message}");
        }
        Err(WireError::Unavailable(last))
    }

    async fn once(&self, operation: &'static str, body: Bytes) -> Result<(u16, Vec<u8>), String> {
        let signer = self.signer().await?;
        let date = amz_date(time::OffsetDateTime::now_utc());
        let target = concat(&["DynamoDB_20120810.", operation]);
        let host = &self.inner.endpoint.host;
        let authorization = signer.authorize(host, &self.inner.region, &target, &body, &date);
        let token = signer.credentials.session_token();
        if token.is_some_and(|t| t.bytes().any(|b| b.is_ascii_control())) {
            return Err("the session token holds a control character".into());
        }
        // The whole request in one buffer, sent in one write.
        let mut request = Vec::with_capacity(body.len() + 1024);
        for part in [
            "POST / HTTP/1.1\r\nhost: ",
            host,
            "\r\ncontent-type: application/x-amz-json-1.0\r\nx-amz-target: ",
            &target,
            "\r\nx-amz-date: ",
            &date,
            "\r\nauthorization: ",
            &authorization,
        ] {
            request.extend_from_slice(part.as_bytes());
        }
        if let Some(token) = token {
            request.extend_from_slice(b"\r\nx-amz-security-token: ");
            request.extend_from_slice(token.as_bytes());
        }
        let mut length = String::with_capacity(40);
        length.push_str("\r\ncontent-length: ");
        push_decimal(&mut length, body.len() as u64, 1);
        length.push_str("\r\n\r\n");
        request.extend_from_slice(length.as_bytes());
        request.extend_from_slice(&body);
        (self.inner.endpoint.send(&request).await).map_err(|e| format!("{operation}: {e}"))
    }

    /// The cached signer, renewed when the day changes or the credentials near expiry.
    async fn signer(&self) -> Result<Signer, String> {
        let today = day(time::OffsetDateTime::now_utc());
        let fresh = |s: &Signer| {
            s.day == today
                && s.credentials.expiry().is_none_or(|e| {
                    e.duration_since(SystemTime::now())
                        .is_ok_and(|left| left > Duration::from_secs(300))
                })
        };
        if let Ok(cache) = self.inner.cache.lock()
            && let Some(s) = cache.as_ref().filter(|s| fresh(s))
        {
            return Ok(s.clone());
        }
        let credentials = self
            .inner
            .credentials
            .provide_credentials()
            .await
            .map_err(|e| format!("credentials: {e}"))?;
        let signer = Signer::new(credentials, &today, &self.inner.region);
        if let Ok(mut cache) = self.inner.cache.lock() {
            *cache = Some(signer.clone());
        }
        Ok(signer)
    }
}

impl Signer {
    fn new(credentials: Credentials, day: &str, region: &str) -> Self {
        let secret = format!("AWS4{}", credentials.secret_access_key());
        let mut key = hmac(secret.as_bytes(), day.as_bytes());
        for part in [region.as_bytes(), b"dynamodb", b"aws4_request"] {
            key = hmac(&key, part);
        }
        Self {
            credentials,
            day: day.to_owned(),
            key,
        }
    }

    /// The `Authorization` header of a POST to `/` with these headers and `body`, sent at
    /// `date` (`amz_date`).
    fn authorize(&self, host: &str, region: &str, target: &str, body: &[u8], date: &str) -> String {
        let token = self.credentials.session_token();
        let signed = match token {
            Some(_) => "content-type;host;x-amz-date;x-amz-security-token;x-amz-target",
            None => "content-type;host;x-amz-date;x-amz-target",
        };
        let mut canonical = String::with_capacity(320 + token.map_or(0, str::len));
        for part in [
            "POST\n/\n\ncontent-type:application/x-amz-json-1.0\nhost:",
            host,
            "\nx-amz-date:",
            date,
            "\n",
        ] {
            canonical.push_str(part);
        }
        if let Some(token) = token {
            for part in ["x-amz-security-token:", token, "\n"] {
                canonical.push_str(part);
            }
        }
        for part in ["x-amz-target:", target, "\n\n", signed, "\n"] {
            canonical.push_str(part);
        }
        canonical.push_str(hex_of(Sha256::digest(body).into(), &mut [0; 64]));
        let scope = concat(&[&self.day, "/", region, "/dynamodb/aws4_request"]);
        let to_sign = concat(&[
            "AWS4-HMAC-SHA256\n",
            date,
            "\n",
            &scope,
            "\n",
            hex_of(Sha256::digest(canonical.as_bytes()).into(), &mut [0; 64]),
        ]);
        let mut signature = [0; 64];
        let signature = hex_of(hmac(&self.key, to_sign.as_bytes()), &mut signature);
        concat(&[
            "AWS4-HMAC-SHA256 Credential=",
            self.credentials.access_key_id(),
            "/",
            &scope,
            ", SignedHeaders=",
            signed,
            ", Signature=",
            signature,
        ])
    }
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes a key of any length: new_from_slice does not fail for it.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return [0; 32],
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// A 32-byte digest as 64 lowercase hex digits, written into `out`.
fn hex_of(digest: [u8; 32], out: &mut [u8; 64]) -> &str {
    // 32 bytes fill the 64 digits exactly: neither step can fail.
    let _ = hex::encode_to_slice(digest, &mut out[..]);
    std::str::from_utf8(out).unwrap_or_default()
}

/// `YYYYMMDD`.
fn day(t: time::OffsetDateTime) -> String {
    let mut out = String::with_capacity(16);
    push_day(&mut out, t);
    out
}

fn push_day(out: &mut String, t: time::OffsetDateTime) {
    push_decimal(out, u64::try_from(t.year()).unwrap_or(0), 4);
    push_decimal(out, u64::from(u8::from(t.month())), 2);
    push_decimal(out, u64::from(t.day()), 2);
}

/// `YYYYMMDDTHHMMSSZ`.
fn amz_date(t: time::OffsetDateTime) -> String {
    let mut out = String::with_capacity(16);
    push_day(&mut out, t);
    out.push('T');
    for part in [t.hour(), t.minute(), t.second()] {
        push_decimal(&mut out, u64::from(part), 2);
    }
    out.push('Z');
    out
}

/// (table units, index units) of an answer's `ConsumedCapacity` (one entry or a list).
fn units(consumed: Option<&Value>) -> (f64, f64) {
    let entries: Vec<&Value> = match consumed {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => Vec::new(),
    };
    let mut table = 0.0;
    let mut indexes = 0.0;
    let capacity = |v: &Value| v.get("CapacityUnits").and_then(Value::as_f64);
    for entry in entries {
        let idx: f64 = ["GlobalSecondaryIndexes", "LocalSecondaryIndexes"]
            .iter()
            .filter_map(|k| entry.get(*k).and_then(Value::as_object))
            .flat_map(|m| m.values())
            .filter_map(capacity)
            .sum();
        table += match entry.get("Table") {
            Some(t) => capacity(t).unwrap_or(0.0),
            None => capacity(entry).unwrap_or(0.0) - idx,
        };
        indexes += idx;
    }
    (table, indexes)
}

/// One write of the delivery path, built once: a `PutItem` when `item` is set, else an
/// `UpdateItem` of `key` with `update`.
#[derive(Debug, Default)]
pub struct Write {
    /// The item a `PutItem` writes.
    pub item: Option<Item>,
    /// The key an `UpdateItem` updates.
    pub key: Item,
    /// The update expression.
    pub update: Option<String>,
    /// The condition.
    pub condition: Option<String>,
    /// Expression attribute names (`#name`, attribute), each listed once.
    pub names: Vec<(String, String)>,
    /// Expression attribute values (`:placeholder`, value), each listed once.
    pub values: Vec<(String, AttributeValue)>,
    /// Ask for the item as it was before (`ReturnValues: ALL_OLD`).
    pub old: bool,
    /// Ask for the item as it stands when the condition fails.
    pub old_on_failure: bool,
}

impl Wire {
    /// Sends `write` to `table`; the item as it was before, when asked for and present.
    pub async fn write(&self, table: &str, write: Write) -> Result<Option<Item>, WireError> {
        let mut body = Body::new(write.item.as_ref().map_or(0, item_size));
        body.raw("{\"TableName\":");
        body.text(table);
        let operation = match &write.item {
            Some(item) => {
                body.raw(",\"Item\":");
                body.item(item);
                "PutItem"
            }
            None => {
                body.raw(",\"Key\":");
                body.item(&write.key);
                if let Some(update) = &write.update {
                    body.raw(",\"UpdateExpression\":");
                    body.text(update);
                }
                "UpdateItem"
            }
        };
        if let Some(condition) = &write.condition {
            body.raw(",\"ConditionExpression\":");
            body.text(condition);
        }
        if !write.names.is_empty() {
            body.raw(",\"ExpressionAttributeNames\":{");
            for (i, (k, v)) in write.names.iter().enumerate() {
                body.comma(i);
                body.key(k);
                body.text(v);
            }
            body.raw("}");
        }
        if !write.values.is_empty() {
            body.raw(",\"ExpressionAttributeValues\":{");
            for (i, (k, v)) in write.values.iter().enumerate() {
                body.comma(i);
                body.key(k);
                body.value(v);
            }
            body.raw("}");
        }
        if write.old {
            body.raw(",\"ReturnValues\":\"ALL_OLD\"");
        }
        if write.old_on_failure {
            body.raw(",\"ReturnValuesOnConditionCheckFailure\":\"ALL_OLD\"");
        }
        body.raw(",\"ReturnConsumedCapacity\":\"INDEXES\"}");
        let answer = self.call(operation, body.0).await?;
        match answer.get("Attributes") {
            Some(old) => Ok(Some(item_from_json(old)?)),
            None => Ok(None),
        }
    }

    /// Puts `items` into `table` with `BatchWriteItem`, 25 a call, sending unprocessed ones
    /// again (five tries with a growing pause).
    pub async fn put_all(&self, table: &str, items: Vec<Item>) -> Result<(), WireError> {
        for batch in items.chunks(25) {
            let mut body = Body::new(batch.iter().map(item_size).sum());
            body.raw("{\"RequestItems\":{");
            body.key(table);
            body.raw("[");
            for (i, item) in batch.iter().enumerate() {
                body.comma(i);
                body.raw("{\"PutRequest\":{\"Item\":");
                body.item(item);
                body.raw("}}");
            }
            body.raw("]},\"ReturnConsumedCapacity\":\"INDEXES\"}");
            let mut bytes = body.0;
            let mut pending = Vec::new();
            for attempt in 0..5u64 {
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
                    // What the last answer left unprocessed, as it gave it back.
                    let again = serde_json::json!({
                        "RequestItems": { table: pending },
                        "ReturnConsumedCapacity": "INDEXES",
                    });
                    bytes = serde_json::to_vec(&again)
                        .map_err(|e| WireError::Unavailable(format!("request: {e}")))?;
                }
                let answer = self
                    .call("BatchWriteItem", std::mem::take(&mut bytes))
                    .await?;
                pending = answer
                    .get("UnprocessedItems")
                    .and_then(|u| u.get(table))
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
            }
            if !pending.is_empty() {
                return Err(WireError::Unavailable(format!(
                    "{} items left unprocessed",
                    pending.len()
                )));
            }
        }
        Ok(())
    }
}

/// A request body written straight into one buffer in DynamoDB's JSON, with no
/// `serde_json::Value` tree between: building trees of a delivery's items and copying their
/// binary into base64 strings was most of the allocations a write made.
struct Body(Vec<u8>);

impl Body {
    /// A body with room for `items` bytes of attribute values and the request around them.
    fn new(items: usize) -> Self {
        Self(Vec::with_capacity(512 + items))
    }

    fn raw(&mut self, s: &str) {
        self.0.extend_from_slice(s.as_bytes());
    }

    /// `s` as a JSON string (escaped as serde_json escapes it; writing into a `Vec`
    /// cannot fail).
    fn text(&mut self, s: &str) {
        let _ = serde_json::to_writer(&mut self.0, s);
    }

    fn key(&mut self, k: &str) {
        self.text(k);
        self.0.push(b':');
    }

    /// The separator before element `i` of a list or an object.
    fn comma(&mut self, i: usize) {
        if i > 0 {
            self.0.push(b',');
        }
    }

    fn base64(&mut self, bytes: &[u8]) {
        let engine = &base64::engine::general_purpose::STANDARD;
        let start = self.0.len();
        let len = base64::encoded_len(bytes.len(), true).unwrap_or(0);
        self.0.resize(start + len, 0);
        // The slice has exactly the encoded length, so this cannot fail.
        let written = engine
            .encode_slice(bytes, &mut self.0[start..])
            .unwrap_or(0);
        self.0.truncate(start + written);
    }

    fn item(&mut self, item: &Item) {
        self.raw("{");
        for (i, (k, v)) in item.iter().enumerate() {
            self.comma(i);
            self.key(k);
            self.value(v);
        }
        self.raw("}");
    }

    /// `{"<kind>": "<s>"}`.
    fn tagged(&mut self, kind: &str, s: &str) {
        self.raw("{\"");
        self.raw(kind);
        self.raw("\":");
        self.text(s);
        self.raw("}");
    }

    fn texts(&mut self, kind: &str, list: &[String]) {
        self.raw("{\"");
        self.raw(kind);
        self.raw("\":[");
        for (i, s) in list.iter().enumerate() {
            self.comma(i);
            self.text(s);
        }
        self.raw("]}");
    }

    /// One attribute value, as [`value_json`] writes it.
    fn value(&mut self, v: &AttributeValue) {
        match v {
            AttributeValue::S(s) => self.tagged("S", s),
            AttributeValue::N(n) => self.tagged("N", n),
            AttributeValue::Bool(true) => self.raw("{\"BOOL\":true}"),
            AttributeValue::Bool(false) => self.raw("{\"BOOL\":false}"),
            AttributeValue::B(b) => {
                self.raw("{\"B\":\"");
                self.base64(b.as_ref());
                self.raw("\"}");
            }
            AttributeValue::M(m) => {
                self.raw("{\"M\":");
                self.item(m);
                self.raw("}");
            }
            AttributeValue::L(l) => {
                self.raw("{\"L\":[");
                for (i, v) in l.iter().enumerate() {
                    self.comma(i);
                    self.value(v);
                }
                self.raw("]}");
            }
            AttributeValue::Ss(l) => self.texts("SS", l),
            AttributeValue::Ns(l) => self.texts("NS", l),
            AttributeValue::Bs(l) => {
                self.raw("{\"BS\":[");
                for (i, b) in l.iter().enumerate() {
                    self.comma(i);
                    self.raw("\"");
                    self.base64(b.as_ref());
                    self.raw("\"");
                }
                self.raw("]}");
            }
            _ => self.raw("{\"NULL\":true}"),
        }
    }
}

/// About how many bytes `item`'s binary values take in base64 (the rest fits the margin
/// [`Body::new`] adds).
fn item_size(item: &Item) -> usize {
    (item.values())
        .map(|v| match v {
            AttributeValue::B(b) => b.as_ref().len() * 4 / 3 + 4,
            AttributeValue::S(s) => s.len() + 16,
            _ => 32,
        })
        .sum()
}

/// Writes `v` in DynamoDB's JSON format.
pub fn value_json(v: &AttributeValue) -> Value {
    let b64 = |b: &Blob| base64::engine::general_purpose::STANDARD.encode(b.as_ref());
    let mut o = serde_json::Map::with_capacity(1);
    let (k, v) = match v {
        AttributeValue::S(s) => ("S", Value::String(s.clone())),
        AttributeValue::N(n) => ("N", Value::String(n.clone())),
        AttributeValue::Bool(b) => ("BOOL", Value::Bool(*b)),
        AttributeValue::Null(_) => ("NULL", Value::Bool(true)),
        AttributeValue::B(b) => ("B", Value::String(b64(b))),
        AttributeValue::M(m) => ("M", item_json(m)),
        AttributeValue::L(l) => ("L", Value::Array(l.iter().map(value_json).collect())),
        AttributeValue::Ss(l) => ("SS", Value::from(l.clone())),
        AttributeValue::Ns(l) => ("NS", Value::from(l.clone())),
        AttributeValue::Bs(l) => (
            "BS",
            Value::Array(l.iter().map(|b| Value::String(b64(b))).collect()),
        ),
        _ => ("NULL", Value::Bool(true)),
    };
    o.insert(k.to_owned(), v);
    Value::Object(o)
}

/// Writes an item in DynamoDB's JSON format.
pub fn item_json(item: &Item) -> Value {
    Value::Object(
        item.iter()
            .map(|(k, v)| (k.clone(), value_json(v)))
            .collect(),
    )
}

/// Reads an item from DynamoDB's JSON format.
pub fn item_from_json(v: &Value) -> Result<Item, WireError> {
    let Some(o) = v.as_object() else {
        return Err(bad("an item is not an object"));
    };
    o.iter()
        .map(|(k, v)| Ok((k.clone(), value_from_json(v)?)))
        .collect()
}

fn bad(what: &str) -> WireError {
    WireError::Unavailable(format!("DynamoDB answered {what}"))
}

/// Reads one attribute value from DynamoDB's JSON format.
pub fn value_from_json(v: &Value) -> Result<AttributeValue, WireError> {
    let Some((kind, inner)) = v.as_object().and_then(|o| o.iter().next()) else {
        return Err(bad("an attribute value that is not a one-key object"));
    };
    let text = |x: &Value| {
        x.as_str()
            .map(str::to_owned)
            .ok_or_else(|| bad("a non-text value"))
    };
    let blob = |x: &Value| {
        let t = x.as_str().ok_or_else(|| bad("a non-text binary"))?;
        base64::engine::general_purpose::STANDARD
            .decode(t)
            .map(Blob::new)
            .map_err(|_| bad("binary that is not base64"))
    };
    let list = |x: &Value| {
        x.as_array()
            .ok_or_else(|| bad("a set that is not a list"))
            .cloned()
    };
    Ok(match kind.as_str() {
        "S" => AttributeValue::S(text(inner)?),
        "N" => AttributeValue::N(text(inner)?),
        "BOOL" => AttributeValue::Bool(inner.as_bool().unwrap_or(false)),
        "NULL" => AttributeValue::Null(true),
        "B" => AttributeValue::B(blob(inner)?),
        "M" => AttributeValue::M(item_from_json(inner)?),
        "L" => AttributeValue::L(
            list(inner)?
                .iter()
                .map(value_from_json)
                .collect::<Result<_, _>>()?,
        ),
        "SS" => AttributeValue::Ss(list(inner)?.iter().map(text).collect::<Result<_, _>>()?),
        "NS" => AttributeValue::Ns(list(inner)?.iter().map(text).collect::<Result<_, _>>()?),
        "BS" => AttributeValue::Bs(list(inner)?.iter().map(blob).collect::<Result<_, _>>()?),
        other => return Err(bad(&format!("an attribute of unknown type {other}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_writes_every_attribute_kind_as_the_json_tree_does() {
        let blob = |b: &[u8]| Blob::new(b.to_vec());
        let nested = Item::from([
            ("n".to_owned(), AttributeValue::N("-1.5e3".into())),
            ("e".to_owned(), AttributeValue::L(Vec::new())),
        ]);
        let item = Item::from([
            (
                "s".to_owned(),
                AttributeValue::S("quote \" slash \\ nl \n é \u{1}".into()),
            ),
            ("n".to_owned(), AttributeValue::N("42".into())),
            ("t".to_owned(), AttributeValue::Bool(true)),
            ("f".to_owned(), AttributeValue::Bool(false)),
            ("z".to_owned(), AttributeValue::Null(true)),
            (
                "b".to_owned(),
                AttributeValue::B(blob(&[0, 1, 2, 250, 251, 252, 253])),
            ),
            ("empty".to_owned(), AttributeValue::B(blob(&[]))),
            ("m".to_owned(), AttributeValue::M(nested)),
            (
                "l".to_owned(),
                AttributeValue::L(vec![
                    AttributeValue::S("a".into()),
                    AttributeValue::N("1".into()),
                ]),
            ),
            (
                "ss".to_owned(),
                AttributeValue::Ss(vec!["x".into(), "y\"".into()]),
            ),
            (
                "ns".to_owned(),
                AttributeValue::Ns(vec!["1".into(), "2".into()]),
            ),
            (
                "bs".to_owned(),
                AttributeValue::Bs(vec![blob(b"ab"), blob(b"abc")]),
            ),
        ]);
        let mut body = Body::new(item_size(&item));
        body.item(&item);
        let written: Value = serde_json::from_slice(&body.0).unwrap();
        assert_eq!(written, item_json(&item));
        assert_eq!(item_from_json(&written).unwrap(), item);
    }

    #[test]
    fn dates_are_written_as_sigv4_wants_them() {
        let t = time::macros::datetime!(2026-03-04 05:06:07 UTC);
        assert_eq!(day(t), "20260304");
        assert_eq!(amz_date(t), "20260304T050607Z");
        let t = time::macros::datetime!(2026-12-31 23:59:59 UTC);
        assert_eq!(amz_date(t), "20261231T235959Z");
    }

    #[test]
    fn signs_as_the_aws_sigv4_crate_does() {
        for session in [Some("session".to_owned()), None] {
            signs_as_the_aws_sigv4_crate_does_with(session);
        }
    }

    fn signs_as_the_aws_sigv4_crate_does_with(session: Option<String>) {
        let credentials = Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            session,
            None,
            "test",
        );
        let now = time::macros::datetime!(2026-12-02 06:07:08 UTC);
        let body = br#"{"TableName":"t"}"#;
        let host = "dynamodb.us-east-1.amazonaws.com";
        let target = "DynamoDB_20120810.PutItem";
        let ours = Signer::new(credentials.clone(), &day(now), "us-east-1").authorize(
            host,
            "us-east-1",
            target,
            body,
            &amz_date(now),
        );

        let identity: aws_smithy_runtime_api::client::identity::Identity = credentials.into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("dynamodb")
            .time(SystemTime::from(now))
            .settings(aws_sigv4::http_request::SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let date = amz_date(now);
        let headers = [
            ("host", host),
            ("content-type", "application/x-amz-json-1.0"),
            ("x-amz-target", target),
            ("x-amz-date", date.as_str()),
        ];
        let signable = aws_sigv4::http_request::SignableRequest::new(
            "POST",
            "https://dynamodb.us-east-1.amazonaws.com/",
            headers.iter().copied(),
            aws_sigv4::http_request::SignableBody::Bytes(body),
        )
        .unwrap();
        let (instructions, _) = aws_sigv4::http_request::sign(signable, &params)
            .unwrap()
            .into_parts();
        let theirs = instructions
            .headers()
            .find(|(name, _)| *name == "authorization")
            .map(|(_, v)| v.to_owned())
            .unwrap();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn attribute_values_round_trip_through_the_wire_format() {
        let item: Item = HashMap::from([
            ("s".to_owned(), AttributeValue::S("a\"b".into())),
            ("n".to_owned(), AttributeValue::N("12.5".into())),
            (
                "b".to_owned(),
                AttributeValue::B(Blob::new(vec![0, 1, 255])),
            ),
            ("t".to_owned(), AttributeValue::Bool(true)),
            ("z".to_owned(), AttributeValue::Null(true)),
            (
                "m".to_owned(),
                AttributeValue::M(HashMap::from([(
                    "l".to_owned(),
                    AttributeValue::L(vec![AttributeValue::S("x".into())]),
                )])),
            ),
            (
                "ss".to_owned(),
                AttributeValue::Ss(vec!["p".into(), "q".into()]),
            ),
        ]);
        let json = item_json(&item);
        assert_eq!(json["b"], serde_json::json!({"B": "AAH/"}));
        assert_eq!(item_from_json(&json).unwrap(), item);
        assert!(item_from_json(&serde_json::json!({"x": {"Q": 1}})).is_err());
    }

    #[test]
    fn units_split_table_and_indexes() {
        let one = serde_json::json!({"CapacityUnits": 3.0, "Table": {"CapacityUnits": 2.0},
            "GlobalSecondaryIndexes": {"a": {"CapacityUnits": 1.0}}});
        assert_eq!(units(Some(&one)), (2.0, 1.0));
        let list = serde_json::json!([{"CapacityUnits": 4.0}, {"CapacityUnits": 2.0,
            "GlobalSecondaryIndexes": {"a": {"CapacityUnits": 0.5}}}]);
        assert_eq!(units(Some(&list)), (5.5, 0.5));
    }
}
