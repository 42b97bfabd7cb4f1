//! The `switchyard` command line: create the table, sign and send webhooks like a forge
//! would, and read job records. For local development and operators.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand};
use secrecy::SecretString;
use switchyard::config::{Encoding, Source, SourceKind};
use switchyard::store::{DynamoStore, JobStore, SettingsStore};

mod remote;
mod worker;

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
    /// Validate every */module.yaml below DIR; list every error, exit non-zero on any.
    Validate {
        /// Directory of modules (default functions/modules).
        #[arg(default_value = "functions/modules")]
        dir: PathBuf,
    },
    /// Explain which modules FILE would start and why the others would not (no AWS access:
    /// per-scope settings and cooldowns are not consulted).
    Explain {
        /// Source id (its kind is --kind, default: the id when it names a kind).
        #[arg(long)]
        source: String,
        /// Source kind, when the source id is not a kind name.
        #[arg(long)]
        kind: Option<String>,
        /// Event type as the sender names it (guessed from FILE's name when absent).
        #[arg(long)]
        event: Option<String>,
        /// Only this module.
        #[arg(long)]
        module: Option<String>,
        /// Read manifests from this directory instead of the ones built in.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The payload file.
        file: PathBuf,
    },
    /// Read or change per-scope settings (global, owner/<owner>, repo/<owner>/<name>).
    Settings {
        #[command(subcommand)]
        command: SettingsCommand,
    },
    /// Schedule triggers.
    Schedule {
        #[command(subcommand)]
        command: ScheduleCommand,
    },
    /// API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Start a module with an `invoke` trigger through the API; prints the job.
    Invoke {
        #[command(flatten)]
        api: remote::ApiArgs,
        /// The module.
        module: String,
        /// The payload: JSON, or @FILE.
        #[arg(long)]
        payload: Option<String>,
        /// The entity (cooldown scope), e.g. owner/repo.
        #[arg(long)]
        entity: Option<String>,
        /// Config overrides: JSON, or @FILE.
        #[arg(long)]
        config: Option<String>,
        /// The same key and body give the same job (24 hours).
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Jobs through the API.
    Jobs {
        #[command(subcommand)]
        command: remote::JobsCommand,
    },
    /// Events through the API.
    Events {
        #[command(subcommand)]
        command: remote::EventsCommand,
    },
    /// Re-run an event (`<source>:<delivery id>`) against the current registry.
    Replay {
        #[command(flatten)]
        api: remote::ApiArgs,
        /// The event id.
        id: String,
        /// Print what would be dispatched; dispatch nothing.
        #[arg(long)]
        dry_run: bool,
        /// Ignore cooldowns.
        #[arg(long)]
        force: bool,
    },
    /// Publish, list and roll back registry versions through the API.
    Registry {
        #[command(subcommand)]
        command: remote::RegistryCommand,
    },
    /// Lease jobs of pull modules and run a command for each:
    /// `switchyard worker --module NAME -- COMMAND [ARGS]`.
    Worker(worker::WorkerArgs),
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Print a new token and its SWITCHYARD_API_TOKENS entry (only the hash is configured).
    New {
        /// Who holds it.
        #[arg(long)]
        name: String,
        /// Scopes joined by `+`: invoke, read, admin, work (pull workers), emit (POST /events).
        #[arg(long, default_value = "read")]
        scopes: String,
        /// Bind it to these modules (invoke, cancel, lease, heartbeat, finish); repeatable.
        #[arg(long = "module")]
        modules: Vec<String>,
        /// Bind it to these internal sources (emit); repeatable.
        #[arg(long = "source")]
        sources: Vec<String>,
        /// Bind it to these repositories (`owner/name` or `owner/*`: the settings scope an
        /// invoke may name); repeatable.
        #[arg(long = "repo")]
        repos: Vec<String>,
    },
}

#[derive(Subcommand)]
enum ScheduleCommand {
    /// Print a module's next run times, in UTC and in the trigger's zone.
    Next {
        /// The module.
        #[arg(long)]
        module: String,
        /// How many.
        #[arg(short = 'n', default_value_t = 5)]
        count: usize,
        /// Read manifests from this directory instead of the ones built in.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum SettingsCommand {
    /// Print a scope's settings as JSON.
    Get {
        #[command(flatten)]
        table: TableArgs,
        /// The scope.
        #[arg(long)]
        scope: String,
    },
    /// Change a scope's settings (read, modify, write).
    Set {
        #[command(flatten)]
        table: TableArgs,
        /// The scope.
        #[arg(long)]
        scope: String,
        /// Set a flag: NAME=on or NAME=off (repeatable).
        #[arg(long = "flag")]
        flags: Vec<String>,
        /// Remove a flag, so a wider scope decides (repeatable).
        #[arg(long = "unset-flag")]
        unset_flags: Vec<String>,
        /// Config override for a module: MODULE=JSON (repeatable; replaces that module's override).
        #[arg(long = "config")]
        configs: Vec<String>,
        /// Remove a module's config override (repeatable).
        #[arg(long = "unset-config")]
        unset_configs: Vec<String>,
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

/// The headers naming the event type, the way a sender of `kind` sends them.
fn event_headers(kind: SourceKind, event: String) -> Vec<(String, String)> {
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
        headers.extend(event_headers(kind, event));
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

/// The manifests in `dir`, or the ones built in; every error in one message.
fn load_registry(dir: Option<&std::path::Path>) -> anyhow::Result<switchyard::Registry> {
    match dir {
        Some(d) => switchyard::manifest::validate_dir(d),
        None => switchyard::Registry::builtin(),
    }
    .map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("invalid manifests:\n{}", lines.join("\n"))
    })
}

fn explain_file(
    source: &str,
    kind: Option<&str>,
    event: Option<String>,
    module: Option<&str>,
    dir: Option<&std::path::Path>,
    file: &std::path::Path,
) -> anyhow::Result<Vec<String>> {
    let kind_name = kind.unwrap_or(source);
    let kind = SourceKind::parse(kind_name)
        .with_context(|| format!("unknown kind `{kind_name}`; pass --kind"))?;
    let registry = load_registry(dir)?;
    if let Some(m) = module {
        anyhow::ensure!(registry.get(m).is_some(), "no module named `{m}`");
    }
    let body = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let mut headers = http::HeaderMap::new();
    let event = event.or_else(|| event_from_file_name(file));
    for (k, v) in event.map(|e| event_headers(kind, e)).unwrap_or_default() {
        headers.insert(
            http::HeaderName::try_from(k.as_str())?,
            http::HeaderValue::try_from(v.as_str())?,
        );
    }
    let mut src = Source::new(source, kind, &[]);
    src.hmac.event_header = "X-Event-Type".into();
    let event = switchyard::event::parse_unverified(
        &src,
        &headers,
        &body,
        time::OffsetDateTime::now_utc(),
        &Default::default(),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut lines = vec![format!(
        "event {} action {} entity {} from {}",
        event.event_type.as_str(),
        event.action.as_deref().unwrap_or("-"),
        event.entity,
        event.source
    )];
    let settings = switchyard::settings::ScopedSettings::default();
    lines.extend(
        switchyard::explain::explain(&registry, &event, &settings, module)
            .iter()
            .map(ToString::to_string),
    );
    Ok(lines)
}

fn schedule_next(
    module: &str,
    count: usize,
    dir: Option<&std::path::Path>,
    after: time::OffsetDateTime,
) -> anyhow::Result<Vec<String>> {
    let registry = load_registry(dir)?;
    anyhow::ensure!(registry.get(module).is_some(), "no module named `{module}`");
    let mut lines = Vec::new();
    for (m, index, trigger) in registry.schedules().filter(|(m, _, _)| m.name == module) {
        let schedule = &trigger.schedule;
        lines.push(format!(
            "{} trigger {index}: {} ({})",
            m.name,
            trigger.expression,
            schedule.zone_name()
        ));
        for minute in schedule.next_after(after, count) {
            lines.push(format!(
                "  {}  {}",
                switchyard::schedule::minute_text(minute),
                schedule.local_text(minute)
            ));
        }
    }
    anyhow::ensure!(
        !lines.is_empty(),
        "module `{module}` has no schedule trigger"
    );
    Ok(lines)
}

fn parse_flag(text: &str) -> anyhow::Result<(String, bool)> {
    let (name, value) = text
        .split_once('=')
        .with_context(|| format!("--flag {text}: expected NAME=on|off"))?;
    let on = match value {
        "on" | "true" => true,
        "off" | "false" => false,
        other => bail!("--flag {name}={other}: expected on or off"),
    };
    Ok((name.to_owned(), on))
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
            let client = switchyard::tls::http_client()
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
        Command::Schedule {
            command: ScheduleCommand::Next { module, count, dir },
        } => {
            for line in schedule_next(
                &module,
                count,
                dir.as_deref(),
                time::OffsetDateTime::now_utc(),
            )? {
                println!("{line}");
            }
        }
        Command::Token {
            command:
                TokenCommand::New {
                    name,
                    scopes,
                    modules,
                    sources,
                    repos,
                },
        } => {
            let restrictions: Vec<String> =
                [("modules", modules), ("sources", sources), ("repos", repos)]
                    .into_iter()
                    .filter(|(_, list)| !list.is_empty())
                    .map(|(key, list)| format!("{key}={}", list.join("+")))
                    .collect();
            let (token, entry) =
                switchyard::auth::new_restricted_token(&name, &scopes, &restrictions.join(";"))
                    .map_err(|e| anyhow::anyhow!(e))?;
            println!("token: {token}");
            println!("SWITCHYARD_API_TOKENS entry: {entry}");
        }
        Command::Validate { dir } => match switchyard::manifest::validate_dir(&dir) {
            Ok(registry) => {
                let names: Vec<&str> = registry.modules().iter().map(|m| m.name.as_str()).collect();
                println!("{} manifests valid: {}", names.len(), names.join(", "));
            }
            Err(errors) => {
                for e in &errors {
                    eprintln!("{e}");
                }
                eprintln!("{} error(s)", errors.len());
                std::process::exit(1);
            }
        },
        Command::Explain {
            source,
            kind,
            event,
            module,
            dir,
            file,
        } => {
            for line in explain_file(
                &source,
                kind.as_deref(),
                event,
                module.as_deref(),
                dir.as_deref(),
                &file,
            )? {
                println!("{line}");
            }
        }
        Command::Settings {
            command: SettingsCommand::Get { table, scope },
        } => {
            switchyard::settings::validate_scope(&scope).map_err(|e| anyhow::anyhow!(e))?;
            let store = DynamoStore::new(dynamo(&table).await, table.table.clone());
            let found = store
                .get_settings(std::slice::from_ref(&scope))
                .await
                .context("reading settings")?;
            let settings = found.into_iter().next().map(|(_, s)| s).unwrap_or_default();
            println!("{}", serde_json::to_string_pretty(&settings)?);
        }
        Command::Settings {
            command:
                SettingsCommand::Set {
                    table,
                    scope,
                    flags,
                    unset_flags,
                    configs,
                    unset_configs,
                },
        } => {
            switchyard::settings::validate_scope(&scope).map_err(|e| anyhow::anyhow!(e))?;
            let store = DynamoStore::new(dynamo(&table).await, table.table.clone());
            let found = store
                .get_settings(std::slice::from_ref(&scope))
                .await
                .context("reading settings")?;
            let mut settings = found.into_iter().next().map(|(_, s)| s).unwrap_or_default();
            for f in &flags {
                let (name, on) = parse_flag(f)?;
                settings.flags.insert(name, on);
            }
            for name in &unset_flags {
                settings.flags.remove(name);
            }
            for c in &configs {
                let (module, json) = c
                    .split_once('=')
                    .with_context(|| format!("--config {c}: expected MODULE=JSON"))?;
                let value: serde_json::Value = serde_json::from_str(json)
                    .with_context(|| format!("--config {module}: not JSON"))?;
                settings.config.insert(module.to_owned(), value);
            }
            for m in &unset_configs {
                settings.config.remove(m);
            }
            store
                .put_settings(&scope, &settings, time::OffsetDateTime::now_utc())
                .await
                .context("writing settings")?;
            println!("{}", serde_json::to_string_pretty(&settings)?);
        }
        Command::Invoke {
            api,
            module,
            payload,
            entity,
            config,
            idempotency_key,
        } => {
            remote::invoke(
                &api,
                &module,
                payload.as_deref(),
                entity,
                config.as_deref(),
                idempotency_key,
            )
            .await?;
        }
        Command::Jobs { command } => remote::jobs(command).await?,
        Command::Events { command } => remote::events(command).await?,
        Command::Replay {
            api,
            id,
            dry_run,
            force,
        } => remote::replay(&api, &id, dry_run, force).await?,
        Command::Registry { command } => remote::registry(command).await?,
        Command::Worker(args) => worker::run(args).await?,
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
    fn explain_names_the_failing_clause_for_a_payload_file() {
        let dir = tempdir_with(&[(
            "review",
            "name: review\ndescription: r\ntriggers:\n  - webhook: { event: pull_request, actions: [opened, reopened, synchronize] }\n",
        )]);
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../events/github-pull_request-closed.json");
        let lines = explain_file("github", None, None, None, Some(&dir), &file).unwrap();
        assert_eq!(
            lines[0],
            "event pull_request action closed entity acme/widgets#1347 from github"
        );
        assert_eq!(
            lines[1],
            "skip    review: action: actions: \"closed\" not in [opened, reopened, synchronize]"
        );
        assert!(explain_file("github", None, None, Some("nope"), Some(&dir), &file).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn validate_lists_every_error_of_every_file() {
        let dir = tempdir_with(&[
            (
                "a",
                "name: a\ndescription: x\ntriggers:\n  - webhook: { event: push, cooldown: soon, branches: [\"[\"] }\n",
            ),
            (
                "b",
                "name: b\ndescription: x\ntriggers:\n  - webhook: { event: push, filter: { $or: [{ a: 1 }] } }\n",
            ),
        ]);
        let errors = switchyard::manifest::validate_dir(&dir).unwrap_err();
        let keys: Vec<String> = errors.iter().map(|e| e.key.clone()).collect();
        assert_eq!(
            keys,
            [
                "triggers[0].webhook.branches",
                "triggers[0].webhook.cooldown",
                "triggers[0].webhook.filter.$or"
            ]
        );
        assert!(errors.iter().all(|e| e.line == Some(4)), "{errors:?}");
        let _ = std::fs::remove_dir_all(dir);
    }

    fn tempdir_with(modules: &[(&str, &str)]) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("switchyard-cli-{}", uuid::Uuid::new_v4().simple()));
        for (name, text) in modules {
            std::fs::create_dir_all(dir.join(name)).unwrap();
            std::fs::write(dir.join(name).join("module.yaml"), text).unwrap();
        }
        dir
    }

    #[test]
    fn schedule_next_prints_utc_and_zone_times() {
        let dir = tempdir_with(&[(
            "digest",
            "name: digest\ndescription: d\ntriggers:\n  - schedule: { cron: \"0 9 * * MON-FRI\", timezone: Europe/Berlin }\n",
        )]);
        let after = time::OffsetDateTime::parse(
            "2026-03-26T12:00:00Z",
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        let lines = schedule_next("digest", 2, Some(&dir), after).unwrap();
        assert_eq!(
            lines,
            [
                "digest trigger 0: 0 9 * * MON-FRI (Europe/Berlin)",
                "  2026-03-27T08:00Z  2026-03-27 09:00 CET",
                "  2026-03-30T07:00Z  2026-03-30 09:00 CEST",
            ]
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn flags_parse() {
        assert_eq!(
            parse_flag("pr_review=off").unwrap(),
            ("pr_review".to_owned(), false)
        );
        assert!(parse_flag("x=maybe").is_err());
        assert!(parse_flag("x").is_err());
    }

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
