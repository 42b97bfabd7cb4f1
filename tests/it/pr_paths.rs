//! `paths:` on pull requests: the router lists the pull request's files from the forge
//! (GitHub's paging, once per delivery however many triggers ask) and matches them with
//! GitHub Actions' semantics; when the list cannot be had the filter matches and the job's
//! context says why. DynamoDB Local and a stand-in for GitHub's REST API.

use std::time::Duration;

use switchyard::clock::Clock;
use switchyard::store::WorkQueue;

use crate::common::*;
use crate::forge_standin;

fn manifests() -> Vec<String> {
    vec![
        "name: docs-check\ndescription: docs only\npull: { lease: 5m, max_attempts: 3 }\ntriggers:\n  - webhook:\n      event: pull_request\n      paths: [\"docs/**\"]\n".to_owned(),
        "name: code-check\ndescription: not markdown\npull: { lease: 5m, max_attempts: 3 }\ntriggers:\n  - webhook:\n      event: pull_request\n      paths-ignore: [\"**/*.md\"]\n".to_owned(),
        "name: every-pr\ndescription: no filter\npull: { lease: 5m, max_attempts: 3 }\ntriggers:\n  - webhook:\n      event: pull_request\n".to_owned(),
    ]
}

async fn app(port: u16, timeout_ms: u64) -> TestApp {
    TestApp::with(
        &manifests(),
        Options {
            vars: vec![
                ("GITHUB_API_URL".into(), format!("http://127.0.0.1:{port}")),
                ("GITHUB_TOKEN".into(), "standin-token".into()),
                (
                    "SWITCHYARD_PR_FILES_TIMEOUT_MS".into(),
                    timeout_ms.to_string(),
                ),
            ],
            pr_files: true,
            ..Default::default()
        },
    )
    .await
}

fn modules(resp: &serde_json::Value) -> Vec<String> {
    let mut m: Vec<String> = resp["jobs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|j| j["module"].as_str().map(str::to_owned))
        .collect();
    m.sort();
    m
}

#[tokio::test]
async fn path_filters_match_the_pull_request_files_listed_once_per_delivery() {
    let port = closed_port();
    let forge = forge_standin::start(port).await;
    {
        let mut f = forge.lock().unwrap();
        // 150 source files: two pages of 100.
        f.files.insert(
            41,
            (0..150).map(|i| (format!("src/f{i}.rs"), 1, 0)).collect(),
        );
        f.files.insert(
            42,
            vec![("docs/guide.md".into(), 3, 1), ("README.md".into(), 1, 1)],
        );
    }
    let app = app(port, 3000).await;

    let (status, resp) = app
        .github("pull_request", "paths-41", &pr_payload("opened", 41))
        .await;
    assert!(status.is_success(), "{resp}");
    assert_eq!(modules(&resp), ["code-check", "every-pr"], "{resp}");
    let skips = skipped(&resp);
    assert!(
        skips.contains(&("docs-check".to_owned(), "paths".to_owned())),
        "{resp}"
    );
    let detail = resp["skipped"][0]["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("none of 150 changed paths"), "{resp}");

    let (status, resp) = app
        .github("pull_request", "paths-42", &pr_payload("opened", 42))
        .await;
    assert!(status.is_success(), "{resp}");
    // Every changed file is markdown: paths-ignore skips code-check.
    assert_eq!(modules(&resp), ["docs-check", "every-pr"], "{resp}");

    let calls = forge.lock().unwrap().calls.clone();
    let files = |n: u64| {
        calls
            .iter()
            .filter(|c| **c == format!("GET files {n}"))
            .count()
    };
    assert_eq!(
        files(41),
        2,
        "two pages, listed once for both filters: {calls:?}"
    );
    assert_eq!(files(42), 1, "{calls:?}");
}

#[tokio::test]
async fn when_the_files_cannot_be_had_the_filter_matches_and_the_context_says_why() {
    let port = closed_port();
    let forge = forge_standin::start(port).await;
    {
        let mut f = forge.lock().unwrap();
        f.files.insert(43, vec![("src/main.rs".into(), 1, 1)]);
        f.files_delay = Some(Duration::from_secs(2));
    }
    let app = app(port, 200).await;
    let (status, resp) = app
        .github("pull_request", "paths-43", &pr_payload("opened", 43))
        .await;
    assert!(status.is_success(), "{resp}");
    assert_eq!(
        modules(&resp),
        ["code-check", "docs-check", "every-pr"],
        "{resp}"
    );
    let leased = app
        .store
        .lease(&["docs-check".to_owned()], "test", app.clock.now())
        .await
        .unwrap()
        .expect("the docs-check job is queued");
    let why = leased.context["event"]["changed_paths_unknown"]
        .as_str()
        .unwrap_or_default();
    assert!(
        why.contains("longer than 200 ms"),
        "{}",
        leased.context["event"]
    );

    // Over GitHub's 3,000-file listing: not listed at all.
    let mut big: serde_json::Value = serde_json::from_str(&pr_payload("opened", 44)).unwrap();
    big["pull_request"]["changed_files"] = 3001.into();
    let (_, resp) = app
        .github("pull_request", "paths-44", &big.to_string())
        .await;
    assert_eq!(
        modules(&resp),
        ["code-check", "docs-check", "every-pr"],
        "{resp}"
    );
    assert!(
        !forge
            .lock()
            .unwrap()
            .calls
            .iter()
            .any(|c| c == "GET files 44")
    );
}

#[tokio::test]
async fn without_forge_credentials_path_filters_match_pull_requests_as_before() {
    let app = TestApp::with(&manifests(), Options::default()).await;
    let (status, resp) = app
        .github("pull_request", "paths-45", &pr_payload("opened", 45))
        .await;
    assert!(status.is_success(), "{resp}");
    assert_eq!(
        modules(&resp),
        ["code-check", "docs-check", "every-pr"],
        "{resp}"
    );
}
