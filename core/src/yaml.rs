//! YAML (and JSON) documents for the manifest compiler: parsed with saphyr, which keeps the
//! position of every node, into a `serde_json::Value` plus the line of every key path
//! (`triggers[0].webhook.filter.pull_request.draft`), so an error names its line.

use std::collections::HashMap;

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};
use serde_json::{Map, Number, Value};

/// Largest nesting the converter follows (manifests are a few levels deep); deeper is an
/// error, never a stack overflow.
pub const MAX_DEPTH: usize = 64;

/// A parsed document: its value and where each key path starts.
#[derive(Debug, Default)]
pub struct Document {
    /// The document as JSON values (null for an empty document).
    pub value: Value,
    lines: HashMap<String, usize>,
}

/// Why a document does not parse, with its 1-based line when known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct YamlError {
    /// 1-based line.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl Document {
    /// Parses `text` (one YAML document; JSON is YAML). Aliases (`*name`) are refused
    /// before anything is built: expanding them is how a few bytes become gigabytes.
    pub fn parse(text: &str) -> Result<Self, YamlError> {
        for event in saphyr_parser::Parser::new_from_str(text) {
            match event {
                Ok((saphyr_parser::Event::Alias(_), span)) => {
                    return Err(YamlError {
                        line: Some(span.start.line()),
                        message: "aliases (`*name`) are not supported".into(),
                    });
                }
                Ok(_) => {}
                // The loader below reports it, with its position.
                Err(_) => break,
            }
        }
        let docs = MarkedYaml::load_from_str(text).map_err(|e| YamlError {
            line: Some(e.marker().line()),
            message: e.info().to_owned(),
        })?;
        if docs.len() > 1 {
            return Err(YamlError {
                line: Some(docs[1].span.start.line()),
                message: "one YAML document per file".into(),
            });
        }
        let mut doc = Document::default();
        if let Some(root) = docs.first() {
            doc.value = doc.convert(root, String::new(), 0)?;
        }
        Ok(doc)
    }

    /// The 1-based line of `path`, or of its deepest ancestor that is there.
    pub fn line(&self, path: &str) -> Option<usize> {
        let mut path = path;
        loop {
            if let Some(line) = self.lines.get(path) {
                return Some(*line);
            }
            path = &path[..path.rfind(['.', '['])?];
        }
    }

    fn convert(
        &mut self,
        node: &MarkedYaml<'_>,
        path: String,
        depth: usize,
    ) -> Result<Value, YamlError> {
        let fail = |message: String| YamlError {
            line: Some(node.span.start.line()),
            message,
        };
        if depth > MAX_DEPTH {
            return Err(fail(format!("nested deeper than {MAX_DEPTH} levels")));
        }
        Ok(match &node.data {
            YamlData::Value(scalar) => scalar_value(scalar)
                .ok_or_else(|| fail("a number JSON cannot hold (inf or NaN)".into()))?,
            YamlData::Sequence(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let at = format!("{path}[{i}]");
                    self.lines.insert(at.clone(), item.span.start.line());
                    out.push(self.convert(item, at, depth + 1)?);
                }
                Value::Array(out)
            }
            YamlData::Mapping(entries) => {
                let mut out = Map::new();
                for (key, item) in entries {
                    let name = match &key.data {
                        YamlData::Value(Scalar::String(s)) => s.to_string(),
                        YamlData::Value(scalar) => match scalar_value(scalar) {
                            Some(Value::String(s)) => s,
                            Some(other) => other.to_string(),
                            None => return Err(fail("a key JSON cannot hold".into())),
                        },
                        _ => return Err(fail("mapping keys are scalars".into())),
                    };
                    let at = if path.is_empty() {
                        name.clone()
                    } else {
                        format!("{path}.{name}")
                    };
                    self.lines.insert(at.clone(), key.span.start.line());
                    let value = self.convert(item, at, depth + 1)?;
                    out.insert(name, value);
                }
                Value::Object(out)
            }
            YamlData::Tagged(_, inner) => self.convert(inner, path, depth + 1)?,
            YamlData::Alias(_) => {
                return Err(fail("aliases (`*name`) are not supported".into()));
            }
            YamlData::Representation(..) | YamlData::BadValue => {
                return Err(fail("a value that does not parse".into()));
            }
        })
    }
}

fn scalar_value(scalar: &Scalar<'_>) -> Option<Value> {
    Some(match scalar {
        Scalar::Null => Value::Null,
        Scalar::Boolean(b) => Value::Bool(*b),
        Scalar::Integer(i) => Value::Number((*i).into()),
        Scalar::FloatingPoint(f) => Value::Number(Number::from_f64(f.into_inner())?),
        Scalar::String(s) => Value::String(s.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_key_lines() {
        let doc = Document::parse(
            "name: x\ntriggers:\n  - webhook:\n      event: push\n      filter:\n        a.b: [1, 2.5, true, null]\n",
        )
        .unwrap();
        assert_eq!(
            doc.value,
            serde_json::json!({"name": "x", "triggers": [{"webhook": {"event": "push", "filter": {"a.b": [1, 2.5, true, null]}}}]})
        );
        assert_eq!(doc.line("name"), Some(1));
        assert_eq!(doc.line("triggers[0].webhook.event"), Some(4));
        assert_eq!(doc.line("triggers[0].webhook.filter.a.b"), Some(6));
        // A path below what is there: its deepest ancestor.
        assert_eq!(doc.line("triggers[0].webhook.nope.deeper"), Some(3));
        assert_eq!(doc.line("absent"), None);
    }

    #[test]
    fn bad_documents_are_errors_with_a_line() {
        for (text, line) in [
            ("a: 1\na: 2\n", 2),
            ("a: [1\n", 2),
            ("a: &x 1\nb: *x\n", 2),
            ("a: 1\n---\nb: 2\n", 3),
        ] {
            let Err(e) = Document::parse(text) else {
                panic!("{text:?} parsed");
            };
            assert_eq!(e.line, Some(line), "{text:?}: {e}");
        }
        let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
        assert!(Document::parse(&deep).is_err());
        assert_eq!(Document::parse("").unwrap().value, Value::Null);
    }
}
