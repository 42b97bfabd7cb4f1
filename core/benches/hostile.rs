//! Hostile input against the verifiers, on a 200 KB body: a Standard Webhooks header with
//! one good signature, with 8 candidates (the cap) and with 2,000 bogus candidates (refused
//! at the cap since the hostile-input fix; 9.7 s of CPU per request before it), and a push
//! listing 150,000 changed paths through normalization.

// A benchmark stops on a broken fixture; that is its failure mode.
#![allow(clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderName, HeaderValue};
use secrecy::SecretString;
use switchyard_core::config::{Source, SourceKind};

const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn headers(pairs: &[(String, String)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(
            HeaderName::try_from(k.as_str()).expect("name"),
            HeaderValue::from_str(v).expect("value"),
        );
    }
    h
}

fn bench(c: &mut Criterion) {
    let source = Source::new("std", SourceKind::Standard, &[WHSEC]);
    let body = format!("{{\"type\":\"x\",\"blob\":\"{}\"}}", "a".repeat(200 * 1024));
    let now = time::OffsetDateTime::now_utc();
    let signed = switchyard_core::signature::sign(
        &source,
        &SecretString::from(WHSEC.to_owned()),
        body.as_bytes(),
        "msg-1",
        now,
    )
    .expect("signs");
    let good = headers(&signed);
    let good_sig = good["webhook-signature"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let bogus = "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let with = |n: usize| {
        let mut h = good.clone();
        let value = format!("{} {good_sig}", vec![bogus; n].join(" "));
        h.insert(
            "webhook-signature",
            HeaderValue::from_str(&value).expect("value"),
        );
        h
    };
    let cap = with(7);
    let many = with(2000);
    let mut g = c.benchmark_group("hostile");
    g.sample_size(20);
    g.bench_function("standard_1_candidate_200k", |b| {
        b.iter(|| {
            switchyard_core::signature::verify(&source, black_box(&good), body.as_bytes(), now)
        })
    });
    g.bench_function("standard_8_candidates_200k", |b| {
        b.iter(|| {
            switchyard_core::signature::verify(&source, black_box(&cap), body.as_bytes(), now)
        })
    });
    g.bench_function("standard_2000_candidates_200k", |b| {
        b.iter(|| {
            switchyard_core::signature::verify(&source, black_box(&many), body.as_bytes(), now)
        })
    });
    let paths: Vec<String> = (0..150_000).map(|i| format!("src/file-{i}.rs")).collect();
    let push = serde_json::json!({
        "ref": "refs/heads/main", "repository": {"full_name": "acme/widgets"},
        "commits": [{"id": "c1", "added": paths, "modified": [], "removed": []}],
    })
    .to_string();
    let gh = Source::new("github", SourceKind::Github, &["s3cret-0123456789"]);
    let mut h = HeaderMap::new();
    h.insert("x-github-event", HeaderValue::from_static("push"));
    g.bench_function("push_150000_paths_normalize", |b| {
        b.iter(|| {
            switchyard_core::event::parse_unverified(
                &gh,
                &h,
                push.as_bytes(),
                now,
                &Default::default(),
            )
            .expect("normalizes")
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
