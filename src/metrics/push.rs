//! Sending a push: HTTP/1.1 over plain TCP (an in-cluster VictoriaMetrics, vmagent or
//! Pushgateway), each attempt bounded by a timeout, a few attempts with backoff, and an
//! overall deadline, so that an unreachable endpoint costs a few seconds at most.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::{Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::time::Instant;

use super::JobLabels;

/// The content type of the Prometheus text format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Why a push failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PushError {
    #[error("metrics URL {url:?} {why}")]
    Url { url: String, why: String },
    #[error("pushing metrics to {endpoint}: {why}")]
    Send { endpoint: String, why: String },
    #[error("pushing metrics to {endpoint}: the server answered {status}: {body}")]
    Status { endpoint: String, status: StatusCode, body: String },
    #[error("pushing metrics to {endpoint}: no answer within {seconds:.1} s")]
    Timeout { endpoint: String, seconds: f64 },
}

impl crate::exit::ExitClass for PushError {
    /// The exit class of this failure, were it ever to end a command: a URL that cannot be
    /// used is a usage error, the rest passes. (`ladder run` only logs push failures.)
    fn outcome(&self) -> crate::exit::Outcome {
        match self {
            Self::Url { .. } => crate::exit::Outcome::Usage,
            Self::Send { .. } | Self::Status { .. } | Self::Timeout { .. } => crate::exit::Outcome::Transient,
        }
    }
}

/// How hard to try.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    pub attempts: u32,
    /// Bound of one attempt: connecting, sending and reading the answer.
    pub attempt_timeout: Duration,
    /// Wait before the second attempt; doubled before each further one.
    pub backoff: Duration,
    /// Bound of all attempts together.
    pub deadline: Duration,
}

impl Policy {
    /// The push at the end of a run: what an unreachable endpoint can cost the exit.
    pub(crate) const FINAL: Policy = Policy {
        attempts: 3,
        attempt_timeout: Duration::from_millis(1500),
        backoff: Duration::from_millis(250),
        deadline: Duration::from_secs(4),
    };
    /// A push while the run works: the next one follows anyway.
    pub(crate) const PERIODIC: Policy = Policy {
        attempts: 2,
        attempt_timeout: Duration::from_secs(2),
        backoff: Duration::from_millis(500),
        deadline: Duration::from_secs(5),
    };
}

/// Where pushes go: `http://host[:port]/path`. `{tenant}`, `{preset}`, `{job}` and
/// `{shard}` in the path are replaced by the run's labels, for a Pushgateway's grouping
/// key (`/metrics/job/{job}/shard/{shard}`); a grouping key is sent with PUT (it replaces
/// the group: the final push supersedes the running ones) and its labels are left out of
/// the body, as the Pushgateway requires. Any other path gets a POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// `host[:port]` as written: the `Host` header.
    authority: String,
    host: String,
    port: u16,
    path: String,
    grouping: Vec<String>,
}

impl Endpoint {
    /// Parses a push URL and fills its placeholders.
    pub(crate) fn parse(url: &str, labels: &JobLabels) -> Result<Self, PushError> {
        let bad = |why: &str| PushError::Url { url: url.to_owned(), why: why.to_owned() };
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            bad("must start with http:// (push to an in-cluster endpoint; use a vmagent to reach a TLS one)")
        })?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.contains('@') {
            return Err(bad("must not carry credentials"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() && !p.contains(']') => {
                (h, p.parse::<u16>().map_err(|_| bad("has an invalid port"))?)
            }
            _ => (authority, 80),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad("has no host"));
        }
        let mut filled = path.to_owned();
        for (name, value) in labels.pairs() {
            // An empty path segment would end the grouping key early.
            let value = if value.is_empty() { "none" } else { value };
            filled = filled.replace(&format!("{{{name}}}"), &path_segment(value));
        }
        if filled.contains(['{', '}', ' ']) {
            return Err(bad("has a placeholder other than {tenant}, {preset}, {job} and {shard}, or a space"));
        }
        let grouping = grouping_labels(&filled);
        Ok(Self { authority: authority.to_owned(), host: host.to_owned(), port, path: filled, grouping })
    }

    /// The labels the URL's Pushgateway grouping key sets (none for other endpoints).
    pub(crate) fn grouping_labels(&self) -> &[String] {
        &self.grouping
    }

    fn method(&self) -> Method {
        if self.grouping.is_empty() { Method::POST } else { Method::PUT }
    }

    /// Pushes `body`, retrying as `policy` allows.
    pub(crate) async fn push(&self, body: &str, policy: Policy) -> Result<(), PushError> {
        let deadline = Instant::now() + policy.deadline;
        let body = Bytes::copy_from_slice(body.as_bytes());
        let mut backoff = policy.backoff;
        let mut attempt = 1;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let bound = policy.attempt_timeout.min(left);
            let result = match tokio::time::timeout(bound, self.send(body.clone())).await {
                Ok(r) => r,
                Err(_) => Err(PushError::Timeout { endpoint: self.to_string(), seconds: bound.as_secs_f64() }),
            };
            let error = match result {
                Ok(()) => return Ok(()),
                // A 4xx says the body or path is wrong: the same push will not do better.
                Err(e @ PushError::Status { status, .. }) if status.is_client_error() => return Err(e),
                Err(e) => e,
            };
            if attempt >= policy.attempts || Instant::now() + backoff >= deadline {
                return Err(error);
            }
            tracing::debug!(attempt, error = %error, "metrics push failed; retrying");
            tokio::time::sleep(backoff).await;
            backoff *= 2;
            attempt += 1;
        }
    }

    async fn send(&self, body: Bytes) -> Result<(), PushError> {
        let failed = |why: String| PushError::Send { endpoint: self.to_string(), why };
        let stream = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| failed(format!("connecting: {e}")))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| failed(format!("HTTP handshake: {e}")))?;
        // Stopping the push (the final one supersedes a periodic one) stops its connection.
        let connection = AbortOnDrop(tokio::spawn(connection));
        let request = Request::builder()
            .method(self.method())
            .uri(&self.path)
            .header(header::HOST, &self.authority)
            .header(header::CONTENT_TYPE, CONTENT_TYPE)
            .body(Full::new(body))
            .map_err(|e| failed(format!("building the request: {e}")))?;
        let response = sender.send_request(request).await.map_err(|e| failed(format!("sending: {e}")))?;
        let status = response.status();
        // Enough of an error answer to say what was wrong.
        let answer = Limited::new(response.into_body(), 4096).collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        drop(connection);
        if status.is_success() {
            Ok(())
        } else {
            let body = String::from_utf8_lossy(&answer).trim().to_owned();
            Err(PushError::Status { endpoint: self.to_string(), status, body })
        }
    }
}

/// A task aborted when its handle is dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}:{}{}", self.host, self.port, self.path)
    }
}

/// Percent-encodes what a path segment cannot hold as is.
fn path_segment(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The label names of a Pushgateway grouping key: `/metrics/job/<v>/<label>/<v>/…`.
fn grouping_labels(path: &str) -> Vec<String> {
    let path = path.split('?').next().unwrap_or(path);
    let Some((_, key)) = path.split_once("/metrics/job/") else {
        return Vec::new();
    };
    let mut names = vec!["job".to_owned()];
    let mut parts = key.split('/').skip(1);
    while let Some(name) = parts.next() {
        if name.is_empty() {
            break;
        }
        // `label@base64/value`: the name is before the marker.
        names.push(name.split('@').next().unwrap_or(name).to_owned());
        parts.next();
    }
    names
}

/// The thread that pushes: every `interval` a snapshot while the run works, then the final
/// push, which cancels a periodic one still in flight.
pub(crate) struct Worker {
    final_tx: tokio::sync::oneshot::Sender<String>,
    done_rx: std::sync::mpsc::Receiver<()>,
}

impl Worker {
    /// Starts the thread; `snapshot` makes the body of a periodic push.
    pub(crate) fn start(
        endpoint: Endpoint,
        interval: Duration,
        snapshot: impl Fn() -> String + Send + 'static,
    ) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let (final_tx, mut final_rx) = tokio::sync::oneshot::channel::<String>();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new().name("ladder-metrics".into()).spawn(move || {
            runtime.block_on(async {
                let periodic = async {
                    if interval.is_zero() {
                        return std::future::pending().await;
                    }
                    let mut ticks = tokio::time::interval_at(Instant::now() + interval, interval);
                    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    loop {
                        ticks.tick().await;
                        match endpoint.push(&snapshot(), Policy::PERIODIC).await {
                            Ok(()) => tracing::debug!(%endpoint, "metrics pushed"),
                            Err(e) => tracing::warn!(error = %e, "metrics push failed; the next one follows"),
                        }
                    }
                };
                // The final body cancels the loop (and a push in flight) at its next await.
                let body = tokio::select! {
                    body = &mut final_rx => body.ok(),
                    () = periodic => None,
                };
                if let Some(body) = body {
                    match endpoint.push(&body, Policy::FINAL).await {
                        Ok(()) => tracing::info!(%endpoint, "final metrics pushed"),
                        Err(e) => tracing::warn!(error = %e, "final metrics push failed; the run's result stands"),
                    }
                }
            });
            // A name lookup still blocking must not hold the thread (or the process) up.
            runtime.shutdown_background();
            let _ = done_tx.send(());
        })?;
        Ok(Self { final_tx, done_rx })
    }

    /// Hands the final push to the thread and waits for it, at most its deadline (and a
    /// little for the thread to notice).
    pub(crate) fn finish(self, body: String) {
        if self.final_tx.send(body).is_err() {
            return;
        }
        let _ = self.done_rx.recv_timeout(Policy::FINAL.deadline + Duration::from_millis(500));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::ExitClass as _;

    fn labels() -> JobLabels {
        JobLabels { tenant: "acme".into(), preset: "small".into(), job: "ladder-0a1b".into(), shard: "3".into() }
    }

    #[test]
    fn victoria_metrics_import_urls_are_posted_with_every_label_in_the_body() {
        let e = Endpoint::parse("http://vm.monitoring:8428/api/v1/import/prometheus", &labels()).unwrap();
        assert_eq!(e.to_string(), "http://vm.monitoring:8428/api/v1/import/prometheus");
        assert_eq!(e.method(), Method::POST);
        assert!(e.grouping_labels().is_empty());
        let e = Endpoint::parse("http://vminsert", &labels()).unwrap();
        assert_eq!(e.to_string(), "http://vminsert:80/");
        let e = Endpoint::parse("http://[::1]:8428/api/v1/import/prometheus", &labels()).unwrap();
        assert_eq!((e.host.as_str(), e.port, e.authority.as_str()), ("::1", 8428, "[::1]:8428"));
    }

    #[test]
    fn pushgateway_groups_are_filled_put_and_left_out_of_the_body() {
        let e = Endpoint::parse("http://pgw:9091/metrics/job/{job}/tenant/{tenant}/shard/{shard}", &labels()).unwrap();
        assert_eq!(e.to_string(), "http://pgw:9091/metrics/job/ladder-0a1b/tenant/acme/shard/3");
        assert_eq!(e.method(), Method::PUT);
        assert_eq!(e.grouping_labels(), ["job", "tenant", "shard"]);
        // No Job name outside Kubernetes: the grouping key still has a value.
        let local = JobLabels { job: String::new(), ..labels() };
        let e = Endpoint::parse("http://pgw:9091/metrics/job/{job}", &local).unwrap();
        assert_eq!(e.to_string(), "http://pgw:9091/metrics/job/none");
        let odd = JobLabels { tenant: "a b/c".into(), ..labels() };
        let e = Endpoint::parse("http://pgw:9091/metrics/job/x/tenant/{tenant}", &odd).unwrap();
        assert_eq!(e.to_string(), "http://pgw:9091/metrics/job/x/tenant/a%20b%2Fc");
    }

    #[test]
    fn unusable_urls_say_why() {
        for (url, why) in [
            ("https://vm:8428/api/v1/import/prometheus", "http://"),
            ("vm:8428", "http://"),
            ("http://vm:port/x", "port"),
            ("http://user:pw@vm/x", "credentials"),
            ("http:///x", "no host"),
            ("http://vm/metrics/job/{instance}", "placeholder"),
        ] {
            let err = Endpoint::parse(url, &labels()).unwrap_err();
            assert!(err.to_string().contains(why), "{url}: {err}");
            assert_eq!(err.outcome(), crate::exit::Outcome::Usage);
        }
    }

    /// Answers one request with `status` and returns what it received.
    async fn answer_once(listener: tokio::net::TcpListener, status: &str) -> String {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = socket.read(&mut buf).await.unwrap();
            request.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&request).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ").map(str::to_owned))
                    .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                if body.len() >= length {
                    break;
                }
            }
            assert!(n > 0, "the request ended early");
        }
        socket.write_all(format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n").as_bytes()).await.unwrap();
        String::from_utf8(request).unwrap()
    }

    #[test]
    fn a_pushgateway_group_gets_a_put_of_the_text() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}/metrics/job/{{job}}/shard/{{shard}}", listener.local_addr().unwrap());
            let server = tokio::spawn(answer_once(listener, "200 OK"));
            let e = Endpoint::parse(&url, &labels()).unwrap();
            e.push("ladder_job_wall_seconds{tenant=\"acme\"} 1.0\n", Policy::FINAL).await.unwrap();
            let request = server.await.unwrap();
            assert!(request.starts_with("PUT /metrics/job/ladder-0a1b/shard/3 HTTP/1.1\r\n"), "{request}");
            assert!(request.contains("content-type: text/plain; version=0.0.4"), "{request}");
            assert!(request.ends_with("\r\n\r\nladder_job_wall_seconds{tenant=\"acme\"} 1.0\n"), "{request}");
        });
    }

    #[test]
    fn a_refused_body_is_not_sent_again() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}/api/v1/import/prometheus", listener.local_addr().unwrap());
            let server = tokio::spawn(answer_once(listener, "400 Bad Request"));
            let err = Endpoint::parse(&url, &labels()).unwrap().push("x 1\n", Policy::FINAL).await.unwrap_err();
            assert!(matches!(err, PushError::Status { status: StatusCode::BAD_REQUEST, .. }), "{err}");
            assert!(server.await.unwrap().starts_with("POST /api/v1/import/prometheus HTTP/1.1"));
        });
    }

    #[test]
    fn an_endpoint_that_refuses_costs_the_attempts_and_backoff_only() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        // A port nothing listens on: bind one, then free it.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let e = Endpoint::parse(&format!("http://127.0.0.1:{port}/api/v1/import/prometheus"), &labels()).unwrap();
        let started = std::time::Instant::now();
        let err = runtime.block_on(e.push("x 1\n", Policy::FINAL)).unwrap_err();
        assert!(matches!(err, PushError::Send { .. }), "{err}");
        // Three attempts, 0.25 s + 0.5 s of backoff between them.
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(700) && took < Duration::from_secs(2), "{took:?}");
    }

    #[test]
    fn an_endpoint_that_never_answers_costs_the_deadline() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        // Accepts connections (the kernel does, from the backlog) and never answers.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/api/v1/import/prometheus", silent.local_addr().unwrap());
        let e = Endpoint::parse(&url, &labels()).unwrap();
        let started = std::time::Instant::now();
        let err = runtime.block_on(e.push("x 1\n", Policy::FINAL)).unwrap_err();
        assert!(matches!(err, PushError::Timeout { .. }), "{err}");
        let took = started.elapsed();
        let deadline = Policy::FINAL.deadline;
        assert!(
            took >= deadline - Duration::from_millis(300) && took <= deadline + Duration::from_millis(300),
            "{took:?}"
        );
    }
}
