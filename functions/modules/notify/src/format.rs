//! One-line messages per event kind, for GitHub, Forgejo/Gitea and GitLab payloads, and for
//! crash notifications from the module SDK. Every formatter falls back to the generic line
//! when a field is missing, so notify never fails on an unfamiliar payload.

use serde_json::Value;
use switchyard::event::{EventType, lookup, scalar_text};
use switchyard::{Event, ModuleContext};

fn text(v: &Value, paths: &[&str]) -> Option<String> {
    paths
        .iter()
        .find_map(|p| lookup(v, p).and_then(scalar_text))
        .filter(|s| !s.is_empty())
}

fn cut(s: &str, max: usize) -> String {
    let first = s.lines().next().unwrap_or_default().trim();
    if first.chars().count() > max {
        let c: String = first.chars().take(max).collect();
        format!("{}…", c.trim_end())
    } else {
        first.to_owned()
    }
}

fn repo(e: &Event) -> String {
    e.repository.clone().unwrap_or_else(|| e.source.clone())
}

fn who(e: &Event) -> Option<String> {
    e.sender
        .as_ref()
        .map(|s| s.login.clone())
        .or_else(|| text(&e.payload, &["user.username", "user_username"]))
}

fn action(e: &Event) -> Option<String> {
    e.action.clone().or_else(|| text(&e.payload, &["action"]))
}

/// `subject verb [by who][: "quote"] [url]`
fn line(
    subject: String,
    verb: &str,
    who: Option<String>,
    quote: Option<String>,
    url: Option<String>,
) -> String {
    let mut out = format!("{subject} {verb}");
    if let Some(w) = who {
        out.push_str(" by ");
        out.push_str(&w);
    }
    if let Some(q) = quote {
        out.push_str(&format!(": \"{q}\""));
    }
    if let Some(u) = url {
        out.push(' ');
        out.push_str(&u);
    }
    out
}

/// Group mentions chat services expand (Slack, Mattermost, Discord); lower-case.
const GROUP_MENTIONS: &[&str] = &["channel", "here", "everyone", "all"];

/// `text` made inert for a Slack-compatible chat: `&`, `<` and `>` escaped as Slack asks
/// (so `<!channel>`, `<@U123>` and masked links `<url|label>` stay text), and a zero-width
/// space after the `@` of `@channel`, `@here`, `@everyone` and `@all`. One pass, linear in
/// the text. Every message is built from sender-controlled text (titles, bodies, logins,
/// branch names), so the whole line goes through it.
pub fn chat_safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for (i, c) in text.char_indices() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '@' => {
                out.push('@');
                let rest = &text.as_bytes()[i + 1..];
                if GROUP_MENTIONS.iter().any(|m| {
                    rest.len() >= m.len() && rest[..m.len()].eq_ignore_ascii_case(m.as_bytes())
                }) {
                    out.push('\u{200B}');
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// The message for one context, safe to post ([`chat_safe`]).
pub fn format_message(ctx: &ModuleContext) -> String {
    chat_safe(&raw_message(ctx))
}

fn raw_message(ctx: &ModuleContext) -> String {
    let e = &ctx.event;
    let p = &e.payload;
    let max = ctx
        .config
        .get("max_title")
        .and_then(Value::as_u64)
        .unwrap_or(120) as usize;
    if ctx.trigger.kind == "crash" {
        let c = &ctx.config["crash"];
        return format!(
            "module {} crashed on job {} ({} {}): {}",
            c["module"].as_str().unwrap_or("?"),
            c["job_id"].as_str().unwrap_or("?"),
            e.event_type.as_str(),
            ctx.entity,
            c["error"].as_str().unwrap_or("?")
        );
    }
    let act = action(e).unwrap_or_default();
    match &e.event_type {
        EventType::PullRequest | EventType::MergeRequest => line(
            e.entity.clone(),
            &format!("{} {act}", e.event_type.as_str()),
            who(e),
            text(p, &["pull_request.title", "object_attributes.title"]).map(|t| cut(&t, max)),
            text(p, &["pull_request.html_url", "object_attributes.url"]),
        ),
        EventType::Issues => line(
            e.entity.clone(),
            &format!("issue {act}"),
            who(e),
            text(p, &["issue.title", "object_attributes.title"]).map(|t| cut(&t, max)),
            text(p, &["issue.html_url", "object_attributes.url"]),
        ),
        EventType::IssueComment => comment(e, max),
        EventType::Other(t) if t == "note" => comment(e, max),
        EventType::Push => push(e, max),
        EventType::Other(t) if t == "release" => {
            let tag = text(p, &["release.tag_name", "tag"]).unwrap_or_default();
            line(
                format!("{} release {tag}", repo(e)),
                &act,
                who(e),
                text(p, &["release.name", "name"]).map(|t| cut(&t, max)),
                text(p, &["release.html_url", "url"]),
            )
        }
        EventType::Other(t) if t == "workflow_run" => {
            let outcome =
                text(p, &["workflow_run.conclusion", "workflow_run.status"]).unwrap_or_default();
            format!(
                "{} workflow \"{}\" {outcome} on {} (run {}) {}",
                repo(e),
                text(p, &["workflow_run.name", "workflow.name"]).unwrap_or_default(),
                text(p, &["workflow_run.head_branch"]).unwrap_or_default(),
                text(p, &["workflow_run.run_number"]).unwrap_or_default(),
                text(p, &["workflow_run.html_url"]).unwrap_or_default()
            )
        }
        EventType::Other(t) if t == "pipeline" => format!(
            "{} pipeline {} on {} (#{}) {}",
            repo(e),
            text(p, &["object_attributes.status"]).unwrap_or_default(),
            text(p, &["object_attributes.ref"]).unwrap_or_default(),
            text(p, &["object_attributes.iid", "object_attributes.id"]).unwrap_or_default(),
            text(p, &["object_attributes.url"]).unwrap_or_default()
        ),
        _ => generic(e),
    }
}

fn comment(e: &Event, max: usize) -> String {
    let p = &e.payload;
    let number = text(
        p,
        &[
            "issue.number",
            "issue.iid",
            "merge_request.iid",
            "pull_request.number",
        ],
    );
    let subject = match number {
        Some(n) => format!("{}#{n}", repo(e)),
        None => e.entity.clone(),
    };
    line(
        subject,
        "comment",
        who(e),
        text(p, &["comment.body", "object_attributes.note"]).map(|b| cut(&b, max.min(80))),
        text(p, &["comment.html_url", "object_attributes.url"]),
    )
}

fn push(e: &Event, max: usize) -> String {
    let p = &e.payload;
    let commits = lookup(p, "commits")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let count = text(p, &["total_commits_count", "total_commits"])
        .and_then(|c| c.parse::<usize>().ok())
        .unwrap_or(commits);
    let r = text(p, &["ref"]).unwrap_or_default();
    let target = match r.strip_prefix("refs/tags/") {
        Some(tag) => format!("tag {tag}"),
        None => r.strip_prefix("refs/heads/").unwrap_or(&r).to_owned(),
    };
    let pusher = text(
        p,
        &[
            "pusher.name",
            "pusher.login",
            "pusher.username",
            "user_username",
        ],
    )
    .or_else(|| who(e));
    let head = lookup(p, "commits")
        .and_then(Value::as_array)
        .and_then(|c| c.last())
        .and_then(|c| text(c, &["message"]))
        .map(|m| cut(&m, max));
    let url = text(p, &["compare", "compare_url"]).or_else(|| {
        lookup(p, "commits")
            .and_then(Value::as_array)
            .and_then(|c| c.last())
            .and_then(|c| text(c, &["url"]))
    });
    let noun = if count == 1 { "commit" } else { "commits" };
    let mut out = format!(
        "{}: {} pushed {count} {noun} to {target}",
        repo(e),
        pusher.unwrap_or_else(|| "someone".into())
    );
    if let Some(h) = head {
        out.push_str(&format!(": \"{h}\""));
    }
    if let Some(u) = url {
        out.push(' ');
        out.push_str(&u);
    }
    out
}

fn generic(e: &Event) -> String {
    let mut out = format!("{} {}", e.entity, e.event_type.as_str());
    if let Some(a) = action(e) {
        out.push(' ');
        out.push_str(&a);
    }
    if let Some(w) = who(e) {
        out.push_str(" by ");
        out.push_str(&w);
    }
    if let Some(u) = text(&e.payload, &["html_url", "url", "object_attributes.url"]) {
        out.push(' ');
        out.push_str(&u);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard::SourceKind;
    use switchyard::config::Source;

    fn ctx(kind: SourceKind, event: &str, body: &str) -> ModuleContext {
        let source = Source::new(kind.as_str(), kind, &["s"]);
        let mut headers = http::HeaderMap::new();
        let header = match kind {
            SourceKind::Github => "x-github-event",
            SourceKind::Forgejo => "x-forgejo-event",
            _ => "x-gitlab-event",
        };
        headers.insert(header, event.parse().unwrap());
        let e = switchyard::event::parse_unverified(
            &source,
            &headers,
            body.as_bytes(),
            time::OffsetDateTime::UNIX_EPOCH,
            &Default::default(),
        )
        .unwrap();
        ModuleContext {
            job_id: "j".into(),
            module: "notify".into(),
            function: "notify".into(),
            trigger: switchyard::dispatch::TriggerRef {
                kind: "webhook".into(),
                index: 0,
            },
            entity: e.entity.clone(),
            config: serde_json::json!({"max_title": 40}),
            event: e.into(),
            payload_ref: None,
            report: false,
        }
    }

    #[test]
    fn each_supported_event_of_each_forge_has_its_line() {
        use SourceKind::*;
        let cases: &[(SourceKind, &str, &str, &str)] = &[
            (
                Github,
                "pull_request",
                include_str!("../../../../events/github-pull_request-opened.json"),
                "acme/widgets#1347 pull_request opened by alice: \"layout: incremental flexbox solver with…\" https://github.com/acme/widgets/pull/1347",
            ),
            (
                Forgejo,
                "pull_request",
                include_str!("../../../../events/forgejo-pull_request-opened.json"),
                "acme/widgets#58 pull_request opened by alice: \"layout: incremental flexbox solver\" https://forge.example.org/acme/widgets/pulls/58",
            ),
            (
                Gitlab,
                "Merge Request Hook",
                include_str!("../../../../events/gitlab-merge_request-opened.json"),
                "acme/widgets#7 merge_request open by alice: \"layout: incremental flexbox solver\" https://gitlab.example.com/acme/widgets/-/merge_requests/7",
            ),
            (
                Github,
                "issues",
                include_str!("../../../../events/github-issues-opened.json"),
                "acme/widgets#1351 issue opened by carol: \"Scroll view jumps to top when an image f…\" https://github.com/acme/widgets/issues/1351",
            ),
            (
                Forgejo,
                "issues",
                include_str!("../../../../events/forgejo-issues-opened.json"),
                "acme/widgets#51 issue opened by alice: \"Layout is slow with 2,000 nodes\" https://forge.example.org/acme/widgets/issues/51",
            ),
            (
                Gitlab,
                "Issue Hook",
                include_str!("../../../../events/gitlab-issues-opened.json"),
                "acme/widgets#23 issue open by alice: \"Scroll view jumps to top\" https://gitlab.example.com/acme/widgets/-/issues/23",
            ),
            (
                Github,
                "issue_comment",
                include_str!("../../../../events/github-issue_comment-created.json"),
                "acme/widgets#1351 comment by alice: \"Reproduced on 0.18.2 with Wayland. It lo…\" https://github.com/acme/widgets/issues/1351#issuecomment-2471100001",
            ),
            (
                Gitlab,
                "Note Hook",
                include_str!("../../../../events/gitlab-note.json"),
                "acme/widgets#23 comment by alice: \"Reproduced on 0.18.2 with Wayland; the s…\" https://gitlab.example.com/acme/widgets/-/issues/23#note_88001",
            ),
            (
                Github,
                "push",
                include_str!("../../../../events/github-push.json"),
                "acme/widgets: alice pushed 2 commits to main: \"layout: walk dirty subtrees only\" https://github.com/acme/widgets/compare/3c2b1a0f9e8d...1f2e3d4c5b6a",
            ),
            (
                Forgejo,
                "push",
                include_str!("../../../../events/forgejo-push.json"),
                "acme/widgets: alice pushed 2 commits to main: \"layout: walk dirty subtrees only\" https://forge.example.org/acme/widgets/compare/3c2b1a0f...1f2e3d4c",
            ),
            (
                Gitlab,
                "Push Hook",
                include_str!("../../../../events/gitlab-push.json"),
                "acme/widgets: alice pushed 2 commits to main: \"layout: walk dirty subtrees only\" https://gitlab.example.com/acme/widgets/-/commit/1f2e3d4c5b6a79880a1b2c3d4e5f60718293a4b7",
            ),
            (
                Github,
                "release",
                include_str!("../../../../events/github-release-published.json"),
                "acme/widgets release v0.19.0 published by carol: \"0.19: incremental layout\" https://github.com/acme/widgets/releases/tag/v0.19.0",
            ),
            (
                Forgejo,
                "release",
                include_str!("../../../../events/forgejo-release-published.json"),
                "acme/widgets release v0.19.0 published by alice: \"0.19: incremental layout\" https://forge.example.org/acme/widgets/releases/tag/v0.19.0",
            ),
            (
                Gitlab,
                "Release Hook",
                include_str!("../../../../events/gitlab-release.json"),
                "acme/widgets release v0.19.0 create: \"0.19: incremental layout\" https://gitlab.example.com/acme/widgets/-/releases/v0.19.0",
            ),
            (
                Github,
                "workflow_run",
                include_str!("../../../../events/github-workflow_run-completed.json"),
                "acme/widgets workflow \"CI\" failure on layout-cache (run 4512) https://github.com/acme/widgets/actions/runs/11000000001",
            ),
            (
                Gitlab,
                "Pipeline Hook",
                include_str!("../../../../events/gitlab-pipeline.json"),
                "acme/widgets pipeline failed on main (#412) https://gitlab.example.com/acme/widgets/-/pipelines/77001",
            ),
            (
                Github,
                "deployment",
                r#"{"action":"created","repository":{"full_name":"acme/widgets"},"sender":{"login":"carol"}}"#,
                "acme/widgets deployment created by carol",
            ),
        ];
        for (kind, event, body, want) in cases {
            assert_eq!(
                format_message(&ctx(*kind, event, body)),
                *want,
                "{kind} {event}"
            );
        }
    }

    #[test]
    fn sender_text_cannot_mention_everyone_or_mask_links() {
        let mut pr: Value = serde_json::from_str(include_str!(
            "../../../../events/github-pull_request-opened.json"
        ))
        .unwrap();
        pr["pull_request"]["title"] =
            Value::from("<!channel> @here @Everyone look <https://evil.example|docs> & more");
        let c = ctx(SourceKind::Github, "pull_request", &pr.to_string());
        let line = format_message(&c);
        for raw in ["<!channel>", "<https://", "@here", "@Everyone", " & "] {
            assert!(!line.contains(raw), "{raw} in {line}");
        }
        assert!(line.contains("&lt;!channel&gt;"), "{line}");
        assert!(
            line.contains("@\u{200B}here") && line.contains("@\u{200B}Everyone"),
            "{line}"
        );
        // Ordinary mentions and addresses stay as they are.
        assert_eq!(
            chat_safe("ping @alice at a@b.org"),
            "ping @alice at a@b.org"
        );
        assert_eq!(chat_safe("@channel"), "@\u{200B}channel");
        assert_eq!(chat_safe("a&b"), "a&amp;b");
    }
}
