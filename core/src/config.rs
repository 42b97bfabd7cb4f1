//! Configuration from the environment: one `Config` read once at cold start, never on the
//! request path. Every variable is documented in docs/configuration.md.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

pub use crate::source::{DEFAULT_TOLERANCE, Encoding, HmacScheme, Source, SourceKind};

/// Default body limit on Lambda: 6 MiB, Lambda's synchronous request payload ceiling.
pub const DEFAULT_MAX_BODY_BYTES: usize = 6 * 1024 * 1024;
/// Default body limit off Lambda (serve mode): 1 MiB. With [`ServeLimits::max_in_flight`]
/// it bounds the memory that unverified uploads can hold (128 x 1 MiB by default).
pub const DEFAULT_SERVE_MAX_BODY_BYTES: usize = 1024 * 1024;

/// Limits of serve mode (plain HTTP off Lambda; on Lambda, API Gateway enforces its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// `SWITCHYARD_HEADER_TIMEOUT_SECONDS` (default 10): a connection that has not sent a
    /// whole request head within it (also between keep-alive requests) is closed.
    pub header_timeout: Duration,
    /// `SWITCHYARD_REQUEST_TIMEOUT_SECONDS` (default 60): a request not answered within it,
    /// body upload included, gets 408 (a dispatch cut short resumes on redelivery).
    pub request_timeout: Duration,
    /// `SWITCHYARD_MAX_CONNECTIONS` (default 1024): open connections; past it, new ones wait
    /// in the listen backlog until one closes.
    pub max_connections: usize,
    /// `SWITCHYARD_MAX_IN_FLIGHT` (default 128): requests handled at once; past it, 503
    /// `overloaded` with `Retry-After`, before the body is read.
    pub max_in_flight: usize,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            max_connections: 1024,
            max_in_flight: 128,
        }
    }
}
/// Default size above which a module context is not sent inline (async invoke limit).
pub const DEFAULT_MAX_INVOKE_BYTES: usize = 1024 * 1024;

/// Everything the functions read from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `SWITCHYARD_TABLE`: the DynamoDB table (required).
    pub table: String,
    /// `SWITCHYARD_SOURCES` and `SWITCHYARD_SECRET_<ID>`: the webhook sources.
    pub sources: Vec<Source>,
    /// `SWITCHYARD_MAX_BODY_BYTES`: larger bodies answer 413. Default 6 MiB on Lambda
    /// (`AWS_LAMBDA_RUNTIME_API` set), 1 MiB in serve mode.
    pub max_body_bytes: usize,
    /// Serve mode's timeouts and limits.
    pub serve: ServeLimits,
    /// `SWITCHYARD_MAX_INVOKE_BYTES`: the largest module context sent inline.
    pub max_invoke_bytes: usize,
    /// `SWITCHYARD_FUNCTION_<MODULE>`: function name or ARN per module.
    pub function_overrides: BTreeMap<String, String>,
    /// `SWITCHYARD_EVENT_TTL_DAYS` (default 7): how long event items are kept.
    pub event_ttl: Duration,
    /// `SWITCHYARD_JOB_TTL_DAYS` (default 30): how long job items are kept.
    pub job_ttl: Duration,
    /// `SWITCHYARD_LEASE_SECONDS` (default 120): how long an in-progress delivery is
    /// reserved before a redelivery may take it over.
    pub lease: Duration,
    /// `SWITCHYARD_INVOKE_TIMEOUT_SECONDS` (default 10): operation timeout of one invoke.
    pub invoke_timeout: Duration,
    /// `SWITCHYARD_PR_FILES_TIMEOUT_MS`: how long the router may take to list a pull
    /// request's files for `paths:` filters (default 3,000 ms; path filters match after it).
    pub pr_files_timeout: Duration,
    /// `SWITCHYARD_DASHBOARD_URL`: the dashboard's URL (`https://<api>/dashboard`), for
    /// the job links of check runs and commit statuses.
    pub dashboard_url: Option<String>,
    /// `SWITCHYARD_LISTEN` (default `127.0.0.1:3000`): address in serve mode.
    pub listen: SocketAddr,
    /// `SWITCHYARD_SETTINGS_CACHE_SECONDS` (default 30): how long per-scope settings are
    /// cached in a running function.
    pub settings_ttl: Duration,
    /// `SWITCHYARD_METRICS_NAMESPACE` (default `Switchyard`): the EMF namespace; `SWITCHYARD_METRICS=off`
    /// turns metrics off (`None`).
    pub metrics_namespace: Option<String>,
    /// `SWITCHYARD_SCHEDULE_CATCH_UP_MINUTES` (default 15): how many missed minutes the
    /// scheduler runs after an outage; older ticks are recorded as skipped.
    pub schedule_catch_up: u32,
    /// `SWITCHYARD_FALLBACK_MODULE`: the module that gets events no module claims.
    pub fallback_module: Option<String>,
    /// `SWITCHYARD_REGISTRY_REFRESH` (seconds, default 15): how often a running function
    /// looks for a newly published registry version (one small read).
    pub registry_refresh: Duration,
    /// `SWITCHYARD_INDEX_SHARDS` (default 16, 1 to 256): partition keys each listing index
    /// and each pull queue is spread over. Every function of a deployment must agree.
    pub index_shards: u16,
}

/// A configuration problem found at start-up, naming the variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is not set or is empty.
    #[error("missing required environment variable {0}")]
    Missing(String),
    /// A variable is set to something that cannot be used.
    #[error("invalid value in environment variable {name}: {reason}")]
    Invalid {
        /// The variable's name.
        name: String,
        /// Why it was rejected (never contains a secret).
        reason: String,
    },
}

fn invalid(name: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name: name.to_owned(),
        reason: reason.into(),
    }
}

/// The environment-variable spelling of a source or module name: upper-case, `-` as `_`.
pub fn env_key(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '-' | '.' => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect()
}

/// Default number of index shards (`SWITCHYARD_INDEX_SHARDS`): every delivery writes one
/// event entry and one entry per job, each to one of this many partition keys, so no index
/// partition takes more than about 1/N of the writes.
pub const DEFAULT_SHARDS: u16 = 16;

/// `SWITCHYARD_INDEX_SHARDS`: 1 to 256, default [`DEFAULT_SHARDS`].
pub fn index_shards<'a>(get: &impl Fn(&str) -> Option<&'a str>) -> Result<u16, ConfigError> {
    let name = "SWITCHYARD_INDEX_SHARDS";
    match get(name) {
        None => Ok(DEFAULT_SHARDS),
        Some(v) => v
            .parse::<u16>()
            .ok()
            .filter(|n| (1..=256).contains(n))
            .ok_or_else(|| invalid(name, "expected a whole number from 1 to 256")),
    }
}

/// `SWITCHYARD_METRICS` (`emf`, the default, or `off`) and `SWITCHYARD_METRICS_NAMESPACE`.
pub fn metrics_namespace<'a>(
    get: &impl Fn(&str) -> Option<&'a str>,
) -> Result<Option<String>, ConfigError> {
    match get("SWITCHYARD_METRICS") {
        None | Some("emf") => Ok(Some(
            get("SWITCHYARD_METRICS_NAMESPACE")
                .unwrap_or("Switchyard")
                .to_owned(),
        )),
        Some("off") => Ok(None),
        Some(_) => Err(invalid("SWITCHYARD_METRICS", "expected `emf` or `off`")),
    }
}

/// The function for `module` among `overrides` (keyed by the env spelling of module names),
/// or `manifest_function`.
pub fn function_for(
    overrides: &BTreeMap<String, String>,
    module: &str,
    manifest_function: &str,
) -> String {
    overrides
        .get(&env_key(module))
        .cloned()
        .unwrap_or_else(|| manifest_function.to_owned())
}

/// The secrets of `SWITCHYARD_SECRET_<ID>`: comma-separated, newest first; or, when the
/// value starts with `[`, a JSON array of strings (for secrets that contain a comma).
/// Empty entries are dropped; none left is an error naming `var`.
pub fn parse_secrets(var: &str, value: &str) -> Result<Vec<SecretString>, ConfigError> {
    let value = value.trim();
    let list: Vec<String> = if value.starts_with('[') {
        // The error never quotes the value: it is a secret.
        serde_json::from_str::<Vec<String>>(value)
            .map_err(|_| invalid(var, "starts with `[` but is not a JSON array of strings"))?
    } else {
        value.split(',').map(str::to_owned).collect()
    };
    let secrets: Vec<SecretString> = list
        .into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .map(SecretString::from)
        .collect();
    if secrets.is_empty() {
        return Err(ConfigError::Missing(var.to_owned()));
    }
    Ok(secrets)
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(std::env::vars())
    }

    /// Reads the process environment for a function that receives no webhooks (scheduler,
    /// api): `SWITCHYARD_SOURCES` is optional.
    pub fn from_env_without_sources() -> Result<Self, ConfigError> {
        Self::read(std::env::vars(), false)
    }

    /// As [`Config::from_env_without_sources`], from the given variables.
    pub fn from_vars_without_sources(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        Self::read(vars, false)
    }

    /// Reads configuration from the given variables (the process environment in `from_env`;
    /// the functions pass it with secret references resolved, `switchyard::secrets::environment`).
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        Self::read(vars, true)
    }

    fn read(
        vars: impl IntoIterator<Item = (String, String)>,
        require_sources: bool,
    ) -> Result<Self, ConfigError> {
        let vars: BTreeMap<String, String> = vars.into_iter().collect();
        let get = |name: &str| vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
        let required = |name: &str| get(name).ok_or_else(|| ConfigError::Missing(name.to_owned()));
        let number = |name: &str, default: u64| -> Result<u64, ConfigError> {
            match get(name) {
                None => Ok(default),
                Some(v) => v
                    .parse::<u64>()
                    .map_err(|_| invalid(name, "expected a whole number")),
            }
        };

        let table = required("SWITCHYARD_TABLE")?.to_owned();
        let mut sources = Vec::new();
        let source_list = if require_sources {
            required("SWITCHYARD_SOURCES")?
        } else {
            get("SWITCHYARD_SOURCES").unwrap_or_default()
        };
        for entry in source_list.split(',') {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            let (id, kind) = entry.split_once('=').ok_or_else(|| {
                invalid(
                    "SWITCHYARD_SOURCES",
                    format!("entry `{entry}` is not id=kind"),
                )
            })?;
            let id = id.trim();
            if id.is_empty()
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(invalid(
                    "SWITCHYARD_SOURCES",
                    format!("source id `{id}` must be letters, digits, `-` or `_`"),
                ));
            }
            // The ids of switchyard's own events: a webhook source by one of these names would
            // share their delivery ids (`EVENT#schedule#...`) and their triggers.
            if ["api", "schedule", "internal"].contains(&id) {
                return Err(invalid(
                    "SWITCHYARD_SOURCES",
                    format!("source id `{id}` is reserved (api, schedule, internal)"),
                ));
            }
            let kind = SourceKind::parse(kind.trim()).ok_or_else(|| {
                invalid(
                    "SWITCHYARD_SOURCES",
                    format!("unknown kind `{}` for source `{id}`", kind.trim()),
                )
            })?;
            if sources.iter().any(|s: &Source| s.id == id) {
                return Err(invalid(
                    "SWITCHYARD_SOURCES",
                    format!("source `{id}` is listed twice"),
                ));
            }
            let key = env_key(id);
            let secret_var = format!("SWITCHYARD_SECRET_{key}");
            let secrets = parse_secrets(&secret_var, required(&secret_var)?)?;
            for s in &secrets {
                let len = if kind == SourceKind::Standard {
                    crate::signature::standard_key(s)
                        .map_err(|_| {
                            invalid(
                                &secret_var,
                                "a Standard Webhooks secret must be `whsec_` followed by base64",
                            )
                        })?
                        .len()
                } else {
                    s.expose_secret().len()
                };
                if len < crate::signature::MIN_SECRET_BYTES {
                    return Err(invalid(
                        &secret_var,
                        format!(
                            "a secret is {len} bytes{}; at least {} are required",
                            if kind == SourceKind::Standard {
                                " after decoding"
                            } else {
                                ""
                            },
                            crate::signature::MIN_SECRET_BYTES
                        ),
                    ));
                }
            }
            let mut hmac = HmacScheme::default();
            if kind == SourceKind::Hmac {
                if let Some(h) = get(&format!("SWITCHYARD_HMAC_{key}_HEADER")) {
                    hmac.header = h.to_owned();
                }
                hmac.prefix = get(&format!("SWITCHYARD_HMAC_{key}_PREFIX")).map(str::to_owned);
                let enc_var = format!("SWITCHYARD_HMAC_{key}_ENCODING");
                hmac.encoding = match get(&enc_var) {
                    None | Some("hex") => Encoding::Hex,
                    Some("base64") => Encoding::Base64,
                    Some(_) => return Err(invalid(&enc_var, "expected `hex` or `base64`")),
                };
                if let Some(h) = get(&format!("SWITCHYARD_HMAC_{key}_EVENT_HEADER")) {
                    hmac.event_header = h.to_owned();
                }
                if http::HeaderName::try_from(hmac.header.as_str()).is_err() {
                    return Err(invalid(
                        &format!("SWITCHYARD_HMAC_{key}_HEADER"),
                        "not a header name",
                    ));
                }
            }
            let tolerance = Duration::from_secs(number(
                &format!("SWITCHYARD_TOLERANCE_{key}_SECONDS"),
                DEFAULT_TOLERANCE.as_secs(),
            )?);
            sources.push(Source {
                id: id.to_owned(),
                kind,
                secrets,
                hmac,
                tolerance,
            });
        }
        if sources.is_empty() && require_sources {
            return Err(invalid("SWITCHYARD_SOURCES", "no source is configured"));
        }

        let function_overrides = vars
            .iter()
            .filter_map(|(k, v)| {
                let module = k.strip_prefix("SWITCHYARD_FUNCTION_")?;
                let v = v.trim();
                (!v.is_empty()).then(|| (module.to_owned(), v.to_owned()))
            })
            .collect();
        let listen_var = "SWITCHYARD_LISTEN";
        let listen = get(listen_var)
            .unwrap_or("127.0.0.1:3000")
            .parse()
            .map_err(|_| invalid(listen_var, "expected host:port"))?;

        const DAY: u64 = 24 * 60 * 60;
        Ok(Self {
            table,
            sources,
            max_body_bytes: number(
                "SWITCHYARD_MAX_BODY_BYTES",
                if get("AWS_LAMBDA_RUNTIME_API").is_some() {
                    DEFAULT_MAX_BODY_BYTES
                } else {
                    DEFAULT_SERVE_MAX_BODY_BYTES
                } as u64,
            )? as usize,
            serve: {
                let d = ServeLimits::default();
                let positive = |name: &str, default: u64| -> Result<u64, ConfigError> {
                    match number(name, default)? {
                        0 => Err(invalid(name, "must be at least 1")),
                        n => Ok(n),
                    }
                };
                ServeLimits {
                    header_timeout: Duration::from_secs(positive(
                        "SWITCHYARD_HEADER_TIMEOUT_SECONDS",
                        d.header_timeout.as_secs(),
                    )?),
                    request_timeout: Duration::from_secs(positive(
                        "SWITCHYARD_REQUEST_TIMEOUT_SECONDS",
                        d.request_timeout.as_secs(),
                    )?),
                    max_connections: positive(
                        "SWITCHYARD_MAX_CONNECTIONS",
                        d.max_connections as u64,
                    )? as usize,
                    max_in_flight: positive("SWITCHYARD_MAX_IN_FLIGHT", d.max_in_flight as u64)?
                        as usize,
                }
            },
            max_invoke_bytes: number(
                "SWITCHYARD_MAX_INVOKE_BYTES",
                DEFAULT_MAX_INVOKE_BYTES as u64,
            )? as usize,
            function_overrides,
            event_ttl: Duration::from_secs(number("SWITCHYARD_EVENT_TTL_DAYS", 7)? * DAY),
            job_ttl: Duration::from_secs(number("SWITCHYARD_JOB_TTL_DAYS", 30)? * DAY),
            lease: Duration::from_secs(number("SWITCHYARD_LEASE_SECONDS", 120)?),
            invoke_timeout: Duration::from_secs(number("SWITCHYARD_INVOKE_TIMEOUT_SECONDS", 10)?),
            pr_files_timeout: Duration::from_millis(number(
                "SWITCHYARD_PR_FILES_TIMEOUT_MS",
                3000,
            )?),
            dashboard_url: get("SWITCHYARD_DASHBOARD_URL").map(str::to_owned),
            listen,
            settings_ttl: Duration::from_secs(number("SWITCHYARD_SETTINGS_CACHE_SECONDS", 30)?),
            metrics_namespace: metrics_namespace(&get)?,
            fallback_module: get("SWITCHYARD_FALLBACK_MODULE").map(str::to_owned),
            registry_refresh: Duration::from_secs(number("SWITCHYARD_REGISTRY_REFRESH", 15)?),
            index_shards: index_shards(&get)?,
            schedule_catch_up: u32::try_from(number("SWITCHYARD_SCHEDULE_CATCH_UP_MINUTES", 15)?)
                .map_err(|_| {
                invalid("SWITCHYARD_SCHEDULE_CATCH_UP_MINUTES", "too large")
            })?,
        })
    }

    /// The source configured under `id`, if any.
    pub fn source(&self, id: &str) -> Option<&Source> {
        self.sources.iter().find(|s| s.id == id)
    }

    /// The function to invoke for `module`: its override, or the manifest's `function`.
    pub fn function_for(&self, module: &str, manifest_function: &str) -> String {
        function_for(&self.function_overrides, module, manifest_function)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn reads_sources_secrets_and_overrides() {
        let cfg = Config::from_vars(vars(&[
            ("SWITCHYARD_TABLE", "t"),
            ("SWITCHYARD_SOURCES", "github=github, my-ci=hmac"),
            (
                "SWITCHYARD_SECRET_GITHUB",
                "new-secret-0123456789,old-secret-0123456789",
            ),
            ("SWITCHYARD_SECRET_MY_CI", "ci-secret-0123456789"),
            ("SWITCHYARD_HMAC_MY_CI_HEADER", "X-Ci-Sig"),
            ("SWITCHYARD_HMAC_MY_CI_PREFIX", "sha256="),
            ("SWITCHYARD_HMAC_MY_CI_ENCODING", "base64"),
            (
                "SWITCHYARD_FUNCTION_PR_REVIEW",
                "arn:aws:lambda:eu-west-1:1:function:x",
            ),
        ]))
        .unwrap();
        assert_eq!(cfg.sources.len(), 2);
        assert_eq!(cfg.source("github").unwrap().secrets.len(), 2);
        let ci = cfg.source("my-ci").unwrap();
        assert_eq!(ci.kind, SourceKind::Hmac);
        assert_eq!(ci.hmac.header, "X-Ci-Sig");
        assert_eq!(ci.hmac.prefix.as_deref(), Some("sha256="));
        assert_eq!(ci.hmac.encoding, Encoding::Base64);
        assert_eq!(
            cfg.function_for("pr-review", "pr-review"),
            "arn:aws:lambda:eu-west-1:1:function:x"
        );
        assert_eq!(cfg.function_for("notify", "notify"), "notify");
        // Off Lambda the body limit is lower by default.
        assert_eq!(cfg.max_body_bytes, DEFAULT_SERVE_MAX_BODY_BYTES);
        assert_eq!(cfg.serve, ServeLimits::default());
    }

    #[test]
    fn missing_variables_are_named() {
        let err = Config::from_vars(vars(&[("SWITCHYARD_SOURCES", "github=github")])).unwrap_err();
        assert!(err.to_string().contains("SWITCHYARD_TABLE"), "{err}");
        let err = Config::from_vars(vars(&[
            ("SWITCHYARD_TABLE", "t"),
            ("SWITCHYARD_SOURCES", "github=github"),
        ]))
        .unwrap_err();
        assert!(
            err.to_string().contains("SWITCHYARD_SECRET_GITHUB"),
            "{err}"
        );
        let err = Config::from_vars(vars(&[
            ("SWITCHYARD_TABLE", "t"),
            ("SWITCHYARD_SOURCES", "github=github"),
            ("SWITCHYARD_SECRET_GITHUB", " , "),
        ]))
        .unwrap_err();
        assert!(
            err.to_string().contains("SWITCHYARD_SECRET_GITHUB"),
            "{err}"
        );
        let err = Config::from_vars(vars(&[
            ("SWITCHYARD_TABLE", "t"),
            ("SWITCHYARD_SOURCES", "x=bitbucket"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("bitbucket"), "{err}");
    }

    #[test]
    fn debug_output_never_contains_a_secret() {
        let cfg = Config::from_vars(vars(&[
            ("SWITCHYARD_TABLE", "t"),
            ("SWITCHYARD_SOURCES", "github=github,std=standard"),
            ("SWITCHYARD_SECRET_GITHUB", "hunter2-very-secret"),
            (
                "SWITCHYARD_SECRET_STD",
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            ),
        ]))
        .unwrap();
        let debug = format!("{cfg:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(
            !debug.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            "{debug}"
        );
        assert!(debug.contains("REDACTED"), "{debug}");
    }

    #[test]
    fn standard_secrets_must_decode() {
        let err = Config::from_vars(vars(&[
            ("SWITCHYARD_TABLE", "t"),
            ("SWITCHYARD_SOURCES", "std=standard"),
            ("SWITCHYARD_SECRET_STD", "whsec_***not-base64***"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("SWITCHYARD_SECRET_STD"), "{err}");
        assert!(!err.to_string().contains("not-base64"), "{err}");
    }

    fn with_secret(kind: &str, secret: &str) -> Result<Config, ConfigError> {
        Config::from_vars(vars(&[
            ("SWITCHYARD_TABLE", "t"),
            ("SWITCHYARD_SOURCES", &format!("s={kind}")),
            ("SWITCHYARD_SECRET_S", secret),
        ]))
    }

    #[test]
    fn empty_or_short_secrets_are_refused_at_start_up_for_every_kind() {
        // `whsec_` alone decodes to an empty key: HMAC with it is something anyone computes.
        for secret in ["whsec_", "whsec_c2hvcnQ="] {
            let err = with_secret("standard", secret).unwrap_err().to_string();
            assert!(err.contains("SWITCHYARD_SECRET_S"), "{err}");
        }
        for kind in ["github", "forgejo", "gitea", "gitlab", "hmac"] {
            let err = with_secret(kind, "short").unwrap_err().to_string();
            assert!(err.contains("at least 16"), "{kind}: {err}");
            assert!(!err.contains("short\""), "{kind}: {err}");
            assert!(with_secret(kind, "0123456789abcdef").is_ok(), "{kind}");
        }
        // One short secret among good ones is refused too.
        assert!(with_secret("github", "0123456789abcdef,tiny").is_err());
        // Switchyard's own source ids are not webhook sources.
        for id in ["api", "schedule", "internal"] {
            let err = Config::from_vars(vars(&[
                ("SWITCHYARD_TABLE", "t"),
                ("SWITCHYARD_SOURCES", &format!("{id}=github")),
                ("SWITCHYARD_SECRET_API", "0123456789abcdef"),
            ]))
            .unwrap_err()
            .to_string();
            assert!(err.contains("reserved"), "{id}: {err}");
        }
    }

    #[test]
    fn a_json_array_holds_secrets_with_commas() {
        let cfg = with_secret(
            "github",
            r#"["new,secret-0123456789", "old-secret-0123456789"]"#,
        )
        .unwrap();
        let s = cfg.source("s").unwrap();
        assert_eq!(s.secrets.len(), 2);
        assert_eq!(s.secrets[0].expose_secret(), "new,secret-0123456789");
        // Without the brackets the comma separates.
        let cfg = with_secret("github", "new,secret-0123456789").unwrap_err();
        assert!(cfg.to_string().contains("at least 16"), "{cfg}");
        let err = with_secret("github", r#"["unterminated"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("JSON array"), "{err}");
        assert!(!err.contains("unterminated"), "{err}");
    }

    #[test]
    fn the_body_limit_is_lower_off_lambda_and_serve_limits_are_read() {
        let base = [
            ("SWITCHYARD_TABLE", "t"),
            ("SWITCHYARD_SOURCES", "g=github"),
            ("SWITCHYARD_SECRET_G", "0123456789abcdef"),
        ];
        let off = Config::from_vars(vars(&base)).unwrap();
        assert_eq!(off.max_body_bytes, DEFAULT_SERVE_MAX_BODY_BYTES);
        let mut on = base.to_vec();
        on.push(("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"));
        assert_eq!(
            Config::from_vars(vars(&on)).unwrap().max_body_bytes,
            DEFAULT_MAX_BODY_BYTES
        );
        let mut set = base.to_vec();
        set.extend([
            ("SWITCHYARD_HEADER_TIMEOUT_SECONDS", "3"),
            ("SWITCHYARD_REQUEST_TIMEOUT_SECONDS", "4"),
            ("SWITCHYARD_MAX_CONNECTIONS", "5"),
            ("SWITCHYARD_MAX_IN_FLIGHT", "6"),
        ]);
        let c = Config::from_vars(vars(&set)).unwrap();
        assert_eq!(
            c.serve,
            ServeLimits {
                header_timeout: Duration::from_secs(3),
                request_timeout: Duration::from_secs(4),
                max_connections: 5,
                max_in_flight: 6,
            }
        );
        let mut zero = base.to_vec();
        zero.push(("SWITCHYARD_MAX_IN_FLIGHT", "0"));
        let err = Config::from_vars(vars(&zero)).unwrap_err().to_string();
        assert!(err.contains("SWITCHYARD_MAX_IN_FLIGHT"), "{err}");
    }
}
