//! Module manifests (`functions/modules/<name>/module.yaml`): strict parsing and validation
//! into [`Module`]s, and the [`Registry`] the router matches against. Unknown keys, bad
//! durations and bad templates are errors naming the file, the line and the key.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// The manifest schema version this build understands.
pub const SCHEMA_VERSION: u32 = 1;

/// A manifest that failed to parse or validate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ManifestError {
    /// The manifest's path.
    pub file: String,
    /// What is wrong, with the key and, where known, the line.
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
    pub function: String,
    /// When it runs.
    pub triggers: Vec<Trigger>,
    /// Handed to the module as is.
    pub config: Value,
    /// The manifest file it came from.
    pub file: String,
}

/// One way a module is started.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// A matching webhook delivery.
    Webhook(WebhookTrigger),
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
    /// Exact-value conditions on dotted payload paths; all must hold.
    pub filter: Vec<FieldFilter>,
    /// At most one dispatch per entity within this window.
    pub cooldown: Option<Duration>,
    /// The entity key template; the event's default entity when absent.
    pub entity: Option<Template>,
}

/// One `filter:` entry: the value at `path` must equal one of `values` (for an array at
/// `path`, one of its elements must).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldFilter {
    /// Dotted path into the payload.
    pub path: String,
    /// Accepted values.
    pub values: Vec<Value>,
}

impl FieldFilter {
    /// Whether the payload satisfies this condition.
    pub fn matches(&self, payload: &Value) -> bool {
        let Some(found) = crate::event::lookup(payload, &self.path) else {
            return false;
        };
        let one = |v: &Value| self.values.iter().any(|want| values_equal(want, v));
        match found {
            Value::Array(items) => items.iter().any(one),
            v => one(v),
        }
    }
}

fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
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
    pub fn parse(text: &str) -> Result<Self, String> {
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
    pub fn render(&self, payload: &Value) -> Result<String, String> {
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
}

/// Parses `30s`, `5m`, `1h30m`, `2d` (units s, m, h, d; at least one part; not zero).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    #[serde(default)]
    schema: Option<u32>,
    name: String,
    description: String,
    #[serde(default)]
    function: Option<String>,
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
    filter: Option<std::collections::BTreeMap<String, OneOrMany<ExactValue>>>,
    #[serde(default)]
    cooldown: Option<DurationText>,
    #[serde(default)]
    entity: Option<TemplateText>,
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

struct DurationText(Duration);
impl<'de> Deserialize<'de> for DurationText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s)
            .map(Self)
            .map_err(|e| serde::de::Error::custom(format!("cooldown: {e}")))
    }
}

struct TemplateText(Template);
impl<'de> Deserialize<'de> for TemplateText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Template::parse(&s)
            .map(Self)
            .map_err(|e| serde::de::Error::custom(format!("invalid entity template `{s}`: {e}")))
    }
}

struct ExactValue(Value);
impl<'de> Deserialize<'de> for ExactValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        match v {
            Value::Object(_) | Value::Array(_) => Err(serde::de::Error::custom(
                "filter values must be strings, numbers, booleans or null",
            )),
            v => Ok(Self(v)),
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

/// Parses and validates one manifest; `file` names it in errors.
pub fn parse_manifest(file: &str, text: &str) -> Result<Module, ManifestError> {
    let err = |message: String| ManifestError {
        file: file.to_owned(),
        message,
    };
    let raw: RawManifest = serde_yaml::from_str(text).map_err(|e| err(e.to_string()))?;
    if let Some(v) = raw.schema {
        if v != SCHEMA_VERSION {
            return Err(err(format!(
                "schema: version {v} is not supported (this build reads {SCHEMA_VERSION})"
            )));
        }
    }
    if !valid_name(&raw.name) {
        return Err(err(format!(
            "name: `{}` must be 1-64 lower-case letters, digits or `-`",
            raw.name
        )));
    }
    if raw.triggers.is_empty() {
        return Err(err("triggers: at least one trigger is required".into()));
    }
    let mut triggers = Vec::new();
    for (i, t) in raw.triggers.into_iter().enumerate() {
        match t {
            RawTrigger { webhook: None } => {
                return Err(err(format!(
                    "triggers[{i}]: a trigger needs one kind, e.g. `webhook:`"
                )));
            }
            RawTrigger { webhook: Some(w) } => {
                let events = w.event.into_vec();
                if events.is_empty() || events.iter().any(|e| e.trim().is_empty()) {
                    return Err(err(format!(
                        "triggers[{i}].webhook.event: must name at least one event"
                    )));
                }
                if matches!(&w.actions, Some(a) if a.is_empty()) {
                    return Err(err(format!(
                        "triggers[{i}].webhook.actions: an empty list matches nothing; leave the key out for every action"
                    )));
                }
                if matches!(&w.sources, Some(s) if s.is_empty()) {
                    return Err(err(format!(
                        "triggers[{i}].webhook.sources: an empty list matches nothing; leave the key out for every source"
                    )));
                }
                let mut filter = Vec::new();
                for (path, values) in w.filter.unwrap_or_default() {
                    if path.split('.').any(str::is_empty) {
                        return Err(err(format!(
                            "triggers[{i}].webhook.filter: bad path `{path}`"
                        )));
                    }
                    let values: Vec<Value> = values.into_vec().into_iter().map(|v| v.0).collect();
                    if values.is_empty() {
                        return Err(err(format!(
                            "triggers[{i}].webhook.filter.{path}: an empty list matches nothing"
                        )));
                    }
                    filter.push(FieldFilter { path, values });
                }
                triggers.push(Trigger::Webhook(WebhookTrigger {
                    sources: w.sources,
                    events,
                    actions: w.actions,
                    filter,
                    cooldown: w.cooldown.map(|d| d.0),
                    entity: w.entity.map(|t| t.0),
                }));
            }
        }
    }
    let function = raw.function.unwrap_or_else(|| raw.name.clone());
    if function.trim().is_empty() {
        return Err(err("function: must not be empty".into()));
    }
    Ok(Module {
        name: raw.name,
        description: raw.description,
        function,
        triggers,
        config: raw.config.unwrap_or(Value::Null),
        file: file.to_owned(),
    })
}

/// The set of modules the router matches against.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Registry {
    modules: Vec<Module>,
}

// `(path, contents)` of every `functions/modules/*/module.yaml`, embedded at build time.
include!(concat!(env!("OUT_DIR"), "/builtin_manifests.rs"));

impl Registry {
    /// Builds a registry from `(file, text)` manifests; every error is reported.
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
                    message: format!("name: `{}` is declared by another manifest too", m.name),
                }),
                Ok(m) => modules.push(m),
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(Self { modules })
        } else {
            Err(errors)
        }
    }

    /// The manifests compiled into this build (`functions/modules/*/module.yaml`).
    pub fn builtin() -> Result<Self, Vec<ManifestError>> {
        Self::from_manifests(BUILTIN_MANIFESTS.iter().copied())
    }

    /// The modules, in manifest order.
    pub fn modules(&self) -> &[Module] {
        &self.modules
    }

    /// The module named `name`.
    pub fn get(&self, name: &str) -> Option<&Module> {
        self.modules.iter().find(|m| m.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name: pr-review
description: Reviews pull requests.
triggers:
  - webhook:
      sources: [github, forgejo]
      event: pull_request
      actions: [opened, synchronize]
      filter:
        pull_request.draft: false
        pull_request.base.ref: [main, develop]
      cooldown: 5m
      entity: "{repository.full_name}#{pull_request.number}"
config: { max_files: 50 }
"#;

    #[test]
    fn a_good_manifest_parses() {
        let m = parse_manifest("pr-review/module.yaml", GOOD).unwrap();
        assert_eq!(m.function, "pr-review");
        assert_eq!(m.config["max_files"], 50);
        let Trigger::Webhook(w) = &m.triggers[0];
        assert_eq!(w.cooldown, Some(Duration::from_secs(300)));
        assert_eq!(w.filter.len(), 2);
        assert_eq!(w.events, vec!["pull_request"]);
    }

    #[test]
    fn unknown_keys_are_errors_naming_file_line_and_key() {
        let bad = GOOD.replace("actions:", "actoins:");
        let e = parse_manifest("functions/modules/x/module.yaml", &bad).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("functions/modules/x/module.yaml: "),
            "{msg}"
        );
        assert!(msg.contains("actoins"), "{msg}");
        assert!(msg.contains("line 8"), "{msg}");
        let top = format!("{GOOD}\nretries: 3\n");
        let msg = parse_manifest("m.yaml", &top).unwrap_err().to_string();
        assert!(msg.contains("retries"), "{msg}");
    }

    #[test]
    fn bad_durations_and_templates_are_errors() {
        let msg = parse_manifest(
            "m.yaml",
            &GOOD.replace("cooldown: 5m", "cooldown: 5 minutes"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            msg.contains("cooldown") && msg.contains("5 minutes"),
            "{msg}"
        );
        let msg = parse_manifest(
            "m.yaml",
            &GOOD.replace("{pull_request.number}", "{pull_request.number"),
        )
        .unwrap_err()
        .to_string();
        assert!(msg.contains("entity"), "{msg}");
        let msg = parse_manifest(
            "m.yaml",
            &GOOD.replace("name: pr-review", "name: PR Review"),
        )
        .unwrap_err()
        .to_string();
        assert!(msg.contains("name"), "{msg}");
        let msg = parse_manifest(
            "m.yaml",
            &GOOD.replace(
                "pull_request.draft: false",
                "pull_request.draft: {prefix: x}",
            ),
        )
        .unwrap_err()
        .to_string();
        assert!(msg.contains("filter"), "{msg}");
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
        assert_eq!(t.render(&missing).unwrap_err(), "pull_request.number");
        assert!(Template::parse("a}b").is_err());
        assert!(Template::parse("{}").is_err());
    }

    #[test]
    fn duplicate_names_are_reported() {
        let errs = Registry::from_manifests([("a.yaml", GOOD), ("b.yaml", GOOD)]).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].file, "b.yaml");
    }

    #[test]
    fn builtin_manifests_are_valid() {
        let r = Registry::builtin().unwrap();
        assert!(r.get("notify").is_some());
    }
}
