//! Module manifest parsing: arbitrary YAML never panics; a manifest that parses joins a
//! registry and is matched against a sample event without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_core::config::{Source, SourceKind};
use switchyard_core::manifest::{Registry, parse_manifest};
use switchyard_core::settings::ScopedSettings;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(module) = parse_manifest("fuzz/module.yaml", text) else {
        return;
    };
    let registry = Registry::new(vec![module]);
    let source = Source::new("github", SourceKind::Github, &["s"]);
    let mut map = http::HeaderMap::new();
    map.insert(
        "x-github-event",
        http::HeaderValue::from_static("pull_request"),
    );
    let body = include_bytes!("../../events/github-pull_request-opened.json");
    let event =
        switchyard_core::event::parse_unverified(&source, &map, body, time::OffsetDateTime::now_utc(), &Default::default())
            .expect("the sample normalizes");
    let _ = switchyard_core::routing::plan(&registry, &event, &ScopedSettings::default());
});
