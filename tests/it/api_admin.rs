//! The API's listings, replay, registry publishing with hot reload, and settings, against
//! DynamoDB Local (and the watch for fan-out).

use std::collections::HashSet;
use std::time::Duration;

use axum::http::StatusCode;
use futures::StreamExt as _;
use serde_json::{Value, json};

use crate::api::Api;
use crate::common::*;

/// An app whose dispatcher follows published registry versions (the manifests are its
/// baseline); the API publishes through it, so its own publishes apply at once.
async fn publishing(manifests: &[String]) -> Api {
    Api::over(
        TestApp::with(
            manifests,
            Options {
                registry_refresh: Some(Duration::from_secs(15)),
                ..Default::default()
            },
        )
        .await,
    )
}

/// Publishes a bundle of (file, manifest) through the API with the admin token.
async fn publish(api: &Api, items: Vec<(&'static str, String)>) -> (StatusCode, Value) {
    let body = bundle(&items);
    api.call(
        "POST",
        "/admin/registry",
        Some(&api.admin),
        None,
        Some(body),
    )
    .await
}

/// A module on GitHub pull requests that invokes `function`.
fn module_fn(name: &str, function: &str, extra: &str) -> String {
    module(name, extra).replace("function: notify", &format!("function: {function}"))
}

fn names(list: &Value, key: &str) -> Vec<String> {
    let mut out: Vec<String> = list
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|v| v[key].as_str().unwrap_or_default().to_owned())
        .collect();
    out.sort();
    out
}

fn bundle(items: &[(&str, String)]) -> Value {
    let map: serde_json::Map<String, Value> = items
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::from(v.clone())))
        .collect();
    json!({ "manifests": map })
}

#[tokio::test]
async fn listing_1000_events_pages_through_each_exactly_once() {
    let api = Api::over(TestApp::new(&[]).await);
    let body = pr_payload("opened", 1);
    let now = api.app.clock.now_time();
    futures::stream::iter(0..1000)
        .map(|i| {
            let req = github_request("pull_request", &format!("d-{i:04}"), &body, SECRET, now);
            api.app.send(req)
        })
        .buffer_unordered(32)
        .for_each(|(s, b)| async move { assert_eq!(s, StatusCode::ACCEPTED, "{b}") })
        .await;

    for (query, size) in [("limit=37", 37), ("type=pull_request&limit=200", 200)] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let path = match &cursor {
                Some(c) => format!("/events?{query}&cursor={c}"),
                None => format!("/events?{query}"),
            };
            let (s, b) = api.get(&path, Some(&api.read)).await;
            assert_eq!(s, StatusCode::OK, "{b}");
            let items = b["items"].as_array().unwrap();
            assert!(items.len() <= size);
            seen.extend(items.iter().map(|e| e["id"].as_str().unwrap().to_owned()));
            pages += 1;
            assert!(pages < 100, "paging does not end");
            match b["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!((seen.len(), unique.len()), (1000, 1000), "{query}");
        assert_eq!(seen[0], "github:d-0999", "newest first");
    }
    let (s, b) = api.get("/events?type=push", Some(&api.read)).await;
    assert_eq!(
        (s, b["items"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(0))
    );
    for bad in [
        "/events?limit=0",
        "/events?limit=201",
        "/events?cursor=bm90LWEtY3Vyc29y",
        "/events?status=lost",
        "/events?since=yesterday",
        "/events?colour=red",
        "/events?limit=1&limit=2",
    ] {
        let (s, b) = api.get(bad, Some(&api.read)).await;
        assert_eq!(
            (s, b["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("bad_request")),
            "{bad}"
        );
    }
    let (s, _) = api.get("/events", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn jobs_list_by_module_and_status_with_paging() {
    let api = Api::over(TestApp::new(&[module("a", ""), module("b", "")]).await);
    for n in 1..=3 {
        let (s, b) = api
            .app
            .github("pull_request", &format!("d-{n}"), &pr_payload("opened", n))
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    }
    let (s, b) = api.get("/jobs?module=a", Some(&api.read)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(names(&b["items"], "module"), ["a", "a", "a"]);
    assert!(b["items"][0].get("gsi2pk").is_none());
    let (_, first) = api.get("/jobs?limit=4", Some(&api.read)).await;
    assert_eq!(first["items"].as_array().unwrap().len(), 4);
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = api
        .get(&format!("/jobs?limit=4&cursor={cursor}"), Some(&api.read))
        .await;
    assert_eq!(
        second["items"].as_array().map(Vec::len),
        Some(2),
        "{second}"
    );
    // The jobs stay queued (their function finds no job of this table through the watch).
    let (_, queued) = api
        .get("/jobs?status=queued&module=b", Some(&api.read))
        .await;
    assert_eq!(queued["items"].as_array().unwrap().len(), 3);
    let (_, done) = api.get("/jobs?status=succeeded", Some(&api.read)).await;
    assert_eq!(done["items"].as_array().unwrap().len(), 0);
    // A cursor of one listing is refused by another.
    let (s, _) = api
        .get(&format!("/jobs?module=a&cursor={cursor}"), Some(&api.read))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn replay_of_a_failed_event_dispatches_only_the_module_that_failed() {
    let api = publishing(&[
        module_fn("good", "notify", ""),
        module_fn("flaky", "no-such-function", ""),
    ])
    .await;
    let (s, b) = api
        .app
        .github("pull_request", "d-1", &pr_payload("opened", 1))
        .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{b}");
    let (_, e) = api.get("/events/github:d-1", Some(&api.read)).await;
    assert_eq!(e["status"], "failed", "{e}");

    // Dry run: the plan, nothing dispatched, nothing written.
    let invokes = api.app.invokes.get();
    let (s, plan) = api
        .post("/events/github:d-1/replay?dry_run=true", Some(&api.read))
        .await;
    assert_eq!(s, StatusCode::OK, "{plan}");
    assert_eq!(plan["dry_run"], true);
    assert_eq!(names(&plan["dispatch"], "module"), ["flaky"]);
    assert_eq!(names(&plan["kept"], "module"), ["good"]);
    assert_eq!(api.app.invokes.get(), invokes);
    let (_, after) = api.get("/events/github:d-1", Some(&api.read)).await;
    assert_eq!(after["attempts"], e["attempts"]);

    // A read token may plan but not replay.
    let (s, _) = api.post("/events/github:d-1/replay", Some(&api.read)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Fix the module by publishing, then replay: only `flaky` is invoked, once.
    let (s, r) = api
        .call(
            "POST",
            "/admin/registry",
            Some(&api.admin),
            None,
            Some(bundle(&[
                ("good/module.yaml", module_fn("good", "notify", "")),
                ("flaky/module.yaml", module_fn("flaky", "notify", "")),
            ])),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let (s, d) = api
        .post("/events/github:d-1/replay", Some(&api.invoke))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{d}");
    assert_eq!(api.app.invokes.get(), invokes + 1);
    assert_eq!(names(&d["jobs"], "module"), ["flaky", "good"]);
    let (_, e) = api.get("/events/github:d-1", Some(&api.read)).await;
    assert_eq!(e["status"], "completed", "{e}");
    let flaky = d["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["module"] == "flaky")
        .unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, job) = api.get(&format!("/jobs/{flaky}"), Some(&api.read)).await;
    assert_eq!(job["attempts"], 2, "{job}");

    // Everything ran now: a second replay dispatches nothing.
    let (s, d) = api
        .post("/events/github:d-1/replay", Some(&api.invoke))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{d}");
    assert_eq!(api.app.invokes.get(), invokes + 1);
    let (s, _) = api
        .post("/events/github:nope/replay", Some(&api.invoke))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn replay_respects_cooldowns_unless_forced() {
    let api = Api::over(TestApp::new(&[module("cool", "      cooldown: 5m\n")]).await);
    let (s, _) = api
        .app
        .github("pull_request", "d-1", &pr_payload("opened", 7))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (_, b) = api
        .app
        .github("pull_request", "d-2", &pr_payload("synchronize", 7))
        .await;
    assert_eq!(skipped(&b), [("cool".to_owned(), "cooldown".to_owned())]);
    let (_, plan) = api
        .post("/events/github:d-2/replay?dry_run=true", Some(&api.read))
        .await;
    assert_eq!(names(&plan["skipped"], "reason"), ["cooldown"], "{plan}");
    let (s, d) = api
        .post("/events/github:d-2/replay", Some(&api.invoke))
        .await;
    assert_eq!((s, job_ids(&d).len()), (StatusCode::ACCEPTED, 0), "{d}");
    let (_, plan) = api
        .post(
            "/events/github:d-2/replay?dry_run=true&force=true",
            Some(&api.read),
        )
        .await;
    assert_eq!(names(&plan["dispatch"], "module"), ["cool"], "{plan}");
    let invokes = api.app.invokes.get();
    let (s, d) = api
        .post("/events/github:d-2/replay?force=true", Some(&api.invoke))
        .await;
    assert_eq!((s, job_ids(&d).len()), (StatusCode::ACCEPTED, 1), "{d}");
    assert_eq!(api.app.invokes.get(), invokes + 1);
}

#[tokio::test]
async fn a_broken_manifest_keeps_its_last_good_version() {
    let api = publishing(&[]).await;
    let publish = |items: Vec<(&'static str, String)>| publish(&api, items);
    let (s, v1) = publish(vec![
        ("a/module.yaml", module("a", "")),
        ("b/module.yaml", module("b", "      cooldown: 1m\n")),
        ("c/module.yaml", module("c", "")),
    ])
    .await;
    assert_eq!(s, StatusCode::OK, "{v1}");
    assert_eq!(v1["added"], json!(["a", "b", "c"]));
    let broken = module("b", "      cooldown: soon\n");
    let (s, v2) = publish(vec![
        ("a/module.yaml", module("a", "")),
        ("b/module.yaml", broken),
        ("c/module.yaml", module("c", "      cooldown: 2m\n")),
    ])
    .await;
    assert_eq!(s, StatusCode::OK, "{v2}");
    assert_eq!(v2["version"], v1["version"].as_u64().unwrap() + 1);
    assert_eq!(v2["refreshed"], json!(["a", "c"]));
    assert_eq!(v2["failed"][0]["module"], "b");
    assert_eq!(v2["failed"][0]["kept_previous"], true);
    let error = v2["failed"][0]["error"].as_str().unwrap();
    assert!(error.contains("cooldown"), "{error}");
    let (_, m) = api.get("/modules", Some(&api.read)).await;
    assert_eq!(m["version"], v2["version"]);
    assert_eq!(names(&m["modules"], "name"), ["a", "b", "c"]);
    let b = m["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "b")
        .unwrap();
    assert_eq!(
        b["triggers"][0]["cooldown_seconds"], 60,
        "the last good b is active"
    );
    // Tokens: publishing needs the admin scope; bad bundles are refused.
    let (s, _) = api
        .call(
            "POST",
            "/admin/registry",
            Some(&api.invoke),
            None,
            Some(bundle(&[])),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    for bad in [json!([1]), json!({"manifests": 3}), json!({"other": {}})] {
        let (s, b) = api
            .call(
                "POST",
                "/admin/registry",
                Some(&api.admin),
                None,
                Some(bad.clone()),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad} {b}");
    }
}

#[tokio::test]
async fn a_running_router_picks_up_a_publish_within_the_refresh_interval() {
    let refresh = Duration::from_secs(2);
    let router = TestApp::with(
        &[module("old", "")],
        Options {
            registry_refresh: Some(refresh),
            ..Default::default()
        },
    )
    .await;
    let api = Api::over(
        TestApp::with(
            &[],
            Options {
                table: Some(router.table.clone()),
                ..Default::default()
            },
        )
        .await,
    );
    let (_, b) = router
        .github("pull_request", "d-1", &pr_payload("opened", 1))
        .await;
    assert_eq!(job_ids(&b).len(), 1);
    assert_eq!(b["jobs"][0]["module"], "old");

    let publish = |items: Vec<(&'static str, String)>| publish(&api, items);
    // Two concurrent publishes make two consecutive versions, not a lost update.
    let ((s1, r1), (s2, r2)) = tokio::join!(
        publish(vec![("new/module.yaml", module("new", ""))]),
        publish(vec![("newer/module.yaml", module("newer", ""))]),
    );
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK), "{r1} {r2}");
    let mut versions = [
        r1["version"].as_u64().unwrap(),
        r2["version"].as_u64().unwrap(),
    ];
    versions.sort_unstable();
    assert_eq!(versions, [1, 2]);
    let last = if r1["version"] == 2 { "new" } else { "newer" };
    let first = if last == "new" { "newer" } else { "new" };
    let (_, list) = api.get("/admin/registry/versions", Some(&api.admin)).await;
    assert_eq!(list["active"], 2);
    assert_eq!(list["versions"][0]["version"], 2);
    assert_eq!(list["versions"][1]["version"], 1);
    assert_eq!(list["versions"][0]["modules"], json!([last]));

    tokio::time::sleep(refresh + Duration::from_millis(300)).await;
    let (_, b) = router
        .github("pull_request", "d-2", &pr_payload("opened", 2))
        .await;
    assert_eq!(names(&b["jobs"], "module"), [last], "{b}");
    // No read per request: three deliveries nobody listens to cost three calls each (the
    // reservation, the stored event, kept for replay, and the finish), plus at most one
    // registry check.
    router.ddb_calls.reset();
    for i in 0..3 {
        let (s, _) = router.github("star", &format!("s-{i}"), "{}").await;
        assert_eq!(s, StatusCode::ACCEPTED);
    }
    assert!(
        router.ddb_calls.get() <= 10,
        "{} calls",
        router.ddb_calls.get()
    );

    // Rollback restores the old routing, as a new version.
    let (s, r) = api
        .post("/admin/registry/rollback/1", Some(&api.admin))
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(
        (r["version"].as_u64(), r["rolled_back_to"].as_u64()),
        (Some(3), Some(1))
    );
    tokio::time::sleep(refresh + Duration::from_millis(300)).await;
    let (_, b) = router
        .github("pull_request", "d-3", &pr_payload("opened", 3))
        .await;
    assert_eq!(names(&b["jobs"], "module"), [first], "{b}");
    let (s, _) = api
        .post("/admin/registry/rollback/99", Some(&api.admin))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = api
        .post("/admin/registry/rollback/zero", Some(&api.admin))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn settings_are_read_and_replaced_per_scope() {
    let api = Api::over(TestApp::new(&[module("a", "")]).await);
    let body = json!({"flags": {"a": false}, "config": {"a": {"level": 2}}});
    let (s, b) = api
        .call(
            "PUT",
            "/admin/settings/repo/acme/widgets",
            Some(&api.admin),
            None,
            Some(body),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = api
        .get("/admin/settings/repo/acme/widgets", Some(&api.admin))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (b["scope"].as_str(), &b["flags"]["a"]),
        (Some("repo/acme/widgets"), &json!(false))
    );
    assert_eq!(b["config"]["a"]["level"], 2);
    // The switched-off module is skipped for that repository (after the settings cache).
    let (s, _) = api
        .get("/admin/settings/owner/nobody", Some(&api.admin))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = api
        .get("/admin/settings/planet/earth", Some(&api.admin))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = api.get("/admin/settings/global", Some(&api.read)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    for bad in [
        json!({"flags": {"a": "no"}}),
        json!({"other": 1}),
        json!({"config": {"a": 1}}),
        // Found by schemathesis: values DynamoDB cannot store answered 503.
        json!({"config": {"a": {"x": 1e300}}}),
        json!({"config": {"a": {"": 1}}}),
        json!({"flags": {"": true}}),
    ] {
        let (s, _) = api
            .call(
                "PUT",
                "/admin/settings/global",
                Some(&api.admin),
                None,
                Some(bad.clone()),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");
    }
    // Methods a route does not have answer 405 with the stable body.
    let (s, b) = api
        .call(
            "DELETE",
            "/admin/settings/global",
            Some(&api.admin),
            None,
            None,
        )
        .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed"))
    );
}
