//! GitHub App identity: a short RS256 JWT signed with the app's private key (aws-lc-rs),
//! exchanged for an installation token, which is cached per installation in the function
//! instance until five minutes before it expires (GitHub's last an hour) and dropped on a
//! 401. The key and the tokens never reach logs or error messages.
//!
//! Configuration (the environment, secret references resolved by
//! [`crate::secrets::environment`]): `GITHUB_APP_ID` and `GITHUB_APP_PRIVATE_KEY` (the PEM
//! text; `GITHUB_APP_PRIVATE_KEY_FILE` names a file instead), and per source
//! `GITHUB_APP_ID_<SOURCE>` / `GITHUB_APP_PRIVATE_KEY_<SOURCE>` (source id upper-cased,
//! `-` as `_`), which win for that source's events.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use secrecy::SecretString;
use serde::Deserialize;

use super::error::ForgeError;

/// A cached token is used until this long before it expires.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(300);
/// The app JWT's lifetime (GitHub accepts at most 10 minutes); its `iat` is set 60 s back
/// for clock drift, as GitHub recommends.
const JWT_SECONDS: i64 = 540;
/// A PEM key longer than this is refused unread (an RSA 4096 PKCS#8 key is about 3.3 KB).
const MAX_PEM_BYTES: usize = 16 * 1024;

/// One GitHub App: its id, its key and the installation tokens minted so far.
pub struct GithubApp {
    app_id: String,
    key: RsaKeyPair,
    base: String,
    http: reqwest::Client,
    tokens: tokio::sync::Mutex<HashMap<u64, Cached>>,
    exchanges: AtomicU64,
}

struct Cached {
    token: SecretString,
    expires_at: i64,
}

impl std::fmt::Debug for GithubApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubApp")
            .field("app_id", &self.app_id)
            .field("base", &self.base)
            .field("key", &"[REDACTED]")
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    token: String,
    expires_at: String,
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The DER inside a PEM block, with its label (`RSA PRIVATE KEY`, `PRIVATE KEY`).
fn pem_der(pem: &str) -> Option<(String, Vec<u8>)> {
    let begin = pem.find("-----BEGIN ")?;
    let rest = &pem[begin + 11..];
    let label_end = rest.find("-----")?;
    let label = rest[..label_end].to_owned();
    let body = &rest[label_end + 5..];
    let end = body.find(&format!("-----END {label}-----"))?;
    let b64: String = body[..end]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    Some((label, STANDARD.decode(b64).ok()?))
}

impl GithubApp {
    /// An app from its id and its PEM private key (PKCS#1 `RSA PRIVATE KEY`, as GitHub
    /// hands it out, or PKCS#8 `PRIVATE KEY`), talking to `base` (`https://api.github.com`).
    pub fn new(app_id: &str, private_key_pem: &str, base: &str) -> Result<Self, ForgeError> {
        let bad = |why: &str| ForgeError::Config(format!("the GitHub App private key {why}"));
        if app_id.trim().is_empty() || !app_id.trim().bytes().all(|b| b.is_ascii_digit()) {
            return Err(ForgeError::Config(
                "GITHUB_APP_ID (a number: the app's id)".into(),
            ));
        }
        if private_key_pem.len() > MAX_PEM_BYTES {
            return Err(bad("is longer than 16 KiB"));
        }
        let (label, der) = pem_der(private_key_pem).ok_or_else(|| bad("is not PEM"))?;
        let key = match label.as_str() {
            "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der),
            "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der),
            _ => return Err(bad("is not an RSA private key")),
        }
        .map_err(|_| bad("does not parse as an RSA key"))?;
        let http = crate::tls::http_client()
            .timeout(Duration::from_secs(10))
            .user_agent("switchyard")
            .build()
            .unwrap_or_default();
        Ok(Self {
            app_id: app_id.trim().to_owned(),
            key,
            base: base.trim_end_matches('/').to_owned(),
            http,
            tokens: tokio::sync::Mutex::new(HashMap::new()),
            exchanges: AtomicU64::new(0),
        })
    }

    /// The app configured in `vars` (see the module's doc): `GITHUB_APP_ID` and its key,
    /// or with `suffix` a source's own `GITHUB_APP_ID_<SUFFIX>` and key (no mixing with
    /// the shared ones), talking to `GITHUB_API_URL` (default `https://api.github.com`);
    /// `None` when no app is configured.
    pub fn from_vars(
        vars: &BTreeMap<String, String>,
        suffix: Option<&str>,
    ) -> Option<Result<Self, ForgeError>> {
        let var = |name: &str| vars.get(name).filter(|v| !v.trim().is_empty()).cloned();
        let own = |name: &str| match suffix {
            Some(s) => format!("{name}_{s}"),
            None => name.to_owned(),
        };
        let app_id = var(&own("GITHUB_APP_ID"))?;
        let key = match var(&own("GITHUB_APP_PRIVATE_KEY")) {
            Some(pem) => pem,
            None => match var(&own("GITHUB_APP_PRIVATE_KEY_FILE")) {
                Some(path) => match std::fs::read_to_string(&path) {
                    Ok(pem) => pem,
                    Err(e) => {
                        return Some(Err(ForgeError::Config(format!(
                            "{} ({path}: {e})",
                            own("GITHUB_APP_PRIVATE_KEY_FILE")
                        ))));
                    }
                },
                None => {
                    return Some(Err(ForgeError::Config(own("GITHUB_APP_PRIVATE_KEY"))));
                }
            },
        };
        let base = var("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".into());
        Some(Self::new(&app_id, &key, &base))
    }

    /// The API base URL this app mints tokens at.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The app's id.
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// Token exchanges made so far by this instance (one per installation per hour when
    /// the cache works).
    pub fn exchanges(&self) -> u64 {
        self.exchanges.load(Ordering::Relaxed)
    }

    /// The app's JWT at `now` (unix seconds): RS256 over `{"iat","exp","iss"}`.
    pub fn jwt(&self, now: i64) -> Result<String, ForgeError> {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = URL_SAFE_NO_PAD.encode(
            serde_json::json!({
                "iat": now - 60,
                "exp": now + JWT_SECONDS,
                "iss": self.app_id,
            })
            .to_string(),
        );
        let signing_input = format!("{header}.{claims}");
        let mut signature = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| ForgeError::Config("the GitHub App private key cannot sign".into()))?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }

    /// A token acting as `installation`: the cached one while it has more than
    /// [`REFRESH_MARGIN`] left, else a new one from
    /// `POST /app/installations/{installation}/access_tokens`.
    pub async fn token(&self, installation: u64) -> Result<SecretString, ForgeError> {
        let mut tokens = self.tokens.lock().await;
        let now = now_unix();
        if let Some(c) = tokens.get(&installation)
            && c.expires_at - REFRESH_MARGIN.as_secs() as i64 > now
        {
            return Ok(c.token.clone());
        }
        let path = format!("/app/installations/{installation}/access_tokens");
        let fail = |status: u16, message: String| {
            let (method, path) = ("POST".to_owned(), path.clone());
            match status {
                401 => ForgeError::Unauthorized { method, path },
                403 => ForgeError::Forbidden {
                    method,
                    path,
                    message,
                },
                404 => ForgeError::NotFound { method, path },
                status => ForgeError::Rejected {
                    method,
                    path,
                    status,
                    message,
                },
            }
        };
        let answer = self
            .http
            .post(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {}", self.jwt(now)?))
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
            .send()
            .await
            .map_err(|e| ForgeError::GaveUp {
                method: "POST".into(),
                path: path.clone(),
                attempts: 1,
                last: e.without_url().to_string(),
            })?;
        self.exchanges.fetch_add(1, Ordering::Relaxed);
        let status = answer.status().as_u16();
        let text = answer.text().await.unwrap_or_default();
        if !(200..300).contains(&status) {
            let message = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v.get("message")?.as_str().map(str::to_owned))
                .unwrap_or_default();
            return Err(fail(status, crate::store::bounded(&message, 200)));
        }
        let decode = |reason: String| ForgeError::Decode {
            method: "POST".into(),
            path: path.clone(),
            reason,
        };
        let parsed: TokenAnswer = serde_json::from_str(&text).map_err(|e| decode(e.to_string()))?;
        let expires_at = time::OffsetDateTime::parse(
            &parsed.expires_at,
            &time::format_description::well_known::Rfc3339,
        )
        .map_err(|e| decode(format!("expires_at: {e}")))?
        .unix_timestamp();
        let token = SecretString::from(parsed.token);
        tokens.insert(
            installation,
            Cached {
                token: token.clone(),
                expires_at,
            },
        );
        Ok(token)
    }

    /// Drops `installation`'s cached token (the forge answered 401 to it).
    pub async fn forget(&self, installation: u64) {
        self.tokens.lock().await.remove(&installation);
    }
}

#[cfg(test)]
mod tests {
    //! Against a stand-in for GitHub's app endpoints: it checks the app JWT with the app's
    //! public key and answers `POST /app/installations/{id}/access_tokens` and the issue
    //! comments route with GitHub's shapes, accepting only live tokens of the repository's
    //! installation.

    use super::*;
    use crate::forge::{ForgeClient, ForgeKind, Forges};
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::{KeyPair, KeySize};
    use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::routing::{get, post};
    use std::sync::{Arc, Mutex};

    const APP_ID: &str = "424242";

    #[derive(Default)]
    struct Hub {
        public_key: Vec<u8>,
        /// Seconds a minted token lives.
        ttl: i64,
        /// (token, installation, expires_at, revoked)
        tokens: Vec<(String, u64, i64, bool)>,
        jwts_checked: usize,
    }
    type St = Arc<Mutex<Hub>>;

    fn pem(der: &[u8]) -> String {
        let b64 = STANDARD.encode(der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            lines.join("\n")
        )
    }

    fn unauthorized(message: &str) -> Response {
        (
            StatusCode::UNAUTHORIZED,
            axum::Json(serde_json::json!({"message": message, "documentation_url": "https://docs.github.com/rest", "status": "401"})),
        )
            .into_response()
    }

    async fn access_tokens(
        State(st): State<St>,
        Path(installation): Path<u64>,
        headers: HeaderMap,
    ) -> Response {
        let jwt = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default()
            .to_owned();
        let mut hub = st.lock().unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        if parts.len() != 3 {
            return unauthorized("A JSON web token could not be decoded");
        }
        let signed = format!("{}.{}", parts[0], parts[1]);
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap_or_default();
        let key = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, hub.public_key.clone());
        if key.verify(signed.as_bytes(), &signature).is_err() {
            return unauthorized("A JSON web token could not be decoded");
        }
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        let now = now_unix();
        let (iat, exp) = (
            claims["iat"].as_i64().unwrap(),
            claims["exp"].as_i64().unwrap(),
        );
        if header["alg"] != "RS256"
            || claims["iss"] != APP_ID
            || exp - iat > 600
            || exp <= now
            || iat > now + 60
        {
            return unauthorized("'Expiration time' claim ('exp') is too far in the future");
        }
        hub.jwts_checked += 1;
        if installation > 100 {
            return (StatusCode::NOT_FOUND, axum::Json(serde_json::json!({"message": "Integration not found", "documentation_url": "https://docs.github.com/rest", "status": "404"}))).into_response();
        }
        let token = format!("ghs_{installation}x{}", hub.tokens.len());
        let expires_at = now + hub.ttl;
        hub.tokens
            .push((token.clone(), installation, expires_at, false));
        let at = time::OffsetDateTime::from_unix_timestamp(expires_at)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        (
            StatusCode::CREATED,
            axum::Json(serde_json::json!({
                "token": token,
                "expires_at": at,
                "permissions": {"checks": "write", "issues": "write", "pull_requests": "write", "contents": "read"},
                "repository_selection": "all"
            })),
        )
            .into_response()
    }

    /// Repository `owner/widgets` belongs to installation `owner`'s number.
    async fn comments(
        State(st): State<St>,
        Path((owner, _repo, _n)): Path<(String, String, u64)>,
        headers: HeaderMap,
    ) -> Response {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        let hub = st.lock().unwrap();
        let want: u64 = owner.trim_start_matches("org").parse().unwrap_or(0);
        let live = hub.tokens.iter().any(|(t, inst, exp, revoked)| {
            t == auth && *inst == want && *exp > now_unix() && !revoked
        });
        if !live {
            return unauthorized("Bad credentials");
        }
        axum::Json(serde_json::json!([])).into_response()
    }

    async fn stand_in(ttl: i64) -> (String, St, String) {
        let key = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let private = pem(AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&key)
            .unwrap()
            .as_ref());
        let st: St = Arc::new(Mutex::new(Hub {
            public_key: key.public_key().as_ref().to_vec(),
            ttl,
            ..Hub::default()
        }));
        let app = axum::Router::new()
            .route("/app/installations/{id}/access_tokens", post(access_tokens))
            .route("/repos/{owner}/{repo}/issues/{n}/comments", get(comments))
            .with_state(st.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (base, st, private)
    }

    fn client(app: &Arc<GithubApp>, base: &str, installation: u64) -> ForgeClient {
        ForgeClient::new(ForgeKind::Github, base, SecretString::from(String::new()))
            .with_retries(1, Duration::from_millis(1), Duration::from_millis(1))
            .as_installation(app.clone(), installation)
    }

    #[tokio::test]
    async fn two_installations_get_two_tokens_and_a_hundred_jobs_two_exchanges() {
        let (base, st, key) = stand_in(3600).await;
        let app = Arc::new(GithubApp::new(APP_ID, &key, &base).unwrap());
        for job in 0..100u64 {
            let installation = 1 + job % 2;
            let c = client(&app, &base, installation);
            c.list_comments(&format!("org{installation}/widgets"), 7)
                .await
                .unwrap();
        }
        assert_eq!(app.exchanges(), 2);
        let hub = st.lock().unwrap();
        assert_eq!(hub.jwts_checked, 2);
        let minted: Vec<u64> = hub.tokens.iter().map(|t| t.1).collect();
        assert_eq!(minted, vec![1, 2]);
        assert_ne!(hub.tokens[0].0, hub.tokens[1].0);
    }

    #[tokio::test]
    async fn a_token_near_its_expiry_is_minted_again_and_a_revoked_one_refreshed_on_401() {
        // Tokens living 200 s are inside the 5-minute margin: every use mints a new one.
        let (base, _st, key) = stand_in(200).await;
        let app = Arc::new(GithubApp::new(APP_ID, &key, &base).unwrap());
        for _ in 0..3 {
            client(&app, &base, 1)
                .list_comments("org1/widgets", 7)
                .await
                .unwrap();
        }
        assert_eq!(app.exchanges(), 3);

        let (base, st, key) = stand_in(3600).await;
        let app = Arc::new(GithubApp::new(APP_ID, &key, &base).unwrap());
        client(&app, &base, 1)
            .list_comments("org1/widgets", 7)
            .await
            .unwrap();
        st.lock().unwrap().tokens[0].3 = true; // revoked on GitHub's side
        client(&app, &base, 1)
            .list_comments("org1/widgets", 7)
            .await
            .unwrap();
        assert_eq!(app.exchanges(), 2);
        // A token the forge keeps refusing is an error after one refresh, not a loop.
        let e = client(&app, &base, 1)
            .list_comments("org2/widgets", 7)
            .await
            .unwrap_err();
        assert!(matches!(e, ForgeError::Unauthorized { .. }), "{e}");
        assert_eq!(app.exchanges(), 3);
        assert!(!e.to_string().contains("ghs_"), "no token in errors: {e}");
    }

    #[tokio::test]
    async fn a_wrong_key_or_a_gone_installation_is_a_clear_error_without_secrets() {
        let (base, _st, _key) = stand_in(3600).await;
        let other = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let other = pem(AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&other)
            .unwrap()
            .as_ref());
        let app = Arc::new(GithubApp::new(APP_ID, &other, &base).unwrap());
        let e = client(&app, &base, 1)
            .list_comments("org1/widgets", 7)
            .await
            .unwrap_err();
        assert!(
            matches!(e, ForgeError::Unauthorized { ref path, .. } if path.contains("access_tokens")),
            "{e}"
        );
        assert!(!e.to_string().contains("PRIVATE"), "{e}");
        assert!(!format!("{app:?}").contains("PRIVATE"));
        let (base, _st, key) = stand_in(3600).await;
        let app = Arc::new(GithubApp::new(APP_ID, &key, &base).unwrap());
        let e = app.token(404).await.unwrap_err();
        assert!(matches!(e, ForgeError::NotFound { .. }), "{e}");
    }

    #[tokio::test]
    async fn forges_act_as_the_event_installation_per_source_with_the_token_as_fallback() {
        let (base, _st, key) = stand_in(3600).await;
        let dir = std::env::temp_dir().join(format!("sy-app-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key_file = dir.join("app.pem");
        std::fs::write(&key_file, &key).unwrap();
        let vars: BTreeMap<String, String> = [
            ("GITHUB_API_URL", base.as_str()),
            ("GITHUB_TOKEN", "personal"),
            ("GITHUB_APP_ID_GITHUB_ACME", APP_ID),
            (
                "GITHUB_APP_PRIVATE_KEY_FILE_GITHUB_ACME",
                key_file.to_str().unwrap(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let forges = Forges::from_vars(&vars);
        let mut event = switchyard_core::testing::event();
        event.kind = crate::SourceKind::Github;
        event.source = "github-acme".into();
        event.payload =
            crate::payload::Payload::from(serde_json::json!({"installation": {"id": 2}}));
        let c = forges.for_event(&event).unwrap();
        assert_eq!(c.installation(), Some(2));
        c.list_comments("org2/widgets", 7).await.unwrap();
        // Another job of the same instance reuses the cached token.
        forges
            .for_event(&event)
            .unwrap()
            .list_comments("org2/widgets", 7)
            .await
            .unwrap();
        assert_eq!(forges.app_for("github-acme").unwrap().exchanges(), 1);
        // No installation in the payload, or a source without an app: the personal token.
        event.payload = crate::payload::Payload::from(serde_json::json!({}));
        assert_eq!(forges.for_event(&event).unwrap().installation(), None);
        event.source = "github".into();
        event.payload =
            crate::payload::Payload::from(serde_json::json!({"installation": {"id": 2}}));
        assert_eq!(forges.for_event(&event).unwrap().installation(), None);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn keys_that_are_not_rsa_pem_are_refused_with_a_clear_error() {
        let e = GithubApp::new("12", "not a key", "http://x").unwrap_err();
        assert!(e.to_string().contains("is not PEM"), "{e}");
        let e = GithubApp::new(
            "12",
            "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
            "http://x",
        )
        .unwrap_err();
        assert!(e.to_string().contains("not an RSA private key"), "{e}");
        let e = GithubApp::new(
            "12",
            "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
            "http://x",
        )
        .unwrap_err();
        assert!(e.to_string().contains("does not parse"), "{e}");
        let e = GithubApp::new("app", "", "http://x").unwrap_err();
        assert!(e.to_string().contains("GITHUB_APP_ID"), "{e}");
    }
}
