//! The module SDK against DynamoDB Local (and notify through `cargo lambda watch` for crash
//! notifications): exactly-once runs, cancel, panic, timeout, journal, large payloads.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use switchyard::clock::Clock as _;
use switchyard::dispatch::{ModuleContext, TriggerRef};
use switchyard::fanout::LambdaFanout;
use switchyard::hooks::Hooks;
use switchyard::hooks::emf::{Emf, MemoryWriter};
use switchyard::module::{CrashNotifier, Job, ModuleRuntime, RunOutcome};
use switchyard::store::{JobStatus, JobStore, PayloadStore};

use crate::common::*;

/// Records a queued job on `app`'s table (as the dispatcher would, without invoking anything)
/// and returns the context the module would receive.
async fn queued_context(app: &TestApp, delivery: &str) -> ModuleContext {
    use switchyard::store::{Claim, DispatchStore, JobRecord, ids};
    let source = switchyard::Source::new("github", switchyard::SourceKind::Github, &["x"]);
    let mut headers = http::HeaderMap::new();
    headers.insert("x-github-event", "pull_request".parse().unwrap());
    headers.insert("x-github-delivery", delivery.parse().unwrap());
    let now = app.clock.now();
    let event = switchyard::event::parse_unverified(
        &source,
        &headers,
        pr_payload("opened", 1).as_bytes(),
        now,
        &Default::default(),
    )
    .unwrap();
    let job_id = ids::job_id("github", delivery, "reviewer");
    let job = JobRecord {
        job_id: job_id.clone(),
        module: "reviewer".into(),
        function: "notify".into(),
        event_source: "github".into(),
        event_id: delivery.into(),
        entity: event.entity.clone(),
        trigger: "webhook".into(),
        status: JobStatus::Queued,
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
        max_attempts: None,
        expires_at: now.unix_timestamp() + 3600,
    };
    let outcome = app
        .store
        .claim(
            &[Claim {
                job,
                cooldown_until: None,
                pull: None,
            }],
            now,
        )
        .await
        .unwrap();
    assert_eq!(outcome.claimed, [0]);
    ModuleContext {
        job_id,
        module: "reviewer".into(),
        function: "notify".into(),
        trigger: TriggerRef {
            kind: "webhook".into(),
            index: 0,
        },
        entity: event.entity.clone(),
        config: serde_json::json!({"depth": 2}),
        event: Arc::new(event),
        payload_ref: None,
        report: false,
    }
}

fn runtime(app: &TestApp) -> ModuleRuntime {
    ModuleRuntime::new(Arc::new(app.store.clone()), app.clock.clone())
}

#[tokio::test]
async fn two_invokes_of_the_same_job_run_the_handler_once_and_report_job_finished() {
    let app = TestApp::new(&[module("reviewer", "")]).await;
    let ctx = queued_context(&app, "r-1").await;
    let captured = MemoryWriter::default();
    let hooks = Arc::new(Hooks::default());
    Arc::new(Emf::to_writer("Switchyard", Box::new(captured.clone()))).register(&hooks);
    let rt = runtime(&app).with_hooks(hooks);
    let runs = Arc::new(Mutex::new(0));
    let r = runs.clone();
    let handler = move |job: Job| {
        let r = r.clone();
        async move {
            *r.lock().unwrap() += 1;
            job.log("step 1: fetched files").await;
            job.log("step 2: commented").await;
            Ok(serde_json::json!({"depth": job.config()["depth"]}))
        }
    };
    let (a, b) = tokio::join!(
        rt.run_job(ctx.clone(), None, &handler),
        rt.run_job(ctx.clone(), None, &handler)
    );
    let mut outcomes = [a.unwrap(), b.unwrap()];
    outcomes.sort_by_key(|o| format!("{o:?}"));
    assert_eq!(outcomes, [RunOutcome::Skipped, RunOutcome::Succeeded]);
    assert_eq!(*runs.lock().unwrap(), 1);
    let job = app.job(&ctx.job_id).await;
    assert_eq!(job.status, JobStatus::Succeeded);
    assert_eq!(job.output, Some(serde_json::json!({"depth": 2})));
    assert_eq!(job.journal, ["step 1: fetched files", "step 2: commented"]);
    let lines = captured.lines();
    let finished: Vec<_> = lines
        .iter()
        .filter(|l| l.get("JobsFinished").is_some())
        .collect();
    assert_eq!(finished.len(), 1, "{lines:?}");
}

#[tokio::test]
async fn a_cancelled_job_does_not_run_and_a_running_one_sees_the_request() {
    let app = TestApp::new(&[module("reviewer", "")]).await;
    let ctx = queued_context(&app, "c-1").await;
    assert_eq!(
        app.store
            .request_cancel(&ctx.job_id, app.clock.now())
            .await
            .unwrap(),
        Some(JobStatus::Cancelled)
    );
    let ran = Arc::new(Mutex::new(false));
    let r = ran.clone();
    let outcome = runtime(&app)
        .run_job(ctx.clone(), None, &move |_job: Job| {
            let r = r.clone();
            async move {
                *r.lock().unwrap() = true;
                Ok(Value::Null)
            }
        })
        .await
        .unwrap();
    assert_eq!(outcome, RunOutcome::Cancelled);
    assert!(!*ran.lock().unwrap());
    assert_eq!(app.job(&ctx.job_id).await.status, JobStatus::Cancelled);

    // A running job: the handler polls the flag and stops.
    let ctx = queued_context(&app, "c-2").await;
    let store = app.store.clone();
    let now = app.clock.now();
    let outcome = runtime(&app)
        .run_job(ctx.clone(), None, &move |job: Job| {
            let store = store.clone();
            async move {
                store.request_cancel(job.id(), now).await.unwrap();
                if job.cancel_requested().await {
                    anyhow::bail!("stopped: cancel requested");
                }
                Ok(Value::Null)
            }
        })
        .await
        .unwrap();
    assert_eq!(outcome, RunOutcome::Cancelled);
    assert_eq!(app.job(&ctx.job_id).await.status, JobStatus::Cancelled);
}

#[tokio::test]
async fn a_handler_timeout_fails_the_job_before_the_deadline() {
    let app = TestApp::new(&[module("reviewer", "")]).await;
    let ctx = queued_context(&app, "t-1").await;
    let rt = runtime(&app).with_margin(Duration::from_millis(200));
    let started = Instant::now();
    let outcome = rt
        .run_job(
            ctx.clone(),
            Some(Duration::from_millis(700)),
            &|_job: Job| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok(Value::Null)
            },
        )
        .await
        .unwrap();
    assert_eq!(outcome, RunOutcome::Failed);
    assert!(started.elapsed() < Duration::from_secs(5));
    let job = app.job(&ctx.job_id).await;
    assert!(
        job.error.unwrap_or_default().starts_with("timed out"),
        "{:?}",
        job.status
    );
}

#[tokio::test]
async fn an_output_the_store_cannot_hold_fails_the_job_instead_of_leaving_it_running() {
    let app = TestApp::new(&[module("reviewer", "")]).await;
    let rt = runtime(&app);
    let mut deep = serde_json::json!(1);
    for _ in 0..40 {
        deep = serde_json::json!([deep]);
    }
    let cases = [
        ("o-deep", deep, "nests deeper"),
        (
            "o-huge",
            serde_json::json!({"x": 1e300}),
            "outside the range",
        ),
        (
            "o-tiny",
            serde_json::json!({"x": 1e-200}),
            "outside the range",
        ),
    ];
    for (delivery, output, why) in cases {
        let ctx = queued_context(&app, delivery).await;
        let out = output.clone();
        let outcome = rt
            .run_job(ctx.clone(), None, &move |_job: Job| {
                let out = out.clone();
                async move { Ok(out) }
            })
            .await
            .unwrap();
        assert_eq!(outcome, RunOutcome::Failed, "{delivery}");
        let job = app.job(&ctx.job_id).await;
        assert_eq!(job.status, JobStatus::Failed, "{delivery}");
        let error = job.error.unwrap_or_default();
        assert!(
            error.contains("cannot be stored") && error.contains(why),
            "{delivery}: {error}"
        );
    }
}

/// Crash notifications go to the real notify function through the watch, which records its
/// job in the end-to-end table: this test works on that table.
#[tokio::test]
async fn a_handler_panic_fails_the_job_and_notify_reports_the_crash() {
    let table = std::env::var("SWITCHYARD_TEST_E2E_TABLE").expect("set by make test");
    let app = TestApp::with(
        &[module("reviewer", "")],
        Options {
            table: Some(table),
            ..Default::default()
        },
    )
    .await;
    let ctx = queued_context(&app, &format!("p-{}", uuid::Uuid::new_v4())).await;
    let fanout = Arc::new(LambdaFanout::new(
        lambda_client(&lambda_endpoint(), &Counter::default()).await,
    ));
    let store = Arc::new(app.store.clone());
    let rt = runtime(&app).with_crash_notifier(CrashNotifier::new(
        store,
        fanout,
        "notify",
        Duration::from_secs(3600),
    ));
    let outcome = rt
        .run_job(ctx.clone(), None, &|job: Job| async move {
            let files: Vec<u32> = Vec::new();
            let _ = files[job.config()["depth"].as_u64().unwrap_or(5) as usize];
            Ok(Value::Null)
        })
        .await
        .unwrap();
    assert_eq!(outcome, RunOutcome::Crashed);
    let job = app.job(&ctx.job_id).await;
    assert_eq!(job.status, JobStatus::Failed);
    assert!(
        job.error
            .as_deref()
            .unwrap_or_default()
            .starts_with("panicked: index out of bounds"),
        "{job:?}"
    );

    let crash_id = switchyard::store::ids::job_id("crash", &ctx.job_id, "notify");
    let notified = finished_job(&app.store, &crash_id).await;
    assert_eq!(notified.status, JobStatus::Succeeded, "{notified:?}");
    let message = notified
        .output
        .as_ref()
        .and_then(|o| o["message"].as_str())
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.starts_with(&format!("module reviewer crashed on job {}", ctx.job_id)),
        "{message}"
    );
}

#[tokio::test]
async fn a_3_mb_payload_travels_by_reference_and_reaches_the_module_intact() {
    let table = std::env::var("SWITCHYARD_TEST_E2E_TABLE").expect("set by make test");
    let app = TestApp::with(
        &[module("reviewer", "")],
        Options {
            table: Some(table),
            ..Default::default()
        },
    )
    .await;
    // Random hex compresses about 2:1, so the 3 MB body spans several stored parts.
    let mut v: Value = serde_json::from_str(&pr_payload("opened", 1)).unwrap();
    let blob: String = (0..3 * 1024 * 1024 / 32)
        .map(|_| uuid::Uuid::new_v4().simple().to_string())
        .collect();
    v["pull_request"]["body"] = Value::from(blob);
    let body = v.to_string();
    assert!(body.len() > 3 * 1024 * 1024);
    let delivery = format!("big-{}", uuid::Uuid::new_v4());
    let (status, resp) = app.github("pull_request", &delivery, &body).await;
    assert_eq!(status.as_u16(), 202, "{resp}");
    let job_id = job_ids(&resp)[0].clone();
    // The module through the watch (notify, on this table) loaded it and ran.
    let job = finished_job(&app.store, &job_id).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    // The store splits and checks it: the same 3 MB, stored and loaded directly.
    let json = serde_json::to_vec(&v).unwrap();
    let key = format!("test#{delivery}");
    let reference = app
        .store
        .put_payload(&key, &json, app.clock.now().unix_timestamp() + 600)
        .await
        .unwrap();
    assert!(reference.parts >= 2, "{reference:?}");
    assert_eq!(reference.digest, switchyard::event::body_digest(&json));
    let loaded = app.store.get_payload(&reference).await.unwrap();
    assert_eq!(loaded, json);
    // A missing part is detected, not silently truncated.
    let mut short = reference.clone();
    short.parts += 1;
    assert!(app.store.get_payload(&short).await.is_err());
}
