//! Commands that talk to the HTTP API (`--api URL --token T`, or `SWITCHYARD_API_URL` and
//! `SWITCHYARD_API_TOKEN`): invoke, jobs, events, replay and the registry.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

/// Where the API is and who is calling.
#[derive(Args, Debug, Clone)]
pub struct ApiArgs {
    /// The API's base URL, e.g. https://abc.execute-api.eu-west-1.amazonaws.com.
    #[arg(long = "api", env = "SWITCHYARD_API_URL")]
    pub url: String,
    /// A bearer token (`switchyard token new`). Prefer the environment over the flag.
    #[arg(long, env = "SWITCHYARD_API_TOKEN", hide_env_values = true)]
    pub token: String,
}

/// `switchyard jobs ...`.
#[derive(Subcommand, Debug)]
pub enum JobsCommand {
    /// List jobs, newest first.
    List {
        #[command(flatten)]
        api: ApiArgs,
        /// Only this module's jobs.
        #[arg(long)]
        module: Option<String>,
        /// Only jobs in this status (queued, running, succeeded, failed, cancelled).
        #[arg(long)]
        status: Option<String>,
        /// Page size (1-200).
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Follow the cursors to the end.
        #[arg(long)]
        all: bool,
    },
    /// Print one job.
    Get {
        #[command(flatten)]
        api: ApiArgs,
        /// The job id.
        id: String,
    },
    /// Cancel a queued or running job.
    Cancel {
        #[command(flatten)]
        api: ApiArgs,
        /// The job id.
        id: String,
    },
}

/// `switchyard events ...`.
#[derive(Subcommand, Debug)]
pub enum EventsCommand {
    /// List events, newest first.
    List {
        #[command(flatten)]
        api: ApiArgs,
        /// Only this source.
        #[arg(long)]
        source: Option<String>,
        /// Only this event type.
        #[arg(long = "type")]
        event_type: Option<String>,
        /// Only this status (in_progress, completed, failed).
        #[arg(long)]
        status: Option<String>,
        /// Nothing received before this RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// Page size (1-200).
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Follow the cursors to the end.
        #[arg(long)]
        all: bool,
    },
    /// Print one event: what matched, what was skipped and why, its jobs.
    Get {
        #[command(flatten)]
        api: ApiArgs,
        /// `<source>:<delivery id>`.
        id: String,
    },
}

/// `switchyard registry ...`.
#[derive(Subcommand, Debug)]
pub enum RegistryCommand {
    /// Publish the manifests in DIR (`*/module.yaml`, or `*.yaml`, `*.yml`, `*.json`).
    Push {
        #[command(flatten)]
        api: ApiArgs,
        /// Directory of manifests.
        dir: std::path::PathBuf,
    },
    /// List published versions.
    Versions {
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Publish an old version's manifests again, as a new version.
    Rollback {
        #[command(flatten)]
        api: ApiArgs,
        /// The version to restore.
        version: u64,
    },
}

/// Reads a bundle from a directory: `*/module.yaml` by directory name, else the directory's
/// `*.yaml`, `*.yml` and `*.json` files by file name.
pub fn bundle_from_dir(dir: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let manifest = path.join("module.yaml");
        if manifest.is_file() {
            out.insert(
                format!("{name}/module.yaml"),
                std::fs::read_to_string(&manifest)
                    .with_context(|| format!("reading {}", manifest.display()))?,
            );
        } else if path.is_file()
            && [".yaml", ".yml", ".json"]
                .iter()
                .any(|ext| name.ends_with(ext))
        {
            out.insert(
                name,
                std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?,
            );
        }
    }
    if out.is_empty() {
        bail!("no manifests in {}", dir.display());
    }
    Ok(out)
}

/// One call: the status and the JSON body (or the text, as a JSON string).
pub(crate) async fn call(
    api: &ApiArgs,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
    headers: &[(&str, String)],
) -> anyhow::Result<(u16, Value)> {
    let client = switchyard::tls::http_client()
        .timeout(std::time::Duration::from_secs(60))
        .build()?;
    let url = format!("{}{path}", api.url.trim_end_matches('/'));
    let mut req = client
        .request(method, &url)
        .bearer_auth(&api.token)
        .header("accept", "application/json");
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.with_context(|| format!("calling {url}"))?;
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((status, value))
}

/// Prints the answer; an error status prints the error's words and fails.
fn print(status: u16, body: &Value) -> anyhow::Result<()> {
    if (200..300).contains(&status) {
        println!("{}", serde_json::to_string_pretty(body)?);
        Ok(())
    } else {
        let code = body["code"].as_str().unwrap_or("error");
        let message = body["message"].as_str().unwrap_or_default();
        bail!("HTTP {status} {code}: {message}")
    }
}

fn query(pairs: &[(&str, Option<String>)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if let Some(v) = v {
            q.append_pair(k, v);
        }
    }
    let q = q.finish();
    if q.is_empty() { q } else { format!("?{q}") }
}

/// Lists a resource page by page; with `all`, follows cursors and prints one array.
async fn list(
    api: &ApiArgs,
    path: &str,
    pairs: Vec<(&str, Option<String>)>,
    all: bool,
) -> anyhow::Result<()> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut p = pairs.clone();
        p.push(("cursor", cursor.clone()));
        let (status, body) = call(
            api,
            reqwest::Method::GET,
            &format!("{path}{}", query(&p)),
            None,
            &[],
        )
        .await?;
        if !all || !(200..300).contains(&status) {
            return print(status, &body);
        }
        items.extend(body["items"].as_array().cloned().unwrap_or_default());
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    println!("{}", serde_json::to_string_pretty(&Value::Array(items))?);
    Ok(())
}

/// One call without a body, its answer printed.
async fn show(api: &ApiArgs, method: reqwest::Method, path: &str) -> anyhow::Result<()> {
    let (status, body) = call(api, method, path, None, &[]).await?;
    print(status, &body)
}

/// Parses `JSON`, or reads `@FILE`.
pub fn json_arg(text: &str) -> anyhow::Result<Value> {
    let text = match text.strip_prefix('@') {
        Some(file) => std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?,
        None => text.to_owned(),
    };
    serde_json::from_str(&text).context("not valid JSON")
}

/// `switchyard invoke`.
pub async fn invoke(
    api: &ApiArgs,
    module: &str,
    payload: Option<&str>,
    entity: Option<String>,
    config: Option<&str>,
    key: Option<String>,
) -> anyhow::Result<()> {
    let mut body = json!({});
    if let Some(p) = payload {
        body["payload"] = json_arg(p)?;
    }
    if let Some(c) = config {
        body["config"] = json_arg(c)?;
    }
    if let Some(e) = entity {
        body["entity"] = Value::String(e);
    }
    let headers: Vec<(&str, String)> = key.map(|k| ("idempotency-key", k)).into_iter().collect();
    let path = format!("/modules/{}/invoke", encode(module));
    let (status, answer) = call(api, reqwest::Method::POST, &path, Some(body), &headers).await?;
    print(status, &answer)
}

/// Percent-encodes a path segment (unreserved characters and `:` stay as they are).
fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b':' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `switchyard jobs`.
pub async fn jobs(command: JobsCommand) -> anyhow::Result<()> {
    match command {
        JobsCommand::List {
            api,
            module,
            status,
            limit,
            all,
        } => {
            list(
                &api,
                "/jobs",
                vec![
                    ("module", module),
                    ("status", status),
                    ("limit", Some(limit.to_string())),
                ],
                all,
            )
            .await
        }
        JobsCommand::Get { api, id } => {
            show(
                &api,
                reqwest::Method::GET,
                &format!("/jobs/{}", encode(&id)),
            )
            .await
        }
        JobsCommand::Cancel { api, id } => {
            show(
                &api,
                reqwest::Method::POST,
                &format!("/jobs/{}/cancel", encode(&id)),
            )
            .await
        }
    }
}

/// `switchyard events`.
pub async fn events(command: EventsCommand) -> anyhow::Result<()> {
    match command {
        EventsCommand::List {
            api,
            source,
            event_type,
            status,
            since,
            limit,
            all,
        } => {
            list(
                &api,
                "/events",
                vec![
                    ("source", source),
                    ("type", event_type),
                    ("status", status),
                    ("since", since),
                    ("limit", Some(limit.to_string())),
                ],
                all,
            )
            .await
        }
        EventsCommand::Get { api, id } => {
            show(
                &api,
                reqwest::Method::GET,
                &format!("/events/{}", encode(&id)),
            )
            .await
        }
    }
}

/// `switchyard replay`.
pub async fn replay(api: &ApiArgs, id: &str, dry_run: bool, force: bool) -> anyhow::Result<()> {
    let q = query(&[
        ("dry_run", dry_run.then(|| "true".to_owned())),
        ("force", force.then(|| "true".to_owned())),
    ]);
    show(
        api,
        reqwest::Method::POST,
        &format!("/events/{}/replay{q}", encode(id)),
    )
    .await
}

/// `switchyard registry`.
pub async fn registry(command: RegistryCommand) -> anyhow::Result<()> {
    match command {
        RegistryCommand::Push { api, dir } => {
            let manifests = bundle_from_dir(&dir)?;
            let (s, b) = call(
                &api,
                reqwest::Method::POST,
                "/admin/registry",
                Some(json!({ "manifests": manifests })),
                &[],
            )
            .await?;
            print(s, &b)?;
            if b["failed"].as_array().is_some_and(|f| !f.is_empty()) {
                bail!("some manifests were refused (their previous versions stay active)");
            }
            Ok(())
        }
        RegistryCommand::Versions { api } => {
            show(&api, reqwest::Method::GET, "/admin/registry/versions").await
        }
        RegistryCommand::Rollback { api, version } => {
            show(
                &api,
                reqwest::Method::POST,
                &format!("/admin/registry/rollback/{version}"),
            )
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundles_read_module_dirs_and_loose_files() {
        let dir = std::env::temp_dir().join(format!("sy-bundle-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(dir.join("a")).unwrap();
        std::fs::write(dir.join("a/module.yaml"), "name: a").unwrap();
        std::fs::write(dir.join("b.json"), "{}").unwrap();
        std::fs::write(dir.join("notes.txt"), "x").unwrap();
        let b = bundle_from_dir(&dir).unwrap();
        assert_eq!(b.keys().collect::<Vec<_>>(), ["a/module.yaml", "b.json"]);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(bundle_from_dir(&dir).is_err());
    }

    #[test]
    fn queries_skip_absent_values_and_encode() {
        assert_eq!(query(&[("a", None)]), "");
        assert_eq!(query(&[("a", Some("x y".into())), ("b", None)]), "?a=x+y");
        assert_eq!(encode("github:d 1/2"), "github:d%201%2F2");
    }
}
