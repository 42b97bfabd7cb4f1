//! The `switchyard` command line: create the table, sign and send webhooks like a forge
//! would, and read job records. For local development and operators.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand};
use secrecy::SecretString;
use switchyard::config::{Encoding, Source, SourceKind};
use switchyard::store::{DynamoStore, JobStore};

#[derive(Parser)]
#[command(
    name = "switchyard",
    version,
    about = "switchyard: a serverless webhook router for bots and automation"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Manage the DynamoDB table.
    Table {
        #[command(subcommand)]
        command: TableCommand,
    },
    /// Print the headers a sender of KIND would send with FILE.
    Sign(SignArgs),
    /// Sign FILE and POST it to URL; print the answer.
    Send {
        /// The router's webhook URL, e.g. http://127.0.0.1:3000/webhooks/github.
        #[arg(long)]
        url: String,
        #[command(flatten)]
        sign: SignArgs,
    },
    /// Read job records.
    Job {
        #[command(subcommand)]
        command: JobCommand,
    },
}

#[derive(Subcommand)]
enum TableCommand {
    /// Create the table with TTL on `expires_at` (does nothing if it exists).
    Create(TableArgs),
}

#[derive(Subcommand)]
enum JobCommand {
    /// Print a job as JSON.
    Get {
        #[command(flatten)]
        table: TableArgs,
        /// The job id.
        id: String,
    },
}

#[derive(Args)]
struct TableArgs {
    /// DynamoDB endpoint (e.g. DynamoDB Local); the AWS default when absent.
    #[arg(long, env = "AWS_ENDPOINT_URL_DYNAMODB")]
    endpoint: Option<String>,
    /// Table name.
    #[arg(long, env = "SWITCHYARD_TABLE")]
    table: String,
}

#[derive(Args)]
struct SignArgs {
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

fn gitlab_hook_name(event: &str) -> String {
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

fn event_from_file_name(file: &std::path::Path) -> Option<String> {
    let stem = file.file_stem()?.to_str()?;
    let mut parts = stem.split('-');
    parts.next()?;
    parts.next().map(str::to_owned)
}

/// The body and the headers to send with it.
type Signed = (Vec<u8>, Vec<(String, String)>);

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
        match kind {
            SourceKind::Github => headers.push(("X-GitHub-Event".into(), event)),
            SourceKind::Forgejo => {
                headers.push(("X-Forgejo-Event".into(), event.clone()));
                headers.push(("X-Gitea-Event".into(), event));
            }
            SourceKind::Gitea => headers.push(("X-Gitea-Event".into(), event)),
            SourceKind::Gitlab => headers.push(("X-Gitlab-Event".into(), gitlab_hook_name(&event))),
            SourceKind::Hmac => headers.push(("X-Event-Type".into(), event)),
            SourceKind::Standard => {}
        }
    }
    headers.push(("Content-Type".into(), "application/json".into()));
    Ok((body, headers))
}

async fn dynamo(args: &TableArgs) -> aws_sdk_dynamodb::Client {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(endpoint) = &args.endpoint {
        loader = loader.endpoint_url(endpoint);
        // DynamoDB Local accepts any credentials; do not require a profile for it.
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_none()
            && std::env::var_os("AWS_PROFILE").is_none()
        {
            loader = loader.credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "local",
                "local",
                None,
                None,
                "switchyard-cli",
            ));
        }
        if std::env::var_os("AWS_REGION").is_none() {
            loader = loader.region(aws_config::Region::new("us-east-1"));
        }
    }
    switchyard::aws::dynamodb(&loader.load().await)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Table {
            command: TableCommand::Create(args),
        } => {
            let client = dynamo(&args).await;
            DynamoStore::create_table(&client, &args.table)
                .await
                .with_context(|| format!("creating table {}", args.table))?;
            println!("table {} is ready (TTL on expires_at)", args.table);
        }
        Command::Sign(args) => {
            let (_, headers) = signed(&args)?;
            for (k, v) in headers {
                println!("{k}: {v}");
            }
        }
        Command::Send { url, sign } => {
            let (body, headers) = signed(&sign)?;
            let client = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(120))
                .build()?;
            let mut req = client.post(&url).body(body);
            for (k, v) in headers {
                req = req.header(k, v);
            }
            let resp = req
                .send()
                .await
                .with_context(|| format!("posting to {url}"))?;
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
        }
        Command::Job {
            command: JobCommand::Get { table, id },
        } => {
            let store = DynamoStore::new(dynamo(&table).await, table.table.clone());
            match store.get_job(&id).await.context("reading the job")? {
                Some(job) => println!("{}", serde_json::to_string_pretty(&job)?),
                None => bail!("no job {id}"),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_come_from_file_names() {
        assert_eq!(
            event_from_file_name(std::path::Path::new(
                "events/github-pull_request-opened.json"
            ))
            .as_deref(),
            Some("pull_request")
        );
        assert_eq!(gitlab_hook_name("merge_request"), "Merge Request Hook");
        assert_eq!(gitlab_hook_name("pipeline"), "Pipeline Hook");
    }
}
