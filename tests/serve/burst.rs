//! An event-end burst: 2,000 signed events for 500 recordings (each sent four times, by
//! different clients at once, to different replicas) over real HTTP to `serve` backed by
//! the fake API server.
//! Every event is answered, every recording gets exactly one Job, none is lost; with the
//! API server slowed, creates stay bounded and answers stay within the deadline, with two
//! `serve` replicas racing for the same recordings.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use ladder::serve::{self, AppState, Limits};

use super::dispatch_fake::FakeApi;
use super::{config, generic_headers, now, secrets};

const RECORDINGS: usize = 500;
const REPEATS: usize = 4;
const EVENTS: usize = RECORDINGS * REPEATS;
const CLIENTS: usize = 16;

/// What one event got back.
#[derive(Debug)]
struct Answer {
    status: u16,
    retry_after: Option<String>,
    outcome: String,
    latency: Duration,
}

/// Recording `r`.
fn recording(r: usize) -> String {
    format!("s3://acme-recordings/burst/room-{r:03}.mp4")
}

/// Event `i`: recording `i / 4` (so its repeats go out together), with an id of its own,
/// so every event is a distinct signed request (a replay would be refused).
fn event(i: usize) -> Vec<u8> {
    serde_json::json!({"tenant": "acme", "input": recording(i / REPEATS), "id": format!("evt-{i}")})
        .to_string()
        .into_bytes()
}

/// A `serve` on loopback, as the binary runs it.
async fn start_serve(fake: &FakeApi, limits: Limits) -> (SocketAddr, Arc<AppState>) {
    let state = AppState::new(config(), secrets(), fake.client(), "presets".into(), limits);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve::serve(listener, state.clone(), std::future::pending()));
    (addr, state)
}

/// One sender: a keep-alive connection to each replica, its events sent one after another.
async fn client(replicas: Vec<SocketAddr>, events: Vec<usize>) -> Vec<Answer> {
    let mut senders = Vec::new();
    for addr in &replicas {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
        tokio::spawn(conn);
        senders.push(sender);
    }
    let mut answers = Vec::with_capacity(events.len());
    for i in events {
        let body = event(i);
        let mut req =
            Request::post("/hooks/generic").header("host", "ladder").header("content-type", "application/json");
        for (k, v) in generic_headers("generic-new", now(), &body) {
            req = req.header(k, v);
        }
        // The repeats of a recording alternate between replicas.
        let sender = &mut senders[i % replicas.len()];
        let started = Instant::now();
        sender.ready().await.unwrap();
        let resp = sender.send_request(req.body(Full::new(Bytes::from(body))).unwrap()).await.unwrap();
        let status = resp.status().as_u16();
        let retry_after = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let latency = started.elapsed();
        let answer: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let outcome = answer["outcome"].as_str().unwrap_or_default().to_owned();
        answers.push(Answer { status, retry_after, outcome, latency });
    }
    answers
}

/// CPU time (user + system) of the whole test process so far: clients, `serve` and the
/// fake API server together. Unlike wall time, it does not depend on what else the
/// machine is running.
fn process_cpu() -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, &mut usage), 0);
        usage
    };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// What a burst took: its wall time and the process's CPU time meanwhile.
#[derive(Debug, Clone, Copy)]
struct Took {
    wall: Duration,
    cpu: Duration,
}

/// Sends events `0..count` from `clients` concurrent clients; client `c` sends events `c`,
/// `c + clients`, … so the repeats of a recording go out from different clients at once.
async fn burst(replicas: &[SocketAddr], count: usize, clients: usize) -> (Vec<Answer>, Took) {
    let started = Instant::now();
    let cpu = process_cpu();
    let clients: Vec<_> =
        (0..clients).map(|c| tokio::spawn(client(replicas.to_vec(), (c..count).step_by(clients).collect()))).collect();
    let mut answers = Vec::with_capacity(count);
    for c in clients {
        answers.extend(c.await.unwrap());
    }
    (answers, Took { wall: started.elapsed(), cpu: process_cpu() - cpu })
}

/// Latency percentile (nearest rank) of the answers.
fn percentile(answers: &[Answer], p: f64) -> Duration {
    let mut latencies: Vec<Duration> = answers.iter().map(|a| a.latency).collect();
    latencies.sort();
    let rank = ((p / 100.0) * latencies.len() as f64).ceil() as usize;
    latencies[rank.clamp(1, latencies.len()) - 1]
}

#[expect(clippy::print_stdout, reason = "the burst's figures are the test's report")]
fn report(name: &str, answers: &[Answer], took: Took, fake: &FakeApi) {
    let mut outcomes: BTreeMap<(u16, &str), usize> = BTreeMap::new();
    for a in answers {
        *outcomes.entry((a.status, a.outcome.as_str())).or_default() += 1;
    }
    println!(
        "{name}: {} events in {:.2} s = {:.0} events/s ({:.2} CPU-s in all = {:.0} events per CPU-second); \
         latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; Jobs created {}; API creates {} (at most {} at once); \
         answers {outcomes:?}; load average {}",
        answers.len(),
        took.wall.as_secs_f64(),
        answers.len() as f64 / took.wall.as_secs_f64(),
        took.cpu.as_secs_f64(),
        answers.len() as f64 / took.cpu.as_secs_f64(),
        percentile(answers, 50.0).as_secs_f64() * 1e3,
        percentile(answers, 99.0).as_secs_f64() * 1e3,
        percentile(answers, 100.0).as_secs_f64() * 1e3,
        fake.jobs().len(),
        fake.creates(),
        fake.max_concurrent_creates(),
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split(' ').next().unwrap_or("?"),
    );
}

/// Exactly one Job per recording, and no recording without one.
fn assert_one_job_per_recording(fake: &FakeApi) {
    let jobs = fake.jobs();
    let inputs: BTreeSet<String> =
        jobs.iter().map(|j| j["metadata"]["annotations"]["ladder.dev/input"].as_str().unwrap().to_owned()).collect();
    let expected: BTreeSet<String> = (0..RECORDINGS).map(recording).collect();
    assert_eq!(jobs.len(), RECORDINGS, "one Job per recording");
    assert_eq!(inputs, expected, "no recording lost");
}

/// Every event answered 200, and exactly one answer per recording says `created`.
fn assert_all_answered(answers: &[Answer]) {
    assert_eq!(answers.len(), EVENTS);
    let refused: Vec<&Answer> = answers.iter().filter(|a| a.status != 200).collect();
    assert!(refused.is_empty(), "{} events not accepted, e.g. {:?}", refused.len(), refused.first());
    let created = answers.iter().filter(|a| a.outcome == "created").count();
    assert_eq!(created, RECORDINGS, "exactly one event per recording created its Job");
    for a in answers {
        assert!(matches!(a.outcome.as_str(), "created" | "duplicate" | "existing"), "{a:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_2000_events_makes_one_job_per_recording() {
    let fake = FakeApi::start();
    let (addr, state) = start_serve(&fake, Limits::default()).await;
    let (answers, took) = burst(&[addr], EVENTS, CLIENTS).await;
    report("burst, one replica", &answers, took, &fake);
    assert_all_answered(&answers);
    assert_one_job_per_recording(&fake);
    assert_eq!(fake.creates(), RECORDINGS, "repeats wait for the create in flight instead of asking again");
    assert!(fake.max_concurrent_creates() <= Limits::default().max_concurrent_creates);
    assert_eq!(state.metrics.events("generic", "acme", "created"), RECORDINGS as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_and_a_slow_api_server_still_answer_in_time() {
    let fake = FakeApi::start();
    fake.slow_creates(Duration::from_millis(200));
    let limits = Limits { max_concurrent_creates: 16, dispatch_deadline: Duration::from_secs(10), ..Limits::default() };
    let (a, _) = start_serve(&fake, limits.clone()).await;
    let (b, _) = start_serve(&fake, limits.clone()).await;
    // More senders than the replicas may create for at once, so the limit has to hold.
    let (answers, took) = burst(&[a, b], EVENTS, 8 * CLIENTS).await;
    report("burst, two replicas, API server at 200 ms per create", &answers, took, &fake);
    assert_all_answered(&answers);
    assert_one_job_per_recording(&fake);
    // Both replicas tried every recording; the API server refused the second of each.
    assert_eq!(fake.creates(), 2 * RECORDINGS);
    assert_eq!(answers.iter().filter(|a| a.outcome == "existing").count(), RECORDINGS);
    let slowest = percentile(&answers, 100.0);
    assert!(slowest < limits.dispatch_deadline, "slowest answer took {slowest:?}");
    let most = fake.max_concurrent_creates();
    assert!(most <= 2 * limits.max_concurrent_creates, "{most} creates at once from two replicas");
    assert!(most > limits.max_concurrent_creates, "both replicas create at the same time ({most} at most)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_quota_is_503_with_retry_after_and_the_retry_is_served() {
    let fake = FakeApi::start();
    fake.fill_quota("ladder-acme", true);
    let (addr, _) = start_serve(&fake, Limits::default()).await;
    let count = 64;
    let (answers, _) = burst(&[addr], count, CLIENTS).await;
    for a in &answers {
        assert_eq!((a.status, a.outcome.as_str()), (503, "dispatch_failed"), "{a:?}");
        let seconds: u64 = a.retry_after.as_deref().expect("a 503 says when to retry").parse().unwrap();
        assert!(seconds > 0);
    }
    assert!(fake.jobs().is_empty());
    // The senders retry (each with a fresh signature) once the quota has room.
    fake.fill_quota("ladder-acme", false);
    let (answers, _) = burst(&[addr], count, CLIENTS).await;
    assert!(answers.iter().all(|a| a.status == 200), "{:?}", answers.iter().find(|a| a.status != 200));
    assert_eq!(fake.jobs().len(), count / REPEATS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_past_its_deadline_is_told_to_retry_and_the_job_is_still_made() {
    let fake = FakeApi::start();
    fake.slow_creates(Duration::from_millis(1500));
    let limits = Limits { dispatch_deadline: Duration::from_millis(300), ..Limits::default() };
    let (addr, _) = start_serve(&fake, limits).await;
    let (answers, _) = burst(&[addr], 1, 1).await;
    assert_eq!((answers[0].status, answers[0].outcome.as_str()), (503, "busy"), "{:?}", answers[0]);
    assert_eq!(answers[0].retry_after.as_deref(), Some("5"));
    assert!(answers[0].latency < Duration::from_millis(1000), "answered at the deadline: {:?}", answers[0]);
    // The create went on without the event; the sender's retry finds it made.
    let waited = Instant::now();
    while fake.jobs().is_empty() {
        assert!(waited.elapsed() < Duration::from_secs(20), "the create never finished");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (answers, _) = burst(&[addr], 1, 1).await;
    assert_eq!((answers[0].status, answers[0].outcome.as_str()), (200, "duplicate"), "{:?}", answers[0]);
    assert_eq!(fake.creates(), 1);
}
