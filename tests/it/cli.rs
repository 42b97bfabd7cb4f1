//! The `switchyard` command line against the API served over HTTP on loopback (DynamoDB
//! Local behind it): invoke, jobs, events, replay, registry push, versions and rollback.

use std::process::Output;

use serde_json::Value;

use crate::api::Api;
use crate::common::*;

pub(crate) struct Served {
    pub(crate) url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) async fn serve(router: axum::Router) -> Served {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    Served { url, task }
}

async fn cli(url: &str, token: &str, args: &[&str]) -> Output {
    let bin = std::env::var("SWITCHYARD_TEST_CLI").expect("set by make test");
    tokio::process::Command::new(bin)
        .args(args)
        .env("SWITCHYARD_API_URL", url)
        .env("SWITCHYARD_API_TOKEN", token)
        .output()
        .await
        .unwrap()
}

fn json_out(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn the_cli_drives_the_api() {
    let manual =
        "name: manual\ndescription: by hand\nfunction: notify\ntriggers:\n  - invoke: {}\n";
    let api = Api::over(
        TestApp::with(
            &[manual.to_owned(), module("reviewer", "")],
            Options {
                registry_refresh: Some(std::time::Duration::from_secs(15)),
                ..Default::default()
            },
        )
        .await,
    );
    let served = serve(api.router.clone()).await;
    let url = served.url.as_str();

    let job = json_out(
        &cli(
            url,
            &api.invoke,
            &[
                "invoke",
                "manual",
                "--payload",
                r#"{"n": 1}"#,
                "--idempotency-key",
                "k1",
            ],
        )
        .await,
    );
    let id = job["job_id"].as_str().unwrap();
    let got = json_out(&cli(url, &api.read, &["jobs", "get", id]).await);
    assert_eq!(got["module"], "manual");
    let listed = json_out(&cli(url, &api.read, &["jobs", "list", "--module", "manual"]).await);
    assert_eq!(listed["items"][0]["job_id"], id);

    let (s, _) = api
        .app
        .github("pull_request", "d-1", &pr_payload("opened", 1))
        .await;
    assert_eq!(s, axum::http::StatusCode::ACCEPTED);
    let events = json_out(&cli(url, &api.read, &["events", "list", "--all", "--limit", "1"]).await);
    assert_eq!(events.as_array().map(Vec::len), Some(2), "{events}");
    let event = json_out(&cli(url, &api.read, &["events", "get", "github:d-1"]).await);
    assert_eq!(event["jobs"][0]["module"], "reviewer");
    let plan = json_out(&cli(url, &api.read, &["replay", "github:d-1", "--dry-run"]).await);
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["kept"][0]["module"], "reviewer");

    // A read token cannot replay: the error's words, a failing exit.
    let out = cli(url, &api.read, &["replay", "github:d-1"]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("403 forbidden"));

    let dir = std::env::temp_dir().join(format!("sy-cli-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(dir.join("other")).unwrap();
    std::fs::write(dir.join("other/module.yaml"), module("other", "")).unwrap();
    let pushed = json_out(
        &cli(
            url,
            &api.admin,
            &["registry", "push", dir.to_str().unwrap()],
        )
        .await,
    );
    assert_eq!(pushed["version"], 1);
    assert_eq!(pushed["added"][0], "other");
    let versions = json_out(&cli(url, &api.admin, &["registry", "versions"]).await);
    assert_eq!(versions["active"], 1);
    std::fs::write(dir.join("other/module.yaml"), "name: other\n").unwrap();
    let out = cli(
        url,
        &api.admin,
        &["registry", "push", dir.to_str().unwrap()],
    )
    .await;
    assert!(!out.status.success(), "a refused manifest fails the push");
    let rolled = json_out(&cli(url, &api.admin, &["registry", "rollback", "1"]).await);
    assert_eq!(rolled["rolled_back_to"], 1);
    std::fs::remove_dir_all(&dir).unwrap();
}
