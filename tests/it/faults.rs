//! Fault injection between the router and DynamoDB Local: a TCP proxy that passes, refuses
//! (the store stopped: connections reset), stalls (the store slow), or cuts the connection of
//! every `BatchWriteItem` before it reaches the store or after the store applied it (its
//! answer lost) on command, and drops the connections it holds when the mode changes, so
//! pooled connections see it too.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use switchyard::store::DynamoStore;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::common::*;

const PASS: u8 = 0;
const DOWN: u8 = 1;
const STALL: u8 = 2;
/// Passes everything but `BatchWriteItem`: a request naming it cuts its connection.
const NO_BATCH: u8 = 3;
/// Passes everything, but a `BatchWriteItem`'s answer is lost: the store applies it, and
/// its connection is cut when the answer comes.
const BATCH_ANSWER_LOST: u8 = 4;

struct FaultProxy {
    url: String,
    mode: Arc<AtomicU8>,
    changed: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let mode = Arc::new(AtomicU8::new(PASS));
        let (changed, _) = watch::channel(0u64);
        let (m, tx) = (mode.clone(), changed.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                let mode = m.load(Ordering::SeqCst);
                let mut cut = tx.subscribe();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    match mode {
                        DOWN => drop(inbound),
                        STALL => {
                            // Hold the connection, answer nothing, until the mode changes.
                            let _ = cut.changed().await;
                        }
                        NO_BATCH | BATCH_ANSWER_LOST => {
                            let Ok(out) = TcpStream::connect(upstream).await else {
                                return;
                            };
                            tokio::select! {
                                _ = pass_but_batches(inbound, out, mode == BATCH_ANSWER_LOST) => {}
                                _ = cut.changed() => {}
                            }
                        }
                        _ => {
                            let Ok(mut out) = TcpStream::connect(upstream).await else {
                                return;
                            };
                            tokio::select! {
                                _ = tokio::io::copy_bidirectional(&mut inbound, &mut out) => {}
                                _ = cut.changed() => {}
                            }
                        }
                    }
                });
            }
        });
        Self {
            url,
            mode,
            changed,
            task,
        }
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
        self.changed.send_modify(|n| *n += 1);
    }
}

/// Copies both ways, and cuts the connection (dropping both ends) at the first read from
/// the client that names `BatchWriteItem` in its target header (the store's client writes a
/// request's head in one write): before any of it reaches the store, or, with `applied`,
/// once it went through and the store's answer comes back, before any of that reaches the
/// client.
async fn pass_but_batches(inbound: TcpStream, out: TcpStream, applied: bool) {
    use std::sync::atomic::AtomicBool;
    let (from_client, to_client) = inbound.into_split();
    let (from_store, to_store) = out.into_split();
    let batch = AtomicBool::new(false);
    let up = pump(from_client, to_store, |chunk| {
        let named = (chunk.windows(15)).any(|w| w == b".BatchWriteItem");
        batch.fetch_or(named, Ordering::SeqCst);
        named && !applied
    });
    let down = pump(from_store, to_client, |_| batch.load(Ordering::SeqCst));
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}

/// Copies `from` to `to` chunk by chunk until either end closes or `cut` says a chunk is
/// not to pass.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    cut: impl Fn(&[u8]) -> bool,
) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if cut(&buf[..n]) || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// An app for `manifests` whose store is behind `proxy`.
async fn app_behind(proxy: &FaultProxy, manifests: &[String]) -> TestApp {
    app_behind_with(proxy, manifests, None).await
}

async fn app_behind_with(
    proxy: &FaultProxy,
    manifests: &[String],
    hooks: Option<Arc<switchyard::hooks::Hooks>>,
) -> TestApp {
    let table = unique_table();
    let direct = dynamo_client(&dynamodb_endpoint(), &Counter::default()).await;
    DynamoStore::create_table(&direct, &table).await.unwrap();
    TestApp::with(
        manifests,
        Options {
            dynamodb: Some(proxy.url.clone()),
            table: Some(table),
            hooks,
            ..Default::default()
        },
    )
    .await
}

#[tokio::test]
async fn the_store_stopping_mid_stream_answers_503_dispatches_nothing_and_loses_nothing() {
    let proxy = FaultProxy::start(dynamodb_endpoint().replace("http://", "")).await;
    // Every delivery that reaches dispatch ends with `event_completed`, a store failure
    // included (`error`): the metrics' held lines go out with it.
    let hooks = Arc::new(switchyard::hooks::Hooks::default());
    let outcomes: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let seen = outcomes.clone();
    hooks.event_completed.on(0, move |c| {
        seen.lock()
            .unwrap()
            .push(format!("{} {}", c.event_id, c.outcome));
        Ok(())
    });
    let app = app_behind_with(&proxy, &[module("reviewer", "")], Some(hooks)).await;
    for i in 0..5 {
        let (s, b) = app
            .github(
                "pull_request",
                &format!("before-{i}"),
                &pr_payload("opened", i),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    }
    assert_eq!(app.invokes.get(), 5);

    // The store goes away: every delivery answers 503 within the SDK's limits (3 s per
    // attempt, 10 s per operation) and nothing is invoked without a record.
    proxy.set(DOWN);
    for i in 0..3 {
        let started = Instant::now();
        let (s, b) = app
            .github(
                "pull_request",
                &format!("during-{i}"),
                &pr_payload("opened", 10 + i),
            )
            .await;
        assert_eq!(
            (s, b["code"].as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("unavailable")),
            "{b}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(11),
            "{:?}",
            started.elapsed()
        );
    }
    assert_eq!(app.invokes.get(), 5);
    let during: Vec<String> = (outcomes.lock().unwrap().iter())
        .filter(|o| o.starts_with("during-"))
        .cloned()
        .collect();
    assert_eq!(
        during,
        ["during-0 error", "during-1 error", "during-2 error"],
        "{:?}",
        outcomes.lock().unwrap()
    );

    // It comes back: what was accepted before is intact, the refused deliveries go through
    // when redelivered, each once.
    proxy.set(PASS);
    for i in 0..3 {
        let (s, b) = app
            .github(
                "pull_request",
                &format!("during-{i}"),
                &pr_payload("opened", 10 + i),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    }
    for i in 0..5 {
        let (s, b) = app
            .github(
                "pull_request",
                &format!("before-{i}"),
                &pr_payload("opened", i),
            )
            .await;
        assert_eq!(
            (s, b["duplicate"].as_bool()),
            (StatusCode::OK, Some(true)),
            "{b}"
        );
    }
    assert_eq!(app.items("EVENT#").await.len(), 8);
    assert_eq!(app.items("JOB#").await.len(), 8);
    assert_eq!(app.invokes.get(), 8);
}

#[tokio::test]
async fn a_stalled_store_times_out_and_no_request_hangs_past_the_limit() {
    let proxy = FaultProxy::start(dynamodb_endpoint().replace("http://", "")).await;
    let app = app_behind(&proxy, &[module("reviewer", "")]).await;
    proxy.set(STALL);
    let started = Instant::now();
    let answers = futures::future::join_all((0..5).map(|i| {
        let app = &app;
        async move {
            app.github(
                "pull_request",
                &format!("slow-{i}"),
                &pr_payload("opened", i),
            )
            .await
        }
    }))
    .await;
    let took = started.elapsed();
    for (s, b) in &answers {
        assert_eq!(
            (*s, b["code"].as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("unavailable")),
            "{b}"
        );
    }
    // Operation timeout 10 s (attempts of 3 s): nothing waits on the stalled store longer.
    assert!(
        took >= Duration::from_secs(3),
        "answered before any timeout: {took:?}"
    );
    assert!(took < Duration::from_secs(12), "a request hung: {took:?}");
    assert_eq!(app.invokes.get(), 0);

    // Once the store answers again, the same deliveries are accepted.
    proxy.set(PASS);
    let (s, b) = app
        .github("pull_request", "slow-0", &pr_payload("opened", 0))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
}

/// The delivery `id` answered 503 `dispatch_incomplete`, its event `failed` without a stored
/// event named and its job `failed`; redelivered through a store that works, it completes,
/// and its job leases once, with a context whose stored event loads.
async fn failed_then_resumed_whole(app: &TestApp, proxy: &FaultProxy, id: &str, number: u64) {
    use switchyard::store::{JobStatus, PayloadStore as _, WorkQueue as _};
    let body = pr_payload("opened", number);
    let (s, b) = app.github("pull_request", id, &body).await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("dispatch_incomplete")),
        "{b}"
    );
    let event = app.items("EVENT#").await;
    assert_eq!(event.len(), 1);
    assert_eq!(event[0]["status"].as_s().unwrap(), "failed", "{event:?}");
    assert!(!event[0].contains_key("payload_ref"), "{event:?}");
    assert!(!event[0].contains_key("lease_token"), "{event:?}");
    let jobs = app.items("JOB#").await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["status"].as_s().unwrap(), "failed", "{jobs:?}");

    proxy.set(PASS);
    let (s, b) = app.github("pull_request", id, &body).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    let event = app.items("EVENT#").await;
    assert_eq!(event[0]["status"].as_s().unwrap(), "completed", "{event:?}");
    assert_eq!(app.items("QUEUE#").await.len(), 1);
    let now = app.clock.now_time();
    let modules = ["builder".to_owned()];
    let leased = (app.store.lease(&modules, "w", now).await)
        .unwrap()
        .expect("the resumed job to lease");
    assert_eq!(leased.job.status, JobStatus::Running);
    let reference: switchyard::store::PayloadRef =
        serde_json::from_value(leased.context["payload_ref"].clone()).unwrap();
    let stored: serde_json::Value =
        serde_json::from_slice(&app.store.get_payload(&reference).await.unwrap()).unwrap();
    assert_eq!(stored["payload"]["number"], number);
    assert!(
        app.store
            .lease(&modules, "w2", now)
            .await
            .unwrap()
            .is_none()
    );
}

/// A delivery for one pull module writes its queue item, its stored event and its outcome
/// in one `BatchWriteItem`. When that call fails before reaching the store, the finish's own
/// conditional writes record the event and its job `failed`, and nothing is half
/// dispatched: a redelivery once the store is back resumes it whole.
#[tokio::test]
async fn a_pull_delivery_whose_batch_write_fails_is_recorded_failed_and_resumes_whole() {
    let proxy = FaultProxy::start(dynamodb_endpoint().replace("http://", "")).await;
    let app = app_behind(&proxy, &[pull_module("builder")]).await;
    proxy.set(NO_BATCH);
    failed_then_resumed_whole(&app, &proxy, "batch-1", 3).await;
    assert!(app.items("QUEUE#").await.len() == 1);
}

/// The same when the store applied the batch, outcome written ahead included, and only its
/// answer was lost: the item written ahead keeps the reservation's token, so the finish
/// still writes the failure over it (and names no stored event), and the queue item it left
/// leases nothing until the redelivery queues the job again.
#[tokio::test]
async fn a_pull_delivery_whose_batch_answer_is_lost_is_recorded_failed_and_resumes_whole() {
    let proxy = FaultProxy::start(dynamodb_endpoint().replace("http://", "")).await;
    let app = app_behind(&proxy, &[pull_module("builder")]).await;
    proxy.set(BATCH_ANSWER_LOST);
    failed_then_resumed_whole(&app, &proxy, "lost-1", 4).await;
}
