//! Who calls: the [`Caller`] extractor checks the bearer token (401) and the scope its
//! route needs (403) before the handler runs; the binding checks (modules, repositories,
//! sources a token is restricted to) are methods on it.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use tracing::warn;

use super::{ApiState, store_failure};
use crate::problem::{ApiError, Code};
use crate::store::bounded;
use switchyard_core::auth::{Scope, TokenEntry, Tokens};

/// The scope a route needs, as a type: `Caller<Read>` only extracts for a token with `read`.
pub trait RequiredScope: Send + Sync + 'static {
    /// The scope, or `None` for any valid token.
    const SCOPE: Option<Scope>;
}

macro_rules! scopes {
    ($($(#[$doc:meta])* $name:ident => $scope:expr;)*) => {$(
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name;
        impl RequiredScope for $name {
            const SCOPE: Option<Scope> = $scope;
        }
    )*};
}

scopes! {
    /// Any valid token (`GET /whoami`; routes that pick the scope from the request).
    Any => None;
    /// `read`.
    Read => Some(Scope::Read);
    /// `invoke`.
    Invoke => Some(Scope::Invoke);
    /// `admin`.
    Admin => Some(Scope::Admin);
    /// `work`.
    Work => Some(Scope::Work);
    /// `emit`.
    Emit => Some(Scope::Emit);
}

/// The token of a request that holds scope `S`.
#[derive(Debug)]
pub struct Caller<S> {
    /// The token's entry (name, scopes, restrictions; never the token).
    pub token: TokenEntry,
    scope: PhantomData<S>,
}

impl<S: RequiredScope> FromRequestParts<ApiState> for Caller<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &ApiState) -> Result<Self, ApiError> {
        let token = authenticate(&st.tokens, &parts.headers)?;
        let caller = Self {
            token: token.clone(),
            scope: PhantomData,
        };
        if let Some(scope) = S::SCOPE {
            caller.require(scope)?;
        }
        Ok(caller)
    }
}

/// The bearer token of a request (`Authorization: Bearer <token>`; the scheme's case is
/// not significant, RFC 9110 section 11.1).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The entry of the request's bearer token: 401 without a valid one.
fn authenticate<'t>(tokens: &'t Tokens, headers: &HeaderMap) -> Result<&'t TokenEntry, ApiError> {
    match bearer(headers).and_then(|t| tokens.check(t)) {
        Some(entry) => Ok(entry),
        None => {
            warn!(
                has_header = headers.contains_key(header::AUTHORIZATION),
                "API request without a valid token"
            );
            Err(ApiError::new(
                Code::Unauthorized,
                "a valid bearer token is required",
            ))
        }
    }
}

impl<S> Caller<S> {
    /// The token's name (logged, and the sender of events it makes).
    pub fn name(&self) -> &str {
        &self.token.name
    }

    /// 403 unless the token has `scope` (for routes whose scope depends on the request).
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.token.scopes.contains(&scope) {
            return Ok(());
        }
        warn!(token = %self.token.name, ?scope, "API token lacks the scope");
        Err(ApiError::new(
            Code::Forbidden,
            format!("the token lacks the {} scope", scope.as_str()),
        ))
    }

    /// 403 for a token whose restrictions do not cover `what` (e.g. "module `release`").
    pub fn not_bound(&self, what: &str) -> ApiError {
        warn!(token = %self.token.name, what, "API token is not bound to the resource");
        ApiError::new(Code::Forbidden, format!("the token is not bound to {what}"))
    }

    /// 403 unless the token may act on `module`.
    pub fn require_module(&self, module: &str) -> Result<(), ApiError> {
        if self.token.restrictions.allows_module(module) {
            Ok(())
        } else {
            Err(self.not_bound(&format!("module `{}`", bounded(module, 100))))
        }
    }

    /// For a token bound to modules: 403 unless job `id` is one of theirs (one read; unbound
    /// tokens skip it). A missing job passes: the call itself answers 404.
    pub async fn require_job(&self, st: &ApiState, id: &str) -> Result<(), ApiError> {
        if self.token.restrictions.modules.is_none() {
            return Ok(());
        }
        match st.jobs.get_job(id).await.map_err(|e| store_failure(&e))? {
            Some(job) => self.require_module(&job.module),
            None => Ok(()),
        }
    }
}
