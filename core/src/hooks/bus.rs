//! The hook bus itself: typed action and filter points with priorities, panic isolation,
//! lock-free dispatch over copy-on-write handler chains, async actions that never block,
//! idempotent unsubscribe handles and a metrics sink.

use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use arc_swap::ArcSwap;
use futures::FutureExt as _;

/// A handler's own failure.
pub type HookError = Box<dyn std::error::Error + Send + Sync>;

type SyncAction<T> = dyn Fn(&T) -> Result<(), HookError> + Send + Sync;
type BoxFuture = Pin<Box<dyn Future<Output = Result<(), HookError>> + Send>>;
type AsyncAction<T> = dyn Fn(T) -> BoxFuture + Send + Sync;
type FilterFn<T> = dyn Fn(&T) -> Result<Flow<T>, HookError> + Send + Sync;

/// What a filter handler decides.
#[derive(Debug)]
pub enum Flow<T> {
    /// Pass the value on unchanged.
    Keep,
    /// Pass this value on instead.
    Replace(T),
    /// Stop the chain; the current value is the result.
    Stop,
    /// Stop the chain with this value.
    StopWith(T),
}

/// Receives the bus's own signals. Names: `hook.dispatch`, `hook.error`, `hook.panic`,
/// `hook.short_circuit` (counters) and `hook.duration_us` (histogram), each labelled with
/// the point's name.
pub trait MetricsSink: Send + Sync {
    /// Adds `value` to a counter.
    fn counter(&self, name: &'static str, point: &'static str, value: u64);
    /// Records one observation.
    fn histogram(&self, name: &'static str, point: &'static str, value: f64);
}

/// A sink that drops everything (the default).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopSink;

impl MetricsSink for NoopSink {
    fn counter(&self, _: &'static str, _: &'static str, _: u64) {}
    fn histogram(&self, _: &'static str, _: &'static str, _: f64) {}
}

/// How one handler failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureKind {
    /// It returned an error.
    Error(String),
    /// It panicked; the payload's text when it was a string.
    Panic(String),
}

/// One handler's failure in a dispatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerFailure {
    /// The point.
    pub point: &'static str,
    /// The handler's registration id.
    pub handler: u64,
    /// Its priority.
    pub priority: i32,
    /// What happened.
    pub kind: FailureKind,
}

/// Every failure of one action dispatch.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HookErrors(pub Vec<HandlerFailure>);

impl fmt::Display for HookErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|h| match &h.kind {
                FailureKind::Error(e) => format!("{} handler {}: error: {e}", h.point, h.handler),
                FailureKind::Panic(p) => format!("{} handler {}: panic: {p}", h.point, h.handler),
            })
            .collect();
        write!(
            f,
            "{} hook handler(s) failed: {}",
            self.0.len(),
            parts.join("; ")
        )
    }
}

impl std::error::Error for HookErrors {}

/// The result of applying a filter chain.
#[derive(Debug)]
pub struct Filtered<T> {
    /// The final value (the last accepted one when a handler failed).
    pub value: T,
    /// Whether a handler stopped the chain early.
    pub short_circuited: bool,
    /// The handler failure that stopped the chain, if any.
    pub error: Option<HandlerFailure>,
}

/// Outstanding async actions, shared by every point of a bus, so shutdown and tests can
/// drain them.
#[derive(Default)]
pub struct Tracker {
    pending: AtomicUsize,
    idle: tokio::sync::Notify,
}

impl fmt::Debug for Tracker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracker")
            .field("pending", &self.pending.load(Ordering::SeqCst))
            .finish()
    }
}

impl Tracker {
    /// Waits until no async action is running.
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.pending.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }

    fn start(&self) {
        self.pending.fetch_add(1, Ordering::SeqCst);
    }

    fn done(&self) {
        if self.pending.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }
}

enum Kind<T> {
    Sync(Box<SyncAction<T>>),
    Async(Box<AsyncAction<T>>),
    Filter(Box<FilterFn<T>>),
}

struct Entry<T> {
    id: u64,
    priority: i32,
    kind: Kind<T>,
}

struct Chain<T> {
    name: &'static str,
    // Readers load the current chain without a lock; writers copy, change and swap it
    // under `write`, so a dispatch in flight keeps the chain it started with.
    entries: ArcSwap<Vec<Arc<Entry<T>>>>,
    write: Mutex<()>,
    next_id: AtomicU64,
}

impl<T> Chain<T> {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            entries: ArcSwap::from_pointee(Vec::new()),
            write: Mutex::new(()),
            next_id: AtomicU64::new(1),
        }
    }

    fn add(self: &Arc<Self>, priority: i32, kind: Kind<T>) -> Subscription
    where
        T: Send + Sync + 'static,
    {
        let _guard = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let mut next: Vec<Arc<Entry<T>>> = self.entries.load().iter().cloned().collect();
        // After every handler of the same or a lower priority: ties keep registration order.
        let at = next
            .iter()
            .position(|e| e.priority > priority)
            .unwrap_or(next.len());
        next.insert(at, Arc::new(Entry { id, priority, kind }));
        self.entries.store(Arc::new(next));
        let weak: Weak<Self> = Arc::downgrade(self);
        Subscription {
            id,
            remove: Arc::new(move |id| {
                if let Some(chain) = weak.upgrade() {
                    chain.remove(id);
                }
            }),
        }
    }

    fn remove(&self, id: u64) {
        let _guard = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.entries.load();
        if current.iter().any(|e| e.id == id) {
            let next: Vec<Arc<Entry<T>>> = current.iter().filter(|e| e.id != id).cloned().collect();
            self.entries.store(Arc::new(next));
        }
    }
}

/// The handle a registration returns. `unsubscribe` removes the handler from the next
/// dispatch on; calling it again does nothing. Dropping the handle does not unsubscribe.
#[derive(Clone)]
pub struct Subscription {
    id: u64,
    remove: Arc<dyn Fn(u64) + Send + Sync>,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .finish()
    }
}

impl Subscription {
    /// The handler's registration id (as reported in failures).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Removes the handler; idempotent.
    pub fn unsubscribe(&self) {
        (self.remove)(self.id);
    }
}

/// Shared by the points of one bus: the metrics sink and the async tracker.
#[derive(Clone)]
pub struct BusContext {
    /// Where the bus reports its own signals.
    pub metrics: Arc<dyn MetricsSink>,
    /// Outstanding async actions.
    pub tracker: Arc<Tracker>,
}

impl fmt::Debug for BusContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BusContext")
            .field("tracker", &self.tracker)
            .finish_non_exhaustive()
    }
}

impl Default for BusContext {
    fn default() -> Self {
        Self {
            metrics: Arc::new(NoopSink),
            tracker: Arc::new(Tracker::default()),
        }
    }
}

/// An action point: observers of a typed argument.
pub struct ActionPoint<T> {
    chain: Arc<Chain<T>>,
    ctx: BusContext,
}

impl<T> fmt::Debug for ActionPoint<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActionPoint")
            .field("name", &self.chain.name)
            .field("handlers", &self.chain.entries.load().len())
            .finish()
    }
}

impl<T: Clone + Send + Sync + 'static> ActionPoint<T> {
    /// A point named `name` (the label in metrics and logs).
    pub fn new(name: &'static str, ctx: BusContext) -> Self {
        Self {
            chain: Arc::new(Chain::new(name)),
            ctx,
        }
    }

    /// Whether any handler is registered (callers may skip building the argument).
    pub fn is_empty(&self) -> bool {
        self.chain.entries.load().is_empty()
    }

    /// Registers a handler that runs inside the dispatch, in priority order.
    pub fn on(
        &self,
        priority: i32,
        f: impl Fn(&T) -> Result<(), HookError> + Send + Sync + 'static,
    ) -> Subscription {
        self.chain.add(priority, Kind::Sync(Box::new(f)))
    }

    /// Registers a handler that is spawned on the runtime and never blocks the dispatch;
    /// its errors and panics are logged, never returned.
    pub fn on_async<F, Fut>(&self, priority: i32, f: F) -> Subscription
    where
        F: Fn(T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        self.chain.add(
            priority,
            Kind::Async(Box::new(move |v: T| -> BoxFuture { Box::pin(f(v)) })),
        )
    }

    /// Runs every handler in order; a failing or panicking handler does not stop the rest.
    /// Returns every sync handler's failure in one aggregate.
    pub fn dispatch(&self, arg: &T) -> Result<(), HookErrors> {
        let entries = self.chain.entries.load_full();
        let name = self.chain.name;
        let started = Instant::now();
        let mut failures = Vec::new();
        for e in entries.iter() {
            match &e.kind {
                Kind::Sync(f) => {
                    let kind = match catch_unwind(AssertUnwindSafe(|| f(arg))) {
                        Ok(Ok(())) => None,
                        Ok(Err(err)) => Some(FailureKind::Error(err.to_string())),
                        Err(p) => Some(FailureKind::Panic(crate::errors::panic_text(p.as_ref()))),
                    };
                    if let Some(kind) = kind {
                        let signal = if matches!(kind, FailureKind::Panic(_)) {
                            "hook.panic"
                        } else {
                            "hook.error"
                        };
                        self.ctx.metrics.counter(signal, name, 1);
                        failures.push(HandlerFailure {
                            point: name,
                            handler: e.id,
                            priority: e.priority,
                            kind,
                        });
                    }
                }
                Kind::Async(f) => self.spawn(e, f(arg.clone())),
                Kind::Filter(_) => {}
            }
        }
        self.ctx.metrics.counter("hook.dispatch", name, 1);
        self.ctx.metrics.histogram(
            "hook.duration_us",
            name,
            started.elapsed().as_secs_f64() * 1e6,
        );
        if failures.is_empty() {
            Ok(())
        } else {
            Err(HookErrors(failures))
        }
    }

    fn spawn(&self, e: &Entry<T>, fut: BoxFuture) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(
                point = self.chain.name,
                handler = e.id,
                "async hook skipped: no runtime"
            );
            return;
        };
        let tracker = self.ctx.tracker.clone();
        let metrics = self.ctx.metrics.clone();
        let (name, id) = (self.chain.name, e.id);
        tracker.start();
        runtime.spawn(async move {
            match AssertUnwindSafe(fut).catch_unwind().await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => {
                    metrics.counter("hook.error", name, 1);
                    tracing::warn!(point = name, handler = id, error = %err, "async hook failed");
                }
                Err(p) => {
                    metrics.counter("hook.panic", name, 1);
                    tracing::error!(point = name, handler = id, panic = %crate::errors::panic_text(p.as_ref()), "async hook panicked");
                }
            }
            tracker.done();
        });
    }
}

/// A filter point: a chain of handlers threading a typed value.
pub struct FilterPoint<T> {
    chain: Arc<Chain<T>>,
    ctx: BusContext,
}

impl<T> fmt::Debug for FilterPoint<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FilterPoint")
            .field("name", &self.chain.name)
            .field("handlers", &self.chain.entries.load().len())
            .finish()
    }
}

impl<T: Send + Sync + 'static> FilterPoint<T> {
    /// A point named `name`.
    pub fn new(name: &'static str, ctx: BusContext) -> Self {
        Self {
            chain: Arc::new(Chain::new(name)),
            ctx,
        }
    }

    /// Whether any handler is registered.
    pub fn is_empty(&self) -> bool {
        self.chain.entries.load().is_empty()
    }

    /// Registers a handler in priority order.
    pub fn on(
        &self,
        priority: i32,
        f: impl Fn(&T) -> Result<Flow<T>, HookError> + Send + Sync + 'static,
    ) -> Subscription {
        self.chain.add(priority, Kind::Filter(Box::new(f)))
    }

    /// Threads `value` through the chain. A handler may replace the value or stop the chain;
    /// an error or a panic stops it and the last accepted value is returned with the error.
    pub fn apply(&self, value: T) -> Filtered<T> {
        let entries = self.chain.entries.load_full();
        let name = self.chain.name;
        let started = Instant::now();
        let mut value = value;
        let mut short_circuited = false;
        let mut error = None;
        for e in entries.iter() {
            let Kind::Filter(f) = &e.kind else { continue };
            let outcome = catch_unwind(AssertUnwindSafe(|| f(&value)));
            let failure = match outcome {
                Ok(Ok(Flow::Keep)) => None,
                Ok(Ok(Flow::Replace(v))) => {
                    value = v;
                    None
                }
                Ok(Ok(Flow::Stop)) => {
                    short_circuited = true;
                    break;
                }
                Ok(Ok(Flow::StopWith(v))) => {
                    value = v;
                    short_circuited = true;
                    break;
                }
                Ok(Err(err)) => Some(FailureKind::Error(err.to_string())),
                Err(p) => Some(FailureKind::Panic(crate::errors::panic_text(p.as_ref()))),
            };
            if let Some(kind) = failure {
                let signal = if matches!(kind, FailureKind::Panic(_)) {
                    "hook.panic"
                } else {
                    "hook.error"
                };
                self.ctx.metrics.counter(signal, name, 1);
                error = Some(HandlerFailure {
                    point: name,
                    handler: e.id,
                    priority: e.priority,
                    kind,
                });
                break;
            }
        }
        if short_circuited {
            self.ctx.metrics.counter("hook.short_circuit", name, 1);
        }
        self.ctx.metrics.counter("hook.dispatch", name, 1);
        self.ctx.metrics.histogram(
            "hook.duration_us",
            name,
            started.elapsed().as_secs_f64() * 1e6,
        );
        Filtered {
            value,
            short_circuited,
            error,
        }
    }
}
