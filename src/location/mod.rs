//! Where a recording comes from and where its ladder goes: a local path, or
//! `s3://bucket/prefix`. Everything the pipeline stores goes through [`Output`], addressed
//! by keys relative to the output root (`v0/seg_3.m4s`), so the pipeline does not care
//! which kind of location it writes to. The input is only ever read: [`fetch_input`] copies
//! an S3 recording to scratch, and no [`Output`] is ever opened on it.

mod atomic;
pub(crate) mod hls;
pub(crate) mod s3;

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::exit::{ExitClass, Outcome};

/// A parsed `INPUT` or `--out` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
    S3 { bucket: String, prefix: String },
}

impl Location {
    /// Parses `s3://bucket/prefix` or a local path.
    pub fn parse(text: &str) -> Result<Self, StorageError> {
        match text.strip_prefix("s3://") {
            None => Ok(Self::Local(PathBuf::from(text))),
            Some(rest) => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err(StorageError::BadLocation(text.to_owned()));
                }
                Ok(Self::S3 { bucket: bucket.to_owned(), prefix: prefix.trim_end_matches('/').to_owned() })
            }
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Local(path) => write!(f, "{}", path.display()),
            Self::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// A storage failure. Missing objects and refused writes name the key and the location.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{0:?} is not a location: use a local path or s3://bucket/prefix")]
    BadLocation(String),
    #[error("{location}: {action} {key}: {source}")]
    Io { location: String, action: &'static str, key: String, source: std::io::Error },
    /// The deployment is wrong (credentials, permissions, bucket name, region, endpoint):
    /// waiting will not fix it, so it is not retried and exits 2.
    #[error("{location}: {problem}")]
    Config { location: String, problem: String },
    /// The input recording is not there: exit 3, the job can never succeed.
    #[error("{location}: the input {key} does not exist — check the key (the bucket exists and is readable)")]
    InputMissing { location: String, key: String },
    /// The input object's bytes do not match the checksum the store recorded when it was
    /// uploaded, and read the same on two fetches of the same version (ETag): the object is
    /// damaged where it is stored, so every retry would read the same bytes (exit 3). Bytes
    /// damaged on their way are fetched again instead, and end as [`Self::Remote`].
    #[error("{location}: the stored object is damaged: {detail}; upload the recording again")]
    InputCorrupt { location: String, detail: String },
    /// A request that still failed after every retry (throttling, 5xx, timeouts, dropped
    /// connections), or data that arrived damaged: a later rerun may succeed (exit 4).
    #[error("{location}: {action}{}: {detail}", if key.is_empty() { String::new() } else { format!(" {key}") })]
    Remote { location: String, action: &'static str, key: String, detail: String },
}

impl ExitClass for StorageError {
    /// A wrong call or deployment exits 2, a missing or damaged input 3 (do not retry); a local path
    /// that cannot be used (a file where a folder must be, no permission) is the user's to
    /// fix; the rest may pass.
    fn outcome(&self) -> Outcome {
        match self {
            Self::BadLocation(_) | Self::Config { .. } => Outcome::Usage,
            Self::InputMissing { .. } | Self::InputCorrupt { .. } => Outcome::BadInput,
            Self::Io { source, .. } => crate::exit::io_class(source),
            Self::Remote { .. } => Outcome::Transient,
        }
    }
}

/// How to reach S3: what the command line and environment say beyond the credential
/// chain, which `aws-config` resolves itself (env, profile, web identity/IRSA, IMDS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageConfig {
    /// An S3-compatible server (MinIO, Ceph, a test server) instead of AWS; `None` lets
    /// the SDK use `AWS_ENDPOINT_URL` or AWS itself.
    pub endpoint: Option<String>,
    /// Path-style addressing (`host/bucket/key`); `None`: on when an endpoint is given,
    /// because MinIO-style servers rarely have a wildcard DNS name per bucket.
    pub path_style: Option<bool>,
    /// Attempts per request, the first included (SDK standard retry mode).
    pub max_attempts: u32,
    /// First backoff; each retry waits a random time up to twice the previous ceiling.
    pub initial_backoff: Duration,
    /// Longest wait for a response or for the next bytes of a body before the attempt is
    /// abandoned and retried: a stalled connection must not hang a job.
    pub read_timeout: Duration,
    /// Objects larger than this are uploaded in parts of this size (S3 needs >= 5 MiB).
    pub part_size: usize,
    /// Ranged GETs in flight when fetching the input.
    pub fetch_concurrency: usize,
    /// Size of each ranged GET.
    pub fetch_range: u64,
    /// Read an S3 input in place ([`Source::Remote`]) rather than fetch it to scratch.
    pub stream_input: bool,
    /// Size of each ranged GET of an input read in place.
    pub read_block: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            endpoint: None,
            path_style: None,
            // Throttling on a hot prefix can last several seconds; 8 attempts with a 20 s
            // ceiling ride out about a minute of it before the job gives up (exit 4).
            max_attempts: 8,
            initial_backoff: Duration::from_millis(500),
            read_timeout: Duration::from_secs(30),
            part_size: 16 * 1024 * 1024,
            fetch_concurrency: 6,
            fetch_range: 8 * 1024 * 1024,
            stream_input: true,
            read_block: 4 * 1024 * 1024,
        }
    }
}

/// Where a run stores its files. Writes are atomic: a reader sees the whole file or none.
pub trait Output: Send + Sync {
    /// Stores `bytes` under `key`, replacing what was there.
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StorageError>;
    /// The stored object's size, `None` when there is none.
    fn size(&self, key: &str) -> Result<Option<u64>, StorageError>;
    /// Removes `key` if it exists (outputs only: an input location is never written).
    fn delete(&self, key: &str) -> Result<(), StorageError>;
    /// The stored object, `None` when there is none.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError>;
    /// Stores `bytes` under `key` only if nothing is there, atomically (a conditional
    /// create): `false` when `key` exists, whoever made it.
    fn create(&self, key: &str, bytes: &[u8]) -> Result<bool, StorageError>;
    /// Every key stored under the output, in no particular order.
    fn list(&self) -> Result<Vec<String>, StorageError>;
    /// Where this is, for messages.
    fn describe(&self) -> String;
    /// Requests worth having in flight at once for a batch of files ([`put_all`], [`get_all`]).
    fn batch_requests(&self) -> usize {
        1
    }
}

/// Stores every `(key, bytes)`, [`Output::batch_requests`] at a time. After a failure no
/// new request starts; the first error is returned once those in flight end.
pub fn put_all<B: AsRef<[u8]> + Sync>(out: &dyn Output, files: &[(String, B)]) -> Result<(), StorageError> {
    each_concurrently(out.batch_requests(), files, |(key, bytes)| out.put(key, bytes.as_ref())).map(drop)
}

/// Reads every key, [`Output::batch_requests`] at a time, in the order given.
pub fn get_all(out: &dyn Output, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StorageError> {
    each_concurrently(out.batch_requests(), keys, |key| out.get(key))
}

fn each_concurrently<T: Sync, R: Send, E: Send>(
    workers: usize,
    items: &[T],
    f: impl Fn(&T) -> Result<R, E> + Sync,
) -> Result<Vec<R>, E> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let workers = workers.min(items.len());
    if workers <= 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let done: Vec<Vec<(usize, Result<R, E>)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { return done };
                        let result = f(item);
                        if result.is_err() {
                            next.store(items.len(), Ordering::Relaxed);
                        }
                        done.push((i, result));
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
    });
    let mut results: Vec<(usize, Result<R, E>)> = done.into_iter().flatten().collect();
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Opens the output for a location. For S3 this checks at once that the bucket exists
/// and the credentials are accepted, so a misconfigured job fails before encoding.
pub fn open_output(location: &Location, config: &StorageConfig) -> Result<Box<dyn Output>, StorageError> {
    match location {
        Location::Local(root) => Ok(Box::new(LocalOutput::open(root))),
        Location::S3 { bucket, prefix } => Ok(Box::new(s3::S3Output::open(bucket, prefix, config)?)),
    }
}

/// The input as a local file: a local path as it is, an S3 object fetched (read only)
/// into `scratch` with parallel ranged GETs and verified.
pub fn fetch_input(location: &Location, scratch: &Path, config: &StorageConfig) -> Result<PathBuf, StorageError> {
    match location {
        Location::Local(path) => Ok(path.clone()),
        Location::S3 { prefix, .. } if prefix.is_empty() => Err(no_key(location)),
        Location::S3 { bucket, prefix } if hls::is_playlist(prefix) => hls::fetch(bucket, prefix, scratch, config),
        Location::S3 { bucket, prefix } => s3::fetch(bucket, prefix, scratch, config),
    }
}

fn no_key(location: &Location) -> StorageError {
    StorageError::Config {
        location: location.to_string(),
        problem: "names a bucket, not a recording: add the object's key".to_owned(),
    }
}

/// The input as the run reads it: an S3 object in place (when `config.stream_input`; an
/// HLS playlist and the files it names are always fetched), anything else as
/// [`fetch_input`] gives it.
pub fn open_input(location: &Location, scratch: &Path, config: &StorageConfig) -> Result<Source, StorageError> {
    match location {
        Location::S3 { bucket, prefix } if config.stream_input && !prefix.is_empty() && !hls::is_playlist(prefix) => {
            Ok(Source::Remote(s3::stream::RemoteObject::open(bucket, prefix, config)?))
        }
        _ => fetch_input(location, scratch, config).map(Source::Local),
    }
}

/// Bytes that can be read and seeked in: what libav's I/O is given for a recording.
pub trait ReadSeek: std::io::Read + std::io::Seek + Send {}

impl<T: std::io::Read + std::io::Seek + Send> ReadSeek for T {}

/// A recording to read: a local file, or an S3 object read in place through ranged GETs.
#[derive(Debug, Clone)]
pub enum Source {
    Local(PathBuf),
    Remote(std::sync::Arc<s3::stream::RemoteObject>),
}

pub use s3::stream::ObjectIdentity;

impl Source {
    /// The path, or the object's `s3://` location, for messages.
    pub fn name(&self) -> PathBuf {
        match self {
            Self::Local(path) => path.clone(),
            Self::Remote(object) => PathBuf::from(object.location()),
        }
    }

    /// The local file, when it is one.
    pub fn local(&self) -> Option<&Path> {
        match self {
            Self::Local(path) => Some(path),
            Self::Remote(_) => None,
        }
    }

    /// A reader from the start, of its own (each libav context has one).
    pub fn reader(&self) -> std::io::Result<Box<dyn ReadSeek>> {
        Ok(match self {
            Self::Local(path) => Box::new(std::fs::File::open(path)?),
            Self::Remote(object) => Box::new(object.reader()),
        })
    }

    /// Its size in bytes.
    pub fn size(&self) -> std::io::Result<u64> {
        match self {
            Self::Local(path) => std::fs::metadata(path).map(|m| m.len()),
            Self::Remote(object) => Ok(object.size()),
        }
    }

    /// Bytes fetched from the store so far, for an object read in place.
    pub fn bytes_read(&self) -> Option<u64> {
        match self {
            Self::Local(_) => None,
            Self::Remote(object) => Some(object.bytes_read()),
        }
    }

    /// The object's identity (ETag, size, stored checksum), for an object read in place.
    pub fn identity(&self) -> Option<&ObjectIdentity> {
        match self {
            Self::Local(_) => None,
            Self::Remote(object) => Some(object.identity()),
        }
    }

    /// Why a read of the object failed, when one did: it outranks what the reader's user
    /// (libav) made of the failure, which would look like a damaged file.
    pub fn failure(&self) -> Option<StorageError> {
        match self {
            Self::Local(_) => None,
            Self::Remote(object) => object.failure(),
        }
    }
}

/// A local folder. Files are written beside their final name and renamed into place, so an
/// interrupted write never leaves a partial file under a real name.
#[derive(Debug)]
pub struct LocalOutput {
    root: PathBuf,
}

impl LocalOutput {
    /// The folder `root`, without the temporaries an interrupted run left in it.
    fn open(root: &Path) -> Self {
        let removed = atomic::remove_leftovers(root);
        if removed > 0 {
            tracing::info!(removed, "removed the temporary files of an interrupted run");
        }
        Self { root: root.to_owned() }
    }

    fn io(&self, action: &'static str, key: &str) -> impl FnOnce(std::io::Error) -> StorageError {
        let (location, key) = (self.root.display().to_string(), key.to_owned());
        move |source| StorageError::Io { location, action, key, source }
    }
}

impl Output for LocalOutput {
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StorageError> {
        let path = self.root.join(key);
        let dir = path.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(dir).map_err(self.io("creating the folder of", key))?;
        let mut file = atomic::temporary_in(dir).map_err(self.io("creating a temporary file for", key))?;
        file.write_all(bytes).map_err(self.io("writing", key))?;
        file.as_file().sync_data().map_err(self.io("syncing", key))?;
        file.persist(&path).map_err(|e| e.error).map_err(self.io("renaming into place", key))?;
        Ok(())
    }

    fn size(&self, key: &str) -> Result<Option<u64>, StorageError> {
        match std::fs::metadata(self.root.join(key)) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io("reading the size of", key)(e)),
        }
    }

    fn delete(&self, key: &str) -> Result<(), StorageError> {
        let path = self.root.join(key);
        match std::fs::remove_file(&path) {
            Ok(()) => {
                // A folder left empty goes too (it fails, harmlessly, while it holds files).
                if let Some(folder) = path.parent().filter(|f| *f != self.root) {
                    let _ = std::fs::remove_dir(folder);
                }
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io("removing", key)(e)),
        }
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        match std::fs::read(self.root.join(key)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io("reading", key)(e)),
        }
    }

    fn create(&self, key: &str, bytes: &[u8]) -> Result<bool, StorageError> {
        let path = self.root.join(key);
        let dir = path.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(dir).map_err(self.io("creating the folder of", key))?;
        // Written whole under a locked temporary of its own (another run tidying the
        // output leaves it alone), then linked into place: the link fails if the key
        // exists (O_EXCL semantics), and nobody ever sees half the file. The temporary's
        // name goes when it is dropped.
        let mut file = atomic::temporary_in(dir).map_err(self.io("creating a temporary file for", key))?;
        file.write_all(bytes).map_err(self.io("writing", key))?;
        file.as_file().sync_data().map_err(self.io("syncing", key))?;
        match std::fs::hard_link(file.path(), &path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(self.io("creating", key)(e)),
        }
    }

    fn list(&self) -> Result<Vec<String>, StorageError> {
        let mut keys = Vec::new();
        let mut folders = vec![self.root.clone()];
        while let Some(folder) = folders.pop() {
            let entries = match std::fs::read_dir(&folder) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(self.io("listing", &folder.display().to_string())(e)),
            };
            for entry in entries {
                let entry = entry.map_err(self.io("listing", &folder.display().to_string()))?;
                let path = entry.path();
                if entry.file_type().map_err(self.io("listing", &path.display().to_string()))?.is_dir() {
                    folders.push(path);
                } else if let Ok(key) = path.strip_prefix(&self.root) {
                    keys.push(key.to_string_lossy().into_owned());
                }
            }
        }
        Ok(keys)
    }

    fn describe(&self) -> String {
        self.root.display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_local_paths_and_s3_urls() {
        assert_eq!(Location::parse("out/x").unwrap(), Location::Local("out/x".into()));
        assert_eq!(
            Location::parse("s3://media/rec/1/").unwrap(),
            Location::S3 { bucket: "media".into(), prefix: "rec/1".into() }
        );
        assert!(matches!(Location::parse("s3:///x"), Err(StorageError::BadLocation(_))));
    }

    #[test]
    fn local_writes_are_whole_and_leave_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let out = LocalOutput { root: dir.path().join("ladder") };
        out.put("v0/seg_1.m4s", b"abc").unwrap();
        out.put("v0/seg_1.m4s", b"abcd").unwrap();
        assert_eq!(out.get("v0/seg_1.m4s").unwrap().unwrap(), b"abcd");
        assert_eq!(out.size("v0/seg_1.m4s").unwrap(), Some(4));
        assert_eq!(out.size("v0/seg_2.m4s").unwrap(), None);
        let names: Vec<_> = std::fs::read_dir(dir.path().join("ladder/v0")).unwrap().map(|e| e.unwrap()).collect();
        assert_eq!(names.len(), 1, "only the file itself: {names:?}");
    }

    /// Another process opening the output tidies away abandoned temporaries while this one
    /// claims it: the claim's own temporary is never taken for one (it was, and a run
    /// racing another for the output failed with "creating .ladder/lease.json: No such
    /// file or directory", exit 4).
    #[test]
    fn creating_a_key_survives_another_run_tidying_the_output() {
        let dir = tempfile::tempdir().unwrap();
        let out = LocalOutput { root: dir.path().to_owned() };
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    atomic::remove_leftovers(dir.path());
                }
            });
            let created = (0..2000).try_for_each(|_| {
                out.create(".ladder/lease.json", b"{}")?;
                out.delete(".ladder/lease.json")
            });
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            created.unwrap();
        });
        assert!(out.create(".ladder/lease.json", b"{}").unwrap());
        assert!(!out.create(".ladder/lease.json", b"[]").unwrap(), "the key exists");
        assert_eq!(out.list().unwrap(), [".ladder/lease.json"], "no temporary left");
    }
}
