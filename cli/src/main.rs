//! The `switchyard` command line: create the table, sign and send webhooks like a forge
//! would, and read job records. For local development and operators.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use signing::SignArgs;
use table::TableArgs;

mod manifests;
mod remote;
mod signing;
mod table;
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

/// The body and the headers to send with it.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Table {
            command: TableCommand::Create(args),
        } => table::create(&args).await,
        Command::Sign(args) => signing::sign(&args),
        Command::Send { url, sign } => signing::send(&url, &sign).await,
        Command::Schedule {
            command: ScheduleCommand::Next { module, count, dir },
        } => manifests::schedule(&module, count, dir.as_deref()),
        Command::Token {
            command:
                TokenCommand::New {
                    name,
                    scopes,
                    modules,
                    sources,
                    repos,
                },
        } => new_token(
            &name,
            &scopes,
            [("modules", modules), ("sources", sources), ("repos", repos)],
        ),
        Command::Validate { dir } => {
            manifests::validate(&dir);
            Ok(())
        }
        Command::Explain {
            source,
            kind,
            event,
            module,
            dir,
            file,
        } => {
            let (kind, module, dir) = (kind.as_deref(), module.as_deref(), dir.as_deref());
            for line in manifests::explain_file(&source, kind, event, module, dir, &file)? {
                println!("{line}");
            }
            Ok(())
        }
        Command::Settings {
            command: SettingsCommand::Get { table, scope },
        } => table::settings_get(&table, &scope).await,
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
            let change = table::SettingsChange {
                flags: &flags,
                unset_flags: &unset_flags,
                configs: &configs,
                unset_configs: &unset_configs,
            };
            table::settings_set(&table, &scope, change).await
        }
        Command::Invoke {
            api,
            module,
            payload,
            entity,
            config,
            idempotency_key,
        } => {
            let (payload, config) = (payload.as_deref(), config.as_deref());
            remote::invoke(&api, &module, payload, entity, config, idempotency_key).await
        }
        Command::Jobs { command } => remote::jobs(command).await,
        Command::Events { command } => remote::events(command).await,
        Command::Replay {
            api,
            id,
            dry_run,
            force,
        } => remote::replay(&api, &id, dry_run, force).await,
        Command::Registry { command } => remote::registry(command).await,
        Command::Worker(args) => worker::run(args).await,
        Command::Job {
            command: JobCommand::Get { table, id },
        } => table::job(&table, &id).await,
    }
}

/// `switchyard token new`: a new token and its `SWITCHYARD_API_TOKENS` entry, bound by the
/// given restrictions.
fn new_token<const N: usize>(
    name: &str,
    scopes: &str,
    restrictions: [(&str, Vec<String>); N],
) -> anyhow::Result<()> {
    let restrictions: Vec<String> = (restrictions.into_iter())
        .filter(|(_, list)| !list.is_empty())
        .map(|(key, list)| format!("{key}={}", list.join("+")))
        .collect();
    let (token, entry) =
        switchyard::auth::new_restricted_token(name, scopes, &restrictions.join(";"))?;
    println!("token: {token}");
    println!("SWITCHYARD_API_TOKENS entry: {entry}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::manifests::{explain_file, schedule_next};
    use crate::signing::{event_from_file_name, gitlab_hook_name};
    use crate::table::parse_flag;

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
