//! Explanations: for every module, whether an event starts it and, if not, the first clause
//! that failed. The router records the same reasons on the event item; `switchyard explain`
//! prints them for a payload file without any AWS access (no settings, no cooldowns).

use std::fmt;

use crate::event::Event;
use crate::manifest::Registry;
use crate::routing::{ModuleOutcome, match_module};
use crate::settings::ScopedSettings;

/// One module's verdict on one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// Module name.
    pub module: String,
    /// What happened.
    pub verdict: Verdict,
}

/// Matched, skipped with a reason, or not listening.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Runs, through this trigger, for this entity.
    Matched {
        /// Trigger index in the manifest.
        trigger: usize,
        /// Entity key.
        entity: String,
    },
    /// Listens for the event but does not run.
    Skipped {
        /// Stable reason code.
        reason: String,
        /// The failing clause.
        clause: String,
    },
    /// Has no trigger for the event's source and type.
    NotListening {
        /// The first trigger's failing clause.
        clause: String,
    },
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.verdict {
            Verdict::Matched { trigger, entity } => {
                write!(
                    f,
                    "match   {}: trigger {trigger}, entity {entity}",
                    self.module
                )
            }
            Verdict::Skipped { reason, clause } => {
                write!(f, "skip    {}: {reason}: {clause}", self.module)
            }
            Verdict::NotListening { clause } => write!(f, "ignore  {}: {clause}", self.module),
        }
    }
}

/// Explains `event` against every module of `registry` (or only `only`).
pub fn explain(
    registry: &Registry,
    event: &Event,
    settings: &ScopedSettings,
    only: Option<&str>,
) -> Vec<Explanation> {
    registry
        .modules()
        .iter()
        .filter(|m| only.is_none_or(|o| o == m.name))
        .map(|m| Explanation {
            module: m.name.clone(),
            verdict: match match_module(m, event, settings) {
                ModuleOutcome::Matched(p) => Verdict::Matched {
                    trigger: p.trigger,
                    entity: p.entity,
                },
                ModuleOutcome::Skipped(s) => Verdict::Skipped {
                    reason: s.reason,
                    clause: s.detail.unwrap_or_default(),
                },
                ModuleOutcome::NotListening(clause) => Verdict::NotListening { clause },
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{Source, SourceKind};

    #[test]
    fn a_non_matching_module_names_the_failing_clause() {
        let registry = Registry::from_manifests([
            (
                "review.yaml",
                "name: review\ndescription: r\ntriggers:\n  - webhook: { event: pull_request, actions: [opened, reopened, synchronize] }\n",
            ),
            ("drafts.yaml", "name: drafts\ndescription: d\ntriggers:\n  - webhook: { event: pull_request, filter: { pull_request.draft: [{anything-but: false}] } }\n"),
            ("pushes.yaml", "name: pushes\ndescription: p\ntriggers:\n  - webhook: { event: push }\n"),
        ])
        .unwrap();
        let source = Source::new("github", SourceKind::Github, &["s"]);
        let mut headers = http::HeaderMap::new();
        headers.insert("x-github-event", "pull_request".parse().unwrap());
        let event = crate::event::parse_unverified(
            &source,
            &headers,
            include_bytes!("../../events/github-pull_request-closed.json"),
            time::OffsetDateTime::now_utc(),
            &Default::default(),
        )
        .unwrap();
        let lines: Vec<String> = explain(&registry, &event, &ScopedSettings::default(), None)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            lines,
            [
                "skip    review: action: actions: \"closed\" not in [opened, reopened, synchronize]",
                "skip    drafts: filter: filter pull_request.draft: false is anything-but false",
                "ignore  pushes: event: \"pull_request\" not in [push]",
            ]
        );
        let only = explain(
            &registry,
            &event,
            &ScopedSettings::default(),
            Some("pushes"),
        );
        assert_eq!(only.len(), 1);
    }
}
