//! The active registry of a running function: the compiled-in manifests until a version is
//! published through the API, then the published version. A function checks for a newer
//! version at most once per refresh interval with one small read (never a read per
//! request), and swaps it in atomically: a request keeps the snapshot it started with.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use serde::Serialize;
use tracing::{info, warn};

use crate::manifest::{ManifestError, Module, Registry, parse_manifest};
use crate::store::{RegistryStore, RegistryVersion, StoreError, rfc3339};

/// A registry and the published version it came from (`None`: the compiled-in manifests).
#[derive(Debug)]
pub struct Active {
    /// Published version number, or `None` for the compiled-in registry.
    pub version: Option<u64>,
    /// The modules.
    pub registry: Arc<Registry>,
}

/// Where a function's registry comes from, and when it last looked for a newer one.
pub struct RegistrySource {
    active: ArcSwap<Active>,
    baseline: Arc<Registry>,
    store: Option<Arc<dyn RegistryStore>>,
    refresh: Duration,
    checked: Mutex<Option<Instant>>,
    refreshing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for RegistrySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrySource")
            .field("version", &self.active.load().version)
            .field("refresh", &self.refresh)
            .finish_non_exhaustive()
    }
}

impl RegistrySource {
    /// A registry that never changes (tests, tools).
    pub fn fixed(registry: Arc<Registry>) -> Self {
        Self {
            active: ArcSwap::from_pointee(Active {
                version: None,
                registry: registry.clone(),
            }),
            baseline: registry,
            store: None,
            refresh: Duration::MAX,
            checked: Mutex::new(None),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    /// `baseline` until a version is published in `store`; checks at most every `refresh`.
    pub fn published(
        baseline: Arc<Registry>,
        store: Arc<dyn RegistryStore>,
        refresh: Duration,
    ) -> Self {
        Self {
            store: Some(store),
            refresh,
            ..Self::fixed(baseline)
        }
    }

    /// The registry in use now, without any I/O.
    pub fn snapshot(&self) -> Arc<Active> {
        self.active.load_full()
    }

    /// The registry in use, after looking for a newer published version if the last look
    /// is older than the refresh interval. A failed look keeps the current registry (and is
    /// not repeated before the next interval).
    pub async fn current(&self) -> Arc<Active> {
        let due = self
            .checked
            .lock()
            .map(|c| c.is_none_or(|t| t.elapsed() >= self.refresh))
            .unwrap_or(true);
        if !due || self.store.is_none() {
            return self.snapshot();
        }
        // One look at a time; concurrent requests use what is there.
        let Ok(_guard) = self.refreshing.try_lock() else {
            return self.snapshot();
        };
        if let Err(e) = self.refresh_now().await {
            warn!(error = %crate::errors::error_chain(&e), "registry check failed; keeping the current registry");
        }
        if let Ok(mut c) = self.checked.lock() {
            *c = Some(Instant::now());
        }
        self.snapshot()
    }

    /// Looks for a newer published version now and swaps it in.
    pub async fn refresh_now(&self) -> Result<Arc<Active>, StoreError> {
        let Some(store) = &self.store else {
            return Ok(self.snapshot());
        };
        let current = self.snapshot();
        let published = store.registry_version().await?;
        if published == current.version {
            return Ok(current);
        }
        let next = match published {
            None => Active {
                version: None,
                registry: self.baseline.clone(),
            },
            Some(v) => {
                let Some(record) = store.get_registry(v).await? else {
                    return Ok(current);
                };
                let (registry, errors) = build(&record.manifests);
                for e in errors {
                    warn!(version = v, error = %e, "published manifest no longer valid; module left out");
                }
                Active {
                    version: Some(v),
                    registry: Arc::new(registry),
                }
            }
        };
        info!(from = ?current.version, to = ?next.version, "registry version swapped in");
        self.active.store(Arc::new(next));
        Ok(self.snapshot())
    }
}

/// Builds a registry from manifest texts by module name; invalid ones are left out and
/// returned as errors.
pub fn build(manifests: &BTreeMap<String, String>) -> (Registry, Vec<ManifestError>) {
    let mut modules = Vec::new();
    let mut errors = Vec::new();
    for (name, text) in manifests {
        match parse_manifest(&format!("registry/{name}"), text) {
            Ok(m) => modules.push(m),
            Err(e) => errors.extend(e),
        }
    }
    (Registry::new(modules), errors)
}

/// A manifest the publish could not take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failed {
    /// The module's name (from the manifest, else from the file name).
    pub module: String,
    /// Every error, `file:line: key: message`, joined by newlines.
    pub error: String,
    /// Whether its previous version stays active.
    pub kept_previous: bool,
}

/// What a publish changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The new version.
    pub version: u64,
    /// Modules that were not in the previous version.
    pub added: Vec<String>,
    /// Modules that were, with their new manifest.
    pub refreshed: Vec<String>,
    /// Modules of the previous version absent from the bundle.
    pub removed: Vec<String>,
    /// Manifests that did not validate.
    pub failed: Vec<Failed>,
    /// Set when the version restores an older one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rolled_back_to: Option<u64>,
}

/// The module name a manifest declares, read leniently (for reporting a broken one).
fn declared_name(file: &str, text: &str) -> String {
    crate::yaml::Document::parse(text)
        .ok()
        .and_then(|d| {
            d.value
                .get("name")
                .and_then(|n| n.as_str())
                .map(str::to_owned)
        })
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| {
            let stem = file.trim_end_matches("/module.yaml");
            let stem = stem.rsplit('/').next().unwrap_or(stem);
            stem.trim_end_matches(".yaml")
                .trim_end_matches(".yml")
                .trim_end_matches(".json")
                .to_owned()
        })
}

/// The manifests of the registry before any publish: the compiled-in ones, by module name.
pub fn builtin_manifests() -> BTreeMap<String, String> {
    crate::manifest::BUILTIN_MANIFESTS
        .iter()
        .map(|(file, text)| (declared_name(file, text), (*text).to_owned()))
        .collect()
}

/// Plans the next version from `previous` (name -> manifest) and a bundle (file -> text):
/// each manifest is validated on its own; a broken one keeps its previous version; modules
/// absent from the bundle are removed.
pub fn plan_publish(
    previous: &BTreeMap<String, String>,
    bundle: &BTreeMap<String, String>,
) -> (BTreeMap<String, String>, Report) {
    let mut next = BTreeMap::new();
    let mut report = Report::default();
    let mut seen = BTreeSet::new();
    for (file, text) in bundle {
        let result: Result<Module, Vec<ManifestError>> = parse_manifest(file, text);
        match result {
            Ok(m) if !seen.insert(m.name.clone()) => report.failed.push(Failed {
                module: m.name.clone(),
                error: format!(
                    "{file}: name: `{}` is declared by another manifest of the bundle too",
                    m.name
                ),
                kept_previous: false,
            }),
            Ok(m) => {
                if previous.contains_key(&m.name) {
                    report.refreshed.push(m.name.clone());
                } else {
                    report.added.push(m.name.clone());
                }
                next.insert(m.name, text.clone());
            }
            Err(errors) => {
                let module = declared_name(file, text);
                let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
                let kept = !seen.contains(&module) && previous.contains_key(&module);
                if kept {
                    seen.insert(module.clone());
                    next.insert(module.clone(), previous[&module].clone());
                }
                report.failed.push(Failed {
                    module,
                    error: text.join("\n"),
                    kept_previous: kept,
                });
            }
        }
    }
    report.removed = previous
        .keys()
        .filter(|name| !next.contains_key(*name))
        .cloned()
        .collect();
    (next, report)
}

/// Why a publish did not happen.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Other publishes kept winning the race.
    #[error("the registry kept changing under this publish; try again")]
    Contended,
    /// Rollback to a version that does not exist.
    #[error("no registry version {0}")]
    NoSuchVersion(u64),
}

/// Publishes a bundle (or, with `rollback`, an old version's manifests) as the next version:
/// the version swap is a conditional write, retried on a lost race, so two concurrent
/// publishes make two consecutive versions.
pub async fn publish(
    store: &dyn RegistryStore,
    bundle: &BTreeMap<String, String>,
    rollback: Option<u64>,
    by: &str,
    now: time::OffsetDateTime,
) -> Result<Report, PublishError> {
    for attempt in 0..8u64 {
        let current = store.registry_version().await?;
        let previous = match current {
            Some(v) => store
                .get_registry(v)
                .await?
                .map(|r| r.manifests)
                .unwrap_or_default(),
            None => builtin_manifests(),
        };
        let (manifests, mut report) = match rollback {
            Some(target) => {
                let old = store
                    .get_registry(target)
                    .await?
                    .ok_or(PublishError::NoSuchVersion(target))?;
                let mut report = Report {
                    rolled_back_to: Some(target),
                    ..Report::default()
                };
                for name in old.manifests.keys() {
                    if previous.contains_key(name) {
                        report.refreshed.push(name.clone());
                    } else {
                        report.added.push(name.clone());
                    }
                }
                report.removed = previous
                    .keys()
                    .filter(|n| !old.manifests.contains_key(*n))
                    .cloned()
                    .collect();
                (old.manifests, report)
            }
            None => plan_publish(&previous, bundle),
        };
        let version = current.unwrap_or(0) + 1;
        report.version = version;
        let record = RegistryVersion {
            version,
            published_at: rfc3339(now),
            published_by: by.to_owned(),
            modules: manifests.keys().cloned().collect(),
            manifests,
            report: serde_json::to_value(&report).unwrap_or_default(),
        };
        if store.put_registry(current, &record).await? {
            info!(version, by, "registry published");
            return Ok(report);
        }
        tokio::time::sleep(Duration::from_millis(10 * (attempt + 1))).await;
    }
    Err(PublishError::Contended)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "name: a\ndescription: test\ntriggers:\n  - webhook:\n      sources: [github]\n      event: push\n";

    fn map(items: &[(&str, &str)]) -> BTreeMap<String, String> {
        items
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_broken_manifest_keeps_its_previous_version() {
        let previous = map(&[
            ("a", GOOD),
            ("gone", &GOOD.replace("name: a", "name: gone")),
        ]);
        let broken = "name: a\ndescription: test\ntriggers:\n  - webhook:\n      event: push\n      cooldown: soon\n";
        let b = GOOD.replace("name: a", "name: b");
        let bundle = map(&[("a/module.yaml", broken), ("b/module.yaml", &b)]);
        let (next, report) = plan_publish(&previous, &bundle);
        assert_eq!(next["a"], GOOD);
        assert!(next.contains_key("b"));
        assert!(!next.contains_key("gone"));
        assert_eq!(report.added, vec!["b"]);
        assert_eq!(report.removed, vec!["gone"]);
        assert_eq!(report.failed.len(), 1);
        assert_eq!(report.failed[0].module, "a");
        assert!(report.failed[0].kept_previous);
        assert!(
            report.failed[0].error.contains("cooldown"),
            "{:?}",
            report.failed
        );
    }

    #[test]
    fn a_broken_new_module_is_reported_by_file_name() {
        let (next, report) =
            plan_publish(&BTreeMap::new(), &map(&[("new-one/module.yaml", ": :")]));
        assert!(next.is_empty());
        assert_eq!(report.failed[0].module, "new-one");
        assert!(!report.failed[0].kept_previous);
    }

    #[test]
    fn duplicate_names_in_a_bundle_fail_the_second() {
        let (next, report) = plan_publish(
            &BTreeMap::new(),
            &map(&[("x.yaml", GOOD), ("y.yaml", GOOD)]),
        );
        assert_eq!(next.len(), 1);
        assert_eq!(report.failed.len(), 1);
    }
}
