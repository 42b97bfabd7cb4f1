//! API tokens: `SWITCHYARD_API_TOKENS` lists `name:scopes:sha256hex[:restrictions]` entries
//! (scopes `invoke`, `read`, `admin`, `work`, `emit` joined by `+`; restrictions
//! `modules=a+b`, `sources=x+y`, `repos=owner/name+owner/*`, joined by `;`). A bearer token is
//! hashed and compared with every entry in constant time; only hashes are configured, never
//! tokens.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Start modules, cancel jobs.
    Invoke,
    /// Read modules, jobs and events.
    Read,
    /// Change the registry and settings.
    Admin,
    /// Lease pull jobs, heartbeat and finish them (workers).
    Work,
    /// Send internal events (`POST /events`).
    Emit,
}

impl Scope {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "invoke" => Self::Invoke,
            "read" => Self::Read,
            "admin" => Self::Admin,
            "work" => Self::Work,
            "emit" => Self::Emit,
            _ => return None,
        })
    }
}

impl Scope {
    /// The scope's name, as configured.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invoke => "invoke",
            Self::Read => "read",
            Self::Admin => "admin",
            Self::Work => "work",
            Self::Emit => "emit",
        }
    }
}

/// What a token is bound to, beyond its scopes. `None` in a field: no restriction.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Restrictions {
    /// Modules it may invoke, cancel, lease, heartbeat and finish (`invoke`, `work`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modules: Option<Vec<String>>,
    /// Internal sources it may emit as (`emit`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<String>>,
    /// Repositories an invoke may name (the settings scope it runs under); `owner/*` names
    /// every repository of an owner.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repos: Option<Vec<String>>,
}

impl Restrictions {
    /// Whether nothing is restricted.
    pub fn is_empty(&self) -> bool {
        self.modules.is_none() && self.sources.is_none() && self.repos.is_none()
    }

    /// Whether the token may act on `module`.
    pub fn allows_module(&self, module: &str) -> bool {
        self.modules
            .as_ref()
            .is_none_or(|m| m.iter().any(|x| x == module))
    }

    /// Whether the token may emit as `source`.
    pub fn allows_source(&self, source: &str) -> bool {
        self.sources
            .as_ref()
            .is_none_or(|m| m.iter().any(|x| x == source))
    }

    /// Whether the token may name `repo` (`owner/name`).
    pub fn allows_repo(&self, repo: &str) -> bool {
        self.repos.as_ref().is_none_or(|list| {
            list.iter().any(|r| match r.strip_suffix("/*") {
                Some(owner) => repo
                    .split_once('/')
                    .is_some_and(|(o, _)| o.eq_ignore_ascii_case(owner)),
                None => r.eq_ignore_ascii_case(repo),
            })
        })
    }

    fn parse(name: &str, text: &str) -> Result<Self, String> {
        let mut out = Self::default();
        for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, values) = part
                .split_once('=')
                .ok_or_else(|| format!("token {name}: restriction `{part}` is not key=a+b"))?;
            let values: Vec<String> = values
                .split('+')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .collect();
            if values.is_empty() {
                return Err(format!("token {name}: restriction `{key}` lists nothing"));
            }
            let slot = match key.trim() {
                "modules" => &mut out.modules,
                "sources" => &mut out.sources,
                "repos" => &mut out.repos,
                other => {
                    return Err(format!(
                        "token {name}: unknown restriction `{other}` (modules, sources, repos)"
                    ));
                }
            };
            if slot.replace(values).is_some() {
                return Err(format!("token {name}: restriction `{key}` given twice"));
            }
        }
        Ok(out)
    }
}

/// One configured token.
#[derive(Debug, Clone)]
pub struct TokenEntry {
    /// Who holds it (logged).
    pub name: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// What it is bound to.
    pub restrictions: Restrictions,
    hash: [u8; 32],
}

/// The configured tokens.
#[derive(Debug, Clone, Default)]
pub struct Tokens(Vec<TokenEntry>);

impl Tokens {
    /// Parses `name:scopes:sha256hex[:restrictions],...`; the error names the bad entry (by
    /// name only).
    pub fn parse(text: &str) -> Result<Self, TokenError> {
        Self::read(text).map_err(TokenError)
    }

    fn read(text: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let mut parts = entry.splitn(4, ':');
            let (Some(name), Some(scopes), Some(hex_hash)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return Err("an entry is not name:scopes:sha256hex".into());
            };
            let scopes = scopes
                .split('+')
                .map(|s| {
                    Scope::parse(s).ok_or_else(|| format!("token {name}: unknown scope `{s}`"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let bytes =
                hex::decode(hex_hash).map_err(|_| format!("token {name}: the hash is not hex"))?;
            let hash: [u8; 32] = bytes
                .try_into()
                .map_err(|_| format!("token {name}: the hash is not SHA-256"))?;
            let restrictions = match parts.next() {
                Some(r) => Restrictions::parse(name, r)?,
                None => Restrictions::default(),
            };
            out.push(TokenEntry {
                name: name.to_owned(),
                scopes,
                restrictions,
                hash,
            });
        }
        Ok(Self(out))
    }

    /// The entry a bearer token belongs to. Every entry is compared, in constant time.
    pub fn check(&self, token: &str) -> Option<&TokenEntry> {
        let got = Sha256::digest(token.as_bytes());
        let mut found = None;
        for e in &self.0 {
            if bool::from(e.hash.ct_eq(got.as_slice())) {
                found = Some(e);
            }
        }
        found
    }
}

/// A new random token and its configuration entry.
pub fn new_token(name: &str, scopes: &str) -> Result<(String, String), TokenError> {
    new_restricted_token(name, scopes, "")
}

/// A new random token bound by `restrictions` (`modules=a+b;sources=x;repos=o/*`, or empty)
/// and its configuration entry.
pub fn new_restricted_token(
    name: &str,
    scopes: &str,
    restrictions: &str,
) -> Result<(String, String), TokenError> {
    make_token(name, scopes, restrictions).map_err(TokenError)
}

fn make_token(name: &str, scopes: &str, restrictions: &str) -> Result<(String, String), String> {
    Restrictions::parse(name, restrictions)?;
    if restrictions.contains([',', ':']) {
        return Err("restrictions must not contain `,` or `:`".into());
    }
    for s in scopes.split('+') {
        Scope::parse(s)
            .ok_or_else(|| format!("unknown scope `{s}` (invoke, read, admin, work, emit)"))?;
    }
    if name.is_empty() || name.contains([':', ',']) {
        return Err("the name must not be empty or contain `:` or `,`".into());
    }
    let token = format!(
        "sy_{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let mut entry = format!(
        "{name}:{scopes}:{}",
        hex::encode(Sha256::digest(token.as_bytes()))
    );
    if !restrictions.is_empty() {
        entry.push(':');
        entry.push_str(restrictions);
    }
    Ok((token, entry))
}

crate::message_error! {
    /// Why a token configuration (`SWITCHYARD_API_TOKENS`, or a new token's name, scopes and
    /// restrictions) is refused; it names entries, never a token.
    TokenError
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked_by_hash_with_their_scopes() {
        let (token, entry) = new_token("ci", "invoke+read").unwrap();
        let (other, other_entry) = new_token("ops", "admin").unwrap();
        let tokens = Tokens::parse(&format!("{entry},{other_entry}")).unwrap();
        let hit = tokens.check(&token).unwrap();
        assert_eq!(
            (hit.name.as_str(), hit.scopes.as_slice()),
            ("ci", &[Scope::Invoke, Scope::Read][..])
        );
        assert_eq!(tokens.check(&other).unwrap().scopes, [Scope::Admin]);
        assert!(tokens.check("sy_wrong").is_none());
        assert!(!format!("{tokens:?}").contains(&token));
        assert!(Tokens::parse("x:root:00").is_err());
        assert!(Tokens::parse("x:read:abcd").is_err());
        assert!(new_token("a:b", "read").is_err());
    }

    #[test]
    fn restrictions_bind_a_token_to_modules_sources_and_repositories() {
        let (token, entry) =
            new_restricted_token("box", "work+invoke", "modules=release+deploy;repos=acme/*")
                .unwrap();
        let tokens = Tokens::parse(&entry).unwrap();
        let r = &tokens.check(&token).unwrap().restrictions;
        assert!(r.allows_module("release") && !r.allows_module("notify"));
        assert!(r.allows_repo("acme/widgets") && r.allows_repo("ACME/x"));
        assert!(!r.allows_repo("evil/widgets") && !r.allows_repo("acme"));
        assert!(r.allows_source("anything"));
        let (_, plain) = new_token("p", "read").unwrap();
        let p = Tokens::parse(&plain).unwrap();
        assert!(p.0[0].restrictions.is_empty());
        for bad in ["modules=", "colour=red", "modules=a;modules=b", "nokey"] {
            assert!(Tokens::parse(&format!("{plain}:{bad}")).is_err(), "{bad}");
        }
    }
}
