//! switchyard's metrics as CloudWatch Embedded Metric Format log lines, plugged in through
//! the hook bus. No API calls: Lambda ships stdout to CloudWatch Logs, which extracts the
//! metrics. Metric names (namespace `Switchyard` unless configured):
//!
//! | metric | unit | dimensions |
//! | --- | --- | --- |
//! | `EventsReceived` | Count | source |
//! | `Duplicates` | Count | source |
//! | `SignatureFailures` | Count | source |
//! | `RequestsRejected` | Count | source, code |
//! | `ModulesDispatched` | Count | module |
//! | `ModulesSkipped` | Count | module, reason |
//! | `DispatchLatency` | Milliseconds | source |
//! | `DispatchFailures` | Count | source |
//! | `StoreWriteUnits`, `StoreReadUnits`, `StoreCalls`, `StoreRoundTrips` | Count | source (with `DispatchLatency` or `Duplicates`, one line per delivery: DynamoDB's consumed capacity) |
//! | `JobsFinished` | Count | module, status |
//! | `JobDuration` | Milliseconds | module |
//!
//! A delivery's lines go out together, in one `write`, with its `event_completed` line
//! (which fires for every delivery that reached dispatch, a store failure included). On
//! standard output the process's log lines can join them ([`stdout_log_line`]).

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;

use crate::hooks::{Hooks, Subscription};

/// The `source` dimension of a source id. Every distinct dimension value is a metric
/// CloudWatch bills, so it comes from a bounded set: configured sources (unknown ones are
/// reported as `(unknown)` by the router), `api`, `schedule`, and `internal` for every
/// internal source (their names are the emitting services' to choose).
fn source_dimension(source: &str) -> &str {
    if source.starts_with(crate::event::INTERNAL_SOURCE_PREFIX) {
        "internal"
    } else {
        source
    }
}

/// Writes EMF lines to a writer (stdout on Lambda). The metrics registered on the hook
/// bus ([`Emf::register`]) hold the lines of a unit of work (a delivery's `EventsReceived`
/// and `ModulesDispatched`, a job's `JobsFinished`) and write them with its last line
/// (`event_completed`, `request_rejected`, `JobDuration`): one `write` a delivery instead of
/// three. At most [`HELD_BYTES`] are ever held.
pub struct Emf {
    namespace: String,
    out: Arc<Mutex<Out>>,
}

/// The writer and the lines held for it.
struct Out {
    writer: Box<dyn Write + Send>,
    held: Vec<u8>,
}

/// Held lines past this size are written at once.
pub const HELD_BYTES: usize = 8 * 1024;

impl Out {
    /// Holds `line` (when `hold` and it fits [`HELD_BYTES`]) or writes it now, after the
    /// lines held before it, in one write.
    fn push(&mut self, line: Vec<u8>, hold: bool) {
        if hold && self.held.len() + line.len() <= HELD_BYTES {
            self.held.extend_from_slice(&line);
            return;
        }
        let text = if self.held.is_empty() {
            line
        } else {
            let mut all = std::mem::take(&mut self.held);
            all.extend_from_slice(&line);
            all
        };
        // A line that cannot be written is dropped; it never fails a request.
        let _ = self.writer.write_all(&text);
        let _ = self.writer.flush();
    }
}

/// The process's standard output as EMF and log lines share it.
fn stdout_out() -> &'static Arc<Mutex<Out>> {
    static OUT: OnceLock<Arc<Mutex<Out>>> = OnceLock::new();
    OUT.get_or_init(|| {
        Arc::new(Mutex::new(Out {
            writer: Box::new(std::io::stdout()),
            held: Vec::new(),
        }))
    })
}

/// One log line for standard output, written when dropped. A line that `may_wait` (the
/// router's log writer passes `true` for INFO and below) joins the EMF lines held there
/// when there are some, and goes out with them in the same `write`, at the `emit` that ends
/// their unit of work; it never waits alone: with nothing held, or as a WARN or ERROR, it
/// is written at once (after whatever was held, so lines keep their order). A delivery's
/// `dispatched` line was its own `write` (about 11 µs of a delivery's CPU writing to a file,
/// docs/performance.md, session 17).
pub fn stdout_log_line(may_wait: bool) -> LogLine {
    LogLine::to(stdout_out(), may_wait)
}

/// A log line being written; see [`stdout_log_line`].
pub struct LogLine {
    out: Arc<Mutex<Out>>,
    line: Vec<u8>,
    may_wait: bool,
}

impl LogLine {
    fn to(out: &Arc<Mutex<Out>>, may_wait: bool) -> Self {
        Self {
            out: out.clone(),
            line: Vec::new(),
            may_wait,
        }
    }
}

impl std::fmt::Debug for LogLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogLine")
            .field("bytes", &self.line.len())
            .field("may_wait", &self.may_wait)
            .finish_non_exhaustive()
    }
}

impl Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.line.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        if self.line.is_empty() {
            return;
        }
        let line = std::mem::take(&mut self.line);
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let hold = self.may_wait && !out.held.is_empty();
        out.push(line, hold);
    }
}

impl std::fmt::Debug for Emf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emf")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

/// An in-memory writer for EMF lines, for tests of custom routers and modules.
#[derive(Debug, Clone, Default)]
pub struct MemoryWriter(Arc<Mutex<Vec<u8>>>);

impl Write for MemoryWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl MemoryWriter {
    /// Every line written so far, parsed (lines that are not JSON are skipped).
    pub fn lines(&self) -> Vec<Value> {
        let bytes = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

/// Metric units used here (a subset of CloudWatch's).
#[derive(Debug, Clone, Copy)]
pub enum Unit {
    /// A count.
    Count,
    /// A duration.
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Self::Count => "Count",
            Self::Milliseconds => "Milliseconds",
        }
    }
}

impl Emf {
    /// EMF on standard output, through the process's one standard-output buffer (which
    /// [`stdout_log_line`]s share).
    pub fn stdout(namespace: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            out: stdout_out().clone(),
        }
    }

    /// EMF into any writer (tests).
    pub fn to_writer(namespace: impl Into<String>, out: Box<dyn Write + Send>) -> Self {
        Self {
            namespace: namespace.into(),
            out: Arc::new(Mutex::new(Out {
                writer: out,
                held: Vec::new(),
            })),
        }
    }

    /// A log line for this EMF's writer (see [`stdout_log_line`]).
    pub fn log_line(&self, may_wait: bool) -> LogLine {
        LogLine::to(&self.out, may_wait)
    }

    /// Writes one EMF line, and any held before it, in one write: the metrics share the
    /// dimension set `dims`.
    pub fn emit(&self, dims: &[(&str, &str)], metrics: &[(&str, f64, Unit)]) {
        self.line(dims, metrics, true);
    }

    /// Keeps one EMF line for the next [`Emf::emit`] (or writes it now, past
    /// [`HELD_BYTES`]).
    pub fn hold(&self, dims: &[(&str, &str)], metrics: &[(&str, f64, Unit)]) {
        self.line(dims, metrics, false);
    }

    /// The line is written straight into one buffer (no JSON tree).
    fn line(&self, dims: &[(&str, &str)], metrics: &[(&str, f64, Unit)], now: bool) {
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        let mut line: Vec<u8> = Vec::with_capacity(192 + 48 * metrics.len());
        // Writing JSON into a Vec cannot fail.
        let text = |line: &mut Vec<u8>, s: &str| {
            let _ = serde_json::to_writer(&mut *line, s);
        };
        let _ = write!(
            line,
            "{{\"_aws\":{{\"Timestamp\":{},\"CloudWatchMetrics\":[{{\"Namespace\":",
            i64::try_from(timestamp).unwrap_or(0)
        );
        text(&mut line, &self.namespace);
        line.extend_from_slice(b",\"Dimensions\":[[");
        for (i, (k, _)) in dims.iter().enumerate() {
            if i > 0 {
                line.push(b',');
            }
            text(&mut line, k);
        }
        line.extend_from_slice(b"]],\"Metrics\":[");
        for (i, (name, _, unit)) in metrics.iter().enumerate() {
            if i > 0 {
                line.push(b',');
            }
            line.extend_from_slice(b"{\"Name\":");
            text(&mut line, name);
            let _ = write!(line, ",\"Unit\":\"{}\"}}", unit.as_str());
        }
        line.extend_from_slice(b"]}]}");
        for (k, v) in dims {
            line.push(b',');
            text(&mut line, k);
            line.push(b':');
            text(&mut line, v);
        }
        for (name, value, _) in metrics {
            line.push(b',');
            text(&mut line, name);
            line.push(b':');
            let _ = serde_json::to_writer(&mut line, value);
        }
        line.extend_from_slice(b"}\n");
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        out.push(line, !now);
    }

    /// Registers switchyard's metrics on `hooks` (priority 1000: after user handlers).
    pub fn register(self: &Arc<Self>, hooks: &Hooks) -> Vec<Subscription> {
        const P: i32 = 1000;
        let mut subs = Vec::new();
        let e = self.clone();
        subs.push(hooks.event_received.on(P, move |r| {
            e.hold(
                &[("source", source_dimension(&r.event.source))],
                &[("EventsReceived", 1.0, Unit::Count)],
            );
            Ok(())
        }));
        let e = self.clone();
        subs.push(hooks.request_rejected.on(P, move |r| {
            if r.code == "unauthorized" {
                e.emit(
                    &[("source", source_dimension(&r.source))],
                    &[("SignatureFailures", 1.0, Unit::Count)],
                );
            } else {
                e.emit(
                    &[("source", source_dimension(&r.source)), ("code", r.code)],
                    &[("RequestsRejected", 1.0, Unit::Count)],
                );
            }
            Ok(())
        }));
        let e = self.clone();
        subs.push(hooks.module_dispatched.on(P, move |d| {
            e.hold(
                &[("module", &d.module)],
                &[("ModulesDispatched", 1.0, Unit::Count)],
            );
            Ok(())
        }));
        let e = self.clone();
        subs.push(hooks.module_skipped.on(P, move |s| {
            e.hold(
                &[("module", &s.module), ("reason", &s.reason)],
                &[("ModulesSkipped", 1.0, Unit::Count)],
            );
            Ok(())
        }));
        let e = self.clone();
        subs.push(hooks.event_completed.on(P, move |c| {
            let ms = c.duration.as_secs_f64() * 1000.0;
            // What every delivery cost the store, duplicates and conflicts included (the
            // running cost of the deployment, per source), and its outcome: one line.
            let mut metrics = vec![
                ("StoreWriteUnits", c.store.write_units, Unit::Count),
                ("StoreReadUnits", c.store.read_units, Unit::Count),
                ("StoreCalls", c.store.calls as f64, Unit::Count),
                ("StoreRoundTrips", c.store.round_trips as f64, Unit::Count),
            ];
            match c.outcome {
                "duplicate" => metrics.push(("Duplicates", 1.0, Unit::Count)),
                "dispatched" | "incomplete" | "filtered" => {
                    metrics.push(("DispatchLatency", ms, Unit::Milliseconds));
                    if c.failed > 0 {
                        metrics.push(("DispatchFailures", c.failed as f64, Unit::Count));
                    }
                }
                _ => {}
            }
            e.emit(&[("source", source_dimension(&c.source))], &metrics);
            Ok(())
        }));
        let e = self.clone();
        subs.push(hooks.job_finished.on(P, move |j| {
            e.hold(
                &[("module", &j.module), ("status", j.status.as_str())],
                &[("JobsFinished", 1.0, Unit::Count)],
            );
            e.emit(
                &[("module", &j.module)],
                &[(
                    "JobDuration",
                    j.duration.as_secs_f64() * 1000.0,
                    Unit::Milliseconds,
                )],
            );
            Ok(())
        }));
        subs
    }
}

const UNITS: &[&str] = &[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// Checks a line against the EMF specification's structure: `_aws` with an integer
/// millisecond `Timestamp` and `CloudWatchMetrics` directives, each with a
/// `Namespace`, `Dimensions` (arrays of at most 30 names, each a string member of the
/// root) and `Metrics` (at most 100, each with a `Name` whose root member is a number,
/// and a valid `Unit`).
pub fn validate(line: &Value) -> Result<(), EmfError> {
    validate_text(line).map_err(EmfError)
}

fn validate_text(line: &Value) -> Result<(), String> {
    let root = line.as_object().ok_or("not an object")?;
    let aws = root
        .get("_aws")
        .and_then(Value::as_object)
        .ok_or("no _aws object")?;
    let ts = aws
        .get("Timestamp")
        .and_then(Value::as_i64)
        .ok_or("Timestamp is not an integer")?;
    if ts < 1_000_000_000_000 {
        return Err("Timestamp is not in milliseconds".into());
    }
    let directives = aws
        .get("CloudWatchMetrics")
        .and_then(Value::as_array)
        .ok_or("no CloudWatchMetrics array")?;
    if directives.is_empty() {
        return Err("empty CloudWatchMetrics".into());
    }
    for d in directives {
        let ns = d
            .get("Namespace")
            .and_then(Value::as_str)
            .ok_or("no Namespace")?;
        if ns.is_empty() || ns.len() > 255 {
            return Err("bad Namespace".into());
        }
        let dims = d
            .get("Dimensions")
            .and_then(Value::as_array)
            .ok_or("no Dimensions")?;
        for set in dims {
            let set = set.as_array().ok_or("a dimension set is not an array")?;
            if set.len() > 30 {
                return Err("more than 30 dimensions".into());
            }
            for name in set {
                let name = name.as_str().ok_or("a dimension name is not a string")?;
                if !root.get(name).is_some_and(Value::is_string) {
                    return Err(format!("dimension {name} has no string member"));
                }
            }
        }
        let metrics = d
            .get("Metrics")
            .and_then(Value::as_array)
            .ok_or("no Metrics")?;
        if metrics.is_empty() || metrics.len() > 100 {
            return Err("Metrics must hold 1 to 100 definitions".into());
        }
        for m in metrics {
            let name = m
                .get("Name")
                .and_then(Value::as_str)
                .ok_or("a metric has no Name")?;
            if name.is_empty() || name.len() > 255 {
                return Err("bad metric Name".into());
            }
            if !root.get(name).is_some_and(Value::is_number) {
                return Err(format!("metric {name} has no numeric member"));
            }
            if let Some(unit) = m.get("Unit") {
                let unit = unit.as_str().ok_or("Unit is not a string")?;
                if !UNITS.contains(&unit) {
                    return Err(format!("unknown Unit {unit}"));
                }
            }
        }
    }
    Ok(())
}

switchyard_core::message_error! {
    /// How a line breaks the EMF specification.
    EmfError
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    #[test]
    fn names_and_values_with_json_specials_are_escaped() {
        let captured = MemoryWriter::default();
        let emf = Emf::to_writer("Name\"space\\", Box::new(captured.clone()));
        emf.emit(
            &[("module", "a\"b\nc")],
            &[("Odd\"Metric", 0.25, Unit::Count)],
        );
        let lines = captured.lines();
        assert_eq!(lines.len(), 1, "the line parses as JSON");
        validate(&lines[0]).unwrap();
        assert_eq!(lines[0]["module"], "a\"b\nc");
        assert_eq!(lines[0]["Odd\"Metric"], 0.25);
        assert_eq!(
            lines[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "Name\"space\\"
        );
    }

    #[test]
    fn emitted_lines_follow_the_emf_structure() {
        let captured = MemoryWriter::default();
        let emf = Emf::to_writer("Switchyard", Box::new(captured.clone()));
        emf.emit(
            &[("source", "github")],
            &[("EventsReceived", 1.0, Unit::Count)],
        );
        emf.emit(
            &[("module", "pr-review"), ("reason", "cooldown")],
            &[
                ("ModulesSkipped", 1.0, Unit::Count),
                ("Other", 2.5, Unit::Milliseconds),
            ],
        );
        let lines = captured.lines();
        assert_eq!(lines.len(), 2);
        for l in &lines {
            validate(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        }
        assert_eq!(lines[0]["source"], "github");
        assert_eq!(lines[0]["EventsReceived"], 1.0);
        assert_eq!(
            lines[1]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["module", "reason"]])
        );
    }

    #[test]
    fn the_validator_rejects_what_cloudwatch_would() {
        let good = json!({"_aws": {"Timestamp": 1_700_000_000_000i64, "CloudWatchMetrics": [{"Namespace": "N", "Dimensions": [["a"]], "Metrics": [{"Name": "M", "Unit": "Count"}]}]}, "a": "x", "M": 1});
        assert!(validate(&good).is_ok());
        let mut no_dim = good.clone();
        no_dim.as_object_mut().unwrap().remove("a");
        assert!(validate(&no_dim).is_err());
        let mut bad_unit = good.clone();
        bad_unit["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] = json!("Things");
        assert!(validate(&bad_unit).is_err());
        let mut seconds = good.clone();
        seconds["_aws"]["Timestamp"] = json!(1_700_000_000);
        assert!(validate(&seconds).is_err());
        let mut text_metric = good;
        text_metric["M"] = json!("1");
        assert!(validate(&text_metric).is_err());
    }

    /// A job of `notify` succeeded in 12 ms.
    fn finish_a_job(hooks: &Hooks) {
        hooks
            .job_finished
            .dispatch(&crate::hooks::JobFinished {
                module: "notify".into(),
                job_id: "j".into(),
                status: crate::store::JobStatus::Succeeded,
                duration: Duration::from_millis(12),
            })
            .unwrap();
    }

    #[test]
    fn a_log_line_joins_held_lines_and_never_waits_alone() {
        #[derive(Clone, Default)]
        struct Writes(Arc<Mutex<Vec<String>>>);
        impl Write for Writes {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0
                    .lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(buf).into());
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let writes = Writes::default();
        let emf = Emf::to_writer("Switchyard", Box::new(writes.clone()));
        let log = |may_wait: bool, text: &str| {
            let mut line = emf.log_line(may_wait);
            line.write_all(text.as_bytes()).unwrap();
        };
        let count = || writes.0.lock().unwrap().len();
        // Nothing held: written at once, even when it may wait.
        log(true, "INFO serving\n");
        assert_eq!(count(), 1);
        // A delivery's held line: the log line joins it, and both go out with the emit.
        emf.hold(
            &[("source", "github")],
            &[("EventsReceived", 1.0, Unit::Count)],
        );
        log(true, "INFO dispatched\n");
        assert_eq!(count(), 1, "the log line waits with the held metrics line");
        emf.emit(&[("source", "github")], &[("StoreCalls", 3.0, Unit::Count)]);
        assert_eq!(count(), 2);
        let last = writes.0.lock().unwrap()[1].clone();
        let lines: Vec<&str> = last.lines().collect();
        assert_eq!(lines.len(), 3, "{last}");
        assert!(lines[0].contains("EventsReceived"));
        assert_eq!(lines[1], "INFO dispatched");
        assert!(lines[2].contains("StoreCalls"));
        // A line that may not wait (WARN) goes out at once, after what was held.
        emf.hold(
            &[("source", "github")],
            &[("EventsReceived", 1.0, Unit::Count)],
        );
        log(false, "WARN store slow\n");
        assert_eq!(count(), 3);
        let last = writes.0.lock().unwrap()[2].clone();
        assert!(
            last.starts_with("{") && last.ends_with("WARN store slow\n"),
            "{last}"
        );
    }

    #[test]
    fn held_lines_go_out_with_the_next_emitted_one_in_one_write() {
        /// Each `write` call's bytes.
        #[derive(Clone, Default)]
        struct Writes(Arc<Mutex<Vec<Vec<u8>>>>);
        impl Write for Writes {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().push(buf.to_vec());
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let writes = Writes::default();
        let emf = Arc::new(Emf::to_writer("Switchyard", Box::new(writes.clone())));
        let hooks = Hooks::default();
        emf.register(&hooks);
        // A job's two lines: the first held, both written with the second.
        finish_a_job(&hooks);
        emf.hold(
            &[("source", "github")],
            &[("EventsReceived", 1.0, Unit::Count)],
        );
        assert_eq!(writes.0.lock().unwrap().len(), 1, "a held line waits");
        emf.emit(&[("source", "github")], &[("StoreCalls", 3.0, Unit::Count)]);
        let all = writes.0.lock().unwrap().clone();
        assert_eq!(all.len(), 2);
        let lines: Vec<Value> = all
            .iter()
            .flat_map(|w| {
                String::from_utf8(w.clone())
                    .unwrap()
                    .lines()
                    .map(|l| serde_json::from_str(l).unwrap())
                    .collect::<Vec<Value>>()
            })
            .collect();
        assert_eq!(lines.len(), 4);
        assert!(lines.iter().all(|l| validate(l).is_ok()));
        assert_eq!(lines[0]["JobsFinished"], 1.0);
        assert_eq!(lines[1]["JobDuration"], 12.0);
        assert_eq!(lines[2]["EventsReceived"], 1.0);
        assert_eq!(lines[3]["StoreCalls"], 3.0);
        // Never more than HELD_BYTES held: past it, the held lines are written at once.
        let module = "m".repeat(400);
        let mut before = writes.0.lock().unwrap().len();
        let mut held = 0;
        for _ in 0..100 {
            emf.hold(
                &[("module", &module)],
                &[("ModulesDispatched", 1.0, Unit::Count)],
            );
            let now = writes.0.lock().unwrap().len();
            if now > before {
                assert!(held * 400 <= HELD_BYTES && held > 0, "{held} lines held");
                held = 0;
                before = now;
            }
            held += 1;
        }
        assert!(
            writes
                .0
                .lock()
                .unwrap()
                .iter()
                .skip(2)
                .all(|w| w.len() <= HELD_BYTES + 1024)
        );
        assert!(
            writes.0.lock().unwrap().len() > 2,
            "the cap wrote held lines"
        );
    }

    #[test]
    fn registered_metrics_emit_on_pipeline_signals() {
        let captured = MemoryWriter::default();
        let emf = Arc::new(Emf::to_writer("Switchyard", Box::new(captured.clone())));
        let hooks = Hooks::default();
        emf.register(&hooks);
        hooks
            .request_rejected
            .dispatch(&crate::hooks::RequestRejected {
                source: "github".into(),
                status: 401,
                code: "unauthorized",
                reason: "signature does not match".into(),
            })
            .unwrap();
        finish_a_job(&hooks);
        let lines = captured.lines();
        assert_eq!(lines.len(), 3);
        assert!(lines.iter().all(|l| validate(l).is_ok()));
        assert_eq!(lines[0]["SignatureFailures"], 1.0);
        assert_eq!(lines[1]["status"], "succeeded");
        assert_eq!(lines[2]["JobDuration"], 12.0);
    }
}
