//! The test harness: a `TestApp` owns a fresh table on DynamoDB Local, SDK clients that
//! count their HTTP attempts (an interceptor, not a mock), the router app with a manual
//! clock, and signed-request builders. `make test` starts DynamoDB Local and
//! `cargo lambda watch` and passes their endpoints in the environment.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use secrecy::SecretString;
use serde_json::Value;
use switchyard::clock::ManualClock;
use switchyard::config::{Config, Source, SourceKind};
use switchyard::dispatch::{DispatchSettings, Dispatcher};
use switchyard::fanout::LambdaFanout;
use switchyard::store::{DynamoStore, JobRecord, JobStatus, JobStore};
use switchyard::webhook::{RouterState, app};
use switchyard::{Registry, signature};
use time::OffsetDateTime;
use tower::ServiceExt as _;

pub const SECRET: &str = "it-secret-0123456789";

/// Counts HTTP attempts of an SDK client.
#[derive(Debug, Clone, Default)]
pub struct Counter(Arc<AtomicUsize>);

impl Counter {
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
    pub fn reset(&self) {
        self.0.store(0, Ordering::SeqCst);
    }
}

impl Intercept for Counter {
    fn name(&self) -> &'static str {
        "attempt-counter"
    }
    fn read_before_transmit(
        &self,
        _ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the integration tests through `make test`, which starts DynamoDB Local and cargo lambda watch")
    })
}

pub fn dynamodb_endpoint() -> String {
    env("SWITCHYARD_TEST_DYNAMODB")
}
pub fn lambda_endpoint() -> String {
    env("SWITCHYARD_TEST_LAMBDA")
}

async fn sdk() -> aws_config::SdkConfig {
    let creds = aws_sdk_dynamodb::config::Credentials::new("local", "local", None, None, "tests");
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(creds)
        .load()
        .await
}

pub async fn dynamo_client(endpoint: &str, counter: &Counter) -> aws_sdk_dynamodb::Client {
    let sdk = sdk().await;
    let conf = switchyard::aws::dynamodb_config(&sdk)
        .endpoint_url(endpoint)
        .interceptor(counter.clone())
        .build();
    aws_sdk_dynamodb::Client::from_conf(conf)
}

/// The store's lean client (the delivery path's writes) at `endpoint`.
pub async fn wire(endpoint: &str) -> switchyard::store::dynamo::wire::Wire {
    let sdk = sdk().await;
    let credentials = sdk.credentials_provider().unwrap();
    switchyard::store::dynamo::wire::Wire::new(endpoint, "us-east-1", credentials).unwrap()
}

pub async fn lambda_client(endpoint: &str, counter: &Counter) -> aws_sdk_lambda::Client {
    let sdk = sdk().await;
    let conf = switchyard::aws::lambda_config(&sdk, Duration::from_secs(120), true)
        .endpoint_url(endpoint)
        .interceptor(counter.clone())
        .build();
    aws_sdk_lambda::Client::from_conf(conf)
}

pub fn unique_table() -> String {
    format!("it-{}", uuid::Uuid::new_v4().simple())
}

/// A port on 127.0.0.1 with nothing listening (bound, then released).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[derive(Default)]
pub struct Options {
    /// (module, function) overrides.
    pub overrides: Vec<(String, String)>,
    /// Another DynamoDB endpoint (an unreachable one); the table is then not created.
    pub dynamodb: Option<String>,
    /// Share a table with another app.
    pub table: Option<String>,
    pub max_body: Option<usize>,
    /// The sources' secret; `SECRET` when absent.
    pub secret: Option<String>,
    /// Hook points for the dispatcher.
    pub hooks: Option<Arc<switchyard::hooks::Hooks>>,
    /// More configuration variables.
    pub vars: Vec<(String, String)>,
    /// Use published registry versions, checked this often (the manifests are the baseline).
    pub registry_refresh: Option<Duration>,
    /// List pull requests' files through the forge the vars configure (`GITHUB_API_URL`,
    /// `GITHUB_TOKEN`), as the router does.
    pub pr_files: bool,
    /// Show `report: check` jobs as queued on the forge the vars configure.
    pub reports: bool,
}

pub struct TestApp {
    pub router: axum::Router,
    pub dispatcher: Dispatcher,
    pub store: DynamoStore,
    pub table: String,
    pub clock: Arc<ManualClock>,
    pub ddb_calls: Counter,
    pub invokes: Counter,
}

/// A pull module `name` taking GitHub's opened pull requests (its jobs wait for workers).
pub fn pull_module(name: &str) -> String {
    format!(
        "name: {name}\ndescription: pulled\npull: {{}}\ntriggers:\n  - webhook:\n      sources: [github]\n      event: pull_request\n      actions: [opened]\n"
    )
}

/// A manifest of a module listening for GitHub pull requests, invoking `notify` (which,
/// through the watch, finds no job in its own table and does nothing).
pub fn module(name: &str, extra: &str) -> String {
    format!(
        "name: {name}\ndescription: test module {name}\nfunction: notify\ntriggers:\n  - webhook:\n      sources: [github]\n      event: pull_request\n      actions: [opened, synchronize]\n{extra}"
    )
}

impl TestApp {
    pub async fn new(manifests: &[String]) -> Self {
        Self::with(manifests, Options::default()).await
    }

    pub async fn with(manifests: &[String], opts: Options) -> Self {
        let table = opts.table.clone().unwrap_or_else(unique_table);
        let ddb_endpoint = opts.dynamodb.clone().unwrap_or_else(dynamodb_endpoint);
        let ddb_calls = Counter::default();
        let invokes = Counter::default();
        let client = dynamo_client(&ddb_endpoint, &ddb_calls).await;
        if opts.dynamodb.is_none() && opts.table.is_none() {
            DynamoStore::create_table(&client, &table).await.unwrap();
        }
        ddb_calls.reset();
        let store = DynamoStore::new(client, wire(&ddb_endpoint).await, table.clone());
        let mut vars = vec![
            ("SWITCHYARD_TABLE".to_owned(), table.clone()),
            (
                "SWITCHYARD_SOURCES".to_owned(),
                "github=github,gitlab=gitlab".to_owned(),
            ),
            (
                "SWITCHYARD_SECRET_GITHUB".to_owned(),
                opts.secret.clone().unwrap_or_else(|| SECRET.to_owned()),
            ),
            ("SWITCHYARD_SECRET_GITLAB".to_owned(), SECRET.to_owned()),
        ];
        // The in-process app stands for the function on Lambda: Lambda's body limit unless
        // a test sets one (serve mode's lower default is tested on the binary).
        let max = opts
            .max_body
            .unwrap_or(switchyard::config::DEFAULT_MAX_BODY_BYTES);
        vars.push(("SWITCHYARD_MAX_BODY_BYTES".to_owned(), max.to_string()));
        vars.extend(opts.vars.iter().cloned());
        for (module, function) in &opts.overrides {
            vars.push((
                format!(
                    "SWITCHYARD_FUNCTION_{}",
                    switchyard::config::env_key(module)
                ),
                function.clone(),
            ));
        }
        let forges = switchyard::forge::Forges::from_vars(&vars.iter().cloned().collect());
        let config = Arc::new(Config::from_vars(vars).unwrap());
        let named: Vec<(String, String)> = manifests
            .iter()
            .enumerate()
            .map(|(i, m)| (format!("m{i}/module.yaml"), m.clone()))
            .collect();
        let registry =
            Registry::from_manifests(named.iter().map(|(f, t)| (f.as_str(), t.as_str()))).unwrap();
        let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
        let fanout = LambdaFanout::new(lambda_client(&lambda_endpoint(), &invokes).await);
        let store_arc = Arc::new(store.clone());
        let registry = Arc::new(registry);
        let mut dispatcher = Dispatcher::new(
            switchyard::dispatch::DispatchPorts::from_store(store_arc.clone()),
            Arc::new(fanout),
            clock.clone(),
            registry.clone(),
            DispatchSettings::from_config(&config),
        );
        if let Some(refresh) = opts.registry_refresh {
            dispatcher = dispatcher.with_registry_source(Arc::new(
                switchyard::registry::RegistrySource::published(registry, store_arc, refresh),
            ));
        }
        let dispatcher = match opts.hooks {
            Some(h) => dispatcher.with_hooks(h),
            None => dispatcher,
        };
        let dispatcher = if opts.pr_files {
            dispatcher.with_pull_request_files(Arc::new(switchyard::forge::ForgeFiles::new(
                forges.clone(),
                config.pr_files_timeout,
            )))
        } else {
            dispatcher
        };
        let dispatcher = if opts.reports {
            dispatcher.with_job_reports(Arc::new(switchyard::forge::ForgeReports::new(
                forges.clone(),
                config.dashboard_url.clone(),
                Duration::from_secs(3),
            )))
        } else {
            dispatcher
        };
        let router = app(RouterState {
            config,
            dispatcher: dispatcher.clone(),
        });
        Self {
            router,
            dispatcher,
            store,
            table,
            clock,
            ddb_calls,
            invokes,
        }
    }

    /// Signs `body` as GitHub would and posts it to `/webhooks/github`.
    pub async fn github(&self, event: &str, delivery: &str, body: &str) -> (StatusCode, Value) {
        let req = github_request(event, delivery, body, SECRET, self.clock.now_time());
        self.send(req).await
    }

    pub async fn send(&self, req: Request<Body>) -> (StatusCode, Value) {
        let (method, path) = (req.method().to_string(), req.uri().path().to_owned());
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        crate::openapi::check(&method, &path, status.as_u16(), &json);
        (status, json)
    }

    pub async fn job(&self, id: &str) -> JobRecord {
        self.store.get_job(id).await.unwrap().expect("job exists")
    }

    /// Every item of the table whose partition key starts with `prefix`.
    pub async fn items(&self, prefix: &str) -> Vec<HashMap<String, AttributeValue>> {
        let client = dynamo_client(&dynamodb_endpoint(), &Counter::default()).await;
        // Every page: a scan answers at most 1 MB at a time.
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let out = client
                .scan()
                .table_name(&self.table)
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap();
            found.extend(out.items().iter().filter(|i| {
                matches!(i.get("pk"), Some(AttributeValue::S(pk)) if pk.starts_with(prefix))
            }).cloned());
            start = out.last_evaluated_key().cloned();
            if start.is_none() {
                return found;
            }
        }
    }
}

pub trait NowTime {
    fn now_time(&self) -> OffsetDateTime;
}
impl NowTime for ManualClock {
    fn now_time(&self) -> OffsetDateTime {
        switchyard::clock::Clock::now(self)
    }
}

pub fn github_request(
    event: &str,
    delivery: &str,
    body: &str,
    secret: &str,
    now: OffsetDateTime,
) -> Request<Body> {
    let source = Source::new("github", SourceKind::Github, &[]);
    let headers = signature::sign(
        &source,
        &SecretString::from(secret.to_owned()),
        body.as_bytes(),
        delivery,
        now,
    )
    .unwrap();
    let mut req = Request::post("/webhooks/github")
        .header("content-type", "application/json")
        .header("x-github-event", event);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    req.body(Body::from(body.to_owned())).unwrap()
}

/// The opened PR payload with another number (another entity).
pub fn pr_payload(action: &str, number: u64) -> String {
    let mut v: Value =
        serde_json::from_str(include_str!("../../events/github-pull_request-opened.json")).unwrap();
    v["action"] = Value::from(action);
    v["number"] = Value::from(number);
    v["pull_request"]["number"] = Value::from(number);
    v.to_string()
}

pub fn job_ids(resp: &Value) -> Vec<String> {
    resp["jobs"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|j| j["job_id"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

pub fn skipped(resp: &Value) -> Vec<(String, String)> {
    resp["skipped"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    (
                        s["module"].as_str().unwrap().to_owned(),
                        s["reason"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Waits up to 120 s for a job to exist and reach `succeeded` or `failed` (a module running
/// through the watch); returns its last state.
pub async fn finished_job(store: &impl JobStore, job_id: &str) -> JobRecord {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let job = store.get_job(job_id).await.unwrap();
        match job {
            Some(j) if matches!(j.status, JobStatus::Succeeded | JobStatus::Failed) => return j,
            Some(j) if std::time::Instant::now() > deadline => return j,
            None if std::time::Instant::now() > deadline => {
                panic!("job {job_id} was never recorded")
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Sends one JSON request to an app with `headers` and checks the answer against the
/// OpenAPI document: (status, body as JSON, `null` when it is not JSON).
pub async fn call_app(
    router: &axum::Router,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    let resp = router
        .clone()
        .oneshot(req.body(body).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    crate::openapi::check(method, path, status.as_u16(), &body);
    (status, body)
}

/// Every delivery's store usage as the dispatcher reports it (`event_completed`), collected
/// for as long as the subscription lives.
pub fn collect_usage(
    hooks: &switchyard::hooks::Hooks,
) -> (
    Arc<std::sync::Mutex<Vec<switchyard::store::usage::Usage>>>,
    switchyard::hooks::Subscription,
) {
    let seen: Arc<std::sync::Mutex<Vec<switchyard::store::usage::Usage>>> = Arc::default();
    let s = seen.clone();
    let subscription = hooks.event_completed.on(0, move |c| {
        s.lock().unwrap().push(c.store.clone());
        Ok(())
    });
    (seen, subscription)
}
