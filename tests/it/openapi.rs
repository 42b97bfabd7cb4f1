//! `docs/openapi.yaml` against the apps: every route is documented (and nothing else), and
//! every answer the integration tests receive, through `Api::call` and `TestApp::send`, has
//! a documented status and a body that matches its schema (`check`).

use std::collections::BTreeSet;
use std::sync::OnceLock;

use serde_json::Value;

fn doc() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        switchyard::yaml::Document::parse(include_str!("../../docs/openapi.yaml"))
            .expect("openapi.yaml parses")
            .value
    })
}

fn resolve(v: &Value) -> &Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let mut at = doc();
            for part in r.trim_start_matches("#/").split('/') {
                at = &at[part];
            }
            assert!(!at.is_null(), "dangling $ref {r}");
            resolve(at)
        }
        None => v,
    }
}

fn type_matches(v: &Value, t: &str) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        other => panic!("unknown schema type {other}"),
    }
}

/// Validates `v` against the subset of JSON Schema the document uses.
fn validate(v: &Value, schema: &Value, at: &str) -> Result<(), String> {
    let schema = resolve(schema);
    if let Some(c) = schema.get("const") {
        if v != c {
            return Err(format!("{at}: {v} is not {c}"));
        }
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array) {
        if !options.contains(v) {
            return Err(format!("{at}: {v} is not one of {options:?}"));
        }
    }
    match schema.get("type") {
        Some(Value::String(t)) if !type_matches(v, t) => {
            return Err(format!("{at}: {v} is not {t}"));
        }
        Some(Value::Array(ts)) if !ts.iter().any(|t| type_matches(v, t.as_str().unwrap_or(""))) => {
            return Err(format!("{at}: {v} is none of {ts:?}"));
        }
        _ => {}
    }
    if let Some(obj) = v.as_object() {
        let props = schema.get("properties").and_then(Value::as_object);
        for req in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = req.as_str().unwrap_or_default();
            if !obj.contains_key(name) {
                return Err(format!("{at}: missing required `{name}`"));
            }
        }
        for (k, value) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(s) => validate(value, s, &format!("{at}.{k}"))?,
                None => match schema.get("additionalProperties") {
                    Some(Value::Bool(false)) => {
                        return Err(format!("{at}: undocumented property `{k}`"));
                    }
                    Some(s @ Value::Object(_)) => validate(value, s, &format!("{at}.{k}"))?,
                    _ => {}
                },
            }
        }
    }
    if let (Some(items), Some(list)) = (schema.get("items"), v.as_array()) {
        for (i, item) in list.iter().enumerate() {
            validate(item, items, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

/// The documented path template a concrete path falls under (`{scope}` takes the rest).
fn template_of(path: &str) -> Option<&'static str> {
    let path = path.split('?').next().unwrap_or(path);
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    doc()["paths"].as_object()?.keys().find_map(|tpl| {
        let parts: Vec<&str> = tpl.trim_start_matches('/').split('/').collect();
        let rest = parts.last().is_some_and(|p| *p == "{scope}");
        let fits = if rest {
            segs.len() >= parts.len()
        } else {
            segs.len() == parts.len()
        };
        let same = fits
            && parts
                .iter()
                .zip(&segs)
                .all(|(p, s)| (p.starts_with('{') && !s.is_empty()) || p == s);
        same.then_some(tpl.as_str())
    })
}

/// Panics unless the answer is documented: its status for the route, its body by schema.
/// Unknown routes and methods may answer 404 and 405 with the error body.
pub fn check(method: &str, path: &str, status: u16, body: &Value) {
    let error = &doc()["components"]["schemas"]["Error"];
    let op = template_of(path).and_then(|t| doc()["paths"][t].get(method.to_lowercase()));
    let Some(op) = op else {
        assert!(
            matches!(status, 404 | 405),
            "{method} {path} is not documented but answered {status}"
        );
        validate(body, error, "body").unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        return;
    };
    let Some(response) = op["responses"].get(status.to_string()) else {
        panic!("{method} {path} answered {status}, which is not documented: {body}");
    };
    let schema = &resolve(response)["content"]["application/json"]["schema"];
    validate(body, schema, "body").unwrap_or_else(|e| {
        panic!("{method} {path} {status} does not match its schema: {e}\n{body}")
    });
}

#[test]
fn every_route_is_documented_and_nothing_else() {
    let mut routes: BTreeSet<(String, String)> = switchyard::api::ROUTES
        .iter()
        .map(|(m, p)| (m.to_lowercase(), (*p).to_owned()))
        .collect();
    routes.insert(("post".into(), "/webhooks/{source}".into()));
    let mut documented = BTreeSet::new();
    for (path, item) in doc()["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "delete", "patch"] {
            if item.get(method).is_some() {
                documented.insert((method.to_owned(), path.clone()));
            }
        }
    }
    assert_eq!(routes, documented);
}

#[test]
fn the_checker_refuses_what_the_document_does_not_say() {
    use serde_json::json;
    let ok = json!({"code": "not_found", "message": "no job"});
    check("GET", "/jobs/x", 404, &ok);
    check("GET", "/admin/settings/repo/a/b", 404, &ok);
    let r = std::panic::catch_unwind(|| check("GET", "/jobs/x", 418, &ok));
    assert!(r.is_err(), "undocumented status");
    let r = std::panic::catch_unwind(|| check("GET", "/jobs/x", 404, &json!({"code": 1})));
    assert!(r.is_err(), "body off schema");
    let r = std::panic::catch_unwind(|| {
        check(
            "GET",
            "/jobs",
            200,
            &json!({"items": [{"job_id": "x"}], "next_cursor": null}),
        )
    });
    assert!(r.is_err(), "missing required fields");
    check(
        "GET",
        "/jobs",
        200,
        &json!({"items": [], "next_cursor": null}),
    );
}
