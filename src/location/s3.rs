//! S3 through `aws-sdk-s3`: [`S3Output`] for `--out`, [`fetch`] for the input.
//!
//! The pipeline is synchronous, so each side owns a small tokio runtime and blocks on it.
//! Retries: the SDK's standard mode (jittered exponential backoff, throttling and 5xx,
//! timeouts and I/O errors) covers whole requests; a response body that stalls or breaks
//! after the headers arrived is outside what the SDK retries, so bodies are read with our
//! own timeout and the request is redone here. The input location is only ever read.

use std::ops::Range;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::Region;
use aws_sdk_s3::config::ResponseChecksumValidation;
use aws_sdk_s3::config::interceptors::InterceptorContext;
use aws_sdk_s3::config::retry::{ClassifyRetry, RetryAction, RetryPartition, TokenBucket};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, CompletedMultipartUpload, CompletedPart, ObjectAttributes};
use aws_smithy_http_client::tls;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use self::integrity::{Algorithm, Mismatch, Part, Stored, Verdict};
use super::{Output, StorageConfig, StorageError};

mod integrity;
pub(crate) mod stream;

/// The AWS region when neither the environment nor a profile names one.
const FALLBACK_REGION: &str = "us-east-1";

/// A connected client and the runtime its futures run on.
struct S3Client {
    runtime: tokio::runtime::Runtime,
    client: Client,
    config: StorageConfig,
}

impl S3Client {
    /// A client for the output, which checks the checksums of the objects it reads back.
    fn new(config: &StorageConfig, location: &str) -> Result<Self, StorageError> {
        Self::with(config, location, ResponseChecksumValidation::WhenSupported)
    }

    /// A client for the input, which checks the object's checksum itself ([`verify`]): a
    /// ranged GET carries no checksum, and the SDK would only warn about a composite one.
    fn for_input(config: &StorageConfig, location: &str) -> Result<Self, StorageError> {
        Self::with(config, location, ResponseChecksumValidation::WhenRequired)
    }

    fn with(
        config: &StorageConfig,
        location: &str,
        responses: ResponseChecksumValidation,
    ) -> Result<Self, StorageError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("ladder-s3")
            .enable_all()
            .build()
            .map_err(|e| StorageError::Remote {
                location: location.to_owned(),
                action: "starting the S3 client for",
                key: String::new(),
                detail: e.to_string(),
            })?;
        let client = runtime.block_on(connect(config, responses));
        Ok(Self { runtime, client, config: config.clone() })
    }

    /// The object `bucket/key` as it is with `etag`.
    fn version(&self, bucket: &str, key: &str, etag: &str) -> ObjectVersion {
        ObjectVersion {
            client: self.client.clone(),
            config: self.config.clone(),
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            etag: etag.to_owned(),
        }
    }
}

async fn connect(config: &StorageConfig, responses: ResponseChecksumValidation) -> Client {
    // rustls with ring: the same TLS as the default client without building aws-lc.
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring))
        .build_https();
    let retry = RetryConfig::standard()
        .with_max_attempts(config.max_attempts.max(1))
        .with_initial_backoff(config.initial_backoff)
        .with_max_backoff(Duration::from_secs(20));
    // A TCP/TLS connect that takes longer than a response may is as stalled as one.
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(10).min(config.read_timeout.max(Duration::from_secs(1))))
        .read_timeout(config.read_timeout)
        .build();
    // The loader's own region chain (env, profile, instance metadata) uses this HTTP client;
    // a separate `RegionProviderChain` would not.
    let mut loader =
        aws_config::defaults(BehaviorVersion::latest()).http_client(http).retry_config(retry).timeout_config(timeouts);
    if let Some(endpoint) = &config.endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    let shared = loader.load().await;
    let path_style = config.path_style.unwrap_or(shared.endpoint_url().is_some());
    let mut s3 = aws_sdk_s3::config::Builder::from(&shared);
    if shared.region().is_none() {
        s3 = s3.region(Region::new(FALLBACK_REGION));
    }
    // The SDK's default retry quota (500 tokens, 14 a retry, shared by the client) is for
    // long-lived services; a batch job that runs 6 fetches or many uploads through a
    // minute of throttling would exhaust it and fail the whole run. The per-request attempt
    // cap and the jittered backoff already bound the load ladder adds.
    let partition = RetryPartition::custom("ladder").token_bucket(TokenBucket::unlimited()).build();
    let s3 = s3
        .force_path_style(path_style)
        .retry_partition(partition)
        .retry_classifier(TooManyRequests)
        .response_checksum_validation(responses)
        .build();
    Client::from_conf(s3)
}

/// Treats HTTP 429 as throttling. S3 itself says `503 SlowDown`, which the SDK retries,
/// but S3-compatible servers and gateways in front of them answer 429, often without an
/// error code the SDK knows.
#[derive(Debug)]
struct TooManyRequests;

impl ClassifyRetry for TooManyRequests {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        match ctx.response() {
            Some(response) if response.status().as_u16() == 429 => RetryAction::throttling_error(),
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "HTTP 429 Too Many Requests"
    }
}

/// What a failed request means for the job.
#[derive(Debug, Clone)]
enum Failure {
    /// Wrong deployment: credentials, permissions, bucket, region. Not retried.
    Config(String),
    /// The object (or upload) does not exist.
    NotFound,
    /// Anything else: the SDK already retried what it could.
    Transient(String),
}

fn classify<E>(err: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>, bucket: &str) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let code = err.code().unwrap_or_default();
    let detail = match status {
        // What the server said, without the SDK's dump of the whole response.
        Some(status) => format!("HTTP {status} {code}: {}", err.message().unwrap_or_default()),
        None => causes(err),
    };
    let credentials = "check the credentials ladder finds (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or \
                       the pod's web identity role)";
    match (status, code) {
        // MinIO-style servers say NotSignedUp for an unknown key.
        (_, "InvalidAccessKeyId" | "NotSignedUp") => Failure::Config(format!(
            "the access key is not known to the server of bucket \"{bucket}\" ({code}): {credentials}"
        )),
        (_, "SignatureDoesNotMatch") => Failure::Config(format!(
            "the secret key does not match the access key for bucket \"{bucket}\" (SignatureDoesNotMatch): \
             {credentials}"
        )),
        (_, "ExpiredToken" | "InvalidToken" | "TokenRefreshRequired") => {
            Failure::Config(format!("the session token for bucket \"{bucket}\" is expired or invalid: {credentials}"))
        }
        (Some(403), _) | (_, "AccessDenied" | "AllAccessDisabled") => Failure::Config(format!(
            "access to bucket \"{bucket}\" is denied (HTTP 403{}): {credentials}, and that they are allowed \
             s3:ListBucket on the bucket and s3:GetObject (input) or s3:GetObject/s3:PutObject/s3:DeleteObject \
             (output) on the prefix",
            if code.is_empty() { String::new() } else { format!(" {code}") }
        )),
        (_, "NoSuchBucket") => Failure::Config(format!(
            "bucket \"{bucket}\" does not exist: check the bucket name, --s3-endpoint and AWS_REGION"
        )),
        (Some(301), _)
        | (_, "PermanentRedirect" | "AuthorizationHeaderMalformed" | "IllegalLocationConstraintException") => {
            Failure::Config(format!("bucket \"{bucket}\" is in another region ({code}): set AWS_REGION to its region"))
        }
        (_, "InvalidBucketName") => Failure::Config(format!("\"{bucket}\" is not a valid bucket name")),
        (Some(404), _) | (_, "NoSuchKey" | "NoSuchUpload" | "NotFound") => Failure::NotFound,
        _ => match err {
            // Before anything was sent: no credentials, a bad endpoint URL, a bad region.
            SdkError::ConstructionFailure(_) => Failure::Config(format!("cannot build requests: {detail}")),
            SdkError::DispatchFailure(d) if d.is_user() || (d.is_other() && detail.contains("credential")) => {
                Failure::Config(format!("no usable AWS credentials: {credentials} ({detail})"))
            }
            _ => Failure::Transient(detail),
        },
    }
}

/// An error and its causes on one line, each said once (`dispatch failure: io error: …`).
fn causes(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// Whether a request was refused (HTTP 403).
fn is_forbidden<E>(err: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> bool {
    err.raw_response().is_some_and(|r| r.status().as_u16() == 403)
}

/// The full key of `key` under `prefix`.
fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() { key.to_owned() } else { format!("{prefix}/{key}") }
}

/// `Content-Type` by file name, as players and CDNs expect.
pub(crate) fn content_type(key: &str) -> &'static str {
    let name = key.rsplit('/').next().unwrap_or(key);
    let extension = name.rsplit_once('.').map_or("", |(_, e)| e);
    match extension {
        "m3u8" => "application/vnd.apple.mpegurl",
        "mpd" => "application/dash+xml",
        "m4s" => "video/iso.segment",
        // The audio rendition's init segment holds only an audio track.
        "mp4" if crate::layout::is_audio(key) => "audio/mp4",
        "mp4" => "video/mp4",
        "m4a" => "audio/mp4",
        "jpg" | "jpeg" => "image/jpeg",
        "vtt" => "text/vtt",
        "json" => "application/json",
        _ => "application/octet-stream",
    }
}

/// `Cache-Control` by role: media never changes under its name within a plan, so it is
/// cached for a year; manifests and the report name the current set and may be republished
/// by a rerun, so they live a minute; checkpoints are never served.
pub(crate) fn cache_control(key: &str) -> &'static str {
    if crate::layout::is_checkpoint(key) {
        return "no-store";
    }
    match key.rsplit_once('.').map_or("", |(_, e)| e) {
        "m4s" | "mp4" | "m4a" | "jpg" | "jpeg" => "public, max-age=31536000, immutable",
        _ => "public, max-age=60",
    }
}

fn sha256_b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes))
}

/// An S3 prefix that receives a run's files. Writes are whole objects (S3 PUTs are
/// atomic), each with a SHA-256 checksum the server verifies.
pub(crate) struct S3Output {
    s3: S3Client,
    bucket: String,
    prefix: String,
}

impl std::fmt::Debug for S3Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Output").field("bucket", &self.bucket).field("prefix", &self.prefix).finish()
    }
}

impl S3Output {
    /// Connects and checks that the bucket exists and the credentials are accepted.
    pub(crate) fn open(bucket: &str, prefix: &str, config: &StorageConfig) -> Result<Self, StorageError> {
        let location = format!("s3://{bucket}/{prefix}");
        let s3 = S3Client::new(config, &location)?;
        let this = Self { s3, bucket: bucket.to_owned(), prefix: prefix.trim_matches('/').to_owned() };
        let checked = this.s3.runtime.block_on(this.s3.client.head_bucket().bucket(bucket).send());
        match checked {
            Ok(_) => Ok(this),
            Err(e) if is_forbidden(&e) => {
                // A HEAD answer has no body to say why; a LIST does (unknown key, wrong secret…).
                let listed = this
                    .s3
                    .runtime
                    .block_on(this.s3.client.list_objects_v2().bucket(bucket).prefix(&this.prefix).max_keys(1).send());
                Err(match listed {
                    Err(e) => this.error(classify(&e, bucket), "checking the bucket of", ""),
                    Ok(_) => this.error(classify(&e, bucket), "checking the bucket of", ""),
                })
            }
            Err(e) => Err(match classify(&e, bucket) {
                Failure::NotFound => this.config_error(format!(
                    "bucket \"{bucket}\" does not exist: check the bucket name, --s3-endpoint and AWS_REGION"
                )),
                failure => this.error(failure, "checking the bucket of", ""),
            }),
        }
    }

    fn location(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    fn config_error(&self, problem: String) -> StorageError {
        StorageError::Config { location: self.location(), problem }
    }

    fn error(&self, failure: Failure, action: &'static str, key: &str) -> StorageError {
        match failure {
            Failure::Config(problem) => self.config_error(problem),
            Failure::NotFound => StorageError::Remote {
                location: self.location(),
                action,
                key: key.to_owned(),
                detail: "not found".to_owned(),
            },
            Failure::Transient(detail) => {
                StorageError::Remote { location: self.location(), action, key: key.to_owned(), detail }
            }
        }
    }

    /// One PUT of `bytes` as `key`: checksummed, with its content type and cache headers.
    fn put_request(
        &self,
        key: &str,
        full: &str,
        bytes: &[u8],
    ) -> aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder {
        self.s3
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(full)
            .body(ByteStream::from(bytes.to_vec()))
            .content_type(content_type(key))
            .cache_control(cache_control(key))
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(sha256_b64(bytes))
    }

    async fn put_single(&self, key: &str, full: &str, bytes: &[u8]) -> Result<(), StorageError> {
        self.put_request(key, full, bytes)
            .send()
            .await
            .map_err(|e| self.error(classify(&e, &self.bucket), "storing", key))?;
        Ok(())
    }

    async fn put_multipart(&self, key: &str, full: &str, bytes: &[u8]) -> Result<(), StorageError> {
        let created = self
            .s3
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(full)
            .content_type(content_type(key))
            .cache_control(cache_control(key))
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .send()
            .await
            .map_err(|e| self.error(classify(&e, &self.bucket), "starting the upload of", key))?;
        let upload_id = created.upload_id().unwrap_or_default().to_owned();
        let result = self.upload_parts(key, full, &upload_id, bytes).await;
        if result.is_err() {
            // An unfinished upload keeps its parts (and costs) until aborted.
            let aborted = self
                .s3
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(full)
                .upload_id(&upload_id)
                .send()
                .await;
            if let Err(e) = aborted {
                tracing::warn!(key, error = causes(&e), "could not abort a failed multipart upload");
            }
        }
        result
    }

    async fn upload_parts(&self, key: &str, full: &str, upload_id: &str, bytes: &[u8]) -> Result<(), StorageError> {
        let mut parts = Vec::new();
        for (i, part) in bytes.chunks(self.s3.config.part_size.max(1)).enumerate() {
            let number = i32::try_from(i + 1).map_err(|_| StorageError::Remote {
                location: self.location(),
                action: "storing",
                key: key.to_owned(),
                detail: "more than 10000 parts: raise the part size".to_owned(),
            })?;
            let checksum = sha256_b64(part);
            let uploaded = self
                .s3
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(full)
                .upload_id(upload_id)
                .part_number(number)
                .body(ByteStream::from(part.to_vec()))
                .checksum_algorithm(ChecksumAlgorithm::Sha256)
                .checksum_sha256(&checksum)
                .send()
                .await
                .map_err(|e| self.error(classify(&e, &self.bucket), "storing a part of", key))?;
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(uploaded.e_tag().map(str::to_owned))
                    .checksum_sha256(checksum)
                    .build(),
            );
        }
        self.s3
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(full)
            .upload_id(upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await
            .map_err(|e| self.error(classify(&e, &self.bucket), "completing the upload of", key))?;
        Ok(())
    }

    /// Reads a whole object; `None` when there is none. The body is read with the read
    /// timeout and the request redone when it stalls or breaks.
    async fn get_object(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let full = join(&self.prefix, key);
        let mut attempt = 1;
        loop {
            let response = match self.s3.client.get_object().bucket(&self.bucket).key(&full).send().await {
                Ok(r) => r,
                Err(e) => {
                    return match classify(&e, &self.bucket) {
                        Failure::NotFound => Ok(None),
                        failure => Err(self.error(failure, "reading", key)),
                    };
                }
            };
            let mut bytes = Vec::new();
            match read_body(response.body, self.s3.config.read_timeout, |chunk| {
                bytes.extend_from_slice(chunk);
                Ok(())
            })
            .await
            {
                Ok(()) => return Ok(Some(bytes)),
                Err(detail) if attempt < self.s3.config.max_attempts => {
                    tracing::debug!(key, attempt, detail, "reading a body failed: retrying");
                    backoff(&self.s3.config, attempt).await;
                    attempt += 1;
                }
                Err(detail) => {
                    return Err(StorageError::Remote {
                        location: self.location(),
                        action: "reading",
                        key: key.into(),
                        detail,
                    });
                }
            }
        }
    }
}

impl Output for S3Output {
    /// One request at a time leaves the connection idle while the server writes each object:
    /// storing a 60 s ladder's last chunk and its assembly (~40 objects) took ~0.8 s more than
    /// to a local folder. (Locally, parallel writes gain nothing and their threads' malloc
    /// arenas cost ~60 MB of peak RSS.)
    fn batch_requests(&self) -> usize {
        8
    }

    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StorageError> {
        let full = join(&self.prefix, key);
        self.s3.runtime.block_on(async {
            if bytes.len() > self.s3.config.part_size {
                self.put_multipart(key, &full, bytes).await
            } else {
                self.put_single(key, &full, bytes).await
            }
        })
    }

    fn size(&self, key: &str) -> Result<Option<u64>, StorageError> {
        let full = join(&self.prefix, key);
        let head = self.s3.runtime.block_on(self.s3.client.head_object().bucket(&self.bucket).key(full).send());
        match head {
            Ok(h) => Ok(Some(h.content_length().and_then(|n| u64::try_from(n).ok()).unwrap_or(0))),
            Err(e) => match classify(&e, &self.bucket) {
                Failure::NotFound => Ok(None),
                failure => Err(self.error(failure, "reading the size of", key)),
            },
        }
    }

    fn delete(&self, key: &str) -> Result<(), StorageError> {
        let full = join(&self.prefix, key);
        let deleted = self.s3.runtime.block_on(self.s3.client.delete_object().bucket(&self.bucket).key(full).send());
        match deleted {
            Ok(_) => Ok(()),
            Err(e) => match classify(&e, &self.bucket) {
                Failure::NotFound => Ok(()),
                failure => Err(self.error(failure, "removing", key)),
            },
        }
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        self.s3.runtime.block_on(self.get_object(key))
    }

    /// `PutObject` with `If-None-Match: *`: S3 answers 412 when the key exists (409 when
    /// another conditional write of it is in flight: that one wins too).
    fn create(&self, key: &str, bytes: &[u8]) -> Result<bool, StorageError> {
        let request = self.put_request(key, &join(&self.prefix, key), bytes).if_none_match("*");
        match self.s3.runtime.block_on(request.send()) {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.raw_response().map(|r| r.status().as_u16()), Some(412 | 409)) => Ok(false),
            Err(e) => Err(self.error(classify(&e, &self.bucket), "creating", key)),
        }
    }

    fn list(&self) -> Result<Vec<String>, StorageError> {
        let prefix = if self.prefix.is_empty() { String::new() } else { format!("{}/", self.prefix) };
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let request =
                self.s3.client.list_objects_v2().bucket(&self.bucket).prefix(&prefix).set_continuation_token(token);
            let page = self
                .s3
                .runtime
                .block_on(request.send())
                .map_err(|e| self.error(classify(&e, &self.bucket), "listing", &prefix))?;
            keys.extend(
                page.contents().iter().filter_map(|o| o.key()?.strip_prefix(prefix.as_str())).map(str::to_owned),
            );
            match page.next_continuation_token() {
                Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_owned()),
                _ => return Ok(keys),
            }
        }
    }

    fn describe(&self) -> String {
        self.location()
    }
}

/// Waits before retry `attempt` (1-based): a random time up to the exponential ceiling
/// ("full jitter"), so many pods retrying at once spread out.
async fn backoff(config: &StorageConfig, attempt: u32) {
    let ceiling = config.initial_backoff.saturating_mul(1 << attempt.min(10)).min(Duration::from_secs(20));
    // The clock's nanoseconds and the process id spread pods well enough; no RNG needed.
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let seed = nanos ^ std::process::id().rotate_left(attempt);
    let fraction = f64::from(seed % 1_000_000) / 1_000_000.0;
    tokio::time::sleep(ceiling.mul_f64(fraction)).await;
}

/// Feeds a response body to `sink`, failing when no bytes arrive within `timeout`.
async fn read_body(
    mut body: ByteStream,
    timeout: Duration,
    mut sink: impl FnMut(&[u8]) -> Result<(), String>,
) -> Result<(), String> {
    loop {
        match tokio::time::timeout(timeout, body.next()).await {
            Err(_) => return Err(format!("no data for {} s", timeout.as_secs_f64())),
            Ok(None) => return Ok(()),
            Ok(Some(Err(e))) => return Err(causes(&e)),
            Ok(Some(Ok(chunk))) => sink(&chunk)?,
        }
    }
}

/// What the input object is, from one HEAD.
struct InputObject {
    size: u64,
    etag: String,
    /// The checksum it is stored with, when ladder can recompute it.
    stored: Option<Stored>,
    /// Why the checksum it is stored with cannot be checked, when it has one.
    unverifiable: Option<String>,
    /// The checksum as the store gave it, `ALGORITHM:value` (a composite one ends `-<parts>`).
    checksum: Option<String>,
}

/// Fetches `s3://bucket/key` into `scratch` with parallel ranged GETs, each conditional on
/// the ETag seen first (an object replaced meanwhile fails cleanly instead of mixing two
/// versions), then checks the size and the checksum the object is stored with: a full-object
/// checksum over all the bytes, a composite one per part (see [`integrity`]). Bytes that do
/// not match are fetched again; the same wrong bytes twice mean the stored object is
/// damaged ([`StorageError::InputCorrupt`]).
pub(crate) fn fetch(bucket: &str, key: &str, scratch: &Path, config: &StorageConfig) -> Result<PathBuf, StorageError> {
    let location = format!("s3://{bucket}/{key}");
    let s3 = S3Client::for_input(config, &location)?;
    let name = key.rsplit('/').next().filter(|n| !n.is_empty()).unwrap_or("input");
    let path = scratch.join(format!("input-{name}"));
    s3.runtime.block_on(fetch_to(&s3, bucket, key, &path))?;
    Ok(path)
}

/// Fetches each `(key, path)` of `bucket` to its path (folders made), as [`fetch`] does
/// one object, over one client.
pub(crate) fn fetch_files(
    bucket: &str,
    files: &[(String, PathBuf)],
    config: &StorageConfig,
) -> Result<(), StorageError> {
    let Some((first, _)) = files.first() else { return Ok(()) };
    let s3 = S3Client::for_input(config, &format!("s3://{bucket}/{first}"))?;
    for (key, path) in files {
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder).map_err(|source| StorageError::Io {
                location: format!("s3://{bucket}/{key}"),
                action: "making the scratch folder",
                key: folder.display().to_string(),
                source,
            })?;
        }
        s3.runtime.block_on(fetch_to(&s3, bucket, key, path))?;
    }
    Ok(())
}

async fn fetch_to(s3: &S3Client, bucket: &str, key: &str, path: &Path) -> Result<(), StorageError> {
    let location = format!("s3://{bucket}/{key}");
    let remote = |detail: String| StorageError::Remote {
        location: location.clone(),
        action: "fetching",
        key: String::new(),
        detail,
    };
    let mut object = head_input(s3, bucket, key, &location).await?;
    let layout = match object.stored.as_mut().filter(|s| s.needs_parts()) {
        Some(stored) => part_layout(s3, bucket, key, stored, object.size).await.map_err(&remote)?,
        None => None,
    };
    let file = std::fs::File::create(path).map_err(|e| remote(format!("creating {}: {e}", path.display())))?;
    file.set_len(object.size).map_err(|e| remote(format!("sizing {}: {e}", path.display())))?;
    let fetcher = Fetcher { object: s3.version(bucket, key, &object.etag), file: Arc::new(file) };
    let ranges = fetcher.split(std::slice::from_ref(&(0..object.size)));
    tracing::info!(%location, bytes = object.size, ranges = ranges.len(), "fetching the input");
    let started = Instant::now();
    let fetched =
        fetcher.fetch(ranges, "fetching the input").await.map_err(|f| input_error(f, &location, key, "fetching"))?;
    report_progress(fetched, object.size, started, "fetched the input");
    fetcher.file.sync_all().map_err(|e| remote(format!("syncing {}: {e}", path.display())))?;
    let on_disk = fetcher.file.metadata().map_err(|e| remote(format!("reading {}: {e}", path.display())))?.len();
    if on_disk != object.size || fetched != object.size {
        return Err(remote(format!("got {on_disk} bytes, the object has {}", object.size)));
    }
    let checked = verify(&fetcher, path, &object, layout.as_deref(), &location).await?;
    tracing::info!(%location, checked, "verified the input");
    Ok(())
}

/// Checks the fetched copy against the object's stored checksum, fetching again the bytes
/// that do not match, until they do or the attempts run out. Returns what was checked.
async fn verify(
    fetcher: &Fetcher,
    path: &Path,
    object: &InputObject,
    layout: Option<&[Part]>,
    location: &str,
) -> Result<String, StorageError> {
    let remote = |detail: String| StorageError::Remote {
        location: location.to_owned(),
        action: "fetching",
        key: String::new(),
        detail,
    };
    let Some(stored) = &object.stored else {
        let why = object.unverifiable.as_deref().unwrap_or("it is stored without a checksum");
        return Ok(format!("the size only: {why}"));
    };
    let boundaries: Vec<Range<u64>> = layout.unwrap_or_default().iter().map(|p| p.range.clone()).collect();
    let mut previous: Option<Mismatch> = None;
    let mut attempt = 1;
    loop {
        let digests = integrity::digest_file(path, stored.algorithm, &boundaries)
            .map_err(|e| remote(format!("reading {}: {e}", path.display())))?;
        let mismatch = match integrity::check(stored, layout, &digests, object.size) {
            Verdict::Verified(what) => return Ok(what),
            Verdict::Unverifiable(why) => {
                tracing::warn!(%location, "the input's checksum cannot be checked, only its size: {why}");
                return Ok(format!("the size only: {why}"));
            }
            Verdict::Mismatch(m) => m,
        };
        // The same bytes read twice from an ETag-pinned object are what the store holds.
        if previous.as_ref().is_some_and(|p| p.ranges == mismatch.ranges && p.read == mismatch.read) {
            return Err(StorageError::InputCorrupt {
                location: location.to_owned(),
                detail: format!("{} (the same on two fetches)", mismatch.what),
            });
        }
        if attempt >= fetcher.object.config.max_attempts {
            return Err(remote(format!(
                "{}, and different on each of {attempt} fetches: the data is being damaged on its way",
                mismatch.what
            )));
        }
        tracing::warn!(%location, attempt, "{}: fetching those bytes again", mismatch.what);
        let ranges = fetcher.split(&mismatch.ranges);
        fetcher
            .fetch(ranges, "fetching damaged bytes again")
            .await
            .map_err(|f| input_error(f, location, &fetcher.object.key, "fetching"))?;
        previous = Some(mismatch);
        attempt += 1;
    }
}

/// A request failure on the input as a storage error.
fn input_error(failure: Failure, location: &str, key: &str, action: &'static str) -> StorageError {
    match failure {
        Failure::Config(problem) => StorageError::Config { location: location.to_owned(), problem },
        Failure::NotFound => StorageError::InputMissing { location: location.to_owned(), key: key.to_owned() },
        Failure::Transient(detail) => {
            StorageError::Remote { location: location.to_owned(), action, key: String::new(), detail }
        }
    }
}

fn report_progress(bytes: u64, size: u64, started: Instant, what: &str) {
    let seconds = started.elapsed().as_secs_f64().max(1e-6);
    let mb_per_s = bytes as f64 / 1e6 / seconds;
    tracing::info!(bytes, of = size, seconds, mb_per_s = (mb_per_s * 10.0).round() / 10.0, "{what}");
}

async fn head_input(s3: &S3Client, bucket: &str, key: &str, location: &str) -> Result<InputObject, StorageError> {
    let head = s3.client.head_object().bucket(bucket).key(key).checksum_mode(ChecksumMode::Enabled).send().await;
    let head = match head {
        Ok(h) => h,
        Err(e) if is_forbidden(&e) => {
            // A HEAD answer has no body to say why; a one-byte GET does.
            let got = s3.client.get_object().bucket(bucket).key(key).range("bytes=0-0").send().await;
            let failure = match got {
                Err(g) => classify(&g, bucket),
                Ok(_) => classify(&e, bucket),
            };
            return Err(input_error(failure, location, key, "reading the size of"));
        }
        Err(e) => {
            return Err(match classify(&e, bucket) {
                // A HEAD 404 has no body to say which is missing: ask about the bucket.
                Failure::NotFound => match s3.client.head_bucket().bucket(bucket).send().await {
                    Ok(_) => StorageError::InputMissing { location: location.to_owned(), key: key.to_owned() },
                    Err(e) => match classify(&e, bucket) {
                        Failure::NotFound => StorageError::Config {
                            location: location.to_owned(),
                            problem: format!(
                                "bucket \"{bucket}\" does not exist: check the bucket name, --s3-endpoint and AWS_REGION"
                            ),
                        },
                        failure => input_error(failure, location, key, "checking the bucket of"),
                    },
                },
                failure => input_error(failure, location, key, "reading the size of"),
            });
        }
    };
    let size = head.content_length().and_then(|n| u64::try_from(n).ok()).unwrap_or(0);
    let etag = head.e_tag().unwrap_or_default().to_owned();
    let kind = head.checksum_type().map(|t| t.as_str());
    // An object has one checksum; S3 names it by algorithm.
    let recomputable = [
        (Algorithm::Sha256, head.checksum_sha256()),
        (Algorithm::Sha1, head.checksum_sha1()),
        (Algorithm::Crc64Nvme, head.checksum_crc64_nvme()),
        (Algorithm::Crc32c, head.checksum_crc32_c()),
        (Algorithm::Crc32, head.checksum_crc32()),
    ];
    let others = [
        ("SHA512", head.checksum_sha512()),
        ("MD5", head.checksum_md5()),
        ("XXHASH64", head.checksum_xxhash64()),
        ("XXHASH3", head.checksum_xxhash3()),
        ("XXHASH128", head.checksum_xxhash128()),
    ];
    let (stored, unverifiable) = match recomputable.into_iter().find_map(|(a, v)| v.map(|v| (a, v))) {
        Some((algorithm, value)) => match Stored::from_head(algorithm, value, kind, &etag) {
            Some(stored) => (Some(stored), None),
            None => (None, Some(format!("its {} checksum {value:?} is not base64", algorithm.name()))),
        },
        None => {
            let other = others.into_iter().find(|(_, v)| v.is_some()).map(|(name, _)| name);
            (None, other.map(|name| format!("it is stored with a {name} checksum, which ladder cannot compute")))
        }
    };
    if let Some(why) = &unverifiable {
        tracing::warn!(%location, "the input's checksum cannot be checked, only its size: {why}");
    }
    let checksum = recomputable
        .iter()
        .map(|(a, v)| (a.name(), *v))
        .chain(others)
        .find_map(|(name, v)| v.map(|v| format!("{name}:{v}")));
    Ok(InputObject { size, etag, stored, unverifiable, checksum })
}

/// Where the parts of a multipart object end and, when the store lists them, each part's
/// checksum: from `GetObjectAttributes` (`ObjectParts`), else from a HEAD per part number
/// (sizes only). `None` when the store tells neither; `Err` when asking failed in passing.
async fn part_layout(
    s3: &S3Client,
    bucket: &str,
    key: &str,
    stored: &mut Stored,
    size: u64,
) -> Result<Option<Vec<Part>>, String> {
    match object_parts(s3, bucket, key, stored, size).await {
        Ok(Some(parts)) => return Ok(Some(parts)),
        Ok(None) => {}
        // Not offered by the store, or not allowed (s3:GetObjectAttributes): part sizes
        // from HEADs still check the composite checksum.
        Err(detail) => tracing::debug!(detail, "GetObjectAttributes listed no parts"),
    }
    if !stored.needs_parts() {
        return Ok(None);
    }
    part_sizes(s3, bucket, key, stored.parts(), size).await
}

/// The part list with each part's checksum, from `GetObjectAttributes`; also settles the
/// checksum's kind when the HEAD did not say it. `Ok(None)` when the answer lists no
/// usable parts.
async fn object_parts(
    s3: &S3Client,
    bucket: &str,
    key: &str,
    stored: &mut Stored,
    size: u64,
) -> Result<Option<Vec<Part>>, String> {
    let mut parts: Vec<Part> = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let mut request = s3
            .client
            .get_object_attributes()
            .bucket(bucket)
            .key(key)
            .object_attributes(ObjectAttributes::Checksum)
            .object_attributes(ObjectAttributes::ObjectParts)
            .max_parts(1000);
        if let Some(m) = &marker {
            request = request.part_number_marker(m);
        }
        // Best effort: a store without this operation must not cost the full retry budget.
        let answer = request
            .customize()
            .config_override(
                aws_sdk_s3::config::Builder::default().retry_config(RetryConfig::standard().with_max_attempts(2)),
            )
            .send()
            .await
            .map_err(|e| match classify(&e, bucket) {
                Failure::Config(detail) | Failure::Transient(detail) => detail,
                Failure::NotFound => "not found".to_owned(),
            })?;
        if let Some(kind) = answer.checksum().and_then(|c| c.checksum_type()) {
            stored.settle_kind(kind.as_str());
        }
        let Some(listed) = answer.object_parts().filter(|_| stored.needs_parts()) else { return Ok(None) };
        for p in listed.parts() {
            let (Some(number), Some(length)) = (p.part_number(), p.size()) else { return Ok(None) };
            let (Ok(number), Ok(length)) = (u32::try_from(number), u64::try_from(length)) else { return Ok(None) };
            let start = parts.last().map_or(0, |l| l.range.end);
            let expected = match stored.algorithm {
                Algorithm::Crc32 => p.checksum_crc32(),
                Algorithm::Crc32c => p.checksum_crc32_c(),
                Algorithm::Crc64Nvme => p.checksum_crc64_nvme(),
                Algorithm::Sha1 => p.checksum_sha1(),
                Algorithm::Sha256 => p.checksum_sha256(),
            }
            .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok());
            parts.push(Part { number, range: start..start + length, expected });
        }
        match listed.next_part_number_marker() {
            Some(next)
                if listed.is_truncated() == Some(true) && marker.as_deref() != Some(next) && parts.len() <= 10_000 =>
            {
                marker = Some(next.to_owned());
            }
            _ => break,
        }
    }
    Ok(integrity::is_layout(&parts, size, stored.parts()).then_some(parts))
}

/// Part sizes from `HEAD ?partNumber=n` for every part (S3 answers with the part's length
/// and the number of parts). `Ok(None)` when the store ignores part numbers or refuses them.
async fn part_sizes(
    s3: &S3Client,
    bucket: &str,
    key: &str,
    count: Option<u32>,
    size: u64,
) -> Result<Option<Vec<Part>>, String> {
    use futures_util::StreamExt as _;
    // Not `If-Match`: moto compares it with the part's ETag. The GETs that follow are, so
    // sizes of another version would fail the fetch there.
    let head = |number: u32| async move {
        match s3.client.head_object().bucket(bucket).key(key).part_number(number as i32).send().await {
            Ok(h) => Ok(h.content_length().and_then(|n| u64::try_from(n).ok()).map(|n| (n, h.parts_count()))),
            Err(e) if e.raw_response().is_some_and(|r| matches!(r.status().as_u16(), 400 | 403 | 405 | 416 | 501)) => {
                Ok(None)
            }
            Err(e) => Err(match classify(&e, bucket) {
                Failure::NotFound => "the object is gone".to_owned(),
                Failure::Config(detail) | Failure::Transient(detail) => detail,
            }),
        }
    };
    let Some((first, Some(parts))) = head(1).await? else { return Ok(None) };
    let Ok(parts) = u32::try_from(parts) else { return Ok(None) };
    if !(1..=10_000).contains(&parts) || count.is_some_and(|n| n != parts) {
        return Ok(None);
    }
    let rest: Vec<_> = futures_util::stream::iter(2..=parts)
        .map(head)
        .buffered(s3.config.fetch_concurrency.clamp(1, 64))
        .collect()
        .await;
    let mut layout = vec![Part { number: 1, range: 0..first, expected: None }];
    for (number, answer) in (2..).zip(rest) {
        let Some((length, _)) = answer? else { return Ok(None) };
        let start = layout.last().map_or(0, |l| l.range.end);
        layout.push(Part { number, range: start..start + length, expected: None });
    }
    Ok(integrity::is_layout(&layout, size, Some(parts)).then_some(layout))
}

/// One version of an object: what every ranged GET of the input names.
#[derive(Clone)]
pub(crate) struct ObjectVersion {
    client: Client,
    config: StorageConfig,
    bucket: String,
    key: String,
    /// Every GET is `If-Match` this: one version of the object, start to end.
    etag: String,
}

impl ObjectVersion {
    /// One ranged GET, each piece of its body handed to `sink` with its offset; redone
    /// (with backoff) when the body stalls or breaks, since the SDK retries only until the
    /// response headers arrive. A `sink` error that starts with `writing` is not retried.
    async fn read_range(
        &self,
        range: Range<u64>,
        mut sink: impl FnMut(u64, &[u8]) -> Result<(), String>,
    ) -> Result<(), Failure> {
        let (config, etag) = (&self.config, &self.etag);
        let mut attempt = 1;
        loop {
            let mut request = self.client.get_object().bucket(&self.bucket).key(&self.key).range(format!(
                "bytes={}-{}",
                range.start,
                range.end - 1
            ));
            if !etag.is_empty() {
                request = request.if_match(etag);
            }
            let response = match request.send().await {
                Ok(r) => r,
                Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 412) => {
                    return Err(Failure::Transient(format!(
                        "the object changed while it was read (its ETag is no longer {etag}); run again to read \
                         the new version"
                    )));
                }
                Err(e) => return Err(classify(&e, &self.bucket)),
            };
            let mut offset = range.start;
            let written = read_body(response.body, config.read_timeout, |chunk| {
                if offset + chunk.len() as u64 > range.end {
                    return Err(format!("the server sent more than the {} bytes asked for", range.end - range.start));
                }
                sink(offset, chunk)?;
                offset += chunk.len() as u64;
                Ok(())
            })
            .await
            .and_then(|()| {
                if offset == range.end {
                    Ok(())
                } else {
                    Err(format!("the body ended after {} of {} bytes", offset - range.start, range.end - range.start))
                }
            });
            match written {
                Ok(()) => return Ok(()),
                Err(detail) if detail.starts_with("writing") => return Err(Failure::Transient(detail)),
                Err(detail) if attempt < config.max_attempts => {
                    tracing::debug!(start = range.start, attempt, detail, "a ranged GET broke off: retrying");
                    backoff(config, attempt).await;
                    attempt += 1;
                }
                Err(detail) => return Err(Failure::Transient(detail)),
            }
        }
    }
}

/// What the ranged GETs of one input fetched to scratch share.
#[derive(Clone)]
struct Fetcher {
    object: ObjectVersion,
    file: Arc<std::fs::File>,
}

impl Fetcher {
    /// `ranges` cut into GETs of at most `fetch_range` bytes.
    fn split(&self, ranges: &[Range<u64>]) -> Vec<Range<u64>> {
        let step = self.object.config.fetch_range.max(1);
        ranges
            .iter()
            .flat_map(|r| {
                (r.start..r.end)
                    .step_by(usize::try_from(step).unwrap_or(usize::MAX))
                    .map(move |s| s..(s + step).min(r.end))
            })
            .collect()
    }

    /// Fetches `ranges` into the file, `fetch_concurrency` at a time, logging progress every
    /// second as `what`. Returns the bytes written.
    async fn fetch(&self, ranges: Vec<Range<u64>>, what: &'static str) -> Result<u64, Failure> {
        let total: u64 = ranges.iter().map(|r| r.end - r.start).sum();
        let workers = self.object.config.fetch_concurrency.clamp(1, 64).min(ranges.len().max(1));
        let ranges = Arc::new(ranges);
        let next = Arc::new(AtomicUsize::new(0));
        let fetched = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..workers {
            let (this, ranges, next, fetched) = (self.clone(), ranges.clone(), next.clone(), fetched.clone());
            tasks.spawn(async move {
                while let Some(range) = ranges.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let file = &this.file;
                    let write = |offset: u64, chunk: &[u8]| {
                        file.write_all_at(chunk, offset).map_err(|e| format!("writing to scratch: {e}"))
                    };
                    this.object.read_range(range.clone(), write).await?;
                    fetched.fetch_add(range.end - range.start, Ordering::Relaxed);
                }
                Ok::<(), Failure>(())
            });
        }
        let mut last_report = Instant::now();
        let mut failure = None;
        loop {
            let joined = tokio::time::timeout(Duration::from_secs(1), tasks.join_next()).await;
            if last_report.elapsed() >= Duration::from_secs(1) {
                last_report = Instant::now();
                report_progress(fetched.load(Ordering::Relaxed), total, started, what);
            }
            match joined {
                Err(_) => continue,
                Ok(None) => break,
                Ok(Some(Ok(Ok(())))) => {}
                Ok(Some(Ok(Err(f)))) => {
                    failure.get_or_insert(f);
                    tasks.abort_all();
                }
                Ok(Some(Err(e))) if e.is_cancelled() => {}
                Ok(Some(Err(e))) => {
                    failure.get_or_insert(Failure::Transient(format!("a fetch task failed: {e}")));
                }
            }
        }
        match failure {
            Some(f) => Err(f),
            None => Ok(fetched.load(Ordering::Relaxed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_follow_the_file_kind() {
        assert_eq!(content_type("master.m3u8"), "application/vnd.apple.mpegurl");
        assert_eq!(content_type("v0/index.m3u8"), "application/vnd.apple.mpegurl");
        assert_eq!(content_type("manifest.mpd"), "application/dash+xml");
        assert_eq!(content_type("v1/seg_3.m4s"), "video/iso.segment");
        assert_eq!(content_type("v1/init.mp4"), "video/mp4");
        assert_eq!(content_type("a0/init.mp4"), "audio/mp4");
        assert_eq!(content_type("thumbs/sprite_0.jpg"), "image/jpeg");
        assert_eq!(content_type("thumbs/thumbs.vtt"), "text/vtt");
        assert_eq!(content_type("report.json"), "application/json");
    }

    #[test]
    fn media_is_immutable_manifests_short_lived_records_never_cached() {
        assert!(cache_control("v0/seg_1.m4s").contains("immutable"));
        assert!(cache_control("a0/init.mp4").contains("immutable"));
        assert!(cache_control("thumbs/t_2.jpg").contains("immutable"));
        assert_eq!(cache_control("master.m3u8"), "public, max-age=60");
        assert_eq!(cache_control("manifest.mpd"), "public, max-age=60");
        assert_eq!(cache_control("report.json"), "public, max-age=60");
        assert_eq!(cache_control(".ladder/chunks/0.json"), "no-store");
        assert_eq!(cache_control(".ladder/posters/10.jpg"), "no-store");
    }
}
