//! Our own failures: store unreachable, invokes failing.

use axum::http::StatusCode;
use switchyard::store::JobStatus;

use crate::common::*;

#[tokio::test]
async fn store_unreachable_answers_503_and_invokes_nothing() {
    let dead = format!("http://127.0.0.1:{}", closed_port());
    let app = TestApp::with(
        &[module("reviewer", "")],
        Options {
            dynamodb: Some(dead),
            ..Default::default()
        },
    )
    .await;
    let (status, body) = app
        .github("pull_request", "d-1", &pr_payload("opened", 1))
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "unavailable");
    assert!(
        !body.to_string().contains("127.0.0.1"),
        "no internals in the body: {body}"
    );
    assert_eq!(app.invokes.get(), 0);
}

#[tokio::test]
async fn an_invoke_failure_fails_its_job_and_a_redelivery_retries_only_that_module() {
    let manifests = [module("works", ""), module("breaks", "")];
    let broken = TestApp::with(
        &manifests,
        Options {
            overrides: vec![("breaks".into(), "no-such-function".into())],
            ..Default::default()
        },
    )
    .await;
    let payload = pr_payload("opened", 1);
    let (status, body) = broken.github("pull_request", "d-1", &payload).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "dispatch_incomplete");
    assert_eq!(body["detail"]["failed"][0]["module"], "breaks");
    let failed_id = body["detail"]["failed"][0]["job_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let works_id = body["detail"]["jobs"][0]["job_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let failed = broken.job(&failed_id).await;
    assert_eq!(failed.status, JobStatus::Failed);
    assert!(
        failed
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("no-such-function"),
        "{failed:?}"
    );
    assert_eq!(broken.invokes.get(), 2);

    // The function is fixed; the sender redelivers the same delivery.
    let fixed = TestApp::with(
        &manifests,
        Options {
            table: Some(broken.table.clone()),
            ..Default::default()
        },
    )
    .await;
    let (status, body) = fixed.github("pull_request", "d-1", &payload).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(
        fixed.invokes.get(),
        1,
        "only the failed module was invoked again"
    );
    let mut ids = job_ids(&body);
    ids.sort();
    let mut want = vec![failed_id.clone(), works_id];
    want.sort();
    assert_eq!(ids, want);
    let retried = fixed.job(&failed_id).await;
    assert_eq!(retried.status, JobStatus::Queued);
    assert_eq!(retried.attempts, 2);
    assert_eq!(retried.error, None);

    // Now complete: a third delivery is a duplicate.
    let (status, _) = fixed.github("pull_request", "d-1", &payload).await;
    assert_eq!(status, StatusCode::OK);
}
