//! Secrets read at cold start through the real Secrets Manager client, against a local
//! stand-in that answers `GetSecretValue` with the service's shapes (JSON 1.1 over POST,
//! `X-Amz-Target: secretsmanager.GetSecretValue`, `ResourceNotFoundException`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::{Value, json};
use switchyard::secrets::{SecretError, SecretsManager, resolve};

/// The stand-in's secrets and the ids it was asked for.
#[derive(Clone, Default)]
struct Standin {
    secrets: Arc<BTreeMap<String, String>>,
    asked: Arc<Mutex<Vec<String>>>,
}

async fn get_secret_value(
    axum::extract::State(st): axum::extract::State<Standin>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    let json_11 = [("content-type", "application/x-amz-json-1.1")];
    if headers.get("x-amz-target").and_then(|v| v.to_str().ok())
        != Some("secretsmanager.GetSecretValue")
    {
        return (
            StatusCode::BAD_REQUEST,
            json_11,
            json!({"__type": "UnknownOperationException"}).to_string(),
        )
            .into_response();
    }
    let request: Value = serde_json::from_slice(&body).unwrap_or_default();
    let id = request["SecretId"].as_str().unwrap_or_default().to_owned();
    st.asked.lock().unwrap().push(id.clone());
    match st.secrets.get(&id) {
        Some(value) => (
            StatusCode::OK,
            json_11,
            json!({
                "ARN": format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:{id}-AbCdEf"),
                "Name": id, "SecretString": value, "VersionId": "v1",
                "VersionStages": ["AWSCURRENT"], "CreatedDate": 1.7e9,
            })
            .to_string(),
        )
            .into_response(),
        None => (
            StatusCode::BAD_REQUEST,
            json_11,
            json!({"__type": "ResourceNotFoundException",
                   "message": "Secrets Manager can't find the specified secret."})
            .to_string(),
        )
            .into_response(),
    }
}

async fn standin(secrets: &[(&str, &str)]) -> (Standin, SecretsManager) {
    let st = Standin {
        secrets: Arc::new(
            secrets
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ),
        asked: Arc::default(),
    };
    let app = axum::Router::new()
        .route("/", axum::routing::post(get_secret_value))
        .with_state(st.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "local", "local", None, None, "test",
        ))
        .endpoint_url(url)
        .load()
        .await;
    (
        st,
        SecretsManager::new(switchyard::aws::secretsmanager(&sdk)),
    )
}

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test]
async fn references_resolve_with_one_call_per_secret_and_leave_no_reference_behind() {
    let bundle =
        json!({"github_webhook": "gh-secret-0123456789", "gitlab_webhook": "gl-secret-0123456789"});
    let (st, sm) = standin(&[
        ("switchyard", &bundle.to_string()),
        ("api-tokens", "ci:read:00ff"),
    ])
    .await;
    let env = resolve(
        vars(&[
            (
                "SWITCHYARD_SECRET_GITHUB_SECRET_REF",
                "switchyard:SecretString:github_webhook",
            ),
            (
                "SWITCHYARD_SECRET_GITLAB_SECRET_REF",
                "switchyard:SecretString:gitlab_webhook",
            ),
            ("SWITCHYARD_API_TOKENS_SECRET_REF", "api-tokens"),
            ("SWITCHYARD_TABLE", "t"),
        ]),
        &sm,
    )
    .await
    .unwrap();
    assert_eq!(env["SWITCHYARD_SECRET_GITHUB"], "gh-secret-0123456789");
    assert_eq!(env["SWITCHYARD_SECRET_GITLAB"], "gl-secret-0123456789");
    assert_eq!(env["SWITCHYARD_API_TOKENS"], "ci:read:00ff");
    assert_eq!(env["SWITCHYARD_TABLE"], "t");
    assert!(env.keys().all(|k| !k.ends_with("_SECRET_REF")), "{env:?}");
    let mut asked = st.asked.lock().unwrap().clone();
    asked.sort();
    assert_eq!(asked, ["api-tokens", "switchyard"], "one call per secret");
    // The resolved variables configure the router as plain ones would.
    let mut with_sources = env.clone();
    with_sources.insert(
        "SWITCHYARD_SOURCES".into(),
        "github=github,gitlab=gitlab".into(),
    );
    let config = switchyard::Config::from_vars(with_sources).unwrap();
    assert_eq!(config.sources.len(), 2);
}

#[tokio::test]
async fn a_missing_secret_or_key_fails_start_up_naming_the_variable_never_a_value() {
    let (_, sm) = standin(&[(
        "switchyard",
        r#"{"github_webhook": "hunter2-secret-value"}"#,
    )])
    .await;
    let err = resolve(vars(&[("GITHUB_TOKEN_SECRET_REF", "nope")]), &sm)
        .await
        .unwrap_err();
    assert!(matches!(err, SecretError::Fetch { .. }), "{err}");
    assert!(err.to_string().contains("GITHUB_TOKEN_SECRET_REF"), "{err}");
    let err = resolve(
        vars(&[(
            "GITHUB_TOKEN_SECRET_REF",
            "switchyard:SecretString:github_token",
        )]),
        &sm,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, SecretError::MissingKey { .. }), "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    // The value and a reference both set: ambiguous, refused.
    let err = resolve(
        vars(&[
            ("GITHUB_TOKEN", "plain"),
            (
                "GITHUB_TOKEN_SECRET_REF",
                "switchyard:SecretString:github_webhook",
            ),
        ]),
        &sm,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, SecretError::Both { .. }), "{err}");
}
