//! Normalization: a verified delivery becomes an [`Event`] with the same shape whatever
//! forge sent it (id, source, kind, type, action, entity key, received time, payload), so
//! one manifest can serve GitHub, Forgejo, Gitea and GitLab alike.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::payload::{Payload, PayloadPaths};
use crate::signature::Verified;
use crate::source::SourceKind;

/// The source prefix of internal events: `POST /events` with `source: "deployer"` makes an
/// event of source `internal.deployer`. Webhook source ids cannot contain `.`, so an
/// internal event never shares a webhook source's delivery ids, triggers or cooldowns.
pub const INTERNAL_SOURCE_PREFIX: &str = "internal.";

/// Event names switchyard knows, with an open fallthrough: unknown names are carried as
/// they came and acknowledged, never rejected (so senders do not retry forever).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EventType {
    /// A pull request (GitHub, Forgejo, Gitea).
    PullRequest,
    /// A GitLab merge request (`Merge Request Hook`).
    MergeRequest,
    /// An issue (`issues`; GitLab's `Issue Hook`).
    Issues,
    /// A comment on an issue or pull request.
    IssueComment,
    /// A push of commits or tags.
    Push,
    /// A sender's connectivity check.
    Ping,
    /// A schedule tick (source `schedule`).
    Schedule,
    /// A start through the HTTP API (source `api`).
    Invoke,
    /// Any other event name, as sent (normalized to snake case for GitLab hooks).
    Other(String),
}

impl EventType {
    /// Builds the type from its wire name.
    pub fn from_name(name: &str) -> Self {
        match name {
            "pull_request" => Self::PullRequest,
            "merge_request" => Self::MergeRequest,
            "issues" => Self::Issues,
            "issue_comment" => Self::IssueComment,
            "push" => Self::Push,
            "ping" => Self::Ping,
            "schedule" => Self::Schedule,
            "invoke" => Self::Invoke,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The wire name, as written in manifests.
    pub fn as_str(&self) -> &str {
        match self {
            Self::PullRequest => "pull_request",
            Self::MergeRequest => "merge_request",
            Self::Issues => "issues",
            Self::IssueComment => "issue_comment",
            Self::Push => "push",
            Self::Ping => "ping",
            Self::Schedule => "schedule",
            Self::Invoke => "invoke",
            Self::Other(s) => s,
        }
    }
}

impl Serialize for EventType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self::from_name(&String::deserialize(d)?))
    }
}

/// The git ref an event is about, normalized across forges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "lowercase")]
pub enum GitRef {
    /// A branch: the pushed branch, or a pull/merge request's base (target) branch.
    Branch(String),
    /// A tag push.
    Tag(String),
}

/// Who caused the event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sender {
    /// Login or username.
    pub login: String,
    /// Whether the forge marks it as a bot (see [`normalize`] for the rules per forge).
    pub bot: bool,
}

/// A normalized delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The provider's delivery id, or the body's digest ([`body_digest`]) when it sends
    /// none.
    pub id: String,
    /// The configured source id it arrived on.
    pub source: String,
    /// The source's kind.
    pub kind: SourceKind,
    /// The event type.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// The action (`opened`, `synchronize`, GitLab's `object_attributes.action`), if any.
    pub action: Option<String>,
    /// The entity the event is about: `owner/repo#12` for pull/merge requests and issues,
    /// `owner/repo@refs/heads/main` for pushes, `owner/repo` or the source id otherwise.
    pub entity: String,
    /// The repository's full name, when the payload names one.
    pub repository: Option<String>,
    /// When switchyard received it.
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    /// The raw body's digest ([`body_digest`]): tells a true redelivery from a reused id.
    pub body_digest: String,
    /// The branch or tag, for pushes and pull/merge requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<GitRef>,
    /// Files added, modified or removed by a push; `None` when the payload has no list or
    /// the list is truncated (path filters then match).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_paths: Option<Vec<String>>,
    /// Set when the push's path list was cut by the sender (more commits than it lists) or
    /// held more than [`MAX_CHANGED_PATHS`] distinct paths: `changed_paths` is then absent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub changed_paths_truncated: bool,
    /// Why a pull request's file list, which path filters asked for, could not be had (no
    /// credentials, a timeout, more files than the forge lists): path filters then match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_paths_unknown: Option<String>,
    /// Who caused it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<Sender>,
    /// The payload: the received JSON text, parsed on first read (see [`Payload`]).
    pub payload: Payload,
}

/// An [`Event`]'s fields but its payload, in the same order and form, for
/// [`Event::write_json`] (a unit test holds the two writings equal).
#[derive(Serialize)]
struct EventHead<'a> {
    id: &'a str,
    source: &'a str,
    kind: SourceKind,
    #[serde(rename = "type")]
    event_type: &'a EventType,
    action: Option<&'a str>,
    entity: &'a str,
    repository: Option<&'a str>,
    #[serde(with = "time::serde::rfc3339")]
    received_at: OffsetDateTime,
    body_digest: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    git_ref: Option<&'a GitRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    changed_paths: Option<&'a [String]>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    changed_paths_truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    changed_paths_unknown: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sender: Option<&'a Sender>,
}

impl Event {
    /// Appends the event's JSON to `out`: what `serde_json::to_writer` writes, but with
    /// the payload's received text copied in rather than checked again or re-serialized.
    pub fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        let head = EventHead {
            id: &self.id,
            source: &self.source,
            kind: self.kind,
            event_type: &self.event_type,
            action: self.action.as_deref(),
            entity: &self.entity,
            repository: self.repository.as_deref(),
            received_at: self.received_at,
            body_digest: &self.body_digest,
            git_ref: self.git_ref.as_ref(),
            changed_paths: self.changed_paths.as_deref(),
            changed_paths_truncated: self.changed_paths_truncated,
            changed_paths_unknown: self.changed_paths_unknown.as_deref(),
            sender: self.sender.as_ref(),
        };
        write_with_member(out, &head, "payload", |out| self.payload.write_json(out))
    }
}

/// Appends `head` (a struct, written as a JSON object) with one more member, `key`, whose
/// JSON `member` appends: how the payload's text goes into an event and an event's JSON
/// into a context without being parsed or written again.
pub(crate) fn write_with_member<T: Serialize>(
    out: &mut Vec<u8>,
    head: &T,
    key: &str,
    member: impl FnOnce(&mut Vec<u8>) -> serde_json::Result<()>,
) -> serde_json::Result<()> {
    serde_json::to_writer(&mut *out, head)?;
    // The object's closing `}`, reopened for one more member.
    out.pop();
    if out.last() != Some(&b'{') {
        out.push(b',');
    }
    serde_json::to_writer(&mut *out, key)?;
    out.push(b':');
    member(out)?;
    out.push(b'}');
    Ok(())
}

/// A body's digest, `xxh3:<32 hex>` (XXH3-128), which the store compares to tell a
/// redelivery (same id, same body) from a reused id (same id, another body), and the id
/// of a delivery that comes without one.
///
/// Not a cryptographic hash, by choice: it is only compared between deliveries to one
/// source under one id, and whoever can make two bodies collide can sign (or hold the
/// token for) any body already. XXH3-128 reads 35 KB in ~1.5 us where SHA-256 takes ~22 us,
/// as long as the signature check itself (`cargo bench -p switchyard --bench matching`).
pub fn body_digest(body: &[u8]) -> String {
    let mut digest = String::with_capacity(37);
    digest.push_str("xxh3:");
    crate::text::push_hex(&mut digest, xxhash_rust::xxh3::xxh3_128(body), 32);
    digest
}

/// Why a verified body could not be normalized (the sender's mistake: 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormalizeError {
    /// The body is not JSON.
    #[error("body is not valid JSON: {0}")]
    MalformedJson(String),
    /// The delivery id header is unusable as a key.
    #[error("delivery id is empty, longer than 200 characters or not printable")]
    BadDeliveryId,
}

/// Looks up a dotted path (`pull_request.base.ref`) in a JSON value. Numeric segments
/// index arrays.
pub fn lookup<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(value, |v, seg| match v {
        Value::Object(map) => map.get(seg),
        Value::Array(items) => seg.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

/// A JSON scalar rendered for keys and templates: strings bare, numbers and booleans as
/// written; objects, arrays and null render as nothing.
pub fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn text(payload: &Value, path: &str) -> Option<String> {
    lookup(payload, path).and_then(scalar_text)
}

fn header<'h>(headers: &'h http::HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// GitLab's hook names (`Merge Request Hook`) as switchyard types (`merge_request`).
fn gitlab_type(name: &str) -> EventType {
    match name {
        "Merge Request Hook" => EventType::MergeRequest,
        // GitHub and Forgejo send tag pushes as `push` too; one trigger serves both.
        "Push Hook" | "Tag Push Hook" => EventType::Push,
        "Issue Hook" | "Confidential Issue Hook" => EventType::Issues,
        other => {
            let base = other.strip_suffix(" Hook").unwrap_or(other);
            EventType::from_name(&base.to_ascii_lowercase().replace(' ', "_"))
        }
    }
}

fn delivery_id(kind: SourceKind, headers: &http::HeaderMap) -> Option<&str> {
    match kind {
        SourceKind::Github => header(headers, "x-github-delivery"),
        SourceKind::Forgejo => {
            header(headers, "x-forgejo-delivery").or_else(|| header(headers, "x-gitea-delivery"))
        }
        SourceKind::Gitea => header(headers, "x-gitea-delivery"),
        SourceKind::Gitlab => {
            header(headers, "x-gitlab-event-uuid").or_else(|| header(headers, "idempotency-key"))
        }
        SourceKind::Standard => header(headers, "webhook-id"),
        SourceKind::Hmac => header(headers, "idempotency-key"),
        SourceKind::Schedule | SourceKind::Api | SourceKind::Internal => None,
    }
}

/// Normalizes a verified delivery received at `received_at`.
///
/// Bots: GitHub `sender.type == "Bot"` or a login ending in `[bot]`; Forgejo and Gitea a
/// login ending in `[bot]` or their Actions users (`forgejo-actions`, `gitea-actions`);
/// GitLab the `project_<id>_bot…` / `group_<id>_bot…` users of access tokens, or a username
/// ending in `_bot`.
///
/// `paths` are the payload paths to pick out beside normalization's (the registry's:
/// [`crate::manifest::Registry::payload_paths`]); routing reads those without parsing the
/// whole payload.
pub fn normalize(
    verified: Verified<'_>,
    received_at: OffsetDateTime,
    paths: &Arc<PayloadPaths>,
) -> Result<Event, NormalizeError> {
    parse_unverified(
        verified.source(),
        verified.headers(),
        verified.body(),
        received_at,
        paths,
    )
}

/// Normalizes a body without verifying it. For tooling that never dispatches (`switchyard
/// explain`); the request path goes through [`normalize`], which takes a [`Verified`].
/// `paths` as for [`normalize`] (`&Default::default()`: normalization's alone).
pub fn parse_unverified(
    source: &crate::source::Source,
    headers: &http::HeaderMap,
    body: &[u8],
    received_at: OffsetDateTime,
    paths: &Arc<PayloadPaths>,
) -> Result<Event, NormalizeError> {
    let parsed =
        Payload::parse(body, paths).map_err(|e| NormalizeError::MalformedJson(e.to_string()))?;
    // Normalization's paths are in every view.
    let payload = parsed.view(paths);
    let body_digest = body_digest(body);

    let id = match delivery_id(source.kind, headers) {
        Some(id) if id.len() <= 200 && id.chars().all(|c| c.is_ascii_graphic()) => id.to_owned(),
        Some(_) => return Err(NormalizeError::BadDeliveryId),
        None => body_digest.clone(),
    };

    let (event_type, action) = match source.kind {
        SourceKind::Github => (
            header(headers, "x-github-event").map(EventType::from_name),
            text(payload, "action"),
        ),
        SourceKind::Forgejo => (
            header(headers, "x-forgejo-event")
                .or_else(|| header(headers, "x-gitea-event"))
                .map(EventType::from_name),
            text(payload, "action"),
        ),
        SourceKind::Gitea => (
            header(headers, "x-gitea-event").map(EventType::from_name),
            text(payload, "action"),
        ),
        SourceKind::Gitlab => (
            header(headers, "x-gitlab-event").map(gitlab_type),
            text(payload, "object_attributes.action"),
        ),
        SourceKind::Standard => (
            text(payload, "type").map(|t| EventType::from_name(&t)),
            None,
        ),
        SourceKind::Hmac => (
            header(headers, &source.hmac.event_header)
                .map(EventType::from_name)
                .or_else(|| text(payload, "type").map(|t| EventType::from_name(&t))),
            text(payload, "action"),
        ),
        SourceKind::Schedule => (Some(EventType::Schedule), None),
        SourceKind::Api => (Some(EventType::Invoke), None),
        SourceKind::Internal => (
            text(payload, "type").map(|t| EventType::from_name(&t)),
            text(payload, "action"),
        ),
    };
    let event_type = event_type.unwrap_or_else(|| EventType::Other("unknown".into()));

    let repository = text(payload, "repository.full_name")
        .or_else(|| text(payload, "project.path_with_namespace"));
    let entity = default_entity(&event_type, payload, repository.as_deref())
        .unwrap_or_else(|| source.id.clone());

    let git_ref = git_ref(&event_type, payload);
    let (changed_paths, changed_paths_truncated) = match changed_paths(&event_type, payload) {
        Ok(paths) => (paths, false),
        Err(()) => (None, true),
    };
    let sender = sender(source.kind, payload);
    Ok(Event {
        id,
        source: source.id.clone(),
        kind: source.kind,
        event_type,
        action,
        entity,
        repository,
        received_at,
        body_digest,
        git_ref,
        changed_paths,
        changed_paths_truncated,
        changed_paths_unknown: None,
        sender,
        payload: parsed,
    })
}

fn git_ref(event_type: &EventType, payload: &Value) -> Option<GitRef> {
    match event_type {
        EventType::Push => {
            let r = text(payload, "ref")?;
            if let Some(tag) = r.strip_prefix("refs/tags/") {
                Some(GitRef::Tag(tag.to_owned()))
            } else {
                Some(GitRef::Branch(
                    r.strip_prefix("refs/heads/").unwrap_or(&r).to_owned(),
                ))
            }
        }
        EventType::PullRequest => text(payload, "pull_request.base.ref").map(GitRef::Branch),
        EventType::MergeRequest => {
            text(payload, "object_attributes.target_branch").map(GitRef::Branch)
        }
        _ => None,
    }
}

// GitHub lists at most 2048 commits; GitLab at most 20 (with `total_commits_count`);
// Forgejo and Gitea give `total_commits`. A list that may be cut is treated as unknown.
const GITHUB_MAX_COMMITS: usize = 2048;

/// Most distinct changed paths an event keeps. A push listing more is treated like a cut
/// list: `changed_paths` is left out, `changed_paths_truncated` says so, and path filters
/// match (as GitHub Actions does for diffs it cannot list whole).
pub const MAX_CHANGED_PATHS: usize = 10_000;

/// A push's changed paths, de-duplicated in first-seen order: `Ok(None)` when the payload
/// has no list, `Err(())` when it may be cut or holds more than [`MAX_CHANGED_PATHS`]
/// distinct paths. Linear in the payload: one hash-set lookup per listed path.
fn changed_paths(event_type: &EventType, payload: &Value) -> Result<Option<Vec<String>>, ()> {
    if *event_type != EventType::Push {
        return Ok(None);
    }
    let Some(commits) = lookup(payload, "commits").and_then(Value::as_array) else {
        return Ok(None);
    };
    let total = lookup(payload, "total_commits_count")
        .or_else(|| lookup(payload, "total_commits"))
        .and_then(Value::as_u64);
    match total {
        Some(t) if t as usize > commits.len() => return Err(()),
        None if commits.len() >= GITHUB_MAX_COMMITS => return Err(()),
        _ => {}
    }
    let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
    let mut paths: Vec<String> = Vec::new();
    for c in commits {
        for key in ["added", "modified", "removed"] {
            for p in c.get(key).and_then(Value::as_array).into_iter().flatten() {
                if let Some(p) = p.as_str() {
                    if seen.insert(p) {
                        if paths.len() == MAX_CHANGED_PATHS {
                            return Err(());
                        }
                        paths.push(p.to_owned());
                    }
                }
            }
        }
    }
    Ok(Some(paths))
}

fn sender(kind: SourceKind, payload: &Value) -> Option<Sender> {
    if kind == SourceKind::Gitlab {
        let login = text(payload, "user.username").or_else(|| text(payload, "user_username"))?;
        let bot = gitlab_bot(&login);
        return Some(Sender { login, bot });
    }
    let login = text(payload, "sender.login").or_else(|| text(payload, "sender.username"))?;
    let bot = text(payload, "sender.type").is_some_and(|t| t == "Bot")
        || login.ends_with("[bot]")
        || matches!(login.as_str(), "forgejo-actions" | "gitea-actions");
    Some(Sender { login, bot })
}

fn gitlab_bot(login: &str) -> bool {
    let token_bot = ["project_", "group_"].iter().any(|p| {
        login
            .strip_prefix(p)
            .and_then(|rest| rest.split_once("_bot"))
            .is_some_and(|(id, _)| !id.is_empty() && id.chars().all(|c| c.is_ascii_digit()))
    });
    token_bot || login.ends_with("_bot")
}

/// The entity key an event is about when a trigger does not give its own template.
fn default_entity(event_type: &EventType, payload: &Value, repo: Option<&str>) -> Option<String> {
    let repo = repo?;
    let number = match event_type {
        EventType::PullRequest => {
            text(payload, "pull_request.number").or_else(|| text(payload, "number"))
        }
        EventType::MergeRequest => text(payload, "object_attributes.iid"),
        EventType::Issues => {
            text(payload, "issue.number").or_else(|| text(payload, "object_attributes.iid"))
        }
        EventType::IssueComment => text(payload, "issue.number"),
        EventType::Push => {
            return Some(format!(
                "{repo}@{}",
                text(payload, "ref").unwrap_or_default()
            ));
        }
        _ => None,
    };
    Some(match number {
        Some(n) => format!("{repo}#{n}"),
        None => repo.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::{sign, verify};
    use crate::source::Source;
    use secrecy::SecretString;

    fn normalize_sample(
        kind: SourceKind,
        extra: &[(&str, &str)],
        body: &str,
    ) -> Result<Event, NormalizeError> {
        let secret = if kind == SourceKind::Standard {
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        } else {
            "s"
        };
        let source = Source::new("src", kind, &[secret]);
        let now = OffsetDateTime::now_utc();
        let mut headers = http::HeaderMap::new();
        for (k, v) in sign(
            &source,
            &SecretString::from(secret.to_owned()),
            body.as_bytes(),
            "d-42",
            now,
        )
        .unwrap()
        {
            headers.insert(http::HeaderName::try_from(k).unwrap(), v.parse().unwrap());
        }
        for (k, v) in extra {
            headers.insert(http::HeaderName::try_from(*k).unwrap(), v.parse().unwrap());
        }
        let verified = verify(&source, &headers, body.as_bytes(), now).unwrap();
        normalize(verified, now, &Default::default())
    }

    #[test]
    fn github_pull_request_is_normalized() {
        let body = include_str!("../../events/github-pull_request-opened.json");
        let e = normalize_sample(
            SourceKind::Github,
            &[("x-github-event", "pull_request")],
            body,
        )
        .unwrap();
        assert_eq!(e.id, "d-42");
        assert_eq!(e.event_type, EventType::PullRequest);
        assert_eq!(e.action.as_deref(), Some("opened"));
        assert_eq!(e.repository.as_deref(), Some("acme/widgets"));
        assert_eq!(e.entity, "acme/widgets#1347");
    }

    #[test]
    fn gitlab_merge_request_hook_becomes_merge_request() {
        let body = include_str!("../../events/gitlab-merge_request-opened.json");
        let e = normalize_sample(
            SourceKind::Gitlab,
            &[("x-gitlab-event", "Merge Request Hook")],
            body,
        )
        .unwrap();
        assert_eq!(e.event_type, EventType::MergeRequest);
        assert_eq!(e.action.as_deref(), Some("open"));
        assert_eq!(e.entity, "acme/widgets#7");
        assert_eq!(e.id, "d-42");
        let push = include_str!("../../events/gitlab-push.json");
        let e =
            normalize_sample(SourceKind::Gitlab, &[("x-gitlab-event", "Push Hook")], push).unwrap();
        assert_eq!(e.event_type, EventType::Push);
        assert_eq!(e.entity, "acme/widgets@refs/heads/main");
    }

    #[test]
    fn forgejo_push_and_standard_events_are_normalized() {
        let body = include_str!("../../events/forgejo-push.json");
        let e =
            normalize_sample(SourceKind::Forgejo, &[("x-forgejo-event", "push")], body).unwrap();
        assert_eq!(e.event_type, EventType::Push);
        assert_eq!(e.entity, "acme/widgets@refs/heads/main");
        let body = include_str!("../../events/standard-invoice.paid.json");
        let e = normalize_sample(SourceKind::Standard, &[], body).unwrap();
        assert_eq!(e.event_type, EventType::Other("invoice.paid".into()));
        assert_eq!(e.id, "d-42");
    }

    #[test]
    fn an_event_writes_what_serde_writes_for_it() {
        for (kind, header, value, file) in [
            (SourceKind::Github, "x-github-event", "pull_request", &include_bytes!("../../events/github-pull_request-opened.json")[..]),
            (SourceKind::Github, "x-github-event", "push", &include_bytes!("../../events/github-push.json")[..]),
            (SourceKind::Gitlab, "x-gitlab-event", "Tag Push Hook", &br#"{"ref": "refs/tags/v1", "project": {"path_with_namespace": "g/p"}, "user_username": "project_1_bot_x"}"#[..]),
            (SourceKind::Hmac, "x-event-type", "custom", &b" [1, \"two\", {\"three\": 3.0}] "[..]),
        ] {
            let source = Source::new("s", kind, &["s"]);
            let mut headers = http::HeaderMap::new();
            headers.insert(header, value.parse().unwrap());
            let received = parse_unverified(&source, &headers, file, OffsetDateTime::UNIX_EPOCH, &Default::default()).unwrap();
            let built = Event { payload: received.payload.value().clone().into(), ..received.clone() };
            for event in [received, built] {
                let mut out = Vec::new();
                event.write_json(&mut out).unwrap();
                let written: Value = serde_json::from_slice(&out).unwrap();
                assert_eq!(written, serde_json::to_value(&event).unwrap(), "{value}");
                assert_eq!(serde_json::from_slice::<Event>(&out).unwrap(), event);
            }
        }
    }

    #[test]
    fn missing_delivery_id_falls_back_to_the_body_hash() {
        let source = Source::new("g", SourceKind::Gitlab, &["tok"]);
        let mut headers = http::HeaderMap::new();
        headers.insert("x-gitlab-token", "tok".parse().unwrap());
        let body = br#"{"object_kind":"push"}"#;
        let v = verify(&source, &headers, body, OffsetDateTime::now_utc()).unwrap();
        let e = normalize(v, OffsetDateTime::now_utc(), &Default::default()).unwrap();
        assert_eq!(e.id, body_digest(body));
        // The reference implementation's XXH3-128 of the body (xxHash 0.8.4, through
        // Python's `xxhash.xxh3_128_hexdigest`).
        assert_eq!(e.id, "xxh3:97b930688df03714e595a6baebe6ba90");
        assert_eq!(e.event_type, EventType::Other("unknown".into()));
        assert_eq!(e.entity, "g");
    }

    #[test]
    fn malformed_json_is_an_error_not_a_panic() {
        let err = normalize_sample(
            SourceKind::Github,
            &[("x-github-event", "push")],
            "{not json",
        )
        .unwrap_err();
        assert!(matches!(err, NormalizeError::MalformedJson(_)));
    }

    #[test]
    fn refs_paths_and_senders_are_normalized_across_forges() {
        let body = include_str!("../../events/github-push.json");
        let e = normalize_sample(SourceKind::Github, &[("x-github-event", "push")], body).unwrap();
        assert_eq!(e.git_ref, Some(GitRef::Branch("main".into())));
        assert_eq!(
            e.changed_paths.as_deref(),
            Some(
                &[
                    "crates/layout/src/cache.rs".to_owned(),
                    "crates/layout/src/lib.rs".into(),
                    "crates/layout/src/flex.rs".into(),
                    "crates/layout/src/full_pass.rs".into()
                ][..]
            )
        );
        assert_eq!(
            e.sender,
            Some(Sender {
                login: "alice".into(),
                bot: false
            })
        );

        let body = include_str!("../../events/github-pull_request-opened.json");
        let e = normalize_sample(
            SourceKind::Github,
            &[("x-github-event", "pull_request")],
            body,
        )
        .unwrap();
        assert_eq!(e.git_ref, Some(GitRef::Branch("main".into())));
        assert_eq!(e.changed_paths, None);

        let body = include_str!("../../events/gitlab-merge_request-opened.json");
        let e = normalize_sample(
            SourceKind::Gitlab,
            &[("x-gitlab-event", "Merge Request Hook")],
            body,
        )
        .unwrap();
        assert_eq!(e.git_ref, Some(GitRef::Branch("main".into())));
        assert_eq!(e.sender.as_ref().map(|s| s.login.as_str()), Some("alice"));

        // GitLab lists 2 of 2 commits here; with a larger total the list is truncated.
        let mut push: Value =
            serde_json::from_str(include_str!("../../events/gitlab-push.json")).unwrap();
        let e = normalize_sample(
            SourceKind::Gitlab,
            &[("x-gitlab-event", "Push Hook")],
            &push.to_string(),
        )
        .unwrap();
        assert_eq!(e.changed_paths.map(|p| p.len()), Some(4));
        push["total_commits_count"] = Value::from(40);
        let e = normalize_sample(
            SourceKind::Gitlab,
            &[("x-gitlab-event", "Push Hook")],
            &push.to_string(),
        )
        .unwrap();
        assert_eq!(e.changed_paths, None);

        push["ref"] = Value::from("refs/tags/v1.2.0");
        let e = normalize_sample(
            SourceKind::Gitlab,
            &[("x-gitlab-event", "Tag Push Hook")],
            &push.to_string(),
        )
        .unwrap();
        assert_eq!(e.event_type, EventType::Push);
        assert_eq!(e.git_ref, Some(GitRef::Tag("v1.2.0".into())));
    }

    #[test]
    fn bots_are_recognized_per_forge() {
        let gh = |login: &str, ty: &str| {
            sender(
                SourceKind::Github,
                &serde_json::json!({"sender": {"login": login, "type": ty}}),
            )
            .unwrap()
            .bot
        };
        assert!(gh("dependabot[bot]", "Bot"));
        assert!(gh("renovate[bot]", "User"));
        assert!(gh("my-app", "Bot"));
        assert!(!gh("alice", "User"));
        let fj = |login: &str| {
            sender(
                SourceKind::Forgejo,
                &serde_json::json!({"sender": {"login": login}}),
            )
            .unwrap()
            .bot
        };
        assert!(fj("forgejo-actions"));
        assert!(fj("renovate[bot]"));
        assert!(!fj("alice"));
        for (login, bot) in [
            ("project_42_bot_3f1e", true),
            ("group_7_bot", true),
            ("deploy_bot", true),
            ("robot-arm", false),
            ("alice", false),
        ] {
            let s = sender(
                SourceKind::Gitlab,
                &serde_json::json!({"user": {"username": login}}),
            )
            .unwrap();
            assert_eq!(s.bot, bot, "{login}");
        }
    }

    #[test]
    fn lookup_walks_objects_and_arrays() {
        let v: Value = serde_json::json!({"a": {"b": [{"c": 1}]}});
        assert_eq!(lookup(&v, "a.b.0.c"), Some(&serde_json::json!(1)));
        assert_eq!(lookup(&v, "a.x"), None);
    }

    fn push_with_paths(paths: impl Iterator<Item = String>) -> String {
        let added: Vec<String> = paths.collect();
        serde_json::json!({
            "ref": "refs/heads/main",
            "repository": {"full_name": "acme/widgets"},
            "commits": [{"id": "c1", "added": added, "modified": [], "removed": []}],
        })
        .to_string()
    }

    #[test]
    fn a_push_listing_150000_paths_is_kept_as_truncated_in_linear_time() {
        // Before: de-duplicated pairwise, about 10^10 comparisons for this push.
        let body = push_with_paths((0..150_000).map(|i| format!("src/file-{i}.rs")));
        let e = normalize_sample(SourceKind::Github, &[("x-github-event", "push")], &body).unwrap();
        assert_eq!(e.changed_paths, None);
        assert!(e.changed_paths_truncated);
        // The event says so when written out.
        assert!(
            serde_json::to_string(&e)
                .unwrap()
                .contains("\"changed_paths_truncated\":true")
        );
    }

    #[test]
    fn changed_paths_up_to_the_cap_are_kept_whole_and_de_duplicated() {
        let paths = (0..MAX_CHANGED_PATHS).map(|i| format!("f{i}"));
        let dup = (0..MAX_CHANGED_PATHS).map(|i| format!("f{i}"));
        let body = push_with_paths(paths.chain(dup));
        let e = normalize_sample(SourceKind::Github, &[("x-github-event", "push")], &body).unwrap();
        let kept = e.changed_paths.clone().unwrap();
        assert_eq!(kept.len(), MAX_CHANGED_PATHS);
        assert_eq!((kept[0].as_str(), kept[9_999].as_str()), ("f0", "f9999"));
        assert!(!e.changed_paths_truncated);
        assert!(
            !serde_json::to_string(&e)
                .unwrap()
                .contains("changed_paths_truncated")
        );
    }
}
