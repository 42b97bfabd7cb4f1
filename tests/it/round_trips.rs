//! At most three DynamoDB round trips per webhook, whatever the number of matched modules.
//! A cold settings cache adds one BatchGetItem, sent concurrently with the reservation.

use axum::http::StatusCode;

use crate::common::*;

#[tokio::test]
async fn round_trips_per_webhook_stay_at_three_for_1_5_and_20_matched_modules() {
    for n in [1usize, 5, 20] {
        let manifests: Vec<String> = (0..n)
            .map(|i| module(&format!("m{i}"), "      cooldown: 10m\n"))
            .collect();
        let app = TestApp::new(&manifests).await;

        // First delivery: the settings cache is cold.
        let (status, _) = app
            .github(
                "pull_request",
                &format!("warm-{n}"),
                &pr_payload("opened", 2),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        let cold = app.ddb_calls.get();
        println!("{n} matched modules, cold settings cache: {cold} DynamoDB calls");
        assert!(cold <= 4, "{n} modules took {cold} calls with a cold cache");

        app.ddb_calls.reset();
        let invokes_before = app.invokes.get();
        let (status, body) = app
            .github("pull_request", &format!("d-{n}"), &pr_payload("opened", 1))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(job_ids(&body).len(), n);
        assert_eq!(app.invokes.get() - invokes_before, n);
        let calls = app.ddb_calls.get();
        println!("{n} matched modules: {calls} DynamoDB round trips");
        assert!(calls <= 3, "{n} modules took {calls} round trips");
    }
}
