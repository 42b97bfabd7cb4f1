//! What a module function receives ([`ModuleContext`]) and the event a delivery's contexts
//! share ([`SharedEvent`]), with its JSON written once.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::event::Event;
use crate::store::PayloadRef;

/// Which trigger started a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerRef {
    /// `webhook`.
    pub kind: String,
    /// Index of the trigger in the module's manifest.
    pub index: usize,
}

/// What a module function receives: everything it needs to do its job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModuleContext {
    /// The job to report on.
    pub job_id: String,
    /// Module name.
    pub module: String,
    /// The function invoked.
    pub function: String,
    /// The trigger that matched.
    pub trigger: TriggerRef,
    /// Entity key (cooldown scope).
    pub entity: String,
    /// The module's `config`.
    pub config: serde_json::Value,
    /// The normalized event. Its payload is `null` when it was too large to send inline;
    /// then `payload_ref` says where it is, and the module runtime loads it. Shared: every
    /// module of a delivery gets the same one (`Arc::make_mut` to change it).
    pub event: Arc<Event>,
    /// Where a large payload was stored instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_ref: Option<crate::store::PayloadRef>,
    /// The module shows its job status on the forge (`report: check`): the runtime marks
    /// the job in progress and completed there.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub report: bool,
}

/// A delivery's event shared by its modules' contexts, with its JSON written once (the
/// payload copied from the received text, [`Event::write_json`]): the payload is most of
/// every context's bytes.
#[derive(Debug)]
pub struct SharedEvent {
    pub(crate) event: Arc<Event>,
    json: Option<Vec<u8>>,
}

/// A [`ModuleContext`]'s fields but its event, for splicing the shared event's JSON in (a
/// unit test holds the result equal to `serde_json::to_vec(&context)` as JSON).
#[derive(Serialize)]
struct ContextHead<'a> {
    job_id: &'a str,
    module: &'a str,
    function: &'a str,
    trigger: &'a TriggerRef,
    entity: &'a str,
    config: &'a serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload_ref: Option<&'a PayloadRef>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    report: bool,
}

/// The event's JSON, or `None` when it does not serialize (each context then reports it).
pub(crate) fn event_json(event: &Event) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(event.payload.raw().map_or(1024, str::len) + 1024);
    event.write_json(&mut out).ok().map(|()| out)
}

impl SharedEvent {
    /// Shares `event` and writes its JSON.
    pub fn new(event: Event) -> Self {
        let json = event_json(&event);
        Self {
            event: Arc::new(event),
            json,
        }
    }

    /// Shares `event` with its JSON, already written (for the event item).
    pub(crate) fn with_json(event: Event, json: Vec<u8>) -> Self {
        Self {
            event: Arc::new(event),
            json: Some(json),
        }
    }

    /// The shared event, for a context's `event`.
    pub fn event(&self) -> Arc<Event> {
        self.event.clone()
    }

    /// The JSON of `context`: its event is copied from the shared JSON unless a context
    /// filter replaced it.
    pub fn context_json(&self, context: &ModuleContext) -> serde_json::Result<Vec<u8>> {
        let shared = (self.json.as_deref()).filter(|_| Arc::ptr_eq(&context.event, &self.event));
        let mut out = Vec::with_capacity(shared.map_or(0, <[u8]>::len) + 512);
        let head = ContextHead {
            job_id: &context.job_id,
            module: &context.module,
            function: &context.function,
            trigger: &context.trigger,
            entity: &context.entity,
            config: &context.config,
            payload_ref: context.payload_ref.as_ref(),
            report: context.report,
        };
        crate::event::write_with_member(&mut out, &head, "event", |out| match shared {
            Some(json) => {
                out.extend_from_slice(json);
                Ok(())
            }
            // A context filter replaced the event: written on its own.
            None => context.event.write_json(out),
        })?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn as_json(bytes: &[u8]) -> serde_json::Value {
        serde_json::from_slice(bytes).unwrap()
    }

    #[test]
    fn a_shared_event_writes_what_a_context_serializes_to() {
        let body =
            br#"{ "pull_request": {"title": "Fix \"quotes\" \u2713 \u00e9", "n": [1, 2.5e3, null]},
            "action": "opened" }"#;
        let paths = Arc::new(crate::payload::PayloadPaths::default());
        let received = crate::payload::Payload::parse(body, &paths).unwrap();
        for payload in [
            received,
            serde_json::json!({"pull_request": {"title": "Fix \"quotes\" ✓", "n": [1, 2.5, null]}})
                .into(),
        ] {
            let mut event = crate::testing::event();
            event.payload = payload;
            event.sender = Some(crate::event::Sender {
                login: "octocat".into(),
                bot: false,
            });
            let shared = SharedEvent::new(event.clone());
            let mut context = crate::testing::context(event.clone());
            context.event = shared.event();
            context.config = serde_json::json!({"depth": 2});
            let bytes = shared.context_json(&context).unwrap();
            assert_eq!(as_json(&bytes), serde_json::to_value(&context).unwrap());
            // The received text is copied in as it came.
            if let Some(raw) = event.payload.raw() {
                let text = String::from_utf8(bytes.clone()).unwrap();
                assert!(text.contains(raw), "{text}");
            }
            context.payload_ref = Some(PayloadRef {
                key: "k".into(),
                parts: 1,
                bytes: 10,
                digest: "xxh3:00".into(),
            });
            let bytes = shared.context_json(&context).unwrap();
            assert_eq!(as_json(&bytes), serde_json::to_value(&context).unwrap());
            assert_eq!(
                serde_json::from_slice::<ModuleContext>(&bytes).unwrap(),
                context
            );
        }
    }

    #[test]
    fn a_context_whose_event_was_replaced_is_written_from_its_own_event() {
        let shared = SharedEvent::new(crate::testing::event());
        let mut context = crate::testing::context(crate::testing::event());
        context.event = shared.event();
        // What a context filter does to change the event: the shared JSON no longer applies.
        *Arc::make_mut(&mut context.event).payload = serde_json::json!({"redacted": true});
        let bytes = shared.context_json(&context).unwrap();
        let back: ModuleContext = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back.event.payload, serde_json::json!({"redacted": true}));
        assert_eq!(shared.event().payload, serde_json::json!({"number": 1}));
    }
}
