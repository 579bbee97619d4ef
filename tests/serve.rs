//! `ladder serve`: each hook turns one authentic event into one Job (checked in a fake
//! API server) and refuses everything else with the right 4xx and no Job.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on purpose")]

#[path = "serve/burst.rs"]
mod burst;
mod dispatch_fake;
#[path = "serve/sns.rs"]
mod sns;

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use dispatch_fake::FakeApi;
use ladder::dispatch::{DispatchConfig, RawConfig, TenantRoute};
use ladder::serve::{self, AppState, Limits, Secrets, verify};
use serde_json::{Value, json};
use tower::ServiceExt as _;

/// A request that must be refused: what it is, its headers and body, and the status.
type Case = (&'static str, Headers, Vec<u8>, StatusCode);
type Headers = Vec<(&'static str, String)>;

const S3_TOKEN: &str = "s3-token-for-tests-only";
const GENERIC_SECRETS: [&str; 2] = ["generic-new", "generic-old"];
const LK_KEY: &str = "APItest";
const LK_SECRET: &str = "livekit-secret-for-tests";

fn config() -> DispatchConfig {
    let raw = RawConfig {
        tenants: BTreeMap::from([(
            "acme".to_owned(),
            TenantRoute { output: "s3://acme-vod/{stem}".into(), preset: Some("small".into()), queue: None },
        )]),
        buckets: BTreeMap::from([("acme-recordings".to_owned(), "acme".to_owned())]),
        ..RawConfig::default()
    };
    DispatchConfig::resolve(raw, RawConfig::default()).unwrap()
}

fn secrets() -> Secrets {
    Secrets {
        s3_tokens: vec![S3_TOKEN.to_owned()],
        livekit_key: LK_KEY.to_owned(),
        livekit_secret: LK_SECRET.to_owned(),
        generic: GENERIC_SECRETS.iter().map(|s| (*s).to_owned()).collect(),
    }
}

fn state(fake: &FakeApi) -> Arc<AppState> {
    AppState::new(config(), secrets(), fake.client(), "presets".into(), Limits::default())
}

async fn send(app: &Router, path: &str, headers: &[(&str, String)], body: impl Into<Vec<u8>>) -> (StatusCode, Value) {
    let mut req = Request::post(path).header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let resp = app.clone().oneshot(req.body(Body::from(body.into())).unwrap()).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes))))
}

fn now() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()).unwrap()
}

fn s3_event(bucket: &str, key: &str) -> Vec<u8> {
    json!({"EventName": "s3:ObjectCreated:Put", "Key": format!("{bucket}/{key}"), "Records": [{
        "eventVersion": "2.0", "eventSource": "minio:s3", "eventName": "s3:ObjectCreated:Put",
        "eventTime": "2026-11-25T05:00:00.000Z",
        "s3": {"bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
               "object": {"key": key, "size": 1_048_576, "eTag": "d41d8cd98f00b204e9800998ecf8427e", "sequencer": "1"}}
    }]})
    .to_string()
    .into_bytes()
}

fn bearer() -> Vec<(&'static str, String)> {
    vec![("authorization", format!("Bearer {S3_TOKEN}"))]
}

fn generic_headers(secret: &str, ts: i64, body: &[u8]) -> Vec<(&'static str, String)> {
    vec![("x-ladder-timestamp", ts.to_string()), ("x-ladder-signature", verify::sign_generic(secret, ts, body))]
}

fn generic_event() -> Vec<u8> {
    br#"{"tenant":"acme","input":"s3://acme-recordings/talks/keynote.mkv","output":"s3://acme-vod/keynote"}"#.to_vec()
}

fn livekit_event(status: &str) -> Vec<u8> {
    json!({"event": "egress_ended", "id": "EV_1", "createdAt": now(), "egressInfo": {
        "egressId": "EG_1", "roomName": "standup", "status": status,
        "fileResults": [{"filename": "rooms/standup.mp4", "location": "https://acme-recordings.s3.eu-west-1.amazonaws.com/rooms/standup.mp4", "size": "1000"}]
    }})
    .to_string()
    .into_bytes()
}

fn livekit_headers(body: &[u8]) -> Vec<(&'static str, String)> {
    vec![("authorization", verify::sign_livekit(LK_KEY, LK_SECRET, body, now(), 600))]
}

/// The one Job the fake holds: (namespace, tenant label, input annotation, output annotation, args).
fn only_job(fake: &FakeApi) -> (String, String, String, String, Vec<String>) {
    let jobs = fake.jobs();
    assert_eq!(jobs.len(), 1, "exactly one Job: {jobs:#?}");
    let j = &jobs[0];
    let m = &j["metadata"];
    let args = j["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    (
        m["namespace"].as_str().unwrap().to_owned(),
        m["labels"]["ladder.dev/tenant"].as_str().unwrap().to_owned(),
        m["annotations"]["ladder.dev/input"].as_str().unwrap().to_owned(),
        m["annotations"]["ladder.dev/output"].as_str().unwrap().to_owned(),
        args,
    )
}

#[tokio::test]
async fn an_s3_notification_makes_one_job_for_the_recording() {
    let fake = FakeApi::start();
    let app = serve::router(state(&fake));
    let (status, body) = send(&app, "/hooks/s3", &bearer(), s3_event("acme-recordings", "rooms/stand+up.mp4")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["outcome"], "created");
    let (namespace, tenant, input, output, args) = only_job(&fake);
    assert_eq!((namespace.as_str(), tenant.as_str()), ("ladder-acme", "acme"));
    assert_eq!(input, "s3://acme-recordings/rooms/stand up.mp4");
    assert_eq!(output, "s3://acme-vod/rooms/stand up");
    assert_eq!(args, ["run", "--out=s3://acme-vod/rooms/stand up", "--preset=small", "--", &input]);
    // The notification's event time is when the recording became complete: the Job
    // measures time-to-VOD from it.
    let env = &fake.jobs()[0]["spec"]["template"]["spec"]["containers"][0]["env"];
    let ended = env.as_array().unwrap().iter().find(|e| e["name"] == "LADDER_RECORDING_ENDED").unwrap();
    assert_eq!(ended["value"], "2026-11-25T05:00:00Z");
}

#[tokio::test]
async fn the_same_event_twice_makes_one_job() {
    let fake = FakeApi::start();
    let app = serve::router(state(&fake));
    let event = s3_event("acme-recordings", "a.mp4");
    assert_eq!(send(&app, "/hooks/s3", &bearer(), event.clone()).await.1["outcome"], "created");
    let (status, body) = send(&app, "/hooks/s3", &bearer(), event.clone()).await;
    assert_eq!((status, body["outcome"].as_str()), (StatusCode::OK, Some("duplicate")), "{body}");
    // Another replica (or this one after a restart) does not remember; the API server does.
    let other = serve::router(state(&fake));
    let (status, body) = send(&other, "/hooks/s3", &bearer(), event).await;
    assert_eq!((status, body["outcome"].as_str()), (StatusCode::OK, Some("existing")), "{body}");
    assert_eq!(fake.jobs().len(), 1);

    // A fresh signature for the same recording is a duplicate, not a replay.
    let body = generic_event();
    assert_eq!(
        send(&app, "/hooks/generic", &generic_headers("generic-new", now(), &body), body.clone()).await.1["outcome"],
        "created"
    );
    let (status, answer) = send(&app, "/hooks/generic", &generic_headers("generic-new", now() - 1, &body), body).await;
    assert_eq!((status, answer["outcome"].as_str()), (StatusCode::OK, Some("duplicate")), "{answer}");
    assert_eq!(fake.jobs().len(), 2);
}

#[tokio::test]
async fn s3_rejections() {
    let fake = FakeApi::start();
    let state = state(&fake);
    let app = serve::router(state.clone());
    let event = s3_event("acme-recordings", "a.mp4");
    let cases: Vec<Case> = vec![
        ("missing header", vec![], event.clone(), StatusCode::UNAUTHORIZED),
        ("wrong token", vec![("authorization", "Bearer guess".into())], event.clone(), StatusCode::UNAUTHORIZED),
        ("unknown bucket", bearer(), s3_event("someone-elses", "a.mp4"), StatusCode::UNPROCESSABLE_ENTITY),
        ("malformed JSON", bearer(), b"{\"Records\": [".to_vec(), StatusCode::BAD_REQUEST),
        ("oversized body", bearer(), vec![b' '; Limits::default().max_body_bytes + 1], StatusCode::PAYLOAD_TOO_LARGE),
    ];
    for (what, headers, body, expected) in cases {
        let (status, answer) = send(&app, "/hooks/s3", &headers, body).await;
        assert_eq!(status, expected, "{what}: {answer}");
    }
    assert!(fake.jobs().is_empty());
    assert_eq!(fake.creates(), 0);
    assert_eq!(state.metrics.events("s3", "", "too_large"), 1);
}

#[tokio::test]
async fn a_generic_event_makes_one_job_under_either_rotating_secret() {
    let fake = FakeApi::start();
    let app = serve::router(state(&fake));
    let body = generic_event();
    let (status, answer) = send(&app, "/hooks/generic", &generic_headers("generic-old", now(), &body), body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (namespace, tenant, input, output, _) = only_job(&fake);
    assert_eq!(
        (namespace.as_str(), tenant.as_str(), input.as_str(), output.as_str()),
        ("ladder-acme", "acme", "s3://acme-recordings/talks/keynote.mkv", "s3://acme-vod/keynote")
    );
}

#[tokio::test]
async fn a_generic_event_with_subtitles_hands_them_to_the_run() {
    let fake = FakeApi::start();
    let app = serve::router(state(&fake));
    let body = json!({"tenant": "acme", "input": "s3://acme-recordings/talks/keynote.mkv",
        "subtitles": [{"language": "ger", "location": "s3://acme-recordings/talks/keynote.de.srt"}]})
    .to_string()
    .into_bytes();
    let (status, answer) = send(&app, "/hooks/generic", &generic_headers("generic-new", now(), &body), body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (_, _, _, _, args) = only_job(&fake);
    let flag = "--subtitles=de=s3://acme-recordings/talks/keynote.de.srt".to_owned();
    let (at, dashes) = (args.iter().position(|a| *a == flag), args.iter().position(|a| a == "--"));
    assert!(at.is_some() && at < dashes, "{args:?}");
}

#[tokio::test]
async fn generic_rejections() {
    let fake = FakeApi::start();
    let app = serve::router(state(&fake));
    let body = generic_event();
    let ts = now();
    let good = generic_headers("generic-new", ts, &body);
    let mut changed = body.clone();
    changed.extend(b" ");
    let only = |name: &str| good.iter().filter(|(k, _)| *k == name).cloned().collect::<Vec<_>>();
    let signed_garbage = b"{not json".to_vec();
    let unknown_tenant = br#"{"tenant":"globex","input":"s3://b/k.mp4"}"#.to_vec();
    let cases: Vec<Case> = vec![
        ("bad signature", generic_headers("guess", ts, &body), body.clone(), StatusCode::UNAUTHORIZED),
        ("body changed after signing", good.clone(), changed, StatusCode::UNAUTHORIZED),
        ("stale timestamp", generic_headers("generic-new", ts - 301, &body), body.clone(), StatusCode::UNAUTHORIZED),
        (
            "timestamp from the future",
            generic_headers("generic-new", ts + 301, &body),
            body.clone(),
            StatusCode::UNAUTHORIZED,
        ),
        ("missing signature header", only("x-ladder-timestamp"), body.clone(), StatusCode::UNAUTHORIZED),
        ("missing timestamp header", only("x-ladder-signature"), body.clone(), StatusCode::UNAUTHORIZED),
        ("unsigned garbage", vec![], b"\x00\x01".to_vec(), StatusCode::UNAUTHORIZED),
        (
            "malformed JSON, signed",
            generic_headers("generic-new", ts, &signed_garbage),
            signed_garbage,
            StatusCode::BAD_REQUEST,
        ),
        (
            "unknown tenant",
            generic_headers("generic-new", ts, &unknown_tenant),
            unknown_tenant,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "oversized body",
            good.clone(),
            vec![b'x'; Limits::default().max_body_bytes + 1],
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ];
    for (what, headers, body, expected) in cases {
        let (status, answer) = send(&app, "/hooks/generic", &headers, body).await;
        assert_eq!(status, expected, "{what}: {answer}");
    }
    assert!(fake.jobs().is_empty(), "no rejected request made a Job");

    let (status, _) = send(&app, "/hooks/generic", &good, body.clone()).await;
    assert_eq!(status, StatusCode::OK);
    let (status, answer) = send(&app, "/hooks/generic", &good, body).await;
    assert_eq!(status, StatusCode::CONFLICT, "replay: {answer}");
    assert_eq!(answer["outcome"], "replay");
    assert_eq!(fake.jobs().len(), 1);
}

#[tokio::test]
async fn a_livekit_egress_makes_one_job() {
    let fake = FakeApi::start();
    let app = serve::router(state(&fake));
    let body = livekit_event("EGRESS_COMPLETE");
    let (status, answer) = send(&app, "/hooks/livekit", &livekit_headers(&body), body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (namespace, tenant, input, output, _) = only_job(&fake);
    assert_eq!(
        (namespace.as_str(), tenant.as_str(), input.as_str(), output.as_str()),
        ("ladder-acme", "acme", "s3://acme-recordings/rooms/standup.mp4", "s3://acme-vod/rooms/standup")
    );
    // Failed egresses and other events are acknowledged and ignored.
    for body in [livekit_event("EGRESS_FAILED"), br#"{"event":"room_finished","room":{"name":"x"}}"#.to_vec()] {
        let (status, answer) = send(&app, "/hooks/livekit", &livekit_headers(&body), body).await;
        assert_eq!((status, answer["outcome"].as_str()), (StatusCode::OK, Some("ignored")), "{answer}");
    }
    assert_eq!(fake.jobs().len(), 1);
}

#[tokio::test]
async fn livekit_rejections() {
    let fake = FakeApi::start();
    let app = serve::router(state(&fake));
    let body = livekit_event("EGRESS_COMPLETE");
    let good = livekit_headers(&body);
    let mut changed = body.clone();
    changed.extend(b" ");
    let wrong_secret = vec![("authorization", verify::sign_livekit(LK_KEY, "guess", &body, now(), 600))];
    let expired = vec![("authorization", verify::sign_livekit(LK_KEY, LK_SECRET, &body, now() - 3600, 600))];
    let other_bucket =
        String::from_utf8(body.clone()).unwrap().replace("acme-recordings", "someone-elses").into_bytes();
    let cases: Vec<Case> = vec![
        ("missing header", vec![], body.clone(), StatusCode::UNAUTHORIZED),
        ("bad signature", wrong_secret, body.clone(), StatusCode::UNAUTHORIZED),
        ("body changed after signing", good.clone(), changed, StatusCode::UNAUTHORIZED),
        ("expired token", expired, body.clone(), StatusCode::UNAUTHORIZED),
        ("unknown bucket", livekit_headers(&other_bucket), other_bucket, StatusCode::UNPROCESSABLE_ENTITY),
    ];
    for (what, headers, body, expected) in cases {
        let (status, answer) = send(&app, "/hooks/livekit", &headers, body).await;
        assert_eq!(status, expected, "{what}: {answer}");
    }
    assert!(fake.jobs().is_empty());
    assert_eq!(send(&app, "/hooks/livekit", &good, body.clone()).await.0, StatusCode::OK);
    assert_eq!(send(&app, "/hooks/livekit", &good, body).await.0, StatusCode::CONFLICT, "replay");
    assert_eq!(fake.jobs().len(), 1);
}

#[tokio::test]
async fn a_failed_dispatch_is_503_and_its_retry_is_not_a_replay() {
    let fake = FakeApi::start();
    fake.fill_quota("ladder-acme", true);
    let app = serve::router(state(&fake));
    let body = generic_event();
    let headers = generic_headers("generic-new", now(), &body);
    let (status, answer) = send(&app, "/hooks/generic", &headers, body.clone()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("exceeded quota"), "{answer}");
    fake.fill_quota("ladder-acme", false);
    let (status, answer) = send(&app, "/hooks/generic", &headers, body).await;
    assert_eq!((status, answer["outcome"].as_str()), (StatusCode::OK, Some("created")), "{answer}");
}

#[tokio::test]
async fn in_kueue_mode_an_event_makes_a_suspended_job_in_the_tenants_queue() {
    let fake = FakeApi::start();
    let mut config = config();
    config.tenants.get_mut("acme").unwrap().queue = Some("ladder".into());
    let state = AppState::new(config, secrets(), fake.client(), "presets".into(), Limits::default());
    let app = serve::router(state);
    let (status, answer) = send(&app, "/hooks/s3", &bearer(), s3_event("acme-recordings", "a.mp4")).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let job = &fake.jobs()[0];
    assert_eq!(job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"], "ladder");
    assert_eq!(job["spec"]["suspend"], true);
}

#[tokio::test]
async fn health_and_metrics() {
    let fake = FakeApi::start();
    let app = serve::router(state(&fake));
    send(&app, "/hooks/s3", &bearer(), s3_event("acme-recordings", "a.mp4")).await;
    send(&app, "/hooks/s3", &bearer(), s3_event("acme-recordings", "a.mp4")).await;
    send(&app, "/hooks/s3", &[], s3_event("acme-recordings", "a.mp4")).await;
    let get = |path: &str| Request::get(path).body(Body::empty()).unwrap();
    let health = app.clone().oneshot(get("/healthz")).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let metrics = app.clone().oneshot(get("/metrics")).await.unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    let text =
        String::from_utf8(axum::body::to_bytes(metrics.into_body(), usize::MAX).await.unwrap().to_vec()).unwrap();
    for line in [
        "ladder_webhook_events_total{hook=\"s3\",tenant=\"acme\",outcome=\"created\"} 1",
        "ladder_webhook_events_total{hook=\"s3\",tenant=\"acme\",outcome=\"duplicate\"} 1",
        "ladder_webhook_events_total{hook=\"s3\",tenant=\"\",outcome=\"unauthorized\"} 1",
        "ladder_webhook_verification_failures_total{hook=\"s3\",reason=\"missing_header\"} 1",
        "ladder_dispatch_jobs_total{tenant=\"acme\",result=\"created\"} 1",
        "ladder_dispatch_jobs_total{tenant=\"acme\",result=\"duplicate\"} 1",
        "ladder_webhook_request_duration_seconds_count{hook=\"s3\"} 3",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
    }
}

#[test]
fn serve_answers_then_stops_on_sigterm() {
    let fake = FakeApi::start();
    let dir = tempfile::tempdir().unwrap();
    let bin = assert_cmd::cargo::cargo_bin("ladder");
    let mut child = std::process::Command::new(bin)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("KUBECONFIG", fake.kubeconfig(dir.path()))
        .env("HOME", "/nonexistent")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let addr = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("{line:?}")).to_owned();
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let killed = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "serve exits 0 after a graceful shutdown: {status}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "serve did not stop within 20 s of SIGTERM");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
