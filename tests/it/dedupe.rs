//! De-duplication of deliveries.

use axum::http::StatusCode;
use futures::future::join_all;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn redelivery_of_a_completed_event_dispatches_nothing() {
    let app = TestApp::new(&[module("reviewer", "")]).await;
    let payload = pr_payload("opened", 1);
    let (status, first) = app.github("pull_request", "d-1", &payload).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let (status, again) = app.github("pull_request", "d-1", &payload).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, json!({"duplicate": true, "event_id": "d-1"}));
    assert_eq!(app.invokes.get(), 1);
    assert_eq!(app.items("JOB#").await.len(), 1);
}

#[tokio::test]
async fn twenty_concurrent_deliveries_of_one_event_create_one_job_per_matched_module() {
    let app = TestApp::new(&[
        module("a", ""),
        module("b", ""),
        module("c", "      cooldown: 5m\n"),
    ])
    .await;
    let payload = pr_payload("opened", 1);
    let answers = join_all((0..20).map(|_| app.github("pull_request", "d-same", &payload))).await;
    let accepted = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::ACCEPTED)
        .count();
    assert_eq!(accepted, 1, "{answers:?}");
    for (status, body) in &answers {
        assert!(
            *status == StatusCode::ACCEPTED
                || *status == StatusCode::OK && body["duplicate"] == true
                || *status == StatusCode::CONFLICT && body["code"] == "in_progress",
            "{status} {body}"
        );
    }
    assert_eq!(app.items("JOB#").await.len(), 3);
    assert_eq!(app.invokes.get(), 3);
}

#[tokio::test]
async fn the_same_id_with_a_different_body_answers_409_and_dispatches_nothing() {
    let app = TestApp::new(&[module("reviewer", "")]).await;
    let (status, _) = app
        .github("pull_request", "d-1", &pr_payload("opened", 1))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, body) = app
        .github("pull_request", "d-1", &pr_payload("opened", 2))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["code"], "conflict");
    assert_eq!(app.invokes.get(), 1);
    assert_eq!(app.items("JOB#").await.len(), 1);
}
