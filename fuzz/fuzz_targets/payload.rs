//! The payload scanner against serde_json: it accepts exactly the bodies
//! `serde_json::from_slice::<Value>` accepts, its tree is serde_json's, and the view it
//! picks holds the same values as the whole payload along every picked path. Input: a line
//! of comma-separated extra paths, then the body.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use switchyard_core::payload::{Payload, PayloadPaths};
use switchyard_fuzz::fields;

fuzz_target!(|data: &[u8]| {
    let f = fields(data, 2);
    let (extra, body) = (String::from_utf8_lossy(f[0]), f[1]);
    let paths = Arc::new(PayloadPaths::with(
        extra.split(',').filter(|p| !p.is_empty() && !p.split('.').any(str::is_empty)),
    ));
    let ours = Payload::parse(body, &paths);
    let theirs = serde_json::from_slice::<Value>(body);
    match (ours, theirs) {
        (Ok(payload), Ok(full)) => {
            assert_eq!(*payload, full, "the tree is serde_json's");
            let mut written = Vec::new();
            payload.write_json(&mut written).expect("writes");
            assert_eq!(
                serde_json::from_slice::<Value>(&written).expect("written JSON parses"),
                full
            );
            let view = payload.view(&paths);
            for path in paths.iter() {
                assert_eq!(
                    switchyard_core::pattern::lookup_all(view, path),
                    switchyard_core::pattern::lookup_all(&full, path),
                    "view along {path}"
                );
                assert_eq!(
                    switchyard_core::event::lookup(view, path),
                    switchyard_core::event::lookup(&full, path),
                    "view at {path}"
                );
            }
        }
        (Err(_), Err(_)) => {}
        (ours, theirs) => panic!(
            "disagree on {:?}: ours {:?}, serde_json {:?}",
            String::from_utf8_lossy(body),
            ours.map(|_| ()),
            theirs.map(|_| ())
        ),
    }
});
