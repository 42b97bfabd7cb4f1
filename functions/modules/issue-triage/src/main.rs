//! The issue-triage module: on issues opened, labels them by keyword rules and, when the
//! body lacks the template's sections, asks for them in one comment (never twice). GitHub
//! (`GITHUB_TOKEN`, `GITHUB_API_URL`) and Forgejo/Gitea (`FORGEJO_TOKEN`, `FORGEJO_API_URL`).

mod triage;

use serde_json::json;
use switchyard::forge::Forges;
use switchyard::module::Job;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let forges = Forges::from_vars(&switchyard::secrets::environment().await?);
    switchyard::module::run(move |job: Job| {
        let forge = forges.for_event(job.event());
        async move {
            let forge = forge?;
            let config: triage::Config = job.config_as()?;
            let issue = &job.event().payload["issue"];
            let (repo, number) = (
                job.event().repository.clone().unwrap_or_default(),
                issue["number"].as_u64().unwrap_or_default(),
            );
            let (title, body) = (
                issue["title"].as_str().unwrap_or_default(),
                issue["body"].as_str().unwrap_or_default(),
            );
            let labels = triage::labels(title, body, &config.rules);
            if !labels.is_empty() {
                let names: Vec<&str> = labels.iter().map(String::as_str).collect();
                forge.add_labels(&repo, number, &names).await?;
            }
            let missing = triage::missing_sections(body, &config.template_sections);
            let mut asked = false;
            if !missing.is_empty() {
                let comments = forge.list_comments(&repo, number).await?;
                if !comments.iter().any(|c| c.body.contains(triage::MARKER)) {
                    forge.comment(&repo, number, &triage::ask(&missing)).await?;
                    asked = true;
                }
            }
            job.log(format!("labels {labels:?}, missing sections {missing:?}"))
                .await;
            Ok(json!({ "labels": labels, "missing_sections": missing, "asked": asked }))
        }
    })
    .await
}
