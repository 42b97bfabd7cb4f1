//! The pr-review module: on pull requests opened, reopened or updated, it sizes the change,
//! checks the description, the linked issue and sensitive paths, keeps one sticky comment
//! up to date and one `size/*` label. GitHub (`GITHUB_TOKEN`, `GITHUB_API_URL`) and
//! Forgejo/Gitea (`FORGEJO_TOKEN`, `FORGEJO_API_URL`).

mod review;

use serde_json::{Value, json};
use switchyard::forge::{ForgeClient, Forges};
use switchyard::module::Job;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let forges = Forges::from_vars(&switchyard::secrets::environment().await?);
    switchyard::module::run(move |job: Job| {
        let forge = forges.for_event(job.event());
        async move { handle(&job, &forge?).await }
    })
    .await
}

/// The label names a pull request carries.
fn labels(pr: &Value) -> Vec<String> {
    let names = pr["labels"].as_array().into_iter().flatten();
    names
        .filter_map(|l| l["name"].as_str().map(str::to_owned))
        .collect()
}

/// Reviews the job's pull request: one sticky comment, one size label.
async fn handle(job: &Job, forge: &ForgeClient) -> anyhow::Result<Value> {
    let config: review::Config = job.config_as()?;
    let pr = &job.event().payload["pull_request"];
    let repo = job.event().repository.clone().unwrap_or_default();
    let number = pr["number"].as_u64().unwrap_or_default();
    let files = forge.pr_files(&repo, number).await?;
    let r = review::review(pr, &files, &config);
    let summary = format!("{} files, {} lines: size {}", r.files, r.lines, r.size);
    job.log(summary).await;
    let body = review::comment(&r);
    let comments = forge.list_comments(&repo, number).await?;
    let comment_id = match comments.iter().find(|c| c.body.contains(review::MARKER)) {
        Some(c) => forge.update_comment(&repo, c.id, &body).await?.id,
        None => forge.comment(&repo, number, &body).await?.id,
    };
    let (remove, add) = review::label_changes(&labels(pr), r.size);
    for label in &remove {
        forge.remove_label(&repo, number, label).await?;
    }
    if let Some(label) = &add {
        forge.add_labels(&repo, number, &[label]).await?;
    }
    Ok(json!({
        "size": r.size, "lines": r.lines, "comment_id": comment_id, "removed": remove, "added": add,
    }))
}
