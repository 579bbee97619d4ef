//! An HTTP fake of the Kubernetes API server, enough for Jobs: the real REST paths
//! (`/apis/batch/v1/namespaces/{ns}/jobs[/{name}]`, `?watch=true`), real `Status` objects
//! for errors (409 AlreadyExists, 403 quota, 404 NotFound), and newline-delimited watch
//! events. It runs on loopback in its own runtime, and tells the tests what it was asked.

#![allow(dead_code, reason = "each test file uses a different part of the fake")]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

/// How a watched Job ends.
#[derive(Debug, Clone)]
pub enum Ending {
    Complete,
    Failed { reason: String, message: String },
}

#[derive(Default)]
struct Inner {
    /// (namespace, name) → the stored Job (JSON, as created, plus metadata and status).
    jobs: BTreeMap<(String, String), Value>,
    /// Namespaces whose ResourceQuota is full.
    quota_full: BTreeSet<String>,
    /// Namespaces that exist (all, when empty).
    namespaces: BTreeSet<String>,
    ending: Option<Ending>,
    /// Watches opened so far; the first one the fake closes at once, like an API server
    /// ending a watch early, so clients must re-watch.
    watches: usize,
    version: u64,
    creates: usize,
    /// How long each create takes (a slow or throttled API server).
    create_delay: Duration,
    /// Creates being handled right now, and the most there ever were at once.
    creates_in_flight: usize,
    max_creates_in_flight: usize,
}

/// A running fake API server.
pub struct FakeApi {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl FakeApi {
    /// Starts the fake on 127.0.0.1 with an ephemeral port, on a runtime of its own (so it
    /// works from sync tests and from inside `#[tokio::test]` alike).
    pub fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/apis/batch/v1/namespaces/{ns}/jobs", get(list_or_watch).post(create))
            .route("/apis/batch/v1/namespaces/{ns}/jobs/{name}", get(read))
            .with_state(inner.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, inner, runtime: Some(runtime) }
    }

    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig that points at the fake, written into `dir`.
    pub fn kubeconfig(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\nusers:\n- name: fake\n  user:\n    token: not-a-secret\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: default\ncurrent-context: fake\n",
            self.url()
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    /// A kube client for in-process use; call it inside the test's runtime.
    pub fn client(&self) -> kube::Client {
        kube::Client::try_from(kube::Config::new(self.url().parse().unwrap())).unwrap()
    }

    /// Makes creating a Job in `namespace` fail as a full ResourceQuota does.
    pub fn fill_quota(&self, namespace: &str, full: bool) {
        let mut inner = self.inner.lock().unwrap();
        if full {
            inner.quota_full.insert(namespace.to_owned());
        } else {
            inner.quota_full.remove(namespace);
        }
    }

    /// Only these namespaces exist from now on.
    pub fn namespaces(&self, names: &[&str]) {
        self.inner.lock().unwrap().namespaces = names.iter().map(|s| (*s).to_owned()).collect();
    }

    /// How Jobs end once watched.
    pub fn end_jobs_with(&self, ending: Ending) {
        self.inner.lock().unwrap().ending = Some(ending);
    }

    /// The stored Jobs, as JSON.
    pub fn jobs(&self) -> Vec<Value> {
        self.inner.lock().unwrap().jobs.values().cloned().collect()
    }

    /// How many create requests arrived (including refused ones).
    pub fn creates(&self) -> usize {
        self.inner.lock().unwrap().creates
    }

    /// Makes every create take `delay` (before it is decided), like a loaded API server.
    pub fn slow_creates(&self, delay: Duration) {
        self.inner.lock().unwrap().create_delay = delay;
    }

    /// The most creates the fake was handling at the same time.
    pub fn max_concurrent_creates(&self) -> usize {
        self.inner.lock().unwrap().max_creates_in_flight
    }

    /// How many watches were opened.
    pub fn watches(&self) -> usize {
        self.inner.lock().unwrap().watches
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

type Shared = Arc<Mutex<Inner>>;

fn status(code: StatusCode, reason: &str, message: &str, details: Value) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "details": details, "code": code.as_u16(),
    });
    (code, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn ok_json(code: StatusCode, value: &Value) -> Response {
    (code, [(header::CONTENT_TYPE, "application/json")], value.to_string()).into_response()
}

async fn create(State(inner): State<Shared>, Path(ns): Path<String>, body: Bytes) -> Response {
    let delay = {
        let mut inner = inner.lock().unwrap();
        inner.creates_in_flight += 1;
        inner.max_creates_in_flight = inner.max_creates_in_flight.max(inner.creates_in_flight);
        inner.create_delay
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let response = decide_create(&inner, ns, &body);
    inner.lock().unwrap().creates_in_flight -= 1;
    response
}

fn decide_create(inner: &Shared, ns: String, body: &[u8]) -> Response {
    let mut job: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return status(StatusCode::BAD_REQUEST, "BadRequest", &e.to_string(), json!({})),
    };
    let mut inner = inner.lock().unwrap();
    inner.creates += 1;
    let name = job["metadata"]["name"].as_str().unwrap_or_default().to_owned();
    if !inner.namespaces.is_empty() && !inner.namespaces.contains(&ns) {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("namespaces \"{ns}\" not found"),
            json!({"name": ns, "kind": "namespaces"}),
        );
    }
    if inner.quota_full.contains(&ns) {
        // What the API server says when a ResourceQuota counts Jobs (`count/jobs.batch`).
        let message = format!(
            "jobs.batch \"{name}\" is forbidden: exceeded quota: ladder-jobs, requested: count/jobs.batch=1, used: count/jobs.batch=20, limited: count/jobs.batch=20"
        );
        return status(
            StatusCode::FORBIDDEN,
            "Forbidden",
            &message,
            json!({"name": name, "group": "batch", "kind": "jobs"}),
        );
    }
    if inner.jobs.contains_key(&(ns.clone(), name.clone())) {
        return status(
            StatusCode::CONFLICT,
            "AlreadyExists",
            &format!("jobs.batch \"{name}\" already exists"),
            json!({"name": name, "group": "batch", "kind": "jobs"}),
        );
    }
    inner.version += 1;
    job["metadata"]["resourceVersion"] = json!(inner.version.to_string());
    job["metadata"]["uid"] = json!(format!("00000000-0000-0000-0000-{:012}", inner.version));
    job["metadata"]["creationTimestamp"] = json!("2026-11-25T05:00:00Z");
    job["status"] = json!({});
    inner.jobs.insert((ns, name), job.clone());
    ok_json(StatusCode::CREATED, &job)
}

async fn read(State(inner): State<Shared>, Path((ns, name)): Path<(String, String)>) -> Response {
    let inner = inner.lock().unwrap();
    match inner.jobs.get(&(ns, name.clone())) {
        Some(job) => ok_json(StatusCode::OK, job),
        None => status(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("jobs.batch \"{name}\" not found"),
            json!({"name": name}),
        ),
    }
}

async fn list_or_watch(State(inner): State<Shared>, Path(ns): Path<String>, uri: Uri) -> Response {
    let query = query_pairs(uri.query().unwrap_or_default());
    if query.get("watch").map(String::as_str) != Some("true") {
        let inner = inner.lock().unwrap();
        let items: Vec<&Value> = inner.jobs.iter().filter(|((n, _), _)| *n == ns).map(|(_, j)| j).collect();
        return ok_json(
            StatusCode::OK,
            &json!({"kind": "JobList", "apiVersion": "batch/v1", "metadata": {"resourceVersion": inner.version.to_string()}, "items": items}),
        );
    }
    let name = query.get("fieldSelector").and_then(|f| f.strip_prefix("metadata.name=")).unwrap_or_default().to_owned();
    let (first, job, ending) = {
        let mut inner = inner.lock().unwrap();
        inner.watches += 1;
        (inner.watches == 1, inner.jobs.get(&(ns.clone(), name.clone())).cloned(), inner.ending.clone())
    };
    let Some(mut job) = job else {
        return status(StatusCode::NOT_FOUND, "NotFound", "no such job", json!({}));
    };
    if first {
        // The server ends the first watch at once; a client must watch again.
        return (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], "").into_response();
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let store = inner.clone();
    tokio::spawn(async move {
        job["status"] = json!({"active": 1, "ready": 1});
        let _ = tx.send(Ok(Bytes::from(format!("{}\n", json!({"type": "MODIFIED", "object": job}))))).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let Some(ending) = ending else { return };
        let (type_, reason, message) = match ending {
            Ending::Complete => ("Complete", String::new(), String::new()),
            Ending::Failed { reason, message } => ("Failed", reason, message),
        };
        let mut conditions = vec![json!({"type": type_, "status": "True", "reason": reason, "message": message})];
        if type_ == "Complete" {
            conditions.insert(0, json!({"type": "SuccessCriteriaMet", "status": "True"}));
        }
        job["status"] = json!({"conditions": conditions, "succeeded": u8::from(type_ == "Complete"), "failed": u8::from(type_ == "Failed")});
        {
            let mut inner = store.lock().unwrap();
            inner.version += 1;
            job["metadata"]["resourceVersion"] = json!(inner.version.to_string());
            inner.jobs.insert((ns, name), job.clone());
        }
        let _ = tx.send(Ok(Bytes::from(format!("{}\n", json!({"type": "MODIFIED", "object": job}))))).await;
        // Keep the stream open like a real watch; the client hangs up.
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let stream = tokio_stream(rx);
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .unwrap()
}

fn tokio_stream(
    mut rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// `a=b&c=d%3De` → {a: b, c: d=e}.
fn query_pairs(query: &str) -> BTreeMap<String, String> {
    let decode = |s: &str| {
        let mut out = Vec::new();
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%'
                && i + 2 < b.len()
                && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
            {
                out.push(v);
                i += 3;
                continue;
            }
            out.push(if b[i] == b'+' { b' ' } else { b[i] });
            i += 1;
        }
        String::from_utf8(out).unwrap()
    };
    query.split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (decode(k), decode(v))).collect()
}
