//! Consumed capacity of every DynamoDB call: an SDK interceptor asks each data-plane call
//! for `ReturnConsumedCapacity: INDEXES` (DynamoDB bills the same either way) and records
//! the units it answers, with the call's start and end, into the unit of work running on the
//! task ([`crate::store::usage`]). One place, so no call can forget it.

use std::time::Instant;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextRef,
    BeforeTransmitInterceptorContextMut, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

use crate::store::usage::{Call, record};

/// The interceptor; add it to the DynamoDB client's configuration.
#[derive(Debug, Clone, Copy, Default)]
pub struct Metered;

/// What one call has shown so far (kept in the call's configuration bag).
#[derive(Debug, Clone)]
struct State {
    started: Instant,
    operation: Option<String>,
    table: f64,
    indexes: f64,
    condition_failed: bool,
}

impl Storable for State {
    type Storer = StoreReplace<Self>;
}

/// Data-plane operations that take `ReturnConsumedCapacity` (the control plane does not).
const METERED: &[&str] = &[
    "GetItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "Query",
    "Scan",
    "BatchGetItem",
    "BatchWriteItem",
    "TransactWriteItems",
    "TransactGetItems",
];

const READS: &[&str] = &[
    "GetItem",
    "Query",
    "Scan",
    "BatchGetItem",
    "TransactGetItems",
];

#[derive(serde::Deserialize)]
struct Units {
    #[serde(rename = "CapacityUnits", default)]
    total: f64,
    #[serde(rename = "Table", default)]
    table: Option<Part>,
    #[serde(rename = "GlobalSecondaryIndexes", default)]
    indexes: Option<std::collections::BTreeMap<String, Part>>,
    #[serde(rename = "LocalSecondaryIndexes", default)]
    local: Option<std::collections::BTreeMap<String, Part>>,
}

#[derive(serde::Deserialize)]
struct Part {
    #[serde(rename = "CapacityUnits", default)]
    units: f64,
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(Units),
    Many(Vec<Units>),
}

#[derive(serde::Deserialize)]
struct Answer {
    #[serde(rename = "ConsumedCapacity", default)]
    consumed: Option<OneOrMany>,
}

/// (table units, index units) of an answer's `ConsumedCapacity`.
fn units(body: &[u8]) -> Option<(f64, f64)> {
    let answer: Answer = serde_json::from_slice(body).ok()?;
    let list = match answer.consumed? {
        OneOrMany::One(u) => vec![u],
        OneOrMany::Many(v) => v,
    };
    let mut table = 0.0;
    let mut indexes = 0.0;
    for u in list {
        let idx: f64 = u
            .indexes
            .iter()
            .chain(u.local.iter())
            .flat_map(|m| m.values())
            .map(|p| p.units)
            .sum();
        table += u.table.map_or(u.total - idx, |t| t.units);
        indexes += idx;
    }
    Some((table, indexes))
}

impl Intercept for Metered {
    fn name(&self) -> &'static str {
        "switchyard-consumed-capacity"
    }

    fn read_before_execution(
        &self,
        _ctx: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state().store_put(State {
            started: Instant::now(),
            operation: None,
            table: 0.0,
            indexes: 0.0,
            condition_failed: false,
        });
        Ok(())
    }

    fn modify_before_signing(
        &self,
        ctx: &mut BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = ctx.request_mut();
        let Some(op) = request
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .filter(|op| METERED.contains(op))
            .map(str::to_owned)
        else {
            return Ok(());
        };
        // `{...}` becomes `{"ReturnConsumedCapacity":"INDEXES",...}` unless it asks already.
        if let Some(body) = request.body().bytes() {
            let asks = body
                .windows(b"\"ReturnConsumedCapacity\"".len())
                .any(|w| w == b"\"ReturnConsumedCapacity\"");
            if !asks && body.first() == Some(&b'{') {
                let mut out = Vec::with_capacity(body.len() + 40);
                out.extend_from_slice(b"{\"ReturnConsumedCapacity\":\"INDEXES\"");
                if body.len() > 2 {
                    out.push(b',');
                }
                out.extend_from_slice(&body[1..]);
                let len = out.len().to_string();
                *request.body_mut() = SdkBody::from(out);
                request.headers_mut().insert("content-length", len);
            }
        }
        if let Some(state) = cfg.load::<State>().cloned() {
            cfg.interceptor_state().store_put(State {
                operation: Some(op),
                ..state
            });
        }
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        ctx: &AfterDeserializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(state) = cfg.load::<State>().cloned() else {
            return Ok(());
        };
        if state.operation.is_none() {
            return Ok(());
        }
        let response = ctx.response();
        let Some(body) = response.body().bytes() else {
            return Ok(());
        };
        let mut next = state;
        if response.status().is_success() {
            if let Some((table, indexes)) = units(body) {
                next.table = table;
                next.indexes = indexes;
            }
        } else {
            // Billed, but answered without units.
            next.condition_failed = body
                .windows(b"ConditionalCheckFailed".len())
                .any(|w| w == b"ConditionalCheckFailed");
        }
        cfg.interceptor_state().store_put(next);
        Ok(())
    }

    fn read_after_execution(
        &self,
        _ctx: &FinalizerInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(state) = cfg.load::<State>() else {
            return Ok(());
        };
        let Some(operation) = state.operation.clone() else {
            return Ok(());
        };
        let read = READS.contains(&operation.as_str());
        record(Call {
            table_write_units: if read { 0.0 } else { state.table },
            index_write_units: if read { 0.0 } else { state.indexes },
            read_units: if read {
                state.table + state.indexes
            } else {
                0.0
            },
            condition_failed: state.condition_failed,
            operation,
            started: state.started,
            ended: Instant::now(),
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_split_table_and_indexes_for_single_and_batched_answers() {
        let one = br#"{"ConsumedCapacity":{"TableName":"t","CapacityUnits":6.0,"Table":{"CapacityUnits":3.0},"GlobalSecondaryIndexes":{"by_time":{"CapacityUnits":3.0}}}}"#;
        assert_eq!(units(one), Some((3.0, 3.0)));
        let many = br#"{"ConsumedCapacity":[{"TableName":"t","CapacityUnits":2.0,"Table":{"CapacityUnits":2.0}},{"TableName":"t","CapacityUnits":4.0,"Table":{"CapacityUnits":2.0},"GlobalSecondaryIndexes":{"a":{"CapacityUnits":2.0}}}]}"#;
        assert_eq!(units(many), Some((4.0, 2.0)));
        assert_eq!(units(br#"{"Item":{}}"#), None);
    }
}
