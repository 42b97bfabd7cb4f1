//! The router binary outside Lambda: plain HTTP on SWITCHYARD_LISTEN, same answers.

use std::process::Stdio;
use std::time::{Duration, Instant};

use switchyard::store::DynamoStore;

use crate::common::*;

fn router_binary() -> std::path::PathBuf {
    // <target>/debug/deps/it-<hash> -> <target>/debug/router (built by `make test`).
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().join("router")
}

#[tokio::test]
async fn the_router_binary_serves_plain_http_outside_lambda() {
    let bin = router_binary();
    assert!(
        bin.exists(),
        "{} is missing: `make test` builds it",
        bin.display()
    );
    let table = unique_table();
    let client = dynamo_client(&dynamodb_endpoint(), &Counter::default()).await;
    DynamoStore::create_table(&client, &table).await.unwrap();
    let port = closed_port();
    let mut child = tokio::process::Command::new(&bin)
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env("SWITCHYARD_LISTEN", format!("127.0.0.1:{port}"))
        .env("SWITCHYARD_TABLE", &table)
        .env("SWITCHYARD_SOURCES", "github=github")
        .env("SWITCHYARD_SECRET_GITHUB", SECRET)
        .env("SWITCHYARD_INVOKE_TIMEOUT_SECONDS", "120")
        .env("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_endpoint())
        .env("AWS_ENDPOINT_URL_LAMBDA", lambda_endpoint())
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("AWS_REGION", "us-east-1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "router did not listen on {port}");
        assert!(child.try_wait().unwrap().is_none(), "router exited");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/webhooks/github");
    let unsigned = http.post(&url).body("{}").send().await.unwrap();
    assert_eq!(unsigned.status().as_u16(), 401);

    let body = pr_payload("opened", 77);
    let req = github_request(
        "pull_request",
        "serve-1",
        &body,
        SECRET,
        time::OffsetDateTime::now_utc(),
    );
    let mut post = http.post(&url).body(body);
    for (k, v) in req.headers() {
        post = post.header(k.as_str(), v.to_str().unwrap());
    }
    let resp = post.send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let answer: serde_json::Value = resp.json().await.unwrap();
    // The builtin registry: notify listens for opened pull requests.
    assert_eq!(answer["jobs"][0]["module"], "notify", "{answer}");
    child.kill().await.unwrap();
}
