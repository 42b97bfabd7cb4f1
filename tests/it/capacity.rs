//! What a delivery costs DynamoDB, as DynamoDB Local bills it (`ReturnConsumedCapacity:
//! INDEXES` on every call, read back from the router's own `event_completed` report, the
//! numbers its `StoreWriteUnits`/`StoreReadUnits` metrics carry). Units are deterministic,
//! so the budget is a test: the 35 KB pull request matching two modules with cooldowns costs
//! at most 14 write units, 1 read unit and 3 sequential round trips. The other cases are
//! reported (docs/performance.md) and held to looser bounds.

use std::sync::{Arc, Mutex};

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
    let usages: Arc<Mutex<Vec<Usage>>> = Arc::default();
    let u = usages.clone();
    let subscription = hooks.event_completed.on(0, move |c| {
        u.lock().unwrap().push(c.store.clone());
        Ok(())
    });
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
    let pull = "name: builder\ndescription: pulled\npull: {}\ntriggers:\n  - webhook:\n      sources: [github]\n      event: pull_request\n      actions: [opened]\n".to_owned();
    let m = metered(&[pull]).await;
    let delivery = m.deliveries(1).await;
    report("d: 35 KB PR, 1 pull module (enqueue)", &delivery);
    let now = m.app.clock.now_time();
    let (leased, lease) = measure(m.app.store.lease(&["builder".to_owned()], "w", now)).await;
    let leased = leased.unwrap().expect("a job to lease");
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

/// The context the router sent for `job` (rebuilt from the stored event, as a replay would).
async fn context_of(
    app: &TestApp,
    job: &switchyard::store::JobRecord,
) -> switchyard::ModuleContext {
    use switchyard::store::EventStore as _;
    let event = app
        .store
        .load_event(&switchyard::store::keys::event(
            &job.event_source,
            &job.event_id,
        ))
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
    }
}
