//! The trigger language through the router: loop guard, per-scope settings in DynamoDB,
//! explanations recorded on the event item.

use axum::http::StatusCode;
use serde_json::Value;
use switchyard::settings::Settings;
use switchyard::store::{EventStore, SettingsStore};

use crate::common::*;

fn bot_payload() -> String {
    let mut v: Value = serde_json::from_str(&pr_payload("opened", 5)).unwrap();
    v["sender"]["login"] = Value::from("dependabot[bot]");
    v["sender"]["type"] = Value::from("Bot");
    v.to_string()
}

#[tokio::test]
async fn a_bot_sent_event_is_skipped_with_reason_bot_and_allow_bots_dispatches_it() {
    let guarded = module("reviewer", "");
    let allowing = module("updater", "").replace("triggers:", "allow_bots: true\ntriggers:");
    let app = TestApp::new(&[guarded, allowing]).await;
    let (status, body) = app.github("pull_request", "bot-1", &bot_payload()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(
        skipped(&body),
        vec![("reviewer".to_owned(), "bot".to_owned())]
    );
    assert_eq!(body["jobs"][0]["module"], "updater");
    assert_eq!(body["jobs"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_repository_off_switch_beats_a_global_on_and_shows_in_skipped() {
    let app = TestApp::new(&[module("reviewer", ""), module("labeler", "")]).await;
    let mut global = Settings::default();
    global.flags.insert("reviewer".into(), true);
    global.flags.insert("labeler".into(), true);
    let mut repo = Settings::default();
    repo.flags.insert("reviewer".into(), false);
    repo.config
        .insert("labeler".into(), serde_json::json!({"color": "red"}));
    let now = app.clock.now_time();
    app.store
        .put_settings("global", &global, now)
        .await
        .unwrap();
    app.store
        .put_settings("repo/acme/widgets", &repo, now)
        .await
        .unwrap();

    let (status, body) = app
        .github("pull_request", "s-1", &pr_payload("opened", 1))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(
        skipped(&body),
        vec![("reviewer".to_owned(), "disabled".to_owned())]
    );
    assert_eq!(
        body["skipped"][0]["detail"],
        "flag reviewer is off at repo/acme/widgets"
    );
    assert_eq!(body["jobs"][0]["module"], "labeler");
    assert_eq!(app.invokes.get(), 1);

    // Another repository of the same owner only sees the global switch.
    let mut other: Value = serde_json::from_str(&pr_payload("opened", 2)).unwrap();
    other["repository"]["full_name"] = Value::from("acme/gadgets");
    let (_, body) = app.github("pull_request", "s-2", &other.to_string()).await;
    assert_eq!(body["jobs"].as_array().unwrap().len(), 2, "{body}");
}

#[tokio::test]
async fn the_event_item_records_why_each_listening_module_did_not_run() {
    let cooling = module("cooler", "      cooldown: 10m\n");
    let closed_only =
        module("closer", "").replace("actions: [opened, synchronize]", "actions: [closed]");
    let app = TestApp::new(&[cooling, closed_only]).await;
    app.github("pull_request", "e-1", &pr_payload("opened", 1))
        .await;
    let (_, body) = app
        .github("pull_request", "e-2", &pr_payload("synchronize", 1))
        .await;
    let event = app.store.get_event("github", "e-2").await.unwrap().unwrap();
    let reasons: Vec<(String, String, String)> = event
        .skipped
        .iter()
        .map(|s| {
            (
                s.module.clone(),
                s.reason.clone(),
                s.detail.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(reasons.len(), 2, "{body}");
    assert_eq!(reasons[0].0, "closer");
    assert_eq!(reasons[0].2, "actions: \"synchronize\" not in [closed]");
    assert_eq!(
        (reasons[1].0.as_str(), reasons[1].1.as_str()),
        ("cooler", "cooldown")
    );
    let until = app.clock.now_time() + std::time::Duration::from_secs(600);
    let want = format!(
        "cooldown until {:02}:{:02}:{:02}Z for acme/widgets#1",
        until.hour(),
        until.minute(),
        until.second()
    );
    assert_eq!(reasons[1].2, want);
}
