//! What routes where, and how the HTTP edge answers bad input.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn pull_request_opened_routes_to_the_module_that_listens_and_closed_does_not() {
    let app = TestApp::new(&[module("reviewer", "")]).await;
    let (status, body) = app
        .github("pull_request", "d-open", &pr_payload("opened", 1))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["event_id"], "d-open");
    assert_eq!(body["jobs"][0]["module"], "reviewer");
    let job = app.job(&job_ids(&body)[0]).await;
    assert_eq!(job.module, "reviewer");
    assert_eq!(job.entity, "acme/widgets#1");
    assert_eq!(job.event_id, "d-open");
    assert_eq!(job.attempts, 1);
    assert_eq!(app.invokes.get(), 1);

    let (status, body) = app
        .github("pull_request", "d-closed", &pr_payload("closed", 1))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["jobs"], json!([]));
    assert_eq!(
        skipped(&body),
        vec![("reviewer".to_owned(), "action".to_owned())]
    );
    assert_eq!(app.invokes.get(), 1, "closed invoked nothing");
}

#[tokio::test]
async fn an_event_no_module_claims_is_acknowledged_with_no_jobs() {
    let app = TestApp::new(&[module("reviewer", "")]).await;
    for (event, file) in [
        ("ping", include_str!("../../events/github-ping.json")),
        (
            "issues",
            include_str!("../../events/github-issues-opened.json"),
        ),
        ("workflow_run", r#"{"action":"completed"}"#),
    ] {
        let (status, body) = app.github(event, &format!("d-{event}"), file).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{event}: {body}");
        assert_eq!(body["jobs"], json!([]), "{event}");
        assert_eq!(body["skipped"], json!([]), "{event}");
    }
    assert_eq!(app.invokes.get(), 0);
    assert!(app.items("JOB#").await.is_empty());
}

#[tokio::test]
async fn gitlab_merge_requests_route_through_the_same_manifest() {
    let manifest = "name: mr\ndescription: d\nfunction: notify\ntriggers:\n  - webhook:\n      event: [pull_request, merge_request]\n      actions: [opened, open]\n".to_owned();
    let app = TestApp::new(&[manifest]).await;
    let body = include_str!("../../events/gitlab-merge_request-opened.json");
    let req = Request::post("/webhooks/gitlab")
        .header("x-gitlab-token", SECRET)
        .header("x-gitlab-event", "Merge Request Hook")
        .header("x-gitlab-event-uuid", "gl-1")
        .body(Body::from(body))
        .unwrap();
    let (status, resp) = app.send(req).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{resp}");
    let job = app.job(&job_ids(&resp)[0]).await;
    assert_eq!(job.entity, "acme/widgets#7");
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx_with_a_stable_body_and_writes_nothing() {
    let app = TestApp::with(
        &[module("reviewer", "")],
        Options {
            max_body: Some(64 * 1024),
            ..Default::default()
        },
    )
    .await;
    let payload = pr_payload("opened", 1);

    // Unknown source.
    let mut req = github_request(
        "pull_request",
        "d-1",
        &payload,
        SECRET,
        app.clock.now_time(),
    );
    *req.uri_mut() = "/webhooks/bitbucket".parse().unwrap();
    let (status, body) = app.send(req).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );

    // Wrong secret and missing signature: one generic 401 that does not say which check failed.
    let (status, wrong) = app
        .send(github_request(
            "pull_request",
            "d-2",
            &payload,
            "nope",
            app.clock.now_time(),
        ))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let unsigned = Request::post("/webhooks/github")
        .header("x-github-event", "pull_request")
        .body(Body::from(payload.clone()))
        .unwrap();
    let (status, missing) = app.send(unsigned).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong, missing);
    assert_eq!(
        wrong,
        json!({"code": "unauthorized", "message": "signature verification failed"})
    );

    // Malformed JSON behind a valid signature.
    let (status, body) = app
        .send(github_request(
            "pull_request",
            "d-3",
            "{not json",
            SECRET,
            app.clock.now_time(),
        ))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_request"))
    );
    // JSON whose grammar holds but which no JSON tree takes (a number past f64, a lone
    // surrogate): refused at the door too, with where.
    for (id, text, at) in [
        ("d-3a", r#"{"n": 1e400}"#, "line 1 column 7"),
        ("d-3b", "{\"t\":\n \"\\ud800\"}", "line 2 column 2"),
    ] {
        let (status, body) = app
            .send(github_request(
                "pull_request",
                id,
                text,
                SECRET,
                app.clock.now_time(),
            ))
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("bad_request")),
            "{text}"
        );
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains(at), "{text}: {message}");
    }

    // Over the limit, declared and streamed.
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(70 * 1024));
    let (status, body) = app
        .send(github_request(
            "pull_request",
            "d-4",
            &big,
            SECRET,
            app.clock.now_time(),
        ))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large"))
    );
    let mut req = github_request("pull_request", "d-5", &big, SECRET, app.clock.now_time());
    req.headers_mut().remove("content-length");
    let (status, _) = app.send(req).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    // Other paths and methods.
    let (status, body) = app
        .send(
            Request::get("/webhooks/github")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(status.is_client_error(), "{status}");
    let _ = body;
    let (status, body) = app
        .send(Request::post("/nope").body(Body::empty()).unwrap())
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );

    assert!(app.items("").await.is_empty(), "nothing was written");
    assert_eq!(app.invokes.get(), 0);
}

#[tokio::test]
async fn api_gateway_envelopes_from_events_route_through_the_app() {
    let app = TestApp::with(
        &[module("reviewer", "")],
        Options {
            secret: Some("switchyard-dev-secret".into()),
            ..Default::default()
        },
    )
    .await;
    for (file, want) in [
        (
            include_str!("../../events/apigw-router-github-pull_request-opened.json"),
            StatusCode::ACCEPTED,
        ),
        (
            include_str!("../../events/apigw-router-github-bad-signature.json"),
            StatusCode::UNAUTHORIZED,
        ),
    ] {
        let req = lambda_http::request::from_str(file).unwrap();
        let req = req.map(|b| Body::from(b.to_vec()));
        let (status, body) = app.send(req).await;
        assert_eq!(status, want, "{body}");
        if want == StatusCode::ACCEPTED {
            assert_eq!(body["event_id"], "6f1c2a80-c7b4-11ef-9d4e-2b1d0c5e8a11");
            assert_eq!(body["jobs"][0]["module"], "reviewer");
        }
    }
}

#[tokio::test]
async fn events_no_module_claims_go_to_the_fallback_module() {
    let notifier = "name: notifier\ndescription: fallback\nfunction: notify\ntriggers:\n  - webhook: { event: release }\n".to_owned();
    let app = TestApp::with(
        &[module("reviewer", ""), notifier],
        Options {
            vars: vec![("SWITCHYARD_FALLBACK_MODULE".into(), "notifier".into())],
            ..Default::default()
        },
    )
    .await;
    let (status, body) = app
        .github("push", "f-1", include_str!("../../events/github-push.json"))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["jobs"][0]["module"], "notifier");
    let job = app.job(&job_ids(&body)[0]).await;
    assert_eq!(job.trigger, "fallback");
    // A claimed event does not go to the fallback; neither does a ping.
    let (_, body) = app
        .github("pull_request", "f-2", &pr_payload("opened", 1))
        .await;
    assert_eq!(body["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(body["jobs"][0]["module"], "reviewer");
    let (_, body) = app
        .github("ping", "f-3", include_str!("../../events/github-ping.json"))
        .await;
    assert_eq!(body["jobs"], json!([]));
}
