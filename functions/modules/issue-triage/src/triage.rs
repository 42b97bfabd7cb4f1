//! The triage itself, pure: which labels keyword rules give, which template sections are
//! missing, and the comment asking for them.

use regex::Regex;
use serde::Deserialize;

/// Marks the comment this module owns, so it asks only once.
pub const MARKER: &str = "<!-- switchyard:issue-triage -->";

/// The module's config.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// Label rules.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// Section titles the body should contain.
    #[serde(default)]
    pub template_sections: Vec<String>,
}

/// One rule: any keyword as a whole word, in any case, gives the label.
#[derive(Debug, Clone, Deserialize)]
pub struct Rule {
    pub label: String,
    pub keywords: Vec<String>,
}

/// The labels the rules give for an issue's title and body, in rule order.
pub fn labels(title: &str, body: &str, rules: &[Rule]) -> Vec<String> {
    let text = format!("{title}\n{body}");
    rules
        .iter()
        .filter(|r| {
            r.keywords.iter().any(|k| {
                Regex::new(&format!(r"(?i)\b{}\b", regex::escape(k)))
                    .is_ok_and(|re| re.is_match(&text))
            })
        })
        .map(|r| r.label.clone())
        .collect()
}

/// The sections whose title does not appear in the body (case-insensitive).
pub fn missing_sections(body: &str, sections: &[String]) -> Vec<String> {
    let lower = body.to_lowercase();
    sections
        .iter()
        .filter(|s| !lower.contains(&s.to_lowercase()))
        .cloned()
        .collect()
}

/// The comment asking for missing sections.
pub fn ask(missing: &[String]) -> String {
    let list: Vec<String> = missing.iter().map(|s| format!("- **{s}**")).collect();
    format!(
        "{MARKER}\nThanks for the report! To help us triage it, please add these sections to the description:\n\n{}\n",
        list.join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Vec<Rule> {
        let manifest: serde_json::Value = serde_json::from_str(
            r#"[{"label": "bug", "keywords": ["crash", "jumps"]}, {"label": "performance", "keywords": ["slow", "fps"]}, {"label": "docs", "keywords": ["typo"]}]"#,
        )
        .unwrap();
        serde_json::from_value(manifest).unwrap()
    }

    #[test]
    fn keyword_rules_match_whole_words_in_any_case() {
        let issue: serde_json::Value =
            serde_json::from_str(include_str!("../../../../events/github-issues-opened.json"))
                .unwrap();
        let (title, body) = (
            issue["issue"]["title"].as_str().unwrap(),
            issue["issue"]["body"].as_str().unwrap(),
        );
        assert_eq!(labels(title, body, &rules()), ["bug"]);
        let fj: serde_json::Value = serde_json::from_str(include_str!(
            "../../../../events/forgejo-issues-opened.json"
        ))
        .unwrap();
        assert_eq!(
            labels(
                fj["issue"]["title"].as_str().unwrap(),
                fj["issue"]["body"].as_str().unwrap(),
                &rules()
            ),
            ["performance"]
        );
        assert!(
            labels("Crashes on start", "", &rules()).is_empty(),
            "crash is not a prefix match"
        );
        assert_eq!(labels("CRASH", "typo in docs", &rules()), ["bug", "docs"]);
    }

    #[test]
    fn missing_sections_are_listed_once() {
        let sections: Vec<String> = ["Steps", "Expected", "Version"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let issue: serde_json::Value =
            serde_json::from_str(include_str!("../../../../events/github-issues-opened.json"))
                .unwrap();
        assert!(missing_sections(issue["issue"]["body"].as_str().unwrap(), &sections).is_empty());
        let missing = missing_sections("It crashed.\n\nversion: 1.2", &sections);
        assert_eq!(missing, ["Steps", "Expected"]);
        let text = ask(&missing);
        assert!(text.starts_with(MARKER) && text.contains("- **Steps**\n- **Expected**"));
    }
}
