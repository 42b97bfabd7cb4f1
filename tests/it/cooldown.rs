//! Cooldowns per (module, entity), always compared with now (never trusting TTL sweeps).

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use axum::http::StatusCode;

use crate::common::*;

fn cooling() -> String {
    module("reviewer", "      cooldown: 5m\n")
}

#[tokio::test]
async fn within_the_cooldown_a_second_event_for_the_same_entity_is_skipped() {
    let app = TestApp::new(&[cooling()]).await;
    let (_, first) = app
        .github("pull_request", "d-1", &pr_payload("opened", 1))
        .await;
    assert_eq!(job_ids(&first).len(), 1);
    app.clock.advance(Duration::from_secs(60));
    let (status, second) = app
        .github("pull_request", "d-2", &pr_payload("synchronize", 1))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(job_ids(&second).is_empty(), "{second}");
    assert_eq!(
        skipped(&second),
        vec![("reviewer".to_owned(), "cooldown".to_owned())]
    );
    assert_eq!(app.invokes.get(), 1);
}

#[tokio::test]
async fn another_entity_is_not_held_by_the_cooldown() {
    let app = TestApp::new(&[cooling()]).await;
    app.github("pull_request", "d-1", &pr_payload("opened", 1))
        .await;
    let (_, other) = app
        .github("pull_request", "d-2", &pr_payload("opened", 2))
        .await;
    assert_eq!(job_ids(&other).len(), 1, "{other}");
    assert_eq!(app.invokes.get(), 2);
}

#[tokio::test]
async fn after_the_cooldown_the_entity_dispatches_again() {
    let app = TestApp::new(&[cooling()]).await;
    app.github("pull_request", "d-1", &pr_payload("opened", 1))
        .await;
    app.clock.advance(Duration::from_secs(5 * 60 + 1));
    let (_, later) = app
        .github("pull_request", "d-2", &pr_payload("synchronize", 1))
        .await;
    assert_eq!(job_ids(&later).len(), 1, "{later}");
}

/// Writes the cooldown item another event's job would have left for `entity`.
async fn foreign_cooldown(app: &TestApp, entity: &str, expires_at: i64) {
    let mut item = HashMap::new();
    item.insert(
        "pk".to_owned(),
        AttributeValue::S(format!("COOLDOWN#reviewer#{entity}")),
    );
    item.insert("sk".to_owned(), AttributeValue::S("COOLDOWN".into()));
    item.insert(
        "job_id".to_owned(),
        AttributeValue::S("someone-else".into()),
    );
    item.insert(
        "expires_at".to_owned(),
        AttributeValue::N(expires_at.to_string()),
    );
    app.store.put_raw(item).await.unwrap();
}

#[tokio::test]
async fn an_expired_but_unswept_cooldown_item_does_not_block() {
    let app = TestApp::new(&[cooling()]).await;
    let now = app.clock.now_time().unix_timestamp();
    foreign_cooldown(&app, "acme/widgets#1", now - 10).await;
    // The item is still there: TTL has not swept it.
    assert_eq!(app.items("COOLDOWN#").await.len(), 1);
    let (_, resp) = app
        .github("pull_request", "d-1", &pr_payload("opened", 1))
        .await;
    assert_eq!(job_ids(&resp).len(), 1, "{resp}");

    // And an unexpired one of another job does block.
    foreign_cooldown(&app, "acme/widgets#9", now + 600).await;
    let (_, resp) = app
        .github("pull_request", "d-2", &pr_payload("opened", 9))
        .await;
    assert_eq!(
        skipped(&resp),
        vec![("reviewer".to_owned(), "cooldown".to_owned())]
    );
}
