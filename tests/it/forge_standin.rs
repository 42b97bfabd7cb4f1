//! A local stand-in for GitHub's REST API (the calls the modules make), answering with the
//! real response shapes and recording every call. Bound on the port `make test` gave the
//! functions as `GITHUB_API_URL`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch};
use serde_json::{Value, json};

#[derive(Default)]
pub struct Forge {
    /// (issue number, comment id, body)
    pub comments: Vec<(u64, u64, String)>,
    /// (issue number, label)
    pub labels: Vec<(u64, String)>,
    /// PR number -> (filename, additions, deletions)
    pub files: HashMap<u64, Vec<(String, u64, u64)>>,
    /// "METHOD path" of every call.
    pub calls: Vec<String>,
    /// How long the files route waits before answering.
    pub files_delay: Option<std::time::Duration>,
    /// Check runs: (id, name, head_sha, external_id, details_url, history of
    /// `status[/conclusion]`, last output summary).
    pub check_runs: Vec<CheckRunRec>,
    /// Commit statuses (Forgejo): (sha, context, state, description).
    pub statuses: Vec<(String, String, String, String)>,
}

#[derive(Debug, Clone, Default)]
pub struct CheckRunRec {
    pub id: u64,
    pub name: String,
    pub head_sha: String,
    pub external_id: String,
    pub details_url: Option<String>,
    pub history: Vec<String>,
    pub summary: String,
}

fn check_run_json(r: &CheckRunRec) -> Value {
    let last = r.history.last().cloned().unwrap_or_default();
    let (status, conclusion) = match last.split_once('/') {
        Some((s, c)) => (s.to_owned(), Value::from(c)),
        None => (last, Value::Null),
    };
    json!({"id": r.id, "head_sha": r.head_sha, "node_id": "CR_kw", "external_id": r.external_id,
           "url": format!("https://api.github.com/repos/acme/widgets/check-runs/{}", r.id),
           "html_url": format!("https://github.com/acme/widgets/runs/{}", r.id),
           "details_url": r.details_url, "status": status, "conclusion": conclusion,
           "started_at": "2026-12-01T00:00:00Z", "completed_at": null,
           "output": {"title": null, "summary": r.summary, "text": null, "annotations_count": 0, "annotations_url": ""},
           "name": r.name, "check_suite": {"id": 5}, "app": {"id": 1, "slug": "switchyard"}, "pull_requests": []})
}

fn apply_check(r: &mut CheckRunRec, b: &Value) {
    let status = b["status"].as_str().unwrap_or("queued");
    r.history.push(match b["conclusion"].as_str() {
        Some(c) => format!("{status}/{c}"),
        None => status.to_owned(),
    });
    if let Some(u) = b["details_url"].as_str() {
        r.details_url = Some(u.to_owned());
    }
    if let Some(sm) = b["output"]["summary"].as_str() {
        r.summary = sm.to_owned();
    }
}

pub type Shared = Arc<Mutex<Forge>>;

fn comment_json(id: u64, body: &str) -> Value {
    json!({"id": id, "node_id": "IC_kw", "body": body, "html_url": format!("https://github.com/acme/widgets/issues/1#issuecomment-{id}"),
           "user": {"login": "switchyard[bot]", "id": 99, "type": "Bot"}, "created_at": "2026-11-22T05:00:00Z", "updated_at": "2026-11-22T05:00:00Z"})
}

fn labels_json(f: &Forge, n: u64) -> Value {
    Value::Array(
        f.labels
            .iter()
            .filter(|(i, _)| *i == n)
            .enumerate()
            .map(|(k, (_, name))| json!({"id": 100 + k, "node_id": "LA_kw", "name": name, "color": "ededed", "default": false, "description": null}))
            .collect(),
    )
}

fn record(st: &Shared, h: &HeaderMap, call: String) -> Option<Response> {
    st.lock().unwrap().calls.push(call);
    let ok = h.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer standin-token");
    (!ok).then(|| (StatusCode::UNAUTHORIZED, r#"{"message":"Bad credentials"}"#).into_response())
}

pub async fn start(port: u16) -> Shared {
    let st: Shared = Arc::default();
    let app = axum::Router::new()
        .route(
            "/repos/{o}/{r}/issues/{n}/comments",
            get(|State(st): State<Shared>, h: HeaderMap, Path((_o, _r, n)): Path<(String, String, u64)>, Query(q): Query<HashMap<String, String>>| async move {
                if let Some(r) = record(&st, &h, format!("GET comments {n}")) { return r; }
                let page: usize = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
                let f = st.lock().unwrap();
                let items: Vec<Value> = if page > 1 { vec![] } else { f.comments.iter().filter(|c| c.0 == n).map(|c| comment_json(c.1, &c.2)).collect() };
                axum::Json(items).into_response()
            })
            .post(|State(st): State<Shared>, h: HeaderMap, Path((_o, _r, n)): Path<(String, String, u64)>, axum::Json(b): axum::Json<Value>| async move {
                if let Some(r) = record(&st, &h, format!("POST comment {n}")) { return r; }
                let mut f = st.lock().unwrap();
                let id = 5000 + f.comments.len() as u64;
                let body = b["body"].as_str().unwrap_or_default().to_owned();
                f.comments.push((n, id, body.clone()));
                (StatusCode::CREATED, axum::Json(comment_json(id, &body))).into_response()
            }),
        )
        .route(
            "/repos/{o}/{r}/issues/comments/{id}",
            patch(|State(st): State<Shared>, h: HeaderMap, Path((_o, _r, id)): Path<(String, String, u64)>, axum::Json(b): axum::Json<Value>| async move {
                if let Some(r) = record(&st, &h, format!("PATCH comment {id}")) { return r; }
                let mut f = st.lock().unwrap();
                let body = b["body"].as_str().unwrap_or_default().to_owned();
                match f.comments.iter_mut().find(|c| c.1 == id) {
                    Some(c) => { c.2 = body.clone(); axum::Json(comment_json(id, &body)).into_response() }
                    None => (StatusCode::NOT_FOUND, r#"{"message":"Not Found"}"#).into_response(),
                }
            }),
        )
        .route(
            "/repos/{o}/{r}/issues/{n}/labels",
            get(|State(st): State<Shared>, h: HeaderMap, Path((_o, _r, n)): Path<(String, String, u64)>| async move {
                if let Some(r) = record(&st, &h, format!("GET labels {n}")) { return r; }
                axum::Json(labels_json(&st.lock().unwrap(), n)).into_response()
            })
            .post(|State(st): State<Shared>, h: HeaderMap, Path((_o, _r, n)): Path<(String, String, u64)>, axum::Json(b): axum::Json<Value>| async move {
                let names: Vec<String> = b["labels"].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_owned)).collect();
                if let Some(r) = record(&st, &h, format!("POST labels {n} {}", names.join(","))) { return r; }
                let mut f = st.lock().unwrap();
                for name in names {
                    if !f.labels.iter().any(|(i, l)| *i == n && *l == name) {
                        f.labels.push((n, name));
                    }
                }
                axum::Json(labels_json(&f, n)).into_response()
            }),
        )
        .route(
            "/repos/{o}/{r}/issues/{n}/labels/{label}",
            delete(|State(st): State<Shared>, h: HeaderMap, Path((_o, _r, n, label)): Path<(String, String, u64, String)>| async move {
                if let Some(r) = record(&st, &h, format!("DELETE label {n} {label}")) { return r; }
                let mut f = st.lock().unwrap();
                let before = f.labels.len();
                f.labels.retain(|(i, l)| !(*i == n && *l == label));
                if f.labels.len() == before {
                    return (StatusCode::NOT_FOUND, r#"{"message":"Label does not exist"}"#).into_response();
                }
                axum::Json(labels_json(&f, n)).into_response()
            }),
        )
        .route(
            "/repos/{o}/{r}/pulls/{n}/files",
            get(|State(st): State<Shared>, h: HeaderMap, Path((_o, _r, n)): Path<(String, String, u64)>, Query(q): Query<HashMap<String, String>>| async move {
                if let Some(r) = record(&st, &h, format!("GET files {n}")) { return r; }
                let delay = st.lock().unwrap().files_delay;
                if let Some(d) = delay {
                    tokio::time::sleep(d).await;
                }
                // GitHub's paging: per_page (default 30, at most 100), page, and a Link
                // header with absolute next/last URLs.
                let page: usize = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1).max(1);
                let per: usize = q.get("per_page").and_then(|p| p.parse().ok()).unwrap_or(30).clamp(1, 100);
                let f = st.lock().unwrap();
                let all = f.files.get(&n).cloned().unwrap_or_default();
                let last = all.len().div_ceil(per).max(1);
                let files: Vec<Value> = all.iter().skip((page - 1) * per).take(per).map(|(name, a, d)| json!({
                    "sha": "bbcd538c8e72b8c175046e27cc8f907076331401", "filename": name, "status": "modified",
                    "additions": a, "deletions": d, "changes": a + d, "patch": "@@",
                    "blob_url": format!("https://github.com/acme/widgets/blob/bbcd538/{name}"),
                    "raw_url": format!("https://github.com/acme/widgets/raw/bbcd538/{name}"),
                    "contents_url": format!("https://api.github.com/repos/acme/widgets/contents/{name}?ref=bbcd538")
                })).collect();
                let host = h.get("host").and_then(|v| v.to_str().ok()).unwrap_or("127.0.0.1").to_owned();
                let url = |p: usize| format!("<http://{host}/repos/{_o}/{_r}/pulls/{n}/files?per_page={per}&page={p}>");
                let mut links = Vec::new();
                if page < last {
                    links.push(format!("{}; rel=\"next\"", url(page + 1)));
                    links.push(format!("{}; rel=\"last\"", url(last)));
                }
                let mut resp = axum::Json(files).into_response();
                if !links.is_empty() {
                    resp.headers_mut().insert("link", links.join(", ").parse().unwrap());
                }
                resp
            }),
        )
        .route(
            "/repos/{o}/{r}/check-runs",
            axum::routing::post(|State(st): State<Shared>, h: HeaderMap, axum::Json(b): axum::Json<Value>| async move {
                if let Some(r) = record(&st, &h, "POST check-run".into()) { return r; }
                let mut f = st.lock().unwrap();
                let mut run = CheckRunRec {
                    id: 7000 + f.check_runs.len() as u64,
                    name: b["name"].as_str().unwrap_or_default().into(),
                    head_sha: b["head_sha"].as_str().unwrap_or_default().into(),
                    external_id: b["external_id"].as_str().unwrap_or_default().into(),
                    ..Default::default()
                };
                apply_check(&mut run, &b);
                let body = check_run_json(&run);
                f.check_runs.push(run);
                (StatusCode::CREATED, axum::Json(body)).into_response()
            }),
        )
        .route(
            "/repos/{o}/{r}/check-runs/{id}",
            patch(|State(st): State<Shared>, h: HeaderMap, Path((_o, _r, id)): Path<(String, String, u64)>, axum::Json(b): axum::Json<Value>| async move {
                if let Some(r) = record(&st, &h, format!("PATCH check-run {id}")) { return r; }
                let mut f = st.lock().unwrap();
                match f.check_runs.iter_mut().find(|r| r.id == id) {
                    Some(run) => { apply_check(run, &b); axum::Json(check_run_json(run)).into_response() }
                    None => (StatusCode::NOT_FOUND, r#"{"message":"Not Found"}"#).into_response(),
                }
            }),
        )
        .route(
            "/repos/{o}/{r}/commits/{sha}/check-runs",
            get(|State(st): State<Shared>, h: HeaderMap, Path((_o, _r, sha)): Path<(String, String, String)>, Query(q): Query<HashMap<String, String>>| async move {
                if let Some(r) = record(&st, &h, "GET check-runs".into()) { return r; }
                let f = st.lock().unwrap();
                let runs: Vec<Value> = f.check_runs.iter()
                    .filter(|r| r.head_sha == sha && q.get("check_name").is_none_or(|n| *n == r.name))
                    .map(check_run_json).collect();
                axum::Json(json!({"total_count": runs.len(), "check_runs": runs})).into_response()
            }),
        )
        .route(
            "/repos/{o}/{r}/statuses/{sha}",
            axum::routing::post(|State(st): State<Shared>, h: HeaderMap, Path((_o, _r, sha)): Path<(String, String, String)>, axum::Json(b): axum::Json<Value>| async move {
                st.lock().unwrap().calls.push(format!("POST status {sha}"));
                if h.get("authorization").and_then(|v| v.to_str().ok()) != Some("token standin-token") {
                    return (StatusCode::UNAUTHORIZED, r#"{"message":"user does not exist [uid: 0, name: ]"}"#).into_response();
                }
                let mut f = st.lock().unwrap();
                let rec = (sha.clone(), b["context"].as_str().unwrap_or_default().to_owned(),
                           b["state"].as_str().unwrap_or_default().to_owned(), b["description"].as_str().unwrap_or_default().to_owned());
                f.statuses.push(rec.clone());
                (StatusCode::CREATED, axum::Json(json!({"id": f.statuses.len(), "state": rec.2, "context": rec.1, "description": rec.3,
                    "target_url": b["target_url"], "url": "", "created_at": "2026-12-01T00:00:00Z", "updated_at": "2026-12-01T00:00:00Z",
                    "creator": {"id": 1, "login": "switchyard"}}))).into_response()
            }),
        )
        .with_state(st.clone());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    st
}
