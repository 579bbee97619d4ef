//! A real VictoriaMetrics (the Debian package `victoria-metrics`, which `scripts/deps.sh`
//! installs) started by the test on a loopback port with a temporary storage folder, and
//! a small HTTP/1.0 client for its import and query APIs.

#![allow(clippy::unwrap_used, reason = "a test helper fails its test loudly")]
#![allow(clippy::print_stderr, reason = "a skipped test says why")]

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A running VictoriaMetrics, stopped when dropped.
pub struct VictoriaMetrics {
    pub addr: SocketAddr,
    child: Child,
    _storage: tempfile::TempDir,
}

impl VictoriaMetrics {
    /// Starts one. Without the binary: `None` (the reason printed), or a panic under CI,
    /// where a missing tool must fail rather than skip.
    pub fn start() -> Option<Self> {
        let storage = tempfile::tempdir().expect("a temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let spawned = Command::new("victoria-metrics")
            .arg(format!("-storageDataPath={}", storage.path().display()))
            .arg(format!("-httpListenAddr={addr}"))
            // Show samples as soon as they are stored (the default hides the last 30 s).
            .args(["-search.latencyOffset=0s", "-search.disableCache", "-retentionPeriod=1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let why = "victoria-metrics is not installed (apt-get install victoria-metrics, or scripts/deps.sh)";
                assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
                eprintln!("SKIPPED: {why}");
                return None;
            }
            Err(e) => panic!("starting victoria-metrics: {e}"),
        };
        let vm = Self { addr, child, _storage: storage };
        let started = Instant::now();
        while vm.get("/health").map(|(s, _)| s) != Some(200) {
            assert!(started.elapsed() < Duration::from_secs(30), "victoria-metrics did not start in 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(vm)
    }

    /// The Prometheus text import endpoint, what `--metrics-url` points at.
    pub fn import_url(&self) -> String {
        format!("http://{}/api/v1/import/prometheus", self.addr)
    }

    /// Imports Prometheus text (as a scrape would) and waits until it is stored.
    pub fn import(&self, text: &str) {
        let (status, body) = http(self.addr, "POST", "/api/v1/import/prometheus", text.as_bytes()).unwrap();
        assert_eq!(status, 204, "import refused: {body}");
    }

    /// `GET path`, or `None` when nothing answers.
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        http(self.addr, "GET", path, b"").ok()
    }

    /// An instant query; the whole answer, which must be a success.
    pub fn query(&self, query: &str) -> Value {
        self.api(&format!("/api/v1/query?query={}", encode(query)), query)
    }

    /// A range query over the past `minutes`.
    pub fn query_range(&self, query: &str, minutes: u64) -> Value {
        let end = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let start = end - minutes * 60;
        let path = format!("/api/v1/query_range?query={}&start={start}&end={end}&step=60", encode(query));
        self.api(&path, query)
    }

    /// The label values VictoriaMetrics knows for `label` on series matching `selector`.
    pub fn label_values(&self, label: &str, selector: &str) -> Vec<String> {
        let answer = self.api(&format!("/api/v1/label/{label}/values?match[]={}", encode(selector)), selector);
        answer["data"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect()
    }

    fn api(&self, path: &str, what: &str) -> Value {
        let (status, body) = http(self.addr, "GET", path, b"").unwrap();
        let answer: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{what}: not JSON: {body}"));
        assert_eq!((status, answer["status"].as_str()), (200, Some("success")), "{what}: {body}");
        answer
    }

    /// The series of an instant query, waiting (up to 20 s) until there are some: samples
    /// become searchable about a second after they arrive.
    pub fn wait_for(&self, query: &str) -> Vec<Value> {
        let started = Instant::now();
        loop {
            let result = self.query(query)["data"]["result"].as_array().unwrap().clone();
            if !result.is_empty() {
                return result;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "no series for {query} after 20 s");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for VictoriaMetrics {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.0 exchange (VictoriaMetrics then answers without chunking and closes).
fn http(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(stream, "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: {}\r\n\r\n", body.len())?;
    stream.write_all(body)?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    Ok((status, body))
}

/// Percent-encodes a query parameter.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
