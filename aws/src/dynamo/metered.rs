//! Consumed capacity of every DynamoDB call: an SDK interceptor asks each data-plane call
//! for `ReturnConsumedCapacity: INDEXES` (DynamoDB bills the same either way) and records
//! the units it answers, with the call's start and end, into the unit of work running on the
//! task ([`crate::store::usage`]). Every SDK call goes through it; the lean client's calls
//! ([`super::wire`]) ask for the same units and record them the same way.

use std::time::Instant;

use aws_sdk_dynamodb::operation::{
    batch_get_item::{BatchGetItemInput, BatchGetItemOutput},
    batch_write_item::{BatchWriteItemInput, BatchWriteItemOutput},
    delete_item::{DeleteItemInput, DeleteItemOutput},
    get_item::{GetItemInput, GetItemOutput},
    put_item::{PutItemInput, PutItemOutput},
    query::{QueryInput, QueryOutput},
    scan::{ScanInput, ScanOutput},
    transact_get_items::{TransactGetItemsInput, TransactGetItemsOutput},
    transact_write_items::{TransactWriteItemsInput, TransactWriteItemsOutput},
    update_item::{UpdateItemInput, UpdateItemOutput},
};
use aws_sdk_dynamodb::types::{ConsumedCapacity, ReturnConsumedCapacity};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextMut,
    FinalizerInterceptorContextRef, Input, Output,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

use crate::store::usage::{Call, record};

/// The interceptor; add it to the DynamoDB client's configuration.
#[derive(Debug, Clone, Copy, Default)]
pub struct Metered;

/// What one call has shown so far (kept in the call's configuration bag).
#[derive(Debug, Clone)]
struct State {
    started: Instant,
    operation: &'static str,
    read: bool,
    table: f64,
    indexes: f64,
    condition_failed: bool,
}

impl Storable for State {
    type Storer = StoreReplace<Self>;
}

/// Asks a data-plane call's typed input for `INDEXES` (unless it asks for something
/// already) and names its operation; `None` for the control plane, which takes no
/// `ReturnConsumedCapacity`. Typed, so the request body is neither scanned nor copied.
fn ask(input: &mut Input) -> Option<(&'static str, bool)> {
    macro_rules! ask {
        ($($ty:ty => $name:literal, $read:literal;)*) => {
            $(if let Some(i) = input.downcast_mut::<$ty>() {
                i.return_consumed_capacity.get_or_insert(ReturnConsumedCapacity::Indexes);
                return Some(($name, $read));
            })*
        };
    }
    ask! {
        GetItemInput => "GetItem", true;
        PutItemInput => "PutItem", false;
        UpdateItemInput => "UpdateItem", false;
        DeleteItemInput => "DeleteItem", false;
        QueryInput => "Query", true;
        ScanInput => "Scan", true;
        BatchGetItemInput => "BatchGetItem", true;
        BatchWriteItemInput => "BatchWriteItem", false;
        TransactWriteItemsInput => "TransactWriteItems", false;
        TransactGetItemsInput => "TransactGetItems", true;
    }
    None
}

/// The `ConsumedCapacity` entries of a data-plane call's typed output.
fn consumed(output: &Output) -> &[ConsumedCapacity] {
    macro_rules! one {
        ($($ty:ty),*) => {
            $(if let Some(o) = output.downcast_ref::<$ty>() {
                return o.consumed_capacity().map_or(&[], std::slice::from_ref);
            })*
        };
    }
    macro_rules! many {
        ($($ty:ty),*) => {
            $(if let Some(o) = output.downcast_ref::<$ty>() {
                return o.consumed_capacity();
            })*
        };
    }
    one!(
        GetItemOutput,
        PutItemOutput,
        UpdateItemOutput,
        DeleteItemOutput,
        QueryOutput,
        ScanOutput
    );
    many!(
        BatchGetItemOutput,
        BatchWriteItemOutput,
        TransactWriteItemsOutput,
        TransactGetItemsOutput
    );
    &[]
}

/// (table units, index units) of a call's `ConsumedCapacity` entries.
fn units(list: &[ConsumedCapacity]) -> (f64, f64) {
    let mut table = 0.0;
    let mut indexes = 0.0;
    for u in list {
        let idx: f64 = u
            .global_secondary_indexes()
            .into_iter()
            .chain(u.local_secondary_indexes())
            .flat_map(|m| m.values())
            .filter_map(|p| p.capacity_units())
            .sum();
        table += match u.table() {
            Some(t) => t.capacity_units().unwrap_or(0.0),
            None => u.capacity_units().unwrap_or(0.0) - idx,
        };
        indexes += idx;
    }
    (table, indexes)
}

impl Intercept for Metered {
    fn name(&self) -> &'static str {
        "switchyard-consumed-capacity"
    }

    fn modify_before_serialization(
        &self,
        ctx: &mut BeforeSerializationInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some((operation, read)) = ask(ctx.input_mut()) {
            cfg.interceptor_state().store_put(State {
                started: Instant::now(),
                operation,
                read,
                table: 0.0,
                indexes: 0.0,
                condition_failed: false,
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
        let Some(mut next) = cfg.load::<State>().cloned() else {
            return Ok(());
        };
        match ctx.output_or_error() {
            Ok(output) => (next.table, next.indexes) = units(consumed(output)),
            // Billed, but answered without units: the answer's body is a short error.
            Err(_) => {
                let body = ctx.response().body().bytes().unwrap_or_default();
                next.condition_failed = body
                    .windows(b"ConditionalCheckFailed".len())
                    .any(|w| w == b"ConditionalCheckFailed");
            }
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
        let (table, indexes) = (state.table, state.indexes);
        record(Call {
            table_write_units: if state.read { 0.0 } else { table },
            index_write_units: if state.read { 0.0 } else { indexes },
            read_units: if state.read { table + indexes } else { 0.0 },
            condition_failed: state.condition_failed,
            operation: state.operation,
            started: state.started,
            ended: Instant::now(),
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::Capacity;

    #[test]
    fn units_split_table_and_indexes_for_single_and_batched_answers() {
        let cap = |u: f64| Capacity::builder().capacity_units(u).build();
        let one = ConsumedCapacity::builder()
            .capacity_units(6.0)
            .table(cap(3.0))
            .global_secondary_indexes("by_time", cap(3.0))
            .build();
        assert_eq!(units(std::slice::from_ref(&one)), (3.0, 3.0));
        let no_table = ConsumedCapacity::builder().capacity_units(2.0).build();
        let with_index = ConsumedCapacity::builder()
            .capacity_units(4.0)
            .table(cap(2.0))
            .global_secondary_indexes("a", cap(2.0))
            .build();
        assert_eq!(units(&[no_table, with_index]), (4.0, 2.0));
        assert_eq!(units(&[]), (0.0, 0.0));
    }

    #[test]
    fn data_plane_inputs_ask_for_index_units_and_keep_what_they_asked() {
        let mut put = Input::erase(PutItemInput::builder().table_name("t").build().unwrap());
        assert_eq!(ask(&mut put), Some(("PutItem", false)));
        assert_eq!(
            put.downcast_ref::<PutItemInput>()
                .unwrap()
                .return_consumed_capacity,
            Some(ReturnConsumedCapacity::Indexes)
        );
        let mut total = Input::erase(
            QueryInput::builder()
                .table_name("t")
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .build()
                .unwrap(),
        );
        assert_eq!(ask(&mut total), Some(("Query", true)));
        assert_eq!(
            total
                .downcast_ref::<QueryInput>()
                .unwrap()
                .return_consumed_capacity,
            Some(ReturnConsumedCapacity::Total)
        );
        let mut control = Input::erase(
            aws_sdk_dynamodb::operation::describe_table::DescribeTableInput::builder()
                .table_name("t")
                .build()
                .unwrap(),
        );
        assert_eq!(ask(&mut control), None);
    }
}
