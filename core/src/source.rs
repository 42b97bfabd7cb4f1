//! Webhook sources: how each configured source is verified (its kind, secrets and header
//! layout), as read from `SWITCHYARD_SOURCES` by [`crate::config`].

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

/// The kind of a webhook source: which signature scheme and which headers it uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// GitHub: `X-Hub-Signature-256: sha256=<hex>`.
    Github,
    /// Forgejo: `X-Forgejo-Signature: <hex>`.
    Forgejo,
    /// Gitea: `X-Gitea-Signature: <hex>`.
    Gitea,
    /// GitLab: `X-Gitlab-Token: <shared token>`.
    Gitlab,
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature`.
    Standard,
    /// Generic HMAC-SHA256 with a configurable header, prefix and encoding.
    Hmac,
    /// Internal: ticks made by the scheduler (not configurable as a webhook source).
    Schedule,
    /// Internal: starts through the HTTP API (not configurable as a webhook source).
    Api,
    /// Internal: events sent by services through `POST /events` (not a webhook source).
    Internal,
}

impl SourceKind {
    /// Parses a kind name as written in `SWITCHYARD_SOURCES`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "github" => Self::Github,
            "forgejo" => Self::Forgejo,
            "gitea" => Self::Gitea,
            "gitlab" => Self::Gitlab,
            "standard" => Self::Standard,
            "hmac" => Self::Hmac,
            _ => return None,
        })
    }

    /// The kind's name, as written in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Github => "github",
            Self::Forgejo => "forgejo",
            Self::Gitea => "gitea",
            Self::Gitlab => "gitlab",
            Self::Standard => "standard",
            Self::Hmac => "hmac",
            Self::Schedule => "schedule",
            Self::Api => "api",
            Self::Internal => "internal",
        }
    }
}

impl std::fmt::Display for SourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a generic `hmac` source encodes its signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Lower- or upper-case hexadecimal.
    Hex,
    /// Standard base64 with padding.
    Base64,
}

/// The header layout of a generic `hmac` source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HmacScheme {
    /// Header carrying the signature, e.g. `X-Signature`.
    pub header: String,
    /// Prefix the signature value must carry (stripped before decoding), e.g. `sha256=`.
    pub prefix: Option<String>,
    /// Encoding of the signature bytes.
    pub encoding: Encoding,
    /// Header naming the event type (default `X-Event-Type`); the payload's `type` otherwise.
    pub event_header: String,
}

impl Default for HmacScheme {
    fn default() -> Self {
        Self {
            header: "X-Signature".into(),
            prefix: None,
            encoding: Encoding::Hex,
            event_header: "X-Event-Type".into(),
        }
    }
}

/// One configured webhook source, addressed as `POST /webhooks/{id}`.
///
/// `Debug` never shows the secrets: they are `SecretString`s.
#[derive(Debug, Clone)]
pub struct Source {
    /// The id in the URL and in event keys.
    pub id: String,
    /// The signature scheme.
    pub kind: SourceKind,
    /// Accepted secrets, newest first; any of them verifies (rotation).
    pub secrets: Vec<SecretString>,
    /// Header layout, for `hmac` sources.
    pub hmac: HmacScheme,
    /// Accepted clock skew for schemes that sign a timestamp (Standard Webhooks).
    pub tolerance: Duration,
}

impl Source {
    /// A source with the defaults for its kind and the given secrets.
    pub fn new(id: impl Into<String>, kind: SourceKind, secrets: &[&str]) -> Self {
        Self {
            id: id.into(),
            kind,
            secrets: secrets
                .iter()
                .map(|s| SecretString::from((*s).to_owned()))
                .collect(),
            hmac: HmacScheme::default(),
            tolerance: DEFAULT_TOLERANCE,
        }
    }

    /// The secrets that are not empty: an empty entry never verifies anything.
    pub fn usable_secrets(&self) -> impl Iterator<Item = &SecretString> {
        self.secrets
            .iter()
            .filter(|s| !s.expose_secret().trim().is_empty())
    }
}

/// Standard Webhooks' recommended timestamp tolerance.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);
