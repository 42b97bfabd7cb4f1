//! Concurrency against DynamoDB Local: many deliveries at once keep every promise (one job
//! per module per event, one dispatch per entity within a cooldown, nothing lost or doubled).

use std::collections::BTreeSet;

use axum::http::StatusCode;
use futures::future::join_all;

use crate::common::*;

/// `count` pull request deliveries of `payload` at once, ids `{prefix}-0` and on.
async fn at_once(
    app: &TestApp,
    prefix: &str,
    count: usize,
    payload: &str,
) -> Vec<(StatusCode, serde_json::Value)> {
    join_all((0..count).map(|i| async move {
        app.github("pull_request", &format!("{prefix}-{i}"), payload)
            .await
    }))
    .await
}

#[tokio::test]
async fn a_hundred_concurrent_deliveries_of_one_event_make_one_job_per_module() {
    let app = TestApp::new(&[module("a", ""), module("b", "      cooldown: 5m\n")]).await;
    let payload = pr_payload("opened", 1);
    let answers = join_all((0..100).map(|_| app.github("pull_request", "d-100", &payload))).await;
    let accepted: Vec<_> = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::ACCEPTED)
        .collect();
    assert_eq!(accepted.len(), 1, "{answers:?}");
    assert_eq!(job_ids(&accepted[0].1).len(), 2);
    for (status, body) in &answers {
        assert!(
            *status == StatusCode::ACCEPTED
                || *status == StatusCode::OK && body["duplicate"] == true
                || *status == StatusCode::CONFLICT && body["code"] == "in_progress",
            "{status} {body}"
        );
    }
    assert_eq!(app.items("JOB#").await.len(), 2);
    assert_eq!(app.invokes.get(), 2);
}

#[tokio::test]
async fn fifty_distinct_events_for_one_entity_within_a_cooldown_dispatch_once() {
    let app = TestApp::new(&[module("reviewer", "      cooldown: 5m\n")]).await;
    // Fifty deliveries (distinct ids) about the same pull request, all at once.
    let answers = at_once(&app, "d-sync", 50, &pr_payload("synchronize", 7)).await;
    let mut dispatched = 0;
    let mut cooling = 0;
    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::ACCEPTED, "{body}");
        dispatched += job_ids(body).len();
        cooling += skipped(body)
            .iter()
            .filter(|(m, r)| m == "reviewer" && r == "cooldown")
            .count();
    }
    assert_eq!((dispatched, cooling), (1, 49));
    assert_eq!(app.items("JOB#").await.len(), 1);
    assert_eq!(app.items("COOLDOWN#").await.len(), 1);
    assert_eq!(app.invokes.get(), 1);
}

#[tokio::test]
async fn deliveries_racing_for_one_pull_modules_cooldown_each_store_their_event() {
    // One pull module: its delivery writes the stored event with the job's queue item. The
    // deliveries that lose the cooldown at the claim have no queue item to carry it, and
    // store it on its own: every event is stored, whichever way it went.
    use switchyard::store::EventStore as _;
    let pulled = "name: builder\ndescription: pulled by workers\npull: {}\ntriggers:\n  - webhook:\n      sources: [github]\n      event: pull_request\n      actions: [synchronize]\n      cooldown: 5m\n";
    let app = TestApp::new(&[pulled.to_owned()]).await;
    let answers = at_once(&app, "d-pull-race", 20, &pr_payload("synchronize", 8)).await;
    let mut dispatched = 0;
    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::ACCEPTED, "{body}");
        dispatched += job_ids(body).len();
    }
    assert_eq!(dispatched, 1);
    assert_eq!(app.items("JOB#").await.len(), 1);
    for i in 0..20 {
        let id = format!("d-pull-race-{i}");
        let stored = app.store.load_event("github", &id).await.unwrap();
        let event = stored.unwrap_or_else(|| panic!("{id}: no stored event"));
        assert_eq!(event.payload["number"], 8, "{id}");
    }
}

#[tokio::test]
async fn two_hundred_distinct_events_at_once_are_all_recorded_once() {
    // A pull module: its dispatch ends in the table (the queue) instead of the Lambda
    // emulator, which runs every invoke synchronously and would measure itself, not us.
    let pulled = "name: reviewer\ndescription: pulled by workers\npull: {}\ntriggers:\n  - webhook: { sources: [github], event: pull_request, actions: [opened] }\n";
    let app = TestApp::new(&[pulled.to_owned()]).await;
    let deliver = |i: u64| {
        let app = &app;
        async move {
            let payload = pr_payload("opened", 1000 + i);
            let (status, body) = app
                .github("pull_request", &format!("d-many-{i}"), &payload)
                .await;
            (i, status, body)
        }
    };
    // All at once; then, like a forge honouring Retry-After, the deliveries that were not
    // accepted (503 when the emulators fell behind, 409 while an attempt's lease holds) are
    // delivered again after the lease, until every one is accepted.
    let mut pending: Vec<u64> = (0..200).collect();
    let mut jobs = BTreeSet::new();
    let mut rounds = 0;
    while !pending.is_empty() {
        rounds += 1;
        assert!(
            rounds <= 6,
            "still not accepted after 5 redeliveries: {pending:?}"
        );
        let answers = join_all(pending.iter().map(|&i| deliver(i))).await;
        pending.clear();
        for (i, status, body) in answers {
            match status {
                StatusCode::ACCEPTED => {
                    let ids = job_ids(&body);
                    assert!(ids.len() <= 1, "{body}");
                    jobs.extend(ids);
                }
                StatusCode::OK => assert_eq!(body["duplicate"], true, "{body}"),
                StatusCode::SERVICE_UNAVAILABLE | StatusCode::CONFLICT => pending.push(i),
                _ => panic!("d-many-{i}: {status} {body}"),
            }
        }
        if !pending.is_empty() {
            println!("round {rounds}: {} deliveries to redeliver", pending.len());
            app.clock.advance(std::time::Duration::from_secs(121));
        }
    }
    // Recorded once each, whatever the path: one event item and one job per delivery, no
    // job left failed, no job id answered twice.
    assert_eq!(app.items("EVENT#").await.len(), 200);
    let job_items = app.items("JOB#").await;
    assert_eq!(job_items.len(), 200);
    for item in &job_items {
        let status = item.get("status").and_then(|v| v.as_s().ok()).cloned();
        assert_ne!(
            status.as_deref(),
            Some("failed"),
            "a job was left failed: {item:?}"
        );
    }
    assert!(jobs.len() <= 200);
    assert_eq!(app.invokes.get(), 0);
    assert_eq!(app.items("QUEUE#reviewer").await.len(), 200);
}
