//! An S3 recording read where it lies: ranged GETs of the one version of the object seen
//! first (`If-Match` its ETag), a block at a time, the next block fetched while the current
//! one is read when the reads run forward. Nothing is copied to scratch: a shard that
//! seeks to its chunks reads the container's index, its chunks and a GOP of lead-in.
//!
//! Blocks a reader had to wait for (the header, the index, a chunk's first block) are kept
//! in a small cache all readers of the object share: every chunk's demuxer reads the same
//! index, which is fetched once. Blocks read ahead of a forward run are the reader's own.

use std::collections::VecDeque;
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::integrity::{self, Mismatch, Stored, Verdict};
use super::{Failure, ObjectVersion, S3Client, StorageConfig, StorageError, head_input, input_error, part_layout};

/// What names one version of an object without reading it: the input's identity in
/// `report.json` (a full-file hash would need every byte).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectIdentity {
    pub etag: String,
    pub size_bytes: u64,
    /// The checksum the store keeps for it (`SHA256:…`, `CRC64NVME:…`; a composite one of a
    /// multipart upload ends `-<parts>`), when it has one.
    pub checksum: Option<String>,
}

/// An S3 recording opened for reading in place. Every [`RemoteReader`] of it shares the
/// byte count and the first failure, which outranks what libav made of it (a read that
/// failed is not a damaged file).
pub struct RemoteObject {
    s3: S3Client,
    version: ObjectVersion,
    location: String,
    identity: ObjectIdentity,
    block: u64,
    bytes_read: Arc<AtomicU64>,
    failure: Mutex<Option<Failure>>,
    /// Blocks readers waited for, most recently used last.
    shared: Mutex<VecDeque<(u64, Arc<Vec<u8>>)>>,
    /// The checksum the store keeps, when ladder can recompute it ([`Self::verify`]).
    stored: Option<Stored>,
    /// Why the checksum the store keeps cannot be checked, when it has one.
    unverifiable: Option<String>,
}

/// Blocks in the shared cache (with 4 MiB blocks, 32 MiB).
const SHARED_BLOCKS: usize = 8;

/// Forward moves from block to block before a reader reads ahead: an index that spans two
/// blocks is not a run.
const RUN_BEFORE_READ_AHEAD: u32 = 2;

impl std::fmt::Debug for RemoteObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteObject").field("location", &self.location).field("identity", &self.identity).finish()
    }
}

impl RemoteObject {
    /// Opens `s3://bucket/key`: one HEAD (size, ETag, checksum), no data yet.
    pub(crate) fn open(bucket: &str, key: &str, config: &StorageConfig) -> Result<Arc<Self>, StorageError> {
        let location = format!("s3://{bucket}/{key}");
        let s3 = S3Client::for_input(config, &location)?;
        let head = s3.runtime.block_on(head_input(&s3, bucket, key, &location))?;
        let version = s3.version(bucket, key, &head.etag);
        let (stored, unverifiable) = (head.stored, head.unverifiable);
        let identity = ObjectIdentity { etag: head.etag, size_bytes: head.size, checksum: head.checksum };
        tracing::info!(%location, bytes = identity.size_bytes, etag = identity.etag, "reading the input in place");
        Ok(Arc::new(Self {
            block: config.read_block.max(4096),
            s3,
            version,
            location,
            identity,
            bytes_read: Arc::default(),
            failure: Mutex::default(),
            shared: Mutex::default(),
            stored,
            unverifiable,
        }))
    }

    pub(crate) fn location(&self) -> &str {
        &self.location
    }

    pub(crate) fn identity(&self) -> &ObjectIdentity {
        &self.identity
    }

    pub(crate) fn size(&self) -> u64 {
        self.identity.size_bytes
    }

    /// Bytes fetched so far by every reader (read-ahead included).
    pub(crate) fn bytes_read(&self) -> u64 {
        self.bytes_read.load(Ordering::Relaxed)
    }

    /// The first read that failed, as the storage error it is.
    pub(crate) fn failure(&self) -> Option<StorageError> {
        let failure = self.failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()?;
        Some(input_error(failure, &self.location, &self.version.key, "reading"))
    }

    pub(crate) fn reader(self: &Arc<Self>) -> RemoteReader {
        RemoteReader { object: Arc::clone(self), pos: 0, current: None, ahead: None, run: 0, shares: true }
    }

    /// Reads the whole object (past the shared blocks) and checks it against the checksum
    /// the store keeps, as a fetch does: bytes that differ are read again, and the same
    /// wrong bytes twice mean the stored object is damaged (exit 3); different ones, damage
    /// on the way (exit 4). Returns what was checked. The process that reads the whole
    /// recording anyway (the audio's) runs it beside the encoding, and fails before
    /// publishing; a shard without the audio cannot publish without that one.
    pub(crate) fn verify(self: &Arc<Self>) -> Result<String, StorageError> {
        let Some(mut stored) = self.stored.clone() else {
            let why = self.unverifiable.as_deref().unwrap_or("it is stored without a checksum");
            return Ok(format!("the size only: {why}"));
        };
        let remote = |detail: String| StorageError::Remote {
            location: self.location.clone(),
            action: "checking",
            key: String::new(),
            detail,
        };
        let (bucket, key, size) = (&self.version.bucket, &self.version.key, self.size());
        let layout = if stored.needs_parts() {
            self.s3.runtime.block_on(part_layout(&self.s3, bucket, key, &mut stored, size)).map_err(&remote)?
        } else {
            None
        };
        let boundaries: Vec<Range<u64>> =
            layout.as_deref().unwrap_or_default().iter().map(|p| p.range.clone()).collect();
        let mut previous: Option<Mismatch> = None;
        for _ in 0..2 {
            let mut reader = self.reader();
            reader.shares = false;
            let digests = integrity::digest_reader(reader, stored.algorithm, &boundaries)
                .map_err(|e| self.failure().unwrap_or_else(|| remote(e.to_string())))?;
            let mismatch = match integrity::check(&stored, layout.as_deref(), &digests, size) {
                Verdict::Verified(what) => return Ok(what),
                Verdict::Unverifiable(why) => return Ok(format!("the size only: {why}")),
                Verdict::Mismatch(m) => m,
            };
            if previous.as_ref().is_some_and(|p| p.ranges == mismatch.ranges && p.read == mismatch.read) {
                let detail = format!("{} (the same on two reads)", mismatch.what);
                return Err(StorageError::InputCorrupt { location: self.location.clone(), detail });
            }
            tracing::warn!(location = %self.location, "{}: reading the object again", mismatch.what);
            previous = Some(mismatch);
        }
        let what = previous.map_or_else(String::new, |m| m.what);
        Err(remote(format!("{what}, and different on each of 2 reads: the data is being damaged on its way")))
    }

    fn fail(&self, failure: Failure) -> io::Error {
        let message = match &failure {
            Failure::Config(detail) | Failure::Transient(detail) => detail.clone(),
            Failure::NotFound => "the object is gone".to_owned(),
        };
        self.failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get_or_insert(failure);
        io::Error::other(format!("{}: {message}", self.location))
    }

    fn block_range(&self, start: u64) -> Range<u64> {
        start..(start + self.block).min(self.size())
    }

    fn cached(&self, start: u64) -> Option<Arc<Vec<u8>>> {
        let mut shared = self.shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let at = shared.iter().position(|(s, _)| *s == start)?;
        let entry = shared.remove(at)?;
        let bytes = Arc::clone(&entry.1);
        shared.push_back(entry);
        Some(bytes)
    }

    fn keep(&self, start: u64, bytes: &Arc<Vec<u8>>) {
        let mut shared = self.shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !shared.iter().any(|(s, _)| *s == start) {
            if shared.len() >= SHARED_BLOCKS {
                shared.pop_front();
            }
            shared.push_back((start, Arc::clone(bytes)));
        }
    }
}

/// Fetches `range` whole; what arrives is counted (a broken-off attempt's bytes too).
async fn fetch_block(version: ObjectVersion, range: Range<u64>, counted: Arc<AtomicU64>) -> Result<Vec<u8>, Failure> {
    tracing::debug!(start = range.start, end = range.end, "reading a block of the input");
    let mut bytes = Vec::with_capacity((range.end - range.start) as usize);
    let start = range.start;
    version
        .read_range(range, |offset, chunk| {
            counted.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            // A retried attempt starts again from the range's start.
            bytes.truncate((offset - start) as usize);
            bytes.extend_from_slice(chunk);
            Ok(())
        })
        .await?;
    Ok(bytes)
}

/// A block fetched ahead, on the client's runtime.
struct Ahead {
    start: u64,
    task: tokio::task::JoinHandle<Result<Vec<u8>, Failure>>,
}

/// One reader's position and blocks: `Read + Seek` over the object, for libav's AVIO and
/// the probe's own checks. Each libav context has its own.
pub(crate) struct RemoteReader {
    object: Arc<RemoteObject>,
    pos: u64,
    current: Option<(u64, Arc<Vec<u8>>)>,
    ahead: Option<Ahead>,
    /// Forward moves to the next block in a row.
    run: u32,
    /// Whether it takes and leaves blocks in the shared cache (not when verifying: a block
    /// damaged on its way must be read again, not found again).
    shares: bool,
}

impl RemoteReader {
    /// The block starting at `start`: the one fetched ahead, a shared one, or fetched now
    /// (and shared).
    fn take_block(&mut self, start: u64) -> io::Result<Arc<Vec<u8>>> {
        let object = &self.object;
        match self.ahead.take() {
            Some(ahead) if ahead.start == start => {
                let fetched = object
                    .s3
                    .runtime
                    .block_on(ahead.task)
                    .unwrap_or_else(|e| Err(Failure::Transient(format!("a read-ahead task failed: {e}"))));
                return fetched.map(Arc::new).map_err(|f| object.fail(f));
            }
            Some(ahead) => ahead.task.abort(),
            None => {}
        }
        if let Some(bytes) = object.cached(start).filter(|_| self.shares) {
            return Ok(bytes);
        }
        let task = fetch_block(object.version.clone(), object.block_range(start), object.bytes_read.clone());
        let bytes = Arc::new(object.s3.runtime.block_on(task).map_err(|f| object.fail(f))?);
        if self.shares {
            object.keep(start, &bytes);
        }
        Ok(bytes)
    }

    /// Starts fetching the block after `start`, when there is one.
    fn read_ahead(&mut self, start: u64) {
        let object = &self.object;
        let next = start + object.block;
        if next < object.size() {
            let task = fetch_block(object.version.clone(), object.block_range(next), object.bytes_read.clone());
            self.ahead = Some(Ahead { start: next, task: object.s3.runtime.spawn(task) });
        }
    }
}

impl Read for RemoteReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let size = self.object.size();
        if self.pos >= size || buf.is_empty() {
            return Ok(0);
        }
        let block = self.object.block;
        let start = self.pos / block * block;
        if self.current.as_ref().is_none_or(|(s, _)| *s != start) {
            // Reads that move on to the next block run forward: keep one block ahead of them.
            let forward = self.current.as_ref().is_some_and(|(s, _)| s + block == start);
            self.run = if forward { self.run + 1 } else { 0 };
            let bytes = self.take_block(start)?;
            self.current = Some((start, bytes));
            if self.run >= RUN_BEFORE_READ_AHEAD {
                self.read_ahead(start);
            }
        }
        let (_, bytes) = self.current.as_ref().expect("the current block was just set");
        let from = (self.pos - start) as usize;
        let n = buf.len().min(bytes.len().saturating_sub(from));
        buf[..n].copy_from_slice(&bytes[from..from + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for RemoteReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let size = self.object.size();
        let pos = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => size.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "a seek before the start"))?;
        Ok(self.pos)
    }
}

impl Drop for RemoteReader {
    fn drop(&mut self) {
        if let Some(ahead) = self.ahead.take() {
            ahead.task.abort();
        }
    }
}
