//! Before any encoding: the input fetched, probed and planned; what earlier runs finished.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::thread::JoinHandle;

use super::Clock;
use super::{RunError, RunRequest};
use crate::layout::{self, Part};
use crate::location::{self, Output, Source};
use crate::pipeline::video;
use crate::plan::{Chunk, Plan};
use crate::probe::Probe;
use crate::record::{self, ChunkRecord};
use crate::report;

/// The input as this run sees it.
pub(super) struct Prepared {
    /// What the chunks and the audio read: the recording (a local file, or an S3 object
    /// read in place), or its re-based copy in scratch ([`crate::remux`]).
    pub(super) source: Source,
    /// The recording itself (its subtitle streams are read from it).
    pub(super) input: Source,
    /// The cues of each sidecar, in the order given.
    pub(super) sidecars: Vec<Vec<crate::subtitles::Cue>>,
    pub(super) probe: Probe,
    pub(super) plan: Plan,
    pub(super) plan_id: String,
    pub(super) input_hash: InputHash,
    /// The check of an object read in place against its stored checksum, when this process
    /// makes it.
    pub(super) verification: Verification,
}

/// Opens, probes and plans the input.
pub(super) fn prepare(req: &RunRequest, scratch: &std::path::Path, clock: &mut Clock) -> Result<Prepared, RunError> {
    // First, so that a bad subtitle file stops the run before the recording is read.
    let sidecars =
        clock.timed("subtitles", || crate::subtitles::load_sidecars(&req.subtitles, scratch, &req.storage))?;
    let mut input = clock.timed("fetch", || location::open_input(&req.input, scratch, &req.storage))?;
    if let Source::Remote(_) = &input
        && !crate::probe::seekable_in_place(&input)
    {
        // A container without an index is read through twice (probe, copy): once is cheaper.
        tracing::info!("the recording has no index to seek by: fetching it whole");
        input = clock.timed("fetch", || location::fetch_input(&req.input, scratch, &req.storage).map(Source::Local))?;
    }
    let probe = clock.timed("probe", || crate::probe::probe_source(&input, &req.limits));
    let probe = probe.map_err(|e| read_failure(&input, e.into()))?;
    let remuxed = clock.timed("remux", || crate::remux::prepare(&input, probe, scratch, &req.limits));
    let remuxed = remuxed.map_err(|e| read_failure(&input, e.into()))?;
    let (source, probe) = (remuxed.source, remuxed.probe);
    let planned = clock.timed("plan", || crate::dead_air::plan(&source, &probe, &req.preset, &req.trim, &req.limits));
    let mut plan = planned.map_err(|e| read_failure(&input, e.into()))?.with_sidecars(&req.subtitles);
    // A read that failed while looking for dead air left the recording whole: not this plan.
    if let Some(failed) = input.failure() {
        return Err(failed.into());
    }
    // The plan names the input by its location, not by the scratch copy, whose folder is
    // new in every run: reruns and other shards must find the same plan.
    plan.source.path = req.input.to_string();
    let plan_id = record::plan_id(&plan);
    warn_skipped_audio(&plan);
    // The process that reads the whole recording anyway (the audio's) checks an object
    // read in place against its stored checksum.
    let whole = req.shard.owns_audio(&plan.chunks, |c| video::frames_encoded(&plan, &req.preset, c));
    let verification = Verification::start(&input, whole);
    let input_hash = InputHash::start(&input);
    Ok(Prepared { source, input, sidecars, probe, plan, plan_id, input_hash, verification })
}

/// `e`, unless a read of the object in place failed: then that failure (libav saw only an
/// I/O error, which it may have reported as a damaged file). A recording read in place that
/// reads as broken is checked against its stored checksum first: a damaged object says so.
pub(super) fn read_failure(input: &Source, e: RunError) -> RunError {
    if let Some(failed) = input.failure() {
        return failed.into();
    }
    if let Source::Remote(remote) = input
        && crate::exit::ExitClass::outcome(&e) == crate::exit::Outcome::BadInput
        && let Err(damaged @ location::StorageError::InputCorrupt { .. }) = remote.verify()
    {
        return damaged.into();
    }
    e
}

/// Says which audio tracks the ladder leaves out, and why: a recording with interpreters'
/// channels must not lose one silently.
fn warn_skipped_audio(plan: &Plan) {
    for skipped in &plan.skipped_audio {
        tracing::warn!(stream = skipped.source_stream, reason = skipped.reason, "an audio track is left out");
    }
    for skipped in &plan.skipped_subtitles {
        tracing::warn!(stream = skipped.source_stream, reason = skipped.reason, "a subtitle stream is left out");
    }
}

/// Local files larger than this are named by size and time, not hashed: reading 50 GB
/// again only to name it would cost minutes.
const HASHED_UP_TO: u64 = 8 << 30;

/// The input's identity; a local file's SHA-256 is computed on its own thread while the
/// chunks encode, and so is the check of an object read in place (`verify`).
pub(super) struct InputHash {
    input: PathBuf,
    thread: Option<JoinHandle<std::io::Result<String>>>,
    object: Option<location::ObjectIdentity>,
}

/// The check of an S3 object read in place against the checksum the store keeps
/// ([`location::s3::stream::RemoteObject::verify`]), on its own thread, made by the process
/// that reads the whole recording anyway (the audio's). Its audio record is stored only
/// once the check passed, so no shard can publish a ladder of a damaged object.
pub(super) struct Verification {
    thread: std::sync::Mutex<Option<JoinHandle<Result<String, location::StorageError>>>>,
    checked: std::sync::OnceLock<Result<Option<String>, String>>,
}

impl Verification {
    fn start(input: &Source, whole: bool) -> Self {
        let thread = match input {
            Source::Remote(remote) if whole => {
                let remote = std::sync::Arc::clone(remote);
                Some(std::thread::spawn(move || remote.verify()))
            }
            _ => None,
        };
        Self { thread: std::sync::Mutex::new(thread), checked: std::sync::OnceLock::new() }
    }

    /// Waits for the check: what was checked (`None` when this process makes none), or why
    /// the object is not what the store recorded (every caller is told).
    pub(super) fn wait(&self) -> Result<Option<String>, RunError> {
        // Held while joining: a second caller waits for the same answer.
        let mut thread = self.thread.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(running) = thread.take() {
            let joined = running.join().map_err(|_| RunError::Inconsistent("checking the input panicked".into()))?;
            match joined {
                Ok(checked) => {
                    tracing::info!(checked, "verified the input");
                    let _ = self.checked.set(Ok(Some(checked)));
                }
                Err(e) => {
                    let _ = self.checked.set(Err(e.to_string()));
                    return Err(e.into());
                }
            }
        }
        match self.checked.get() {
            Some(Ok(checked)) => Ok(checked.clone()),
            Some(Err(message)) => Err(RunError::Inconsistent(message.clone())),
            None => Ok(None),
        }
    }
}

impl InputHash {
    fn start(input: &Source) -> Self {
        let object = input.identity().cloned();
        let path = input.local().map(std::path::Path::to_owned).unwrap_or_default();
        let hashed = input.local().is_some() && input.size().is_ok_and(|n| n <= HASHED_UP_TO);
        let thread = hashed.then(|| {
            let path = path.clone();
            std::thread::spawn(move || report::file_sha256(&path))
        });
        Self { input: path, thread, object }
    }

    pub(super) fn wait(self) -> Result<report::InputIdentity, RunError> {
        let sha256 = match self.thread {
            Some(thread) => {
                let hashed = thread.join().map_err(|_| RunError::Inconsistent("hashing the input panicked".into()))?;
                Some(hashed.map_err(|source| RunError::Scratch { path: self.input.display().to_string(), source })?)
            }
            None => None,
        };
        Ok(report::InputIdentity { sha256, object: self.object, bytes_read: None, verified: None })
    }
}

/// The parts of the plan whose records are stored: finished by this run or an earlier one,
/// by this process or another shard.
#[derive(Default)]
pub(super) struct Done {
    pub(super) chunks: BTreeMap<u32, ChunkRecord>,
    /// By audio rendition.
    pub(super) audio: BTreeMap<usize, ChunkRecord>,
}

impl Done {
    /// Reads the records not yet known (made for this very plan) from the output.
    pub(super) fn load_missing(&mut self, out: &dyn Output, plan: &Plan, plan_id: &str) -> Result<(), RunError> {
        for chunk in &plan.chunks {
            if !self.chunks.contains_key(&chunk.index)
                && let Some(r) = ChunkRecord::load_valid(out, plan_id, Part::Chunk(chunk.index))?
            {
                self.chunks.insert(chunk.index, r);
            }
        }
        for a in self.missing_audio(plan) {
            if let Some(r) = ChunkRecord::load_valid(out, plan_id, Part::Audio(a))? {
                self.audio.insert(a, r);
            }
        }
        Ok(())
    }

    /// The audio renditions without a record, in order.
    pub(super) fn missing_audio(&self, plan: &Plan) -> Vec<usize> {
        plan.audio.iter().map(|a| a.index).filter(|a| !self.audio.contains_key(a)).collect()
    }

    /// The chunks without a record, in order.
    pub(super) fn missing_chunks(&self, plan: &Plan) -> Vec<u32> {
        plan.chunks.iter().map(|c| c.index).filter(|c| !self.chunks.contains_key(c)).collect()
    }

    pub(super) fn is_complete(&self, plan: &Plan) -> bool {
        self.missing_chunks(plan).is_empty() && self.missing_audio(plan).is_empty()
    }

    /// Output frames of the recorded chunks (progress starts there).
    pub(super) fn frames(&self, plan: &Plan) -> u64 {
        let frames = |c: Option<u32>| {
            c.and_then(|c| plan.chunks.get(c as usize)).map_or(0, |c: &Chunk| c.end_frame - c.start_frame)
        };
        self.chunks.values().map(|r| frames(r.chunk)).sum()
    }
}

/// What this process has left to encode.
pub(super) struct Work<'a> {
    pub(super) chunks: Vec<&'a Chunk>,
    /// Audio renditions.
    pub(super) audio: Vec<usize>,
    /// Chunks earlier runs finished.
    pub(super) reused: Vec<u32>,
}

impl<'a> Work<'a> {
    /// This shard's share of what `done` lacks.
    pub(super) fn left(req: &RunRequest, plan: &'a Plan, done: &Done) -> Self {
        let chunks = plan
            .chunks
            .iter()
            .filter(|c| !done.chunks.contains_key(&c.index) && req.shard.owns_chunk(c.index))
            .collect();
        let owns_audio = req.shard.owns_audio(&plan.chunks, |c| video::frames_encoded(plan, &req.preset, c));
        let audio = if owns_audio { done.missing_audio(plan) } else { Vec::new() };
        Self { chunks, audio, reused: done.chunks.keys().copied().collect() }
    }
}

/// Marks the output as this plan's: whatever was published before (another plan, or files
/// since lost) is not complete now, so the published markers go first.
pub(super) fn claim(out: &dyn Output, plan: &Plan, done: &Done) -> Result<(), RunError> {
    if !done.is_complete(plan) {
        for key in layout::PUBLISHED {
            out.delete(key)?;
        }
    }
    let plan_json = serde_json::to_vec_pretty(plan).expect("a plan is plain data and always serialises");
    out.put(layout::PLAN, &plan_json)?;
    Ok(())
}
