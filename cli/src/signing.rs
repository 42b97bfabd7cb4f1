//! `switchyard sign` and `switchyard send`: a payload file signed the way its forge signs
//! (headers for `curl`), or posted with them.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::Args;
use secrecy::SecretString;
use switchyard::config::{Encoding, Source, SourceKind};

#[derive(Args)]
pub(crate) struct SignArgs {
    /// Source kind: github, forgejo, gitea, gitlab, standard, hmac.
    #[arg(long)]
    kind: String,
    /// The secret (for standard: whsec_...). Prefer SWITCHYARD_CLI_SECRET over the flag.
    #[arg(long, env = "SWITCHYARD_CLI_SECRET", hide_env_values = true)]
    secret: String,
    /// Event type header value; guessed from FILE's name (`<source>-<event>[-variant].json`).
    #[arg(long)]
    event: Option<String>,
    /// Delivery id; a random UUID when absent.
    #[arg(long)]
    id: Option<String>,
    /// hmac: signature header.
    #[arg(long, default_value = "X-Signature")]
    header: String,
    /// hmac: signature prefix, e.g. `sha256=`.
    #[arg(long)]
    prefix: Option<String>,
    /// hmac: `hex` or `base64`.
    #[arg(long, default_value = "hex")]
    encoding: String,
    /// The payload file.
    file: PathBuf,
}

type Signed = (Vec<u8>, Vec<(String, String)>);

pub(crate) fn gitlab_hook_name(event: &str) -> String {
    match event {
        "merge_request" => "Merge Request Hook".into(),
        "push" => "Push Hook".into(),
        "issues" | "issue" => "Issue Hook".into(),
        other if other.ends_with("Hook") => other.into(),
        other => {
            let words: Vec<String> = other
                .split('_')
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_uppercase().chain(c).collect())
                        .unwrap_or_default()
                })
                .collect();
            format!("{} Hook", words.join(" "))
        }
    }
}

pub(crate) fn event_from_file_name(file: &std::path::Path) -> Option<String> {
    let stem = file.file_stem()?.to_str()?;
    let mut parts = stem.split('-');
    parts.next()?;
    parts.next().map(str::to_owned)
}

/// The headers naming the event type, the way a sender of `kind` sends them.
pub(crate) fn event_headers(kind: SourceKind, event: String) -> Vec<(String, String)> {
    match kind {
        SourceKind::Github => vec![("X-GitHub-Event".into(), event)],
        SourceKind::Forgejo => vec![
            ("X-Forgejo-Event".into(), event.clone()),
            ("X-Gitea-Event".into(), event),
        ],
        SourceKind::Gitea => vec![("X-Gitea-Event".into(), event)],
        SourceKind::Gitlab => vec![("X-Gitlab-Event".into(), gitlab_hook_name(&event))],
        SourceKind::Hmac => vec![("X-Event-Type".into(), event)],
        SourceKind::Standard | SourceKind::Schedule | SourceKind::Api | SourceKind::Internal => {
            vec![]
        }
    }
}

fn signed(args: &SignArgs) -> anyhow::Result<Signed> {
    let kind =
        SourceKind::parse(&args.kind).with_context(|| format!("unknown kind `{}`", args.kind))?;
    let body =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let mut source = Source::new("cli", kind, &[]);
    source.hmac.header = args.header.clone();
    source.hmac.prefix = args.prefix.clone();
    source.hmac.encoding = match args.encoding.as_str() {
        "hex" => Encoding::Hex,
        "base64" => Encoding::Base64,
        other => bail!("unknown encoding `{other}` (hex or base64)"),
    };
    let id = args
        .id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let secret = SecretString::from(args.secret.clone());
    let mut headers = switchyard::signature::sign(
        &source,
        &secret,
        &body,
        &id,
        time::OffsetDateTime::now_utc(),
    )
    .map_err(|e| anyhow::anyhow!("cannot sign: {e}"))?;
    let event = args
        .event
        .clone()
        .or_else(|| event_from_file_name(&args.file));
    if let Some(event) = event {
        headers.extend(event_headers(kind, event));
    }
    headers.push(("Content-Type".into(), "application/json".into()));
    Ok((body, headers))
}

/// `switchyard sign`: prints the headers a forge would send with the file.
pub(crate) fn sign(args: &SignArgs) -> anyhow::Result<()> {
    let (_, headers) = signed(args)?;
    for (k, v) in headers {
        println!("{k}: {v}");
    }
    Ok(())
}

/// `switchyard send`: posts the signed file to `url` and prints the answer; a non-2xx
/// answer exits 1.
pub(crate) async fn send(url: &str, args: &SignArgs) -> anyhow::Result<()> {
    let (body, headers) = signed(args)?;
    let client = switchyard::tls::http_client()
        .timeout(std::time::Duration::from_secs(120))
        .build()?;
    let mut req = client.post(url).body(body);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let resp = (req.send().await).with_context(|| format!("posting to {url}"))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    println!("HTTP {}", status.as_u16());
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(v) => println!("{}", serde_json::to_string_pretty(&v)?),
        Err(_) => println!("{text}"),
    }
    if !status.is_success() {
        std::process::exit(1);
    }
    Ok(())
}
