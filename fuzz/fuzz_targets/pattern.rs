//! The pattern matcher: an arbitrary filter (JSON) compiled and checked against an arbitrary
//! payload, an entity template rendered against it, and a list of branch globs (comma-separated) against a name, never
//! panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_core::glob::GlobList;
use switchyard_core::manifest::Template;
use switchyard_core::pattern::Filter;
use switchyard_fuzz::{fields, text};

fuzz_target!(|data: &[u8]| {
    let f = fields(data, 5);
    let (filter, template, glob, name, payload) = (f[0], f[1], f[2], f[3], f[4]);
    let payload: serde_json::Value = serde_json::from_slice(payload).unwrap_or_default();
    if let Ok(filter) = serde_json::from_slice::<serde_json::Value>(filter) {
        if let Ok(compiled) = Filter::compile(&filter) {
            let _ = compiled.check(&payload);
        }
    }
    if let Ok(template) = Template::parse(&text(template)) {
        let _ = template.render(&payload);
    }
    let patterns: Vec<String> = text(glob).split(',').map(str::to_owned).collect();
    if let Ok(globs) = GlobList::parse(&patterns) {
        let _ = globs.includes(&text(name));
    }
});
