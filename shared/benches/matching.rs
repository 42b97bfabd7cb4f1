//! Matching cost against 10, 100 and 1000 modules for one pull_request event
//! (`events/github-pull_request-opened.json`). Five modules listen for pull requests (with
//! actions, branch globs and payload patterns); the rest listen for other event types, as in
//! a large installation. The index by event type keeps the cost flat in the module count.

// A benchmark stops on a broken fixture; that is its failure mode.
#![allow(clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use switchyard::config::{Source, SourceKind};
use switchyard::manifest::Registry;
use switchyard::settings::ScopedSettings;

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
    let event = switchyard::event::parse_unverified(
        &source,
        &headers,
        body,
        time::OffsetDateTime::now_utc(),
    )
    .expect("sample parses");
    let settings = ScopedSettings::default();
    let mut group = c.benchmark_group("match");
    for n in [10usize, 100, 1000] {
        let texts = manifests(n);
        let registry =
            Registry::from_manifests(texts.iter().map(|(f, t)| (f.as_str(), t.as_str())))
                .expect("valid manifests");
        let plan = switchyard::routing::plan(&registry, &event, &settings);
        assert_eq!(plan.matched.len(), 5, "every pull_request module matches");
        group.bench_function(format!("{n}_modules"), |b| {
            b.iter(|| switchyard::routing::plan(black_box(&registry), black_box(&event), &settings))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
