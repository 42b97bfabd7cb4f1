//! The hook bus in the pipeline: filters that drop or redact, actions at each stage, EMF
//! metrics that validate, and job_finished from the module runtime.

use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use serde_json::Value;
use switchyard::hooks::emf::{Emf, MemoryWriter, validate};
use switchyard::hooks::{Flow, Hooks};
use switchyard::store::EventStore;

use crate::common::*;

#[tokio::test]
async fn an_event_filter_can_drop_an_event_which_is_recorded_as_filtered() {
    let hooks = Arc::new(Hooks::default());
    hooks.event_filter.on(0, |gate| {
        let draftless = gate.event.payload["pull_request"]["title"]
            .as_str()
            .unwrap_or_default()
            .starts_with("WIP");
        Ok(if draftless {
            let mut g = gate.clone();
            g.drop = Some("title starts with WIP".into());
            Flow::StopWith(g)
        } else {
            Flow::Keep
        })
    });
    let app = TestApp::with(
        &[module("reviewer", "")],
        Options {
            hooks: Some(hooks),
            ..Default::default()
        },
    )
    .await;
    let mut wip: Value = serde_json::from_str(&pr_payload("opened", 3)).unwrap();
    wip["pull_request"]["title"] = Value::from("WIP: not yet");
    let (status, body) = app.github("pull_request", "h-1", &wip.to_string()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(
        skipped(&body),
        vec![("reviewer".to_owned(), "filtered".to_owned())]
    );
    assert_eq!(app.invokes.get(), 0);
    let event = app.store.get_event("github", "h-1").await.unwrap().unwrap();
    assert_eq!(
        event.skipped[0].detail.as_deref(),
        Some("title starts with WIP")
    );
    // Other events pass.
    let (_, body) = app
        .github("pull_request", "h-2", &pr_payload("opened", 4))
        .await;
    assert_eq!(job_ids(&body).len(), 1);
}

#[tokio::test]
async fn a_context_filter_redacts_what_modules_receive_and_actions_see_each_stage() {
    let hooks = Arc::new(Hooks::default());
    hooks.context_filter.on(0, |ctx| {
        let mut c = ctx.clone();
        if let Some(obj) = Arc::make_mut(&mut c.event).payload.as_object_mut() {
            obj.remove("sender");
        }
        Ok(Flow::Replace(c))
    });
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let (s1, s2, s3, s4) = (seen.clone(), seen.clone(), seen.clone(), seen.clone());
    hooks.event_received.on(0, move |r| {
        s1.lock().unwrap().push(format!("received {}", r.event.id));
        Ok(())
    });
    hooks.module_dispatched.on(0, move |d| {
        let has_sender = d.context.event.payload.get("sender").is_some();
        s2.lock()
            .unwrap()
            .push(format!("dispatched {} sender={has_sender}", d.module));
        Ok(())
    });
    hooks.module_skipped.on(0, move |k| {
        s3.lock()
            .unwrap()
            .push(format!("skipped {} {}", k.module, k.reason));
        Ok(())
    });
    hooks.event_completed.on(0, move |c| {
        s4.lock().unwrap().push(format!(
            "completed {} jobs={} skipped={}",
            c.outcome, c.jobs, c.skipped
        ));
        Ok(())
    });
    let closer =
        module("closer", "").replace("actions: [opened, synchronize]", "actions: [closed]");
    let app = TestApp::with(
        &[module("reviewer", ""), closer],
        Options {
            hooks: Some(hooks),
            ..Default::default()
        },
    )
    .await;
    let (status, _) = app
        .github("pull_request", "c-1", &pr_payload("opened", 1))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "received c-1",
            "dispatched reviewer sender=false",
            "skipped closer action",
            "completed dispatched jobs=1 skipped=1"
        ]
    );
}

#[tokio::test]
async fn pipeline_metrics_are_valid_emf_lines() {
    let captured = MemoryWriter::default();
    let hooks = Arc::new(Hooks::default());
    Arc::new(Emf::to_writer("Switchyard", Box::new(captured.clone()))).register(&hooks);
    let app = TestApp::with(
        &[module("reviewer", "      cooldown: 5m\n")],
        Options {
            hooks: Some(hooks),
            ..Default::default()
        },
    )
    .await;
    app.github("pull_request", "m-1", &pr_payload("opened", 1))
        .await;
    app.github("pull_request", "m-1", &pr_payload("opened", 1))
        .await;
    app.github("pull_request", "m-2", &pr_payload("opened", 1))
        .await;
    app.send(github_request(
        "pull_request",
        "m-3",
        &pr_payload("opened", 1),
        "wrong",
        app.clock.now_time(),
    ))
    .await;
    let lines = captured.lines();
    for l in &lines {
        validate(l).unwrap_or_else(|e| panic!("{e}: {l}"));
    }
    let count = |metric: &str| lines.iter().filter(|l| l.get(metric).is_some()).count();
    assert_eq!(count("EventsReceived"), 3);
    assert_eq!(count("ModulesDispatched"), 1);
    assert_eq!(count("Duplicates"), 1);
    assert_eq!(count("SignatureFailures"), 1);
    assert_eq!(count("DispatchLatency"), 2);
    let skipped: Vec<&Value> = lines
        .iter()
        .filter(|l| l.get("ModulesSkipped").is_some())
        .collect();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0]["reason"], "cooldown");
    assert!(lines.iter().all(|l| !l.to_string().contains(SECRET)));
}
