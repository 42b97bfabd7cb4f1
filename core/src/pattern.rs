//! Payload patterns with EventBridge semantics over dotted paths: exact values, `prefix`,
//! `suffix`, `equals-ignore-case`, `anything-but`, `numeric`, `exists`, `wildcard` and
//! `$or`. A list of patterns on one field matches if any matches; a field that is an array
//! matches if any element matches; every field of a filter must match. Paths reach into
//! arrays: `pull_request.labels.name` is every label's name.

use serde_json::{Map, Value};

/// A compiled `filter:`: every condition must hold.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Filter(Vec<Condition>);

/// One condition of a filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// The values at `path` must match one of `patterns`.
    Field {
        /// Dotted path from the payload root.
        path: String,
        /// Accepted patterns.
        patterns: Vec<Pattern>,
    },
    /// At least one branch must hold.
    Or(Vec<Filter>),
}

/// One pattern on a field.
#[derive(Debug, Clone, PartialEq)]
pub enum Pattern {
    /// Equal to a string, number (numerically), boolean or null.
    Exact(Value),
    /// A string starting with the text.
    Prefix(Text),
    /// A string ending with the text.
    Suffix(Text),
    /// A string equal to the text, ignoring case.
    EqualsIgnoreCase(String),
    /// Present and not matching any of the inner patterns.
    AnythingBut(Vec<Pattern>),
    /// A number within the comparisons (all must hold).
    Numeric(Vec<(Cmp, f64)>),
    /// Present (`true`) or absent (`false`).
    Exists(bool),
    /// A string matching a `*` wildcard.
    Wildcard(String),
}

/// Prefix/suffix text, optionally case-insensitive.
#[derive(Debug, Clone, PartialEq)]
pub struct Text {
    /// The text.
    pub text: String,
    /// Compare ignoring case.
    pub ignore_case: bool,
}

/// A numeric comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// `=`
    Eq,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl Cmp {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "=" => Self::Eq,
            "<" => Self::Lt,
            "<=" => Self::Le,
            ">" => Self::Gt,
            ">=" => Self::Ge,
            _ => return None,
        })
    }
    fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
        }
    }
    fn holds(self, x: f64, y: f64) -> bool {
        match self {
            Self::Eq => x == y,
            Self::Lt => x < y,
            Self::Le => x <= y,
            Self::Gt => x > y,
            Self::Ge => x >= y,
        }
    }
}

/// A filter that could not be compiled: the key path and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    /// Key path below `filter`, e.g. `pull_request.draft` or `$or[1].action`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

const OPERATORS: &[&str] = &[
    "prefix",
    "suffix",
    "equals-ignore-case",
    "anything-but",
    "numeric",
    "exists",
    "wildcard",
];

fn err(key: &str, message: impl Into<String>) -> PatternError {
    PatternError {
        key: key.to_owned(),
        message: message.into(),
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

fn is_operator_object(map: &Map<String, Value>) -> bool {
    map.len() == 1 && map.keys().all(|k| OPERATORS.contains(&k.as_str()))
}

impl Filter {
    /// Compiles a `filter:` map. Keys are dotted paths or nested maps; values are a pattern
    /// or a list of patterns; `$or` takes a list of at least two filters.
    pub fn compile(value: &Value) -> Result<Self, PatternError> {
        let Value::Object(map) = value else {
            return Err(err("", "a filter is a map of paths to patterns"));
        };
        let mut out = Vec::new();
        compile_map(map, "", "", &mut out)?;
        Ok(Self(out))
    }

    /// The conditions.
    pub fn conditions(&self) -> &[Condition] {
        &self.0
    }

    /// Every payload path the filter reads (with those of `$or` branches).
    pub fn paths(&self) -> Vec<&str> {
        let mut out = Vec::new();
        for c in &self.0 {
            match c {
                Condition::Field { path, .. } => out.push(path.as_str()),
                Condition::Or(branches) => out.extend(branches.iter().flat_map(Filter::paths)),
            }
        }
        out
    }

    /// Whether there is no condition.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok` when every condition holds; otherwise the first failing clause, described.
    pub fn check(&self, payload: &Value) -> Result<(), Mismatch> {
        self.first_failure(payload).map_err(Mismatch)
    }

    fn first_failure(&self, payload: &Value) -> Result<(), String> {
        for c in &self.0 {
            match c {
                Condition::Field { path, patterns } => {
                    let values = lookup_all(payload, path);
                    if !field_matches(&values, patterns) {
                        return Err(describe_failure(path, &values, patterns));
                    }
                }
                Condition::Or(branches) => {
                    let mut first = None;
                    let any = branches.iter().any(|b| match b.first_failure(payload) {
                        Ok(()) => true,
                        Err(e) => {
                            first.get_or_insert(e);
                            false
                        }
                    });
                    if !any {
                        return Err(format!(
                            "$or: none of {} branches matched (first: {})",
                            branches.len(),
                            first.unwrap_or_default()
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

// `key` is the position in the manifest for errors; `path` the payload path so far.
fn compile_map(
    map: &Map<String, Value>,
    key: &str,
    path: &str,
    out: &mut Vec<Condition>,
) -> Result<(), PatternError> {
    for (k, v) in map {
        let here = join(key, k);
        if k == "$or" {
            let Value::Array(branches) = v else {
                return Err(err(&here, "$or takes a list of at least two filters"));
            };
            if branches.len() < 2 {
                return Err(err(&here, "$or needs at least two branches"));
            }
            let mut compiled = Vec::new();
            for (i, b) in branches.iter().enumerate() {
                let bkey = format!("{here}[{i}]");
                let Value::Object(bm) = b else {
                    return Err(err(&bkey, "each $or branch is a map of paths to patterns"));
                };
                if bm.is_empty() {
                    return Err(err(&bkey, "an empty $or branch matches everything"));
                }
                let mut conds = Vec::new();
                compile_map(bm, &bkey, path, &mut conds)?;
                compiled.push(Filter(conds));
            }
            out.push(Condition::Or(compiled));
            continue;
        }
        if k.is_empty() || k.split('.').any(str::is_empty) || k.starts_with('$') {
            return Err(err(&here, format!("bad path `{k}`")));
        }
        let field = join(path, k);
        match v {
            Value::Object(m) if !is_operator_object(m) => {
                if m.is_empty() {
                    return Err(err(&here, "an empty map matches nothing"));
                }
                compile_map(m, &here, &field, out)?;
            }
            Value::Array(items) => {
                if items.is_empty() {
                    return Err(err(&here, "an empty list matches nothing"));
                }
                let patterns = items
                    .iter()
                    .map(|p| compile_pattern(p, &here))
                    .collect::<Result<_, _>>()?;
                out.push(Condition::Field {
                    path: field,
                    patterns,
                });
            }
            single => out.push(Condition::Field {
                path: field,
                patterns: vec![compile_pattern(single, &here)?],
            }),
        }
    }
    Ok(())
}

fn string_arg(v: &Value, key: &str, op: &str) -> Result<String, PatternError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        _ => Err(err(key, format!("`{op}` takes a string"))),
    }
}

fn text_arg(v: &Value, key: &str, op: &str) -> Result<Text, PatternError> {
    match v {
        Value::String(s) => Ok(Text {
            text: s.clone(),
            ignore_case: false,
        }),
        Value::Object(m) if m.len() == 1 && m.contains_key("equals-ignore-case") => Ok(Text {
            text: string_arg(&m["equals-ignore-case"], key, op)?,
            ignore_case: true,
        }),
        _ => Err(err(
            key,
            format!("`{op}` takes a string or {{equals-ignore-case: string}}"),
        )),
    }
}

fn compile_pattern(p: &Value, key: &str) -> Result<Pattern, PatternError> {
    let Value::Object(m) = p else {
        return match p {
            Value::Array(_) => Err(err(key, "nested lists are not patterns")),
            v => Ok(Pattern::Exact(v.clone())),
        };
    };
    if m.len() != 1 {
        return Err(err(
            key,
            format!(
                "a pattern has exactly one operator, one of {}",
                OPERATORS.join(", ")
            ),
        ));
    }
    let Some((op, arg)) = m.iter().next() else {
        return Err(err(key, "empty pattern"));
    };
    Ok(match op.as_str() {
        "prefix" => Pattern::Prefix(text_arg(arg, key, op)?),
        "suffix" => Pattern::Suffix(text_arg(arg, key, op)?),
        "equals-ignore-case" => Pattern::EqualsIgnoreCase(string_arg(arg, key, op)?),
        "wildcard" => Pattern::Wildcard(string_arg(arg, key, op)?),
        "exists" => match arg {
            Value::Bool(b) => Pattern::Exists(*b),
            _ => return Err(err(key, "`exists` takes true or false")),
        },
        "numeric" => Pattern::Numeric(compile_numeric(arg, key)?),
        "anything-but" => Pattern::AnythingBut(compile_anything_but(arg, key)?),
        other => {
            return Err(err(
                key,
                format!(
                    "unknown operator `{other}`; one of {}",
                    OPERATORS.join(", ")
                ),
            ));
        }
    })
}

fn compile_numeric(arg: &Value, key: &str) -> Result<Vec<(Cmp, f64)>, PatternError> {
    let bad = || {
        err(
            key,
            "`numeric` takes [op, number] or [op, number, op, number] with ops =, <, <=, >, >=",
        )
    };
    let Value::Array(items) = arg else {
        return Err(bad());
    };
    if items.is_empty() || items.len() % 2 != 0 || items.len() > 4 {
        return Err(bad());
    }
    let mut out = Vec::new();
    for pair in items.chunks(2) {
        let op = pair[0].as_str().and_then(Cmp::parse).ok_or_else(bad)?;
        let n = pair[1].as_f64().ok_or_else(bad)?;
        out.push((op, n));
    }
    if let [(a, x), (b, y)] = out.as_slice() {
        let lower = matches!(a, Cmp::Gt | Cmp::Ge);
        let upper = matches!(b, Cmp::Lt | Cmp::Le);
        if !lower || !upper {
            return Err(err(
                key,
                "a numeric range is a lower bound (> or >=) then an upper bound (< or <=)",
            ));
        }
        if x > y {
            return Err(err(
                key,
                "numeric range: the lower bound is above the upper bound",
            ));
        }
    }
    Ok(out)
}

fn compile_anything_but(arg: &Value, key: &str) -> Result<Vec<Pattern>, PatternError> {
    match arg {
        Value::Array(items) => {
            if items.is_empty() {
                return Err(err(
                    key,
                    "`anything-but` with an empty list excludes nothing",
                ));
            }
            items
                .iter()
                .map(|v| match v {
                    Value::Object(_) | Value::Array(_) => {
                        Err(err(key, "`anything-but` lists take plain values"))
                    }
                    v => Ok(Pattern::Exact(v.clone())),
                })
                .collect()
        }
        Value::Object(m) if m.len() == 1 => {
            let (op, inner) = m
                .iter()
                .next()
                .ok_or_else(|| err(key, "empty anything-but"))?;
            match op.as_str() {
                "prefix" => Ok(vec![Pattern::Prefix(text_arg(inner, key, op)?)]),
                "suffix" => Ok(vec![Pattern::Suffix(text_arg(inner, key, op)?)]),
                "wildcard" => Ok(vec![Pattern::Wildcard(string_arg(inner, key, op)?)]),
                "equals-ignore-case" => match inner {
                    Value::Array(list) => list
                        .iter()
                        .map(|s| string_arg(s, key, op).map(Pattern::EqualsIgnoreCase))
                        .collect(),
                    s => Ok(vec![Pattern::EqualsIgnoreCase(string_arg(s, key, op)?)]),
                },
                other => Err(err(key, format!("`anything-but` does not take `{other}`"))),
            }
        }
        Value::Object(_) => Err(err(
            key,
            "`anything-but` takes a value, a list, or one of prefix/suffix/wildcard/equals-ignore-case",
        )),
        v => Ok(vec![Pattern::Exact(v.clone())]),
    }
}

/// Every value at a dotted path; arrays met on the way (or at the end) are flattened, so
/// `labels.name` yields each label's name.
pub fn lookup_all<'v>(value: &'v Value, path: &str) -> Vec<&'v Value> {
    let mut current = vec![value];
    for seg in path.split('.') {
        let mut next = Vec::new();
        for v in current {
            collect(v, seg, &mut next);
        }
        current = next;
        if current.is_empty() {
            break;
        }
    }
    let mut leaves = Vec::new();
    for v in current {
        match v {
            Value::Array(items) => leaves.extend(items.iter()),
            v => leaves.push(v),
        }
    }
    leaves
}

fn collect<'v>(v: &'v Value, seg: &str, out: &mut Vec<&'v Value>) {
    match v {
        Value::Object(m) => {
            if let Some(x) = m.get(seg) {
                out.push(x);
            }
        }
        Value::Array(items) => {
            if let Ok(i) = seg.parse::<usize>() {
                if let Some(x) = items.get(i) {
                    out.push(x);
                }
            } else {
                for item in items {
                    collect(item, seg, out);
                }
            }
        }
        _ => {}
    }
}

fn numbers_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn wildcard_matches(pattern: &str, s: &str) -> bool {
    // Only `*` is special (any run of characters). Iterative matching with backtracking
    // to the last star keeps it linear in practice.
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = s.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

fn text_matches(t: &Text, s: &str, at_start: bool) -> bool {
    if t.ignore_case {
        let (s, x) = (s.to_lowercase(), t.text.to_lowercase());
        if at_start {
            s.starts_with(&x)
        } else {
            s.ends_with(&x)
        }
    } else if at_start {
        s.starts_with(&t.text)
    } else {
        s.ends_with(&t.text)
    }
}

/// Whether one value matches one pattern (presence is handled by the caller).
fn value_matches(v: &Value, p: &Pattern) -> bool {
    match p {
        Pattern::Exact(want) => numbers_equal(want, v),
        Pattern::Prefix(t) => v.as_str().is_some_and(|s| text_matches(t, s, true)),
        Pattern::Suffix(t) => v.as_str().is_some_and(|s| text_matches(t, s, false)),
        Pattern::EqualsIgnoreCase(t) => v
            .as_str()
            .is_some_and(|s| s.to_lowercase() == t.to_lowercase()),
        Pattern::Wildcard(w) => v.as_str().is_some_and(|s| wildcard_matches(w, s)),
        Pattern::Numeric(cmps) => v
            .as_f64()
            .filter(|_| v.is_number())
            .is_some_and(|x| cmps.iter().all(|(op, y)| op.holds(x, *y))),
        Pattern::AnythingBut(inner) => !inner.iter().any(|i| value_matches(v, i)),
        Pattern::Exists(_) => true,
    }
}

fn field_matches(values: &[&Value], patterns: &[Pattern]) -> bool {
    patterns.iter().any(|p| match p {
        Pattern::Exists(want) => values.is_empty() != *want,
        p => values.iter().any(|v| value_matches(v, p)),
    })
}

fn describe_pattern(p: &Pattern) -> String {
    let text = |t: &Text| {
        if t.ignore_case {
            format!("{{equals-ignore-case: {:?}}}", t.text)
        } else {
            format!("{:?}", t.text)
        }
    };
    match p {
        Pattern::Exact(v) => v.to_string(),
        Pattern::Prefix(t) => format!("prefix {}", text(t)),
        Pattern::Suffix(t) => format!("suffix {}", text(t)),
        Pattern::EqualsIgnoreCase(s) => format!("equals-ignore-case {s:?}"),
        Pattern::Wildcard(w) => format!("wildcard {w:?}"),
        Pattern::Exists(b) => format!("exists {b}"),
        Pattern::Numeric(c) => {
            let parts: Vec<String> = c
                .iter()
                .map(|(op, n)| format!("{} {n}", op.as_str()))
                .collect();
            format!("numeric {}", parts.join(" and "))
        }
        Pattern::AnythingBut(inner) => {
            let parts: Vec<String> = inner.iter().map(describe_pattern).collect();
            format!("anything-but {}", parts.join(", "))
        }
    }
}

fn describe_failure(path: &str, values: &[&Value], patterns: &[Pattern]) -> String {
    let want = if patterns.len() == 1 {
        describe_pattern(&patterns[0])
    } else {
        let parts: Vec<String> = patterns.iter().map(describe_pattern).collect();
        format!("one of [{}]", parts.join(", "))
    };
    let got = match values {
        [] => "absent".to_owned(),
        [one] => one.to_string(),
        many => {
            let parts: Vec<String> = many.iter().take(5).map(|v| v.to_string()).collect();
            format!(
                "[{}{}]",
                parts.join(", "),
                if many.len() > 5 { ", ..." } else { "" }
            )
        }
    };
    let verb = match patterns {
        [Pattern::AnythingBut(_)] => "is",
        _ => "is not",
    };
    format!("filter {path}: {got} {verb} {want}")
}

crate::message_error! {
    /// The first clause of a filter a payload fails, described for a skip reason.
    Mismatch
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn payload() -> Value {
        json!({
            "action": "opened",
            "number": 12,
            "size": "12",
            "score": 4.5,
            "draft": false,
            "merged_by": null,
            "title": "Fix: Crash on start",
            "pull_request": {
                "base": {"ref": "release/1.2"},
                "labels": [{"name": "bug"}, {"name": "ui"}],
                "tags": ["a", "b"]
            },
            "repository": {"full_name": "acme/widgets", "topics": []}
        })
    }

    fn matches(filter: Value) -> bool {
        Filter::compile(&filter).unwrap().check(&payload()).is_ok()
    }

    #[test]
    fn each_operator_matches_as_eventbridge_does() {
        let cases: Vec<(Value, bool)> = vec![
            // exact values
            (json!({"action": "opened"}), true),
            (json!({"action": ["closed", "opened"]}), true),
            (json!({"action": ["closed"]}), false),
            (json!({"number": 12}), true),
            (json!({"number": 12.0}), true),
            (json!({"number": "12"}), false),
            (json!({"size": 12}), false),
            (json!({"draft": false}), true),
            (json!({"merged_by": null}), true),
            (json!({"missing": null}), false),
            // prefix / suffix / equals-ignore-case
            (
                json!({"pull_request.base.ref": [{"prefix": "release/"}]}),
                true,
            ),
            (
                json!({"pull_request.base.ref": [{"prefix": "Release/"}]}),
                false,
            ),
            (
                json!({"pull_request.base.ref": [{"prefix": {"equals-ignore-case": "RELEASE/"}}]}),
                true,
            ),
            (json!({"pull_request.base.ref": [{"suffix": ".2"}]}), true),
            (
                json!({"title": [{"suffix": {"equals-ignore-case": "START"}}]}),
                true,
            ),
            (
                json!({"title": [{"equals-ignore-case": "fix: crash on start"}]}),
                true,
            ),
            (json!({"number": [{"prefix": "1"}]}), false),
            // anything-but: a value, a list, prefix; absent fields never match
            (json!({"action": [{"anything-but": "closed"}]}), true),
            (
                json!({"action": [{"anything-but": ["opened", "closed"]}]}),
                false,
            ),
            (
                json!({"action": [{"anything-but": {"prefix": "op"}}]}),
                false,
            ),
            (
                json!({"action": [{"anything-but": {"suffix": "ed"}}]}),
                false,
            ),
            (
                json!({"action": [{"anything-but": {"equals-ignore-case": ["OPENED"]}}]}),
                false,
            ),
            (json!({"draft": [{"anything-but": true}]}), true),
            (json!({"missing": [{"anything-but": "x"}]}), false),
            (json!({"number": [{"anything-but": [1, 2]}]}), true),
            // numeric: numbers only, ranges
            (json!({"number": [{"numeric": [">", 0, "<=", 12]}]}), true),
            (json!({"number": [{"numeric": [">", 12]}]}), false),
            (json!({"number": [{"numeric": ["=", 12]}]}), true),
            (json!({"score": [{"numeric": [">=", 4.5]}]}), true),
            (json!({"size": [{"numeric": [">", 0]}]}), false),
            (json!({"missing": [{"numeric": [">", 0]}]}), false),
            // exists
            (json!({"number": [{"exists": true}]}), true),
            (json!({"missing": [{"exists": false}]}), true),
            (json!({"missing": [{"exists": true}]}), false),
            (json!({"number": [{"exists": false}]}), false),
            (json!({"repository.topics": [{"exists": false}]}), true),
            // wildcard
            (
                json!({"pull_request.base.ref": [{"wildcard": "release/*"}]}),
                true,
            ),
            (
                json!({"pull_request.base.ref": [{"wildcard": "*1.*"}]}),
                true,
            ),
            (
                json!({"pull_request.base.ref": [{"wildcard": "main*"}]}),
                false,
            ),
            // arrays: any element; paths through arrays
            (json!({"pull_request.labels.name": "ui"}), true),
            (json!({"pull_request.labels.name": ["docs", "bug"]}), true),
            (json!({"pull_request.labels.name": "docs"}), false),
            (json!({"pull_request.tags": "b"}), true),
            (json!({"pull_request.labels.0.name": "bug"}), true),
            (
                json!({"pull_request.labels.name": [{"anything-but": "bug"}]}),
                true,
            ),
            // nested maps, all fields must match
            (
                json!({"pull_request": {"base": {"ref": [{"prefix": "release"}]}}, "draft": false}),
                true,
            ),
            (
                json!({"pull_request": {"base": {"ref": [{"prefix": "release"}]}}, "draft": true}),
                false,
            ),
            // $or, nested
            (
                json!({"$or": [{"action": "closed"}, {"number": [{"numeric": [">", 10]}]}]}),
                true,
            ),
            (
                json!({"$or": [{"action": "closed"}, {"number": [{"numeric": [">", 100]}]}]}),
                false,
            ),
            (
                json!({"$or": [{"action": "closed"}, {"$or": [{"draft": true}, {"title": [{"prefix": "Fix"}]}]}]}),
                true,
            ),
            (
                json!({"pull_request": {"$or": [{"base.ref": "main"}, {"labels.name": "ui"}]}}),
                true,
            ),
        ];
        for (filter, want) in cases {
            assert_eq!(matches(filter.clone()), want, "{filter}");
        }
    }

    #[test]
    fn failures_name_the_clause() {
        let f = Filter::compile(&json!({"draft": [{"anything-but": false}]})).unwrap();
        assert_eq!(
            f.check(&payload()).unwrap_err().0,
            "filter draft: false is anything-but false"
        );
        let f = Filter::compile(&json!({"action": ["closed", "reopened"]})).unwrap();
        assert_eq!(
            f.check(&payload()).unwrap_err().0,
            "filter action: \"opened\" is not one of [\"closed\", \"reopened\"]"
        );
        let f = Filter::compile(&json!({"missing.key": 1})).unwrap();
        assert_eq!(
            f.check(&payload()).unwrap_err().0,
            "filter missing.key: absent is not 1"
        );
        let f = Filter::compile(&json!({"$or": [{"action": "x"}, {"number": 1}]})).unwrap();
        assert!(
            f.check(&payload())
                .unwrap_err()
                .0
                .starts_with("$or: none of 2 branches matched")
        );
    }

    #[test]
    fn bad_patterns_are_errors_naming_the_key() {
        let cases = [
            (json!({"a": [{"prefix": 1}]}), "a"),
            (json!({"a": [{"numeric": [">", "x"]}]}), "a"),
            (json!({"a": [{"numeric": ["<", 5, ">", 1]}]}), "a"),
            (json!({"a": [{"numeric": [">", 9, "<", 1]}]}), "a"),
            (json!({"a": [{"exists": "yes"}]}), "a"),
            (json!({"a": [{"bogus": 1}]}), "a"),
            (json!({"a": [{"prefix": "x", "suffix": "y"}]}), "a"),
            (json!({"a": []}), "a"),
            (json!({"a": [[1]]}), "a"),
            (json!({"a": [{"anything-but": []}]}), "a"),
            (json!({"a": [{"anything-but": {"numeric": [">", 1]}}]}), "a"),
            (json!({"$or": [{"a": 1}]}), "$or"),
            (json!({"$or": []}), "$or"),
            (json!({"$or": "x"}), "$or"),
            (json!({"$or": [{"a": 1}, {}]}), "$or[1]"),
            (
                json!({"b": {"$or": [{"a": [{"exists": 1}]}, {"c": 1}]}}),
                "b.$or[0].a",
            ),
            (json!({"a..b": 1}), "a..b"),
        ];
        for (filter, key) in cases {
            let e = Filter::compile(&filter).unwrap_err();
            assert_eq!(e.key, key, "{filter}: {e:?}");
        }
    }

    #[test]
    fn wildcards_backtrack() {
        assert!(wildcard_matches("*a*b*", "xxaxxbxx"));
        assert!(wildcard_matches("a*", "a"));
        assert!(!wildcard_matches("a*c", "abcd"));
        assert!(wildcard_matches("", ""));
    }
}
