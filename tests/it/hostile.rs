//! Hostile requests, sent as an attacker would, against the router and the API over
//! DynamoDB Local: events that pass themselves off as starts, ticks or webhook sources,
//! tokens used past their restrictions, inputs the store would refuse, and metric
//! dimensions minted from paths. Each test failed before its fix (docs/reliability.md,
//! "Hostile input").

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use secrecy::SecretString;
use serde_json::{Value, json};
use switchyard::api::ApiState;
use switchyard::auth::{Tokens, new_restricted_token, new_token};
use switchyard::clock::Clock as _;
use switchyard::config::{Source, SourceKind};
use switchyard::settings::Settings;
use switchyard::store::SettingsStore;
use tower::ServiceExt as _;

use crate::common::*;

const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const MANUAL: &str = "name: manual\ndescription: started by hand\nfunction: notify\ntriggers:\n  - invoke: {}\n  - schedule: { cron: \"0 9 * * *\" }\n";
/// Listens for pull requests from webhooks (no `sources`), with a cooldown per PR, and for
/// internal `pull_request` events of `internal.svc` (opted in).
const COOLING: &str = "name: cooling\ndescription: cools down per PR\nfunction: notify\ntriggers:\n  - webhook: { event: pull_request, actions: [opened], cooldown: 5m }\n  - webhook: { sources: [internal.svc], event: pull_request, cooldown: 5m }\n";
/// Listens for `build` events of the webhook source `my-ci`.
const CI: &str = "name: ci-listener\ndescription: reacts to my-ci\nfunction: notify\ntriggers:\n  - webhook: { sources: [my-ci], event: build }\n";
const PULLED: &str = "name: pulled\ndescription: pulled jobs\npull: {}\ntriggers:\n  - webhook: { sources: [internal.svc], event: build }\n";
const OTHER_PULLED: &str = "name: secret-pulled\ndescription: pulled jobs of another team\npull: {}\ntriggers:\n  - webhook: { sources: [internal.svc], event: build }\n";

struct Attack {
    app: TestApp,
    api: axum::Router,
    /// Unrestricted: emit, invoke, read, work.
    emit: String,
    /// Bound to module `pulled` (work) and `manual` (invoke), repository `acme/*`, source
    /// `svc`.
    bound: String,
}

async fn attack() -> Attack {
    let app = TestApp::with(
        &[
            MANUAL.to_owned(),
            COOLING.to_owned(),
            CI.to_owned(),
            PULLED.to_owned(),
            OTHER_PULLED.to_owned(),
        ],
        Options {
            vars: vec![
                (
                    "SWITCHYARD_SOURCES".into(),
                    "github=github,gitlab=gitlab,my-ci=hmac,std=standard".into(),
                ),
                ("SWITCHYARD_SECRET_MY_CI".into(), SECRET.into()),
                ("SWITCHYARD_SECRET_STD".into(), WHSEC.into()),
            ],
            ..Default::default()
        },
    )
    .await;
    let (emit, e1) = new_token("svc", "emit+invoke+read+work").unwrap();
    let (bound, e2) = new_restricted_token(
        "team",
        "emit+invoke+read+work",
        "modules=pulled+manual;repos=acme/*;sources=svc",
    )
    .unwrap();
    let state = ApiState::new(
        app.dispatcher.clone(),
        Arc::new(app.store.clone()),
        Tokens::parse(&format!("{e1},{e2}")).unwrap(),
    );
    Attack {
        api: switchyard::api::app(state),
        app,
        emit,
        bound,
    }
}

impl Attack {
    async fn call(
        &self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let headers: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
        call_app(&self.api, method, path, &headers, body.as_ref()).await
    }

    async fn as_token(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        self.call(method, path, Some(&format!("Bearer {token}")), Some(body))
            .await
    }

    /// Signs `body` for the `hmac` source `my-ci` with delivery id `id`.
    async fn my_ci(&self, id: &str, event: &str, body: &Value) -> (StatusCode, Value) {
        self.signed(
            "my-ci",
            SourceKind::Hmac,
            SECRET,
            id,
            &[("x-event-type", event)],
            body,
        )
        .await
    }

    async fn signed(
        &self,
        source_id: &str,
        kind: SourceKind,
        secret: &str,
        id: &str,
        extra: &[(&str, &str)],
        body: &Value,
    ) -> (StatusCode, Value) {
        let text = body.to_string();
        let source = Source::new(source_id, kind, &[]);
        let headers = switchyard::signature::sign(
            &source,
            &SecretString::from(secret.to_owned()),
            text.as_bytes(),
            id,
            self.app.clock.now(),
        )
        .unwrap();
        let mut req = Request::post(format!("/webhooks/{source_id}"))
            .header("content-type", "application/json");
        for (k, v) in headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(extra.iter().copied())
        {
            req = req.header(k, v);
        }
        self.app.send(req.body(Body::from(text)).unwrap()).await
    }
}

fn modules_of(answer: &Value) -> Vec<String> {
    answer["jobs"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|j| j["module"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn emitted_invoke_and_schedule_events_are_refused_and_signed_ones_start_nothing() {
    let a = attack().await;
    for event_type in ["invoke", "schedule"] {
        let (s, b) = a
            .as_token(
                "POST",
                "/events",
                &a.emit,
                json!({"id": format!("x-{event_type}"), "source": "svc", "type": event_type,
                       "payload": {"module": "manual", "trigger": 1}}),
            )
            .await;
        assert_eq!(
            (s, b["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("bad_request")),
            "{b}"
        );
    }
    // A Standard Webhooks delivery whose payload says `invoke` for `manual`, and an hmac one
    // whose header says `schedule`: signed, but not starts or ticks.
    let (s, b) = a
        .signed(
            "std",
            SourceKind::Standard,
            WHSEC,
            "std-1",
            &[],
            &json!({"type": "invoke", "module": "manual"}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    assert!(modules_of(&b).is_empty(), "{b}");
    let (s, b) = a
        .my_ci(
            "tick-1",
            "schedule",
            &json!({"module": "manual", "trigger": 1}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    assert!(modules_of(&b).is_empty(), "{b}");
    assert_eq!(a.app.invokes.get(), 0);
}

#[tokio::test]
async fn emitted_events_cannot_pass_for_a_webhook_source_take_its_cooldowns_or_its_ids() {
    let a = attack().await;
    // Named after the configured webhook source `my-ci`: its trigger does not listen.
    let (s, b) = a
        .as_token(
            "POST",
            "/events",
            &a.emit,
            json!({"id": "ci-7", "source": "my-ci", "type": "build"}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    assert!(modules_of(&b).is_empty(), "impersonated my-ci: {b}");
    // The real delivery with that id is fresh, not a conflict or a duplicate.
    let (s, b) = a.my_ci("ci-7", "build", &json!({"n": 1})).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    assert_eq!(modules_of(&b), ["ci-listener"], "{b}");

    // An emitted pull request for the PR a webhook will be about: only the trigger that
    // opted in to `internal.svc` runs, under its own cooldown.
    let pr: Value = serde_json::from_str(&pr_payload("opened", 9)).unwrap();
    let (s, b) = a
        .as_token(
            "POST",
            "/events",
            &a.emit,
            json!({"id": "pr-9", "source": "svc", "type": "pull_request", "action": "opened",
                   "entity": "acme/widgets#9", "payload": pr}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    assert_eq!(modules_of(&b), ["cooling"], "{b}");
    let internal_job = a.app.job(b["jobs"][0]["job_id"].as_str().unwrap()).await;
    assert_eq!(internal_job.event_source, "internal.svc");
    // The webhook for that PR is not held back by the emitted event's cooldown.
    let (s, b) = a
        .app
        .github("pull_request", "gh-9", &pr_payload("opened", 9))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    assert_eq!(modules_of(&b), ["cooling"], "squatted cooldown: {b}");
    // And the webhook's cooldown holds for the next webhook.
    let (_, b) = a
        .app
        .github("pull_request", "gh-9b", &pr_payload("opened", 9))
        .await;
    assert!(modules_of(&b).is_empty(), "{b}");
}

#[tokio::test]
async fn bound_tokens_act_only_on_their_modules_sources_and_repositories() {
    let a = attack().await;
    let bound = a.bound.clone();
    let (s, b) = a
        .call("GET", "/whoami", Some(&format!("Bearer {bound}")), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        b["restrictions"],
        json!({"modules": ["pulled", "manual"], "sources": ["svc"], "repos": ["acme/*"]})
    );
    // work: leasing another team's pull module.
    let (s, b) = a
        .as_token(
            "POST",
            "/workers/lease",
            &bound,
            json!({"modules": ["secret-pulled"]}),
        )
        .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden")),
        "{b}"
    );
    let (s, _) = a
        .as_token(
            "POST",
            "/workers/lease",
            &bound,
            json!({"modules": ["pulled"]}),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    // A job of the other module, queued by an emit: heartbeat and finish are refused.
    let (s, b) = a
        .as_token(
            "POST",
            "/events",
            &a.emit,
            json!({"id": "b-1", "source": "svc", "type": "build"}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    let theirs = b["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["module"] == "secret-pulled")
        .unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (path, body) in [
        ("heartbeat", json!({"lease_token": "guess"})),
        (
            "finish",
            json!({"lease_token": "guess", "status": "succeeded"}),
        ),
    ] {
        let (s, b) = a
            .as_token("POST", &format!("/jobs/{theirs}/{path}"), &bound, body)
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}: {b}");
    }
    // invoke: another module, a repository outside `acme/*`, a cancel of another's job.
    let (s, _) = a
        .as_token("POST", "/modules/cooling/invoke", &bound, json!({}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, b) = a
        .as_token(
            "POST",
            "/modules/manual/invoke",
            &bound,
            json!({"payload": {"repository": "evil/repo"}}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    let (s, b) = a
        .as_token(
            "POST",
            "/modules/manual/invoke",
            &bound,
            json!({"payload": {"repository": "acme/widgets"}}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    let (s, _) = a
        .as_token("POST", &format!("/jobs/{theirs}/cancel"), &bound, json!({}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // A replay starts whatever matches: not for a bound token (a dry run reads only).
    let (s, _) = a
        .as_token("POST", "/events/internal.svc:b-1/replay", &bound, json!({}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, b) = a
        .as_token(
            "POST",
            "/events/internal.svc:b-1/replay?dry_run=true",
            &bound,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // emit: another source.
    let (s, _) = a
        .as_token(
            "POST",
            "/events",
            &bound,
            json!({"id": "o-1", "source": "other", "type": "build"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn inputs_the_store_would_refuse_answer_400_not_503() {
    let a = attack().await;
    let t = a.emit.clone();
    let long = "j".repeat(3000);
    for (method, path, body) in [
        ("GET", format!("/jobs/{long}"), json!({})),
        ("POST", format!("/jobs/{long}/cancel"), json!({})),
        ("GET", format!("/events/github:{long}"), json!({})),
        (
            "POST",
            "/jobs/abc/heartbeat".to_owned(),
            json!({"lease_token": ""}),
        ),
        (
            "POST",
            "/jobs/abc/finish".to_owned(),
            json!({"lease_token": "", "status": "failed"}),
        ),
    ] {
        let (s, b) = a.as_token(method, &path, &t, body).await;
        assert_eq!(
            (s, b["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("bad_request")),
            "{method} {}: {b}",
            &path[..path.len().min(40)]
        );
    }
    // A cursor edited to hold an empty key.
    for i in 0..3 {
        a.app
            .github(
                "pull_request",
                &format!("c-{i}"),
                &pr_payload("opened", 100 + i),
            )
            .await;
    }
    let (s, page) = a.as_token("GET", "/events?limit=1", &t, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{page}");
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut cursor: Value =
        serde_json::from_slice(&b64.decode(page["next_cursor"].as_str().unwrap()).unwrap())
            .unwrap();
    cursor["b"] = json!("");
    let edited = b64.encode(cursor.to_string());
    let (s, b) = a
        .as_token(
            "GET",
            &format!("/events?limit=1&cursor={edited}"),
            &t,
            json!({}),
        )
        .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_request")),
        "{b}"
    );
}

#[tokio::test]
async fn an_idempotency_key_first_used_while_switched_off_never_answers_a_missing_job() {
    let a = attack().await;
    let mut off = Settings::default();
    off.flags.insert("manual".into(), false);
    a.app
        .store
        .put_settings("global", &off, a.app.clock.now())
        .await
        .unwrap();
    let send = || async {
        let req = Request::post("/modules/manual/invoke")
            .header("authorization", format!("Bearer {}", a.emit))
            .header("idempotency-key", "k-off")
            .body(Body::empty())
            .unwrap();
        let resp = a.api.clone().oneshot(req).await.unwrap();
        let s = resp.status();
        let b: Value =
            serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
        (s, b)
    };
    let (s, b) = send().await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("disabled")),
        "{b}"
    );
    a.app
        .store
        .put_settings("global", &Settings::default(), a.app.clock.now())
        .await
        .unwrap();
    // Switched on again (whether this process's settings cache has seen it yet or not), the
    // key's answer stands: 409, never 202 with a job that does not exist.
    let (s, b) = send().await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("disabled")),
        "{b}"
    );
    assert!(b["job_id"].is_null(), "{b}");
}

#[tokio::test]
async fn replay_asks_who_first_and_the_bearer_scheme_is_case_insensitive() {
    let a = attack().await;
    let (s, b) = a
        .call("POST", "/events/github:x/replay?force=maybe", None, None)
        .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized")),
        "{b}"
    );
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let (s, b) = a
            .call(
                "GET",
                "/whoami",
                Some(&format!("{scheme} {}", a.emit)),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{scheme}: {b}");
    }
    let (s, _) = a
        .call("GET", "/whoami", Some(&format!("Basic {}", a.emit)), None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn requests_to_unknown_sources_report_one_metric_dimension() {
    use switchyard::hooks::emf::{Emf, MemoryWriter};
    let captured = MemoryWriter::default();
    let hooks = Arc::new(switchyard::hooks::Hooks::default());
    Arc::new(Emf::to_writer("Switchyard", Box::new(captured.clone()))).register(&hooks);
    let app = TestApp::with(
        &[module("reviewer", "")],
        Options {
            hooks: Some(hooks),
            ..Default::default()
        },
    )
    .await;
    for i in 0..5 {
        let req = Request::post(format!("/webhooks/random-{i}-{}", uuid::Uuid::new_v4()))
            .body(Body::from("{}"))
            .unwrap();
        let (s, _) = app.send(req).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }
    let lines = captured.lines();
    let sources: std::collections::BTreeSet<String> = lines
        .iter()
        .filter(|l| l.get("RequestsRejected").is_some())
        .map(|l| l["source"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        sources.into_iter().collect::<Vec<_>>(),
        ["(unknown)"],
        "{lines:?}"
    );
}
