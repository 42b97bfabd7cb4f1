//! The hook bus: switchyard's extension points. Typed action points observe the pipeline
//! (event received, request rejected, module dispatched or skipped, event completed, job
//! finished); typed filter points shape it (the normalized event, each module's context).
//! A custom router binary registers its handlers on [`Hooks`] and hands them to the
//! dispatcher; switchyard's own metrics (`switchyard::hooks::emf`) are plugged in the same way.

mod bus;

use std::sync::Arc;
use std::time::Duration;

pub use bus::{
    ActionPoint, BusContext, FailureKind, FilterPoint, Filtered, Flow, HandlerFailure, HookError,
    HookErrors, MetricsSink, NoopSink, Subscription, Tracker,
};

use crate::context::ModuleContext;
use crate::event::Event;
use crate::store::JobStatus;

/// The event filter's value: the normalized event, and a reason when a handler drops it.
/// A dropped event dispatches nothing; its listening modules are skipped with reason
/// `filtered` and the reason as detail.
#[derive(Debug, Clone)]
pub struct EventGate {
    /// The event (handlers may replace it, e.g. to redact a field).
    pub event: Event,
    /// Set to drop the event.
    pub drop: Option<String>,
}

/// A delivery was verified and normalized.
#[derive(Debug, Clone)]
pub struct EventReceived {
    /// The event.
    pub event: Arc<Event>,
}

/// A request was answered with a 4xx before dispatch (bad signature, unknown source, ...).
#[derive(Debug, Clone)]
pub struct RequestRejected {
    /// Source id from the path.
    pub source: String,
    /// HTTP status.
    pub status: u16,
    /// Stable error code (`unauthorized` for signature failures).
    pub code: &'static str,
    /// The logged reason (never a secret or a signature).
    pub reason: String,
}

/// A module's invoke went out.
#[derive(Debug, Clone)]
pub struct ModuleDispatched {
    /// Source id.
    pub source: String,
    /// Delivery id.
    pub event_id: String,
    /// Module.
    pub module: String,
    /// Job id.
    pub job_id: String,
    /// The context sent (after the context filter).
    pub context: Arc<ModuleContext>,
}

/// A module that listens for the event did not run.
#[derive(Debug, Clone)]
pub struct ModuleSkipped {
    /// Source id.
    pub source: String,
    /// Delivery id.
    pub event_id: String,
    /// Module.
    pub module: String,
    /// Reason code.
    pub reason: String,
    /// The failing clause.
    pub detail: Option<String>,
}

/// A delivery's handling ended.
#[derive(Debug, Clone)]
pub struct EventCompleted {
    /// Source id.
    pub source: String,
    /// Delivery id.
    pub event_id: String,
    /// Event type.
    pub event_type: String,
    /// `dispatched`, `incomplete`, `duplicate`, `conflict`, `in_progress`, `filtered`, or
    /// `error` (the store failed before any invoke went out: the delivery is answered 5xx).
    pub outcome: &'static str,
    /// Jobs dispatched.
    pub jobs: usize,
    /// Modules skipped.
    pub skipped: usize,
    /// Invokes that failed.
    pub failed: usize,
    /// Time from the start of dispatch to the outcome.
    pub duration: Duration,
    /// What the delivery cost the store: calls, write and read units, round trips.
    pub store: crate::store::usage::Usage,
}

/// A module finished a job (emitted by the module runtime).
#[derive(Debug, Clone)]
pub struct JobFinished {
    /// Module.
    pub module: String,
    /// Job id.
    pub job_id: String,
    /// Final status.
    pub status: JobStatus,
    /// Time the handler ran.
    pub duration: Duration,
}

/// Every hook point of the pipeline.
#[derive(Debug)]
pub struct Hooks {
    ctx: BusContext,
    /// Filter on the normalized event, after de-duplication, before matching.
    pub event_filter: FilterPoint<EventGate>,
    /// Filter on each module's context, before fan-out.
    pub context_filter: FilterPoint<ModuleContext>,
    /// After normalization.
    pub event_received: ActionPoint<EventReceived>,
    /// When a request is answered with a 4xx before dispatch.
    pub request_rejected: ActionPoint<RequestRejected>,
    /// Per invoke that went out.
    pub module_dispatched: ActionPoint<ModuleDispatched>,
    /// Per module skipped.
    pub module_skipped: ActionPoint<ModuleSkipped>,
    /// When a delivery's handling ends, whatever the outcome.
    pub event_completed: ActionPoint<EventCompleted>,
    /// When a module finishes a job.
    pub job_finished: ActionPoint<JobFinished>,
}

impl Default for Hooks {
    fn default() -> Self {
        Self::with_metrics(Arc::new(NoopSink))
    }
}

impl Hooks {
    /// Hook points with no handlers, reporting the bus's own signals to `metrics`.
    pub fn with_metrics(metrics: Arc<dyn MetricsSink>) -> Self {
        let ctx = BusContext {
            metrics,
            tracker: Arc::new(Tracker::default()),
        };
        Self {
            event_filter: FilterPoint::new("event_filter", ctx.clone()),
            context_filter: FilterPoint::new("context_filter", ctx.clone()),
            event_received: ActionPoint::new("event_received", ctx.clone()),
            request_rejected: ActionPoint::new("request_rejected", ctx.clone()),
            module_dispatched: ActionPoint::new("module_dispatched", ctx.clone()),
            module_skipped: ActionPoint::new("module_skipped", ctx.clone()),
            event_completed: ActionPoint::new("event_completed", ctx.clone()),
            job_finished: ActionPoint::new("job_finished", ctx.clone()),
            ctx,
        }
    }

    /// Waits until every async action spawned so far has finished (tests, shutdown).
    pub async fn wait_idle(&self) {
        self.ctx.tracker.wait_idle().await;
    }
}

/// Logs an action point's aggregate failure at warn; hook failures never fail a request.
pub fn log_failures(result: Result<(), HookErrors>) {
    if let Err(e) = result {
        tracing::warn!(error = %e, "hook handlers failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn ctx() -> BusContext {
        BusContext::default()
    }

    type Handler = Box<dyn Fn(&u32) -> Result<(), HookError> + Send + Sync>;

    fn recorder() -> (Arc<Mutex<Vec<String>>>, impl Fn(&str) -> Handler) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        let make = move |name: &str| {
            let l = l.clone();
            let name = name.to_owned();
            Box::new(move |v: &u32| {
                l.lock().unwrap().push(format!("{name}:{v}"));
                Ok(())
            }) as Handler
        };
        (log, make)
    }

    #[test]
    fn actions_run_by_priority_and_ties_keep_registration_order() {
        let point = ActionPoint::<u32>::new("p", ctx());
        let (log, make) = recorder();
        point.on(10, make("c"));
        point.on(-5, make("a"));
        point.on(10, make("d"));
        point.on(0, make("b"));
        point.dispatch(&7).unwrap();
        assert_eq!(*log.lock().unwrap(), ["a:7", "b:7", "c:7", "d:7"]);
    }

    #[test]
    fn action_errors_are_aggregated_and_a_panicking_handler_does_not_stop_the_rest() {
        let point = ActionPoint::<u32>::new("p", ctx());
        let (log, make) = recorder();
        let bad = point.on(1, |_| Err("first failed".into()));
        point.on(2, |_| panic!("second exploded"));
        point.on(3, make("third"));
        let err = point.dispatch(&1).unwrap_err();
        assert_eq!(*log.lock().unwrap(), ["third:1"]);
        assert_eq!(err.0.len(), 2);
        assert_eq!(err.0[0].handler, bad.id());
        assert_eq!(err.0[0].kind, FailureKind::Error("first failed".into()));
        assert_eq!(err.0[1].kind, FailureKind::Panic("second exploded".into()));
        assert!(err.to_string().starts_with("2 hook handler(s) failed"));
    }

    #[test]
    fn a_filter_threads_the_value_and_may_short_circuit() {
        let point = FilterPoint::<u32>::new("f", ctx());
        point.on(0, |v| Ok(Flow::Replace(v + 1)));
        point.on(1, |v| Ok(Flow::Replace(v * 10)));
        point.on(2, |v| {
            if *v > 100 {
                Ok(Flow::StopWith(0))
            } else {
                Ok(Flow::Keep)
            }
        });
        point.on(3, |v| Ok(Flow::Replace(v + 5)));
        let out = point.apply(1);
        assert_eq!(
            (out.value, out.short_circuited, out.error.is_none()),
            (25, false, true)
        );
        let out = point.apply(20);
        assert_eq!((out.value, out.short_circuited), (0, true));
        let stop = FilterPoint::<u32>::new("s", ctx());
        stop.on(0, |_| Ok(Flow::Stop));
        stop.on(1, |_| Ok(Flow::Replace(99)));
        assert_eq!(stop.apply(4).value, 4);
    }

    #[test]
    fn a_filter_error_or_panic_stops_with_the_last_accepted_value() {
        let point = FilterPoint::<u32>::new("f", ctx());
        point.on(0, |v| Ok(Flow::Replace(v + 1)));
        point.on(1, |_| Err("nope".into()));
        point.on(2, |v| Ok(Flow::Replace(v + 100)));
        let out = point.apply(1);
        assert_eq!(out.value, 2);
        assert_eq!(out.error.unwrap().kind, FailureKind::Error("nope".into()));

        let point = FilterPoint::<u32>::new("g", ctx());
        point.on(0, |v| Ok(Flow::Replace(v + 1)));
        point.on(1, |_| panic!("boom"));
        point.on(2, |v| Ok(Flow::Replace(v + 100)));
        let out = point.apply(1);
        assert_eq!(out.value, 2);
        assert_eq!(out.error.unwrap().kind, FailureKind::Panic("boom".into()));
    }

    #[tokio::test]
    async fn async_actions_never_block_and_their_failures_never_reach_the_caller() {
        let bus = ctx();
        let point = ActionPoint::<u32>::new("a", bus.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let rx = Arc::new(tokio::sync::Mutex::new(Some(rx)));
        let done = Arc::new(AtomicUsize::new(0));
        let d = done.clone();
        point.on_async(0, move |_| {
            let rx = rx.clone();
            let d = d.clone();
            async move {
                // Blocks until the test releases it: dispatch must have returned by then.
                if let Some(rx) = rx.lock().await.take() {
                    let _ = rx.await;
                }
                d.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        });
        point.on_async(1, |_| async {
            Err::<(), HookError>("async failure".into())
        });
        point.on_async(2, |_| async { panic!("async panic") });
        assert!(
            point.dispatch(&1).is_ok(),
            "async failures are not returned"
        );
        assert_eq!(done.load(Ordering::SeqCst), 0, "the dispatch did not wait");
        tx.send(()).unwrap();
        let tracker = bus.tracker.clone();
        tokio::time::timeout(Duration::from_secs(5), tracker.wait_idle())
            .await
            .unwrap();
        assert_eq!(done.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn unsubscribe_is_idempotent_and_dropping_the_handle_keeps_the_handler() {
        let point = ActionPoint::<u32>::new("p", ctx());
        let (log, make) = recorder();
        let a = point.on(0, make("a"));
        drop(point.on(1, make("b")));
        a.unsubscribe();
        a.unsubscribe();
        point.dispatch(&1).unwrap();
        assert_eq!(*log.lock().unwrap(), ["b:1"]);
    }

    #[test]
    fn self_unsubscribe_and_reentrant_registration_take_effect_from_the_next_dispatch() {
        let point = Arc::new(ActionPoint::<u32>::new("p", ctx()));
        let (log, make) = recorder();
        let slot: Arc<Mutex<Option<Subscription>>> = Arc::new(Mutex::new(None));
        let (s, l, p) = (slot.clone(), log.clone(), Arc::downgrade(&point));
        let make = Arc::new(make);
        let mk = make.clone();
        let sub = point.on(0, move |v| {
            l.lock().unwrap().push(format!("once:{v}"));
            if let Some(sub) = s.lock().unwrap().as_ref() {
                sub.unsubscribe();
            }
            if let Some(p) = p.upgrade() {
                p.on(5, mk("late"));
            }
            Ok(())
        });
        *slot.lock().unwrap() = Some(sub);
        point.on(1, make("stay"));
        point.dispatch(&1).unwrap();
        // The in-flight dispatch ran neither the removal nor the new handler's effects.
        assert_eq!(*log.lock().unwrap(), ["once:1", "stay:1"]);
        point.dispatch(&2).unwrap();
        assert_eq!(
            *log.lock().unwrap(),
            ["once:1", "stay:1", "stay:2", "late:2"]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_register_dispatch_and_unregister_lose_no_handler() {
        let point = Arc::new(ActionPoint::<u32>::new("p", ctx()));
        let keep_hits = Arc::new(AtomicUsize::new(0));
        let k = keep_hits.clone();
        point.on(0, move |_| {
            k.fetch_add(1, Ordering::SeqCst);
            Ok(())
        });
        let mut tasks = Vec::new();
        for t in 0..8u32 {
            let point = point.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..200u32 {
                    let sub = point.on((i % 7) as i32, |_| Ok(()));
                    point.dispatch(&t).unwrap();
                    sub.unsubscribe();
                }
            }));
        }
        tokio::time::timeout(Duration::from_secs(30), futures::future::join_all(tasks))
            .await
            .unwrap();
        assert_eq!(keep_hits.load(Ordering::SeqCst), 8 * 200);
        // Every temporary handler is gone, the permanent one stays.
        keep_hits.store(0, Ordering::SeqCst);
        point.dispatch(&0).unwrap();
        assert_eq!(keep_hits.load(Ordering::SeqCst), 1);
        assert!(format!("{point:?}").contains("handlers: 1"));
    }

    #[derive(Default)]
    struct Recording(Mutex<Vec<(String, &'static str)>>);
    impl MetricsSink for Recording {
        fn counter(&self, name: &'static str, point: &'static str, value: u64) {
            self.0
                .lock()
                .unwrap()
                .push((format!("{name}={value}"), point));
        }
        fn histogram(&self, name: &'static str, point: &'static str, value: f64) {
            assert!(value >= 0.0);
            self.0.lock().unwrap().push((name.to_owned(), point));
        }
    }

    #[test]
    fn the_metrics_sink_receives_every_kind_of_signal() {
        let sink = Arc::new(Recording::default());
        let hooks = Hooks::with_metrics(sink.clone());
        hooks.event_received.on(0, |_| Err("x".into()));
        hooks.module_skipped.on(0, |_| panic!("y"));
        hooks.context_filter.on(0, |_| Ok(Flow::Stop));
        let event = crate::testing::event();
        let _ = hooks.event_received.dispatch(&EventReceived {
            event: Arc::new(event.clone()),
        });
        let _ = hooks.module_skipped.dispatch(&ModuleSkipped {
            source: "s".into(),
            event_id: "e".into(),
            module: "m".into(),
            reason: "r".into(),
            detail: None,
        });
        let _ = hooks.context_filter.apply(crate::testing::context(event));
        let seen = sink.0.lock().unwrap().clone();
        for want in [
            ("hook.error=1", "event_received"),
            ("hook.panic=1", "module_skipped"),
            ("hook.short_circuit=1", "context_filter"),
            ("hook.dispatch=1", "event_received"),
            ("hook.dispatch=1", "context_filter"),
            ("hook.duration_us", "module_skipped"),
        ] {
            assert!(
                seen.iter().any(|(n, p)| n == want.0 && *p == want.1),
                "{want:?} not in {seen:?}"
            );
        }
    }
}
