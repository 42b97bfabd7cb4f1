//! pr-review and issue-triage end to end: the router (in process, on the end-to-end table)
//! fans out through `cargo lambda watch` to the real module functions, which call a forge
//! stand-in; the test checks the forge calls and the job records.

use std::time::Duration;

use serde_json::Value;
use switchyard::store::JobStatus;

use crate::common::*;
use crate::forge_standin;

fn job_of(body: &Value, module: &str) -> String {
    body["jobs"]
        .as_array()
        .and_then(|jobs| jobs.iter().find(|j| j["module"] == module))
        .and_then(|j| j["job_id"].as_str())
        .unwrap_or_else(|| panic!("{module} not dispatched: {body}"))
        .to_owned()
}

#[tokio::test]
async fn pr_review_and_issue_triage_call_the_forge_and_record_their_jobs() {
    let port: u16 = std::env::var("SWITCHYARD_TEST_FORGE_PORT")
        .expect("set by make test")
        .parse()
        .unwrap();
    let forge = forge_standin::start(port).await;
    let table = std::env::var("SWITCHYARD_TEST_E2E_TABLE").expect("set by make test");
    let manifests = [
        include_str!("../../functions/modules/pr-review/module.yaml").to_owned(),
        include_str!("../../functions/modules/issue-triage/module.yaml").to_owned(),
    ];
    let app = TestApp::with(
        &manifests,
        Options {
            table: Some(table),
            ..Default::default()
        },
    )
    .await;
    let number = 20_000 + u64::from(uuid::Uuid::new_v4().as_fields().1);
    let run = uuid::Uuid::new_v4().simple().to_string();

    // Opened: 25 lines -> size S, a new sticky comment.
    forge.lock().unwrap().files.insert(
        number,
        vec![
            ("src/a.rs".into(), 20, 0),
            ("db/migrations/1.sql".into(), 5, 0),
        ],
    );
    let (status, body) = app
        .github(
            "pull_request",
            &format!("{run}-1"),
            &pr_payload("opened", number),
        )
        .await;
    assert_eq!(status.as_u16(), 202, "{body}");
    let job = finished_job(&app.store, &job_of(&body, "pr-review")).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    assert_eq!(job.output.as_ref().unwrap()["size"], "S");
    assert_eq!(job.journal, ["2 files, 25 lines: size S"]);
    {
        let f = forge.lock().unwrap();
        let comments: Vec<_> = f.comments.iter().filter(|c| c.0 == number).collect();
        assert_eq!(comments.len(), 1);
        assert!(
            comments[0].2.contains("**Size: S**") && comments[0].2.contains("db/migrations/1.sql")
        );
        assert!(
            f.calls.contains(&format!("POST labels {number} size/S")),
            "{:?}",
            f.calls
        );
    }

    // Synchronize after the cooldown: 120 lines -> size M; the comment is edited, the label swapped.
    app.clock.advance(Duration::from_secs(6 * 60));
    forge
        .lock()
        .unwrap()
        .files
        .insert(number, vec![("src/a.rs".into(), 100, 20)]);
    let mut sync: Value = serde_json::from_str(&pr_payload("synchronize", number)).unwrap();
    sync["pull_request"]["labels"] =
        serde_json::json!([{"id": 1, "name": "size/S"}, {"id": 2, "name": "enhancement"}]);
    let (_, body) = app
        .github("pull_request", &format!("{run}-2"), &sync.to_string())
        .await;
    let job = finished_job(&app.store, &job_of(&body, "pr-review")).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    {
        let f = forge.lock().unwrap();
        let comments: Vec<_> = f.comments.iter().filter(|c| c.0 == number).collect();
        assert_eq!(comments.len(), 1, "edited, not added");
        assert!(comments[0].2.contains("**Size: M**"));
        assert!(
            f.calls.iter().any(|c| c.starts_with("PATCH comment")),
            "{:?}",
            f.calls
        );
        assert!(f.calls.contains(&format!("DELETE label {number} size/S")));
        assert!(f.calls.contains(&format!("POST labels {number} size/M")));
    }

    // A new issue without the template's sections: labelled, asked once.
    let mut issue: Value =
        serde_json::from_str(include_str!("../../events/github-issues-opened.json")).unwrap();
    issue["issue"]["number"] = Value::from(number + 1);
    issue["issue"]["body"] = Value::from("The app crash happens whenever I scroll fast.");
    for delivery in [format!("{run}-3"), format!("{run}-4")] {
        let (_, body) = app.github("issues", &delivery, &issue.to_string()).await;
        let job = finished_job(&app.store, &job_of(&body, "issue-triage")).await;
        assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    }
    let f = forge.lock().unwrap();
    let asks: Vec<_> = f.comments.iter().filter(|c| c.0 == number + 1).collect();
    assert_eq!(asks.len(), 1, "asked once");
    assert!(
        asks[0]
            .2
            .contains("- **Steps**\n- **Expected**\n- **Version**")
    );
    assert!(f.labels.contains(&(number + 1, "bug".to_owned())));
}
