//! Matching: which modules an event starts, and for every other module that listens for its
//! type, the first clause that failed (the explanation recorded on the event). Pure: no
//! store, no clock; settings are passed in and cooldowns are decided later by the store.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::event::{Event, EventType, GitRef};
use crate::manifest::{GlobFilter, Module, Registry, Trigger, WebhookTrigger};
use crate::settings::ScopedSettings;
use crate::source::SourceKind;

/// A module the event starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// Module name.
    pub module: String,
    /// The manifest's function (before per-deployment overrides).
    pub function: String,
    /// Index of the matching trigger in the manifest.
    pub trigger: usize,
    /// Its kind: `webhook` or `schedule`.
    pub kind: &'static str,
    /// Entity key for cooldowns and the job record.
    pub entity: String,
    /// The trigger's cooldown.
    pub cooldown: Option<Duration>,
    /// The module's config after per-scope overrides.
    pub config: serde_json::Value,
    /// Set when workers pull the module's jobs instead of a function being invoked.
    pub pull: Option<crate::manifest::PullTarget>,
    /// Whether its job status shows on the forge (`report: check`).
    pub report: bool,
}

/// Why a module that listens for the event's type did not run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skip {
    /// Module name.
    pub module: String,
    /// Stable reason code: `action`, `ref`, `paths`, `filter`, `entity_unresolved`, `bot`,
    /// `sender`, `disabled`, `cooldown`.
    pub reason: String,
    /// The clause that failed, for people, e.g. `actions: "closed" not in [opened]`.
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

/// How one trigger fared against an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TriggerOutcome {
    /// Source or event type not listened for; the clause says which.
    NotListening(String),
    /// Listening, but a clause failed: (reason code, clause).
    Failed(&'static str, String),
    /// Matched, with the entity key.
    Matched(String),
}

fn list(items: &[String]) -> String {
    format!("[{}]", items.join(", "))
}

fn check_globs(name: &str, f: &GlobFilter, value: &str) -> Result<(), String> {
    let hit = f.globs.includes(value);
    match (f.ignore, hit) {
        (false, true) | (true, false) => Ok(()),
        (false, false) => Err(format!("{name}: {value:?} not in {}", f.globs.describe())),
        (true, true) => Err(format!(
            "{name}-ignore: {value:?} matches {}",
            f.globs.describe()
        )),
    }
}

fn check_refs(t: &WebhookTrigger, event: &Event) -> Result<(), String> {
    if t.branches.is_none() && t.tags.is_none() {
        return Ok(());
    }
    match &event.git_ref {
        None => Err("branches/tags: the event has no branch or tag".into()),
        // As in GitHub Actions: defining only tag filters means branch events do not run,
        // and the other way round.
        Some(GitRef::Branch(b)) => match &t.branches {
            Some(f) => check_globs("branches", f, b),
            None => Err(format!(
                "tags: {b:?} is a branch and the trigger filters tags only"
            )),
        },
        Some(GitRef::Tag(tag)) => match &t.tags {
            Some(f) => check_globs("tags", f, tag),
            None => Err(format!(
                "branches: {tag:?} is a tag and the trigger filters branches only"
            )),
        },
    }
}

fn check_paths(t: &WebhookTrigger, event: &Event) -> Result<(), String> {
    // No list (pull requests) or a truncated one: the filter matches.
    let (Some(f), Some(paths)) = (&t.paths, &event.changed_paths) else {
        return Ok(());
    };
    let included = paths.iter().filter(|p| f.globs.includes(p)).count();
    if f.ignore {
        if !paths.is_empty() && included < paths.len() {
            Ok(())
        } else {
            Err(format!(
                "paths-ignore: all {} changed paths match {}",
                paths.len(),
                f.globs.describe()
            ))
        }
    } else if included > 0 {
        Ok(())
    } else {
        Err(format!(
            "paths: none of {} changed paths is in {}",
            paths.len(),
            f.globs.describe()
        ))
    }
}

/// Checks one webhook trigger against an event, clause by clause, in the order: source,
/// event, actions, branches/tags, paths, filter, entity.
pub fn check_trigger(t: &WebhookTrigger, event: &Event) -> TriggerOutcome {
    // Internal events (`POST /events`) reach only triggers that name their source
    // (`internal.<name>`): a trigger that lists no sources listens to webhooks alone.
    if event.kind == SourceKind::Internal && t.sources.is_none() {
        return TriggerOutcome::NotListening(format!(
            "sources: internal events match only triggers that list their source ({:?})",
            event.source
        ));
    }
    if let Some(sources) = &t.sources {
        if !sources.iter().any(|s| s == &event.source) {
            return TriggerOutcome::NotListening(format!(
                "sources: {:?} not in {}",
                event.source,
                list(sources)
            ));
        }
    }
    if !t.events.iter().any(|e| e == event.event_type.as_str()) {
        return TriggerOutcome::NotListening(format!(
            "event: {:?} not in {}",
            event.event_type.as_str(),
            list(&t.events)
        ));
    }
    if let Some(actions) = &t.actions {
        match &event.action {
            Some(a) if actions.iter().any(|x| x == a) => {}
            Some(a) => {
                return TriggerOutcome::Failed(
                    "action",
                    format!("actions: {a:?} not in {}", list(actions)),
                );
            }
            None => {
                return TriggerOutcome::Failed(
                    "action",
                    format!("actions: the event has none, want {}", list(actions)),
                );
            }
        }
    }
    if let Err(clause) = check_refs(t, event) {
        return TriggerOutcome::Failed("ref", clause);
    }
    if let Err(clause) = check_paths(t, event) {
        return TriggerOutcome::Failed("paths", clause);
    }
    // The paths picked out at normalization, when they include this trigger's; else the
    // whole payload.
    let payload = event.payload.view_for(
        t.filter
            .paths()
            .into_iter()
            .chain(t.entity.iter().flat_map(|e| e.paths())),
    );
    if let Err(clause) = t.filter.check(payload) {
        return TriggerOutcome::Failed("filter", clause.0);
    }
    match &t.entity {
        None => TriggerOutcome::Matched(event.entity.clone()),
        Some(tpl) => match tpl.render(payload) {
            Ok(entity) => TriggerOutcome::Matched(entity),
            Err(path) => TriggerOutcome::Failed(
                "entity_unresolved",
                format!("entity: {{{path}}} does not resolve"),
            ),
        },
    }
}

/// The result of matching one module.
#[derive(Debug, Clone, PartialEq)]
pub enum ModuleOutcome {
    /// It runs.
    Matched(Planned),
    /// It listens but does not run.
    Skipped(Skip),
    /// No trigger listens for the event's source and type; the first trigger's clause.
    NotListening(String),
}

/// Matches one module: its first matching trigger wins; then the loop guard, ignored
/// senders and settings. When no trigger matches, the first failing clause of the first
/// trigger that listens for the source and type is the reason.
pub fn match_module(module: &Module, event: &Event, settings: &ScopedSettings) -> ModuleOutcome {
    // Schedule and invoke triggers match by the event's kind, which only the scheduler and
    // the API's invoke route set: a webhook or an emitted event that calls itself `invoke`
    // or `schedule` reaches webhook triggers only (and manifests refuse webhook triggers
    // for those names).
    match (event.kind, &event.event_type) {
        (SourceKind::Schedule, EventType::Schedule) => return match_tick(module, event, settings),
        (SourceKind::Api, EventType::Invoke) => return match_invoke(module, event, settings),
        (SourceKind::Schedule | SourceKind::Api, _) => {
            return ModuleOutcome::NotListening(format!(
                "{}: only {} events come from this source",
                event.kind,
                if event.kind == SourceKind::Api {
                    "invoke"
                } else {
                    "schedule"
                }
            ));
        }
        _ => {}
    }
    let mut first_failure: Option<(&'static str, String)> = None;
    let mut not_listening = None;
    let mut matched = None;
    for (i, trigger) in module.triggers.iter().enumerate() {
        let Trigger::Webhook(w) = trigger else {
            continue;
        };
        match check_trigger(w, event) {
            TriggerOutcome::NotListening(clause) => {
                not_listening.get_or_insert(clause);
            }
            TriggerOutcome::Failed(reason, clause) => {
                first_failure.get_or_insert((reason, clause));
            }
            TriggerOutcome::Matched(entity) => {
                matched = Some((i, w, entity));
                break;
            }
        }
    }
    let skip = |reason: &str, detail: String| {
        ModuleOutcome::Skipped(Skip {
            module: module.name.clone(),
            reason: reason.to_owned(),
            detail: Some(detail),
        })
    };
    let Some((i, w, entity)) = matched else {
        return match first_failure {
            Some((reason, clause)) => skip(reason, clause),
            None => ModuleOutcome::NotListening(
                not_listening.unwrap_or_else(|| "no webhook trigger".into()),
            ),
        };
    };
    if let Some(sender) = &event.sender {
        if sender.bot && !module.allow_bots {
            return skip(
                "bot",
                format!(
                    "sender {:?} is a bot (set allow_bots: true to run for bots)",
                    sender.login
                ),
            );
        }
        if module.ignore_senders.contains(&sender.login.to_lowercase()) {
            return skip(
                "sender",
                format!("sender {:?} is in ignore_senders", sender.login),
            );
        }
    }
    if let Some(s) = disabled(module, settings) {
        return ModuleOutcome::Skipped(s);
    }
    ModuleOutcome::Matched(Planned {
        module: module.name.clone(),
        function: module.function.clone(),
        pull: module.pull,
        report: module.report.is_some(),
        trigger: i,
        kind: "webhook",
        entity,
        cooldown: w.cooldown,
        config: settings.config(module),
    })
}

fn disabled(module: &Module, settings: &ScopedSettings) -> Option<Skip> {
    let on = settings.enablement(module);
    (!on.enabled).then(|| Skip {
        module: module.name.clone(),
        reason: "disabled".into(),
        detail: Some(match on.scope {
            Some(scope) => format!("flag {} is off at {scope}", module.flag),
            None => format!(
                "flag {} is off by default (enabled: false) and no scope turns it on",
                module.flag
            ),
        }),
    })
}

/// An API start names its module in its payload (`{module, payload, config}`); the entity
/// is the event's.
fn match_invoke(module: &Module, event: &Event, settings: &ScopedSettings) -> ModuleOutcome {
    if event
        .payload
        .get("module")
        .and_then(serde_json::Value::as_str)
        != Some(module.name.as_str())
    {
        return ModuleOutcome::NotListening("invoke: the start is for another module".into());
    }
    let Some((index, t)) = module
        .triggers
        .iter()
        .enumerate()
        .find_map(|(i, t)| match t {
            Trigger::Invoke(t) => Some((i, t)),
            _ => None,
        })
    else {
        return ModuleOutcome::NotListening("invoke: the module has no invoke trigger".into());
    };
    if let Some(skip) = disabled(module, settings) {
        return ModuleOutcome::Skipped(skip);
    }
    let mut base = module.config.clone();
    if let Some(over) = &t.config {
        crate::settings::deep_merge(&mut base, over);
    }
    if let Some(over) = event.payload.get("config").filter(|c| c.is_object()) {
        crate::settings::deep_merge(&mut base, over);
    }
    ModuleOutcome::Matched(Planned {
        module: module.name.clone(),
        function: module.function.clone(),
        pull: module.pull,
        report: module.report.is_some(),
        trigger: index,
        kind: "invoke",
        entity: event.entity.clone(),
        cooldown: None,
        config: settings.config_over(module, base),
    })
}

/// A schedule tick names its module and trigger in its payload (`module`, `trigger`).
fn match_tick(module: &Module, event: &Event, settings: &ScopedSettings) -> ModuleOutcome {
    if event
        .payload
        .get("module")
        .and_then(serde_json::Value::as_str)
        != Some(module.name.as_str())
    {
        return ModuleOutcome::NotListening("schedule: the tick is for another module".into());
    }
    let index = event
        .payload
        .get("trigger")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(u64::MAX) as usize;
    let Some(Trigger::Schedule(t)) = module.triggers.get(index) else {
        return ModuleOutcome::NotListening(format!("schedule: trigger {index} is not a schedule"));
    };
    if let Some(skip) = disabled(module, settings) {
        return ModuleOutcome::Skipped(skip);
    }
    let entity = match &t.entity {
        None => format!("schedule:{}", module.name),
        Some(tpl) => match tpl.render(&event.payload) {
            Ok(e) => e,
            Err(path) => {
                return ModuleOutcome::Skipped(Skip {
                    module: module.name.clone(),
                    reason: "entity_unresolved".into(),
                    detail: Some(format!("entity: {{{path}}} does not resolve")),
                });
            }
        },
    };
    let mut base = module.config.clone();
    if let Some(over) = &t.config {
        crate::settings::deep_merge(&mut base, over);
    }
    ModuleOutcome::Matched(Planned {
        module: module.name.clone(),
        function: module.function.clone(),
        pull: module.pull,
        report: module.report.is_some(),
        trigger: index,
        kind: "schedule",
        entity,
        cooldown: None,
        config: settings.config_over(module, base),
    })
}

/// Matches `event` against the modules of `registry` that listen for its type (an index
/// lookup). Modules that do not listen for the type are neither matched nor skipped.
pub fn plan(registry: &Registry, event: &Event, settings: &ScopedSettings) -> Plan {
    let mut out = Plan::default();
    for module in registry.candidates(event.event_type.as_str()) {
        match match_module(module, event, settings) {
            ModuleOutcome::Matched(p) => out.matched.push(p),
            ModuleOutcome::Skipped(s) => out.skipped.push(s),
            ModuleOutcome::NotListening(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventType, Sender};
    use crate::settings::Settings;
    use crate::source::SourceKind;

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
            body_digest: String::new(),
            git_ref: Some(GitRef::Branch("main".into())),
            changed_paths: None,
            changed_paths_truncated: false,
            changed_paths_unknown: None,
            sender: Some(Sender {
                login: "alice".into(),
                bot: false,
            }),
            payload: serde_json::json!({
                "pull_request": {"number": 1, "draft": draft, "labels": [{"name": "bug"}, {"name": "ui"}]},
                "repository": {"full_name": "a/b"}
            })
            .into(),
        }
    }

    fn push(branch: Option<&str>, tag: Option<&str>, paths: Option<&[&str]>) -> Event {
        let mut e = event("", false);
        e.event_type = EventType::Push;
        e.action = None;
        e.git_ref = branch
            .map(|b| GitRef::Branch(b.into()))
            .or(tag.map(|t| GitRef::Tag(t.into())));
        e.changed_paths = paths.map(|p| p.iter().map(|s| (*s).to_owned()).collect());
        e
    }

    /// A sample delivery from `events/`, normalized as the router does with `paths`.
    fn sample(
        kind: SourceKind,
        header: &'static str,
        value: &str,
        file: &str,
        paths: &std::sync::Arc<crate::payload::PayloadPaths>,
    ) -> Event {
        let source = crate::source::Source::new(kind.as_str(), kind, &["s"]);
        let mut headers = http::HeaderMap::new();
        headers.insert(header, value.parse().unwrap());
        let now = time::OffsetDateTime::now_utc();
        crate::event::parse_unverified(&source, &headers, file.as_bytes(), now, paths).unwrap()
    }

    fn registry(manifests: &[&str]) -> Registry {
        let named: Vec<(String, &str)> = manifests
            .iter()
            .enumerate()
            .map(|(i, m)| (format!("m{i}.yaml"), *m))
            .collect();
        Registry::from_manifests(named.iter().map(|(f, t)| (f.as_str(), *t))).unwrap()
    }

    const REVIEW: &str = "name: review\ndescription: r\ntriggers:\n  - webhook: { event: pull_request, actions: [opened], filter: { pull_request.draft: false }, cooldown: 5m }\n";
    const LABELS: &str = "name: labels\ndescription: l\ntriggers:\n  - webhook: { event: pull_request, filter: { pull_request.labels.name: [crash, ui] }, entity: \"pr-{pull_request.number}\" }\n";
    const GITLAB_ONLY: &str = "name: gitlab-only\ndescription: g\ntriggers:\n  - webhook: { sources: [gitlab], event: [merge_request, pull_request] }\n";

    fn none() -> ScopedSettings {
        ScopedSettings::default()
    }

    #[test]
    fn opened_pull_request_matches_and_closed_is_skipped_by_action() {
        let r = registry(&[REVIEW, LABELS, GITLAB_ONLY]);
        let p = plan(&r, &event("opened", false), &none());
        let names: Vec<_> = p.matched.iter().map(|m| m.module.as_str()).collect();
        assert_eq!(names, ["review", "labels"]);
        assert_eq!(p.matched[0].cooldown, Some(Duration::from_secs(300)));
        assert_eq!(p.matched[1].entity, "pr-1");

        let p = plan(&r, &event("closed", false), &none());
        assert_eq!(p.matched.len(), 1);
        assert_eq!(
            p.skipped,
            vec![Skip {
                module: "review".into(),
                reason: "action".into(),
                detail: Some("actions: \"closed\" not in [opened]".into())
            }]
        );
    }

    #[test]
    fn a_failing_filter_names_its_clause() {
        let p = plan(&registry(&[REVIEW]), &event("opened", true), &none());
        assert_eq!(p.skipped[0].reason, "filter");
        assert_eq!(
            p.skipped[0].detail.as_deref(),
            Some("filter pull_request.draft: true is not false")
        );
    }

    #[test]
    fn modules_not_listening_are_neither_matched_nor_skipped() {
        let mut e = event("opened", false);
        e.event_type = EventType::Issues;
        let p = plan(&registry(&[REVIEW, LABELS]), &e, &none());
        assert!(p.matched.is_empty() && p.skipped.is_empty());
        let r = registry(&[GITLAB_ONLY]);
        assert_eq!(
            match_module(&r.modules()[0], &event("opened", false), &none()),
            ModuleOutcome::NotListening("sources: \"github\" not in [gitlab]".into())
        );
    }

    #[test]
    fn branch_tag_and_path_filters_follow_github_actions() {
        let m = |extra: &str| {
            registry(&[&format!(
                "name: ci\ndescription: c\ntriggers:\n  - webhook:\n      event: push\n{extra}"
            )])
        };
        let matched = |r: &Registry, e: &Event| plan(r, e, &none()).matched.len() == 1;
        let detail = |r: &Registry, e: &Event| {
            plan(r, e, &none()).skipped[0]
                .detail
                .clone()
                .unwrap_or_default()
        };

        let r = m("      branches: [main, \"release/**\"]\n");
        assert!(matched(&r, &push(Some("main"), None, None)));
        assert!(matched(&r, &push(Some("release/1.2/hotfix"), None, None)));
        assert!(!matched(&r, &push(Some("feature/x"), None, None)));
        assert_eq!(
            detail(&r, &push(Some("feature/x"), None, None)),
            "branches: \"feature/x\" not in [main, release/**]"
        );
        // Only branch filters: a tag push does not run.
        assert!(!matched(&r, &push(None, Some("v1"), None)));

        let r = m("      branches-ignore: [\"dependabot/**\"]\n");
        assert!(matched(&r, &push(Some("main"), None, None)));
        assert!(!matched(&r, &push(Some("dependabot/cargo/x"), None, None)));

        let r = m("      tags: [\"v*\", \"!v*-rc*\"]\n");
        assert!(matched(&r, &push(None, Some("v1.2.0"), None)));
        assert!(!matched(&r, &push(None, Some("v1.2.0-rc1"), None)));
        assert!(!matched(&r, &push(Some("main"), None, None)));

        let r = m("      branches: [main]\n      tags: [\"v*\"]\n");
        assert!(matched(&r, &push(Some("main"), None, None)));
        assert!(matched(&r, &push(None, Some("v2"), None)));

        let r = m("      paths: [\"src/**\", \"!src/**/*.md\"]\n");
        assert!(matched(
            &r,
            &push(Some("main"), None, Some(&["README.md", "src/a/lib.rs"]))
        ));
        assert!(!matched(
            &r,
            &push(Some("main"), None, Some(&["README.md", "src/a/notes.md"]))
        ));
        // No list or a truncated one: the filter matches.
        assert!(matched(&r, &push(Some("main"), None, None)));

        let r = m("      paths-ignore: [\"docs/**\"]\n");
        assert!(!matched(
            &r,
            &push(Some("main"), None, Some(&["docs/a.md", "docs/b/c.md"]))
        ));
        assert!(matched(
            &r,
            &push(Some("main"), None, Some(&["docs/a.md", "src/lib.rs"]))
        ));
        assert_eq!(
            detail(&r, &push(Some("main"), None, Some(&["docs/a.md"]))),
            "paths-ignore: all 1 changed paths match [docs/**]"
        );

        // Branches and paths must both hold.
        let r = m("      branches: [main]\n      paths: [\"src/**\"]\n");
        assert!(matched(&r, &push(Some("main"), None, Some(&["src/x"]))));
        assert!(!matched(&r, &push(Some("dev"), None, Some(&["src/x"]))));
        assert!(!matched(&r, &push(Some("main"), None, Some(&["docs/x"]))));
    }

    #[test]
    fn bots_are_skipped_unless_allowed_and_ignored_senders_too() {
        let r = registry(&[REVIEW]);
        let mut e = event("opened", false);
        e.sender = Some(Sender {
            login: "dependabot[bot]".into(),
            bot: true,
        });
        let p = plan(&r, &e, &none());
        assert_eq!(p.skipped[0].reason, "bot");
        let allowed = registry(&[&REVIEW.replace("triggers:", "allow_bots: true\ntriggers:")]);
        assert_eq!(plan(&allowed, &e, &none()).matched.len(), 1);
        let ignoring =
            registry(&[&REVIEW.replace("triggers:", "ignore_senders: [Alice]\ntriggers:")]);
        assert_eq!(
            plan(&ignoring, &event("opened", false), &none()).skipped[0].reason,
            "sender"
        );
    }

    #[test]
    fn one_manifest_matches_the_same_pull_request_from_github_forgejo_and_gitlab() {
        let manifest = "name: review\ndescription: r\ntriggers:\n  - webhook:\n      event: [pull_request, merge_request]\n      actions: [opened, open]\n      branches: [main]\n      filter:\n        $or:\n          - pull_request.draft: false\n          - object_attributes.draft: false\n";
        let r = registry(&[manifest]);
        for (kind, header, value, file) in [
            (
                SourceKind::Github,
                "x-github-event",
                "pull_request",
                include_str!("../../events/github-pull_request-opened.json"),
            ),
            (
                SourceKind::Forgejo,
                "x-forgejo-event",
                "pull_request",
                include_str!("../../events/forgejo-pull_request-opened.json"),
            ),
            (
                SourceKind::Gitlab,
                "x-gitlab-event",
                "Merge Request Hook",
                include_str!("../../events/gitlab-merge_request-opened.json"),
            ),
        ] {
            let e = sample(kind, header, value, file, r.payload_paths());
            let p = plan(&r, &e, &none());
            assert_eq!(p.matched.len(), 1, "{kind}: {:?}", p.skipped);
        }
    }

    #[test]
    fn matching_on_the_picked_paths_equals_matching_on_the_whole_payload() {
        let r = registry(&[
            "name: labelled\ndescription: d\ntriggers:\n  - webhook:\n      event: pull_request\n      filter:\n        pull_request.labels.name: [{prefix: \"area/\"}, bug]\n        pull_request.additions: [{numeric: [\">\", 10]}]\n      entity: \"{repository.full_name}#{pull_request.number}\"\n",
            "name: drafts\ndescription: d\ntriggers:\n  - webhook:\n      event: [pull_request, merge_request]\n      filter:\n        $or:\n          - pull_request.draft: [true]\n          - object_attributes.work_in_progress: [true]\n",
            "name: authors\ndescription: d\ntriggers:\n  - webhook:\n      event: push\n      filter:\n        commits.author.name: [{anything-but: [nobody]}]\n        head_commit.missing: [{exists: false}]\n      entity: \"{repository.full_name}@{after}\"\n",
            "name: gitlab\ndescription: d\ntriggers:\n  - webhook:\n      event: [merge_request, issues]\n      filter:\n        project.visibility_level: [{numeric: [\">=\", 0]}]\n      entity: \"{project.path_with_namespace}!{object_attributes.iid}\"\n",
            "name: issues\ndescription: d\ntriggers:\n  - webhook:\n      event: [issues, issue_comment]\n      filter:\n        issue.labels.name: [{wildcard: \"*\"}]\n        comment.body: [{exists: true}]\n",
        ]);
        let mut matched = 0;
        for (kind, header, value, file) in [
            (
                SourceKind::Github,
                "x-github-event",
                "pull_request",
                include_str!("../../events/github-pull_request-opened.json"),
            ),
            (
                SourceKind::Github,
                "x-github-event",
                "pull_request",
                include_str!("../../events/github-pull_request-synchronize.json"),
            ),
            (
                SourceKind::Github,
                "x-github-event",
                "push",
                include_str!("../../events/github-push.json"),
            ),
            (
                SourceKind::Github,
                "x-github-event",
                "issues",
                include_str!("../../events/github-issues-opened.json"),
            ),
            (
                SourceKind::Github,
                "x-github-event",
                "issue_comment",
                include_str!("../../events/github-issue_comment-created.json"),
            ),
            (
                SourceKind::Forgejo,
                "x-forgejo-event",
                "pull_request",
                include_str!("../../events/forgejo-pull_request-opened.json"),
            ),
            (
                SourceKind::Forgejo,
                "x-forgejo-event",
                "push",
                include_str!("../../events/forgejo-push.json"),
            ),
            (
                SourceKind::Gitlab,
                "x-gitlab-event",
                "Merge Request Hook",
                include_str!("../../events/gitlab-merge_request-opened.json"),
            ),
            (
                SourceKind::Gitlab,
                "x-gitlab-event",
                "Push Hook",
                include_str!("../../events/gitlab-push.json"),
            ),
            (
                SourceKind::Gitlab,
                "x-gitlab-event",
                "Issue Hook",
                include_str!("../../events/gitlab-issues-opened.json"),
            ),
        ] {
            let picked = sample(kind, header, value, file, r.payload_paths());
            // The view holds only what routing reads...
            let view = picked.payload.view(r.payload_paths());
            assert!(
                view.get("repository").is_none_or(|r| r.get("id").is_none()),
                "{value}"
            );
            // ...and the same event with its whole tree and no view routes the same way.
            let mut whole = picked.clone();
            whole.payload = picked.payload.value().clone().into();
            let (p, w) = (plan(&r, &picked, &none()), plan(&r, &whole, &none()));
            assert_eq!(p, w, "{kind} {value}");
            matched += p.matched.len();
        }
        assert!(matched >= 5, "the manifests match some samples: {matched}");
    }

    #[test]
    fn settings_switch_modules_off_and_override_config() {
        let r = registry(&[&REVIEW.replace("triggers:", "config: { depth: 1 }\ntriggers:")]);
        let mut repo = Settings::default();
        repo.flags.insert("review".into(), false);
        let mut global = Settings::default();
        global.flags.insert("review".into(), true);
        let s = ScopedSettings {
            layers: vec![("repo/a/b".into(), repo), ("global".into(), global.clone())],
        };
        let p = plan(&r, &event("opened", false), &s);
        assert_eq!(p.skipped[0].reason, "disabled");
        assert_eq!(
            p.skipped[0].detail.as_deref(),
            Some("flag review is off at repo/a/b")
        );
        global
            .config
            .insert("review".into(), serde_json::json!({"depth": 3}));
        let s = ScopedSettings {
            layers: vec![("global".into(), global)],
        };
        assert_eq!(
            plan(&r, &event("opened", false), &s).matched[0].config,
            serde_json::json!({"depth": 3})
        );
    }
}
