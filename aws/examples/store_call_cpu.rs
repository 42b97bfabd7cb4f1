//! Client-side CPU of one DynamoDB call through the SDK client the functions use: a
//! measurement tool for docs/performance.md, not part of the product.
//!
//! Runs on one thread (a current-thread runtime), so the thread's on-CPU time
//! (`/proc/thread-self/schedstat`, nanoseconds) is everything the client spent: building
//! the request, signing, HTTP, parsing the answer, the interceptors. Against DynamoDB Local:
//!
//! ```text
//! AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:PORT SWITCHYARD_TABLE=t \
//!   cargo run --release --example store_call_cpu -- 2000
//! ```
//!
//! Prints µs of CPU per call for a small conditional `UpdateItem` (the reservation's shape)
//! and a `PutItem` carrying 10 KB of binary (a stored payload's shape).

use std::time::Instant;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;

fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn main() -> anyhow::Result<()> {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let table = std::env::var("SWITCHYARD_TABLE")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Compressing the 35 KB fixture at the stored event's level: a fresh zstd context per
    // call (what `zstd::bulk::compress` does) against one context kept and reused (what
    // the adapter's `pack` does).
    let fixture = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/github-pull_request-opened.json"
    ))?;
    let cpu = thread_cpu_ns();
    let wall = Instant::now();
    for _ in 0..n {
        zstd::bulk::compress(&fixture, 3)?;
    }
    report(
        "zstd level 3, 35 KB, a fresh context each",
        n,
        thread_cpu_ns() - cpu,
        wall,
    );
    let mut kept = zstd::bulk::Compressor::new(3)?;
    let cpu = thread_cpu_ns();
    let wall = Instant::now();
    for _ in 0..n {
        kept.compress(&fixture)?;
    }
    report(
        "zstd level 3, 35 KB, one context kept",
        n,
        thread_cpu_ns() - cpu,
        wall,
    );
    runtime.block_on(async move {
        let sdk = switchyard_aws::sdk::sdk_config().await;
        let client = switchyard_aws::sdk::dynamodb(&sdk);
        let blob = Blob::new(
            (0..10_240u32)
                .map(|i| (i * 7919 % 251) as u8)
                .collect::<Vec<_>>(),
        );
        // Warm the connection pool and the credentials.
        for i in 0..20 {
            put(&client, &table, i, &blob).await?;
        }
        let cases: [(&str, bool); 2] = [
            ("UpdateItem (small, conditional)", false),
            ("PutItem (10 KB binary)", true),
        ];
        for (name, payload) in cases {
            let cpu = thread_cpu_ns();
            let wall = Instant::now();
            for i in 0..n {
                if payload {
                    put(&client, &table, i, &blob).await?;
                } else {
                    client
                        .update_item()
                        .table_name(&table)
                        .key(
                            "pk",
                            AttributeValue::S(format!("CALLCPU#{i}#{}", wall.elapsed().as_nanos())),
                        )
                        .key("sk", AttributeValue::S("EVENT".into()))
                        .update_expression("SET #s = :s, expires_at = :e")
                        .condition_expression("attribute_not_exists(pk)")
                        .expression_attribute_names("#s", "status")
                        .expression_attribute_values(":s", AttributeValue::S("in_progress".into()))
                        .expression_attribute_values(":e", AttributeValue::N("1999999999".into()))
                        .send()
                        .await?;
                }
            }
            let cpu = thread_cpu_ns() - cpu;
            report(name, n, cpu, wall);
        }
        // The same PutItem without the SDK's orchestrator: JSON body, SigV4 (aws-sigv4),
        // one reqwest POST, the answer parsed.
        use aws_credential_types::provider::ProvideCredentials;
        let creds = sdk
            .credentials_provider()
            .ok_or_else(|| anyhow::anyhow!("no credentials"))?
            .provide_credentials()
            .await?;
        let identity: aws_smithy_runtime_api::client::identity::Identity = creds.into();
        let region = sdk.region().map(|r| r.to_string()).unwrap_or_default();
        let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB")?;
        let host = endpoint
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .to_owned();
        switchyard_aws::sdk::install_crypto_provider();
        let http = reqwest::Client::new();
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(blob.as_ref());
        let cpu = thread_cpu_ns();
        let wall = Instant::now();
        for i in 0..n {
            let body = serde_json::to_vec(&serde_json::json!({
                "TableName": table,
                "Item": {
                    "pk": {"S": format!("CALLCPU#LEAN#{i}")},
                    "sk": {"S": "PAYLOAD"},
                    "body": {"B": b64},
                    "expires_at": {"N": "1999999999"},
                },
                "ReturnConsumedCapacity": "INDEXES",
            }))?;
            let target = "DynamoDB_20120810.PutItem";
            let headers = [
                ("host", host.as_str()),
                ("content-type", "application/x-amz-json-1.0"),
                ("x-amz-target", target),
            ];
            let settings = aws_sigv4::http_request::SigningSettings::default();
            let params = aws_sigv4::sign::v4::SigningParams::builder()
                .identity(&identity)
                .region(&region)
                .name("dynamodb")
                .time(std::time::SystemTime::now())
                .settings(settings)
                .build()?
                .into();
            let signable = aws_sigv4::http_request::SignableRequest::new(
                "POST",
                &endpoint,
                headers.iter().copied(),
                aws_sigv4::http_request::SignableBody::Bytes(&body),
            )?;
            let (instructions, _) = aws_sigv4::http_request::sign(signable, &params)?.into_parts();
            let mut request = http
                .post(&endpoint)
                .header("content-type", "application/x-amz-json-1.0")
                .header("x-amz-target", target);
            for (name, value) in instructions.headers() {
                request = request.header(name, value);
            }
            let answer = request.body(body).send().await?;
            let ok = answer.status().is_success();
            let bytes = answer.bytes().await?;
            let parsed: serde_json::Value = serde_json::from_slice(&bytes)?;
            anyhow::ensure!(ok && parsed.get("ConsumedCapacity").is_some(), "{parsed}");
        }
        report(
            "PutItem (10 KB binary), lean client",
            n,
            thread_cpu_ns() - cpu,
            wall,
        );
        // The same PutItem through the adapter's lean client (aws/src/dynamo/wire.rs), built
        // as the adapter builds its writes.
        let wire = switchyard_aws::dynamo::wire::Wire::from_sdk(&sdk)?;
        let cpu = thread_cpu_ns();
        let wall = Instant::now();
        for i in 0..n {
            let item = std::collections::HashMap::from([
                ("pk".to_owned(), AttributeValue::S(format!("CALLCPU#WIRE#{i}"))),
                ("sk".to_owned(), AttributeValue::S("PAYLOAD".into())),
                ("body".to_owned(), AttributeValue::B(blob.clone())),
                ("expires_at".to_owned(), AttributeValue::N("1999999999".into())),
            ]);
            let write = switchyard_aws::dynamo::wire::Write {
                item: Some(item),
                ..Default::default()
            };
            wire.write(&table, write).await?;
        }
        report(
            "PutItem (10 KB binary), the adapter's lean client",
            n,
            thread_cpu_ns() - cpu,
            wall,
        );
        for round in 0..2 {
            let cpu = thread_cpu_ns();
            let wall = Instant::now();
            for i in 0..n {
                let body = serde_json::to_vec(&serde_json::json!({
                    "TableName": table,
                    "Key": {"pk": {"S": format!("CALLCPU#U#{round}#{i}")}, "sk": {"S": "EVENT"}},
                    "UpdateExpression": "SET #s = :s, expires_at = :e",
                    "ConditionExpression": "attribute_not_exists(pk)",
                    "ExpressionAttributeNames": {"#s": "status"},
                    "ExpressionAttributeValues": {":s": {"S": "in_progress"}, ":e": {"N": "1999999999"}},
                    "ReturnConsumedCapacity": "INDEXES",
                }))?;
                wire.call("UpdateItem", body).await?;
            }
            report(
                "UpdateItem (small, conditional), the adapter's lean client",
                n,
                thread_cpu_ns() - cpu,
                wall,
            );
        }
        Ok(())
    })
}

fn report(name: &str, n: u32, cpu: u64, wall: Instant) {
    {
        {
            println!(
                "{name}: {n} calls, {:.1} µs CPU per call, {:.2} ms wall per call",
                cpu as f64 / 1000.0 / f64::from(n),
                wall.elapsed().as_secs_f64() * 1000.0 / f64::from(n)
            );
        }
    }
}

async fn put(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    i: u32,
    blob: &Blob,
) -> anyhow::Result<()> {
    client
        .put_item()
        .table_name(table)
        .item("pk", AttributeValue::S(format!("CALLCPU#PAYLOAD#{i}")))
        .item("sk", AttributeValue::S("PAYLOAD".into()))
        .item("body", AttributeValue::B(blob.clone()))
        .item("expires_at", AttributeValue::N("1999999999".into()))
        .send()
        .await?;
    Ok(())
}
