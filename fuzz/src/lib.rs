//! Input shaping shared by the fuzz targets: one input is cut into fields at newlines, the
//! last field taking the rest (a body may hold newlines), so seeds stay readable text.

use http::{HeaderMap, HeaderName, HeaderValue};

/// The first `n - 1` newline-terminated fields of `data`, then the rest as the last field.
/// Missing fields are empty.
pub fn fields(data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut out = Vec::with_capacity(n);
    let mut rest = data;
    for _ in 1..n {
        match rest.iter().position(|&b| b == b'\n') {
            Some(i) => {
                out.push(&rest[..i]);
                rest = &rest[i + 1..];
            }
            None => {
                out.push(rest);
                rest = &[];
            }
        }
    }
    out.push(rest);
    out
}

/// Headers from `(name, value)` pairs; a value that HTTP would not carry is left out, as a
/// server would never hand it to the router.
pub fn headers(pairs: &[(&'static str, &[u8])]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            map.append(HeaderName::from_static(name), value);
        }
    }
    map
}

/// The headers `switchyard_core::signature::sign` returns, as a request would carry them.
pub fn signed_headers(pairs: &[(String, String)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.to_lowercase().as_bytes()),
            HeaderValue::from_str(value),
        ) {
            map.append(name, value);
        }
    }
    map
}

/// The text of a field, lossily (the parsers under test take `&str`).
pub fn text(field: &[u8]) -> String {
    String::from_utf8_lossy(field).into_owned()
}
