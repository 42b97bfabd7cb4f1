//! `switchyard worker`: leases pull jobs through the API and runs a command for each, with
//! the job context on stdin and the event as environment variables (never through a shell);
//! heartbeats while it runs, stops it on cancel or a lost lease, finishes the job with the
//! exit status and the bounded tail of its output.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::Mutex;

use crate::remote::{ApiArgs, call};

/// `switchyard worker` options.
#[derive(Args, Debug, Clone)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// A pull module to take jobs of (repeat for several).
    #[arg(long = "module", required = true)]
    pub modules: Vec<String>,
    /// Jobs run at the same time.
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    /// This worker's name in lease records (`<token name>/<name>`); default the host name.
    #[arg(long)]
    pub name: Option<String>,
    /// Seconds each lease request waits for a job (at most 20).
    #[arg(long, default_value_t = 20)]
    pub wait: u64,
    /// Seconds between heartbeats; default a third of the lease.
    #[arg(long)]
    pub heartbeat: Option<u64>,
    /// Seconds between SIGTERM and SIGKILL when the command must stop.
    #[arg(long, default_value_t = 10)]
    pub grace: u64,
    /// Bytes of the command's output (stdout and stderr, interleaved) kept for the job record.
    #[arg(long, default_value_t = 4096)]
    pub tail_bytes: usize,
    /// Exit after this many jobs (default: run until stopped).
    #[arg(long)]
    pub max_jobs: Option<u64>,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

/// Runs workers until SIGINT/SIGTERM (then finishes the running jobs and leases no more) or
/// until `--max-jobs` jobs were handled.
pub async fn run(args: WorkerArgs) -> anyhow::Result<()> {
    if args.concurrency == 0 || args.concurrency > 64 {
        anyhow::bail!("--concurrency is 1 to 64");
    }
    if args.wait > 20 {
        anyhow::bail!("--wait is 0 to 20 seconds");
    }
    let stopping = Arc::new(AtomicBool::new(false));
    let handled = Arc::new(AtomicU64::new(0));
    {
        let stopping = stopping.clone();
        tokio::spawn(async move {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(t) => t,
                    Err(_) => return,
                };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            eprintln!("worker: stopping: finishing running jobs, leasing no more");
            stopping.store(true, Ordering::SeqCst);
        });
    }
    let name = args.name.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_owned())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "worker".into())
    });
    let args = Arc::new(args);
    let mut slots = Vec::new();
    for slot in 0..args.concurrency {
        let (args, stopping, handled) = (args.clone(), stopping.clone(), handled.clone());
        let worker = if args.concurrency > 1 {
            format!("{name}-{slot}")
        } else {
            name.clone()
        };
        slots.push(tokio::spawn(async move {
            slot_loop(&args, &worker, &stopping, &handled).await
        }));
    }
    for slot in slots {
        slot.await.context("worker slot")??;
    }
    Ok(())
}

async fn slot_loop(
    args: &WorkerArgs,
    worker: &str,
    stopping: &AtomicBool,
    handled: &AtomicU64,
) -> anyhow::Result<()> {
    let mut backoff = Duration::from_secs(1);
    loop {
        if stopping.load(Ordering::SeqCst) {
            return Ok(());
        }
        if args
            .max_jobs
            .is_some_and(|max| handled.load(Ordering::SeqCst) >= max)
        {
            return Ok(());
        }
        let body = json!({"modules": args.modules, "wait_seconds": args.wait, "worker": worker});
        let answer = call(
            &args.api,
            reqwest::Method::POST,
            "/workers/lease",
            Some(body),
            &[],
        )
        .await;
        match answer {
            Ok((200, leased)) => {
                backoff = Duration::from_secs(1);
                // Counted when taken, so `--max-jobs` never leases more than it runs.
                handled.fetch_add(1, Ordering::SeqCst);
                run_job(args, &leased).await;
            }
            Ok((204, _)) => backoff = Duration::from_secs(1),
            Ok((status @ (400 | 401 | 403 | 404 | 409), body)) => {
                anyhow::bail!(
                    "lease refused: HTTP {status} {}: {}",
                    body["code"].as_str().unwrap_or("error"),
                    body["message"].as_str().unwrap_or_default()
                );
            }
            Ok((status, _)) => {
                eprintln!("worker: lease answered HTTP {status}; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
            Err(e) => {
                eprintln!("worker: lease failed: {e:#}; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// The environment a command sees: the event's facts, only the non-empty ones.
pub fn job_env(context: &Value) -> Vec<(String, String)> {
    let event = &context["event"];
    let payload = &event["payload"];
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let first = |paths: &[&str]| {
        paths.iter().find_map(|p| {
            let v = p.split('.').fold(payload, |v, k| &v[k]);
            text(v)
        })
    };
    let git_ref = match (
        event["git_ref"]["kind"].as_str(),
        event["git_ref"]["name"].as_str(),
    ) {
        (Some("branch"), Some(n)) => Some((format!("refs/heads/{n}"), n.to_owned())),
        (Some("tag"), Some(n)) => Some((format!("refs/tags/{n}"), n.to_owned())),
        _ => None,
    };
    let event_type = text(&event["type"]);
    let pr = if matches!(
        event_type.as_deref(),
        Some("pull_request" | "merge_request" | "pull_request_review")
    ) {
        first(&["pull_request.number", "object_attributes.iid", "number"])
    } else {
        None
    };
    let issue = if matches!(event_type.as_deref(), Some("issues" | "issue_comment")) {
        first(&["issue.number", "object_attributes.iid"])
    } else {
        None
    };
    let vars = [
        ("SWITCHYARD_JOB_ID", text(&context["job_id"])),
        ("SWITCHYARD_MODULE", text(&context["module"])),
        ("SWITCHYARD_EVENT_ID", text(&event["id"])),
        ("SWITCHYARD_EVENT_TYPE", event_type.clone()),
        ("SWITCHYARD_ACTION", text(&event["action"])),
        ("SWITCHYARD_SOURCE", text(&event["source"])),
        ("SWITCHYARD_ENTITY", text(&context["entity"])),
        ("GITHUB_EVENT_NAME", event_type),
        ("GITHUB_REPOSITORY", text(&event["repository"])),
        ("GITHUB_ACTOR", text(&event["sender"]["login"])),
        ("GITHUB_REF", git_ref.as_ref().map(|r| r.0.clone())),
        ("GITHUB_REF_NAME", git_ref.map(|r| r.1)),
        (
            "GITHUB_SHA",
            first(&[
                "pull_request.head.sha",
                "after",
                "checkout_sha",
                "object_attributes.last_commit.id",
            ]),
        ),
        ("SWITCHYARD_PR_NUMBER", pr),
        ("SWITCHYARD_ISSUE_NUMBER", issue),
        ("SWITCHYARD_RELEASE_TAG", first(&["release.tag_name"])),
    ];
    vars.into_iter()
        .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| (k.to_owned(), v)))
        .collect()
}

/// The last `max` bytes written to it.
#[derive(Debug)]
struct Tail {
    bytes: VecDeque<u8>,
    max: usize,
    total: u64,
}

impl Tail {
    fn push(&mut self, chunk: &[u8]) {
        self.total += chunk.len() as u64;
        self.bytes.extend(chunk);
        let excess = self.bytes.len().saturating_sub(self.max);
        self.bytes.drain(..excess);
    }
}

async fn drain(mut from: impl AsyncRead + Unpin, tail: Arc<Mutex<Tail>>) {
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 {
            break;
        }
        tail.lock().await.push(&buf[..n]);
    }
}

/// Why the command was stopped, if it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Cancelled,
    LeaseLost,
}

fn signal_group(pid: Option<u32>, signal: nix::sys::signal::Signal) {
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        // The command leads its own process group: the signal reaches what it started too.
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), signal);
    }
}

async fn run_job(args: &WorkerArgs, leased: &Value) {
    let job_id = leased["job"]["job_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let token = leased["lease_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let context = &leased["context"];
    eprintln!(
        "worker: job {job_id} ({}) leased, attempt {}",
        leased["job"]["module"].as_str().unwrap_or_default(),
        leased["job"]["attempts"]
    );
    let lease_seconds = leased["lease_seconds"].as_u64().unwrap_or(300);
    let every = Duration::from_secs(args.heartbeat.unwrap_or((lease_seconds / 3).max(1)).max(1));

    let mut command = tokio::process::Command::new(&args.command[0]);
    command
        .args(&args.command[1..])
        // The worker's API token stays with the worker: the command's output is readable by
        // any `read` token, and a job must not be able to lease, finish or emit as it.
        .env_remove(API_TOKEN_VAR)
        .envs(job_env(context))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            let error = format!("could not start `{}`: {e}", args.command[0]);
            eprintln!("worker: job {job_id}: {error}");
            finish(args, &job_id, &token, "failed", None, Some(error)).await;
            return;
        }
    };
    let pid = child.id();
    let tail = Arc::new(Mutex::new(Tail {
        bytes: VecDeque::new(),
        max: args.tail_bytes,
        total: 0,
    }));
    if let Some(mut stdin) = child.stdin.take() {
        let bytes = serde_json::to_vec(context).unwrap_or_default();
        tokio::spawn(async move {
            // A command that does not read its stdin gets EPIPE here; that is its choice.
            let _ = stdin.write_all(&bytes).await;
            let _ = stdin.shutdown().await;
        });
    }
    let readers = [
        child
            .stdout
            .take()
            .map(|o| tokio::spawn(drain(o, tail.clone()))),
        child
            .stderr
            .take()
            .map(|e| tokio::spawn(drain(e, tail.clone()))),
    ];

    let mut stop: Option<Stop> = None;
    let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let mut killed_at: Option<tokio::time::Instant> = None;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            _ = beat.tick() => {
                if let Some(at) = killed_at {
                    if at.elapsed() >= Duration::from_secs(args.grace) {
                        signal_group(pid, nix::sys::signal::Signal::SIGKILL);
                    }
                    continue;
                }
                let path = format!("/jobs/{job_id}/heartbeat");
                match call(&args.api, reqwest::Method::POST, &path, Some(json!({"lease_token": token})), &[]).await {
                    Ok((200, hb)) if hb["cancel_requested"] == true => stop = Some(Stop::Cancelled),
                    Ok((200, _)) => {}
                    Ok((404 | 409, _)) => stop = Some(Stop::LeaseLost),
                    Ok((status, _)) => eprintln!("worker: job {job_id}: heartbeat answered HTTP {status}"),
                    Err(e) => eprintln!("worker: job {job_id}: heartbeat failed: {e:#}"),
                }
                if let Some(why) = stop {
                    eprintln!("worker: job {job_id}: {}; sending SIGTERM", match why {
                        Stop::Cancelled => "cancel requested",
                        Stop::LeaseLost => "lease lost",
                    });
                    signal_group(pid, nix::sys::signal::Signal::SIGTERM);
                    killed_at = Some(tokio::time::Instant::now());
                    // Check again (and escalate) at a finer pace than the heartbeat.
                    beat = tokio::time::interval(Duration::from_millis(200).min(every));
                }
            }
        }
    };
    for reader in readers.into_iter().flatten() {
        let _ = reader.await;
    }
    let (tail_text, total) = {
        let t = tail.lock().await;
        let bytes: Vec<u8> = t.bytes.iter().copied().collect();
        (String::from_utf8_lossy(&bytes).into_owned(), t.total)
    };
    let code = status
        .as_ref()
        .ok()
        .and_then(std::process::ExitStatus::code);
    let output = bounded_output(code, &tail_text, total, MAX_OUTPUT_BYTES);
    match stop {
        Some(Stop::LeaseLost) => {
            eprintln!("worker: job {job_id}: lease lost; its result is not reported");
        }
        Some(Stop::Cancelled) => {
            finish(
                args,
                &job_id,
                &token,
                "cancelled",
                Some(output),
                Some("cancelled on request".into()),
            )
            .await;
        }
        None => {
            let (state, error) = match (&status, code) {
                (Ok(_), Some(0)) => ("succeeded", None),
                (Ok(_), Some(c)) => ("failed", Some(format!("command exited with status {c}"))),
                (Ok(s), None) => ("failed", Some(format!("command ended by a signal ({s})"))),
                (Err(e), _) => (
                    "failed",
                    Some(format!("waiting for the command failed: {e}")),
                ),
            };
            finish(args, &job_id, &token, state, Some(output), error).await;
        }
    }
}

/// The variable the worker reads its API token from, removed from every command's
/// environment.
pub const API_TOKEN_VAR: &str = "SWITCHYARD_API_TOKEN";

/// What the API records of an output at most (its JSON).
const MAX_OUTPUT_BYTES: usize = switchyard::workers::MAX_OUTPUT_BYTES;

/// The job's output, its tail cut from the front until the JSON the API will measure is at
/// most `max` bytes: escaping (control bytes become `\u00XX`, six bytes each) can make the
/// JSON much larger than the tail. One pass from the end, linear in the tail.
fn bounded_output(code: Option<i32>, tail: &str, total: u64, max: usize) -> Value {
    let make = |tail: &str| json!({"exit_code": code, "output_tail": tail, "output_bytes": total});
    let size = |v: &Value| serde_json::to_vec(v).map_or(usize::MAX, |b| b.len());
    let whole = make(tail);
    if size(&whole) <= max {
        return whole;
    }
    // What one character costs in a JSON string, as serde_json writes it.
    let cost = |c: char| match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    };
    let mut budget = max.saturating_sub(size(&make("")));
    let mut start = tail.len();
    for (i, c) in tail.char_indices().rev() {
        let Some(left) = budget.checked_sub(cost(c)) else {
            break;
        };
        budget = left;
        start = i;
    }
    make(&tail[start..])
}

async fn finish(
    args: &WorkerArgs,
    job_id: &str,
    token: &str,
    status: &str,
    output: Option<Value>,
    error: Option<String>,
) {
    let mut body = json!({"lease_token": token, "status": status});
    if let Some(o) = output {
        body["output"] = o;
    }
    if let Some(e) = error {
        body["error"] = Value::String(e);
    }
    let path = format!("/jobs/{job_id}/finish");
    // A finish that cannot reach the API is retried a few times: the lease outlives them.
    for attempt in 0..5u32 {
        match call(
            &args.api,
            reqwest::Method::POST,
            &path,
            Some(body.clone()),
            &[],
        )
        .await
        {
            Ok((200, _)) => {
                eprintln!("worker: job {job_id} {status}");
                return;
            }
            Ok((409, _)) => {
                eprintln!("worker: job {job_id}: finish refused, the lease was lost");
                return;
            }
            // Refused for what it carries: finished without the output, so the job is
            // recorded (and never leased and run again when the lease expires).
            Ok((400, b)) if body.get("output").is_some() => {
                eprintln!(
                    "worker: job {job_id}: finish refused (HTTP 400 {b}); finishing without the output"
                );
                if let Some(o) = body.as_object_mut() {
                    o.remove("output");
                    let note = "the output was refused by the API and is not recorded";
                    let error = match o.get("error").and_then(Value::as_str) {
                        Some(e) => format!("{e}; {note}"),
                        None => note.to_owned(),
                    };
                    o.insert("error".into(), Value::String(error));
                }
                continue;
            }
            Ok((s, b)) if (400..500).contains(&s) => {
                eprintln!("worker: job {job_id}: finish refused: HTTP {s} {b}");
                return;
            }
            Ok((s, _)) => eprintln!("worker: job {job_id}: finish answered HTTP {s}"),
            Err(e) => eprintln!("worker: job {job_id}: finish failed: {e:#}"),
        }
        tokio::time::sleep(Duration::from_secs(1 << attempt)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_names_the_event_and_leaves_out_empty_facts() {
        let context = json!({
            "job_id": "j1", "module": "release", "entity": "o/r#7",
            "event": {
                "id": "d1", "type": "pull_request", "action": "opened", "source": "github",
                "repository": "o/r", "sender": {"login": "alice", "bot": false},
                "git_ref": {"kind": "branch", "name": "main"},
                "payload": {"pull_request": {"number": 7, "head": {"sha": "abc123"}}}
            }
        });
        let env: std::collections::BTreeMap<String, String> =
            job_env(&context).into_iter().collect();
        assert_eq!(env["SWITCHYARD_EVENT_TYPE"], "pull_request");
        assert_eq!(env["GITHUB_EVENT_NAME"], "pull_request");
        assert_eq!(env["SWITCHYARD_ACTION"], "opened");
        assert_eq!(env["SWITCHYARD_ENTITY"], "o/r#7");
        assert_eq!(env["GITHUB_REPOSITORY"], "o/r");
        assert_eq!(env["GITHUB_ACTOR"], "alice");
        assert_eq!(env["GITHUB_REF"], "refs/heads/main");
        assert_eq!(env["GITHUB_REF_NAME"], "main");
        assert_eq!(env["GITHUB_SHA"], "abc123");
        assert_eq!(env["SWITCHYARD_PR_NUMBER"], "7");
        assert!(!env.contains_key("SWITCHYARD_ISSUE_NUMBER"));
        assert!(!env.contains_key("SWITCHYARD_RELEASE_TAG"));

        let tick = json!({"job_id": "j2", "module": "m", "entity": "", "event": {"type": "deploy", "source": "ci", "action": null, "payload": {}}});
        let env: std::collections::BTreeMap<String, String> = job_env(&tick).into_iter().collect();
        assert!(!env.contains_key("SWITCHYARD_ENTITY"));
        assert!(!env.contains_key("SWITCHYARD_ACTION"));
        assert_eq!(env["SWITCHYARD_SOURCE"], "ci");
    }

    #[test]
    fn the_tail_keeps_the_last_bytes() {
        let mut t = Tail {
            bytes: VecDeque::new(),
            max: 4,
            total: 0,
        };
        t.push(b"abc");
        t.push(b"defgh");
        assert_eq!(t.bytes.iter().copied().collect::<Vec<_>>(), b"efgh");
        assert_eq!(t.total, 8);
    }

    #[test]
    fn the_output_sent_fits_the_limit_once_encoded() {
        // 4 KiB of control bytes encode as 24 KiB of JSON: over the API's 16 KiB.
        let tail = "\u{1}".repeat(4096) + "the end";
        let naive = json!({"exit_code": 1, "output_tail": tail, "output_bytes": 4103});
        assert!(serde_json::to_vec(&naive).unwrap().len() > MAX_OUTPUT_BYTES);
        let out = bounded_output(Some(1), &tail, 4103, MAX_OUTPUT_BYTES);
        let size = serde_json::to_vec(&out).unwrap().len();
        assert!(size <= MAX_OUTPUT_BYTES, "{size}");
        assert!(size > MAX_OUTPUT_BYTES - 16, "kept as much as fits: {size}");
        // The last bytes are what is kept.
        assert!(out["output_tail"].as_str().unwrap().ends_with("the end"));
        // Multi-byte characters are cut on a boundary.
        let wide = "é".repeat(10_000);
        let out = bounded_output(Some(0), &wide, 20_000, 1000);
        assert!(serde_json::to_vec(&out).unwrap().len() <= 1000);
        // A small output is sent whole.
        let out = bounded_output(Some(0), "ok", 2, MAX_OUTPUT_BYTES);
        assert_eq!(out["output_tail"], "ok");
    }
}
