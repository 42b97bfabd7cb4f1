//! At most three sequential DynamoDB round trips per webhook, whatever the number of matched
//! modules: the reservation (with the settings when the cache is cold, and the look at the
//! cooldowns, beside it), the claims with the stored event, the finish. Read from the
//! router's own store report (`event_completed`), the numbers its metrics carry.

use std::sync::Arc;

use axum::http::StatusCode;

use crate::common::*;

#[tokio::test]
async fn round_trips_per_webhook_stay_at_three_for_1_5_and_20_matched_modules() {
    for n in [1usize, 5, 20] {
        let manifests: Vec<String> = (0..n)
            .map(|i| module(&format!("m{i}"), "      cooldown: 10m\n"))
            .collect();
        let hooks = Arc::new(switchyard::hooks::Hooks::default());
        let (seen, _sub) = collect_usage(&hooks);
        let app = TestApp::with(
            &manifests,
            Options {
                hooks: Some(hooks),
                ..Default::default()
            },
        )
        .await;

        // First delivery: the settings cache is cold.
        let (status, _) = app
            .github(
                "pull_request",
                &format!("warm-{n}"),
                &pr_payload("opened", 2),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        let cold = seen.lock().unwrap().pop().unwrap();
        println!("{n} matched modules, cold settings cache: {cold:?}");
        assert!(cold.round_trips <= 3, "{n} modules, cold: {cold:?}");

        let invokes_before = app.invokes.get();
        let (status, body) = app
            .github("pull_request", &format!("d-{n}"), &pr_payload("opened", 1))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(job_ids(&body).len(), n);
        assert_eq!(app.invokes.get() - invokes_before, n);
        let warm = seen.lock().unwrap().pop().unwrap();
        println!("{n} matched modules: {warm:?}");
        assert_eq!(warm.round_trips, 3, "{n} modules: {warm:?}");
        // Every call of a round trip is a single-item write or one batch: a job and a
        // cooldown per module, the reservation, the look, the stored event and the finish.
        assert_eq!(warm.calls, 2 * n + 4, "{n} modules: {warm:?}");
        assert!(
            !warm.operations.iter().any(|o| o.starts_with("Transact")),
            "{warm:?}"
        );
    }
}
