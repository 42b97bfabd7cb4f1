//! What a delivery costs DynamoDB, as DynamoDB Local bills it (`ReturnConsumedCapacity:
//! INDEXES` on every call, read back from the router's own `event_completed` report, the
//! numbers its `StoreWriteUnits`/`StoreReadUnits` metrics carry). Units are deterministic,
//! so the budget is a test: the 35 KB pull request matching two modules with cooldowns costs
//! at most 14 write units, 1 read unit and 3 sequential round trips. The other cases are
//! reported (docs/performance.md) and held to looser bounds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;
use switchyard::hooks::Hooks;
use switchyard::store::usage::{Usage, measure};

use crate::common::*;

struct Metered {
    app: TestApp,
    usages: Arc<Mutex<Vec<Usage>>>,
    _subscription: switchyard::hooks::Subscription,
}

async fn metered(manifests: &[String]) -> Metered {
    let hooks = Arc::new(Hooks::default());
    let (usages, subscription) = collect_usage(&hooks);
    let app = TestApp::with(
        manifests,
        Options {
            hooks: Some(hooks),
            ..Default::default()
        },
    )
    .await;
    Metered {
        app,
        usages,
        _subscription: subscription,
    }
}

impl Metered {
    /// Sends `n` distinct opened pull requests (after one that warms the settings cache) and
    /// returns the most any of them cost, field by field.
    async fn deliveries(&self, n: u64) -> Usage {
        let (s, b) = self
            .app
            .github("pull_request", "warm-up", &pr_payload("opened", 100_000))
            .await;
        assert_eq!(s.as_u16(), 202, "{b}");
        self.usages.lock().unwrap().clear();
        for i in 0..n {
            let (s, b) = self
                .app
                .github(
                    "pull_request",
                    &format!("cap-{i}"),
                    &pr_payload("opened", 1 + i),
                )
                .await;
            assert_eq!(s.as_u16(), 202, "{b}");
        }
        let all = self.usages.lock().unwrap().clone();
        assert_eq!(all.len(), n as usize);
        worst(&all)
    }
}

fn worst(all: &[Usage]) -> Usage {
    let mut w = Usage::default();
    for u in all {
        w.calls = w.calls.max(u.calls);
        w.write_units = w.write_units.max(u.write_units);
        w.index_write_units = w.index_write_units.max(u.index_write_units);
        w.read_units = w.read_units.max(u.read_units);
        if u.round_trips >= w.round_trips {
            w.round_trips = u.round_trips;
            w.operations = u.operations.clone();
        }
    }
    w
}

fn builtin() -> Vec<String> {
    [
        include_str!("../../functions/modules/notify/module.yaml"),
        include_str!("../../functions/modules/pr-review/module.yaml"),
        include_str!("../../functions/modules/issue-triage/module.yaml"),
    ]
    .map(str::to_owned)
    .to_vec()
}

fn with_cooldown(name: &str) -> String {
    module(name, "      cooldown: 5m\n")
}

fn report(case: &str, u: &Usage) {
    println!(
        "capacity {case}: {} write units ({} to indexes), {} read units, {} calls, {} round trips: {:?}",
        u.write_units, u.index_write_units, u.read_units, u.calls, u.round_trips, u.operations
    );
    if let Ok(path) = std::env::var("SWITCHYARD_CAPACITY_REPORT") {
        use std::io::Write as _;
        let line = serde_json::json!({"case": case, "usage": u});
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        writeln!(f, "{line}").unwrap();
    }
}

#[tokio::test]
async fn a_35_kb_pull_request_matching_two_modules_with_cooldowns_stays_within_its_budget() {
    let m = metered(&builtin()).await;
    let u = m.deliveries(5).await;
    report("a: 35 KB PR, builtin registry (2 modules, cooldowns)", &u);
    assert!(u.write_units <= 14.0, "{u:?}");
    assert!(u.read_units <= 1.0, "{u:?}");
    assert!(u.round_trips <= 3, "{u:?}");
}

#[tokio::test]
async fn one_and_five_modules_cost_what_their_jobs_add() {
    let one = metered(&[with_cooldown("solo")]).await.deliveries(3).await;
    report("b: 35 KB PR, 1 module (cooldown)", &one);
    let five: Vec<String> = (0..5).map(|i| with_cooldown(&format!("m{i}"))).collect();
    let five = metered(&five).await.deliveries(3).await;
    report("c: 35 KB PR, 5 modules (cooldowns)", &five);
    assert!(
        one.round_trips <= 3 && five.round_trips <= 3,
        "{one:?} {five:?}"
    );
    assert!(one.write_units < five.write_units, "{one:?} {five:?}");
}

#[tokio::test]
async fn a_pull_module_and_a_module_job_report_their_units() {
    use switchyard::store::{JobStatus, WorkQueue as _};
    let pull = pull_module("builder");
    let m = metered(&[pull]).await;
    let delivery = m.deliveries(1).await;
    report("d: 35 KB PR, 1 pull module (enqueue)", &delivery);
    // Reserve, the claim (which records the queue key), then the queue item, the stored
    // event and the outcome written ahead in one BatchWriteItem: three calls.
    assert!(delivery.calls <= 3, "{delivery:?}");
    assert!(delivery.round_trips <= 3, "{delivery:?}");
    let now = m.app.clock.now_time();
    let (leased, lease) = measure(m.app.store.lease(&["builder".to_owned()], "w", now)).await;
    let leased = leased.unwrap().expect("a job to lease");
    // The stored event the queued context names was written with it, whole.
    {
        use switchyard::store::PayloadStore as _;
        let reference: switchyard::store::PayloadRef =
            serde_json::from_value(leased.context["payload_ref"].clone()).unwrap();
        let json = m.app.store.get_payload(&reference).await.unwrap();
        let stored: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(stored["payload"]["action"], "opened");
    }
    report("d: lease", &lease);
    let (hb, beat) = measure(
        m.app
            .store
            .heartbeat(&leased.job.job_id, &leased.lease_token, now),
    )
    .await;
    hb.unwrap();
    report("d: heartbeat", &beat);
    let (done, finish) = measure(m.app.store.finish_leased(
        &leased.job.job_id,
        &leased.lease_token,
        JobStatus::Succeeded,
        None,
        Some(&serde_json::json!({"ok": true})),
        now,
    ))
    .await;
    done.unwrap();
    report("d: finish", &finish);
    assert!(lease.calls >= 1 && finish.calls >= 1);

    // The module runtime's units per job: claim, one journal line, finish.
    let m = metered(&[module("reviewer", "")]).await;
    let (s, b) = m
        .app
        .github("pull_request", "job-1", &pr_payload("opened", 5))
        .await;
    assert_eq!(s.as_u16(), 202, "{b}");
    let job_id = job_ids(&b)[0].clone();
    let job = m.app.job(&job_id).await;
    let ctx = context_of(&m.app, &job).await;
    let rt =
        switchyard::module::ModuleRuntime::new(Arc::new(m.app.store.clone()), m.app.clock.clone());
    let handler = |job: switchyard::module::Job| async move {
        job.log("one line").await;
        Ok(Value::Null)
    };
    let (outcome, runtime) = measure(rt.run_job(ctx, None, &handler)).await;
    assert_eq!(outcome.unwrap(), switchyard::module::RunOutcome::Succeeded);
    report(
        "module runtime per job (start, 1 journal line, finish)",
        &runtime,
    );
    assert!(runtime.write_units >= 3.0, "{runtime:?}");
}

/// A delivery for one pull module writes its outcome ahead, in the call that writes its
/// queue item and its stored event, when its reservation created the event item and the
/// lease leaves the margin. The item it puts is the one the reservation and the finish
/// leave, attribute for attribute: the same delivery at the same time through a lease too
/// short for the margin (which takes the finish's own call) leaves the same item.
#[tokio::test]
async fn an_outcome_written_ahead_leaves_the_event_item_the_finish_would() {
    let pull = pull_module("builder");
    let app = |lease: &str| {
        let hooks = Arc::new(Hooks::default());
        let (usages, subscription) = collect_usage(&hooks);
        let vars = vec![("SWITCHYARD_LEASE_SECONDS".to_owned(), lease.to_owned())];
        let pull = pull.clone();
        async move {
            let app = TestApp::with(
                &[pull],
                Options {
                    hooks: Some(hooks),
                    vars,
                    ..Default::default()
                },
            )
            .await;
            (app, usages, subscription)
        }
    };
    let (ahead, ahead_usage, _a) = app("120").await;
    let (after, after_usage, _b) = app("25").await;
    after.clock.set(ahead.clock.now_time());
    let body = pr_payload("opened", 7);
    for (app, usage, calls) in [(&ahead, &ahead_usage, 3), (&after, &after_usage, 4)] {
        // The settings cache warmed first (a cold one adds a read beside the reservation).
        let (s, b) = (app.github("pull_request", "warm", &pr_payload("opened", 1))).await;
        assert_eq!(s.as_u16(), 202, "{b}");
        let (s, b) = app.github("pull_request", "ahead-1", &body).await;
        assert_eq!(s.as_u16(), 202, "{b}");
        let used = usage.lock().unwrap().last().cloned().unwrap();
        assert_eq!(used.calls, calls, "{used:?}");
    }
    let item = |items: Vec<HashMap<String, AttributeValue>>| {
        let found = items
            .into_iter()
            .find(|i| i["event_id"].as_s().unwrap() == "ahead-1");
        found.expect("the event item")
    };
    let mut one = item(ahead.items("EVENT#").await);
    let other = item(after.items("EVENT#").await);
    // The token stays on the item written ahead (its lease released), so that a finish can
    // still write over it; the finish removes it.
    assert!(one.remove("lease_token").is_some(), "{one:?}");
    assert_eq!(one, other);
    assert_eq!(
        one.get("status"),
        Some(&aws_sdk_dynamodb::types::AttributeValue::S(
            "completed".into()
        ))
    );
    assert!(
        one.contains_key("payload_ref") && one.contains_key("gsi1pk"),
        "{one:?}"
    );
    assert_eq!(
        one.get("lease_expires_at"),
        Some(&AttributeValue::N("0".into()))
    );
    // The job the outcome names is queued, and its context's stored event loads.
    let job_id = job_ids_of(&one);
    let job = ahead.job(&job_id).await;
    assert_eq!(job.status, switchyard::store::JobStatus::Queued);
}

fn job_ids_of(
    item: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
) -> String {
    let jobs = item["jobs"].as_l().unwrap();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    jobs[0].as_m().unwrap()["job_id"].as_s().unwrap().clone()
}

/// The context the router sent for `job` (rebuilt from the stored event, as a replay would).
async fn context_of(
    app: &TestApp,
    job: &switchyard::store::JobRecord,
) -> switchyard::ModuleContext {
    use switchyard::store::EventStore as _;
    let event = app
        .store
        .load_event(&job.event_source, &job.event_id)
        .await
        .unwrap()
        .expect("stored event");
    switchyard::ModuleContext {
        job_id: job.job_id.clone(),
        module: job.module.clone(),
        function: job.function.clone(),
        trigger: switchyard::dispatch::TriggerRef {
            kind: "webhook".into(),
            index: 0,
        },
        entity: job.entity.clone(),
        config: Value::Null,
        event: Arc::new(event),
        payload_ref: None,
        report: false,
    }
}

#[tokio::test]
async fn after_200_deliveries_no_index_partition_holds_more_than_an_eighth_of_its_index() {
    let m = metered(&builtin()).await;
    for i in 0..200 {
        let (s, b) = m
            .app
            .github(
                "pull_request",
                &format!("spread-{i}"),
                &pr_payload("opened", 10_000 + i),
            )
            .await;
        assert_eq!(s.as_u16(), 202, "{b}");
    }
    let items = m.app.items("").await;
    for (index, attr) in [("events", "gsi1pk"), ("jobs", "gsi2pk")] {
        let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
        for item in &items {
            if let Some(aws_sdk_dynamodb::types::AttributeValue::S(pk)) = item.get(attr) {
                *counts.entry(pk.clone()).or_default() += 1;
            }
        }
        let total: usize = counts.values().sum();
        let (top, most) = counts.iter().max_by_key(|(_, c)| **c).unwrap();
        let share = *most as f64 / total as f64;
        println!(
            "capacity partitions {index}: {total} entries over {} keys, largest {top} with {most} ({:.1} %)",
            counts.len(),
            share * 100.0
        );
        // Events: 200 deliveries (and the warm-up-free run); jobs: two per delivery.
        assert!(total >= 200, "{index}: {total}");
        assert!(share <= 1.0 / 8.0, "{index}: {top} holds {most} of {total}");
    }
}

#[tokio::test]
async fn a_lease_finds_the_job_behind_more_than_1_mb_of_leased_queue_items() {
    use aws_sdk_dynamodb::types::AttributeValue;
    use futures::StreamExt as _;
    use switchyard::store::WorkQueue as _;
    // One shard, so that every item is in the one partition a page reads 1 MB of.
    let pull = pull_module("builder");
    let m = metered(&[pull]).await;
    let store = m.app.store.clone().with_shards(1);
    let now = m.app.clock.now_time();
    let later = (now.unix_timestamp_nanos() / 1_000_000) as i64 + 3_600_000;
    let padding = "x".repeat(1000);
    // 1,200 items of about 1.1 KB, leased (visible only in an hour), older than the job.
    let puts = (0..1200).map(|i| {
        let store = store.clone();
        let padding = padding.clone();
        async move {
            let item = std::collections::HashMap::from([
                (
                    "pk".to_owned(),
                    AttributeValue::S("QUEUE#builder#00".into()),
                ),
                (
                    "sk".to_owned(),
                    AttributeValue::S(format!("2000-01-01T00:00:00Z#{i:05}")),
                ),
                (
                    "job_id".to_owned(),
                    AttributeValue::S(format!("leased-{i}")),
                ),
                (
                    "visible_at".to_owned(),
                    AttributeValue::N(later.to_string()),
                ),
                ("attempts".to_owned(), AttributeValue::N("1".into())),
                ("max_attempts".to_owned(), AttributeValue::N("3".into())),
                ("lease_seconds".to_owned(), AttributeValue::N("300".into())),
                ("padding".to_owned(), AttributeValue::S(padding)),
                (
                    "expires_at".to_owned(),
                    AttributeValue::N((now.unix_timestamp() + 86_400).to_string()),
                ),
            ]);
            store.put_raw(item).await.unwrap();
        }
    });
    futures::stream::iter(puts)
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    // The job, claimed and queued as the dispatcher does.
    let job = pull_job("behind", "builder", now);
    use switchyard::store::DispatchStore as _;
    let claimed = store
        .claim(
            &[switchyard::store::Claim {
                job: job.clone(),
                cooldown_until: None,
                pull: Some(switchyard::manifest::PullTarget {
                    lease: std::time::Duration::from_secs(300),
                    max_attempts: 3,
                }),
            }],
            now,
        )
        .await
        .unwrap();
    assert_eq!(claimed.claimed, [0]);
    store
        .enqueue(
            &job,
            b"{}",
            switchyard::manifest::PullTarget {
                lease: std::time::Duration::from_secs(300),
                max_attempts: 3,
            },
            now,
        )
        .await
        .unwrap();
    let (leased, usage) = measure(store.lease(&["builder".to_owned()], "w", now)).await;
    let leased = leased.unwrap().expect("the job behind the leased items");
    assert_eq!(leased.job.job_id, "behind");
    report("d: lease behind 1.2 MB of leased items (one shard)", &usage);
    let queries = usage.operations.iter().filter(|o| **o == "Query").count();
    assert!(queries >= 12, "paged past 1,200 leased items: {usage:?}");
}

#[tokio::test]
async fn a_queued_context_is_text_while_its_item_fits_one_write_unit_and_compressed_beyond() {
    use switchyard::store::{DispatchStore as _, WorkQueue as _};
    let pull = pull_module("packer");
    let m = metered(&[pull]).await;
    let store = m.app.store.clone();
    let now = m.app.clock.now_time();
    let target = switchyard::manifest::PullTarget {
        lease: std::time::Duration::from_secs(300),
        max_attempts: 3,
    };
    let small = serde_json::json!({"job_id": "small", "event": {"payload": null}});
    // Over 1 KB of text that compresses well: stored compressed.
    let large = serde_json::json!({"job_id": "large", "notes": "abc ".repeat(400)});
    for (id, context) in [("small", &small), ("large", &large)] {
        let job = pull_job(id, "packer", now);
        let claim = switchyard::store::Claim {
            job: job.clone(),
            cooldown_until: None,
            pull: Some(target),
        };
        assert_eq!(store.claim(&[claim], now).await.unwrap().claimed, [0]);
        let (queued, usage) =
            measure(store.enqueue(&job, &serde_json::to_vec(context).unwrap(), target, now)).await;
        queued.unwrap();
        if id == "small" {
            assert_eq!(usage.write_units, 1.0, "{usage:?}");
        }
    }
    let items = m.app.items("QUEUE#packer").await;
    let kind = |job: &str| {
        let item = (items.iter())
            .find(|i| i.get("job_id") == Some(&AttributeValue::S(job.into())))
            .unwrap_or_else(|| panic!("queue item of {job}: {items:?}"));
        match &item["context"] {
            AttributeValue::S(text) => {
                assert_eq!(serde_json::from_str::<Value>(text).unwrap(), small);
                "text"
            }
            AttributeValue::B(blob) => {
                assert!(
                    blob.as_ref().len() < 400,
                    "compressed: {}",
                    blob.as_ref().len()
                );
                "compressed"
            }
            other => panic!("context {other:?}"),
        }
    };
    assert_eq!(kind("small"), "text");
    assert_eq!(kind("large"), "compressed");
    let mut leased = Vec::new();
    for _ in 0..2 {
        let job = store.lease(&["packer".to_owned()], "w", now).await.unwrap();
        let job = job.expect("a queued job");
        leased.push((job.job.job_id.clone(), job.context));
    }
    leased.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        leased,
        [("large".to_owned(), large), ("small".to_owned(), small)]
    );
}

/// A queued pull job `job_id` of `module`, created at `now`, as the dispatcher claims it.
fn pull_job(job_id: &str, module: &str, now: time::OffsetDateTime) -> switchyard::store::JobRecord {
    switchyard::store::JobRecord {
        job_id: job_id.into(),
        module: module.into(),
        function: "pull".into(),
        event_source: "github".into(),
        event_id: job_id.into(),
        entity: "e".into(),
        trigger: "webhook".into(),
        status: switchyard::store::JobStatus::Queued,
        attempts: 1,
        created_at: switchyard::store::rfc3339(now),
        started_at: None,
        finished_at: None,
        error: None,
        output: None,
        cancel_requested: false,
        journal: Vec::new(),
        lease_holder: None,
        lease_expires_at: None,
        max_attempts: Some(3),
        expires_at: now.unix_timestamp() + 86_400,
    }
}
