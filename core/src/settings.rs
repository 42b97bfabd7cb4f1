//! Per-scope settings: a module can be switched off, or given config overrides, for a
//! repository, an owner (organization, user, GitLab namespace) or globally. Resolution
//! order: repository, then owner, then global, then the manifest. Pure; the store loads the
//! layers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::manifest::Module;

/// The global scope's name.
pub const GLOBAL: &str = "global";

/// The settings of one scope.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Feature flags by name (a module's `feature_flag`, or its name): on or off.
    #[serde(default)]
    pub flags: BTreeMap<String, bool>,
    /// Config overrides by module name, deep-merged over the manifest's `config`.
    #[serde(default)]
    pub config: BTreeMap<String, Value>,
}

/// Checks a scope name: `global`, `owner/<owner>` or `repo/<owner>/<name>`.
pub fn validate_scope(scope: &str) -> Result<(), ScopeError> {
    scope_text(scope).map_err(ScopeError)
}

fn scope_text(scope: &str) -> Result<(), String> {
    let ok = scope == GLOBAL
        || scope
            .strip_prefix("owner/")
            .is_some_and(|o| !o.is_empty() && !o.contains('/'))
        || scope
            .strip_prefix("repo/")
            .is_some_and(|r| r.split('/').count() >= 2 && r.split('/').all(|p| !p.is_empty()));
    if ok && scope.len() <= 512 {
        Ok(())
    } else {
        Err(format!(
            "scope `{scope}` must be `global`, `owner/<owner>` or `repo/<owner>/<name>`"
        ))
    }
}

/// The scopes that apply to an event about `repository` (`owner/name`, or a GitLab
/// `group/sub/project`), most specific first.
pub fn scopes_for(repository: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(repo) = repository.filter(|r| r.contains('/')) {
        out.push(format!("repo/{repo}"));
        if let Some((owner, _)) = repo.rsplit_once('/') {
            // For GitLab subgroups the owner is the whole namespace.
            out.push(format!("owner/{}", owner.replace('/', ":")));
        }
    }
    out.push(GLOBAL.to_owned());
    out
}

/// The settings layers that apply to one event, most specific first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScopedSettings {
    /// `(scope, settings)` pairs; scopes without an item are absent.
    pub layers: Vec<(String, Settings)>,
}

/// Where a module's on/off state came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enablement {
    /// On or off.
    pub enabled: bool,
    /// The scope that decided, or `None` for the manifest default.
    pub scope: Option<String>,
}

impl ScopedSettings {
    /// Whether `module` runs, and which scope decided.
    pub fn enablement(&self, module: &Module) -> Enablement {
        for (scope, s) in &self.layers {
            if let Some(&on) = s.flags.get(&module.flag) {
                return Enablement {
                    enabled: on,
                    scope: Some(scope.clone()),
                };
            }
        }
        Enablement {
            enabled: module.enabled,
            scope: None,
        }
    }

    /// The module's config: the manifest's, then global, owner and repository overrides.
    pub fn config(&self, module: &Module) -> Value {
        self.config_over(module, module.config.clone())
    }

    /// `base` (a trigger's config merged over the manifest's) with the scope overrides.
    pub fn config_over(&self, module: &Module, base: Value) -> Value {
        let mut config = base;
        for (_, s) in self.layers.iter().rev() {
            if let Some(over) = s.config.get(&module.name) {
                deep_merge(&mut config, over);
            }
        }
        config
    }
}

/// Merges `over` into `base`: objects key by key, anything else replaced.
pub fn deep_merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) => deep_merge(existing, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

crate::message_error! {
    /// Why a settings scope name is refused.
    ScopeError
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn module() -> Module {
        crate::manifest::parse_manifest(
            "m.yaml",
            "name: pr-review\ndescription: d\nfeature_flag: pr_review\ntriggers:\n  - webhook: { event: pull_request }\nconfig: { max_files: 50, style: { tone: kind, emoji: true } }\n",
        )
        .unwrap()
    }

    fn layer(scope: &str, flag: Option<bool>, config: Option<Value>) -> (String, Settings) {
        let mut s = Settings::default();
        if let Some(f) = flag {
            s.flags.insert("pr_review".into(), f);
        }
        if let Some(c) = config {
            s.config.insert("pr-review".into(), c);
        }
        (scope.to_owned(), s)
    }

    #[test]
    fn the_most_specific_scope_decides() {
        let m = module();
        let none = ScopedSettings::default();
        assert_eq!(
            none.enablement(&m),
            Enablement {
                enabled: true,
                scope: None
            }
        );
        let repo_off = ScopedSettings {
            layers: vec![
                layer("repo/acme/widgets", Some(false), None),
                layer("global", Some(true), None),
            ],
        };
        assert_eq!(
            repo_off.enablement(&m),
            Enablement {
                enabled: false,
                scope: Some("repo/acme/widgets".into())
            }
        );
        let owner_on = ScopedSettings {
            layers: vec![
                layer("repo/acme/widgets", None, None),
                layer("owner/acme", Some(true), None),
                layer("global", Some(false), None),
            ],
        };
        assert!(owner_on.enablement(&m).enabled);
    }

    #[test]
    fn config_overrides_merge_from_global_to_repository() {
        let m = module();
        let s = ScopedSettings {
            layers: vec![
                layer(
                    "repo/acme/widgets",
                    None,
                    Some(json!({"style": {"emoji": false}})),
                ),
                layer(
                    "owner/acme",
                    None,
                    Some(json!({"max_files": 10, "style": {"emoji": true, "tone": "terse"}})),
                ),
                layer("global", None, Some(json!({"max_files": 20}))),
            ],
        };
        assert_eq!(
            s.config(&m),
            json!({"max_files": 10, "style": {"tone": "terse", "emoji": false}})
        );
    }

    #[test]
    fn scopes_for_events() {
        assert_eq!(
            scopes_for(Some("acme/widgets")),
            ["repo/acme/widgets", "owner/acme", "global"]
        );
        assert_eq!(
            scopes_for(Some("grp/sub/proj")),
            ["repo/grp/sub/proj", "owner/grp:sub", "global"]
        );
        assert_eq!(scopes_for(None), ["global"]);
        assert!(validate_scope("repo/acme/widgets").is_ok());
        assert!(validate_scope("owner/acme").is_ok());
        assert!(validate_scope("owner/").is_err());
        assert!(validate_scope("acme").is_err());
    }
}
