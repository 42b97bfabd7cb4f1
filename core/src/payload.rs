//! An event's payload: the JSON text as it came, checked in one pass that also picks out
//! the paths routing reads, so a delivery is matched and forwarded without building its
//! whole tree; the tree is parsed the first time something asks for it.
//!
//! [`Payload::parse`] accepts exactly what `serde_json::from_slice::<Value>` accepts (same
//! grammar, depth limit 127, UTF-8, numbers in `f64` range, paired surrogates); the
//! `payload` fuzz target holds the two to that. The paths it picks (normalization's, and
//! those the registry's filters and entity templates name: [`PayloadPaths`]) form a
//! [`Payload::view`]: a tree with only those paths, equal to the full payload along every
//! one of them (an array met on a path is kept whole, as filters reach into arrays).

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The paths normalization reads ([`crate::event::normalize`]), per forge.
const NORMALIZE_PATHS: &[&str] = &[
    "action",
    "type",
    "number",
    "ref",
    "repository.full_name",
    "project.path_with_namespace",
    "pull_request.number",
    "pull_request.base.ref",
    "issue.number",
    "object_attributes.action",
    "object_attributes.iid",
    "object_attributes.target_branch",
    "commits",
    "total_commits_count",
    "total_commits",
    "sender.login",
    "sender.username",
    "sender.type",
    "user.username",
    "user_username",
];

/// serde_json's nesting limit: 127 levels parse, 128 do not.
const MAX_DEPTH: u32 = 127;

/// A set of dotted payload paths to pick out while checking a body: normalization's plus
/// those a registry names. Built once per registry.
#[derive(Clone, PartialEq, Eq)]
pub struct PayloadPaths {
    set: BTreeSet<String>,
    root: Node,
}

#[derive(Clone, Default, PartialEq, Eq)]
struct Node {
    /// A path ends here: the whole value is kept.
    end: bool,
    /// Few per node: a list searched in order beats a map here.
    children: Vec<(String, Node)>,
}

impl Node {
    #[inline]
    fn child(&self, key: &str) -> Option<&Node> {
        self.children
            .iter()
            .find(|(k, _)| k.len() == key.len() && k == key)
            .map(|(_, n)| n)
    }

    fn child_mut(&mut self, key: &str) -> &mut Node {
        let at = match self.children.iter().position(|(k, _)| k == key) {
            Some(at) => at,
            None => {
                self.children.push((key.to_owned(), Node::default()));
                self.children.len() - 1
            }
        };
        &mut self.children[at].1
    }
}

impl PayloadPaths {
    /// Normalization's paths and `extra`.
    pub fn with<'a>(extra: impl IntoIterator<Item = &'a str>) -> Self {
        let set: BTreeSet<String> = NORMALIZE_PATHS
            .iter()
            .copied()
            .chain(extra)
            .map(str::to_owned)
            .collect();
        let mut root = Node::default();
        for path in &set {
            let node = path
                .split('.')
                .fold(&mut root, |node, seg| node.child_mut(seg));
            node.end = true;
        }
        Self { set, root }
    }

    /// Whether every path of `other` is one of these.
    pub fn covers(&self, other: &PayloadPaths) -> bool {
        std::ptr::eq(self, other) || other.set.is_subset(&self.set)
    }

    /// The paths, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.set.iter().map(String::as_str)
    }
}

impl Default for PayloadPaths {
    /// Normalization's paths alone.
    fn default() -> Self {
        Self::with([])
    }
}

impl fmt::Debug for PayloadPaths {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(&self.set).finish()
    }
}

/// Why a body is not JSON, with where (the sender's mistake: 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} at line {line} column {column}")]
pub struct PayloadError {
    /// What is wrong.
    pub reason: &'static str,
    /// 1-based line of the offending byte.
    pub line: usize,
    /// 1-based column (in bytes) of the offending byte.
    pub column: usize,
}

/// A JSON payload: the checked text as received (when there is one) and the tree, parsed
/// from it on first use. Reading goes through `Deref<Target = Value>`; changing it
/// (`DerefMut`, or assigning a `Value` with `.into()`) drops the text, and it is written
/// from the tree from then on.
pub struct Payload {
    /// The checked text; `None` once the payload is a tree of its own.
    raw: Option<Arc<str>>,
    /// The tree parsed from `raw`, on first use.
    parsed: OnceLock<Value>,
    /// The tree when there is no text.
    owned: Value,
    /// Shared by clones (the event hooks get one per delivery): it is never changed.
    view: Option<Arc<View>>,
}

#[derive(Clone)]
struct View {
    paths: Arc<PayloadPaths>,
    value: Value,
}

impl Payload {
    /// Checks `body` as JSON and keeps it as text, picking out `paths` as it goes. One pass
    /// over the bytes; the tree is not built.
    pub fn parse(body: &[u8], paths: &Arc<PayloadPaths>) -> Result<Self, PayloadError> {
        let text = std::str::from_utf8(body)
            .map_err(|e| error_at(body, e.valid_up_to(), "invalid UTF-8"))?;
        let mut scan = Scan {
            s: text,
            b: body,
            i: 0,
            failure: (0, ""),
        };
        scan.ws();
        let start = scan.i;
        let value = scan
            .value(MAX_DEPTH, Some(&paths.root))
            .map_err(|Stop| error_at(body, scan.failure.0, scan.failure.1))?;
        let end = scan.i;
        scan.ws();
        if scan.i != body.len() {
            return Err(error_at(body, scan.i, "trailing characters"));
        }
        let raw = text.get(start..end).unwrap_or_default();
        let raw: Arc<str> = match compacted(raw) {
            Some(compact) => Arc::from(compact),
            None => Arc::from(raw),
        };
        Ok(Self {
            raw: Some(raw),
            parsed: OnceLock::new(),
            owned: Value::Null,
            view: Some(Arc::new(View {
                paths: paths.clone(),
                value: value.unwrap_or(Value::Null),
            })),
        })
    }

    /// The JSON text as received (without surrounding whitespace, and an indented text
    /// without the whitespace between its tokens: [`compacted`]), unless the payload was
    /// built from a tree or changed since.
    pub fn raw(&self) -> Option<&str> {
        self.raw.as_deref()
    }

    /// A tree with at least `paths` in it, equal to the payload along each: the picked
    /// view when it was picked for a set covering `paths`, else the whole payload.
    pub fn view(&self, paths: &PayloadPaths) -> &Value {
        match &self.view {
            Some(v) if v.paths.covers(paths) => &v.value,
            _ => self.value(),
        }
    }

    /// A tree with at least `paths` in it (as [`Payload::view`]), checked path by path.
    pub fn view_for<'p>(&self, paths: impl IntoIterator<Item = &'p str>) -> &Value {
        match &self.view {
            Some(v) if paths.into_iter().all(|p| v.paths.set.contains(p)) => &v.value,
            _ => self.value(),
        }
    }

    /// The whole tree (parsed now if not yet).
    pub fn value(&self) -> &Value {
        match &self.raw {
            Some(raw) => self.parsed.get_or_init(|| parse_checked(raw)),
            None => &self.owned,
        }
    }

    /// The payload's JSON: the received text when there is one, else the tree written.
    pub fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        match &self.raw {
            Some(raw) => {
                out.extend_from_slice(raw.as_bytes());
                Ok(())
            }
            None => serde_json::to_writer(out, &self.owned),
        }
    }
}

// The text passed the same grammar as serde_json's; should they ever disagree, the error
// becomes `null` rather than a panic (the `payload` fuzz target looks for such a text).
fn parse_checked(raw: &str) -> Value {
    serde_json::from_str(raw).unwrap_or(Value::Null)
}

impl From<Value> for Payload {
    fn from(value: Value) -> Self {
        Self {
            raw: None,
            parsed: OnceLock::new(),
            owned: value,
            view: None,
        }
    }
}

impl Default for Payload {
    fn default() -> Self {
        Value::Null.into()
    }
}

impl std::ops::Deref for Payload {
    type Target = Value;

    fn deref(&self) -> &Value {
        self.value()
    }
}

impl std::ops::DerefMut for Payload {
    fn deref_mut(&mut self) -> &mut Value {
        if let Some(raw) = self.raw.take() {
            self.owned = self.parsed.take().unwrap_or_else(|| parse_checked(&raw));
            self.view = None;
        }
        &mut self.owned
    }
}

impl Clone for Payload {
    fn clone(&self) -> Self {
        Self {
            // The text is shared; the clone parses its own tree when asked.
            raw: self.raw.clone(),
            parsed: OnceLock::new(),
            owned: self.owned.clone(),
            view: self.view.clone(),
        }
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        match (&self.raw, &other.raw) {
            (Some(a), Some(b)) if a == b => true,
            _ => self.value() == other.value(),
        }
    }
}

impl PartialEq<Value> for Payload {
    fn eq(&self, other: &Value) -> bool {
        self.value() == other
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.raw {
            Some(raw) => f.debug_tuple("Payload").field(&raw.len()).finish(),
            None => f.debug_tuple("Payload").field(self.value()).finish(),
        }
    }
}

impl Serialize for Payload {
    /// As the tree, for any serializer (parsed first if need be); the router's hot path
    /// copies the received text instead ([`Payload::write_json`], through
    /// [`crate::event::Event::write_json`]).
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d).map(Self::from)
    }
}

fn error_at(body: &[u8], offset: usize, reason: &'static str) -> PayloadError {
    let before = body.get(..offset).unwrap_or(body);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = offset
        - before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1)
        + 1;
    PayloadError {
        reason,
        line,
        column,
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of `w` that is `"`, `\` or a control character; the lowest
/// set bit marks the first such byte exactly.
#[inline(always)]
fn string_stops(w: u64) -> u64 {
    let quote = w ^ (ONES * u64::from(b'"'));
    let slash = w ^ (ONES * u64::from(b'\\'));
    ((quote.wrapping_sub(ONES) & !quote)
        | (slash.wrapping_sub(ONES) & !slash)
        | (w.wrapping_sub(ONES * 0x20) & !w))
        & HIGH
}

/// `text` (one checked JSON value) without the whitespace between its tokens, when it
/// holds a line break: an indented body (Gitea's and Forgejo's are; a pretty-printed
/// fixture is). It is stored, compressed and forwarded at its meaning's size: the 35 KB
/// indented pull request fixture is 29 KB compact and packs into 3.5 KB instead of 4.7 KB
/// (one write unit less), in less compression time. A text without a line break (GitHub's
/// bodies are one line) is kept as it came: `None`. Linear: one pass, strings copied in
/// words. Sound because JSON allows no raw control character inside a string, so a line
/// break, and every whitespace byte outside a string, lies between tokens.
fn compacted(text: &str) -> Option<String> {
    let b = text.as_bytes();
    if !b.contains(&b'\n') {
        return None;
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b' ' | b'\n' | b'\r' | b'\t' => i = space_run_end(b, i + 1),
            b'"' => {
                let start = i;
                i = string_end(b, i + 1);
                out.extend_from_slice(b.get(start..i).unwrap_or_default());
            }
            // Punctuation, numbers and literals: a few bytes each, pushed one by one (a
            // copy call per token cost more than the bytes it moved).
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    // Only ASCII bytes between tokens went: still UTF-8.
    String::from_utf8(out).ok()
}

/// Past the run of spaces from `i` (indentation), a word at a time: at the first byte that
/// is not a space. The scanner's whitespace skip and `compacted` share it; they take other
/// whitespace bytes one by one.
#[inline(always)]
fn space_run_end(b: &[u8], mut i: usize) -> usize {
    while let Some(w) = word(b, i) {
        let other = w ^ (ONES * u64::from(b' '));
        if other != 0 {
            return i + (other.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    i
}

/// Just past the closing quote of the string whose content starts at `i` (the end of `b`
/// for an unclosed one, which a checked text does not have).
fn string_end(b: &[u8], mut i: usize) -> usize {
    loop {
        i = plain_run_end(b, i);
        match b.get(i) {
            Some(b'"') => return i + 1,
            Some(b'\\') => i += 2,
            Some(_) => i += 1,
            None => return b.len(),
        }
    }
}

/// Past the string bytes from `i` that need no look, a word at a time: at the first `"`,
/// `\` or control character, or where fewer than 8 bytes are left (the caller looks at
/// those one by one).
#[inline(always)]
fn plain_run_end(b: &[u8], mut i: usize) -> usize {
    while let Some(w) = word(b, i) {
        let stops = string_stops(w);
        if stops != 0 {
            return i + (stops.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    i
}

#[inline(always)]
fn word(b: &[u8], i: usize) -> Option<u64> {
    let w: [u8; 8] = b.get(i..i + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(w))
}

/// A cursor over a body known to be UTF-8 (`s` and `b` are the same bytes).
struct Scan<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
    /// Where and what, once a step stopped.
    failure: (usize, &'static str),
}

/// A step stopped on an error (noted in [`Scan::failure`]); one byte to return, which keeps
/// the scanner's calls cheap.
struct Stop;

type Step<T> = Result<T, Stop>;

impl Scan<'_> {
    /// Notes what is wrong here; the caller returns the [`Stop`].
    #[cold]
    fn fail(&mut self, reason: &'static str) -> Stop {
        self.failure = (self.i, reason);
        Stop
    }

    #[cold]
    fn fail_at(&mut self, offset: usize, reason: &'static str) -> Stop {
        self.failure = (offset, reason);
        Stop
    }

    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline(always)]
    fn expect(&mut self, c: u8, reason: &'static str) -> Step<()> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.fail(reason))
        }
    }

    /// Skips whitespace; runs of spaces (indentation) a word at a time.
    #[inline(always)]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.i = space_run_end(self.b, self.i + 1);
        }
    }

    /// A value; with a node, the part of it the node's paths name.
    fn value(&mut self, depth: u32, node: Option<&Node>) -> Step<Option<Value>> {
        match node {
            None => self.skip(depth).map(|()| None),
            Some(n) if !n.end && self.peek() == Some(b'{') => self.pick(depth, n).map(Some),
            Some(_) => {
                let start = self.i;
                self.skip(depth)?;
                let text = self.s.get(start..self.i).unwrap_or_default();
                serde_json::from_str(text)
                    .map(Some)
                    .map_err(|_| self.fail_at(start, "value serde_json refuses"))
            }
        }
    }

    /// Enters the container at the cursor (`{` or `[`, closed by `close`); whether it is
    /// already closed (empty).
    #[inline(always)]
    fn open(&mut self, depth: u32, close: u8) -> Step<bool> {
        if depth == 0 {
            return Err(self.fail("recursion limit exceeded"));
        }
        self.i += 1;
        self.ws();
        let empty = self.peek() == Some(close);
        if empty {
            self.i += 1;
        }
        Ok(empty)
    }

    /// After a member: `,` goes on (`false`), `close` ends the container (`true`).
    #[inline(always)]
    fn next(&mut self, close: u8, reason: &'static str) -> Step<bool> {
        self.ws();
        match self.peek() {
            Some(b',') => {
                self.i += 1;
                self.ws();
                Ok(false)
            }
            Some(c) if c == close => {
                self.i += 1;
                Ok(true)
            }
            _ => Err(self.fail(reason)),
        }
    }

    /// An object's key and `:`: where the quoted key ends, and whether it has escapes.
    #[inline(always)]
    fn key(&mut self) -> Step<(usize, bool)> {
        self.expect(b'"', "expected a string key")?;
        let escaped = self.string()?;
        let end = self.i;
        self.ws();
        self.expect(b':', "expected `:`")?;
        self.ws();
        Ok((end, escaped))
    }

    /// An object on a path: only the members the node names are kept.
    fn pick(&mut self, depth: u32, node: &Node) -> Step<Value> {
        let mut map = Map::new();
        if self.open(depth, b'}')? {
            return Ok(Value::Object(map));
        }
        loop {
            let key_start = self.i;
            let (key_end, escaped) = self.key()?;
            let key_text = self.s.get(key_start..key_end).unwrap_or_default();
            let key: std::borrow::Cow<'_, str> = if escaped {
                serde_json::from_str::<String>(key_text)
                    .map_err(|_| self.fail_at(key_start, "invalid escape"))?
                    .into()
            } else {
                key_text
                    .get(1..key_text.len().saturating_sub(1))
                    .unwrap_or_default()
                    .into()
            };
            if let Some(v) = self.value(depth - 1, node.child(&key))? {
                map.insert(key.into_owned(), v);
            }
            if self.next(b'}', "expected `,` or `}`")? {
                return Ok(Value::Object(map));
            }
        }
    }

    /// Checks one value and moves past it.
    fn skip(&mut self, depth: u32) -> Step<()> {
        match self.peek() {
            Some(b'{') => {
                if self.open(depth, b'}')? {
                    return Ok(());
                }
                loop {
                    self.key()?;
                    self.skip(depth - 1)?;
                    if self.next(b'}', "expected `,` or `}`")? {
                        return Ok(());
                    }
                }
            }
            Some(b'[') => {
                if self.open(depth, b']')? {
                    return Ok(());
                }
                loop {
                    self.skip(depth - 1)?;
                    if self.next(b']', "expected `,` or `]`")? {
                        return Ok(());
                    }
                }
            }
            Some(b'"') => {
                self.i += 1;
                self.string().map(|_| ())
            }
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.fail("expected a value")),
            None => Err(self.fail("EOF while parsing a value")),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Step<()> {
        if self.b.get(self.i..self.i + word.len()) == Some(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(self.fail("expected a value"))
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> Step<()> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.fail("invalid number")),
        }
        let mut plain = true;
        if self.peek() == Some(b'.') {
            plain = false;
            self.i += 1;
            if self.digits() == 0 {
                return Err(self.fail("invalid number"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            plain = false;
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if self.digits() == 0 {
                return Err(self.fail("invalid number"));
            }
        }
        // Integers of up to 18 digits always fit; anything else serde_json may refuse as
        // out of range, so it decides.
        if !plain || self.i - start > 18 {
            let text = self.s.get(start..self.i).unwrap_or_default();
            if serde_json::from_str::<serde_json::Number>(text).is_err() {
                return Err(self.fail_at(start, "number out of range"));
            }
        }
        Ok(())
    }

    /// The rest of a string after its opening quote; whether it has escapes.
    fn string(&mut self) -> Step<bool> {
        // A local cursor: the loop keeps it in a register.
        let b = self.b;
        let start = self.i - 1;
        let mut i = self.i;
        let mut escaped = false;
        let mut unicode = false;
        loop {
            i = plain_run_end(b, i);
            match b.get(i) {
                Some(b'"') => {
                    i += 1;
                    break;
                }
                Some(b'\\') => {
                    escaped = true;
                    i += 1;
                    match b.get(i) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 1,
                        Some(b'u') => {
                            unicode = true;
                            i += 1;
                            let hex = b.get(i..i + 4).unwrap_or_default();
                            if hex.len() < 4 || !hex.iter().all(u8::is_ascii_hexdigit) {
                                return Err(self.fail_at(i, "invalid \\u escape"));
                            }
                            i += 4;
                        }
                        _ => return Err(self.fail_at(i, "invalid escape")),
                    }
                }
                Some(c) if *c < 0x20 => {
                    return Err(self.fail_at(i, "control character while parsing a string"));
                }
                Some(_) => i += 1,
                None => return Err(self.fail_at(i, "EOF while parsing a string")),
            }
        }
        self.i = i;
        // Surrogate pairing: serde_json decides (rare: forges send UTF-8 as is).
        if unicode {
            let text = self.s.get(start..i).unwrap_or_default();
            if serde_json::from_str::<String>(text).is_err() {
                return Err(self.fail_at(start, "invalid \\u escape"));
            }
        }
        Ok(escaped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn paths(extra: &[&str]) -> Arc<PayloadPaths> {
        Arc::new(PayloadPaths::with(extra.iter().copied()))
    }

    fn agrees(text: &str) {
        let ours = Payload::parse(text.as_bytes(), &paths(&[]));
        let theirs = serde_json::from_str::<Value>(text);
        assert_eq!(
            ours.is_ok(),
            theirs.is_ok(),
            "{text:?}: ours {ours:?}, serde_json {theirs:?}"
        );
        if let (Ok(ours), Ok(theirs)) = (ours, theirs) {
            assert_eq!(*ours, theirs, "{text:?}");
        }
    }

    #[test]
    fn accepts_and_refuses_what_serde_json_does() {
        for text in [
            "{}",
            "[]",
            "0",
            "-0",
            "1.5",
            "-1.5e-3",
            "1E+2",
            "true",
            "false",
            "null",
            "\"a\"",
            " {\"a\" : [1, 2, {\"b\": null}] } ",
            "\"\\u00e9\\n\\\"\"",
            "\"\\ud83d\\ude00\"",
            "\"caf\u{e9} \u{1f600}\"",
            "123456789012345678901234567890",
            "1e308",
            "[1,]",
            "{\"a\":1,}",
            "01",
            "-",
            "1.",
            ".5",
            "1e",
            "+1",
            "tru",
            "nul",
            "\"\\x\"",
            "\"\\u12\"",
            "\"\\ud800\"",
            "\"\\udc00\"",
            "\"\\ud800\\u0041\"",
            "1e309",
            "-1e309",
            "1e-400",
            "0e99999",
            "\"a\u{1}\"",
            "\"\t\"",
            "",
            " ",
            "{",
            "[1 2]",
            "{\"a\" 1}",
            "{1:2}",
            "[] []",
            "\"unterminated",
            "nan",
            "{\"a\":1}x",
            "123456789012345678",
            "1234567890123456789",
            "18446744073709551616",
            "-9223372036854775809",
            "\"\\/\"",
            "\u{feff}{}",
            "[\"\\uD83D\\uDE00\"]",
        ] {
            agrees(text);
        }
    }

    #[test]
    fn depth_limit_is_serde_jsons() {
        for depth in [126, 127, 128, 129] {
            agrees(&format!("{}{}", "[".repeat(depth), "]".repeat(depth)));
            agrees(&format!(
                "{}1{}",
                "{\"a\":".repeat(depth),
                "}".repeat(depth)
            ));
        }
    }

    #[test]
    fn invalid_utf8_is_refused_with_where() {
        let e = Payload::parse(b"{\"a\":\n \"\xff\"}", &paths(&[])).expect_err("refused");
        assert_eq!((e.line, e.column), (2, 3));
        assert_eq!(e.reason, "invalid UTF-8");
    }

    #[test]
    fn view_holds_the_paths_and_equals_the_payload_along_them() {
        let text = r#"{
            "action": "opened",
            "pull_request": {"number": 7, "title": "t", "base": {"ref": "main", "sha": "x"},
                "labels": [{"name": "area/ui", "id": 1}, {"name": "bug", "id": 2}]},
            "repository": {"full_name": "o/r", "id": 9},
            "big": {"deep": [1, 2, 3]},
            "pull\u005frequest2": {"draft": false}
        }"#;
        let p = paths(&["pull_request.labels.name", "pull_request2.draft"]);
        let payload = Payload::parse(text.as_bytes(), &p).expect("parses");
        let view = payload.view(&p);
        assert_eq!(
            *view,
            json!({
                "action": "opened",
                "pull_request": {"number": 7, "base": {"ref": "main"},
                    "labels": [{"name": "area/ui", "id": 1}, {"name": "bug", "id": 2}]},
                "repository": {"full_name": "o/r"},
                "pull_request2": {"draft": false}
            })
        );
        let full: Value = serde_json::from_str(text).expect("json");
        for path in p.iter() {
            assert_eq!(
                crate::pattern::lookup_all(view, path),
                crate::pattern::lookup_all(&full, path),
                "{path}"
            );
        }
        assert_eq!(*payload, full);
        // Indented: kept without the whitespace between its tokens.
        let raw = payload.raw().expect("text");
        assert!(!raw.contains(['\n', ' ']), "{raw}");
        assert_eq!(serde_json::from_str::<Value>(raw).expect("json"), full);
    }

    #[test]
    fn an_indented_text_is_kept_compact_with_its_strings_whole() {
        let text = "{\n  \"title\" : \"a  b\\t \\\" } \\\\\",\r\n\t\"n\": [ 1 , -2.5e3,\n true ],\n  \"e\": { },\n  \"u\": \"é\\u00e9 x\"\n}";
        let payload = Payload::parse(text.as_bytes(), &paths(&[])).expect("parses");
        let compact = r#"{"title":"a  b\t \" } \\","n":[1,-2.5e3,true],"e":{},"u":"é\u00e9 x"}"#;
        assert_eq!(payload.raw(), Some(compact));
        let full: Value = serde_json::from_str(text).expect("json");
        assert_eq!(serde_json::from_str::<Value>(compact).expect("json"), full);
        assert_eq!(*payload, full);
        // Runs of spaces longer than a word, with tabs and line breaks inside and after.
        for n in [1, 7, 8, 9, 17, 40] {
            let pad = " ".repeat(n);
            let text = format!(
                "{{\n{pad}\"a\":{pad}[{pad}1,\t{pad}\r\n{pad}\"x{pad}y\"{pad}]{pad}\n}}{pad}"
            );
            let payload = Payload::parse(text.as_bytes(), &paths(&[])).expect("parses");
            assert_eq!(
                payload.raw(),
                Some(format!("{{\"a\":[1,\"x{pad}y\"]}}").as_str()),
                "{n}"
            );
        }
        // One line: kept as it came, spaces and all.
        let line = r#"{"title": "a  b", "n": [1, 2]}"#;
        let payload = Payload::parse(line.as_bytes(), &paths(&[])).expect("parses");
        assert_eq!(payload.raw(), Some(line));
        // The indented fixture: compact, and the same value.
        let fixture = include_str!("../../events/github-pull_request-opened.json");
        let payload = Payload::parse(fixture.as_bytes(), &paths(&[])).expect("parses");
        let full: Value = serde_json::from_str(fixture).expect("json");
        let raw = payload.raw().expect("text");
        assert!(!raw.contains('\n'));
        assert_eq!(serde_json::from_str::<Value>(raw).expect("json"), full);
        assert!(
            raw.len() < fixture.len() * 9 / 10,
            "{} of {}",
            raw.len(),
            fixture.len()
        );
    }

    #[test]
    fn a_view_for_other_paths_falls_back_to_the_whole_payload() {
        let text = r#"{"action": "opened", "deployment": {"environment": "prod"}}"#;
        let payload = Payload::parse(text.as_bytes(), &paths(&[])).expect("parses");
        let wider = paths(&["deployment.environment"]);
        assert_eq!(
            payload.view(&wider)["deployment"]["environment"],
            json!("prod")
        );
        assert_eq!(payload.view(&paths(&[])).get("deployment"), None);
    }

    #[test]
    fn duplicate_keys_keep_the_last_as_serde_json_does() {
        let text = r#"{"sender": {"login": "a", "type": "Bot"}, "sender": {"login": "b"}}"#;
        let p = paths(&[]);
        let payload = Payload::parse(text.as_bytes(), &p).expect("parses");
        let full: Value = serde_json::from_str(text).expect("json");
        assert_eq!(payload.view(&p)["sender"], full["sender"]);
        assert_eq!(payload.view(&p)["sender"].get("type"), None);
    }

    #[test]
    fn changing_the_payload_drops_the_text() {
        let p = paths(&[]);
        let mut payload = Payload::parse(br#"{"action": "opened"}"#, &p).expect("parses");
        let copy = payload.clone();
        payload["action"] = json!("closed");
        assert_eq!(payload.raw(), None);
        assert_eq!(payload.view(&p)["action"], json!("closed"));
        let mut out = Vec::new();
        payload.write_json(&mut out).expect("writes");
        assert_eq!(out, br#"{"action":"closed"}"#);
        assert_eq!(copy.raw(), Some(r#"{"action": "opened"}"#));
        assert_eq!(
            serde_json::to_string(&copy).expect("serializes"),
            r#"{"action":"opened"}"#
        );
    }
}
