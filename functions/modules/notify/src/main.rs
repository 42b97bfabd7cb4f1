//! The notify module: formats the event into one human line, logs it, and with
//! `NOTIFY_WEBHOOK_URL` set posts `{"text": ...}` to it (Slack-compatible).

use std::time::Duration;

use anyhow::Context as _;
use serde_json::{Value, json};
use switchyard::ModuleContext;
use switchyard::event::lookup;

fn text(v: &Value, path: &str) -> Option<String> {
    lookup(v, path).and_then(switchyard::event::scalar_text)
}

/// One line about the event, e.g. `acme/widgets#1347 pull_request opened by alice: "layout: ..." https://...`.
fn format_message(ctx: &ModuleContext) -> String {
    let e = &ctx.event;
    let p = &e.payload;
    let max_title = ctx
        .config
        .get("max_title")
        .and_then(Value::as_u64)
        .unwrap_or(120) as usize;
    let title = text(p, "pull_request.title")
        .or_else(|| text(p, "issue.title"))
        .or_else(|| text(p, "object_attributes.title"));
    let url = text(p, "pull_request.html_url")
        .or_else(|| text(p, "issue.html_url"))
        .or_else(|| text(p, "object_attributes.url"));
    let who = text(p, "sender.login").or_else(|| text(p, "user.username"));
    let mut line = format!("{} {}", e.entity, e.event_type.as_str());
    if let Some(a) = &e.action {
        line.push(' ');
        line.push_str(a);
    }
    if let Some(w) = who {
        line.push_str(" by ");
        line.push_str(&w);
    }
    if let Some(t) = title {
        let t: String = if t.chars().count() > max_title {
            let cut: String = t.chars().take(max_title).collect();
            format!("{}…", cut.trim_end())
        } else {
            t
        };
        line.push_str(&format!(": \"{t}\""));
    }
    if let Some(u) = url {
        line.push(' ');
        line.push_str(&u);
    }
    line
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let webhook = std::env::var("NOTIFY_WEBHOOK_URL")
        .ok()
        .filter(|u| !u.trim().is_empty());
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    switchyard::module::run(move |ctx: ModuleContext| {
        let webhook = webhook.clone();
        let http = http.clone();
        async move {
            let message = format_message(&ctx);
            tracing::info!(job_id = %ctx.job_id, message = %message, "notify");
            if let Some(url) = webhook {
                let resp = http
                    .post(&url)
                    .json(&json!({ "text": message }))
                    .send()
                    .await
                    .context("posting to NOTIFY_WEBHOOK_URL")?;
                let status = resp.status();
                anyhow::ensure!(status.is_success(), "chat webhook answered {status}");
                return Ok(json!({ "message": message, "posted": true }));
            }
            Ok(json!({ "message": message, "posted": false }))
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_a_pull_request_in_one_line() {
        let payload: Value = serde_json::from_str(include_str!(
            "../../../../events/github-pull_request-opened.json"
        ))
        .unwrap();
        let ctx = ModuleContext {
            job_id: "j".into(),
            module: "notify".into(),
            function: "notify".into(),
            trigger: switchyard::dispatch::TriggerRef {
                kind: "webhook".into(),
                index: 0,
            },
            entity: "acme/widgets#1347".into(),
            config: json!({"max_title": 20}),
            event: switchyard::Event {
                id: "d".into(),
                source: "github".into(),
                kind: switchyard::SourceKind::Github,
                event_type: switchyard::EventType::PullRequest,
                action: Some("opened".into()),
                entity: "acme/widgets#1347".into(),
                repository: Some("acme/widgets".into()),
                received_at: time_now(),
                body_sha256: String::new(),
                payload,
            },
        };
        let line = format_message(&ctx);
        assert_eq!(
            line,
            "acme/widgets#1347 pull_request opened by alice: \"layout: incremental…\" https://github.com/acme/widgets/pull/1347"
        );
        assert!(!line.contains('\n'));
    }

    fn time_now() -> time::OffsetDateTime {
        time::OffsetDateTime::UNIX_EPOCH
    }
}
