//! End to end through `cargo lambda watch`: a signed request to the router's function URL
//! leads to the notify function running and its job reaching `succeeded`.

use std::time::Duration;

use switchyard::store::{DynamoStore, JobStatus};

use crate::common::*;

#[tokio::test]
async fn a_signed_request_to_the_router_function_url_runs_notify_to_succeeded() {
    let table = std::env::var("SWITCHYARD_TEST_E2E_TABLE")
        .expect("SWITCHYARD_TEST_E2E_TABLE (set by make test)");
    let secret = std::env::var("SWITCHYARD_TEST_E2E_SECRET")
        .expect("SWITCHYARD_TEST_E2E_SECRET (set by make test)");
    let url = format!("{}/lambda-url/router/webhooks/github", lambda_endpoint());
    let delivery = uuid::Uuid::new_v4().to_string();
    let body = pr_payload("opened", 4242);
    let req = github_request(
        "pull_request",
        &delivery,
        &body,
        &secret,
        time::OffsetDateTime::now_utc(),
    );
    let (parts, _) = req.into_parts();
    let client = switchyard::tls::http_client()
        .timeout(Duration::from_secs(180))
        .build()
        .unwrap();
    let mut post = client.post(&url).body(body.clone());
    for (k, v) in parts.headers.iter() {
        post = post.header(k.as_str(), v.to_str().unwrap());
    }
    let resp = post.send().await.unwrap();
    let status = resp.status();
    let answer: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(status.as_u16(), 202, "{answer}");
    let notify = answer["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["module"] == "notify")
        .unwrap_or_else(|| panic!("notify matched: {answer}"));
    let job_id = notify["job_id"].as_str().unwrap().to_owned();

    let store = DynamoStore::new(
        dynamo_client(&dynamodb_endpoint(), &Counter::default()).await,
        wire(&dynamodb_endpoint()).await,
        table,
    );
    let job = finished_job(&store, &job_id).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    let message = job
        .output
        .as_ref()
        .and_then(|o| o["message"].as_str())
        .unwrap_or_default();
    assert!(
        message.starts_with("acme/widgets#4242 pull_request opened by alice"),
        "{message}"
    );
    assert!(job.started_at.is_some() && job.finished_at.is_some());
}
