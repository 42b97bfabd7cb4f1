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
    let http = switchyard::tls::http_client().build().unwrap();
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

/// The test app's router served by `serve_http` (what the binaries run off Lambda) under
/// `limits`, on a free port; the server stops when the returned sender is dropped.
async fn served(
    limits: switchyard::config::ServeLimits,
) -> (TestApp, u16, tokio::sync::oneshot::Sender<()>) {
    let app = TestApp::new(&[module("reviewer", "")]).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let router = app.router.clone();
    tokio::spawn(async move {
        switchyard::webhook::serve_http(listener, router, limits, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    (app, port, tx)
}

async fn connect(port: u16) -> tokio::net::TcpStream {
    tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap()
}

/// Reads until the server closes or `within` passes; `None` when it did neither.
async fn read_all(stream: &mut tokio::net::TcpStream, within: Duration) -> Option<String> {
    use tokio::io::AsyncReadExt as _;
    let mut out = Vec::new();
    let read = tokio::time::timeout(within, stream.read_to_end(&mut out)).await;
    match read {
        Ok(_) => Some(String::from_utf8_lossy(&out).into_owned()),
        Err(_) => None,
    }
}

fn limits() -> switchyard::config::ServeLimits {
    switchyard::config::ServeLimits {
        header_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(2),
        max_connections: 16,
        max_in_flight: 16,
    }
}

const UNSIGNED: &[u8] =
    b"POST /webhooks/github HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}";

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    use tokio::io::AsyncWriteExt as _;
    let (_app, port, _stop) = served(limits()).await;
    let mut slow = connect(port).await;
    slow.write_all(b"POST /webhooks/github HTTP/1.1\r\nhost: x\r\nx-a: ")
        .await
        .unwrap();
    let started = Instant::now();
    // Before: held open for as long as the client liked.
    assert!(
        read_all(&mut slow, Duration::from_secs(5)).await.is_some(),
        "the connection stayed open"
    );
    assert!(started.elapsed() < Duration::from_secs(4));
    // An idle connection that sends nothing is closed too.
    let mut idle = connect(port).await;
    assert!(read_all(&mut idle, Duration::from_secs(5)).await.is_some());
}

#[tokio::test]
async fn a_body_that_never_arrives_gets_408_and_an_overload_gets_503_before_its_body_is_read() {
    use tokio::io::AsyncWriteExt as _;
    let (_app, port, _stop) = served(switchyard::config::ServeLimits {
        max_in_flight: 1,
        ..limits()
    })
    .await;
    // Declares 100 KB, sends 10 bytes, then waits.
    let mut slow = connect(port).await;
    slow.write_all(
        b"POST /webhooks/github HTTP/1.1\r\nhost: x\r\ncontent-length: 100000\r\n\r\n0123456789",
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut other = connect(port).await;
    other.write_all(UNSIGNED).await.unwrap();
    let answer = read_all(&mut other, Duration::from_secs(5)).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("\"code\":\"overloaded\""), "{answer}");
    assert!(answer.to_lowercase().contains("retry-after"), "{answer}");
    let answer = read_all(&mut slow, Duration::from_secs(6)).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"request_timeout\""), "{answer}");
    // With the slot free again, a request is served.
    let mut next = connect(port).await;
    next.write_all(UNSIGNED).await.unwrap();
    let answer = read_all(&mut next, Duration::from_secs(5)).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
}

#[tokio::test]
async fn past_the_connection_cap_new_clients_wait_until_one_closes() {
    use tokio::io::AsyncWriteExt as _;
    let (_app, port, _stop) = served(switchyard::config::ServeLimits {
        max_connections: 1,
        header_timeout: Duration::from_secs(30),
        ..limits()
    })
    .await;
    let holder = connect(port).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut waiting = connect(port).await;
    waiting.write_all(UNSIGNED).await.unwrap();
    assert!(
        read_all(&mut waiting, Duration::from_millis(700))
            .await
            .is_none(),
        "answered past the cap"
    );
    drop(holder);
    let answer = read_all(&mut waiting, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
}
