//! `template.yaml` against the workspace: every function binary deployed, every API route
//! wired, policies scoped to the table, its indexes and module functions, module failures
//! kept, and secrets only through Secrets Manager dynamic references.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn template() -> Value {
    use saphyr::LoadableYamlNode as _;
    let text = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    let docs = saphyr::Yaml::load_from_str(&text).unwrap();
    assert_eq!(docs.len(), 1, "template.yaml is one document");
    json_of(&docs[0])
}

/// A YAML node as JSON, each CloudFormation short-form tag kept as a one-key object:
/// `!Ref P` is `{"!Ref": "P"}`, `!If [c, a, b]` is `{"!If": ["c", "a", "b"]}`.
fn json_of(node: &saphyr::Yaml<'_>) -> Value {
    use saphyr::{Scalar, Yaml};
    match node {
        Yaml::Value(Scalar::Null) => Value::Null,
        Yaml::Value(Scalar::Boolean(b)) => Value::Bool(*b),
        Yaml::Value(Scalar::Integer(i)) => json!(i),
        Yaml::Value(Scalar::FloatingPoint(f)) => json!(f.into_inner()),
        Yaml::Value(Scalar::String(s)) | Yaml::Representation(s, _, _) => {
            Value::String(s.to_string())
        }
        Yaml::Sequence(items) => Value::Array(items.iter().map(json_of).collect()),
        Yaml::Mapping(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| match json_of(k) {
                    Value::String(k) => (k, json_of(v)),
                    other => (other.to_string(), json_of(v)),
                })
                .collect(),
        ),
        Yaml::Tagged(tag, inner) => json!({ format!("!{}", tag.suffix): json_of(inner) }),
        other => panic!("template.yaml holds a node JSON cannot: {other:?}"),
    }
}

/// The `[[bin]]` names of the crates under `dir` (one level), read from their Cargo.toml.
fn binaries_under(dir: &Path) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let manifest = entry.unwrap().path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        let mut in_bin = false;
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                in_bin = line == "[[bin]]";
            } else if in_bin && let Some(rest) = line.strip_prefix("name") {
                let name = rest
                    .trim_start()
                    .trim_start_matches('=')
                    .trim()
                    .trim_matches('"');
                names.insert(name.to_owned());
            }
        }
    }
    names
}

fn resources(t: &Value) -> &Map<String, Value> {
    t["Resources"].as_object().unwrap()
}

/// Function resources by the binary they build.
fn functions_by_binary(t: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (name, res) in resources(t) {
        if res["Type"] == "AWS::Serverless::Function" {
            assert_eq!(
                res["Metadata"]["BuildMethod"], "rust-cargolambda",
                "{name:?} is not built by cargo-lambda"
            );
            let binary = res["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .unwrap_or_else(|| panic!("{name:?} names no binary"));
            out.insert(binary.to_owned(), name.as_str().to_owned());
        }
    }
    out
}

/// The logical ids of the module functions.
fn module_functions(t: &Value) -> BTreeSet<String> {
    let by_binary = functions_by_binary(t);
    binaries_under(&root().join("functions/modules"))
        .iter()
        .map(|b| by_binary[b].clone())
        .collect()
}

/// The value an `!If [cond, value, other]` takes when its condition holds; any other value
/// as it is.
fn if_true(v: &Value) -> &Value {
    match tag(v, "If") {
        Some(Value::Array(args)) if args.len() == 3 => &args[1],
        _ => v,
    }
}

fn tag<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    match v.as_object() {
        Some(o) if o.len() == 1 => o.get(&format!("!{name}")),
        _ => None,
    }
}

/// The logical id a `!GetAtt X.Arn` or `!Sub "${X.Arn}..."` refers to, or the parameter of a
/// `!Ref P`; `None` for anything else (a literal ARN, `*`).
fn referent(v: &Value) -> Option<String> {
    if let Some(Value::String(s)) = tag(v, "GetAtt") {
        return s.strip_suffix(".Arn").map(str::to_owned);
    }
    if let Some(Value::String(s)) = tag(v, "Sub") {
        let inner = s.strip_prefix("${")?;
        return inner.split_once(".Arn}").map(|(id, _)| id.to_owned());
    }
    if let Some(Value::String(s)) = tag(v, "Ref") {
        return Some(format!("param:{s}"));
    }
    // `!Sub ["arn:...:secret:${Name}-*", {Name: !Select [0, !Split [":SecretString:", !Ref P]]}]`
    if let Some(Value::Array(args)) = tag(v, "Sub") {
        let template = args.first()?.as_str()?;
        if template != SECRET_ARN {
            return None;
        }
        let Some(Value::Array(select)) = tag(&args.get(1)?["Name"], "Select") else {
            return None;
        };
        let Some(Value::Array(split)) = tag(select.get(1)?, "Split") else {
            return None;
        };
        if split.first()?.as_str()? != ":SecretString:" {
            return None;
        }
        let Some(Value::String(param)) = tag(split.get(1)?, "Ref") else {
            return None;
        };
        return Some(format!("secret:{param}"));
    }
    None
}

/// The ARN pattern of a secret named by a `...Ref` parameter (Secrets Manager appends `-`
/// and six characters to a secret's name).
const SECRET_ARN: &str =
    "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${Name}-*";

/// Every policy statement of every function, with `!If` branches flattened.
fn statements(res: &Value) -> Vec<Value> {
    fn flatten(v: &Value, out: &mut Vec<Value>) {
        if let Some(Value::Array(args)) = tag(v, "If") {
            for branch in args.iter().skip(1) {
                flatten(branch, out);
            }
        } else if v.is_object() && *v != no_value() {
            out.push(v.clone());
        }
    }
    let mut out = Vec::new();
    for policy in res["Properties"]["Policies"].as_array().unwrap() {
        for s in policy["Statement"].as_array().unwrap() {
            flatten(s, &mut out);
        }
    }
    out
}

fn as_list(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    }
}

#[test]
fn every_function_binary_has_a_resource_and_every_resource_a_binary() {
    let t = template();
    let deployed: BTreeSet<String> = functions_by_binary(&t).into_keys().collect();
    let mut binaries = binaries_under(&root().join("functions"));
    binaries.extend(binaries_under(&root().join("functions/modules")));
    assert!(binaries.len() >= 6, "{binaries:?}");
    assert_eq!(deployed, binaries);
}

#[test]
fn policies_name_the_table_its_indexes_or_module_functions_never_a_wildcard() {
    let t = template();
    let modules = module_functions(&t);
    let mut checked = 0;
    for (name, res) in resources(&t) {
        if res["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        let name = name.as_str();
        for statement in statements(res) {
            assert_eq!(statement["Effect"], "Allow", "{name}: {statement:?}");
            let actions: Vec<String> = as_list(&statement["Action"])
                .iter()
                .map(|a| a.as_str().unwrap().to_owned())
                .collect();
            let resources = as_list(&statement["Resource"]);
            assert!(!resources.is_empty(), "{name}: statement without resource");
            for r in &resources {
                assert_ne!(r.as_str(), Some("*"), "{name}: wildcard resource");
                let id = referent(r).unwrap_or_else(|| panic!("{name}: literal resource {r:?}"));
                for action in &actions {
                    assert!(!action.contains('*'), "{name}: wildcard action {action}");
                    if action.starts_with("dynamodb:") {
                        assert_eq!(id, "Table", "{name}: {action} on {r:?}");
                        if let Some(Value::String(s)) = tag(r, "Sub") {
                            let index = s.strip_prefix("${Table.Arn}/index/").unwrap();
                            assert!(["events_by_time", "jobs_by_time"].contains(&index), "{s}");
                        }
                    } else if action == "secretsmanager:GetSecretValue" {
                        assert!(
                            id.starts_with("secret:") && id.ends_with("Ref"),
                            "{name}: {action} on {id}, not a secret parameter"
                        );
                    } else if action == "lambda:InvokeFunction" {
                        assert!(
                            modules.contains(&id) || id == "param:ExternalModuleFunctionArns",
                            "{name}: invoke on {id}, not a module function"
                        );
                    } else {
                        panic!("{name}: unexpected action {action}");
                    }
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 20, "only {checked} action/resource pairs");
}

#[test]
fn every_module_function_sends_failures_to_the_dead_letter_queue() {
    let t = template();
    let by_binary = functions_by_binary(&t);
    for binary in binaries_under(&root().join("functions/modules")) {
        let name = &by_binary[&binary];
        let props = &t["Resources"][name.as_str()]["Properties"];
        let config = &props["EventInvokeConfig"];
        assert!(
            !config["MaximumRetryAttempts"].is_null(),
            "{name}: unbounded retries"
        );
        assert!(
            !config["MaximumEventAgeInSeconds"].is_null(),
            "{name}: no maximum event age"
        );
        let failure = &config["DestinationConfig"]["OnFailure"];
        assert_eq!(failure["Type"], "SQS", "{name}");
        assert_eq!(
            referent(&failure["Destination"]).as_deref(),
            Some("ModuleDeadLetterQueue"),
            "{name}"
        );
        assert!(
            !props["ReservedConcurrentExecutions"].is_null(),
            "{name}: reserved concurrency is not a parameter"
        );
    }
}

#[test]
fn secrets_are_read_at_cold_start_from_references_never_put_in_the_configuration() {
    let t = template();
    let text = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    // A dynamic reference would resolve the value into the function's configuration.
    assert!(!text.contains("{{resolve:"), "a dynamic reference is left");
    let secret_vars = |k: &str| {
        k.starts_with("SWITCHYARD_SECRET_")
            || k.ends_with("_TOKEN")
            || k.ends_with("_TOKENS")
            || k.ends_with("_WEBHOOK_URL")
            || k.ends_with("_PRIVATE_KEY")
    };
    let mut seen = 0;
    for (name, res) in resources(&t) {
        let vars = &res["Properties"]["Environment"]["Variables"];
        let Some(vars) = vars.as_object() else {
            continue;
        };
        let granted: BTreeSet<String> = statements(res)
            .iter()
            .filter(|st| st["Action"] == "secretsmanager:GetSecretValue")
            .filter_map(|st| referent(&st["Resource"]))
            .collect();
        for (k, v) in vars {
            let k = k.as_str();
            let Some(var) = k.strip_suffix("_SECRET_REF") else {
                assert!(!secret_vars(k), "{name:?}: {k} would hold a secret value");
                continue;
            };
            assert!(
                secret_vars(var),
                "{name:?}: {k} names an unexpected variable"
            );
            // `!If [HasX, !Ref XRef, !Ref AWS::NoValue]` or the `!Ref` alone.
            if let Some(Value::Array(args)) = tag(v, "If") {
                assert_eq!(args[2], no_value(), "{name:?} {k}");
            }
            let Some(Value::String(param)) = tag(if_true(v), "Ref") else {
                panic!("{name:?}: {k} is not a parameter reference: {v:?}");
            };
            assert!(param.ends_with("Ref"), "{name:?}: {k} = {param}");
            assert!(
                granted.contains(&format!("secret:{param}")),
                "{name:?}: reads {param} without secretsmanager:GetSecretValue on it"
            );
            seen += 1;
        }
        // Nothing else may be read.
        for g in &granted {
            let param = g.trim_start_matches("secret:");
            assert!(
                vars.values()
                    .any(|v| tag(if_true(v), "Ref").and_then(Value::as_str) == Some(param)),
                "{name:?}: may read {param}, which it does not use"
            );
        }
    }
    assert!(seen >= 8, "only {seen} secret references");
    for (name, p) in t["Parameters"].as_object().unwrap() {
        let name = name.as_str();
        if name.contains("Secret") || name.contains("Token") {
            assert!(
                name.ends_with("Ref") || name == "SecretsRevision",
                "parameter {name} looks like a secret value"
            );
            assert!(
                p["NoEcho"].is_null(),
                "{name} holds a reference, not a secret"
            );
        }
    }
}

#[test]
fn table_access_is_bound_to_key_prefixes_and_logs_are_kept_for_a_set_time() {
    let t = template();
    let modules = module_functions(&t);
    for (name, res) in resources(&t) {
        if res["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        let name = name.as_str();
        for st in statements(res) {
            let dynamo = as_list(&st["Action"])
                .iter()
                .any(|a| a.as_str().is_some_and(|a| a.starts_with("dynamodb:")));
            if !dynamo {
                continue;
            }
            let keys: Vec<String> =
                as_list(&st["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"])
                    .iter()
                    .filter_map(|k| k.as_str().map(str::to_owned))
                    .collect();
            if modules.contains(name) {
                assert_eq!(keys, ["JOB#*", "PAYLOAD#*"], "{name}");
            } else if name != "ApiFunction" {
                // The API serves every route (registry, settings, listings): it keeps the table.
                assert!(!keys.is_empty(), "{name}: table access without LeadingKeys");
                assert!(keys.iter().all(|k| k != "*"), "{name}: {keys:?}");
            }
        }
        let group = referent(&res["Properties"]["LoggingConfig"]["LogGroup"])
            .unwrap_or_else(|| panic!("{name}: no LogGroup"));
        let group = group.trim_start_matches("param:");
        let g = &t["Resources"][group];
        assert_eq!(g["Type"], "AWS::Logs::LogGroup", "{name}");
        assert_eq!(
            referent(&g["Properties"]["RetentionInDays"]).as_deref(),
            Some("param:LogRetentionDays"),
            "{name}"
        );
    }
}

fn no_value() -> Value {
    json!({ "!Ref": "AWS::NoValue" })
}

#[test]
fn every_api_route_is_wired_to_the_api_function() {
    let t = template();
    let events = t["Resources"]["ApiFunction"]["Properties"]["Events"]
        .as_object()
        .unwrap();
    let wired: BTreeSet<(String, String)> = events
        .values()
        .filter(|e| e["Type"] == "HttpApi")
        .map(|e| {
            let path = e["Properties"]["Path"].as_str().unwrap();
            // API Gateway's greedy `{scope+}` is axum's `{*scope}`, documented as `{scope}`.
            (
                e["Properties"]["Method"].as_str().unwrap().to_owned(),
                path.replace("{scope+}", "{scope}"),
            )
        })
        .collect();
    let routes: BTreeSet<(String, String)> = switchyard::api::ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(wired, routes);
}

#[test]
fn alarms_cover_the_queue_router_signatures_and_modules_and_notify_the_topic() {
    let t = template();
    let alarms: Vec<(&str, &Value)> = resources(&t)
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::CloudWatch::Alarm")
        .map(|(n, r)| (n.as_str(), &r["Properties"]))
        .collect();
    let text = serde_json::to_string(&alarms.iter().map(|(_, p)| *p).collect::<Vec<_>>()).unwrap();
    for needle in [
        "ApproximateNumberOfMessagesVisible",
        "5xx",
        "SignatureFailures",
        "AWS/Lambda",
        "JobsFinished",
    ] {
        assert!(text.contains(needle), "no alarm reads {needle}");
    }
    for (name, props) in alarms {
        for key in ["AlarmActions", "OKActions"] {
            let Some(Value::Array(args)) = tag(&props[key], "If") else {
                panic!("{name}: {key} does not depend on the topic parameter");
            };
            assert_eq!(args[0], "HasAlarmTopic", "{name}");
        }
    }
}
