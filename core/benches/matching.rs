//! The router's in-process hot path on `events/github-pull_request-opened.json` (35 KB):
//! the floor (HMAC-SHA256 of the same bytes alone), signature verification per scheme,
//! parse and normalize, matching against 10, 100 and 1000 modules, and the whole path
//! (verify, normalize, match 100 modules, build every matched module's context JSON).
//! Normalization picks out the paths the registry routes on, as the router does. Three
//! reference points time the JSON pass alone. `bench/ratios.py` prints each figure as a
//! ratio to the floor. In the registries five
//! modules listen for pull requests (actions, branch globs, payload patterns); the rest
//! listen for other event types, as in a large installation.

// A benchmark stops on a broken fixture; that is its failure mode.
#![allow(clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use hmac::{Hmac, KeyInit, Mac};
use secrecy::SecretString;
use switchyard_core::config::{Source, SourceKind};
use switchyard_core::dispatch::{ModuleContext, SharedEvent, TriggerRef};
use switchyard_core::manifest::Registry;
use switchyard_core::settings::ScopedSettings;

fn manifests(n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| {
            let text = if i < 5 {
                format!(
                    "name: pr-{i}\ndescription: d\ntriggers:\n  - webhook:\n      event: pull_request\n      actions: [opened, synchronize]\n      branches: [main, \"release/**\"]\n      filter:\n        pull_request.draft: [false]\n        pull_request.labels.name: [{{prefix: \"area/\"}}, enhancement]\n        pull_request.additions: [{{numeric: [\">\", {i}]}}]\n      cooldown: 5m\n"
                )
            } else {
                format!(
                    "name: other-{i}\ndescription: d\ntriggers:\n  - webhook:\n      event: [custom_{i}, deployment_{}]\n      actions: [created]\n      filter:\n        deployment.environment: [production]\n",
                    i % 17
                )
            };
            (format!("m{i}/module.yaml"), text)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let body = include_bytes!("../../events/github-pull_request-opened.json");
    let source = Source::new("github", SourceKind::Github, &["s"]);
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "x-github-event",
        http::HeaderValue::from_static("pull_request"),
    );
    let settings = ScopedSettings::default();
    let mut group = c.benchmark_group("match");
    for n in [10usize, 100, 1000] {
        let texts = manifests(n);
        let registry =
            Registry::from_manifests(texts.iter().map(|(f, t)| (f.as_str(), t.as_str())))
                .expect("valid manifests");
        // Normalized as the router does: with the paths this registry routes on picked out.
        let event = switchyard_core::event::parse_unverified(
            &source,
            &headers,
            body,
            time::OffsetDateTime::now_utc(),
            registry.payload_paths(),
        )
        .expect("sample parses");
        let plan = switchyard_core::routing::plan(&registry, &event, &settings);
        assert_eq!(plan.matched.len(), 5, "every pull_request module matches");
        group.bench_function(format!("{n}_modules"), |b| {
            b.iter(|| {
                switchyard_core::routing::plan(black_box(&registry), black_box(&event), &settings)
            })
        });
    }
    group.finish();
}

const SECRET: &str = "a-webhook-secret-of-forty-characters-xx";

/// Signed request headers for `kind`.
fn signed(
    source: &Source,
    secret: &str,
    body: &[u8],
    now: time::OffsetDateTime,
) -> http::HeaderMap {
    let pairs = switchyard_core::signature::sign(
        source,
        &SecretString::from(secret.to_owned()),
        body,
        "bench-delivery",
        now,
    )
    .expect("signs");
    let mut headers = http::HeaderMap::new();
    for (k, v) in pairs {
        headers.insert(
            http::HeaderName::from_bytes(k.to_lowercase().as_bytes()).expect("name"),
            http::HeaderValue::from_str(&v).expect("value"),
        );
    }
    headers.insert(
        "x-github-event",
        http::HeaderValue::from_static("pull_request"),
    );
    headers.insert(
        "x-gitea-event",
        http::HeaderValue::from_static("pull_request"),
    );
    headers.insert(
        "x-gitlab-event",
        http::HeaderValue::from_static("Merge Request Hook"),
    );
    headers
}

fn hot_path(c: &mut Criterion) {
    let body: &[u8] = include_bytes!("../../events/github-pull_request-opened.json");
    let now = time::OffsetDateTime::now_utc();

    c.bench_function("floor/hmac_sha256", |b| {
        b.iter(|| {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
            mac.update(black_box(body));
            black_box(mac.finalize().into_bytes())
        })
    });

    let standard_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let mut group = c.benchmark_group("verify");
    for (kind, secret) in [
        (SourceKind::Github, SECRET),
        (SourceKind::Forgejo, SECRET),
        (SourceKind::Gitlab, SECRET),
        (SourceKind::Standard, standard_secret),
        (SourceKind::Hmac, SECRET),
    ] {
        let source = Source::new("bench", kind, &[secret]);
        let headers = signed(&source, secret, body, now);
        switchyard_core::signature::verify(&source, &headers, body, now).expect("verifies");
        group.bench_function(kind.as_str(), |b| {
            b.iter(|| {
                switchyard_core::signature::verify(
                    black_box(&source),
                    black_box(&headers),
                    black_box(body),
                    now,
                )
                .is_ok()
            })
        });
    }
    group.finish();

    let source = Source::new("github", SourceKind::Github, &[SECRET]);
    let headers = signed(&source, SECRET, body, now);
    let texts = manifests(100);
    let registry = Registry::from_manifests(texts.iter().map(|(f, t)| (f.as_str(), t.as_str())))
        .expect("valid manifests");
    let paths = registry.payload_paths();
    let settings = ScopedSettings::default();
    c.bench_function("normalize/parse_and_normalize", |b| {
        b.iter(|| {
            switchyard_core::event::parse_unverified(&source, &headers, black_box(body), now, paths)
                .expect("parses")
        })
    });

    // Reference points for the JSON pass inside normalization: our scanner alone (checks the
    // grammar, picks the registry's paths), serde_json's fastest check (no tree), and the
    // full tree the router built before the scanner.
    c.bench_function("reference/payload_scan", |b| {
        b.iter(|| switchyard_core::payload::Payload::parse(black_box(body), paths).expect("parses"))
    });
    c.bench_function("reference/serde_json_check_only", |b| {
        b.iter(|| serde_json::from_slice::<serde::de::IgnoredAny>(black_box(body)).expect("parses"))
    });
    c.bench_function("reference/serde_json_value", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(body)).expect("parses"))
    });

    c.bench_function("whole/verify_normalize_match100_contexts", |b| {
        b.iter(|| {
            let verified =
                switchyard_core::signature::verify(&source, &headers, black_box(body), now)
                    .expect("verifies");
            let event =
                switchyard_core::event::normalize(verified, now, paths).expect("normalizes");
            let plan = switchyard_core::routing::plan(&registry, &event, &settings);
            // As the dispatcher does: the event (as decided, a copy) shared, its JSON written
            // once.
            let shared = SharedEvent::new(event.clone());
            let contexts: Vec<Vec<u8>> = plan
                .matched
                .iter()
                .map(|m| {
                    let context = ModuleContext {
                        job_id: format!("{}#{}", event.id, m.module),
                        module: m.module.clone(),
                        function: m.function.clone(),
                        trigger: TriggerRef {
                            kind: m.kind.into(),
                            index: m.trigger,
                        },
                        entity: m.entity.clone(),
                        config: m.config.clone(),
                        event: shared.event(),
                        payload_ref: None,
                        report: m.report,
                    };
                    shared.context_json(&context).expect("serializes")
                })
                .collect();
            assert_eq!(contexts.len(), 5);
            black_box(contexts)
        })
    });
}

criterion_group!(benches, bench, hot_path);
criterion_main!(benches);
