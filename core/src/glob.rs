//! Branch, tag and path filters with GitHub Actions semantics: globs with `*` (not crossing
//! `/`), `**`, `?` and `+` (zero-or-one and one-or-more of the preceding character),
//! `[...]` classes, `\` escapes, and ordered `!` negations where the last matching pattern
//! decides.

use regex::Regex;

/// One compiled glob.
#[derive(Debug, Clone)]
pub struct Glob {
    text: String,
    negated: bool,
    regex: Regex,
}

impl PartialEq for Glob {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Glob {
    /// Compiles a pattern; a leading `!` marks a negation.
    pub fn parse(text: &str) -> Result<Self, GlobError> {
        Self::compile(text).map_err(GlobError)
    }

    fn compile(text: &str) -> Result<Self, String> {
        let (negated, body) = match text.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        if body.is_empty() {
            return Err(format!("empty pattern `{text}`"));
        }
        let mut re = String::from("^");
        let chars: Vec<char> = body.chars().collect();
        let mut i = 0;
        // Whether the last thing emitted can take a `?` or `+` quantifier.
        let mut quantifiable = false;
        while i < chars.len() {
            let c = chars[i];
            match c {
                '*' if chars.get(i + 1) == Some(&'*') => {
                    if chars.get(i + 2) == Some(&'/') {
                        re.push_str("(?:.*/)?");
                        i += 3;
                    } else {
                        re.push_str(".*");
                        i += 2;
                    }
                    quantifiable = false;
                    continue;
                }
                '*' => {
                    re.push_str("[^/]*");
                    quantifiable = false;
                }
                '?' | '+' => {
                    if !quantifiable {
                        return Err(format!("`{c}` in `{text}` must follow a character"));
                    }
                    re.push(c);
                    quantifiable = false;
                }
                '[' => {
                    let close = chars[i + 1..]
                        .iter()
                        .position(|&x| x == ']')
                        .ok_or_else(|| format!("unclosed `[` in `{text}`"))?;
                    let inner: String = chars[i + 1..i + 1 + close].iter().collect();
                    if inner.is_empty() {
                        return Err(format!("empty `[]` in `{text}`"));
                    }
                    re.push('[');
                    let mut inner_chars = inner.chars().peekable();
                    if matches!(inner_chars.peek(), Some('!') | Some('^')) {
                        inner_chars.next();
                        re.push('^');
                    }
                    for ch in inner_chars {
                        if ch == '-' {
                            re.push('-');
                        } else {
                            re.push_str(&regex::escape(&ch.to_string()));
                        }
                    }
                    re.push(']');
                    i += close + 2;
                    quantifiable = true;
                    continue;
                }
                '\\' => {
                    let next = chars
                        .get(i + 1)
                        .ok_or_else(|| format!("trailing `\\` in `{text}`"))?;
                    re.push_str(&regex::escape(&next.to_string()));
                    i += 2;
                    quantifiable = true;
                    continue;
                }
                other => {
                    re.push_str(&regex::escape(&other.to_string()));
                    quantifiable = true;
                }
            }
            i += 1;
        }
        re.push('$');
        let regex = Regex::new(&re).map_err(|e| format!("bad pattern `{text}`: {e}"))?;
        Ok(Self {
            text: text.to_owned(),
            negated,
            regex,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// An ordered list of globs: a name is included when the last pattern that matches it is
/// not a negation.
#[derive(Debug, Clone, PartialEq)]
pub struct GlobList(Vec<Glob>);

impl GlobList {
    /// The patterns as written.
    pub fn patterns(&self) -> Vec<&str> {
        self.0.iter().map(|g| g.text.as_str()).collect()
    }

    /// Compiles every pattern; the first error is returned with its pattern.
    pub fn parse(patterns: &[String]) -> Result<Self, GlobError> {
        Self::compile(patterns).map_err(GlobError)
    }

    fn compile(patterns: &[String]) -> Result<Self, String> {
        if patterns.is_empty() {
            return Err("an empty list matches nothing; leave the key out".into());
        }
        patterns
            .iter()
            .map(|p| Glob::compile(p))
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Whether `name` is included by the list.
    pub fn includes(&self, name: &str) -> bool {
        let mut included = false;
        for g in &self.0 {
            if g.regex.is_match(name) {
                included = !g.negated;
            }
        }
        included
    }

    /// The patterns as written, for explanations: `[main, release/**]`.
    pub fn describe(&self) -> String {
        let parts: Vec<&str> = self.0.iter().map(Glob::as_str).collect();
        format!("[{}]", parts.join(", "))
    }
}

crate::message_error! {
    /// Why a glob (or a list of them) does not compile, naming the pattern.
    GlobError
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(p: &[&str]) -> GlobList {
        GlobList::parse(&p.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn github_actions_examples() {
        // (patterns, name, included) from the GitHub Actions filter pattern cheat sheet.
        let cases: &[(&[&str], &str, bool)] = &[
            (&["feature/*"], "feature/my-branch", true),
            (&["feature/*"], "feature/your-branch", true),
            (&["feature/*"], "feature/a/b", false),
            (&["feature/**"], "feature/a/b", true),
            (&["feature/**"], "feature/", true),
            (&["main"], "main", true),
            (&["main"], "mainline", false),
            (
                &["releases/mona-the-octocat"],
                "releases/mona-the-octocat",
                true,
            ),
            (&["*"], "main", true),
            (&["*"], "releases/v1", false),
            (&["**"], "releases/v1", true),
            (&["'*'".trim_matches('\'')], "releases", true),
            (&["*feature"], "mona-feature", true),
            (&["*feature"], "feature", true),
            (&["v2*"], "v2.0.0", true),
            (&["v[12].[0-9]+.[0-9]+"], "v1.10.1", true),
            (&["v[12].[0-9]+.[0-9]+"], "v2.0.0", true),
            (&["v[12].[0-9]+.[0-9]+"], "v3.0.0", false),
            (&["v1.?"], "v1", true),
            (&["v1.?"], "v1.0", false),
            (&["ab?c"], "ac", true),
            (&["ab?c"], "abc", true),
            (&["ab?c"], "abbc", false),
            (&["ab+c"], "abbbc", true),
            (&["ab+c"], "ac", false),
            (&["**.js"], "src/a/index.js", true),
            (&["docs/*"], "docs/README.md", true),
            (&["docs/*"], "docs/file.txt", true),
            (&["docs/*"], "docs/a/b.md", false),
            (&["docs/**"], "docs/mona/octocat.txt", true),
            (&["docs/**/*.md"], "docs/README.md", true),
            (&["docs/**/*.md"], "docs/mona/hello-world.md", true),
            (&["docs/**/*.md"], "docs/a/markdown/file.md", true),
            (&["**/docs/**"], "docs/hello.md", true),
            (&["**/docs/**"], "dir/docs/my-file.txt", true),
            (&["**/README.md"], "README.md", true),
            (&["**/README.md"], "js/README.md", true),
            (&["**/*src/**"], "a/src/app.js", true),
            (&["**/*-post.md"], "my-post.md", true),
            (&["**/*-post.md"], "path/their-post.md", true),
            (&["**/migrate-*.sql"], "migrate-10909.sql", true),
            (&["**/migrate-*.sql"], "db/sept/migrate-v1.sql", true),
            (&["*.md", "!README.md"], "README.md", false),
            (&["*.md", "!README.md"], "README.doc", false),
            (&["*.md", "!README.md"], "docs.md", true),
            (&["*.md", "!README.md", "README*"], "README.md", true),
            (&["*.md", "!README.md", "README*"], "README.doc", true),
            (
                &["releases/**", "!releases/**-alpha"],
                "releases/v1-alpha",
                false,
            ),
            (&["releases/**", "!releases/**-alpha"], "releases/v1", true),
            (&["a\\*b"], "a*b", true),
            (&["a\\*b"], "axb", false),
            (&["[!a]x"], "bx", true),
            (&["[!a]x"], "ax", false),
        ];
        for (patterns, name, want) in cases {
            assert_eq!(
                list(patterns).includes(name),
                *want,
                "{patterns:?} vs {name}"
            );
        }
    }

    #[test]
    fn bad_globs_are_errors() {
        for bad in ["", "!", "?abc", "+x", "a[bc", "a[]b", "x\\"] {
            assert!(Glob::parse(bad).is_err(), "{bad:?}");
        }
        assert!(GlobList::parse(&[]).is_err());
    }
}
