//! Module manifests (`functions/modules/<name>/module.yaml`): strict parsing and validation
//! into [`Module`]s, and the [`Registry`] the router matches against. Parsing has two
//! phases: a strict serde pass (unknown keys, wrong types), then a compile pass that checks
//! durations, templates, globs and patterns and reports every error it finds, each naming
//! the file, the line and the key.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::glob::GlobList;
use crate::pattern::Filter;
use crate::payload::PayloadPaths;
use crate::schedule::Schedule;

/// The manifest schema version this build understands.
pub const SCHEMA_VERSION: u32 = 1;

/// A manifest problem: `file:line: key: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{}: {key}: {message}", line.map_or_else(|| "?".to_owned(), |l| l.to_string()))]
pub struct ManifestError {
    /// The manifest's path.
    pub file: String,
    /// 1-based line of the key, when it could be located.
    pub line: Option<usize>,
    /// Key path, e.g. `triggers[0].webhook.cooldown`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// A validated module.
#[derive(Debug, Clone, PartialEq)]
pub struct Module {
    /// Unique name: lower-case letters, digits and `-`.
    pub name: String,
    /// What it does, for people.
    pub description: String,
    /// The function to invoke (binary name, function name or ARN); defaults to `name`.
    /// Empty for a pull module.
    pub function: String,
    /// Set for a pull module: its jobs wait in a queue for workers (`POST /workers/lease`)
    /// instead of invoking a function.
    pub pull: Option<PullTarget>,
    /// The setting that switches it on or off per scope (`feature_flag`, default: `name`).
    pub flag: String,
    /// Whether it runs where no setting says otherwise (`enabled`, default true).
    pub enabled: bool,
    /// Whether events sent by bots start it (`allow_bots`, default false: the loop guard).
    pub allow_bots: bool,
    /// Senders (logins, case-insensitive) whose events never start it.
    pub ignore_senders: Vec<String>,
    /// When it runs.
    pub triggers: Vec<Trigger>,
    /// How its jobs show on the forge (`report: check`): a GitHub check run, or a
    /// Forgejo/Gitea commit status, on the event's head commit.
    pub report: Option<Report>,
    /// Handed to the module as is (after per-scope overrides).
    pub config: Value,
    /// The manifest file it came from.
    pub file: String,
}

/// Where a module's job status is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// A check run on GitHub (queued, in progress, completed), a commit status on
    /// Forgejo/Gitea.
    Check,
}

/// How a pull module's jobs are leased.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PullTarget {
    /// How long a lease lasts without a heartbeat (`lease`, default 5m, 10s to 12h).
    pub lease: Duration,
    /// Leases a job gets before it fails (`max_attempts`, default 3, 1 to 20).
    pub max_attempts: u32,
}

/// Default lease of a pull module.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(300);
/// Default number of leases of a pull job.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

/// One way a module is started.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// A matching webhook delivery.
    Webhook(WebhookTrigger),
    /// A schedule tick.
    Schedule(ScheduleTrigger),
    /// A start through the HTTP API (`POST /modules/{name}/invoke`).
    Invoke(InvokeTrigger),
}

/// An invoke trigger: the module may be started through the API.
#[derive(Debug, Clone, PartialEq)]
pub struct InvokeTrigger {
    /// Config merged over the module's `config` for these runs (the request's own `config`
    /// is merged over this).
    pub config: Option<Value>,
}

/// The event type of API starts; invoke triggers are indexed under it.
pub const INVOKE_EVENT: &str = "invoke";

/// The event type of schedule ticks; schedule triggers are indexed under it.
pub const SCHEDULE_EVENT: &str = "schedule";

/// A schedule trigger: `cron` (or `rate(...)`) in an optional zone.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleTrigger {
    /// The parsed schedule.
    pub schedule: Schedule,
    /// The expression as written.
    pub expression: String,
    /// The zone as written.
    pub timezone: Option<String>,
    /// Entity template over the tick's payload (`{module}`, `{scheduled_for}`); default
    /// `schedule:<module>`.
    pub entity: Option<Template>,
    /// Config merged over the module's `config` for these runs.
    pub config: Option<Value>,
}

/// A list of globs used to include (`branches`) or exclude (`branches-ignore`).
#[derive(Debug, Clone, PartialEq)]
pub struct GlobFilter {
    /// The patterns.
    pub globs: GlobList,
    /// Whether this is the `-ignore` form.
    pub ignore: bool,
}

/// A webhook trigger: which deliveries start the module.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookTrigger {
    /// Source ids it listens on; `None` is every source.
    pub sources: Option<Vec<String>>,
    /// Event types (`pull_request`, `merge_request`, ...); at least one.
    pub events: Vec<String>,
    /// Actions; `None` is every action (and events without one).
    pub actions: Option<Vec<String>>,
    /// `branches` / `branches-ignore`.
    pub branches: Option<GlobFilter>,
    /// `tags` / `tags-ignore`.
    pub tags: Option<GlobFilter>,
    /// `paths` / `paths-ignore`.
    pub paths: Option<GlobFilter>,
    /// Payload patterns; all must hold.
    pub filter: Filter,
    /// At most one dispatch per entity within this window.
    pub cooldown: Option<Duration>,
    /// The entity key template; the event's default entity when absent.
    pub entity: Option<Template>,
}

/// An entity template such as `"{repository.full_name}#{pull_request.number}"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<TemplatePart>,
    text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum TemplatePart {
    Literal(String),
    Path(String),
}

impl Template {
    /// Parses a template; `{path}` placeholders, no nesting, no empty placeholder.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        Self::read(text).map_err(TemplateError)
    }

    fn read(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if rest[..open].contains('}') {
                return Err("`}` without a matching `{`".into());
            }
            if open > 0 {
                parts.push(TemplatePart::Literal(rest[..open].to_owned()));
            }
            let after = &rest[open + 1..];
            let close = after.find('}').ok_or("`{` without a matching `}`")?;
            let path = after[..close].trim();
            if path.is_empty() || path.contains('{') || path.split('.').any(str::is_empty) {
                return Err(format!("bad placeholder `{{{}}}`", &after[..close]));
            }
            parts.push(TemplatePart::Path(path.to_owned()));
            rest = &after[close + 1..];
        }
        if rest.contains('}') {
            return Err("`}` without a matching `{`".into());
        }
        if !rest.is_empty() {
            parts.push(TemplatePart::Literal(rest.to_owned()));
        }
        if parts.is_empty() {
            return Err("empty template".into());
        }
        Ok(Self {
            parts,
            text: text.to_owned(),
        })
    }

    /// Renders against a payload; `Err(path)` names the first placeholder that does not
    /// resolve to a string, number or boolean.
    pub fn render(&self, payload: &Value) -> Result<String, Unresolved> {
        self.render_text(payload).map_err(Unresolved)
    }

    fn render_text(&self, payload: &Value) -> Result<String, String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                TemplatePart::Literal(s) => out.push_str(s),
                TemplatePart::Path(p) => {
                    let v = crate::event::lookup(payload, p)
                        .and_then(crate::event::scalar_text)
                        .ok_or_else(|| p.clone())?;
                    out.push_str(&v);
                }
            }
        }
        Ok(out)
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The payload paths it reads.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            TemplatePart::Path(p) => Some(p.as_str()),
            TemplatePart::Literal(_) => None,
        })
    }
}

/// Parses `30s`, `5m`, `1h30m`, `2d` (units s, m, h, d; at least one part; not zero).
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    duration_text(text).map_err(DurationError)
}

fn duration_text(text: &str) -> Result<Duration, String> {
    let bad = || format!("`{text}` is not a duration like 30s, 5m, 1h30m or 2d");
    let mut total: u64 = 0;
    let mut digits = String::new();
    let mut parts = 0;
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        digits.clear();
        parts += 1;
    }
    if parts == 0 || !digits.is_empty() {
        return Err(bad());
    }
    if total == 0 {
        return Err(format!("`{text}` is zero; leave the key out instead"));
    }
    Ok(Duration::from_secs(total))
}

// ---- raw, strictly-deserialized shapes -------------------------------------------------

// ---- raw, strictly-deserialized shapes -------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    #[serde(default)]
    schema: Option<u32>,
    name: String,
    description: String,
    #[serde(default)]
    function: Option<String>,
    #[serde(default)]
    pull: Option<RawPull>,
    #[serde(default)]
    feature_flag: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    allow_bots: Option<bool>,
    #[serde(default)]
    ignore_senders: Option<Vec<String>>,
    #[serde(default)]
    report: Option<String>,
    triggers: Vec<RawTrigger>,
    #[serde(default)]
    config: Option<Value>,
}

// A struct of optional kinds rather than an enum: YAML's `- webhook: {...}` reads as a
// one-key map, and this shape gives "unknown field" errors that list the trigger kinds.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrigger {
    #[serde(default)]
    webhook: Option<RawWebhook>,
    #[serde(default)]
    schedule: Option<RawSchedule>,
    #[serde(default)]
    invoke: Option<RawInvoke>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPull {
    #[serde(default)]
    lease: Option<String>,
    #[serde(default)]
    max_attempts: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInvoke {
    #[serde(default)]
    config: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    cron: String,
    #[serde(default)]
    timezone: Option<String>,
    #[serde(default)]
    entity: Option<String>,
    #[serde(default)]
    config: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    #[serde(default)]
    sources: Option<Vec<String>>,
    event: OneOrMany<String>,
    #[serde(default)]
    actions: Option<Vec<String>>,
    #[serde(default)]
    branches: Option<Vec<String>>,
    #[serde(default, rename = "branches-ignore")]
    branches_ignore: Option<Vec<String>>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default, rename = "tags-ignore")]
    tags_ignore: Option<Vec<String>>,
    #[serde(default)]
    paths: Option<Vec<String>>,
    #[serde(default, rename = "paths-ignore")]
    paths_ignore: Option<Vec<String>>,
    #[serde(default)]
    filter: Option<Value>,
    #[serde(default)]
    cooldown: Option<String>,
    #[serde(default)]
    entity: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            Self::One(v) => vec![v],
            Self::Many(v) => v,
        }
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
}

// ---- compiling ----------------------------------------------------------------------------

/// Top-level payload keys per known event type, GitHub/Forgejo and GitLab shapes: an entity
/// template whose placeholder starts elsewhere can never resolve, which is known at publish
/// time.
fn known_roots(event: &str) -> Option<Vec<&'static str>> {
    const COMMON: &[&str] = &[
        "repository",
        "sender",
        "organization",
        "installation",
        "enterprise",
        "action",
    ];
    let specific: &[&str] = match event {
        "pull_request" => &[
            "number",
            "pull_request",
            "requested_reviewer",
            "requested_team",
            "label",
            "changes",
            "before",
            "after",
            "assignee",
            "commit_id",
            "review",
        ],
        "issues" => &[
            "issue",
            "label",
            "changes",
            "assignee",
            "milestone",
            "object_kind",
            "event_type",
            "user",
            "project",
            "object_attributes",
            "labels",
            "assignees",
        ],
        "issue_comment" => &["issue", "comment", "changes"],
        "push" => &[
            "ref",
            "before",
            "after",
            "base_ref",
            "compare",
            "compare_url",
            "commits",
            "head_commit",
            "pusher",
            "created",
            "deleted",
            "forced",
            "total_commits",
            "object_kind",
            "event_name",
            "checkout_sha",
            "user_id",
            "user_name",
            "user_username",
            "user_email",
            "project_id",
            "project",
            "total_commits_count",
            "push_options",
            "ref_protected",
            "message",
            "user_avatar",
        ],
        "merge_request" => &[
            "object_kind",
            "event_type",
            "user",
            "project",
            "object_attributes",
            "labels",
            "changes",
            "assignees",
            "reviewers",
        ],
        "release" => &["release", "changes"],
        _ => return None,
    };
    Some(specific.iter().chain(COMMON).copied().collect())
}

struct Compiler<'a> {
    file: &'a str,
    doc: &'a crate::yaml::Document,
    errors: Vec<ManifestError>,
}

impl Compiler<'_> {
    fn error(&mut self, key: impl Into<String>, message: impl Into<String>) {
        let key = key.into();
        self.errors.push(ManifestError {
            file: self.file.to_owned(),
            line: self.doc.line(&key),
            key,
            message: message.into(),
        });
    }

    fn globs(
        &mut self,
        key: &str,
        include: Option<Vec<String>>,
        ignore: Option<Vec<String>>,
        name: &str,
    ) -> Option<GlobFilter> {
        let (list, ignore_form, field) = match (include, ignore) {
            (Some(_), Some(_)) => {
                self.error(
                    format!("{key}.{name}-ignore"),
                    format!("`{name}` and `{name}-ignore` cannot both be set"),
                );
                return None;
            }
            (Some(l), None) => (l, false, name.to_owned()),
            (None, Some(l)) => (l, true, format!("{name}-ignore")),
            (None, None) => return None,
        };
        match GlobList::parse(&list) {
            Ok(globs) => Some(GlobFilter {
                globs,
                ignore: ignore_form,
            }),
            Err(e) => {
                self.error(format!("{key}.{field}"), e);
                None
            }
        }
    }

    fn webhook(&mut self, key: &str, w: RawWebhook) -> Option<WebhookTrigger> {
        let before = self.errors.len();
        let events = w.event.into_vec();
        if events.is_empty() || events.iter().any(|e| e.trim().is_empty()) {
            self.error(format!("{key}.event"), "must name at least one event");
        }
        // Starts and ticks are made by the API and the scheduler, never received: a webhook
        // trigger for them would let any signed or emitted event named so start the module.
        if let Some(e) = events
            .iter()
            .find(|e| matches!(e.as_str(), "invoke" | "schedule"))
        {
            self.error(
                format!("{key}.event"),
                format!("`{e}` events come only from switchyard; use an `{e}:` trigger"),
            );
        }
        for (field, list) in [("actions", &w.actions), ("sources", &w.sources)] {
            if matches!(list, Some(a) if a.is_empty()) {
                self.error(
                    format!("{key}.{field}"),
                    format!(
                        "an empty list matches nothing; leave `{field}` out to match every one"
                    ),
                );
            }
        }
        let branches = self.globs(key, w.branches, w.branches_ignore, "branches");
        let tags = self.globs(key, w.tags, w.tags_ignore, "tags");
        let paths = self.globs(key, w.paths, w.paths_ignore, "paths");
        let filter = match w.filter.as_ref().map(Filter::compile) {
            None => Filter::default(),
            Some(Ok(f)) => f,
            Some(Err(e)) => {
                let k = if e.key.is_empty() {
                    format!("{key}.filter")
                } else {
                    format!("{key}.filter.{}", e.key)
                };
                self.error(k, e.message);
                Filter::default()
            }
        };
        let cooldown = match w.cooldown.as_deref().map(parse_duration) {
            None => None,
            Some(Ok(d)) => Some(d),
            Some(Err(e)) => {
                self.error(format!("{key}.cooldown"), e);
                None
            }
        };
        let entity = match w.entity.as_deref().map(Template::parse) {
            None => None,
            Some(Ok(t)) => {
                let roots: Option<Vec<Vec<&str>>> = events.iter().map(|e| known_roots(e)).collect();
                if let Some(roots) = roots {
                    for p in t.paths() {
                        let first = p.split('.').next().unwrap_or(p);
                        if let Some((ev, _)) =
                            events.iter().zip(&roots).find(|(_, r)| !r.contains(&first))
                        {
                            self.error(
                                format!("{key}.entity"),
                                format!("`{{{p}}}` can never resolve for `{ev}` events"),
                            );
                        }
                    }
                }
                Some(t)
            }
            Some(Err(e)) => {
                self.error(
                    format!("{key}.entity"),
                    format!("invalid template `{}`: {e}", w.entity.unwrap_or_default()),
                );
                None
            }
        };
        (self.errors.len() == before).then_some(WebhookTrigger {
            sources: w.sources,
            events,
            actions: w.actions,
            branches,
            tags,
            paths,
            filter,
            cooldown,
            entity,
        })
    }
}

fn serde_error(
    file: &str,
    doc: &crate::yaml::Document,
    e: &serde_path_to_error::Error<serde_json::Error>,
) -> ManifestError {
    let path = match e.path().to_string() {
        p if p == "." => String::new(),
        p => p,
    };
    let message = e.inner().to_string();
    let key = match message.split('`').nth(1) {
        Some(field)
            if message.starts_with("unknown field") || message.starts_with("missing field") =>
        {
            if path.is_empty() || path == field {
                field.to_owned()
            } else if path.ends_with(&format!(".{field}")) {
                path
            } else {
                format!("{path}.{field}")
            }
        }
        _ => path,
    };
    ManifestError {
        file: file.to_owned(),
        line: doc.line(&key).or(Some(1)),
        key: if key.is_empty() {
            "(document)".into()
        } else {
            key
        },
        message,
    }
}

/// A Lambda function name, or a function ARN (with an optional version or alias), so a
/// module deployed elsewhere, in any language, can be named by a published manifest.
fn valid_function(text: &str) -> bool {
    static PATTERN: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    PATTERN
        .get_or_init(|| {
            regex::Regex::new(
                r"^([A-Za-z0-9_-]{1,64}|arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:[A-Za-z0-9_-]{1,64}(:[A-Za-z0-9$_-]{1,128})?)$",
            )
            .ok()
        })
        .as_ref()
        .is_some_and(|re| re.is_match(text))
}

/// Parses and validates one manifest; `file` names it in errors. Every error found is
/// returned (a type error stops the first pass, so it comes alone).
pub fn parse_manifest(file: &str, text: &str) -> Result<Module, Vec<ManifestError>> {
    let doc = crate::yaml::Document::parse(text).map_err(|e| {
        vec![ManifestError {
            file: file.to_owned(),
            line: e.line,
            key: "(document)".into(),
            message: e.message,
        }]
    })?;
    let raw: RawManifest = serde_path_to_error::deserialize(&doc.value)
        .map_err(|e| vec![serde_error(file, &doc, &e)])?;
    let mut c = Compiler {
        file,
        doc: &doc,
        errors: Vec::new(),
    };
    if let Some(v) = raw.schema {
        if v != SCHEMA_VERSION {
            c.error(
                "schema",
                format!("version {v} is not supported (this build reads {SCHEMA_VERSION})"),
            );
        }
    }
    if !valid_name(&raw.name) {
        c.error(
            "name",
            format!(
                "`{}` must be 1-64 lower-case letters, digits or `-`",
                raw.name
            ),
        );
    }
    if raw.triggers.is_empty() {
        c.error("triggers", "at least one trigger is required");
    }
    // A default function (the name) is checked as the name.
    let explicit = raw.function.is_some();
    if explicit && raw.pull.is_some() {
        c.error(
            "pull",
            "a module either names a `function` or is pulled by workers (`pull:`), not both",
        );
    }
    let report = match raw.report.as_deref() {
        None => None,
        Some("check") => Some(Report::Check),
        Some(other) => {
            c.error(
                "report",
                format!("{other:?} is not a report; the one kind is `check`"),
            );
            None
        }
    };
    let pull = raw.pull.map(|p| {
        let lease = match p.lease.as_deref().map(parse_duration) {
            None => DEFAULT_LEASE,
            Some(Ok(d)) if (10..=43_200).contains(&d.as_secs()) => d,
            Some(Ok(_)) => {
                c.error("pull.lease", "a lease lasts from 10s to 12h");
                DEFAULT_LEASE
            }
            Some(Err(e)) => {
                c.error("pull.lease", e);
                DEFAULT_LEASE
            }
        };
        let max_attempts = p.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS);
        if !(1..=20).contains(&max_attempts) {
            c.error("pull.max_attempts", "max_attempts is 1 to 20");
        }
        PullTarget {
            lease,
            max_attempts,
        }
    });
    let function = match (&pull, raw.function) {
        (Some(_), _) => String::new(),
        (None, f) => f.unwrap_or_else(|| raw.name.clone()),
    };
    if explicit && !valid_function(&function) {
        c.error(
            "function",
            format!("`{function}` must be a function name (letters, digits, `-`, `_`, up to 64) or a Lambda function ARN"),
        );
    }
    let flag = raw.feature_flag.unwrap_or_else(|| raw.name.clone());
    if flag.is_empty()
        || !flag
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
    {
        c.error(
            "feature_flag",
            format!("`{flag}` must be letters, digits, `_` or `-`"),
        );
    }
    let mut triggers = Vec::new();
    for (i, t) in raw.triggers.into_iter().enumerate() {
        let kinds = usize::from(t.webhook.is_some())
            + usize::from(t.schedule.is_some())
            + usize::from(t.invoke.is_some());
        if kinds > 1 {
            c.error(
                format!("triggers[{i}]"),
                "a trigger has one kind: split `webhook:`, `schedule:` and `invoke:`",
            );
            continue;
        }
        if let Some(inv) = t.invoke {
            triggers.push(Trigger::Invoke(InvokeTrigger { config: inv.config }));
            continue;
        }
        match (t.webhook, t.schedule) {
            (None, None) => c.error(
                format!("triggers[{i}]"),
                "a trigger needs one kind: `webhook:`, `schedule:` or `invoke:`",
            ),
            (Some(_), Some(_)) => c.error(format!("triggers[{i}]"), "a trigger has one kind"),
            (Some(w), None) => {
                if let Some(w) = c.webhook(&format!("triggers[{i}].webhook"), w) {
                    triggers.push(Trigger::Webhook(w));
                }
            }
            (None, Some(sch)) => {
                let key = format!("triggers[{i}].schedule");
                match Schedule::parse(&sch.cron, sch.timezone.as_deref()) {
                    Err((field, e)) => c.error(format!("{key}.{field}"), e),
                    Ok(schedule) => {
                        let entity = match sch.entity.as_deref().map(Template::parse) {
                            None => None,
                            Some(Ok(t)) => Some(t),
                            Some(Err(e)) => {
                                c.error(format!("{key}.entity"), format!("invalid template: {e}"));
                                None
                            }
                        };
                        triggers.push(Trigger::Schedule(ScheduleTrigger {
                            schedule,
                            expression: sch.cron,
                            timezone: sch.timezone,
                            entity,
                            config: sch.config,
                        }));
                    }
                }
            }
        }
    }
    if !c.errors.is_empty() {
        return Err(c.errors);
    }
    Ok(Module {
        name: raw.name,
        description: raw.description,
        function,
        pull,
        flag,
        enabled: raw.enabled.unwrap_or(true),
        allow_bots: raw.allow_bots.unwrap_or(false),
        ignore_senders: raw
            .ignore_senders
            .unwrap_or_default()
            .into_iter()
            .map(|s| s.to_lowercase())
            .collect(),
        triggers,
        report,
        config: raw.config.unwrap_or(Value::Null),
        file: file.to_owned(),
    })
}

/// The set of modules the router matches against, indexed by event type.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Registry {
    modules: Vec<Module>,
    by_event: HashMap<String, Vec<usize>>,
    paths: Arc<PayloadPaths>,
}

// `(path, contents)` of every `functions/modules/*/module.yaml`, embedded at build time.
include!(concat!(env!("OUT_DIR"), "/builtin_manifests.rs"));

impl Registry {
    /// Builds a registry from `(file, text)` manifests; every error of every file is reported.
    pub fn from_manifests<'a>(
        manifests: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, Vec<ManifestError>> {
        let mut modules = Vec::new();
        let mut errors = Vec::new();
        let mut names = BTreeSet::new();
        for (file, text) in manifests {
            match parse_manifest(file, text) {
                Ok(m) if !names.insert(m.name.clone()) => errors.push(ManifestError {
                    file: file.to_owned(),
                    line: crate::yaml::Document::parse(text)
                        .ok()
                        .and_then(|d| d.line("name")),
                    key: "name".into(),
                    message: format!("`{}` is declared by another manifest too", m.name),
                }),
                Ok(m) => modules.push(m),
                Err(e) => errors.extend(e),
            }
        }
        if errors.is_empty() {
            Ok(Self::new(modules))
        } else {
            Err(errors)
        }
    }

    /// A registry of already validated modules.
    pub fn new(modules: Vec<Module>) -> Self {
        let mut by_event: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, m) in modules.iter().enumerate() {
            for t in &m.triggers {
                let events: Vec<&str> = match t {
                    Trigger::Webhook(w) => w.events.iter().map(String::as_str).collect(),
                    Trigger::Schedule(_) => vec![SCHEDULE_EVENT],
                    Trigger::Invoke(_) => vec![INVOKE_EVENT],
                };
                for e in events {
                    let list = by_event.entry(e.to_owned()).or_default();
                    if list.last() != Some(&i) {
                        list.push(i);
                    }
                }
            }
        }
        let paths = Arc::new(PayloadPaths::with(modules.iter().flat_map(|m| {
            m.triggers.iter().flat_map(|t| {
                let (filter, entity) = match t {
                    Trigger::Webhook(w) => (Some(&w.filter), w.entity.as_ref()),
                    Trigger::Schedule(_) | Trigger::Invoke(_) => (None, None),
                };
                filter
                    .into_iter()
                    .flat_map(Filter::paths)
                    .chain(entity.into_iter().flat_map(Template::paths))
            })
        })));
        Self {
            modules,
            by_event,
            paths,
        }
    }

    /// The payload paths webhook triggers read (filters, entity templates) and
    /// normalization's: what [`crate::event::normalize`] picks out for routing.
    pub fn payload_paths(&self) -> &Arc<PayloadPaths> {
        &self.paths
    }

    /// The manifests compiled into this build (`functions/modules/*/module.yaml`).
    pub fn builtin() -> Result<Self, Vec<ManifestError>> {
        Self::from_manifests(BUILTIN_MANIFESTS.iter().copied())
    }

    /// The modules, in manifest order.
    pub fn modules(&self) -> &[Module] {
        &self.modules
    }

    /// The modules with a trigger for `event_type`, in manifest order (an index lookup, not
    /// a scan of every module).
    pub fn candidates<'r>(&'r self, event_type: &str) -> impl Iterator<Item = &'r Module> + 'r {
        self.by_event
            .get(event_type)
            .into_iter()
            .flatten()
            .map(move |&i| &self.modules[i])
    }

    /// Every schedule trigger: (module, trigger index, trigger).
    pub fn schedules(&self) -> impl Iterator<Item = (&Module, usize, &ScheduleTrigger)> {
        self.modules.iter().flat_map(|m| {
            m.triggers
                .iter()
                .enumerate()
                .filter_map(move |(i, t)| match t {
                    Trigger::Schedule(s) => Some((m, i, s)),
                    Trigger::Webhook(_) | Trigger::Invoke(_) => None,
                })
        })
    }

    /// The module named `name`.
    pub fn get(&self, name: &str) -> Option<&Module> {
        self.modules.iter().find(|m| m.name == name)
    }
}

/// Reads every `*/module.yaml` below `dir` (or `dir/module.yaml` itself) and validates them
/// as one registry; every error of every file is returned.
pub fn validate_dir(dir: &std::path::Path) -> Result<Registry, Vec<ManifestError>> {
    let mut files = Vec::new();
    let direct = dir.join("module.yaml");
    if direct.is_file() {
        files.push(direct);
    } else if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path().join("module.yaml");
            if p.is_file() {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut texts = Vec::new();
    let mut errors = Vec::new();
    for f in &files {
        match std::fs::read_to_string(f) {
            Ok(t) => texts.push((f.display().to_string(), t)),
            Err(e) => errors.push(ManifestError {
                file: f.display().to_string(),
                line: None,
                key: "(file)".into(),
                message: e.to_string(),
            }),
        }
    }
    if files.is_empty() {
        errors.push(ManifestError {
            file: dir.display().to_string(),
            line: None,
            key: "(dir)".into(),
            message: "no */module.yaml found".into(),
        });
    }
    match Registry::from_manifests(texts.iter().map(|(f, t)| (f.as_str(), t.as_str()))) {
        Ok(r) if errors.is_empty() => Ok(r),
        Ok(_) => Err(errors),
        Err(e) => {
            errors.extend(e);
            Err(errors)
        }
    }
}

crate::message_error! {
    /// Why an entity template does not parse.
    TemplateError
}

crate::message_error! {
    /// The placeholder path of a template that does not resolve against a payload.
    Unresolved
}

crate::message_error! {
    /// Why a duration (`30s`, `5m`, `1h30m`, `2d`) is refused.
    DurationError
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name: pr-review
description: Reviews pull requests.
feature_flag: pr_review
triggers:
  - webhook:
      sources: [github, forgejo]
      event: pull_request
      actions: [opened, synchronize]
      branches: [main, "release/**"]
      filter:
        pull_request.draft: false
        pull_request.base.ref: [main, { prefix: "release/" }]
      cooldown: 5m
      entity: "{repository.full_name}#{pull_request.number}"
config: { max_files: 50 }
"#;

    fn errors(text: &str) -> Vec<ManifestError> {
        parse_manifest("functions/modules/x/module.yaml", text).unwrap_err()
    }

    fn one(text: &str) -> ManifestError {
        let e = errors(text);
        assert_eq!(e.len(), 1, "{e:?}");
        e.into_iter().next().unwrap()
    }

    #[test]
    fn report_check_is_the_one_report_kind() {
        let base = "name: x\ndescription: d\ntriggers:\n  - webhook: { event: push }\n";
        assert_eq!(parse_manifest("x.yaml", base).unwrap().report, None);
        let m = parse_manifest("x.yaml", &format!("{base}report: check\n")).unwrap();
        assert_eq!(m.report, Some(Report::Check));
        let e = one(&format!("{base}report: status\n"));
        assert!(e.to_string().contains("the one kind is `check`"), "{e}");
    }

    #[test]
    fn a_good_manifest_parses() {
        let m = parse_manifest("pr-review/module.yaml", GOOD).unwrap();
        assert_eq!(m.function, "pr-review");
        assert_eq!(m.flag, "pr_review");
        assert!(m.enabled && !m.allow_bots);
        assert_eq!(m.config["max_files"], 50);
        let Trigger::Webhook(w) = &m.triggers[0] else {
            panic!("a webhook trigger")
        };
        assert_eq!(w.cooldown, Some(Duration::from_secs(300)));
        assert_eq!(w.filter.conditions().len(), 2);
        assert!(w.branches.is_some());
    }

    // Every validation error kind names the file, the line and the key.
    #[test]
    fn every_error_kind_names_file_line_and_key() {
        let cases: &[(&str, &str, &str, usize)] = &[
            // (replace, with, key, line)
            ("actions:", "actoins:", "triggers[0].webhook.actoins", 9),
            (
                "description: Reviews pull requests.",
                "description: [1, 2]",
                "description",
                3,
            ),
            (
                "cooldown: 5m",
                "cooldown: 5 minutes",
                "triggers[0].webhook.cooldown",
                14,
            ),
            (
                "branches: [main, \"release/**\"]",
                "branches: [\"a[b\"]",
                "triggers[0].webhook.branches",
                10,
            ),
            (
                "pull_request.draft: false",
                "pull_request.draft: [{numeric: [\">\", \"x\"]}]",
                "triggers[0].webhook.filter.pull_request.draft",
                12,
            ),
            (
                "pull_request.draft: false",
                "$or: [{action: opened}]",
                "triggers[0].webhook.filter.$or",
                12,
            ),
            (
                "{pull_request.number}",
                "{pull_request.number",
                "triggers[0].webhook.entity",
                15,
            ),
            ("name: pr-review", "name: PR Review", "name", 2),
            (
                "branches: [main, \"release/**\"]",
                "branches: [main]\n      branches-ignore: [dev]",
                "triggers[0].webhook.branches-ignore",
                11,
            ),
        ];
        for (from, to, key, line) in cases {
            let text = GOOD.replace(from, to);
            let e = one(&text);
            assert_eq!(e.key, *key, "{to}: {e}");
            assert_eq!(e.line, Some(*line), "{to}: {e}");
            let shown = e.to_string();
            assert!(
                shown.starts_with(&format!("functions/modules/x/module.yaml:{line}: {key}: ")),
                "{shown}"
            );
        }
        let top = format!("{GOOD}retries: 3\n");
        let e = one(&top);
        assert_eq!(e.key, "retries");
    }

    #[test]
    fn schedule_triggers_parse_and_bad_ones_name_their_key() {
        let text = "name: digest\ndescription: d\ntriggers:\n  - schedule:\n      cron: \"0 9 * * MON-FRI\"\n      timezone: Europe/Berlin\n      config: { period: week }\n  - schedule: { cron: \"rate(1 hour)\" }\n";
        let m = parse_manifest("m.yaml", text).unwrap();
        assert_eq!(m.triggers.len(), 2);
        let r = Registry::new(vec![m]);
        assert_eq!(r.schedules().count(), 2);
        assert_eq!(r.candidates(SCHEDULE_EVENT).count(), 1);
        let bad_cron =
            parse_manifest("m.yaml", &text.replace("0 9 * * MON-FRI", "0 25 * * *")).unwrap_err();
        assert_eq!(
            (bad_cron[0].key.as_str(), bad_cron[0].line),
            ("triggers[0].schedule.cron", Some(5))
        );
        let bad_zone = parse_manifest("m.yaml", &text.replace("Europe/Berlin", "Europe/Atlantis"))
            .unwrap_err();
        assert_eq!(
            (bad_zone[0].key.as_str(), bad_zone[0].line),
            ("triggers[0].schedule.timezone", Some(6))
        );
        let both = parse_manifest(
            "m.yaml",
            &text.replace(
                "  - schedule: { cron",
                "  - webhook: { event: push }\n    schedule: { cron",
            ),
        )
        .unwrap_err();
        assert_eq!(both[0].key, "triggers[1]");
    }

    #[test]
    fn every_error_in_a_file_is_reported_not_just_the_first() {
        let text = GOOD
            .replace("cooldown: 5m", "cooldown: soon")
            .replace("branches: [main, \"release/**\"]", "paths: [\"[\"]")
            .replace("name: pr-review", "name: Bad_Name");
        let e = errors(&text);
        let keys: Vec<&str> = e.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "name",
                "triggers[0].webhook.paths",
                "triggers[0].webhook.cooldown"
            ],
            "{e:?}"
        );
    }

    #[test]
    fn entity_templates_that_cannot_resolve_are_rejected_at_publish_time() {
        let e = one(&GOOD.replace("{pull_request.number}", "{issue.number}"));
        assert_eq!(e.key, "triggers[0].webhook.entity");
        assert!(e.message.contains("pull_request"), "{e}");
        // Unknown event types cannot be checked: accepted.
        let text = GOOD
            .replace("event: pull_request", "event: deployment")
            .replace("{pull_request.number}", "{deployment.id}");
        assert!(parse_manifest("m.yaml", &text).is_ok());
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        for bad in ["", "5", "m", "5x", "0s", "1.5h", "-5m"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn templates_render_or_name_the_missing_path() {
        let t = Template::parse("{repository.full_name}#{pull_request.number}").unwrap();
        let p =
            serde_json::json!({"repository": {"full_name": "a/b"}, "pull_request": {"number": 3}});
        assert_eq!(t.render(&p).unwrap(), "a/b#3");
        let missing = serde_json::json!({"repository": {"full_name": "a/b"}});
        assert_eq!(t.render(&missing).unwrap_err().0, "pull_request.number");
        assert!(Template::parse("a}b").is_err());
        assert!(Template::parse("{}").is_err());
    }

    #[test]
    fn duplicate_names_are_reported() {
        let errs = Registry::from_manifests([("a.yaml", GOOD), ("b.yaml", GOOD)]).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].file, "b.yaml");
        assert_eq!(errs[0].line, Some(2));
    }

    #[test]
    fn the_index_finds_candidates_by_event_type() {
        let other = GOOD
            .replace("name: pr-review", "name: pusher")
            .replace("event: pull_request", "event: [push, pull_request]")
            .replace(
                "entity: \"{repository.full_name}#{pull_request.number}\"",
                "",
            );
        let r = Registry::from_manifests([("a.yaml", GOOD), ("b.yaml", other.as_str())]).unwrap();
        let names = |t: &str| r.candidates(t).map(|m| m.name.clone()).collect::<Vec<_>>();
        assert_eq!(names("pull_request"), ["pr-review", "pusher"]);
        assert_eq!(names("push"), ["pusher"]);
        assert!(names("issues").is_empty());
    }

    #[test]
    fn builtin_manifests_are_valid() {
        let r = Registry::builtin().unwrap();
        assert!(r.get("notify").is_some());
    }

    #[test]
    fn functions_are_names_or_lambda_arns() {
        for ok in [
            "notify",
            "pr_review-2",
            "arn:aws:lambda:eu-west-1:123456789012:function:triage",
            "arn:aws-cn:lambda:cn-north-1:123456789012:function:triage:live",
        ] {
            assert!(valid_function(ok), "{ok}");
        }
        for bad in [
            "",
            "has space",
            "arn:aws:s3:::bucket",
            "arn:aws:lambda:eu-west-1:12345:function:x",
        ] {
            assert!(!valid_function(bad), "{bad}");
        }
    }
}
