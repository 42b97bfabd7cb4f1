//! The commands over manifest files, without any AWS access: `validate`, `explain` and
//! `schedule next`.

use std::path::Path;

use anyhow::Context as _;
use switchyard::config::{Source, SourceKind};

use crate::signing::{event_from_file_name, event_headers};

/// The manifests in `dir`, or the ones built in; every error in one message.
pub(crate) fn load_registry(dir: Option<&std::path::Path>) -> anyhow::Result<switchyard::Registry> {
    match dir {
        Some(d) => switchyard::manifest::validate_dir(d),
        None => switchyard::Registry::builtin(),
    }
    .map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("invalid manifests:\n{}", lines.join("\n"))
    })
}

pub(crate) fn explain_file(
    source: &str,
    kind: Option<&str>,
    event: Option<String>,
    module: Option<&str>,
    dir: Option<&std::path::Path>,
    file: &std::path::Path,
) -> anyhow::Result<Vec<String>> {
    let kind_name = kind.unwrap_or(source);
    let kind = SourceKind::parse(kind_name)
        .with_context(|| format!("unknown kind `{kind_name}`; pass --kind"))?;
    let registry = load_registry(dir)?;
    if let Some(m) = module {
        anyhow::ensure!(registry.get(m).is_some(), "no module named `{m}`");
    }
    let body = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let mut headers = http::HeaderMap::new();
    let event = event.or_else(|| event_from_file_name(file));
    for (k, v) in event.map(|e| event_headers(kind, e)).unwrap_or_default() {
        headers.insert(
            http::HeaderName::try_from(k.as_str())?,
            http::HeaderValue::try_from(v.as_str())?,
        );
    }
    let mut src = Source::new(source, kind, &[]);
    src.hmac.event_header = "X-Event-Type".into();
    let event = switchyard::event::parse_unverified(
        &src,
        &headers,
        &body,
        time::OffsetDateTime::now_utc(),
        &Default::default(),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut lines = vec![format!(
        "event {} action {} entity {} from {}",
        event.event_type.as_str(),
        event.action.as_deref().unwrap_or("-"),
        event.entity,
        event.source
    )];
    let settings = switchyard::settings::ScopedSettings::default();
    lines.extend(
        switchyard::explain::explain(&registry, &event, &settings, module)
            .iter()
            .map(ToString::to_string),
    );
    Ok(lines)
}

pub(crate) fn schedule_next(
    module: &str,
    count: usize,
    dir: Option<&std::path::Path>,
    after: time::OffsetDateTime,
) -> anyhow::Result<Vec<String>> {
    let registry = load_registry(dir)?;
    anyhow::ensure!(registry.get(module).is_some(), "no module named `{module}`");
    let mut lines = Vec::new();
    for (m, index, trigger) in registry.schedules().filter(|(m, _, _)| m.name == module) {
        let schedule = &trigger.schedule;
        lines.push(format!(
            "{} trigger {index}: {} ({})",
            m.name,
            trigger.expression,
            schedule.zone_name()
        ));
        for minute in schedule.next_after(after, count) {
            lines.push(format!(
                "  {}  {}",
                switchyard::schedule::minute_text(minute),
                schedule.local_text(minute)
            ));
        }
    }
    anyhow::ensure!(
        !lines.is_empty(),
        "module `{module}` has no schedule trigger"
    );
    Ok(lines)
}

/// `switchyard validate`: every error of every manifest under `dir`; any error exits 1.
pub(crate) fn validate(dir: &Path) {
    match switchyard::manifest::validate_dir(dir) {
        Ok(registry) => {
            let names: Vec<&str> = registry.modules().iter().map(|m| m.name.as_str()).collect();
            println!("{} manifests valid: {}", names.len(), names.join(", "));
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            eprintln!("{} error(s)", errors.len());
            std::process::exit(1);
        }
    }
}

/// `switchyard schedule next`.
pub(crate) fn schedule(module: &str, count: usize, dir: Option<&Path>) -> anyhow::Result<()> {
    for line in schedule_next(module, count, dir, time::OffsetDateTime::now_utc())? {
        println!("{line}");
    }
    Ok(())
}
