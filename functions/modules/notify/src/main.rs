//! The notify module: formats the event into one human line, logs it, and with
//! `NOTIFY_WEBHOOK_URL` set posts `{"text": ...}` to it (Slack-compatible; Mattermost and
//! Discord's `/slack` endpoint accept the same body). It is also the fallback module for
//! events no module claims, and where the SDK sends crash notifications.

mod format;

use format::format_message;

use std::time::Duration;

use serde_json::{Value, json};
use switchyard::ModuleContext;

/// Handles one job: logs the line, posts it when a chat webhook is configured.
async fn notify(
    ctx: ModuleContext,
    webhook: Option<&str>,
    http: &reqwest::Client,
) -> anyhow::Result<Value> {
    let message = format_message(&ctx);
    tracing::info!(job_id = %ctx.job_id, message = %message, "notify");
    let Some(url) = webhook else {
        return Ok(json!({ "message": message, "posted": false }));
    };
    // The URL is a secret (it authorizes posting): it never goes into errors or logs.
    let resp = http
        .post(url)
        .json(&json!({ "text": message }))
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("posting to the chat webhook failed: {}", e.without_url()))?;
    let status = resp.status();
    anyhow::ensure!(status.is_success(), "chat webhook answered {status}");
    Ok(json!({ "message": message, "posted": true }))
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let webhook = switchyard::secrets::environment()
        .await?
        .remove("NOTIFY_WEBHOOK_URL")
        .filter(|u| !u.trim().is_empty());
    let http = switchyard::tls::http_client()
        .timeout(Duration::from_secs(10))
        .build()?;
    switchyard::module::run(move |job: switchyard::module::Job| {
        let webhook = webhook.clone();
        let http = http.clone();
        async move { notify(job.context().clone(), webhook.as_deref(), &http).await }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn context(max_title: u64) -> ModuleContext {
        let payload: Value = serde_json::from_str(include_str!(
            "../../../../events/github-pull_request-opened.json"
        ))
        .unwrap();
        ModuleContext {
            job_id: "j".into(),
            module: "notify".into(),
            function: "notify".into(),
            trigger: switchyard::dispatch::TriggerRef {
                kind: "webhook".into(),
                index: 0,
            },
            entity: "acme/widgets#1347".into(),
            config: json!({"max_title": max_title}),
            payload_ref: None,
            report: false,
            event: std::sync::Arc::new(switchyard::Event {
                id: "d".into(),
                source: "github".into(),
                kind: switchyard::SourceKind::Github,
                event_type: switchyard::EventType::PullRequest,
                action: Some("opened".into()),
                entity: "acme/widgets#1347".into(),
                repository: Some("acme/widgets".into()),
                received_at: time_now(),
                body_digest: String::new(),
                git_ref: None,
                changed_paths: None,
                changed_paths_truncated: false,
                changed_paths_unknown: None,
                sender: None,
                payload: payload.into(),
            }),
        }
    }

    #[test]
    fn formats_a_crash_notification() {
        let mut ctx = context(20);
        ctx.trigger.kind = "crash".into();
        ctx.config = json!({"crash": {"module": "pr-review", "job_id": "j9", "error": "panicked: index out of bounds"}});
        assert_eq!(
            format_message(&ctx),
            "module pr-review crashed on job j9 (pull_request acme/widgets#1347): panicked: index out of bounds"
        );
    }

    fn time_now() -> time::OffsetDateTime {
        time::OffsetDateTime::UNIX_EPOCH
    }

    /// A local stand-in for a Slack incoming webhook: records bodies, answers `status`.
    async fn chat_server(status: u16) -> (String, Arc<Mutex<Vec<Value>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let app = axum::Router::new().route(
            "/services/T000/B000/XXXX",
            axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
                let record = record.clone();
                async move {
                    record.lock().unwrap().push(body);
                    let code = axum::http::StatusCode::from_u16(status).unwrap();
                    (code, if status == 200 { "ok" } else { "invalid_token" })
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (format!("http://{addr}/services/T000/B000/XXXX"), seen)
    }

    #[tokio::test]
    async fn posts_the_line_as_slack_text() {
        let (url, seen) = chat_server(200).await;
        let out = notify(
            context(120),
            Some(&url),
            &switchyard::tls::http_client().build().unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(out["posted"], true);
        let bodies = seen.lock().unwrap().clone();
        assert_eq!(bodies.len(), 1);
        assert_eq!(bodies[0]["text"], out["message"]);
        assert!(
            bodies[0]["text"]
                .as_str()
                .unwrap()
                .contains("acme/widgets#1347")
        );
    }

    #[tokio::test]
    async fn a_refusing_chat_webhook_fails_the_job_without_leaking_its_url() {
        let (url, _) = chat_server(403).await;
        let err = notify(
            context(120),
            Some(&url),
            &switchyard::tls::http_client().build().unwrap(),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("403"), "{err}");
        let dead = format!("http://127.0.0.1:{}/services/T000/B000/SECRETPART", {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        });
        let err = notify(
            context(120),
            Some(&dead),
            &switchyard::tls::http_client().build().unwrap(),
        )
        .await
        .unwrap_err();
        assert!(!format!("{err:#}").contains("SECRETPART"), "{err:#}");
    }
}
