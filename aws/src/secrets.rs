//! Secrets read at cold start: a variable `NAME` that holds a secret (a webhook secret, the
//! API token hashes, a forge token, a chat URL) may instead be given as `NAME_SECRET_REF`,
//! naming an AWS Secrets Manager secret: `<secret-id>` (its whole `SecretString`) or
//! `<secret-id>:SecretString:<json-key>` (one key of a JSON `SecretString`, the form
//! CloudFormation's dynamic references use). Each distinct secret is fetched once, at start,
//! and the value never enters the function's configuration (`lambda:GetFunctionConfiguration`
//! shows only the reference). Local runs set `NAME` itself and make no call.

use std::collections::BTreeMap;

use async_trait::async_trait;

/// The suffix of a variable that names a secret instead of holding it.
pub const REF_SUFFIX: &str = "_SECRET_REF";

/// Why the environment could not be resolved. Never holds a secret value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// A reference is not of the documented form.
    #[error("{var}: `{reference}` is not `<secret-id>` or `<secret-id>:SecretString:<json-key>`")]
    BadReference {
        /// The `_SECRET_REF` variable.
        var: String,
        /// Its value (a name, not a secret).
        reference: String,
    },
    /// Both the variable and its reference are set.
    #[error("set {var} or {var}{REF_SUFFIX}, not both")]
    Both {
        /// The variable.
        var: String,
    },
    /// Secrets Manager did not answer the secret.
    #[error("{var}: secret `{secret_id}` could not be read")]
    Fetch {
        /// The `_SECRET_REF` variable.
        var: String,
        /// The secret's id.
        secret_id: String,
        /// Why (the service's error, which names no value).
        #[source]
        reason: SourceError,
    },
    /// The secret is not JSON or lacks the key.
    #[error(
        "{var}: secret `{secret_id}` has no string key `{key}` (is its SecretString a JSON object?)"
    )]
    MissingKey {
        /// The `_SECRET_REF` variable.
        var: String,
        /// The secret's id.
        secret_id: String,
        /// The key asked for.
        key: String,
    },
}

/// Why a secret source did not answer a secret (the service's error, which names no value).
pub type SourceError = switchyard_core::errors::BoxError;

/// Where secret values come from.
#[async_trait]
pub trait SecretSource: Send + Sync {
    /// The `SecretString` of secret `id`.
    async fn secret_string(&self, id: &str) -> Result<String, SourceError>;
}

/// AWS Secrets Manager (`secretsmanager:GetSecretValue`).
#[derive(Debug, Clone)]
pub struct SecretsManager {
    client: aws_sdk_secretsmanager::Client,
}

impl SecretsManager {
    /// Over `client`.
    pub fn new(client: aws_sdk_secretsmanager::Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl SecretSource for SecretsManager {
    async fn secret_string(&self, id: &str) -> Result<String, SourceError> {
        let out = self.client.get_secret_value().secret_id(id).send().await?;
        out.secret_string
            .ok_or_else(|| "the secret has no SecretString (binary secrets are not read)".into())
    }
}

/// A parsed `_SECRET_REF`: the secret and, optionally, the JSON key.
fn parse_reference(var: &str, reference: &str) -> Result<(String, Option<String>), SecretError> {
    let bad = || SecretError::BadReference {
        var: var.to_owned(),
        reference: crate::store::bounded(reference, 200),
    };
    let reference = reference.trim();
    let (id, key) = match reference.split_once(":SecretString:") {
        Some((id, key)) => (id, Some(key)),
        None => (reference, None),
    };
    if id.is_empty() || key.is_some_and(str::is_empty) {
        return Err(bad());
    }
    Ok((id.to_owned(), key.map(str::to_owned)))
}

/// `vars` with every `NAME_SECRET_REF` replaced by `NAME` = the secret's value: one fetch
/// per distinct secret id, whatever the number of keys read from it.
pub async fn resolve(
    vars: impl IntoIterator<Item = (String, String)>,
    source: &dyn SecretSource,
) -> Result<BTreeMap<String, String>, SecretError> {
    let mut vars: BTreeMap<String, String> = vars.into_iter().collect();
    let refs: Vec<(String, String)> = vars
        .iter()
        .filter(|(k, v)| k.ends_with(REF_SUFFIX) && !v.trim().is_empty())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut fetched: BTreeMap<String, String> = BTreeMap::new();
    for (ref_var, reference) in refs {
        let var = ref_var.trim_end_matches(REF_SUFFIX).to_owned();
        if vars.get(&var).is_some_and(|v| !v.trim().is_empty()) {
            return Err(SecretError::Both { var });
        }
        let (id, key) = parse_reference(&ref_var, &reference)?;
        if !fetched.contains_key(&id) {
            let value = source
                .secret_string(&id)
                .await
                .map_err(|reason| SecretError::Fetch {
                    var: ref_var.clone(),
                    secret_id: id.clone(),
                    reason,
                })?;
            fetched.insert(id.clone(), value);
        }
        let whole = &fetched[&id];
        let value = match key {
            None => whole.clone(),
            Some(key) => serde_json::from_str::<serde_json::Value>(whole)
                .ok()
                .and_then(|v| v.get(&key).and_then(|x| x.as_str()).map(str::to_owned))
                .ok_or_else(|| SecretError::MissingKey {
                    var: ref_var.clone(),
                    secret_id: id.clone(),
                    key,
                })?,
        };
        vars.remove(&ref_var);
        vars.insert(var, value);
    }
    Ok(vars)
}

/// The process environment with its secret references resolved through Secrets Manager.
/// Without references no client is built and nothing is called. Resolved once per process:
/// later calls (the module runtime after a module's own `main`) get the same map.
pub async fn environment() -> Result<BTreeMap<String, String>, SecretError> {
    static RESOLVED: tokio::sync::OnceCell<BTreeMap<String, String>> =
        tokio::sync::OnceCell::const_new();
    RESOLVED.get_or_try_init(resolve_environment).await.cloned()
}

async fn resolve_environment() -> Result<BTreeMap<String, String>, SecretError> {
    let vars: Vec<(String, String)> = std::env::vars().collect();
    if !vars
        .iter()
        .any(|(k, v)| k.ends_with(REF_SUFFIX) && !v.trim().is_empty())
    {
        return Ok(vars.into_iter().collect());
    }
    let sdk = crate::sdk::sdk_config().await;
    let source = SecretsManager::new(crate::sdk::secretsmanager(&sdk));
    resolve(vars, &source).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_a_secret_id_and_an_optional_json_key() {
        assert_eq!(
            parse_reference("X", "switchyard:SecretString:github").unwrap(),
            ("switchyard".into(), Some("github".into()))
        );
        assert_eq!(
            parse_reference("X", "tokens").unwrap(),
            ("tokens".into(), None)
        );
        for bad in ["", ":SecretString:k", "s:SecretString:"] {
            assert!(parse_reference("X", bad).is_err(), "{bad:?}");
        }
    }
}
