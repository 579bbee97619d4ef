//! `ladder serve`: the webhook receiver. Each hook verifies the raw request (token, HMAC,
//! JWT or SNS signature), refuses replays, and only then parses the body into recordings,
//! which become Jobs through [`crate::dispatch`]. One Job per recording: a recently
//! dispatched one is answered from memory, concurrent events for the same recording share
//! one create, and the Job name (a hash) makes the API server refuse a second (another
//! replica, a restart). Creates run at most [`Limits::max_concurrent_creates`] at a time, and
//! every event is answered within [`Limits::dispatch_deadline`].

pub(crate) mod events;
pub(crate) mod metrics;
pub mod sns;
pub mod verify;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::FutureExt as _;
use futures_util::future::{BoxFuture, Shared};
use k8s_openapi::api::batch::v1::Job;

use crate::dispatch::{self, DispatchConfig, JobRequest};
use crate::exit::{ExitClass, Outcome};
use crate::preset::Preset;
use events::{EventError, Recording};
use metrics::Metrics;
use sns::{Sns, SnsError, SnsMessage};
use verify::VerifyError;

/// The webhook secrets, read from the environment (a Kubernetes Secret via `secretKeyRef`),
/// never from flags or the config file.
#[derive(Clone, Default)]
pub struct Secrets {
    /// Accepted `Authorization` tokens for `/hooks/s3` (`LADDER_S3_TOKENS`, comma-separated).
    pub s3_tokens: Vec<String>,
    /// `LADDER_LIVEKIT_API_KEY` and `LADDER_LIVEKIT_API_SECRET`.
    pub livekit_key: String,
    pub livekit_secret: String,
    /// HMAC secrets for `/hooks/generic` (`LADDER_WEBHOOK_SECRETS`, comma-separated; list the
    /// new one first while rotating).
    pub generic: Vec<String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("s3_tokens", &self.s3_tokens.len())
            .field("livekit_key", &self.livekit_key)
            .field("generic", &self.generic.len())
            .finish_non_exhaustive()
    }
}

impl Secrets {
    /// Reads the secrets from the environment; hooks without one answer 401 to everything.
    pub fn from_env() -> Self {
        let list = |name: &str| -> Vec<String> {
            std::env::var(name)
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        };
        Self {
            s3_tokens: list("LADDER_S3_TOKENS"),
            livekit_key: std::env::var("LADDER_LIVEKIT_API_KEY").unwrap_or_default(),
            livekit_secret: std::env::var("LADDER_LIVEKIT_API_SECRET").unwrap_or_default(),
            generic: list("LADDER_WEBHOOK_SECRETS"),
        }
    }
}

/// Limits of the receiver.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest body accepted (413 above).
    pub max_body_bytes: usize,
    /// How long a dispatched recording is remembered (answers repeats without the API).
    pub dedup_for: Duration,
    /// Job creates in flight at once against the API server; more wait their turn, so an
    /// event-end burst cannot flood the API server (or its priority-and-fairness limits).
    pub max_concurrent_creates: usize,
    /// How long an event may wait for its Job (from the end of verification): past it the
    /// sender gets 503 with `Retry-After` rather than a timeout, and the create goes on.
    pub dispatch_deadline: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 256 * 1024,
            dedup_for: Duration::from_secs(3600),
            max_concurrent_creates: 16,
            dispatch_deadline: Duration::from_secs(10),
        }
    }
}

/// A Job create in flight, awaited by every event for the same recording.
type SharedCreate = Shared<BoxFuture<'static, Result<&'static str, Rejection>>>;

/// Everything the handlers share.
pub struct AppState {
    config: DispatchConfig,
    secrets: Secrets,
    client: kube::Client,
    presets_dir: PathBuf,
    /// Presets by name, each resolved once even when a burst asks for it at the same time.
    presets: Mutex<HashMap<String, Arc<tokio::sync::OnceCell<Arc<Preset>>>>>,
    /// Signatures of requests already accepted, until they could no longer be fresh.
    seen: Mutex<Expiring>,
    /// Job names dispatched recently.
    dispatched: Mutex<Expiring>,
    /// Job name → its create in flight.
    inflight: Mutex<HashMap<String, SharedCreate>>,
    /// Bounds the creates in flight ([`Limits::max_concurrent_creates`]).
    creates: tokio::sync::Semaphore,
    sns: Sns,
    limits: Limits,
    /// Counters for `/metrics`.
    pub metrics: Metrics,
}

impl AppState {
    /// State for a receiver that creates Jobs with `client` and checks SNS deliveries
    /// against certificates fetched from SNS over HTTPS.
    pub fn new(
        config: DispatchConfig,
        secrets: Secrets,
        client: kube::Client,
        presets_dir: PathBuf,
        limits: Limits,
    ) -> Arc<Self> {
        Self::with_sns(config, secrets, client, presets_dir, limits, Sns::https())
    }

    /// [`AppState::new`] with the given SNS certificate fetcher and subscription confirmer.
    pub fn with_sns(
        config: DispatchConfig,
        secrets: Secrets,
        client: kube::Client,
        presets_dir: PathBuf,
        limits: Limits,
        sns: Sns,
    ) -> Arc<Self> {
        Arc::new(Self {
            config,
            secrets,
            client,
            presets_dir,
            presets: Mutex::new(HashMap::new()),
            seen: Mutex::new(Expiring::default()),
            dispatched: Mutex::new(Expiring::default()),
            inflight: Mutex::new(HashMap::new()),
            creates: tokio::sync::Semaphore::new(limits.max_concurrent_creates.max(1)),
            sns,
            limits,
            metrics: Metrics::default(),
        })
    }
}

/// The receiver's routes.
pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.limits.max_body_bytes;
    Router::new()
        .route("/hooks/s3", post(s3_hook))
        .route("/hooks/livekit", post(livekit_hook))
        .route("/hooks/generic", post(generic_hook))
        .route("/hooks/sns", post(sns_hook))
        // Times every hook request, whatever it answers.
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), timed))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics_page))
        // The hooks read their bodies themselves, with this limit, to answer 413 as JSON
        // and count it; the default limit guards anything else.
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// Serves until `shutdown` resolves, then finishes the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt as _;
    // Answers are small and senders keep connections alive: without TCP_NODELAY, Nagle's
    // algorithm and delayed ACKs hold each answer back by tens of milliseconds.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}

/// Resolves on SIGTERM (what Kubernetes sends) or Ctrl-C.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = term => {},
        _ = tokio::signal::ctrl_c() => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

/// Records how long a hook took to answer; the hook is the last part of its path.
async fn timed(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let hook = path.strip_prefix("/hooks/").unwrap_or(&path);
    state.metrics.observe(hook, started.elapsed().as_secs_f64());
    response
}

/// A request that ends without dispatching, with its status and what to tell the sender.
#[derive(Debug, Clone)]
struct Rejection {
    status: StatusCode,
    outcome: &'static str,
    message: String,
    /// Why authentication failed, when it did.
    verify_reason: Option<&'static str>,
    /// Seconds for `Retry-After` (503s only: the sender should come back).
    retry_after: Option<u64>,
}

impl Rejection {
    fn new(status: StatusCode, outcome: &'static str, message: impl Into<String>) -> Self {
        Self { status, outcome, message: message.into(), verify_reason: None, retry_after: None }
    }

    /// 503: worth retrying after `seconds`.
    fn retry(outcome: &'static str, message: impl Into<String>, seconds: u64) -> Self {
        Self { retry_after: Some(seconds), ..Self::new(StatusCode::SERVICE_UNAVAILABLE, outcome, message) }
    }

    fn response(&self, jobs: Option<Vec<serde_json::Value>>) -> Response {
        let mut body = serde_json::json!({ "outcome": self.outcome, "error": self.message });
        if let Some(jobs) = jobs {
            body["jobs"] = jobs.into();
        }
        let mut response = json(self.status, &body);
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

/// `Retry-After` when the API server refused a create for now (full quota, throttling).
const RETRY_REFUSED_SECONDS: u64 = 30;
/// `Retry-After` when the Job was not confirmed within the deadline (the create goes on).
const RETRY_BUSY_SECONDS: u64 = 5;

impl From<VerifyError> for Rejection {
    fn from(e: VerifyError) -> Self {
        Self { verify_reason: Some(e.reason()), ..Self::new(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string()) }
    }
}

impl From<SnsError> for Rejection {
    fn from(e: SnsError) -> Self {
        match e {
            SnsError::Malformed(_) => Self::new(StatusCode::BAD_REQUEST, "malformed", e.to_string()),
            SnsError::Unreachable { .. } => Self::retry("sns_unreachable", e.to_string(), RETRY_REFUSED_SECONDS),
            _ => Self::new(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string()),
        }
    }
}

impl From<EventError> for Rejection {
    fn from(e: EventError) -> Self {
        match e {
            EventError::Malformed { .. } => Self::new(StatusCode::BAD_REQUEST, "malformed", e.to_string()),
            EventError::UnknownBucket(_)
            | EventError::UnknownTenant(_)
            | EventError::BadPreset(_)
            | EventError::ForeignBucket { .. } => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "unknown_route", e.to_string())
            }
        }
    }
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], format!("{value}\n")).into_response()
}

fn now_unix() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The whole body, at most `max_body_bytes` of it, within [`BODY_TIMEOUT`].
async fn read_body(state: &AppState, hook: &'static str, body: Body) -> Result<Bytes, Response> {
    let limit = state.limits.max_body_bytes;
    match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => {
            state.metrics.event(hook, "too_large");
            let message = format!("body larger than {limit} bytes (or cut off)");
            Err(json(StatusCode::PAYLOAD_TOO_LARGE, &serde_json::json!({ "outcome": "too_large", "error": message })))
        }
        Err(_) => {
            state.metrics.event(hook, "timeout");
            let message = format!("body not received within {} s", BODY_TIMEOUT.as_secs());
            Err(json(StatusCode::REQUEST_TIMEOUT, &serde_json::json!({ "outcome": "timeout", "error": message })))
        }
    }
}

/// How long a sender may take to deliver a body; a slow one must not hold a connection.
const BODY_TIMEOUT: Duration = Duration::from_secs(15);

async fn s3_hook(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    // The token is in a header: refuse a stranger before reading the body at all.
    if let Err(e) = verify::token(header_str(&headers, "authorization"), &state.secrets.s3_tokens) {
        return finish(&state, "s3", None, Err(e.into())).await;
    }
    let body = match read_body(&state, "s3", body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    finish(&state, "s3", None, events::s3(&body, &state.config).map_err(Into::into)).await
}

async fn livekit_hook(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let body = match read_body(&state, "livekit", body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let secrets = &state.secrets;
    let now = now_unix();
    let auth = header_str(&headers, "authorization");
    let (claims, sig) = match verify::livekit(auth, &body, &secrets.livekit_key, &secrets.livekit_secret, now) {
        Ok(v) => v,
        Err(e) => return finish(&state, "livekit", None, Err(e.into())).await,
    };
    // The token is usable until it expires; remember it that long.
    let ttl = Duration::from_secs(u64::try_from(claims.exp - now + verify::JWT_LEEWAY_SECONDS).unwrap_or(0));
    if let Err(replay) = remember_signature(&state, &sig, ttl) {
        return finish(&state, "livekit", None, Err(replay)).await;
    }
    let recordings = events::livekit(&body, &state.config).map_err(Into::into);
    finish(&state, "livekit", Some(sig), recordings).await
}

async fn generic_hook(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let body = match read_body(&state, "generic", body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let timestamp = header_str(&headers, "x-ladder-timestamp");
    let signature = header_str(&headers, "x-ladder-signature");
    let sig = match verify::generic(timestamp, signature, &body, &state.secrets.generic, now_unix()) {
        Ok(sig) => sig,
        Err(e) => return finish(&state, "generic", None, Err(e.into())).await,
    };
    // A timestamp is fresh for the window on either side of now.
    let ttl = Duration::from_secs(2 * verify::GENERIC_WINDOW_SECONDS.unsigned_abs());
    if let Err(replay) = remember_signature(&state, &sig, ttl) {
        return finish(&state, "generic", None, Err(replay)).await;
    }
    let recordings = events::generic(&body, &state.config).map(|r| vec![r]).map_err(Into::into);
    finish(&state, "generic", Some(sig), recordings).await
}

async fn sns_hook(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let body = match read_body(&state, "sns", body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let msg = match SnsMessage::parse(&body) {
        Ok(m) => m,
        Err(e) => return finish(&state, "sns", None, Err(e.into())).await,
    };
    if header_str(&headers, sns::MESSAGE_TYPE_HEADER).is_some_and(|t| t != msg.kind.as_str()) {
        let rej = Rejection::new(StatusCode::BAD_REQUEST, "malformed", "message type header and body disagree");
        return finish(&state, "sns", None, Err(rej)).await;
    }
    // The topic first: a stranger's message must not even make us fetch a certificate.
    if !state.config.sns_topics.contains(&msg.topic_arn) {
        return finish(&state, "sns", None, Err(SnsError::TopicNotAllowed(msg.topic_arn).into())).await;
    }
    if let Err(e) = state.sns.verify(&msg).await {
        return finish(&state, "sns", None, Err(e.into())).await;
    }
    // SNS delivers at least once: a message seen before is acknowledged, not redone.
    let key = format!("sns:{}", msg.message_id).into_bytes();
    if !state.seen.lock().expect("no handler panics while holding the lock").insert(key.clone(), state.limits.dedup_for)
    {
        state.metrics.event("sns", "duplicate");
        return json(StatusCode::OK, &serde_json::json!({ "outcome": "duplicate", "jobs": [] }));
    }
    match (msg.kind, &msg.subscribe_url) {
        (sns::MessageKind::SubscriptionConfirmation, Some(url)) => {
            if let Err(e) = state.sns.confirm(url).await {
                state.seen.lock().expect("no handler panics while holding the lock").remove(&key);
                return finish(&state, "sns", None, Err(e.into())).await;
            }
            tracing::info!(topic = msg.topic_arn, "confirmed the SNS subscription");
            state.metrics.event("sns", "confirmed");
            json(StatusCode::OK, &serde_json::json!({ "outcome": "confirmed", "topic": msg.topic_arn }))
        }
        (sns::MessageKind::Notification, _) => {
            let recordings = events::s3(msg.message.as_bytes(), &state.config).map_err(Into::into);
            finish(&state, "sns", Some(key), recordings).await
        }
        // Unsubscribed (by someone with rights on the topic): nothing to do but log it.
        _ => {
            tracing::warn!(topic = msg.topic_arn, "SNS subscription ended");
            finish(&state, "sns", None, Ok(Vec::new())).await
        }
    }
}

/// Records an accepted signature; a second request with it is a replay.
fn remember_signature(state: &AppState, sig: &[u8], ttl: Duration) -> Result<(), Rejection> {
    let mut seen = state.seen.lock().expect("no handler panics while holding the lock");
    if seen.insert(sig.to_vec(), ttl) {
        Ok(())
    } else {
        Err(Rejection::new(StatusCode::CONFLICT, "replay", "this signed request was already received"))
    }
}

/// Dispatches the recordings of an authentic event and answers the sender. `replay_key`
/// is forgotten again if dispatching fails, so the sender's retry is not taken for a replay.
async fn finish(
    state: &Arc<AppState>,
    hook: &'static str,
    replay_key: Option<Vec<u8>>,
    recordings: Result<Vec<Recording>, Rejection>,
) -> Response {
    let recordings = match recordings {
        Ok(r) => r,
        Err(rej) => {
            tracing::info!(hook, status = rej.status.as_u16(), outcome = rej.outcome, reason = %rej.message, "webhook rejected");
            if let Some(reason) = rej.verify_reason {
                state.metrics.verification_failed(hook, reason);
            }
            state.metrics.event(hook, rej.outcome);
            return rej.response(None);
        }
    };
    // The event's tenant (an S3 notification's records may name several: the first).
    let tenant = recordings.first().map(|r| r.tenant.clone()).unwrap_or_default();
    let deadline = tokio::time::Instant::now() + state.limits.dispatch_deadline;
    if recordings.is_empty() {
        state.metrics.event(hook, "ignored");
        return json(StatusCode::OK, &serde_json::json!({ "outcome": "ignored", "jobs": [] }));
    }
    let mut jobs = Vec::new();
    // `created` only if every recording made a new Job; else the first other answer.
    let mut summary = "created";
    for rec in recordings {
        match dispatch_one(state, &rec, deadline).await {
            Ok((namespace, name, word)) => {
                if word != "created" && summary == "created" {
                    summary = word;
                }
                jobs.push(
                    serde_json::json!({ "namespace": namespace, "name": name, "outcome": word, "input": rec.input }),
                );
            }
            Err(rej) => {
                if let Some(key) = &replay_key
                    && rej.status.is_server_error()
                {
                    state.seen.lock().expect("no handler panics while holding the lock").remove(key);
                }
                tracing::warn!(hook, status = rej.status.as_u16(), reason = %rej.message, input = rec.input, "dispatch failed");
                state.metrics.event_for(hook, &tenant, rej.outcome);
                return rej.response(Some(jobs));
            }
        }
    }
    state.metrics.event_for(hook, &tenant, summary);
    json(StatusCode::OK, &serde_json::json!({ "outcome": summary, "jobs": jobs }))
}

async fn dispatch_one(
    state: &Arc<AppState>,
    rec: &Recording,
    deadline: tokio::time::Instant,
) -> Result<(String, String, &'static str), Rejection> {
    let preset_name = rec.preset.clone().unwrap_or_else(|| state.config.default_preset.clone());
    let preset = preset(state, &preset_name).await?;
    let request = JobRequest {
        tenant: rec.tenant.clone(),
        input: rec.input.clone(),
        output: rec.output.clone(),
        preset: &preset,
        shards: None,
        recording_ended: rec.recording_ended,
        trim: rec.trim,
        subtitles: rec.subtitles.clone(),
    };
    let job = dispatch::build_job(&state.config, &request)
        .map_err(|e| Rejection::new(StatusCode::UNPROCESSABLE_ENTITY, "unknown_route", e.to_string()))?;
    let name = job.metadata.name.clone().expect("build_job names the Job");
    let namespace = job.metadata.namespace.clone().expect("build_job sets the namespace");
    // A recording dispatched recently is answered from memory; one being created is waited
    // for. Both under the `inflight` lock: a create leaves `inflight` only after entering
    // `dispatched`, so no event slips between the two and sends a second create.
    let (create, first) = {
        let mut inflight = state.inflight.lock().expect("no handler panics while holding the lock");
        if state.dispatched.lock().expect("no handler panics while holding the lock").contains(name.as_bytes()) {
            state.metrics.job(&rec.tenant, "duplicate");
            return Ok((namespace, name, "duplicate"));
        }
        match inflight.get(&name) {
            Some(create) => (create.clone(), false),
            None => {
                let create = spawn_create(state.clone(), job, rec.tenant.clone()).shared();
                inflight.insert(name.clone(), create.clone());
                (create, true)
            }
        }
    };
    match tokio::time::timeout_at(deadline, create).await {
        Ok(Ok(word)) => Ok((namespace, name, if first { word } else { "duplicate" })),
        Ok(Err(rej)) => Err(rej),
        Err(_) => Err(Rejection::retry(
            "busy",
            format!(
                "Job {namespace}/{name} not confirmed within {} s; it is still being created",
                state.limits.dispatch_deadline.as_secs()
            ),
            RETRY_BUSY_SECONDS,
        )),
    }
}

/// Creates the Job on a task of its own, so it finishes (and is remembered) even when the
/// event that started it has been answered already.
fn spawn_create(state: Arc<AppState>, job: Job, tenant: String) -> BoxFuture<'static, Result<&'static str, Rejection>> {
    let task = tokio::spawn(async move {
        let name = job.metadata.name.clone().expect("build_job names the Job");
        let result = {
            let _permit = state.creates.acquire().await.expect("the semaphore is never closed");
            dispatch::client::create(&state.client, &job).await
        };
        let answer = match result {
            Ok(created) => {
                state
                    .dispatched
                    .lock()
                    .expect("no handler panics while holding the lock")
                    .insert(name.clone().into_bytes(), state.limits.dedup_for);
                state.metrics.job(&tenant, created.word());
                Ok(created.word())
            }
            Err(e) => {
                state.metrics.job_failed(&tenant, &e);
                Err(match e.outcome() {
                    Outcome::Transient => Rejection::retry("dispatch_failed", e.to_string(), RETRY_REFUSED_SECONDS),
                    _ => Rejection::new(StatusCode::INTERNAL_SERVER_ERROR, "dispatch_failed", e.to_string()),
                })
            }
        };
        state.inflight.lock().expect("no handler panics while holding the lock").remove(&name);
        answer
    });
    async move {
        task.await.unwrap_or_else(|e| {
            Err(Rejection::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "dispatch_failed",
                format!("create task failed: {e}"),
            ))
        })
    }
    .boxed()
}

/// A preset by name, resolved once (validation opens encoders, so it runs off the async
/// threads; the events of a burst that need it meanwhile wait for that one resolution)
/// and then cached. A name that fails to resolve is not remembered.
async fn preset(state: &AppState, name: &str) -> Result<Arc<Preset>, Rejection> {
    let cell = state
        .presets
        .lock()
        .expect("no handler panics while holding the lock")
        .entry(name.to_owned())
        .or_default()
        .clone();
    let resolved = cell
        .get_or_try_init(|| async {
            let dir = state.presets_dir.clone();
            let owned = name.to_owned();
            let resolved = tokio::task::spawn_blocking(move || crate::preset::resolve(&owned, Some(&dir)))
                .await
                .map_err(|e| Rejection::new(StatusCode::INTERNAL_SERVER_ERROR, "dispatch_failed", e.to_string()))?
                .map_err(|e| Rejection::new(StatusCode::UNPROCESSABLE_ENTITY, "unknown_route", e.to_string()))?;
            Ok::<_, Rejection>(Arc::new(resolved))
        })
        .await;
    match resolved {
        Ok(preset) => Ok(preset.clone()),
        Err(rej) => {
            let mut presets = state.presets.lock().expect("no handler panics while holding the lock");
            if presets.get(name).is_some_and(|c| !c.initialized()) {
                presets.remove(name);
            }
            Err(rej)
        }
    }
}

async fn metrics_page(State(state): State<Arc<AppState>>) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], state.metrics.render()).into_response()
}

/// Keys remembered until a deadline; expired keys are pruned whenever the map grows large.
#[derive(Debug, Default)]
struct Expiring {
    entries: HashMap<Vec<u8>, Instant>,
}

impl Expiring {
    const MAX: usize = 100_000;

    /// Adds a key; false if it is already there (and not expired).
    fn insert(&mut self, key: Vec<u8>, ttl: Duration) -> bool {
        let now = Instant::now();
        if self.entries.len() >= Self::MAX {
            self.entries.retain(|_, until| *until > now);
        }
        match self.entries.get(&key) {
            Some(until) if *until > now => false,
            _ => {
                self.entries.insert(key, now + ttl);
                true
            }
        }
    }

    fn contains(&self, key: &[u8]) -> bool {
        self.entries.get(key).is_some_and(|until| *until > Instant::now())
    }

    fn remove(&mut self, key: &[u8]) {
        self.entries.remove(key);
    }
}
