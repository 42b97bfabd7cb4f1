//! What a request says, typed: [`Params`] reads the query through axum's `Query` into a
//! struct whose fields validate themselves, [`JsonBody`] reads a JSON object body. Every
//! refusal is a 400 `bad_request` that says what is wrong (unknown or repeated parameter,
//! value out of range), never a panic and never the value of a secret.

use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::problem::ApiError;
use crate::store::{EventStatus, JobStatus, bounded};

/// Longest query string read (cursors are a few hundred characters).
pub const MAX_QUERY_BYTES: usize = 8 * 1024;

/// A query string deserialized into `T` (strict where `T` says `deny_unknown_fields`).
#[derive(Debug)]
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        if parts.uri.query().is_some_and(|q| q.len() > MAX_QUERY_BYTES) {
            return Err(ApiError::bad_request(format!(
                "the query string is over {MAX_QUERY_BYTES} bytes"
            )));
        }
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(t)| Self(t))
            .map_err(|e| {
                ApiError::bad_request(bounded(&format!("invalid query: {}", inner(&e)), 300))
            })
    }
}

/// The deserializer's own words, without axum's prefix.
fn inner(e: &dyn std::error::Error) -> String {
    let mut last = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        last = s.to_string();
        source = s.source();
    }
    last
}

/// A JSON object body deserialized into `T` (an array or a scalar is refused even where
/// serde would read a struct from it; so is an empty body).
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::bad_request(format!("invalid body: {}", inner(&e))))?;
        Ok(Self(object(&bytes)?))
    }
}

/// `bytes` as a JSON object into `T`.
pub fn object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bad = |e: String| ApiError::bad_request(format!("invalid body: {e}"));
    let value: Value = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    if !value.is_object() {
        return Err(bad("expected a JSON object".into()));
    }
    serde_json::from_value(value).map_err(|e| bad(e.to_string()))
}

/// Largest page of a listing.
pub const MAX_LIMIT: usize = 200;
/// Page size when none is asked for.
pub const DEFAULT_LIMIT: usize = 50;

/// `limit`: 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] when absent.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(try_from = "String")]
pub struct Limit(pub usize);

impl Default for Limit {
    fn default() -> Self {
        Self(DEFAULT_LIMIT)
    }
}

impl TryFrom<String> for Limit {
    type Error = String;
    fn try_from(v: String) -> Result<Self, String> {
        v.parse::<usize>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .map(Self)
            .ok_or_else(|| format!("`limit` must be 1 to {MAX_LIMIT}"))
    }
}

/// A name filter (`source`, `type`, `module`): 1 to 200 printable characters.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct Name(pub String);

impl TryFrom<String> for Name {
    type Error = String;
    fn try_from(v: String) -> Result<Self, String> {
        printable(v, 200).map(Self)
    }
}

/// An opaque listing cursor: 1 to 2,048 printable characters (the store validates it).
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct Cursor(pub String);

impl TryFrom<String> for Cursor {
    type Error = String;
    fn try_from(v: String) -> Result<Self, String> {
        printable(v, 2048).map(Self)
    }
}

fn printable(v: String, max: usize) -> Result<String, String> {
    if !v.is_empty() && v.len() <= max && !v.chars().any(char::is_control) {
        Ok(v)
    } else {
        Err(format!(
            "names and cursors are 1 to {max} printable characters"
        ))
    }
}

/// `since`: an RFC 3339 time.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(try_from = "String")]
pub struct Since(pub OffsetDateTime);

impl TryFrom<String> for Since {
    type Error = &'static str;
    fn try_from(v: String) -> Result<Self, &'static str> {
        OffsetDateTime::parse(&v, &Rfc3339)
            .map(Self)
            .map_err(|_| "`since` must be an RFC 3339 time, e.g. 2026-01-31T12:00:00Z")
    }
}

impl Since {
    /// The time asked for, never earlier than `horizon` (what the TTL keeps).
    pub fn or_horizon(since: Option<Self>, horizon: OffsetDateTime) -> OffsetDateTime {
        since.map_or(horizon, |s| s.0.max(horizon))
    }
}

/// A flag: `true`/`1` or `false`/`0`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(try_from = "String")]
pub struct Flag(pub bool);

impl TryFrom<String> for Flag {
    type Error = &'static str;
    fn try_from(v: String) -> Result<Self, &'static str> {
        match v.as_str() {
            "true" | "1" => Ok(Self(true)),
            "false" | "0" => Ok(Self(false)),
            _ => Err("flags must be true or false"),
        }
    }
}

/// `GET /events`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Only this source's events.
    pub source: Option<Name>,
    /// Only this event type.
    #[serde(rename = "type")]
    pub event_type: Option<Name>,
    /// Only events in this state.
    pub status: Option<EventStatus>,
    /// Nothing received before this time.
    pub since: Option<Since>,
    /// Page size.
    #[serde(default)]
    pub limit: Limit,
    /// Where the previous page ended.
    pub cursor: Option<Cursor>,
}

/// `GET /jobs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobsQuery {
    /// Only this module's jobs.
    pub module: Option<Name>,
    /// Only jobs in this state.
    pub status: Option<JobStatus>,
    /// Nothing created before this time.
    pub since: Option<Since>,
    /// Page size.
    #[serde(default)]
    pub limit: Limit,
    /// Where the previous page ended.
    pub cursor: Option<Cursor>,
}

/// What `GET /events/{id}` may include besides the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Include {
    /// The stored event with its payload.
    Payload,
}

/// `GET /events/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    /// `payload` to include the stored event.
    pub include: Option<Include>,
}

/// `POST /events/{id}/replay`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayQuery {
    /// Start modules whose jobs already ran, too.
    #[serde(default)]
    pub force: Flag,
    /// Say what would run, start nothing.
    #[serde(default)]
    pub dry_run: Flag,
}

/// `GET /admin/registry/versions`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionsQuery {
    /// Page size.
    #[serde(default)]
    pub limit: Limit,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query<T: DeserializeOwned>(q: &str) -> Result<T, String> {
        let uri: axum::http::Uri = format!("/x?{q}").parse().unwrap();
        Query::<T>::try_from_uri(&uri)
            .map(|Query(t)| t)
            .map_err(|e| inner(&e))
    }

    #[test]
    fn listing_queries_validate_every_field() {
        let q: EventsQuery = query("source=github&type=push&status=failed&limit=5").unwrap();
        assert_eq!(q.limit.0, 5);
        assert_eq!(q.status, Some(EventStatus::Failed));
        assert_eq!(query::<EventsQuery>("").unwrap().limit.0, DEFAULT_LIMIT);
        for (q, says) in [
            ("limit=0", "`limit` must be 1 to 200"),
            ("limit=201", "`limit` must be 1 to 200"),
            ("limit=5&limit=6", "duplicate field `limit`"),
            ("nope=1", "unknown field `nope`"),
            ("status=lost", "unknown variant `lost`"),
            ("since=yesterday", "RFC 3339"),
            ("source=", "1 to 200 printable"),
        ] {
            let e = query::<EventsQuery>(q).unwrap_err();
            assert!(e.contains(says), "{q}: {e}");
        }
        let e = query::<ReplayQuery>("dry_run=maybe").unwrap_err();
        assert!(e.contains("true or false"), "{e}");
        assert!(
            query::<ReplayQuery>("dry_run=1&force=false")
                .unwrap()
                .dry_run
                .0
        );
        let e = query::<JobsQuery>(&format!("cursor={}", "c".repeat(2049))).unwrap_err();
        assert!(e.contains("2048"), "{e}");
    }

    #[test]
    fn bodies_must_be_json_objects() {
        #[derive(Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        struct B {
            #[serde(default)]
            a: u8,
        }
        assert_eq!(object::<B>(br#"{"a": 3}"#).unwrap().a, 3);
        for bad in [&b"[1]"[..], b"3", b"{", b"  ", br#"{"b": 1}"#] {
            let e = object::<B>(bad).unwrap_err();
            assert_eq!(e.code(), crate::problem::Code::BadRequest);
        }
    }
}
