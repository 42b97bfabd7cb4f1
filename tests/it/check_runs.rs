//! Job status on the forge (`report: check`): the router creates a queued check run when it
//! dispatches, the module runtime moves it to in progress and completed with the job's
//! conclusion and summary, Forgejo gets commit statuses, and a forge that refuses never
//! fails the job. DynamoDB Local and a stand-in for GitHub's REST API.

use std::sync::Arc;
use std::time::Duration;

use switchyard::clock::Clock as _;
use switchyard::dispatch::{ModuleContext, TriggerRef};
use switchyard::forge::{ForgeClient, ForgeKind, ForgeReports, Forges, JobPhase};
use switchyard::module::{ModuleRuntime, RunOutcome};
use switchyard::store::{JobStatus, JobStore};

use crate::common::*;
use crate::forge_standin;

const HEAD: &str = "8f4e2b9c1d7a6e5f3b2c1d0e9f8a7b6c5d4e3f2a";

fn checker() -> String {
    "name: checker\ndescription: reports on the PR\nreport: check\npull: { lease: 5m, max_attempts: 3 }\ntriggers:\n  - webhook:\n      event: pull_request\n".to_owned()
}

fn vars(port: u16, token: &str) -> Vec<(String, String)> {
    vec![
        ("GITHUB_API_URL".into(), format!("http://127.0.0.1:{port}")),
        ("GITHUB_TOKEN".into(), token.into()),
        (
            "SWITCHYARD_DASHBOARD_URL".into(),
            "https://sy.example/dashboard".into(),
        ),
    ]
}

/// The context the job's module would run with (the dispatcher queued it).
fn context(app: &TestApp, delivery: &str, number: u64, job_id: &str) -> ModuleContext {
    let source = switchyard::Source::new("github", switchyard::SourceKind::Github, &["x"]);
    let mut headers = http::HeaderMap::new();
    headers.insert("x-github-event", "pull_request".parse().unwrap());
    headers.insert("x-github-delivery", delivery.parse().unwrap());
    let event = switchyard::event::parse_unverified(
        &source,
        &headers,
        pr_payload("opened", number).as_bytes(),
        app.clock.now(),
        &Default::default(),
    )
    .unwrap();
    ModuleContext {
        job_id: job_id.to_owned(),
        module: "checker".into(),
        function: "pull".into(),
        trigger: TriggerRef {
            kind: "webhook".into(),
            index: 0,
        },
        entity: event.entity.clone(),
        config: serde_json::Value::Null,
        event: Arc::new(event),
        payload_ref: None,
        report: true,
    }
}

fn runtime(app: &TestApp, port: u16, token: &str) -> ModuleRuntime {
    let vars = vars(port, token).into_iter().collect();
    ModuleRuntime::new(Arc::new(app.store.clone()), app.clock.clone()).with_reports(
        ForgeReports::new(
            Forges::from_vars(&vars),
            Some("https://sy.example/dashboard".into()),
            Duration::from_secs(5),
        ),
    )
}

async fn dispatch(app: &TestApp, delivery: &str, number: u64) -> String {
    let (status, resp) = app
        .github("pull_request", delivery, &pr_payload("opened", number))
        .await;
    assert!(status.is_success(), "{resp}");
    resp["jobs"]
        .as_array()
        .and_then(|jobs| jobs.iter().find(|j| j["module"] == "checker"))
        .and_then(|j| j["job_id"].as_str())
        .expect("checker dispatched")
        .to_owned()
}

#[tokio::test]
async fn a_reporting_job_goes_queued_then_in_progress_then_completed_on_its_check_run() {
    let port = closed_port();
    let forge = forge_standin::start(port).await;
    let app = TestApp::with(
        &[
            checker(),
            "name: quiet\ndescription: no report\npull: {}\ntriggers:\n  - webhook: { event: pull_request }\n".to_owned(),
        ],
        Options {
            vars: vars(port, "standin-token"),
            reports: true,
            ..Default::default()
        },
    )
    .await;
    let job_id = dispatch(&app, "check-51", 51).await;
    {
        let f = forge.lock().unwrap();
        assert_eq!(
            f.check_runs.len(),
            1,
            "one check run, for the reporting module only"
        );
        let run = &f.check_runs[0];
        assert_eq!(
            (run.name.as_str(), run.head_sha.as_str()),
            ("checker", HEAD)
        );
        assert_eq!(run.external_id, job_id);
        assert_eq!(run.history, ["queued"]);
    }

    let ctx = context(&app, "check-51", 51, &job_id);
    let outcome = runtime(&app, port, "standin-token")
        .run_job(ctx, None, &|_job| async {
            Ok(serde_json::json!({"verdict": "fine"}))
        })
        .await
        .unwrap();
    assert_eq!(outcome, RunOutcome::Succeeded);
    let f = forge.lock().unwrap();
    assert_eq!(
        f.check_runs.len(),
        1,
        "updated, not created again: {:?}",
        f.check_runs
    );
    let run = &f.check_runs[0];
    assert_eq!(run.history, ["queued", "in_progress", "completed/success"]);
    assert!(run.summary.contains("fine"), "{}", run.summary);
    let link = run.details_url.as_deref().unwrap_or_default();
    assert!(
        link.starts_with("https://sy.example/dashboard#/jobs/"),
        "{link}"
    );
}

#[tokio::test]
async fn a_failed_job_concludes_failure_with_its_error_and_a_refusing_forge_never_fails_a_job() {
    let port = closed_port();
    let forge = forge_standin::start(port).await;
    let app = TestApp::with(
        &[checker()],
        Options {
            vars: vars(port, "standin-token"),
            reports: true,
            ..Default::default()
        },
    )
    .await;
    let job_id = dispatch(&app, "check-52", 52).await;
    let ctx = context(&app, "check-52", 52, &job_id);
    let outcome = runtime(&app, port, "standin-token")
        .run_job(ctx, None, &|_job| async {
            Err(anyhow::anyhow!("boom: lint found 3 problems"))
        })
        .await
        .unwrap();
    assert_eq!(outcome, RunOutcome::Failed);
    {
        let f = forge.lock().unwrap();
        assert_eq!(f.check_runs[0].history.last().unwrap(), "completed/failure");
        assert!(f.check_runs[0].summary.contains("lint found 3 problems"));
    }

    // The forge refuses the token: the job still runs and succeeds, and its journal says
    // why its status is not on the pull request. (The router's queued mark was refused too.)
    let refusing = TestApp::with(
        &[checker()],
        Options {
            vars: vars(port, "revoked"),
            reports: true,
            ..Default::default()
        },
    )
    .await;
    let job_id = dispatch(&refusing, "check-53", 53).await;
    let ctx = context(&refusing, "check-53", 53, &job_id);
    let outcome = runtime(&refusing, port, "revoked")
        .run_job(ctx, None, &|_job| async { Ok(serde_json::json!({})) })
        .await
        .unwrap();
    assert_eq!(outcome, RunOutcome::Succeeded);
    let job = refusing.store.get_job(&job_id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Succeeded);
    let journal: Vec<&str> = job.journal.iter().map(String::as_str).collect();
    assert!(
        journal
            .iter()
            .filter(|l| l.contains("report:") && l.contains("401"))
            .count()
            >= 2,
        "{journal:?}"
    );
    assert!(
        !journal.iter().any(|l| l.contains("revoked")),
        "no token in the journal: {journal:?}"
    );
}

#[tokio::test]
async fn forgejo_gets_commit_statuses_with_the_module_as_context() {
    let port = closed_port();
    let forge = forge_standin::start(port).await;
    let client = ForgeClient::new(
        ForgeKind::Forgejo,
        format!("http://127.0.0.1:{port}"),
        "standin-token".to_owned().into(),
    );
    for phase in [
        JobPhase::Queued,
        JobPhase::InProgress,
        JobPhase::Completed {
            conclusion: "success",
            summary: "all good".into(),
        },
    ] {
        client
            .report_job(
                "acme/widgets",
                HEAD,
                "checker",
                "job-1",
                &phase,
                Some("https://sy.example/dashboard#/jobs/job-1"),
            )
            .await
            .unwrap();
    }
    let f = forge.lock().unwrap();
    let states: Vec<(&str, &str)> = f
        .statuses
        .iter()
        .map(|s| (s.1.as_str(), s.2.as_str()))
        .collect();
    assert_eq!(
        states,
        [
            ("switchyard/checker", "pending"),
            ("switchyard/checker", "pending"),
            ("switchyard/checker", "success")
        ]
    );
    assert_eq!(f.statuses[2].3, "all good");
}

/// One call to the API in-process, as a worker makes it.
async fn api_call(
    router: &axum::Router,
    path: &str,
    token: &str,
    body: serde_json::Value,
) -> (http::StatusCode, serde_json::Value) {
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;
    let req = http::Request::builder()
        .method("POST")
        .uri(path)
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .body(axum::body::Body::from(body.to_string()))
        .unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or_default())
}

#[tokio::test]
async fn a_pull_job_moves_its_check_run_as_a_worker_leases_and_finishes_it() {
    let port = closed_port();
    let forge = forge_standin::start(port).await;
    let app = TestApp::with(
        &[checker()],
        Options {
            vars: vars(port, "standin-token"),
            reports: true,
            ..Default::default()
        },
    )
    .await;
    let (work, entry) = switchyard::auth::new_token("buildbox", "work").unwrap();
    let api = switchyard::api::app(switchyard::api::ApiState::new(
        app.dispatcher.clone(),
        Arc::new(app.store.clone()),
        switchyard::auth::Tokens::parse(&entry).unwrap(),
    ));
    let job_id = dispatch(&app, "check-54", 54).await;
    let (s, leased) = api_call(
        &api,
        "/workers/lease",
        &work,
        serde_json::json!({"modules": ["checker"], "worker": "w1"}),
    )
    .await;
    assert_eq!(s, http::StatusCode::OK, "{leased}");
    assert_eq!(leased["job"]["job_id"], job_id.as_str());
    assert_eq!(
        forge.lock().unwrap().check_runs[0].history,
        ["queued", "in_progress"]
    );
    let (s, done) = api_call(
        &api,
        &format!("/jobs/{job_id}/finish"),
        &work,
        serde_json::json!({"lease_token": leased["lease_token"], "status": "cancelled", "error": "stopped by the operator"}),
    )
    .await;
    assert_eq!(s, http::StatusCode::OK, "{done}");
    let f = forge.lock().unwrap();
    assert_eq!(f.check_runs.len(), 1);
    assert_eq!(
        f.check_runs[0].history,
        ["queued", "in_progress", "completed/cancelled"]
    );
    assert!(f.check_runs[0].summary.contains("stopped by the operator"));
}
