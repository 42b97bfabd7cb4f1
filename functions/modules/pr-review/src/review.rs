//! The review itself, pure: size class, findings, the sticky comment's text and the label
//! changes. The handler only fetches and writes.

use regex::Regex;
use serde::Deserialize;
use serde_json::Value;
use switchyard::forge::PrFile;
use switchyard::glob::GlobList;

/// Marks the comment this module owns, so it edits it instead of adding another.
pub const MARKER: &str = "<!-- switchyard:pr-review -->";

/// The module's config (from `module.yaml`, overridable per scope).
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// Upper bounds (exclusive) of XS, S, M, L in lines changed.
    pub size_bounds: Bounds,
    /// Shorter descriptions count as missing.
    pub min_description_chars: usize,
    /// Whether a missing linked issue is a finding.
    pub require_linked_issue: bool,
    /// Globs of paths that deserve a careful look.
    #[serde(default)]
    pub sensitive_paths: Vec<String>,
}

/// Size class bounds.
#[derive(Debug, Clone, Deserialize)]
pub struct Bounds {
    pub xs: u64,
    pub s: u64,
    pub m: u64,
    pub l: u64,
}

/// What the review found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub size: &'static str,
    pub lines: u64,
    pub files: usize,
    pub missing_description: bool,
    pub missing_linked_issue: bool,
    pub sensitive: Vec<String>,
}

/// The size class of `lines` changed.
pub fn size_class(lines: u64, b: &Bounds) -> &'static str {
    match lines {
        n if n < b.xs => "XS",
        n if n < b.s => "S",
        n if n < b.m => "M",
        n if n < b.l => "L",
        _ => "XL",
    }
}

fn links_issue(body: &str) -> bool {
    // `#123`, `owner/repo#123`, or an issue URL.
    let re = Regex::new(r"(^|[^\w&])([\w.-]+/[\w.-]+)?#\d+\b|/issues/\d+").ok();
    re.is_some_and(|r| r.is_match(body))
}

/// Reviews a pull request payload and its files.
pub fn review(pr: &Value, files: &[PrFile], config: &Config) -> Review {
    let lines = files.iter().map(|f| f.additions + f.deletions).sum();
    let body = pr["body"].as_str().unwrap_or_default().trim();
    let sensitive = match GlobList::parse(&config.sensitive_paths) {
        Ok(globs) => files
            .iter()
            .filter(|f| globs.includes(&f.filename))
            .map(|f| f.filename.clone())
            .collect(),
        Err(_) => Vec::new(),
    };
    Review {
        size: size_class(lines, &config.size_bounds),
        lines,
        files: files.len(),
        missing_description: body.chars().count() < config.min_description_chars,
        missing_linked_issue: config.require_linked_issue && !links_issue(body),
        sensitive,
    }
}

/// The sticky comment's Markdown.
pub fn comment(r: &Review) -> String {
    let mut out = format!(
        "{MARKER}\n### Pull request review\n\n**Size: {}** ({} lines in {} files)\n",
        r.size, r.lines, r.files
    );
    let mut findings = Vec::new();
    if r.missing_description {
        findings.push(
            "- The description is missing or very short: say what changes and why.".to_owned(),
        );
    }
    if r.missing_linked_issue {
        findings.push("- No linked issue: reference one (`Closes #123`).".to_owned());
    }
    if !r.sensitive.is_empty() {
        let shown: Vec<String> = r
            .sensitive
            .iter()
            .take(10)
            .map(|p| format!("`{p}`"))
            .collect();
        findings.push(format!("- Touches sensitive paths: {}.", shown.join(", ")));
    }
    if findings.is_empty() {
        out.push_str("\nNothing to flag.\n");
    } else {
        out.push('\n');
        out.push_str(&findings.join("\n"));
        out.push('\n');
    }
    out
}

/// Label changes: the `size/*` labels to remove and whether to add the right one.
pub fn label_changes(current: &[String], size: &str) -> (Vec<String>, Option<String>) {
    let want = format!("size/{size}");
    let remove = current
        .iter()
        .filter(|l| l.starts_with("size/") && **l != want)
        .cloned()
        .collect();
    let add = (!current.contains(&want)).then_some(want);
    (remove, add)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let manifest: Value = serde_json::from_str(
            r#"{"size_bounds": {"xs": 10, "s": 50, "m": 250, "l": 1000}, "min_description_chars": 30, "require_linked_issue": true, "sensitive_paths": [".github/workflows/**", "**/migrations/**"]}"#,
        )
        .unwrap();
        serde_json::from_value(manifest).unwrap()
    }

    fn file(name: &str, add: u64, del: u64) -> PrFile {
        PrFile {
            filename: name.into(),
            status: "modified".into(),
            additions: add,
            deletions: del,
            previous_filename: None,
        }
    }

    #[test]
    fn size_classes_follow_the_bounds() {
        let b = config().size_bounds;
        for (lines, want) in [
            (0, "XS"),
            (9, "XS"),
            (10, "S"),
            (49, "S"),
            (50, "M"),
            (249, "M"),
            (250, "L"),
            (999, "L"),
            (1000, "XL"),
        ] {
            assert_eq!(size_class(lines, &b), want, "{lines}");
        }
    }

    #[test]
    fn the_sample_pull_request_is_reviewed() {
        let payload: Value = serde_json::from_str(include_str!(
            "../../../../events/github-pull_request-opened.json"
        ))
        .unwrap();
        let files = [
            file("crates/layout/src/cache.rs", 20, 0),
            file("db/migrations/0007_cache.sql", 5, 0),
        ];
        let r = review(&payload["pull_request"], &files, &config());
        assert_eq!(
            r,
            Review {
                size: "S",
                lines: 25,
                files: 2,
                missing_description: false,
                missing_linked_issue: false,
                sensitive: vec!["db/migrations/0007_cache.sql".into()]
            }
        );
        let text = comment(&r);
        assert!(text.starts_with(MARKER));
        assert!(text.contains("**Size: S** (25 lines in 2 files)"));
        assert!(text.contains("`db/migrations/0007_cache.sql`"));
    }

    #[test]
    fn missing_description_and_linked_issue_are_flagged() {
        let pr = serde_json::json!({"body": "wip"});
        let r = review(&pr, &[file("a.rs", 300, 10)], &config());
        assert!(r.missing_description && r.missing_linked_issue);
        assert_eq!(r.size, "L");
        let linked =
            serde_json::json!({"body": "Speeds up layout a lot, see acme/widgets#12 for numbers."});
        assert!(!review(&linked, &[], &config()).missing_linked_issue);
        let url = serde_json::json!({"body": "Fixes https://github.com/acme/widgets/issues/9 by caching sizes."});
        assert!(!review(&url, &[], &config()).missing_linked_issue);
        let color =
            serde_json::json!({"body": "Changes the color to &#123; nothing else here at all."});
        assert!(review(&color, &[], &config()).missing_linked_issue);
    }

    #[test]
    fn an_old_size_label_is_swapped_for_the_new_one() {
        let current = vec!["size/S".to_owned(), "bug".to_owned()];
        assert_eq!(
            label_changes(&current, "M"),
            (vec!["size/S".to_owned()], Some("size/M".to_owned()))
        );
        assert_eq!(label_changes(&["size/M".to_owned()], "M"), (vec![], None));
    }
}
