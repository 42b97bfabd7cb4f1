//! Matching: which modules an event starts, and why the others that listen for its type
//! were skipped. Pure: no store, no clock; cooldowns are decided later by the store.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::event::Event;
use crate::manifest::{Registry, Trigger, WebhookTrigger};

/// A module the event starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// Module name.
    pub module: String,
    /// The manifest's function (before per-deployment overrides).
    pub function: String,
    /// Index of the matching trigger in the manifest.
    pub trigger: usize,
    /// Entity key for cooldowns and the job record.
    pub entity: String,
    /// The trigger's cooldown.
    pub cooldown: Option<Duration>,
    /// The module's `config`.
    pub config: serde_json::Value,
}

/// Why a module that listens for the event's type did not run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skip {
    /// Module name.
    pub module: String,
    /// Stable reason code: `action`, `filter`, `entity_unresolved`, `cooldown`.
    pub reason: String,
    /// The clause that failed, for people (a filter path, the missing placeholder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The outcome of matching one event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Modules to start, in registry order.
    pub matched: Vec<Planned>,
    /// Modules that listen for the type but did not match.
    pub skipped: Vec<Skip>,
}

enum TriggerOutcome {
    NotListening,
    Failed(&'static str, Option<String>),
    Matched(String),
}

fn check(trigger: &WebhookTrigger, event: &Event) -> TriggerOutcome {
    let listens_source = trigger
        .sources
        .as_ref()
        .is_none_or(|s| s.iter().any(|s| s == &event.source));
    let listens_type = trigger
        .events
        .iter()
        .any(|e| e == event.event_type.as_str());
    if !listens_source || !listens_type {
        return TriggerOutcome::NotListening;
    }
    if let Some(actions) = &trigger.actions {
        let ok = event
            .action
            .as_ref()
            .is_some_and(|a| actions.iter().any(|x| x == a));
        if !ok {
            return TriggerOutcome::Failed("action", event.action.clone());
        }
    }
    if let Some(f) = trigger.filter.iter().find(|f| !f.matches(&event.payload)) {
        return TriggerOutcome::Failed("filter", Some(f.path.clone()));
    }
    match &trigger.entity {
        None => TriggerOutcome::Matched(event.entity.clone()),
        Some(t) => match t.render(&event.payload) {
            Ok(entity) => TriggerOutcome::Matched(entity),
            Err(path) => TriggerOutcome::Failed("entity_unresolved", Some(path)),
        },
    }
}

/// Matches `event` against every module of `registry`. A module runs at most once per
/// event: its first matching trigger wins; when none matches, the first failing clause of
/// the first trigger that listens for the event's source and type is the skip reason.
pub fn plan(registry: &Registry, event: &Event) -> Plan {
    let mut out = Plan::default();
    for module in registry.modules() {
        let mut first_failure = None;
        let mut matched = None;
        for (i, trigger) in module.triggers.iter().enumerate() {
            let Trigger::Webhook(w) = trigger;
            match check(w, event) {
                TriggerOutcome::NotListening => {}
                TriggerOutcome::Failed(reason, detail) => {
                    first_failure.get_or_insert((reason, detail));
                }
                TriggerOutcome::Matched(entity) => {
                    matched = Some((i, w, entity));
                    break;
                }
            }
        }
        if let Some((i, w, entity)) = matched {
            out.matched.push(Planned {
                module: module.name.clone(),
                function: module.function.clone(),
                trigger: i,
                entity,
                cooldown: w.cooldown,
                config: module.config.clone(),
            });
        } else if let Some((reason, detail)) = first_failure {
            out.skipped.push(Skip {
                module: module.name.clone(),
                reason: reason.to_owned(),
                detail,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SourceKind;
    use crate::event::EventType;

    fn event(action: &str, draft: bool) -> Event {
        Event {
            id: "1".into(),
            source: "github".into(),
            kind: SourceKind::Github,
            event_type: EventType::PullRequest,
            action: Some(action.into()),
            entity: "a/b#1".into(),
            repository: Some("a/b".into()),
            received_at: time::OffsetDateTime::UNIX_EPOCH,
            body_sha256: String::new(),
            payload: serde_json::json!({
                "pull_request": {"number": 1, "draft": draft, "labels": [{"name": "bug"}, {"name": "ui"}]},
                "repository": {"full_name": "a/b"}
            }),
        }
    }

    fn registry() -> Registry {
        Registry::from_manifests([
            (
                "review.yaml",
                r#"
name: review
description: r
triggers:
  - webhook: { event: pull_request, actions: [opened], filter: { pull_request.draft: false }, cooldown: 5m }
"#,
            ),
            (
                "labels.yaml",
                r#"
name: labels
description: l
triggers:
  - webhook: { event: pull_request, filter: { pull_request.labels.0.name: [bug, crash] }, entity: "pr-{pull_request.number}" }
"#,
            ),
            (
                "gitlab-only.yaml",
                r#"
name: gitlab-only
description: g
triggers:
  - webhook: { sources: [gitlab], event: [merge_request, pull_request] }
"#,
            ),
        ])
        .unwrap()
    }

    #[test]
    fn opened_pull_request_matches_and_closed_is_skipped_by_action() {
        let p = plan(&registry(), &event("opened", false));
        let names: Vec<_> = p.matched.iter().map(|m| m.module.as_str()).collect();
        assert_eq!(names, ["review", "labels"]);
        assert_eq!(p.matched[0].cooldown, Some(Duration::from_secs(300)));
        assert_eq!(p.matched[1].entity, "pr-1");

        let p = plan(&registry(), &event("closed", false));
        assert_eq!(p.matched.len(), 1);
        assert_eq!(
            p.skipped,
            vec![Skip {
                module: "review".into(),
                reason: "action".into(),
                detail: Some("closed".into())
            }]
        );
    }

    #[test]
    fn a_failing_filter_names_its_path() {
        let p = plan(&registry(), &event("opened", true));
        assert_eq!(p.skipped[0].reason, "filter");
        assert_eq!(p.skipped[0].detail.as_deref(), Some("pull_request.draft"));
    }

    #[test]
    fn modules_not_listening_are_neither_matched_nor_skipped() {
        let mut e = event("opened", false);
        e.event_type = EventType::Issues;
        let p = plan(&registry(), &e);
        assert!(p.matched.is_empty() && p.skipped.is_empty());
    }
}
