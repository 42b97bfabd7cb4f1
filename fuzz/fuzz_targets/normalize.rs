//! Event normalization for every webhook kind: an arbitrary body under an arbitrary event
//! header never panics, and a normalized event always serializes (it is stored and sent).
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_core::config::{Source, SourceKind};
use switchyard_core::event::parse_unverified;
use switchyard_fuzz::{fields, headers};

fuzz_target!(|data: &[u8]| {
    let f = fields(data, 2);
    let (event, body) = (f[0], f[1]);
    let now = time::OffsetDateTime::now_utc();
    for (kind, name) in [
        (SourceKind::Github, "x-github-event"),
        (SourceKind::Forgejo, "x-forgejo-event"),
        (SourceKind::Gitea, "x-gitea-event"),
        (SourceKind::Gitlab, "x-gitlab-event"),
        (SourceKind::Standard, "x-event-type"),
        (SourceKind::Hmac, "x-event-type"),
    ] {
        let source = Source::new("fuzz", kind, &["s"]);
        let map = headers(&[
            (name, event),
            ("x-github-delivery", b"d-1"),
            ("webhook-id", b"msg_1"),
        ]);
        if let Ok(normalized) = parse_unverified(&source, &map, body, now, &Default::default()) {
            serde_json::to_vec(&normalized).expect("a normalized event serializes");
        }
    }
});
