//! What one unit of work (a delivery, a job) cost the store: calls, the write and read units
//! DynamoDB billed (table and indexes), and the sequential round trips. The adapter records
//! each call into the unit of work running on the current task ([`measure`]); the dispatcher
//! reports the sum as metrics, and tests and benchmarks read the same numbers.

use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One store call as the adapter saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The operation (`PutItem`, `Query`, ...).
    pub operation: &'static str,
    /// Write units billed for the table.
    pub table_write_units: f64,
    /// Write units billed for the indexes.
    pub index_write_units: f64,
    /// Read units billed (table and indexes).
    pub read_units: f64,
    /// The write's condition failed: billed, but DynamoDB reports no units for it, so its
    /// item counts as the minimum of one write unit.
    pub condition_failed: bool,
    /// When the call started and ended, for the round-trip count.
    pub started: Instant,
    /// When the call ended.
    pub ended: Instant,
}

/// The sum of a unit of work's calls.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Usage {
    /// Store calls.
    pub calls: usize,
    /// Write units: table plus indexes (transactions already doubled by DynamoDB).
    pub write_units: f64,
    /// Of `write_units`, those billed for index writes.
    pub index_write_units: f64,
    /// Read units.
    pub read_units: f64,
    /// The longest chain of calls each of which started after the previous one ended: the
    /// round trips a unit of work waited for one after the other.
    pub round_trips: usize,
    /// The operations, in the order they started (`PutItem`, `UpdateItem`, ...).
    pub operations: Vec<&'static str>,
}

impl Usage {
    fn of(calls: &[Call]) -> Self {
        let mut sorted: Vec<&Call> = calls.iter().collect();
        sorted.sort_by_key(|c| c.started);
        // Longest chain of non-overlapping calls: calls are few (bounded by the modules of
        // one delivery), so the quadratic pass over them is cheap and sender-independent.
        let mut depth: Vec<usize> = Vec::with_capacity(sorted.len());
        for (i, c) in sorted.iter().enumerate() {
            let before = (0..i)
                .filter(|&j| sorted[j].ended <= c.started)
                .map(|j| depth[j])
                .max()
                .unwrap_or(0);
            depth.push(before + 1);
        }
        let write = |c: &&Call| {
            c.table_write_units + c.index_write_units + if c.condition_failed { 1.0 } else { 0.0 }
        };
        Self {
            calls: calls.len(),
            write_units: sorted.iter().map(write).sum(),
            index_write_units: sorted.iter().map(|c| c.index_write_units).sum(),
            read_units: sorted.iter().map(|c| c.read_units).sum(),
            round_trips: depth.into_iter().max().unwrap_or(0),
            operations: sorted.iter().map(|c| c.operation).collect(),
        }
    }
}

/// The calls of the unit of work running on this task.
#[derive(Debug, Default)]
pub struct Meter {
    calls: Mutex<Vec<Call>>,
}

impl Meter {
    /// Adds a call.
    pub fn record(&self, call: Call) {
        self.calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(call);
    }

    /// What the calls so far add up to.
    pub fn usage(&self) -> Usage {
        Usage::of(&self.calls.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

tokio::task_local! {
    static METER: Arc<Meter>;
}

/// Runs `work` as one unit of work: the store calls it makes on this task (also in futures
/// it joins, not in tasks it spawns) are added up. Returns its output and its usage.
pub async fn measure<F: std::future::Future>(work: F) -> (F::Output, Usage) {
    let meter = Arc::new(Meter::default());
    let out = METER.scope(meter.clone(), work).await;
    (out, meter.usage())
}

/// Records `call` into the unit of work on this task, if there is one.
pub fn record(call: Call) {
    let _ = METER.try_with(|m| m.record(call));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn call(op: &'static str, at: Instant, start_ms: u64, end_ms: u64, w: f64) -> Call {
        Call {
            operation: op,
            table_write_units: w,
            index_write_units: 1.0,
            read_units: 0.5,
            condition_failed: false,
            started: at + Duration::from_millis(start_ms),
            ended: at + Duration::from_millis(end_ms),
        }
    }

    #[test]
    fn concurrent_calls_are_one_round_trip_and_units_add_up() {
        let t = Instant::now();
        // reserve; then three writes at once; then the finish.
        let calls = [
            call("UpdateItem", t, 0, 10, 1.0),
            call("PutItem", t, 11, 20, 5.0),
            call("UpdateItem", t, 11, 18, 1.0),
            call("PutItem", t, 12, 19, 1.0),
            call("UpdateItem", t, 21, 30, 1.0),
        ];
        let u = Usage::of(&calls);
        assert_eq!(u.calls, 5);
        assert_eq!(u.round_trips, 3);
        assert_eq!(u.write_units, 14.0);
        assert_eq!(u.index_write_units, 5.0);
        assert_eq!(u.read_units, 2.5);
        assert_eq!(u.operations[0], "UpdateItem");
    }

    #[tokio::test]
    async fn calls_are_recorded_only_inside_a_unit_of_work() {
        let t = Instant::now();
        record(call("GetItem", t, 0, 1, 0.0));
        let ((), u) = measure(async {
            let a = async { record(call("GetItem", t, 0, 1, 0.0)) };
            let b = async { record(call("PutItem", t, 0, 1, 1.0)) };
            tokio::join!(a, b);
        })
        .await;
        assert_eq!((u.calls, u.round_trips), (2, 1));
    }
}
