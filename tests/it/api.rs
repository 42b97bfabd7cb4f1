//! The HTTP API against DynamoDB Local (and the watch, for a module that completes the job):
//! tokens and scopes, invoke with idempotency keys, jobs, cancel, events.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::{Value, json};
use switchyard::api::ApiState;
use switchyard::auth::{Tokens, new_token};
use switchyard::clock::Clock as _;
use switchyard::settings::Settings;
use switchyard::store::{JobStatus, JobStore, SettingsStore};

use crate::common::*;

pub(crate) struct Api {
    pub(crate) app: TestApp,
    pub(crate) router: axum::Router,
    pub(crate) invoke: String,
    pub(crate) read: String,
    pub(crate) admin: String,
}

const MANUAL: &str = "name: manual\ndescription: started by hand\nfunction: notify\ntriggers:\n  - invoke: { config: { source: api } }\n";

async fn api(table: Option<String>) -> Api {
    let app = TestApp::with(
        &[MANUAL.to_owned(), module("reviewer", "")],
        Options {
            table,
            ..Default::default()
        },
    )
    .await;
    Api::over(app)
}

impl Api {
    /// The API app over `app`'s dispatcher and table, with three tokens: `ci` (invoke and
    /// read), `viewer` (read) and `ops` (admin and read).
    pub(crate) fn over(app: TestApp) -> Self {
        let (invoke, e1) = new_token("ci", "invoke+read").unwrap();
        let (read, e2) = new_token("viewer", "read").unwrap();
        let (admin, e3) = new_token("ops", "admin+read+invoke").unwrap();
        let state = ApiState::new(
            app.dispatcher.clone(),
            Arc::new(app.store.clone()),
            Tokens::parse(&format!("{e1},{e2},{e3}")).unwrap(),
        );
        Self {
            router: switchyard::api::app(state),
            app,
            invoke,
            read,
            admin,
        }
    }

    pub(crate) async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.call("GET", path, token, None, None).await
    }

    pub(crate) async fn post(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.call("POST", path, token, None, None).await
    }

    pub(crate) async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let mut headers: Vec<(&str, &str)> = Vec::new();
        if let Some(b) = &bearer {
            headers.push(("authorization", b));
        }
        if let Some(k) = key {
            headers.push(("idempotency-key", k));
        }
        call_app(&self.router, method, path, &headers, body.as_ref()).await
    }
}

#[tokio::test]
async fn tokens_missing_wrong_wrong_scope_and_right_scope() {
    let api = api(None).await;
    let (s, b) = api.get("/modules", None).await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    let (s, _) = api
        .call("GET", "/modules", Some("sy_not_a_token"), None, None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, b) = api.post("/modules/manual/invoke", Some(&api.read)).await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let (s, b) = api.get("/modules", Some(&api.read)).await;
    assert_eq!(s, StatusCode::OK);
    let names: Vec<&str> = b["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["manual", "reviewer"]);
    assert_eq!(b["modules"][0]["triggers"][0]["kind"], "invoke");
}

#[tokio::test]
async fn invoke_answers_202_with_a_job_that_the_module_completes() {
    let table = std::env::var("SWITCHYARD_TEST_E2E_TABLE").expect("set by make test");
    let api = api(Some(table)).await;
    let (s, b) = api
        .call(
            "POST",
            "/modules/manual/invoke",
            Some(&api.invoke),
            None,
            Some(json!({"payload": {"reason": "nightly"}, "entity": "acme/widgets"})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    let job_id = b["job_id"].as_str().unwrap().to_owned();
    assert_eq!(b["status_url"], format!("/jobs/{job_id}"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let job = loop {
        let (s, j) = api.get(&format!("/jobs/{job_id}"), Some(&api.read)).await;
        assert_eq!(s, StatusCode::OK);
        if j["status"] == "succeeded" || j["status"] == "failed" || Instant::now() > deadline {
            break j;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["trigger"], "invoke");
    assert_eq!(job["entity"], "acme/widgets");
    assert!(job.get("pk").is_none());
    let (s, e) = api
        .get(
            &format!("/events/api:{}", job["event_id"].as_str().unwrap()),
            Some(&api.read),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{e}");
    assert_eq!(e["jobs"][0]["job_id"], job_id);
}

#[tokio::test]
async fn unknown_not_invokable_switched_off_and_bad_bodies_are_refused() {
    let api = api(None).await;
    let (s, b) = api.post("/modules/nope/invoke", Some(&api.invoke)).await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (s, b) = api
        .post("/modules/reviewer/invoke", Some(&api.invoke))
        .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("not_invokable"))
    );
    for bad in [
        json!({"unknown": 1}),
        json!({"config": 3}),
        json!([1]),
        json!({"entity": ""}),
    ] {
        let (s, b) = api
            .call(
                "POST",
                "/modules/manual/invoke",
                Some(&api.invoke),
                None,
                Some(bad.clone()),
            )
            .await;
        assert_eq!(
            (s, b["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("bad_request")),
            "{bad}"
        );
    }
    let mut off = Settings::default();
    off.flags.insert("manual".into(), false);
    api.app
        .store
        .put_settings("global", &off, api.app.clock.now())
        .await
        .unwrap();
    let (s, b) = api.post("/modules/manual/invoke", Some(&api.invoke)).await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("disabled")),
        "{b}"
    );
    assert_eq!(api.app.invokes.get(), 0);
}

#[tokio::test]
async fn an_idempotency_key_returns_the_same_job_and_refuses_another_body() {
    let api = api(None).await;
    let body = json!({"payload": {"n": 1}});
    let (s1, a) = api
        .call(
            "POST",
            "/modules/manual/invoke",
            Some(&api.invoke),
            Some("k-1"),
            Some(body.clone()),
        )
        .await;
    let (s2, b) = api
        .call(
            "POST",
            "/modules/manual/invoke",
            Some(&api.invoke),
            Some("k-1"),
            Some(body),
        )
        .await;
    assert_eq!((s1, s2), (StatusCode::ACCEPTED, StatusCode::ACCEPTED));
    assert_eq!(a["job_id"], b["job_id"]);
    assert_eq!(b["duplicate"], true);
    assert_eq!(api.app.invokes.get(), 1);
    let (s, c) = api
        .call(
            "POST",
            "/modules/manual/invoke",
            Some(&api.invoke),
            Some("k-1"),
            Some(json!({"payload": {"n": 2}})),
        )
        .await;
    assert_eq!(
        (s, c["code"].as_str()),
        (StatusCode::CONFLICT, Some("idempotency_conflict"))
    );
    // Without a key every call is a new job.
    let (_, d) = api.post("/modules/manual/invoke", Some(&api.invoke)).await;
    let (_, e) = api.post("/modules/manual/invoke", Some(&api.invoke)).await;
    assert_ne!(d["job_id"], e["job_id"]);
}

#[tokio::test]
async fn jobs_can_be_read_and_cancelled() {
    let api = api(None).await;
    // The job's function is invoked through the watch, where it finds no job of this table:
    // the job stays queued here, so it can be cancelled.
    let (_, b) = api.post("/modules/manual/invoke", Some(&api.invoke)).await;
    let job_id = b["job_id"].as_str().unwrap();
    let (s, j) = api.get(&format!("/jobs/{job_id}"), Some(&api.read)).await;
    assert_eq!((s, j["status"].as_str()), (StatusCode::OK, Some("queued")));
    let (s, c) = api
        .post(&format!("/jobs/{job_id}/cancel"), Some(&api.invoke))
        .await;
    assert_eq!(
        (s, c["status"].as_str()),
        (StatusCode::OK, Some("cancelled"))
    );
    // Cancelling again is a no-op that answers the same.
    let (s, c) = api
        .post(&format!("/jobs/{job_id}/cancel"), Some(&api.invoke))
        .await;
    assert_eq!(
        (s, c["status"].as_str()),
        (StatusCode::OK, Some("cancelled"))
    );
    // A finished job cannot be cancelled.
    let (_, b) = api.post("/modules/manual/invoke", Some(&api.invoke)).await;
    let done = b["job_id"].as_str().unwrap();
    let now = api.app.clock.now();
    api.app.store.start_job(done, now).await.unwrap();
    api.app
        .store
        .finish_job(done, JobStatus::Succeeded, None, None, now)
        .await
        .unwrap();
    let (s, c) = api
        .post(&format!("/jobs/{done}/cancel"), Some(&api.invoke))
        .await;
    assert_eq!(
        (s, c["code"].as_str()),
        (StatusCode::CONFLICT, Some("already_finished"))
    );
    let (s, _) = api.post("/jobs/nope/cancel", Some(&api.invoke)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = api.get("/jobs/nope", Some(&api.read)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = api.get("/events/no-colon", Some(&api.read)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}
