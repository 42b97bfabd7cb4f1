//! Sample values for tests, in this crate and (with the `testing` feature) in the adapters.

use std::sync::Arc;

use crate::context::{ModuleContext, TriggerRef};
use crate::event::Event;

/// A sample `pull_request.opened` event of `a/b#1` from the `github` source.
pub fn event() -> Event {
    Event {
        id: "d-1".into(),
        source: "github".into(),
        kind: crate::source::SourceKind::Github,
        event_type: crate::event::EventType::PullRequest,
        action: Some("opened".into()),
        entity: "a/b#1".into(),
        repository: Some("a/b".into()),
        received_at: time::OffsetDateTime::UNIX_EPOCH,
        body_digest: String::new(),
        git_ref: None,
        changed_paths: None,
        changed_paths_truncated: false,
        changed_paths_unknown: None,
        sender: None,
        payload: serde_json::json!({"number": 1}).into(),
    }
}

/// A sample context of job `j-1` of module `m` for `event`.
pub fn context(event: Event) -> ModuleContext {
    ModuleContext {
        job_id: "j-1".into(),
        module: "m".into(),
        function: "m".into(),
        trigger: TriggerRef {
            kind: "webhook".into(),
            index: 0,
        },
        entity: event.entity.clone(),
        config: serde_json::Value::Null,
        event: Arc::new(event),
        payload_ref: None,
        report: false,
    }
}
