//! Pull workers and internal events against DynamoDB Local: leases raced by workers, expiry
//! and fencing, cancel through heartbeats, `POST /events` de-duplication, and the reference
//! worker (`switchyard worker`) running real commands over the API served on loopback.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::{Value, json};
use switchyard::auth::{Tokens, new_token};
use switchyard::store::{JobStatus, JobStore};

use crate::common::*;

const BUILDER: &str = "name: builder\ndescription: builds on a build machine\npull: { lease: 1m, max_attempts: 2 }\ntriggers:\n  - webhook: { sources: [internal.ci], event: build }\n";
const DEPLOYER: &str = "name: deployer\ndescription: deploys from behind a firewall\npull: {}\ntriggers:\n  - webhook: { sources: [internal.ci], event: deploy, actions: [started] }\n";

struct Pull {
    app: TestApp,
    router: axum::Router,
    work: String,
    emit: String,
    invoke: String,
}

async fn pull() -> Pull {
    let app = TestApp::with(
        &[
            BUILDER.to_owned(),
            DEPLOYER.to_owned(),
            module("reviewer", ""),
        ],
        Options::default(),
    )
    .await;
    let (work, e1) = new_token("buildbox", "work").unwrap();
    let (emit, e2) = new_token("ci", "emit").unwrap();
    let (invoke, e3) = new_token("ops", "invoke+read").unwrap();
    let state = switchyard::api::ApiState::new(
        app.dispatcher.clone(),
        std::sync::Arc::new(app.store.clone()),
        Tokens::parse(&format!("{e1},{e2},{e3}")).unwrap(),
    );
    Pull {
        router: switchyard::api::app(state),
        app,
        work,
        emit,
        invoke,
    }
}

impl Pull {
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        use http_body_util::BodyExt as _;
        use tower::ServiceExt as _;
        let req = axum::http::Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {token}"))
            .body(axum::body::Body::from(body.to_string()))
            .unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        crate::openapi::check(method, path, status.as_u16(), &body);
        (status, body)
    }

    async fn emit(&self, id: &str, event_type: &str) -> (StatusCode, Value) {
        self.call(
            "POST",
            "/events",
            &self.emit,
            json!({"id": id, "source": "ci", "type": event_type, "entity": format!("ci/{id}"), "payload": {"n": id}}),
        )
        .await
    }

    async fn lease(&self, worker: &str) -> (StatusCode, Value) {
        self.call(
            "POST",
            "/workers/lease",
            &self.work,
            json!({"modules": ["builder"], "worker": worker}),
        )
        .await
    }

    async fn heartbeat(&self, job: &str, token: &Value) -> (StatusCode, Value) {
        self.call(
            "POST",
            &format!("/jobs/{job}/heartbeat"),
            &self.work,
            json!({"lease_token": token}),
        )
        .await
    }

    async fn finish(&self, job: &str, token: &Value, status: &str) -> (StatusCode, Value) {
        self.call(
            "POST",
            &format!("/jobs/{job}/finish"),
            &self.work,
            json!({"lease_token": token, "status": status, "output": {"by": "test"}}),
        )
        .await
    }
}

#[tokio::test]
async fn internal_events_dispatch_once_per_id_and_only_to_matching_modules() {
    let p = pull().await;
    let (s, b) = p.emit("build-1", "build").await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    let jobs: Vec<&str> = b["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["module"].as_str().unwrap())
        .collect();
    assert_eq!(jobs, ["builder"], "{b}");
    let job_id = b["jobs"][0]["job_id"].as_str().unwrap().to_owned();
    let job = p.app.store.get_job(&job_id).await.unwrap().unwrap();
    assert_eq!(
        (job.status, job.function.as_str(), job.max_attempts),
        (JobStatus::Queued, "pull", Some(2))
    );
    assert_eq!(job.event_source, "internal.ci");

    // The same id again: a duplicate, nothing new.
    let before = p.app.invokes.get();
    let (s, b) = p.emit("build-1", "build").await;
    assert_eq!(
        (s, b["duplicate"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{b}"
    );
    // The same id with another body: refused.
    let (s, b) = p
        .call(
            "POST",
            "/events",
            &p.emit,
            json!({"id": "build-1", "source": "ci", "type": "build", "payload": {"n": "other"}}),
        )
        .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict")),
        "{b}"
    );
    // A type nobody listens for: accepted, no jobs; an action filter applies.
    let (s, b) = p.emit("lint-1", "lint").await;
    assert_eq!(
        (s, b["jobs"].as_array().map(Vec::len)),
        (StatusCode::ACCEPTED, Some(0)),
        "{b}"
    );
    let (s, b) = p
        .call(
            "POST",
            "/events",
            &p.emit,
            json!({"id": "d-1", "source": "ci", "type": "deploy", "action": "finished"}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert_eq!(b["jobs"].as_array().map(Vec::len), Some(0), "{b}");
    assert_eq!(b["skipped"][0]["reason"], "action", "{b}");
    // Nothing was invoked as a function: pull modules only queue.
    assert_eq!(p.app.invokes.get(), before);

    // Bad input and the wrong scope.
    for (body, why) in [
        (
            json!({"id": "x", "source": "github", "type": "push"}),
            "reserved source",
        ),
        (
            json!({"id": "x", "source": "CI", "type": "push"}),
            "upper-case source",
        ),
        (
            json!({"id": "", "source": "ci", "type": "push"}),
            "empty id",
        ),
        (json!({"id": "x", "source": "ci"}), "no type"),
        (
            json!({"id": "x", "source": "ci", "type": "push", "payload": [1]}),
            "payload not an object",
        ),
        (
            json!({"id": "x", "source": "ci", "type": "push", "extra": 1}),
            "unknown field",
        ),
    ] {
        let (s, b) = p.call("POST", "/events", &p.emit, body).await;
        assert_eq!(
            (s, b["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("bad_request")),
            "{why}: {b}"
        );
    }
    let (s, _) = p
        .call(
            "POST",
            "/events",
            &p.work,
            json!({"id": "x", "source": "ci", "type": "build"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn two_workers_racing_run_each_job_exactly_once() {
    let p = pull().await;
    let mut expected = BTreeSet::new();
    for i in 0..12 {
        let (s, b) = p.emit(&format!("race-{i}"), "build").await;
        assert_eq!(s, StatusCode::ACCEPTED, "{b}");
        expected.insert(b["jobs"][0]["job_id"].as_str().unwrap().to_owned());
    }
    let worker = |name: &'static str| {
        let p = &p;
        async move {
            let mut got = Vec::new();
            loop {
                let (s, b) = p.lease(name).await;
                if s == StatusCode::NO_CONTENT {
                    return got;
                }
                assert_eq!(s, StatusCode::OK, "{b}");
                let id = b["job"]["job_id"].as_str().unwrap().to_owned();
                assert_eq!(b["job"]["lease_holder"], format!("buildbox/{name}"));
                assert_eq!(b["context"]["job_id"], id.as_str());
                assert_eq!(b["context"]["event"]["source"], "internal.ci");
                let (s, f) = p.finish(&id, &b["lease_token"], "succeeded").await;
                assert_eq!(s, StatusCode::OK, "{f}");
                got.push(id);
            }
        }
    };
    let (a, b) = tokio::join!(worker("a"), worker("b"));
    let all: Vec<&String> = a.iter().chain(b.iter()).collect();
    let distinct: BTreeSet<String> = all.iter().map(|s| (*s).clone()).collect();
    assert_eq!(all.len(), 12, "a ran {}, b ran {}", a.len(), b.len());
    assert_eq!(distinct, expected);
    for id in &expected {
        let job = p.app.store.get_job(id).await.unwrap().unwrap();
        assert_eq!(
            (job.status, job.attempts),
            (JobStatus::Succeeded, 1),
            "{id}"
        );
    }
}

#[tokio::test]
async fn an_expired_lease_goes_to_the_next_worker_and_fences_the_first() {
    let p = pull().await;
    let (_, b) = p.emit("slow-1", "build").await;
    let id = b["jobs"][0]["job_id"].as_str().unwrap().to_owned();

    let (s, first) = p.lease("a").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(first["lease_seconds"], 60);
    // Nothing else to lease while the lease holds.
    assert_eq!(p.lease("b").await.0, StatusCode::NO_CONTENT);
    // A heartbeat extends it.
    let (s, hb) = p.heartbeat(&id, &first["lease_token"]).await;
    assert_eq!(
        (s, hb["cancel_requested"].as_bool()),
        (StatusCode::OK, Some(false)),
        "{hb}"
    );

    // Worker a goes silent; past the lease, b gets the job with its attempts raised.
    p.app.clock.advance(Duration::from_secs(61));
    let (s, second) = p.lease("b").await;
    assert_eq!(s, StatusCode::OK, "{second}");
    assert_eq!(second["job"]["job_id"], id.as_str());
    assert_eq!(second["job"]["attempts"], 2);
    assert_eq!(second["job"]["lease_holder"], "buildbox/b");
    assert_ne!(second["lease_token"], first["lease_token"]);

    // a's late heartbeat and finish are refused and change nothing.
    let (s, b) = p.heartbeat(&id, &first["lease_token"]).await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("lease_lost"))
    );
    let (s, b) = p.finish(&id, &first["lease_token"], "failed").await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("lease_lost"))
    );
    let job = p.app.store.get_job(&id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Running);

    // b's finish lands; a second finish with the same token is refused.
    let (s, _) = p.finish(&id, &second["lease_token"], "succeeded").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        p.finish(&id, &second["lease_token"], "failed").await.0,
        StatusCode::CONFLICT
    );
    let job = p.app.store.get_job(&id).await.unwrap().unwrap();
    assert_eq!(
        (job.status, job.output),
        (JobStatus::Succeeded, Some(json!({"by": "test"})))
    );

    // A job whose every lease (max_attempts 2) expires fails instead of a third lease.
    let (_, b) = p.emit("stuck-1", "build").await;
    let stuck = b["jobs"][0]["job_id"].as_str().unwrap().to_owned();
    for attempt in 1..=2 {
        let (s, l) = p.lease("a").await;
        assert_eq!(
            (s, l["job"]["attempts"].as_u64()),
            (StatusCode::OK, Some(attempt)),
            "{l}"
        );
        p.app.clock.advance(Duration::from_secs(61));
    }
    assert_eq!(p.lease("a").await.0, StatusCode::NO_CONTENT);
    let job = p.app.store.get_job(&stuck).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    assert!(
        job.error
            .as_deref()
            .unwrap_or_default()
            .contains("lease expired 2"),
        "{:?}",
        job.error
    );
}

#[tokio::test]
async fn cancel_reaches_the_worker_through_its_heartbeat() {
    let p = pull().await;
    let (_, b) = p.emit("cancel-1", "build").await;
    let id = b["jobs"][0]["job_id"].as_str().unwrap().to_owned();
    let (_, leased) = p.lease("a").await;
    let (s, c) = p
        .call(
            "POST",
            &format!("/jobs/{id}/cancel"),
            &p.invoke,
            Value::Null,
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{c}");
    let (s, hb) = p.heartbeat(&id, &leased["lease_token"]).await;
    assert_eq!(
        (s, hb["cancel_requested"].as_bool()),
        (StatusCode::OK, Some(true))
    );
    assert_eq!(
        p.finish(&id, &leased["lease_token"], "cancelled").await.0,
        StatusCode::OK
    );
    let job = p.app.store.get_job(&id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Cancelled);

    // A queued job cancelled before any lease is never handed out.
    let (_, b) = p.emit("cancel-2", "build").await;
    let queued = b["jobs"][0]["job_id"].as_str().unwrap().to_owned();
    let (s, _) = p
        .call(
            "POST",
            &format!("/jobs/{queued}/cancel"),
            &p.invoke,
            Value::Null,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(p.lease("a").await.0, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn lease_requests_are_checked() {
    let p = pull().await;
    for (body, status, code) in [
        (
            json!({"modules": ["reviewer"]}),
            StatusCode::CONFLICT,
            "not_pull",
        ),
        (
            json!({"modules": ["nope"]}),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            json!({"modules": []}),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            json!({"modules": ["builder"], "wait_seconds": 21}),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            json!({"modules": "builder"}),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
    ] {
        let (s, b) = p
            .call("POST", "/workers/lease", &p.work, body.clone())
            .await;
        assert_eq!((s, b["code"].as_str()), (status, Some(code)), "{body}: {b}");
    }
    assert_eq!(
        p.call(
            "POST",
            "/workers/lease",
            &p.emit,
            json!({"modules": ["builder"]})
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    // A long poll waits, then answers 204.
    let started = Instant::now();
    let (s, _) = p
        .call(
            "POST",
            "/workers/lease",
            &p.work,
            json!({"modules": ["builder"], "wait_seconds": 1}),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    let (s, b) = p
        .call(
            "POST",
            "/jobs/nope/finish",
            &p.work,
            json!({"lease_token": "x", "status": "done"}),
        )
        .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_request"))
    );
}

/// The command the reference worker runs in these tests: records its environment and stdin,
/// appends its job id to `runs.log`, prints `loud` bytes, exits with the payload's `exit`.
const SCRIPT: &str = r#"
import json, os, sys
ctx = json.load(sys.stdin)
out = sys.argv[1]
env = {k: v for k, v in os.environ.items() if k.startswith(("SWITCHYARD_", "GITHUB_"))}
with open(os.path.join(out, ctx["job_id"] + ".json"), "w") as f:
    json.dump({"env": env, "ctx": ctx}, f)
with open(os.path.join(out, "runs.log"), "a") as f:
    f.write(ctx["job_id"] + "\n")
payload = ctx["event"]["payload"]
sys.stdout.write("x" * payload.get("loud", 0) + "\nthe end\n")
sys.stdout.flush()
if payload.get("sleep"):
    import time
    time.sleep(payload["sleep"])
sys.exit(payload.get("exit", 0))
"#;

fn spawn_worker(
    url: &str,
    token: &str,
    name: &str,
    dir: &std::path::Path,
    extra: &[&str],
) -> tokio::process::Child {
    let bin = std::env::var("SWITCHYARD_TEST_CLI").expect("set by make test");
    tokio::process::Command::new(bin)
        .args([
            "worker", "--module", "builder", "--wait", "1", "--name", name,
        ])
        .args(extra)
        .args(["--", "python3", "-c", SCRIPT])
        .arg(dir)
        .env("SWITCHYARD_API_URL", url)
        .env("SWITCHYARD_API_TOKEN", token)
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

async fn stop_worker(mut child: tokio::process::Child) {
    let pid = child.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "worker exited {status:?}");
}

async fn until_final(p: &Pull, id: &str, within: Duration) -> switchyard::store::JobRecord {
    let started = Instant::now();
    loop {
        let job = p.app.store.get_job(id).await.unwrap().unwrap();
        if job.status.is_final() {
            return job;
        }
        assert!(
            started.elapsed() < within,
            "job {id} still {:?}",
            job.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_reference_worker_runs_each_job_once_with_the_event_and_reports_the_outcome() {
    let p = pull().await;
    let served = crate::cli::serve(p.router.clone()).await;
    let dir = std::env::temp_dir().join(format!("switchyard-worker-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();

    let mut ids = Vec::new();
    for (id, payload) in [
        ("ok-1", json!({"exit": 0})),
        ("fails-1", json!({"exit": 3})),
        ("loud-1", json!({"loud": 2_000_000})),
        ("ok-2", json!({})),
        ("ok-3", json!({})),
        ("ok-4", json!({})),
    ] {
        let (s, b) = p
            .call("POST", "/events", &p.emit, json!({"id": id, "source": "ci", "type": "build", "entity": "ci/main", "payload": payload}))
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{b}");
        ids.push((id, b["jobs"][0]["job_id"].as_str().unwrap().to_owned()));
    }
    // Two workers long-polling the same module.
    let w1 = spawn_worker(&served.url, &p.work, "w1", &dir, &[]);
    let w2 = spawn_worker(&served.url, &p.work, "w2", &dir, &[]);
    let mut jobs = std::collections::BTreeMap::new();
    for (name, id) in &ids {
        jobs.insert(*name, until_final(&p, id, Duration::from_secs(60)).await);
    }
    stop_worker(w1).await;
    stop_worker(w2).await;

    // Each job ran exactly once.
    let runs = std::fs::read_to_string(dir.join("runs.log")).unwrap();
    let mut ran: Vec<&str> = runs.lines().collect();
    ran.sort_unstable();
    let mut expected: Vec<&str> = ids.iter().map(|(_, id)| id.as_str()).collect();
    expected.sort_unstable();
    assert_eq!(ran, expected);

    // Exit codes map to statuses; the output tail is bounded.
    assert_eq!(jobs["ok-1"].status, JobStatus::Succeeded);
    assert_eq!(jobs["fails-1"].status, JobStatus::Failed);
    assert!(
        jobs["fails-1"]
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("status 3"),
        "{:?}",
        jobs["fails-1"].error
    );
    let loud = &jobs["loud-1"];
    assert_eq!(loud.status, JobStatus::Succeeded);
    let output = loud.output.clone().unwrap();
    assert_eq!(output["exit_code"], 0);
    assert!(
        output["output_bytes"].as_u64().unwrap() > 2_000_000,
        "{}",
        output["output_bytes"]
    );
    let tail = output["output_tail"].as_str().unwrap();
    assert!(
        tail.len() <= 4096 && tail.ends_with("the end\n"),
        "{} bytes",
        tail.len()
    );
    assert!(
        loud.lease_holder
            .as_deref()
            .is_some_and(|h| h == "buildbox/w1" || h == "buildbox/w2")
    );

    // The command saw the event in its environment and the context on stdin.
    let (_, ok_id) = &ids[0];
    let seen: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{ok_id}.json"))).unwrap())
            .unwrap();
    let env = &seen["env"];
    assert_eq!(env["SWITCHYARD_EVENT_TYPE"], "build");
    assert_eq!(env["GITHUB_EVENT_NAME"], "build");
    assert_eq!(env["SWITCHYARD_SOURCE"], "internal.ci");
    assert_eq!(env["SWITCHYARD_ENTITY"], "ci/main");
    assert_eq!(env["SWITCHYARD_JOB_ID"], ok_id.as_str());
    assert_eq!(env["GITHUB_ACTOR"], "ci");
    assert!(env.get("SWITCHYARD_ACTION").is_none(), "{env}");
    // The worker's token stays with the worker (its output tail is readable by `read`).
    assert!(env.get("SWITCHYARD_API_TOKEN").is_none(), "{env}");
    assert!(env.get("SWITCHYARD_API_URL").is_some(), "{env}");
    assert_eq!(seen["ctx"]["job_id"], ok_id.as_str());
    assert_eq!(seen["ctx"]["event"]["payload"]["exit"], 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_cancel_stops_the_command_within_one_heartbeat() {
    let p = pull().await;
    let served = crate::cli::serve(p.router.clone()).await;
    let dir = std::env::temp_dir().join(format!("switchyard-worker-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let (_, b) = p
        .call(
            "POST",
            "/events",
            &p.emit,
            json!({"id": "long-1", "source": "ci", "type": "build", "payload": {"sleep": 120}}),
        )
        .await;
    let id = b["jobs"][0]["job_id"].as_str().unwrap().to_owned();
    let worker = spawn_worker(
        &served.url,
        &p.work,
        "w1",
        &dir,
        &["--heartbeat", "1", "--grace", "2"],
    );
    // Wait until the command runs.
    let started = Instant::now();
    while !dir.join("runs.log").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the command never started"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let asked = Instant::now();
    let (s, _) = p
        .call(
            "POST",
            &format!("/jobs/{id}/cancel"),
            &p.invoke,
            Value::Null,
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let job = until_final(&p, &id, Duration::from_secs(10)).await;
    let took = asked.elapsed();
    assert_eq!(job.status, JobStatus::Cancelled, "{:?}", job.error);
    // One heartbeat (1 s) plus the command's exit on SIGTERM.
    assert!(took < Duration::from_secs(4), "cancel took {took:?}");
    stop_worker(worker).await;
    let _ = std::fs::remove_dir_all(&dir);
}
