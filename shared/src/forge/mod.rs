//! The forge client: what modules need on GitHub and on Forgejo/Gitea (comment, update a
//! comment, list comments, add and remove labels, read a pull request's files), over
//! `reqwest` with rustls. Tokens come from the environment and never reach logs or errors.
//! Rate limits (429, or 403 with `x-ratelimit-remaining: 0`) and 5xx are retried with
//! backoff; 401, 403 and 404 are clear errors.

pub mod app;
mod error;

use std::sync::Arc;
use std::time::Duration;

use std::collections::BTreeMap;

use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use app::GithubApp;

/// Which API dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForgeKind {
    /// GitHub REST v3 (`https://api.github.com`).
    Github,
    /// Forgejo and Gitea (`https://<host>/api/v1`).
    Forgejo,
}

pub use error::{ForgeError, ReportError};

/// An issue or pull request comment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    /// Comment id.
    pub id: u64,
    /// Markdown body.
    #[serde(default)]
    pub body: String,
    /// Author.
    #[serde(default)]
    pub user: Option<User>,
}

/// A forge user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Login.
    pub login: String,
}

/// A file changed by a pull request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrFile {
    /// Path.
    pub filename: String,
    /// `added`, `modified`, `removed`, `renamed`, ...
    #[serde(default)]
    pub status: String,
    /// Lines added.
    #[serde(default)]
    pub additions: u64,
    /// Lines removed.
    #[serde(default)]
    pub deletions: u64,
    /// The old path of a renamed file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_filename: Option<String>,
}

#[derive(Deserialize)]
struct Label {
    id: u64,
    name: String,
}

/// A client for one forge, built once per function.
#[derive(Clone)]
pub struct ForgeClient {
    http: reqwest::Client,
    kind: ForgeKind,
    base: String,
    credential: Credential,
    max_attempts: u32,
    backoff: Duration,
    max_wait: Duration,
}

impl std::fmt::Debug for ForgeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForgeClient")
            .field("kind", &self.kind)
            .field("base", &self.base)
            .field(
                "credential",
                &match &self.credential {
                    Credential::Token(_) => "token [REDACTED]".to_owned(),
                    Credential::App { app, installation } => {
                        format!("GitHub App {} installation {installation}", app.app_id())
                    }
                },
            )
            .finish_non_exhaustive()
    }
}

/// What a client authenticates with.
#[derive(Clone)]
enum Credential {
    /// A personal (or Forgejo/Gitea) token.
    Token(SecretString),
    /// A GitHub App acting as one installation.
    App {
        app: Arc<GithubApp>,
        installation: u64,
    },
}

const PER_PAGE: usize = 50;
const MAX_PAGES: usize = 20;

impl ForgeClient {
    /// A client for `base` (e.g. `https://api.github.com`, `https://forge.example.org/api/v1`).
    pub fn new(kind: ForgeKind, base: impl Into<String>, token: SecretString) -> Self {
        let http = crate::tls::http_client()
            .timeout(Duration::from_secs(15))
            .user_agent("switchyard")
            .build()
            .unwrap_or_default();
        Self {
            http,
            kind,
            base: base.into().trim_end_matches('/').to_owned(),
            credential: Credential::Token(token),
            max_attempts: 4,
            backoff: Duration::from_millis(500),
            max_wait: Duration::from_secs(60),
        }
    }

    /// GitHub from `GITHUB_TOKEN` (and `GITHUB_API_URL`, default `https://api.github.com`);
    /// Forgejo/Gitea from `FORGEJO_TOKEN` and `FORGEJO_API_URL`.
    pub fn from_env(kind: ForgeKind) -> Result<Self, ForgeError> {
        Self::from_vars(kind, &std::env::vars().collect())
    }

    /// As [`ForgeClient::from_env`], from `vars` (the environment with its secret references
    /// resolved: [`crate::secrets::environment`]).
    pub fn from_vars(
        kind: ForgeKind,
        vars: &std::collections::BTreeMap<String, String>,
    ) -> Result<Self, ForgeError> {
        let var = |name: &str| vars.get(name).filter(|v| !v.trim().is_empty()).cloned();
        let (token_var, url_var, default) = match kind {
            ForgeKind::Github => (
                "GITHUB_TOKEN",
                "GITHUB_API_URL",
                Some("https://api.github.com"),
            ),
            ForgeKind::Forgejo => ("FORGEJO_TOKEN", "FORGEJO_API_URL", None),
        };
        let token = var(token_var).ok_or_else(|| ForgeError::Config(token_var.into()))?;
        let base = var(url_var)
            .or(default.map(str::to_owned))
            .ok_or_else(|| ForgeError::Config(url_var.into()))?;
        Ok(Self::new(kind, base, SecretString::from(token)))
    }

    /// Retry settings: attempts, first backoff, longest wait for a rate-limit reset.
    pub fn with_retries(
        mut self,
        max_attempts: u32,
        backoff: Duration,
        max_wait: Duration,
    ) -> Self {
        self.max_attempts = max_attempts.max(1);
        self.backoff = backoff;
        self.max_wait = max_wait;
        self
    }

    /// This client acting as `installation` of `app` (GitHub only): each call carries the
    /// installation's token, minted and cached by `app`.
    pub fn as_installation(mut self, app: Arc<GithubApp>, installation: u64) -> Self {
        self.credential = Credential::App { app, installation };
        self
    }

    /// The GitHub App installation this client acts as, if it does.
    pub fn installation(&self) -> Option<u64> {
        match &self.credential {
            Credential::App { installation, .. } => Some(*installation),
            Credential::Token(_) => None,
        }
    }

    async fn auth(&self) -> Result<String, ForgeError> {
        let token = match &self.credential {
            Credential::Token(t) => t.clone(),
            Credential::App { app, installation } => app.token(*installation).await?,
        };
        Ok(match self.kind {
            ForgeKind::Github => format!("Bearer {}", token.expose_secret()),
            ForgeKind::Forgejo => format!("token {}", token.expose_secret()),
        })
    }

    /// How long a rate-limited answer asks to wait, if it is one.
    fn rate_limit_wait(
        &self,
        status: StatusCode,
        headers: &reqwest::header::HeaderMap,
    ) -> Option<Duration> {
        let get = |n: &str| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let exhausted = get("x-ratelimit-remaining") == Some(0);
        if status != StatusCode::TOO_MANY_REQUESTS
            && !(status == StatusCode::FORBIDDEN && (exhausted || get("retry-after").is_some()))
        {
            return None;
        }
        let wait = if let Some(secs) = get("retry-after") {
            Duration::from_secs(secs)
        } else if let Some(reset) = get("x-ratelimit-reset") {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs();
            Duration::from_secs(reset.saturating_sub(now).max(1))
        } else {
            self.backoff
        };
        Some(wait.min(self.max_wait))
    }

    /// One API call with retries; `Ok(None)` for an empty body.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(Option<Value>, reqwest::header::HeaderMap), ForgeError> {
        let url = format!("{}{path}", self.base);
        let m = method.to_string();
        let mut last = String::new();
        // An installation token refused with 401 (revoked, or expired early) is dropped and
        // minted again, once.
        let mut refreshed = false;
        let mut attempt = 0;
        while attempt < self.max_attempts {
            attempt += 1;
            let mut req = self
                .http
                .request(method.clone(), &url)
                .header("authorization", self.auth().await?)
                .header("accept", "application/json");
            if self.kind == ForgeKind::Github {
                req = req
                    .header("accept", "application/vnd.github+json")
                    .header("x-github-api-version", "2022-11-28");
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            let wait = match req.send().await {
                Err(e) => {
                    last = e.without_url().to_string();
                    self.backoff * 2u32.saturating_pow(attempt - 1)
                }
                Ok(resp) => {
                    let status = resp.status();
                    let headers = resp.headers().clone();
                    if let Some(wait) = self.rate_limit_wait(status, &headers) {
                        last = format!("rate limited ({status})");
                        wait
                    } else if status.is_server_error() {
                        last = format!("{status}");
                        self.backoff * 2u32.saturating_pow(attempt - 1)
                    } else {
                        let text = resp.text().await.unwrap_or_default();
                        let message = || {
                            serde_json::from_str::<Value>(&text)
                                .ok()
                                .and_then(|v| {
                                    v.get("message").and_then(Value::as_str).map(str::to_owned)
                                })
                                .unwrap_or_else(|| crate::store::bounded(&text, 200))
                        };
                        if let (401, Credential::App { app, installation }, false) =
                            (status.as_u16(), &self.credential, refreshed)
                        {
                            app.forget(*installation).await;
                            refreshed = true;
                            attempt -= 1;
                            continue;
                        }
                        let path = path.to_owned();
                        return match status.as_u16() {
                            200..=299 if text.trim().is_empty() => Ok((None, headers)),
                            200..=299 => serde_json::from_str(&text)
                                .map(|v| (Some(v), headers))
                                .map_err(|e| ForgeError::Decode {
                                    method: m,
                                    path,
                                    reason: e.to_string(),
                                }),
                            401 => Err(ForgeError::Unauthorized { method: m, path }),
                            403 => Err(ForgeError::Forbidden {
                                method: m,
                                path,
                                message: message(),
                            }),
                            404 => Err(ForgeError::NotFound { method: m, path }),
                            s => Err(ForgeError::Rejected {
                                method: m,
                                path,
                                status: s,
                                message: message(),
                            }),
                        };
                    }
                }
            };
            if attempt < self.max_attempts {
                tracing::warn!(method = %m, path, attempt, wait_ms = wait.as_millis() as u64, reason = %last, "forge call retried");
                tokio::time::sleep(wait).await;
            }
        }
        Err(ForgeError::GaveUp {
            method: m,
            path: path.to_owned(),
            attempts: self.max_attempts,
            last,
        })
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T, ForgeError> {
        let (value, _) = self.call(method.clone(), path, body).await?;
        serde_json::from_value(value.unwrap_or(Value::Null)).map_err(|e| ForgeError::Decode {
            method: method.to_string(),
            path: path.to_owned(),
            reason: e.to_string(),
        })
    }

    async fn pages<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<Vec<T>, ForgeError> {
        let size = match self.kind {
            ForgeKind::Github => "per_page",
            ForgeKind::Forgejo => "limit",
        };
        let mut out = Vec::new();
        for page in 1..=MAX_PAGES {
            let sep = if path.contains('?') { '&' } else { '?' };
            let items: Vec<T> = self
                .json(
                    Method::GET,
                    &format!("{path}{sep}{size}={PER_PAGE}&page={page}"),
                    None,
                )
                .await?;
            let n = items.len();
            out.extend(items);
            if n < PER_PAGE {
                break;
            }
        }
        Ok(out)
    }

    /// Comments on issue or pull request `number` of `repo` (`owner/name`).
    pub async fn list_comments(&self, repo: &str, number: u64) -> Result<Vec<Comment>, ForgeError> {
        self.pages(&format!("/repos/{repo}/issues/{number}/comments"))
            .await
    }

    /// Adds a comment.
    pub async fn comment(
        &self,
        repo: &str,
        number: u64,
        body: &str,
    ) -> Result<Comment, ForgeError> {
        self.json(
            Method::POST,
            &format!("/repos/{repo}/issues/{number}/comments"),
            Some(&json!({ "body": body })),
        )
        .await
    }

    /// Replaces a comment's body.
    pub async fn update_comment(
        &self,
        repo: &str,
        comment_id: u64,
        body: &str,
    ) -> Result<Comment, ForgeError> {
        self.json(
            Method::PATCH,
            &format!("/repos/{repo}/issues/comments/{comment_id}"),
            Some(&json!({ "body": body })),
        )
        .await
    }

    /// Adds labels by name (existing labels of the repository).
    pub async fn add_labels(
        &self,
        repo: &str,
        number: u64,
        labels: &[&str],
    ) -> Result<(), ForgeError> {
        self.call(
            Method::POST,
            &format!("/repos/{repo}/issues/{number}/labels"),
            Some(&json!({ "labels": labels })),
        )
        .await
        .map(|_| ())
    }

    /// The names of the labels on issue or pull request `number`.
    pub async fn labels(&self, repo: &str, number: u64) -> Result<Vec<String>, ForgeError> {
        let labels: Vec<Label> = self
            .json(
                Method::GET,
                &format!("/repos/{repo}/issues/{number}/labels"),
                None,
            )
            .await?;
        Ok(labels.into_iter().map(|l| l.name).collect())
    }

    /// Removes a label by name; a label that is not there is not an error.
    pub async fn remove_label(
        &self,
        repo: &str,
        number: u64,
        label: &str,
    ) -> Result<(), ForgeError> {
        let path = match self.kind {
            ForgeKind::Github => format!(
                "/repos/{repo}/issues/{number}/labels/{}",
                encode_segment(label)
            ),
            // Forgejo and Gitea remove by label id.
            ForgeKind::Forgejo => {
                let labels: Vec<Label> = self
                    .json(
                        Method::GET,
                        &format!("/repos/{repo}/issues/{number}/labels"),
                        None,
                    )
                    .await?;
                match labels.iter().find(|l| l.name == label) {
                    Some(l) => format!("/repos/{repo}/issues/{number}/labels/{}", l.id),
                    None => return Ok(()),
                }
            }
        };
        match self.call(Method::DELETE, &path, None).await {
            Ok(_) | Err(ForgeError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The files a pull request changes (every page).
    pub async fn pr_files(&self, repo: &str, number: u64) -> Result<Vec<PrFile>, ForgeError> {
        self.pages(&format!("/repos/{repo}/pulls/{number}/files"))
            .await
    }
}

/// Whether `repo` is an `owner/name` a forge allows (letters, digits, `-`, `_`, `.`, no
/// `..`): a payload's repository goes into API paths that carry our token.
pub fn valid_repo(repo: &str) -> bool {
    let ok = |part: &str| {
        !part.is_empty()
            && part.len() <= 100
            && part != "."
            && part != ".."
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    matches!(repo.split_once('/'), Some((owner, name)) if ok(owner) && ok(name))
}

/// GitHub lists at most this many files of a pull request.
pub const MAX_PR_FILES: usize = 3000;

/// The `rel="next"` URL of a `Link` header, if any.
fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    let link = headers.get("link")?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim() == "rel=\"next\"")
            .then(|| {
                url.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_owned()
            })
    })
}

impl ForgeClient {
    /// The paths a pull request changes (renames list both names), following the `Link`
    /// header's `next` pages, 100 files a page. More than `max` files is an error. A next
    /// page on another host than this client's API is refused: the token goes only there.
    pub async fn pr_file_names(
        &self,
        repo: &str,
        number: u64,
        max: usize,
    ) -> Result<Vec<String>, ForgeError> {
        let size = match self.kind {
            ForgeKind::Github => "per_page",
            ForgeKind::Forgejo => "limit",
        };
        let mut path = format!("/repos/{repo}/pulls/{number}/files?{size}=100");
        let mut out = Vec::new();
        // Bounded by `max`: every page but the last holds at least one file.
        loop {
            let (value, headers) = self.call(Method::GET, &path, None).await?;
            let files: Vec<PrFile> =
                serde_json::from_value(value.unwrap_or(Value::Null)).map_err(|e| {
                    ForgeError::Decode {
                        method: "GET".into(),
                        path: path.clone(),
                        reason: e.to_string(),
                    }
                })?;
            let empty = files.is_empty();
            for f in files {
                if let Some(old) = f.previous_filename {
                    out.push(old);
                }
                out.push(f.filename);
            }
            if out.len() > max {
                return Err(ForgeError::Rejected {
                    method: "GET".into(),
                    path,
                    status: 200,
                    message: format!("more than {max} files"),
                });
            }
            match next_link(&headers) {
                Some(next) if !empty => match next.strip_prefix(&self.base) {
                    Some(rest) if rest.starts_with('/') => path = rest.to_owned(),
                    _ => {
                        return Err(ForgeError::Decode {
                            method: "GET".into(),
                            path,
                            reason: "the next page is on another host".into(),
                        });
                    }
                },
                _ => return Ok(out),
            }
        }
    }
}

pub use switchyard_core::report::JobPhase;

/// The commit a job's status belongs on: a pull request's head, a push's `after`, a check
/// suite's head.
pub fn head_sha(event: &crate::Event) -> Option<String> {
    let v = event.payload.value();
    [
        "/pull_request/head/sha",
        "/after",
        "/check_suite/head_sha",
        "/check_run/head_sha",
    ]
    .iter()
    .find_map(|p| v.pointer(p).and_then(Value::as_str))
    .filter(|s| {
        s.len() >= 7 && s.bytes().all(|b| b.is_ascii_hexdigit()) && s.bytes().any(|b| b != b'0')
    })
    .map(str::to_owned)
}

#[derive(Deserialize)]
struct CheckRuns {
    #[serde(default)]
    check_runs: Vec<CheckRun>,
}

#[derive(Deserialize)]
struct CheckRun {
    id: u64,
    #[serde(default)]
    external_id: Option<String>,
}

impl ForgeClient {
    /// The check run of `job_id` (its `external_id`) named `name` on `sha`, if there is one.
    async fn find_check_run(
        &self,
        repo: &str,
        sha: &str,
        name: &str,
        job_id: &str,
    ) -> Result<Option<u64>, ForgeError> {
        let runs: CheckRuns = self
            .json(
                Method::GET,
                &format!(
                    "/repos/{repo}/commits/{sha}/check-runs?check_name={}&filter=all&per_page=100",
                    encode_segment(name)
                ),
                None,
            )
            .await?;
        Ok(runs
            .check_runs
            .into_iter()
            .find(|r| r.external_id.as_deref() == Some(job_id))
            .map(|r| r.id))
    }

    /// Shows `job_id` of `module` at `phase` on commit `sha`: a check run named after the
    /// module on GitHub (created when queued, updated after), a commit status with the
    /// context `switchyard/<module>` on Forgejo/Gitea. `details` links to the job.
    pub async fn report_job(
        &self,
        repo: &str,
        sha: &str,
        module: &str,
        job_id: &str,
        phase: &JobPhase,
        details: Option<&str>,
    ) -> Result<(), ForgeError> {
        let summary = match phase {
            JobPhase::Queued => "Queued".to_owned(),
            JobPhase::InProgress => "Running".to_owned(),
            JobPhase::Completed { summary, .. } => crate::store::bounded(summary, 4000),
        };
        match self.kind {
            ForgeKind::Github => {
                let mut body = json!({
                    "name": module,
                    "head_sha": sha,
                    "external_id": job_id,
                    "output": {"title": format!("{module}: {}", match phase {
                        JobPhase::Queued => "queued",
                        JobPhase::InProgress => "running",
                        JobPhase::Completed { conclusion, .. } => conclusion,
                    }), "summary": summary},
                });
                match phase {
                    JobPhase::Queued => body["status"] = "queued".into(),
                    JobPhase::InProgress => body["status"] = "in_progress".into(),
                    JobPhase::Completed { conclusion, .. } => {
                        body["status"] = "completed".into();
                        body["conclusion"] = (*conclusion).into();
                    }
                }
                if let Some(url) = details {
                    body["details_url"] = url.into();
                }
                let existing = match phase {
                    JobPhase::Queued => None,
                    _ => self.find_check_run(repo, sha, module, job_id).await?,
                };
                match existing {
                    Some(id) => {
                        self.call(
                            Method::PATCH,
                            &format!("/repos/{repo}/check-runs/{id}"),
                            Some(&body),
                        )
                        .await?;
                    }
                    None => {
                        self.call(
                            Method::POST,
                            &format!("/repos/{repo}/check-runs"),
                            Some(&body),
                        )
                        .await?;
                    }
                }
            }
            ForgeKind::Forgejo => {
                let state = match phase {
                    JobPhase::Queued | JobPhase::InProgress => "pending",
                    JobPhase::Completed {
                        conclusion: "success",
                        ..
                    } => "success",
                    JobPhase::Completed {
                        conclusion: "failure",
                        ..
                    } => "failure",
                    JobPhase::Completed { .. } => "error",
                };
                let mut body = json!({
                    "state": state,
                    "context": format!("switchyard/{module}"),
                    "description": crate::store::bounded(&summary, 140),
                });
                if let Some(url) = details {
                    body["target_url"] = url.into();
                }
                self.call(
                    Method::POST,
                    &format!("/repos/{repo}/statuses/{sha}"),
                    Some(&body),
                )
                .await?;
            }
        }
        Ok(())
    }
}

/// Reports jobs' status on their event's forge (modules with `report: check`), for the
/// router (queued) and the module runtime (in progress, completed).
#[derive(Debug, Clone)]
pub struct ForgeReports {
    forges: Forges,
    dashboard: Option<String>,
    timeout: Duration,
}

impl ForgeReports {
    /// Reports through `forges`, linking jobs under `dashboard` (the dashboard's URL,
    /// `SWITCHYARD_DASHBOARD_URL`), each report bounded by `timeout`.
    pub fn new(forges: Forges, dashboard: Option<String>, timeout: Duration) -> Self {
        Self {
            forges,
            dashboard: dashboard.map(|d| d.trim_end_matches('/').to_owned()),
            timeout,
        }
    }

    /// Shows `job_id` of `module` at `phase` on the event's head commit. An error says why
    /// it could not (the caller records it; it never fails the job).
    pub async fn report(
        &self,
        event: &crate::Event,
        module: &str,
        job_id: &str,
        phase: &JobPhase,
    ) -> Result<(), ReportError> {
        (self.report_text(event, module, job_id, phase).await).map_err(ReportError)
    }

    async fn report_text(
        &self,
        event: &crate::Event,
        module: &str,
        job_id: &str,
        phase: &JobPhase,
    ) -> Result<(), String> {
        let repo = event
            .repository
            .as_deref()
            .ok_or("the event names no repository")?;
        let sha = head_sha(event).ok_or("the event names no head commit")?;
        let client = self.forges.for_event(event).map_err(|e| e.to_string())?;
        let details = self
            .dashboard
            .as_ref()
            .map(|d| format!("{d}#/jobs/{}", encode_segment(job_id)));
        match tokio::time::timeout(
            self.timeout,
            client.report_job(repo, &sha, module, job_id, phase, details.as_deref()),
        )
        .await
        {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(_) => Err(format!(
                "the forge took longer than {} ms",
                self.timeout.as_millis()
            )),
        }
    }
}

/// [`crate::dispatch::PullRequestFiles`] through the forge API, for `paths:` filters on pull
/// requests: the event's installation token (or `GITHUB_TOKEN`), bounded by `timeout` and
/// by [`MAX_PR_FILES`].
#[derive(Debug, Clone)]
pub struct ForgeFiles {
    forges: Forges,
    timeout: Duration,
}

impl ForgeFiles {
    /// Files from `forges`, each listing bounded by `timeout`.
    pub fn new(forges: Forges, timeout: Duration) -> Self {
        Self { forges, timeout }
    }
}

#[async_trait::async_trait]
impl crate::dispatch::PullRequestFiles for ForgeFiles {
    async fn files(&self, event: &crate::Event) -> Result<Vec<String>, crate::dispatch::PortError> {
        let value = event.payload.value();
        let pr = value.get("pull_request").unwrap_or(value);
        let number = pr
            .get("number")
            .or_else(|| value.get("number"))
            .and_then(Value::as_u64)
            .ok_or("the payload has no pull request number")?;
        let repo = event
            .repository
            .as_deref()
            .filter(|r| valid_repo(r))
            .ok_or("the payload names no valid repository")?;
        if let Some(n) = pr.get("changed_files").and_then(Value::as_u64)
            && n > MAX_PR_FILES as u64
        {
            return Err(format!(
                "the pull request changes {n} files; the forge lists at most {MAX_PR_FILES}"
            )
            .into());
        }
        let client = self.forges.for_event(event).map_err(|e| e.to_string())?;
        match tokio::time::timeout(
            self.timeout,
            client.pr_file_names(repo, number, MAX_PR_FILES),
        )
        .await
        {
            Ok(Ok(files)) => Ok(files),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(format!(
                "listing the files took longer than {} ms",
                self.timeout.as_millis()
            )
            .into()),
        }
    }
}

/// The clients a module may need, from the environment, picked per event: GitHub events use
/// the GitHub client, Forgejo and Gitea events the Forgejo one.
#[derive(Debug, Clone, Default)]
pub struct Forges {
    github: Option<ForgeClient>,
    forgejo: Option<ForgeClient>,
    /// GitHub Apps: `None` is `GITHUB_APP_ID`'s, `Some(source)` a source's own.
    apps: BTreeMap<Option<String>, Arc<GithubApp>>,
    /// App configurations that did not load (reported when an event needs them).
    broken: BTreeMap<Option<String>, String>,
}

impl Forges {
    /// Whatever `GITHUB_TOKEN` and `FORGEJO_TOKEN`/`FORGEJO_API_URL` configure.
    pub fn from_env() -> Self {
        Self::from_vars(&std::env::vars().collect())
    }

    /// As [`Forges::from_env`], from `vars` (see [`ForgeClient::from_vars`]).
    ///
    /// GitHub Apps come from `GITHUB_APP_ID` and `GITHUB_APP_ID_<SOURCE>`
    /// ([`app`]); their keys are parsed now, once per function instance.
    pub fn from_vars(vars: &BTreeMap<String, String>) -> Self {
        let mut apps = BTreeMap::new();
        let mut broken = BTreeMap::new();
        let suffixes = vars
            .keys()
            .filter_map(|k| k.strip_prefix("GITHUB_APP_ID_"))
            .map(|s| Some(s.to_owned()));
        for suffix in std::iter::once(None).chain(suffixes) {
            match GithubApp::from_vars(vars, suffix.as_deref()) {
                Some(Ok(app)) => {
                    apps.insert(suffix, Arc::new(app));
                }
                Some(Err(e)) => {
                    tracing::warn!(source = ?suffix, error = %e, "GitHub App configuration not loaded");
                    broken.insert(suffix, e.to_string());
                }
                None => {}
            }
        }
        Self {
            github: ForgeClient::from_vars(ForgeKind::Github, vars).ok(),
            forgejo: ForgeClient::from_vars(ForgeKind::Forgejo, vars).ok(),
            apps,
            broken,
        }
    }

    /// The GitHub App for events of `source`: its own, else the shared one.
    pub fn app_for(&self, source: &str) -> Option<&Arc<GithubApp>> {
        let suffix = source.to_ascii_uppercase().replace('-', "_");
        self.apps
            .get(&Some(suffix))
            .or_else(|| self.apps.get(&None))
    }

    /// The client for an event's forge, or an error naming what is missing. A GitHub event
    /// with an `installation.id` acts as that installation when a GitHub App is configured
    /// for its source; otherwise the personal token (`GITHUB_TOKEN`) serves.
    pub fn for_event(&self, event: &crate::Event) -> Result<ForgeClient, ForgeError> {
        if event.kind == crate::SourceKind::Github {
            let installation = event
                .payload
                .value()
                .pointer("/installation/id")
                .and_then(Value::as_u64);
            if let (Some(app), Some(installation)) = (self.app_for(&event.source), installation) {
                let base = self
                    .github
                    .as_ref()
                    .map(|c| c.base.clone())
                    .unwrap_or_else(|| app.base().to_owned());
                let client = match &self.github {
                    Some(c) => c.clone(),
                    None => {
                        ForgeClient::new(ForgeKind::Github, base, SecretString::from(String::new()))
                    }
                };
                return Ok(client.as_installation(app.clone(), installation));
            }
            if self.github.is_none() {
                let suffix = event.source.to_ascii_uppercase().replace('-', "_");
                if let Some(e) = self.broken.get(&Some(suffix)).or(self.broken.get(&None)) {
                    return Err(ForgeError::Config(e.clone()));
                }
            }
        }
        let (client, var) = match event.kind {
            crate::SourceKind::Github => (&self.github, "GITHUB_TOKEN"),
            crate::SourceKind::Forgejo | crate::SourceKind::Gitea => {
                (&self.forgejo, "FORGEJO_TOKEN")
            }
            _ => (
                &None,
                "a forge token (this source kind has no forge API here)",
            ),
        };
        client.clone().ok_or_else(|| ForgeError::Config(var.into()))
    }
}

fn encode_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[async_trait::async_trait]
impl crate::dispatch::JobReports for ForgeReports {
    async fn report(
        &self,
        event: &crate::Event,
        module: &str,
        job_id: &str,
        phase: &JobPhase,
    ) -> Result<(), crate::dispatch::PortError> {
        Ok(ForgeReports::report(self, event, module, job_id, phase).await?)
    }
}

#[cfg(test)]
mod tests {
    //! Against a local stand-in that answers with GitHub's and Forgejo's response shapes.

    use super::*;

    #[test]
    fn repositories_in_api_paths_are_owner_slash_name_only() {
        for good in ["acme/widgets", "a-b/c_d.e", "o/.github"] {
            assert!(valid_repo(good), "{good}");
        }
        for bad in [
            "acme", "acme/", "/widgets", "../x", "a/..", "a/b/c", "a/b?x=1", "a/b#c", "a b/c",
            "a/%2e%2e",
        ] {
            assert!(!valid_repo(bad), "{bad}");
        }
    }
    use axum::extract::{Path, Query, State};
    use axum::http::{HeaderMap, HeaderValue, StatusCode as S};
    use axum::response::{IntoResponse, Response};
    use axum::routing::{delete, get, patch};
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    #[derive(Default)]
    struct Forge {
        comments: Vec<(u64, String)>,
        labels: Vec<(u64, String)>,
        fail_next: Vec<(u16, Vec<(&'static str, String)>)>,
        calls: Vec<String>,
    }
    type St = Arc<Mutex<Forge>>;

    const GH_404: &str = r#"{"message":"Not Found","documentation_url":"https://docs.github.com/rest","status":"404"}"#;

    fn comment_json(id: u64, body: &str) -> Value {
        json!({
            "url": format!("https://api.github.com/repos/acme/widgets/issues/comments/{id}"),
            "html_url": format!("https://github.com/acme/widgets/pull/7#issuecomment-{id}"),
            "issue_url": "https://api.github.com/repos/acme/widgets/issues/7",
            "id": id, "node_id": "IC_kwDOAAABBB", "body": body,
            "user": {"login": "switchyard[bot]", "id": 99, "type": "Bot", "site_admin": false},
            "created_at": "2026-11-22T05:00:00Z", "updated_at": "2026-11-22T05:00:00Z",
            "author_association": "NONE", "performed_via_github_app": null
        })
    }

    fn label_json(id: u64, name: &str) -> Value {
        json!({"id": id, "node_id": "LA_kwDO", "url": format!("https://api.github.com/repos/acme/widgets/labels/{name}"),
               "name": name, "color": "ededed", "default": false, "description": null, "exclusive": false, "is_archived": false})
    }

    /// Authorization, recorded call and scripted failures, before the route itself.
    fn gate(st: &St, headers: &HeaderMap, what: String) -> Option<Response> {
        let mut f = st.lock().unwrap();
        f.calls.push(what);
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if auth != "Bearer good" && auth != "token good" {
            return Some((S::UNAUTHORIZED, r#"{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest","status":"401"}"#).into_response());
        }
        if !f.fail_next.is_empty() {
            let (status, hs) = f.fail_next.remove(0);
            let mut resp = (
                S::from_u16(status).unwrap(),
                r#"{"message":"API rate limit exceeded for installation ID 1."}"#,
            )
                .into_response();
            for (k, v) in hs {
                resp.headers_mut()
                    .insert(k, HeaderValue::from_str(&v).unwrap());
            }
            return Some(resp);
        }
        None
    }

    async fn start() -> (String, St) {
        let st: St = Arc::default();
        let app = axum::Router::new()
            .route(
                "/repos/{o}/{r}/issues/{n}/comments",
                get(|State(st): State<St>, h: HeaderMap, Query(q): Query<HashMap<String, String>>| async move {
                    if let Some(r) = gate(&st, &h, "GET comments".into()) { return r; }
                    let per: usize = q.get("per_page").or(q.get("limit")).and_then(|v| v.parse().ok()).unwrap_or(30);
                    let page: usize = q.get("page").and_then(|v| v.parse().ok()).unwrap_or(1);
                    let f = st.lock().unwrap();
                    let items: Vec<Value> = f.comments.iter().skip((page - 1) * per).take(per).map(|(id, b)| comment_json(*id, b)).collect();
                    axum::Json(items).into_response()
                })
                .post(|State(st): State<St>, h: HeaderMap, axum::Json(b): axum::Json<Value>| async move {
                    if let Some(r) = gate(&st, &h, "POST comment".into()) { return r; }
                    let mut f = st.lock().unwrap();
                    let id = 1000 + f.comments.len() as u64;
                    f.comments.push((id, b["body"].as_str().unwrap_or_default().to_owned()));
                    (S::CREATED, axum::Json(comment_json(id, b["body"].as_str().unwrap_or_default()))).into_response()
                }),
            )
            .route(
                "/repos/{o}/{r}/issues/comments/{id}",
                patch(|State(st): State<St>, h: HeaderMap, Path((_o, _r, id)): Path<(String, String, u64)>, axum::Json(b): axum::Json<Value>| async move {
                    if let Some(r) = gate(&st, &h, format!("PATCH comment {id}")) { return r; }
                    let mut f = st.lock().unwrap();
                    let body = b["body"].as_str().unwrap_or_default().to_owned();
                    match f.comments.iter_mut().find(|(i, _)| *i == id) {
                        Some(c) => { c.1 = body.clone(); axum::Json(comment_json(id, &body)).into_response() }
                        None => (S::NOT_FOUND, GH_404).into_response(),
                    }
                }),
            )
            .route(
                "/repos/{o}/{r}/issues/{n}/labels",
                get(|State(st): State<St>, h: HeaderMap| async move {
                    if let Some(r) = gate(&st, &h, "GET labels".into()) { return r; }
                    let f = st.lock().unwrap();
                    axum::Json(f.labels.iter().map(|(id, n)| label_json(*id, n)).collect::<Vec<_>>()).into_response()
                })
                .post(|State(st): State<St>, h: HeaderMap, axum::Json(b): axum::Json<Value>| async move {
                    if let Some(r) = gate(&st, &h, "POST labels".into()) { return r; }
                    let mut f = st.lock().unwrap();
                    for name in b["labels"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                        if !f.labels.iter().any(|(_, n)| n == name) {
                            let id = 10 + f.labels.len() as u64;
                            f.labels.push((id, name.to_owned()));
                        }
                    }
                    axum::Json(f.labels.iter().map(|(id, n)| label_json(*id, n)).collect::<Vec<_>>()).into_response()
                }),
            )
            .route(
                "/repos/{o}/{r}/issues/{n}/labels/{label}",
                delete(|State(st): State<St>, h: HeaderMap, Path((_o, _r, _n, label)): Path<(String, String, u64, String)>| async move {
                    if let Some(r) = gate(&st, &h, format!("DELETE label {label}")) { return r; }
                    let mut f = st.lock().unwrap();
                    let before = f.labels.len();
                    f.labels.retain(|(id, n)| *n != label && id.to_string() != label);
                    if f.labels.len() == before {
                        return (S::NOT_FOUND, r#"{"message":"Label does not exist","documentation_url":"https://docs.github.com/rest/issues/labels"}"#).into_response();
                    }
                    axum::Json(f.labels.iter().map(|(id, n)| label_json(*id, n)).collect::<Vec<_>>()).into_response()
                }),
            )
            .route(
                "/repos/{o}/{r}/pulls/{n}/files",
                get(|State(st): State<St>, h: HeaderMap, Query(q): Query<HashMap<String, String>>| async move {
                    if let Some(r) = gate(&st, &h, "GET files".into()) { return r; }
                    let per: usize = q.get("per_page").or(q.get("limit")).and_then(|v| v.parse().ok()).unwrap_or(30);
                    let page: usize = q.get("page").and_then(|v| v.parse().ok()).unwrap_or(1);
                    let files: Vec<Value> = (0..120usize).skip((page - 1) * per).take(per).map(|i| json!({
                        "sha": "bbcd538c8e72b8c175046e27cc8f907076331401", "filename": format!("src/file{i}.rs"),
                        "status": "modified", "additions": 2, "deletions": 1, "changes": 3,
                        "blob_url": "https://github.com/acme/widgets/blob/x", "raw_url": "https://github.com/acme/widgets/raw/x",
                        "contents_url": "https://api.github.com/repos/acme/widgets/contents/x", "patch": "@@ -1 +1,2 @@"
                    })).collect();
                    axum::Json(files).into_response()
                }),
            )
            .with_state(st.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (format!("http://{addr}"), st)
    }

    fn client(kind: ForgeKind, base: &str, token: &str) -> ForgeClient {
        ForgeClient::new(kind, base, SecretString::from(token.to_owned())).with_retries(
            4,
            Duration::from_millis(10),
            Duration::from_secs(2),
        )
    }

    #[tokio::test]
    async fn comments_are_created_listed_and_updated() {
        let (base, st) = start().await;
        let gh = client(ForgeKind::Github, &base, "good");
        let c = gh.comment("acme/widgets", 7, "first").await.unwrap();
        assert_eq!(c.user.as_ref().unwrap().login, "switchyard[bot]");
        for i in 0..60 {
            gh.comment("acme/widgets", 7, &format!("n{i}"))
                .await
                .unwrap();
        }
        let all = gh.list_comments("acme/widgets", 7).await.unwrap();
        assert_eq!(all.len(), 61, "every page is read");
        let updated = gh
            .update_comment("acme/widgets", c.id, "edited")
            .await
            .unwrap();
        assert_eq!(updated.body, "edited");
        assert_eq!(st.lock().unwrap().comments[0].1, "edited");
    }

    #[tokio::test]
    async fn labels_are_added_and_removed_by_name_on_both_dialects() {
        let (base, st) = start().await;
        for kind in [ForgeKind::Github, ForgeKind::Forgejo] {
            let f = client(kind, &base, "good");
            f.add_labels("acme/widgets", 7, &["size/S", "bug"])
                .await
                .unwrap();
            f.remove_label("acme/widgets", 7, "size/S").await.unwrap();
            // A label that is not there is not an error.
            f.remove_label("acme/widgets", 7, "size/S").await.unwrap();
            assert_eq!(f.labels("acme/widgets", 7).await.unwrap(), ["bug"]);
            f.remove_label("acme/widgets", 7, "bug").await.unwrap();
        }
        let calls = st.lock().unwrap().calls.clone();
        // Forgejo removes by id (looked up), GitHub by name.
        assert!(calls.contains(&"DELETE label size/S".to_owned()));
        assert!(
            calls.iter().any(|c| c.starts_with("DELETE label 1")),
            "{calls:?}"
        );
    }

    #[tokio::test]
    async fn pr_files_are_read_across_pages() {
        let (base, _) = start().await;
        let files = client(ForgeKind::Github, &base, "good")
            .pr_files("acme/widgets", 7)
            .await
            .unwrap();
        assert_eq!(files.len(), 120);
        assert_eq!(files[119].filename, "src/file119.rs");
        assert_eq!((files[0].additions, files[0].deletions), (2, 1));
    }

    #[tokio::test]
    async fn a_rate_limited_403_waits_for_the_reset_and_retries() {
        let (base, st) = start().await;
        let reset = (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 1)
        .to_string();
        st.lock().unwrap().fail_next = vec![(
            403,
            vec![
                ("x-ratelimit-remaining", "0".into()),
                ("x-ratelimit-reset", reset),
            ],
        )];
        let started = std::time::Instant::now();
        let c = client(ForgeKind::Github, &base, "good")
            .comment("acme/widgets", 7, "after the limit")
            .await
            .unwrap();
        assert_eq!(c.body, "after the limit");
        assert!(
            started.elapsed() >= Duration::from_millis(900),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(st.lock().unwrap().calls.len(), 2);
    }

    #[tokio::test]
    async fn server_errors_are_retried_with_backoff_then_given_up() {
        let (base, st) = start().await;
        st.lock().unwrap().fail_next = vec![(502, vec![]), (503, vec![])];
        assert!(
            client(ForgeKind::Github, &base, "good")
                .comment("acme/widgets", 7, "x")
                .await
                .is_ok()
        );
        st.lock().unwrap().fail_next = vec![(500, vec![]); 4];
        let err = client(ForgeKind::Github, &base, "good")
            .comment("acme/widgets", 7, "x")
            .await
            .unwrap_err();
        assert!(
            matches!(err, ForgeError::GaveUp { attempts: 4, .. }),
            "{err}"
        );
    }

    #[tokio::test]
    async fn unauthorized_and_not_found_are_clear_errors_without_the_token() {
        let (base, _) = start().await;
        let err = client(ForgeKind::Github, &base, "s3cr3t-token-value")
            .comment("acme/widgets", 7, "x")
            .await
            .unwrap_err();
        assert!(matches!(err, ForgeError::Unauthorized { .. }));
        assert!(err.to_string().contains("401"), "{err}");
        assert!(!err.to_string().contains("s3cr3t"));
        let gh = client(ForgeKind::Github, &base, "good");
        let err = gh
            .update_comment("acme/widgets", 424242, "x")
            .await
            .unwrap_err();
        assert!(matches!(err, ForgeError::NotFound { .. }));
        assert_eq!(
            err.to_string(),
            "PATCH /repos/acme/widgets/issues/comments/424242: 404 not found (or not visible to the token)"
        );
        assert!(!format!("{gh:?}").contains("good"));
    }
}
