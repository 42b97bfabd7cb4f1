//! API tokens: `SWITCHYARD_API_TOKENS` lists `name:scopes:sha256hex` entries (scopes
//! `invoke`, `read`, `admin`, `work`, `emit` joined by `+`). A bearer token is hashed and compared with
//! every entry in constant time; only hashes are configured, never tokens.

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

/// One configured token.
#[derive(Debug, Clone)]
pub struct TokenEntry {
    /// Who holds it (logged).
    pub name: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
    hash: [u8; 32],
}

/// The configured tokens.
#[derive(Debug, Clone, Default)]
pub struct Tokens(Vec<TokenEntry>);

impl Tokens {
    /// Parses `name:scopes:sha256hex,...`; the error names the bad entry (by name only).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let mut parts = entry.splitn(3, ':');
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
            out.push(TokenEntry {
                name: name.to_owned(),
                scopes,
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
pub fn new_token(name: &str, scopes: &str) -> Result<(String, String), String> {
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
    let entry = format!(
        "{name}:{scopes}:{}",
        hex::encode(Sha256::digest(token.as_bytes()))
    );
    Ok((token, entry))
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
}
