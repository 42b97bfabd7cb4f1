//! A lean DynamoDB client for the delivery's hot path: the JSON protocol over kept-alive
//! HTTP/1.1 connections ([`super::http1`]), signed with SigV4 here, with the same timeouts,
//! retries and consumed capacity records as the SDK client. The SDK's orchestrator costs
//! 290 to 680 µs of CPU a call on a 2-core machine (docs/performance.md); this client does
//! the same call for 40 to 80 µs. The single-item writes of a delivery and of a module's
//! job go through it; everything else stays on the SDK client.
//!
//! Requests and answers are DynamoDB's JSON wire format (`{"S": "..."}`); items are the
//! SDK's `AttributeValue` maps, so the adapter builds them the same way for both clients.

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
        let now = time::OffsetDateTime::now_utc();
        let target = format!("DynamoDB_20120810.{operation}");
        let host = &self.inner.endpoint.host;
        let authorization = signer.authorize(host, &self.inner.region, &target, &body, now);
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
            &amz_date(now),
            "\r\nauthorization: ",
            &authorization,
        ] {
            request.extend_from_slice(part.as_bytes());
        }
        if let Some(token) = token {
            request.extend_from_slice(b"\r\nx-amz-security-token: ");
            request.extend_from_slice(token.as_bytes());
        }
        request.extend_from_slice(format!("\r\ncontent-length: {}\r\n\r\n", body.len()).as_bytes());
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

    /// The `Authorization` header of a POST to `/` with these headers and `body`.
    fn authorize(
        &self,
        host: &str,
        region: &str,
        target: &str,
        body: &[u8],
        now: time::OffsetDateTime,
    ) -> String {
        let date = amz_date(now);
        let token = self.credentials.session_token();
        let mut signed = String::from("content-type;host;x-amz-date");
        let mut canonical = format!(
            "POST\n/\n\ncontent-type:application/x-amz-json-1.0\nhost:{host}\nx-amz-date:{date}\n"
        );
        if let Some(token) = token {
            canonical.push_str(&format!("x-amz-security-token:{token}\n"));
            signed.push_str(";x-amz-security-token");
        }
        canonical.push_str(&format!("x-amz-target:{target}\n\n"));
        signed.push_str(";x-amz-target");
        canonical.push_str(&signed);
        canonical.push('\n');
        canonical.push_str(&hex::encode(Sha256::digest(body)));
        let scope = format!("{}/{region}/dynamodb/aws4_request", self.day);
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        let signature = hex::encode(hmac(&self.key, to_sign.as_bytes()));
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}",
            self.credentials.access_key_id()
        )
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

fn day(t: time::OffsetDateTime) -> String {
    format!("{:04}{:02}{:02}", t.year(), u8::from(t.month()), t.day())
}

fn amz_date(t: time::OffsetDateTime) -> String {
    format!(
        "{}T{:02}{:02}{:02}Z",
        day(t),
        t.hour(),
        t.minute(),
        t.second()
    )
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
    /// Expression attribute names.
    pub names: HashMap<String, String>,
    /// Expression attribute values.
    pub values: Item,
    /// Ask for the item as it was before (`ReturnValues: ALL_OLD`).
    pub old: bool,
    /// Ask for the item as it stands when the condition fails.
    pub old_on_failure: bool,
}

impl Wire {
    /// Sends `write` to `table`; the item as it was before, when asked for and present.
    pub async fn write(&self, table: &str, write: Write) -> Result<Option<Item>, WireError> {
        let mut body = serde_json::Map::with_capacity(9);
        body.insert("TableName".into(), Value::String(table.to_owned()));
        let operation = match &write.item {
            Some(item) => {
                body.insert("Item".into(), item_json(item));
                "PutItem"
            }
            None => {
                body.insert("Key".into(), item_json(&write.key));
                if let Some(update) = write.update {
                    body.insert("UpdateExpression".into(), Value::String(update));
                }
                "UpdateItem"
            }
        };
        if let Some(condition) = write.condition {
            body.insert("ConditionExpression".into(), Value::String(condition));
        }
        if !write.names.is_empty() {
            let names = write.names.into_iter().map(|(k, v)| (k, Value::String(v)));
            body.insert(
                "ExpressionAttributeNames".into(),
                Value::Object(names.collect()),
            );
        }
        if !write.values.is_empty() {
            body.insert("ExpressionAttributeValues".into(), item_json(&write.values));
        }
        if write.old {
            body.insert("ReturnValues".into(), Value::String("ALL_OLD".into()));
        }
        if write.old_on_failure {
            body.insert(
                "ReturnValuesOnConditionCheckFailure".into(),
                Value::String("ALL_OLD".into()),
            );
        }
        body.insert(
            "ReturnConsumedCapacity".into(),
            Value::String("INDEXES".into()),
        );
        let bytes = serde_json::to_vec(&Value::Object(body))
            .map_err(|e| WireError::Unavailable(format!("request: {e}")))?;
        let answer = self.call(operation, bytes).await?;
        match answer.get("Attributes") {
            Some(old) => Ok(Some(item_from_json(old)?)),
            None => Ok(None),
        }
    }

    /// Puts `items` into `table` with `BatchWriteItem`, 25 a call, sending unprocessed ones
    /// again (five tries with a growing pause).
    pub async fn put_all(&self, table: &str, items: Vec<Item>) -> Result<(), WireError> {
        for batch in items.chunks(25) {
            let mut pending: Vec<Value> = batch
                .iter()
                .map(|i| serde_json::json!({ "PutRequest": { "Item": item_json(i) } }))
                .collect();
            for attempt in 0..5u64 {
                let body = serde_json::json!({
                    "RequestItems": { table: pending },
                    "ReturnConsumedCapacity": "INDEXES",
                });
                let bytes = serde_json::to_vec(&body)
                    .map_err(|e| WireError::Unavailable(format!("request: {e}")))?;
                let answer = self.call("BatchWriteItem", bytes).await?;
                pending = answer
                    .get("UnprocessedItems")
                    .and_then(|u| u.get(table))
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50 * (attempt + 1))).await;
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
    fn signs_as_the_aws_sigv4_crate_does() {
        let credentials = Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            Some("session".into()),
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
            now,
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
