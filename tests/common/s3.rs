//! A real S3 protocol server in the test process (`s3s` + `s3s-fs` on a loopback port,
//! SigV4 with a test key), a fault-injecting proxy to put in front of it, and helpers to
//! look at what was stored: on the server's disk and through the S3 API.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_s3::config::RequestChecksumCalculation;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumType};
use base64::Engine as _;
use sha2::{Digest, Sha256};

pub const ACCESS_KEY: &str = "LADDERTESTKEY";
pub const SECRET_KEY: &str = "ladder-test-secret-key-0123456789";
pub const REGION: &str = "us-east-1";

/// An S3 server over a temporary folder: bucket `b`, object `k` is the file `<root>/b/k`.
pub struct Server {
    pub root: tempfile::TempDir,
    pub addr: SocketAddr,
    runtime: tokio::runtime::Runtime,
}

impl Server {
    /// Starts the server on 127.0.0.1:0 on its own runtime threads.
    pub fn start() -> Self {
        let root = tempfile::tempdir().expect("a temp dir");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let fs = s3s_fs::FileSystem::new(root.path()).expect("s3s-fs over the temp dir");
        let service = {
            let mut b = s3s::service::S3ServiceBuilder::new(fs);
            b.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
            b.build()
        };
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("a loopback port");
        let addr = listener.local_addr().expect("bound");
        runtime.spawn(async move {
            let http = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            loop {
                let Ok((socket, _)) = listener.accept().await else { continue };
                let conn = http.serve_connection(hyper_util::rt::TokioIo::new(socket), service.clone()).into_owned();
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        });
        Self { root, addr, runtime }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn create_bucket(&self, bucket: &str) {
        std::fs::create_dir_all(self.root.path().join(bucket)).expect("bucket folder");
    }

    /// Where the server keeps an object.
    pub fn path(&self, bucket: &str, key: &str) -> PathBuf {
        self.root.path().join(bucket).join(key)
    }

    /// An object's bytes, read from the server's disk.
    pub fn read(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        std::fs::read(self.path(bucket, key)).ok()
    }

    /// Every object key under `prefix` (from the disk), sorted.
    pub fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let base = self.root.path().join(bucket);
        let mut keys = Vec::new();
        let mut stack = vec![base.join(prefix)];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for e in entries.flatten() {
                let path = e.path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    keys.push(path.strip_prefix(&base).expect("under the bucket").to_string_lossy().into_owned());
                }
            }
        }
        keys.sort();
        keys
    }

    /// A client that talks to the server directly, with the test credentials.
    pub fn client(&self) -> aws_sdk_s3::Client {
        client(&self.endpoint(), RequestChecksumCalculation::WhenSupported)
    }

    /// Stores an object through the S3 API with a SHA-256 checksum, as an uploader would.
    pub fn put(&self, bucket: &str, key: &str, bytes: &[u8]) {
        let client = self.client();
        self.runtime
            .block_on(
                client
                    .put_object()
                    .bucket(bucket)
                    .key(key)
                    .body(ByteStream::from(bytes.to_vec()))
                    .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256)
                    .checksum_sha256(sha256_b64(bytes))
                    .send(),
            )
            .unwrap_or_else(|e| panic!("PUT {bucket}/{key}: {}", aws_sdk_s3::error::DisplayErrorContext(e)));
    }

    /// `(Content-Type, Cache-Control, SHA-256 checksum)` of an object, from a HEAD.
    pub fn head(&self, bucket: &str, key: &str) -> (String, String, Option<String>) {
        let client = self.client();
        let head = self
            .runtime
            .block_on(
                client
                    .head_object()
                    .bucket(bucket)
                    .key(key)
                    .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
                    .send(),
            )
            .unwrap_or_else(|e| panic!("HEAD {bucket}/{key}: {}", aws_sdk_s3::error::DisplayErrorContext(e)));
        (
            head.content_type().unwrap_or_default().to_owned(),
            head.cache_control().unwrap_or_default().to_owned(),
            head.checksum_sha256().map(str::to_owned),
        )
    }

    /// Unfinished multipart uploads the server still holds (their part files).
    pub fn pending_parts(&self) -> usize {
        std::fs::read_dir(self.root.path())
            .expect("root")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".upload_id-"))
            .count()
    }
}

/// A client for `endpoint` with the test credentials and the SDK's defaults but for
/// `checksums` (`WhenSupported`, the default, adds a CRC32 to every upload).
pub fn client(endpoint: &str, checksums: RequestChecksumCalculation) -> aws_sdk_s3::Client {
    let credentials = aws_sdk_s3::config::Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test");
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version_latest()
        .region(aws_sdk_s3::config::Region::new(REGION))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(credentials)
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .request_checksum_calculation(checksums)
        // A stuck server fails the test instead of hanging it.
        .timeout_config(
            aws_sdk_s3::config::timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(Duration::from_secs(60))
                .build(),
        )
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// The smallest part S3 (and moto, and s3s-fs) accepts but for the last.
pub const MIN_PART: usize = 5 * 1024 * 1024;

/// How an object is uploaded, as an AWS SDK transfer manager does it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upload {
    /// One PutObject with the SDK's default checksum (CRC32).
    Single,
    /// Parts of [`MIN_PART`]; each part with the algorithm's checksum (computed by the SDK),
    /// and the object's checksum of that type (`COMPOSITE`: of the parts' checksums, which
    /// S3 computes; `FULL_OBJECT`: of all the bytes, sent with the completion).
    Multipart(ChecksumAlgorithm, ChecksumType),
    /// Parts of [`MIN_PART`] with no checksum at all (`request_checksum_calculation =
    /// when_required`).
    MultipartWithoutChecksum,
}

/// Uploads `bytes` as `key` the way `how` says, with SSE-KMS when `kms_key` is given.
pub async fn upload_as(endpoint: &str, bucket: &str, key: &str, bytes: &[u8], how: &Upload, kms_key: Option<&str>) {
    use aws_sdk_s3::error::DisplayErrorContext as E;
    use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, ServerSideEncryption};
    let object = format!("{bucket}/{key} ({how:?})");
    let (algorithm, kind) = match how.clone() {
        Upload::Single => {
            let client = client(endpoint, RequestChecksumCalculation::WhenSupported);
            let mut put = client.put_object().bucket(bucket).key(key).body(ByteStream::from(bytes.to_vec()));
            if let Some(k) = kms_key {
                put = put.server_side_encryption(ServerSideEncryption::AwsKms).ssekms_key_id(k);
            }
            put.send().await.unwrap_or_else(|e| panic!("PUT {object}: {}", E(e)));
            return;
        }
        Upload::Multipart(algorithm, kind) => (Some(algorithm), Some(kind)),
        Upload::MultipartWithoutChecksum => (None, None),
    };
    let checksums = if algorithm.is_some() {
        RequestChecksumCalculation::WhenSupported
    } else {
        RequestChecksumCalculation::WhenRequired
    };
    let client = client(endpoint, checksums);
    let mut create = client.create_multipart_upload().bucket(bucket).key(key);
    create = create.set_checksum_algorithm(algorithm.clone()).set_checksum_type(kind.clone());
    if let Some(k) = kms_key {
        create = create.server_side_encryption(ServerSideEncryption::AwsKms).ssekms_key_id(k);
    }
    let created = create.send().await.unwrap_or_else(|e| panic!("CreateMultipartUpload {object}: {}", E(e)));
    let upload_id = created.upload_id().expect("an upload id");
    let mut parts = Vec::new();
    for (i, chunk) in bytes.chunks(MIN_PART).enumerate() {
        let number = i as i32 + 1;
        let part = client
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(number)
            .set_checksum_algorithm(algorithm.clone())
            .body(ByteStream::from(chunk.to_vec()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("UploadPart {object}: {}", E(e)));
        parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(part.e_tag().map(str::to_owned))
                .set_checksum_crc32(part.checksum_crc32().map(str::to_owned))
                .set_checksum_crc32_c(part.checksum_crc32_c().map(str::to_owned))
                .set_checksum_crc64_nvme(part.checksum_crc64_nvme().map(str::to_owned))
                .set_checksum_sha1(part.checksum_sha1().map(str::to_owned))
                .set_checksum_sha256(part.checksum_sha256().map(str::to_owned))
                .build(),
        );
    }
    let mut complete = client
        .complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build());
    if kind == Some(ChecksumType::FullObject) {
        let whole = |a: aws_smithy_checksums::ChecksumAlgorithm| {
            let mut hasher = a.into_impl();
            hasher.update(bytes);
            base64::engine::general_purpose::STANDARD.encode(hasher.finalize())
        };
        use aws_smithy_checksums::ChecksumAlgorithm as A;
        complete = complete.checksum_type(ChecksumType::FullObject);
        complete = match algorithm {
            Some(ChecksumAlgorithm::Crc32) => complete.checksum_crc32(whole(A::Crc32)),
            Some(ChecksumAlgorithm::Crc32C) => complete.checksum_crc32_c(whole(A::Crc32c)),
            Some(ChecksumAlgorithm::Crc64Nvme) => complete.checksum_crc64_nvme(whole(A::Crc64Nvme)),
            other => panic!("S3 has no full-object {other:?}"),
        };
    }
    complete.send().await.unwrap_or_else(|e| panic!("CompleteMultipartUpload {object}: {}", E(e)));
}

/// `len` deterministic bytes that do not compress (xorshift from a non-zero `seed`).
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

pub fn sha256_b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The environment for `ladder` to reach `endpoint` with the test credentials, and never
/// the user's own AWS files or an instance metadata service.
pub fn env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_owned()),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_owned()),
        ("AWS_REGION", REGION.to_owned()),
        ("AWS_CONFIG_FILE", "/dev/null".to_owned()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ("LADDER_S3_ENDPOINT", endpoint.to_owned()),
        // Fast retries: a fault costs milliseconds, a stall one second.
        ("LADDER_S3_BACKOFF_MS", "20".to_owned()),
        ("LADDER_S3_READ_TIMEOUT", "1".to_owned()),
    ]
}

/// The storage config `ladder` would build from the test environment, against `endpoint`
/// (the library directly: settings the CLI does not expose, small enough for a test).
pub fn storage_config(endpoint: &str) -> ladder::location::StorageConfig {
    static ENV: std::sync::Once = std::sync::Once::new();
    ENV.call_once(|| {
        for (k, v) in env("") {
            // SAFETY: std's environment lock orders this with other threads' reads
            // (aws-config and Command both go through std::env), and nothing else of
            // this test process reads these variables.
            unsafe { std::env::set_var(k, v) };
        }
    });
    ladder::location::StorageConfig {
        endpoint: Some(endpoint.to_owned()),
        initial_backoff: Duration::from_millis(20),
        read_timeout: Duration::from_secs(1),
        ..Default::default()
    }
}

/// What the proxy does to a request a rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and S3 error code (XML body), without asking the server.
    Status(u16, &'static str),
    /// Take the request, say nothing for this long, then close.
    Stall(Duration),
    /// Close the connection after reading the request head, before its body.
    DropRequest,
    /// Forward the request, send the client the response head and half its body, then
    /// stall for this long and close.
    StallBody(Duration),
    /// Forward the request, send the response head and half its body, then close.
    DropResponse,
    /// Forward the request and flip a bit of the object's byte at this offset in the
    /// response, when its `Content-Range` holds it: the same bit every time, as a store
    /// serving a damaged object would.
    FlipByte(u64),
    /// As [`Fault::FlipByte`], a different bit each time: damage on the way.
    GarbleByte(u64),
    /// Answer `200 OK` with this XML body, without asking the server: what a store that
    /// has an operation the server lacks would say.
    Reply(&'static str),
}

/// How many [`Fault::GarbleByte`] faults were injected, to vary the bit.
static GARBLED: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// A fault for the next `times` requests that match.
#[derive(Debug, Clone)]
pub struct Rule {
    pub fault: Fault,
    /// Only this method (`PUT`, `GET`, …).
    pub method: Option<&'static str>,
    /// Only requests whose target (path and query) contains this.
    pub target: Option<String>,
    pub times: usize,
}

impl Rule {
    pub fn new(fault: Fault, method: Option<&'static str>, target: Option<&str>, times: usize) -> Self {
        Self { fault, method, target: target.map(str::to_owned), times }
    }
}

/// An HTTP/1.1 proxy in front of the server that injects faults by rule. Each forwarded
/// request gets its own upstream connection (`Connection: close`), which keeps the
/// proxy a plain byte pump.
pub struct Proxy {
    pub addr: SocketAddr,
    rules: Arc<Mutex<Vec<Rule>>>,
    injected: Arc<Mutex<Vec<String>>>,
    requests: Arc<Mutex<Vec<Request>>>,
}

/// A request the proxy saw: method, target, and header lines (names lower-cased).
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

impl Proxy {
    pub fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let addr = listener.local_addr().expect("bound");
        let rules: Arc<Mutex<Vec<Rule>>> = Arc::default();
        let injected: Arc<Mutex<Vec<String>>> = Arc::default();
        let requests: Arc<Mutex<Vec<Request>>> = Arc::default();
        let (r, i, q) = (rules.clone(), injected.clone(), requests.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (r, i, q) = (r.clone(), i.clone(), q.clone());
                std::thread::spawn(move || {
                    let _ = serve(client, upstream, &r, &i, &q);
                });
            }
        });
        Self { addr, rules, injected, requests }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn add(&self, rule: Rule) {
        self.rules.lock().expect("rules").push(rule);
    }

    /// One line per fault injected so far: `503 PUT /bucket/key`.
    pub fn injected(&self) -> Vec<String> {
        self.injected.lock().expect("log").clone()
    }

    /// Every request seen so far, faulty or not.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().expect("log").clone()
    }

    /// Rules with faults still to inject.
    pub fn unused(&self) -> Vec<Rule> {
        self.rules.lock().expect("rules").iter().filter(|r| r.times > 0).cloned().collect()
    }
}

/// Reads a head (request or response) up to the blank line.
fn read_head(reader: &mut BufReader<TcpStream>) -> std::io::Result<Option<Vec<String>>> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let line = line.trim_end_matches(['\r', '\n']).to_owned();
        if line.is_empty() {
            return Ok(Some(lines));
        }
        lines.push(line);
    }
}

fn header<'a>(head: &'a [String], name: &str) -> Option<&'a str> {
    head.iter().skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Reads a body framed by Content-Length or chunked transfer coding, raw.
fn read_body(reader: &mut BufReader<TcpStream>, head: &[String]) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    if header(head, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut line = String::new();
            reader.read_line(&mut line)?;
            body.extend_from_slice(line.as_bytes());
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
            if size == 0 {
                // Trailers, then the blank line.
                loop {
                    let mut t = String::new();
                    reader.read_line(&mut t)?;
                    body.extend_from_slice(t.as_bytes());
                    if t == "\r\n" || t.is_empty() {
                        return Ok(body);
                    }
                }
            }
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            body.extend_from_slice(&chunk);
        }
    }
    let length: usize = header(head, "content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    body.resize(length, 0);
    reader.read_exact(&mut body)?;
    Ok(body)
}

fn serve(
    client: TcpStream,
    upstream: SocketAddr,
    rules: &Mutex<Vec<Rule>>,
    injected: &Mutex<Vec<String>>,
    requests: &Mutex<Vec<Request>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client = client;
    let Some(head) = read_head(&mut reader)? else { return Ok(()) };
    let mut parts = head[0].split(' ');
    let (method, target) = (parts.next().unwrap_or("").to_owned(), parts.next().unwrap_or("").to_owned());
    let headers = head[1..]
        .iter()
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let request = Request { method: method.clone(), target: target.clone(), headers };
    // A byte fault spends itself only on a response that holds the byte.
    let holds = |at: u64| {
        let Some(range) = request.header("range").and_then(|r| r.strip_prefix("bytes=")) else { return true };
        let (first, last) = range.split_once('-').unwrap_or((range, ""));
        first.parse::<u64>().is_ok_and(|f| f <= at) && last.parse::<u64>().is_ok_and(|l| at <= l)
    };
    let fault = {
        let mut rules = rules.lock().expect("rules");
        rules
            .iter_mut()
            .find(|r| {
                r.times > 0
                    && r.method.is_none_or(|m| m == method)
                    && r.target.as_deref().is_none_or(|t| target.contains(t))
                    && match r.fault {
                        Fault::FlipByte(at) | Fault::GarbleByte(at) => holds(at),
                        _ => true,
                    }
            })
            .map(|r| {
                r.times -= 1;
                r.fault
            })
    };
    let if_match = request.header("if-match").map(str::to_owned);
    requests.lock().expect("log").push(request);
    if let Some(f) = fault {
        injected.lock().expect("log").push(format!("{f:?} {method} {target}"));
    }
    if fault == Some(Fault::DropRequest) {
        return client.shutdown(std::net::Shutdown::Both);
    }
    let body = read_body(&mut reader, &head)?;
    match fault {
        Some(Fault::Status(status, code)) => return reply_error(&mut client, status, code),
        Some(Fault::Reply(xml)) => {
            write!(
                client,
                "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
                xml.len()
            )?;
            return client.flush();
        }
        Some(Fault::Stall(d)) => {
            std::thread::sleep(d);
            return client.shutdown(std::net::Shutdown::Both);
        }
        _ => {}
    }
    let mut up = TcpStream::connect(upstream)?;
    let mut out = Vec::new();
    out.extend_from_slice(head[0].as_bytes());
    out.extend_from_slice(b"\r\n");
    for line in &head[1..] {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out.extend_from_slice(&body);
    up.write_all(&out)?;
    match fault {
        Some(Fault::FlipByte(at) | Fault::GarbleByte(at)) => {
            let mut up_reader = BufReader::new(up);
            let response = read_head(&mut up_reader)?.unwrap_or_default();
            let mut body = read_body(&mut up_reader, &response)?;
            // `bytes first-last/size`, or the whole object.
            let first = header(&response, "content-range")
                .and_then(|r| r.strip_prefix("bytes "))
                .and_then(|r| r.split('-').next())
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0);
            if let Some(byte) = at.checked_sub(first).and_then(|i| body.get_mut(usize::try_from(i).ok()?)) {
                let bit = match fault {
                    Some(Fault::GarbleByte(_)) => GARBLED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 8,
                    _ => 0,
                };
                *byte ^= 1 << bit;
            }
            let mut text = response.join("\r\n");
            text.push_str("\r\n\r\n");
            client.write_all(text.as_bytes())?;
            client.write_all(&body)?;
            client.flush()?;
            client.shutdown(std::net::Shutdown::Both)
        }
        Some(Fault::StallBody(_) | Fault::DropResponse) => {
            let mut up_reader = BufReader::new(up);
            let response = read_head(&mut up_reader)?.unwrap_or_default();
            let length: usize = header(&response, "content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
            let mut text = response.join("\r\n");
            text.push_str("\r\n\r\n");
            client.write_all(text.as_bytes())?;
            let mut half = vec![0; length / 2];
            up_reader.read_exact(&mut half)?;
            client.write_all(&half)?;
            client.flush()?;
            if let Some(Fault::StallBody(d)) = fault {
                std::thread::sleep(d);
            }
            client.shutdown(std::net::Shutdown::Both)
        }
        _ if method == "GET" && if_match.is_some() => {
            // s3s-fs ignores If-Match on GET; S3 answers 412 when the object is another
            // version now. The proxy does, from the ETag of the server's answer.
            let mut up_reader = BufReader::new(up);
            let response = read_head(&mut up_reader)?.unwrap_or_default();
            let unquote = |v: &str| v.trim().trim_start_matches("W/").trim_matches('"').to_owned();
            let wanted = if_match.as_deref().map(unquote);
            let ok = response.first().is_some_and(|l| l.contains(" 20"));
            if ok && header(&response, "etag").map(unquote) != wanted {
                injected.lock().expect("log").push(format!("412 (If-Match) {method} {target}"));
                return reply_error(&mut client, 412, "PreconditionFailed");
            }
            let mut text = response.join("\r\n");
            text.push_str("\r\n\r\n");
            client.write_all(text.as_bytes())?;
            std::io::copy(&mut up_reader, &mut client)?;
            client.flush()?;
            client.shutdown(std::net::Shutdown::Both)
        }
        _ => {
            std::io::copy(&mut up, &mut client)?;
            client.flush()?;
            client.shutdown(std::net::Shutdown::Both)
        }
    }
}

/// An S3 error answer: `status`, with `code` in its XML body.
fn reply_error(client: &mut TcpStream, status: u16, code: &str) -> std::io::Result<()> {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>injected by the test \
         proxy</Message><RequestId>test</RequestId></Error>"
    );
    write!(
        client,
        "HTTP/1.1 {status} Injected\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: \
         close\r\n\r\n{xml}",
        xml.len()
    )?;
    client.flush()
}

/// Copies a file into the server as an object through the API (so it has a checksum).
pub fn upload(server: &Server, bucket: &str, key: &str, file: &Path) {
    server.put(bucket, key, &std::fs::read(file).expect("readable input"));
}
