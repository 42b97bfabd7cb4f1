//! The commands that talk to the table directly (operators, local runs): `table create`,
//! `job get`, `settings get` and `settings set`.

use anyhow::{Context as _, bail};
use clap::Args;
use switchyard::store::{DynamoStore, JobStore, SettingsStore};

#[derive(Args)]
pub(crate) struct TableArgs {
    /// DynamoDB endpoint (e.g. DynamoDB Local); the AWS default when absent.
    #[arg(long, env = "AWS_ENDPOINT_URL_DYNAMODB")]
    endpoint: Option<String>,
    /// Table name.
    #[arg(long, env = "SWITCHYARD_TABLE")]
    table: String,
}

async fn dynamo(args: &TableArgs) -> aws_sdk_dynamodb::Client {
    switchyard::aws::dynamodb(&sdk(args).await)
}

/// The store over `--table`, at `--endpoint` when given.
async fn store(args: &TableArgs) -> anyhow::Result<DynamoStore> {
    let sdk = sdk(args).await;
    let wire = match &args.endpoint {
        Some(endpoint) => {
            let region = sdk
                .region()
                .map_or("us-east-1".to_owned(), ToString::to_string);
            let credentials = sdk.credentials_provider().context("no AWS credentials")?;
            switchyard::store::dynamo::wire::Wire::new(endpoint, &region, credentials)?
        }
        None => switchyard::store::dynamo::wire::Wire::from_sdk(&sdk)?,
    };
    Ok(DynamoStore::new(
        switchyard::aws::dynamodb(&sdk),
        wire,
        args.table.clone(),
    ))
}

async fn sdk(args: &TableArgs) -> aws_config::SdkConfig {
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
    loader.load().await
}

pub(crate) fn parse_flag(text: &str) -> anyhow::Result<(String, bool)> {
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

/// `switchyard table create`.
pub(crate) async fn create(args: &TableArgs) -> anyhow::Result<()> {
    let client = dynamo(args).await;
    (DynamoStore::create_table(&client, &args.table).await)
        .with_context(|| format!("creating table {}", args.table))?;
    println!("table {} is ready (TTL on expires_at)", args.table);
    Ok(())
}

/// `switchyard job get`.
pub(crate) async fn job(table: &TableArgs, id: &str) -> anyhow::Result<()> {
    let store = store(table).await?;
    match store.get_job(id).await.context("reading the job")? {
        Some(job) => println!("{}", serde_json::to_string_pretty(&job)?),
        None => bail!("no job {id}"),
    }
    Ok(())
}

async fn settings_of(
    table: &TableArgs,
    scope: &str,
) -> anyhow::Result<(DynamoStore, switchyard::settings::Settings)> {
    switchyard::settings::validate_scope(scope)?;
    let store = store(table).await?;
    let found = (store.get_settings(&[scope.to_owned()]).await).context("reading settings")?;
    let settings = found.into_iter().next().map(|(_, s)| s).unwrap_or_default();
    Ok((store, settings))
}

/// `switchyard settings get`.
pub(crate) async fn settings_get(table: &TableArgs, scope: &str) -> anyhow::Result<()> {
    let (_, settings) = settings_of(table, scope).await?;
    println!("{}", serde_json::to_string_pretty(&settings)?);
    Ok(())
}

/// What `switchyard settings set` changes.
pub(crate) struct SettingsChange<'a> {
    pub(crate) flags: &'a [String],
    pub(crate) unset_flags: &'a [String],
    pub(crate) configs: &'a [String],
    pub(crate) unset_configs: &'a [String],
}

/// `switchyard settings set`: reads the scope's settings, applies the change, writes them.
pub(crate) async fn settings_set(
    table: &TableArgs,
    scope: &str,
    change: SettingsChange<'_>,
) -> anyhow::Result<()> {
    let (store, mut settings) = settings_of(table, scope).await?;
    for f in change.flags {
        let (name, on) = parse_flag(f)?;
        settings.flags.insert(name, on);
    }
    for name in change.unset_flags {
        settings.flags.remove(name);
    }
    for c in change.configs {
        let (module, json) =
            (c.split_once('=')).with_context(|| format!("--config {c}: expected MODULE=JSON"))?;
        let value: serde_json::Value =
            serde_json::from_str(json).with_context(|| format!("--config {module}: not JSON"))?;
        settings.config.insert(module.to_owned(), value);
    }
    for m in change.unset_configs {
        settings.config.remove(m);
    }
    (store
        .put_settings(scope, &settings, time::OffsetDateTime::now_utc())
        .await)
        .context("writing settings")?;
    println!("{}", serde_json::to_string_pretty(&settings)?);
    Ok(())
}
