//! `ladder run`: the whole job. Probe and plan, skip what earlier runs recorded, encode
//! the remaining chunks (and the audio) on a rayon pool sized to the CPUs this process may
//! use, store each chunk's files and then its record as soon as it finishes, and assemble
//! the manifests, thumbnails and report, the master playlist last.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::assemble::{self, AssembleError};
use crate::location::{self, Location, Output, StorageConfig, StorageError};
use crate::media::encoder::EncoderError;
use crate::package::cmaf;
use crate::package::track::{ByteRange, SegmentSummary};
use crate::pipeline::EncodedSegment;
use crate::pipeline::audio::{self, AudioError, AudioTrack};
use crate::pipeline::video::{self, ChunkError, ChunkJob, ChunkOutput};
use crate::plan::{Chunk, Plan, PlanError};
use crate::preset::Preset;
use crate::probe::{Limits, ProbeError};
use crate::progress::{Progress, ProgressMode};
use crate::record::{self, ChunkRecord, FileRecord, PosterRecord, SegmentRecord, TrackRecord};
use crate::report::{self, Report, Stage};

/// CPUs one chunk keeps busy: its decoder thread and one thread per rung, the largest
/// rung doing about half of the encoding.
const CPUS_PER_CHUNK: usize = 2;

/// What to run.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub input: Location,
    pub out: Location,
    pub preset: Preset,
    /// Chunks encoded at once; default: the CPUs this process may use.
    pub jobs: Option<usize>,
    /// Where muxers write; default: a temporary folder, removed afterwards.
    pub scratch: Option<PathBuf>,
    /// Measure PSNR and SSIM of every rung against the source.
    pub quality: bool,
    pub limits: Limits,
    pub progress: ProgressMode,
    /// This process's share of the chunks.
    pub shard: Shard,
    /// How to reach S3 when the input or output is there.
    pub storage: StorageConfig,
}

/// A share of a plan's chunks: chunk `c` belongs to shard `c % count`, the audio to the
/// shard with the fewest frames ([`Shard::owns_audio`]). Any shard that finds every record
/// present assembles and publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// The whole job.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Parses `i/N` (0 ≤ i < N).
    pub fn parse(text: &str) -> Result<Self, String> {
        let (i, n) = text.split_once('/').ok_or_else(|| format!("shard {text:?} is not i/N (e.g. 0/4)"))?;
        let index: u32 = i.trim().parse().map_err(|_| format!("shard index {i:?} is not a number"))?;
        let count: u32 = n.trim().parse().map_err(|_| format!("shard count {n:?} is not a number"))?;
        if count == 0 || index >= count {
            return Err(format!(
                "shard {index}/{count}: the index must be below the count (0/{count} … {}/{count})",
                count.max(1) - 1
            ));
        }
        Ok(Self { index, count })
    }

    pub fn owns_chunk(self, chunk: u32) -> bool {
        chunk % self.count == self.index
    }

    /// The audio goes to the shard with the fewest video frames to encode, `encoded(chunk)`
    /// each (on a tie, the last of them: it owns the last chunk, usually the shortest), so
    /// that shards finish together.
    pub fn owns_audio(self, chunks: &[Chunk], encoded: impl Fn(&Chunk) -> u64) -> bool {
        let frames =
            |shard: u32| -> u64 { chunks.iter().filter(|c| c.index % self.count == shard).map(&encoded).sum() };
        let lightest = (0..self.count).rev().min_by_key(|&s| frames(s)).unwrap_or(0);
        self.index == lightest
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Why a run failed. [`RunError::outcome`] maps it to the exit code.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Probe(#[from] ProbeError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Remux(#[from] crate::remux::RemuxError),
    #[error(transparent)]
    Chunk(#[from] ChunkError),
    #[error(transparent)]
    Audio(#[from] AudioError),
    #[error("preparing the encoders: {0}")]
    Encoder(#[from] EncoderError),
    #[error(transparent)]
    Assemble(#[from] AssembleError),
    #[error("scratch folder {path}: {source}")]
    Scratch { path: String, source: std::io::Error },
    #[error("{0}")]
    Inconsistent(String),
    #[error("interrupted: finished chunks are recorded in the output; run the same command again to finish")]
    Interrupted,
}

impl RunError {
    /// The exit code for this failure.
    pub fn outcome(&self) -> crate::exit::Outcome {
        use crate::exit::Outcome;
        match self {
            Self::Probe(e) if e.is_transient() => Outcome::Transient,
            Self::Probe(_) | Self::Plan(_) => Outcome::BadInput,
            Self::Storage(e) if e.is_usage() => Outcome::Usage,
            Self::Storage(e) if e.is_bad_input() => Outcome::BadInput,
            Self::Interrupted => Outcome::Interrupted,
            Self::Chunk(e) => e.outcome(),
            Self::Audio(e) => e.outcome(),
            Self::Remux(e) => e.outcome(),
            _ => Outcome::Transient,
        }
    }
}

/// What `--json` prints and the CLI summarises.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub output: String,
    /// The master playlist (or the MPD when HLS is off): its presence means complete.
    /// `None` when this shard finished its share and others are still working.
    pub published: Option<String>,
    /// Chunks still left to other shards (when nothing was published).
    pub waiting_for: Vec<u32>,
    pub duration_seconds: f64,
    pub wall_seconds: f64,
    pub cpu_seconds: f64,
    /// Media seconds per wall second.
    pub speed: f64,
    pub chunks_encoded: Vec<u32>,
    pub chunks_reused: Vec<u32>,
    pub rungs: Vec<report::RungReport>,
}

/// Runs the job. `cancel` is set by SIGINT/SIGTERM; the run then stops within a few
/// seconds, keeps what is recorded, publishes nothing and returns `Interrupted`.
pub fn run(req: &RunRequest, cancel: &AtomicBool) -> Result<RunSummary, RunError> {
    let started = Instant::now();
    let cpu_at_start = report::cpu_seconds();
    let mut stages = Vec::new();
    let out = location::open_output(&req.out, &req.storage)?;
    let scratch = Scratch::new(req.scratch.as_deref())?;
    let input_file = timed(&mut stages, "fetch", || location::fetch_input(&req.input, scratch.path(), &req.storage))?;
    let input = input_file.as_path();

    let probe = timed(&mut stages, "probe", || crate::probe::probe(input, &req.limits))?;
    // What the chunks and the audio read: the recording, or its re-based copy (crate::remux).
    let source = timed(&mut stages, "remux", || crate::remux::prepare(input, probe, scratch.path(), &req.limits))?;
    let probe = source.probe;
    let mut plan = timed(&mut stages, "plan", || crate::plan::plan(&probe, &req.preset))?;
    // The plan names the input by its location, not by the scratch copy, whose folder is
    // new in every run: reruns and other shards must find the same plan.
    plan.source.path = req.input.to_string();
    let plan_id = record::plan_id(&plan);
    let input_hash = std::thread::spawn({
        let input = input.to_owned();
        move || report::file_sha256(&input)
    });

    // Which parts earlier runs finished, for this very plan.
    let mut records = BTreeMap::new();
    for chunk in &plan.chunks {
        if let Some(r) = ChunkRecord::load_valid(out.as_ref(), &plan_id, Some(chunk.index))? {
            records.insert(chunk.index, r);
        }
    }
    let mut audio_record = match plan.audio {
        Some(_) => ChunkRecord::load_valid(out.as_ref(), &plan_id, None)?,
        None => None,
    };
    let unfinished = plan.chunks.iter().any(|c| !records.contains_key(&c.index));
    let audio_unfinished = plan.audio.is_some() && audio_record.is_none();
    let pending: Vec<&crate::plan::Chunk> =
        plan.chunks.iter().filter(|c| !records.contains_key(&c.index) && req.shard.owns_chunk(c.index)).collect();
    let audio_pending =
        audio_unfinished && req.shard.owns_audio(&plan.chunks, |c| video::frames_encoded(&plan, &req.preset, c));
    let reused: Vec<u32> = records.keys().copied().collect();
    if unfinished || audio_unfinished {
        // Whatever was published before (another plan, or files since lost) is not complete now.
        for key in assemble::PUBLISHED_KEYS {
            out.delete(key)?;
        }
    }
    let plan_json = serde_json::to_vec_pretty(&plan).expect("a plan is plain data and always serialises");
    out.put(record::PLAN_KEY, &plan_json)?;
    if !reused.is_empty() {
        tracing::info!(chunks = ?reused, "reusing chunks finished by an earlier run");
    }

    let delay = timed(&mut stages, "encoder setup", || video::reorder_delay(&plan, &req.preset))?;
    let cpus = report::available_cpus();
    // A chunk keeps about two CPUs busy (its rungs encode on their own threads), and
    // every chunk at work holds a set of encoders in memory.
    let jobs = req.jobs.unwrap_or(cpus.div_ceil(CPUS_PER_CHUNK)).max(1);
    // One thread per encoder, whatever the machine: a chunk's bytes are then the same
    // whichever process, shard or rerun encodes it. Parallelism comes from chunks.
    let encoder_threads = 1;
    // Decoding is bit-exact with any thread count: spare CPUs (fewer chunks than workers)
    // go to the decoders.
    let decoder_threads = (cpus / (jobs.min(pending.len()).max(1) * CPUS_PER_CHUNK)).max(1);
    let done_frames: u64 = records.values().map(|r| chunk_frames(&plan, r.chunk)).sum();
    let progress = Progress::start(req.progress, &plan, done_frames);
    let encode_started = (Instant::now(), report::cpu_seconds());
    tracing::info!(chunks = pending.len(), jobs, cpus, shard = %req.shard, "encoding");

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .thread_name(|i| format!("ladder-chunk-{i}"))
        .build()
        .map_err(|e| RunError::Inconsistent(format!("starting {jobs} worker threads: {e}")))?;
    let job = ChunkJob {
        input: &source.path,
        plan: &plan,
        preset: &req.preset,
        scratch: scratch.path(),
        encoder_threads,
        decoder_threads,
        cancel,
        frames_done: &progress.counters().frames,
        quality: req.quality,
        delay_frames: delay,
        replay_budget: video::REPLAY_BUDGET,
    };
    let mut first_error: Option<RunError> = None;
    let mut encoded = Vec::new();
    let mut audio_segments = Vec::new();
    std::thread::scope(|s| {
        // Bounded: a worker whose chunk is not stored yet waits, so memory stays flat when
        // storing is slower than encoding.
        let (tx, rx) = mpsc::sync_channel::<Finished>(jobs);
        let (job, pending) = (&job, &pending);
        let pool = &pool;
        if audio_pending {
            // The audio is a small, serial task: on its own thread it never holds up a chunk.
            let tx = tx.clone();
            let spawned = std::thread::Builder::new().name("ladder-audio".into()).spawn_scoped(s, move || {
                crate::pipeline::give_way();
                let t = Instant::now();
                let delay_seconds = f64::from(delay) / job.plan.fps.as_f64();
                // Segments go to the storing thread as they are cut; a closed channel means
                // the run is stopping.
                let segments = tx.clone();
                let mut send =
                    |segment| segments.send(Finished::AudioSegment(segment)).map_err(|_| AudioError::Interrupted);
                let (input, plan, preset, scratch, cancel) = (job.input, job.plan, job.preset, job.scratch, job.cancel);
                let result = audio::encode_audio(input, plan, preset, delay_seconds, scratch, cancel, &mut send);
                let _ = tx.send(Finished::Audio(result, t.elapsed()));
            });
            if let Err(e) = spawned {
                first_error = Some(RunError::Inconsistent(format!("starting the audio thread: {e}")));
                cancel.store(true, Ordering::Relaxed);
            }
        }
        s.spawn(move || {
            // FIFO: chunks start in order, so an interrupted run has finished the start of
            // the recording.
            pool.scope_fifo(move |ps| {
                for chunk in pending.iter().copied() {
                    let tx = tx.clone();
                    ps.spawn_fifo(move |_| {
                        if job.cancel.load(Ordering::Relaxed) {
                            let _ = tx.send(Finished::Chunk(
                                chunk.index,
                                Err(ChunkError::Interrupted(chunk.index)),
                                Duration::ZERO,
                            ));
                            return;
                        }
                        let t = Instant::now();
                        let result = video::encode_chunk(job, chunk);
                        let _ = tx.send(Finished::Chunk(chunk.index, result, t.elapsed()));
                    });
                }
            });
        });
        // Store each part as it finishes, while the others encode.
        for finished in rx {
            let stored = match finished {
                Finished::Chunk(c, result, took) => result.map_err(RunError::from).and_then(|output| {
                    let record = store_chunk(out.as_ref(), &plan, &plan_id, c, output, delay, took)?;
                    records.insert(c, record);
                    encoded.push(c);
                    Ok(())
                }),
                Finished::AudioSegment(segment) => store_segment(out.as_ref(), "a0", &segment).map(|record| {
                    audio_segments.push(record);
                }),
                Finished::Audio(result, took) => result.map_err(RunError::from).and_then(|track| {
                    let segments = std::mem::take(&mut audio_segments);
                    audio_record = Some(store_audio(out.as_ref(), &plan_id, track, segments, took)?);
                    Ok(())
                }),
            };
            if let Err(e) = stored {
                // The first real failure is what the user needs; stop the other workers.
                let interrupted = e.outcome() == crate::exit::Outcome::Interrupted;
                if first_error.as_ref().is_none_or(|f| f.outcome() == crate::exit::Outcome::Interrupted && !interrupted)
                {
                    first_error = Some(e);
                }
                cancel.store(true, Ordering::Relaxed);
            }
        }
    });
    progress.finish();
    stages.push(Stage::since("encode", encode_started));
    encoded.sort_unstable();
    if let Some(e) = first_error {
        // A chunk that stopped for a signal says only that; the run's message says what next.
        return Err(if e.outcome() == crate::exit::Outcome::Interrupted { RunError::Interrupted } else { e });
    }
    if cancel.load(Ordering::Relaxed) {
        return Err(RunError::Interrupted);
    }

    // Chunks other shards own: published only when every record is there.
    for chunk in &plan.chunks {
        if !records.contains_key(&chunk.index)
            && let Some(r) = ChunkRecord::load_valid(out.as_ref(), &plan_id, Some(chunk.index))?
        {
            records.insert(chunk.index, r);
        }
    }
    if audio_record.is_none() && plan.audio.is_some() {
        audio_record = ChunkRecord::load_valid(out.as_ref(), &plan_id, None)?;
    }
    let waiting_for: Vec<u32> = plan.chunks.iter().map(|c| c.index).filter(|c| !records.contains_key(c)).collect();
    if !waiting_for.is_empty() || (plan.audio.is_some() && audio_record.is_none()) {
        tracing::info!(shard = %req.shard, ?waiting_for, "this shard's share is done; the last shard to finish publishes");
        return Ok(RunSummary {
            output: req.out.to_string(),
            published: None,
            waiting_for,
            duration_seconds: plan.duration_seconds,
            wall_seconds: started.elapsed().as_secs_f64(),
            cpu_seconds: report::cpu_seconds() - cpu_at_start,
            speed: plan.duration_seconds / started.elapsed().as_secs_f64().max(1e-9),
            chunks_encoded: encoded,
            chunks_reused: reused,
            rungs: Vec::new(),
        });
    }

    let assemble_started = (Instant::now(), report::cpu_seconds());
    let ladder = assemble::assemble(out.as_ref(), &plan, &req.preset, &records, audio_record.as_ref())?;
    stages.push(Stage::since("assemble", assemble_started));
    let input_sha256 = input_hash.join().map_err(|_| RunError::Inconsistent("hashing the input panicked".into()))?;
    let input_sha256 =
        input_sha256.map_err(|source| RunError::Scratch { path: input.display().to_string(), source })?;
    let wall_seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = report::cpu_seconds() - cpu_at_start;
    let report = Report::new(report::ReportInputs {
        input: &req.input,
        probe: &probe,
        input_sha256,
        plan: &plan,
        plan_id: &plan_id,
        encoder: &req.preset.video.encoder,
        ladder: &ladder,
        stages,
        wall_seconds,
        cpu_seconds,
        cpus,
        jobs,
        encoder_threads,
        encoded: &encoded,
        reused: &reused,
    });
    let report_json = serde_json::to_vec_pretty(&report).expect("a report is plain data and always serialises");
    out.put(report::REPORT_KEY, &report_json)?;
    let published = assemble::publish(out.as_ref(), &ladder)?;
    Ok(RunSummary {
        output: req.out.to_string(),
        published: Some(format!("{}/{published}", req.out.to_string().trim_end_matches('/'))),
        waiting_for: Vec::new(),
        duration_seconds: plan.duration_seconds,
        wall_seconds,
        cpu_seconds,
        speed: plan.duration_seconds / wall_seconds.max(1e-9),
        chunks_encoded: encoded,
        chunks_reused: reused,
        rungs: report.rungs.clone(),
    })
}

enum Finished {
    Chunk(u32, Result<ChunkOutput, ChunkError>, Duration),
    /// An audio segment, stored as soon as it is cut.
    AudioSegment(EncodedSegment),
    Audio(Result<AudioTrack, AudioError>, Duration),
}

fn timed<T, E>(stages: &mut Vec<Stage>, name: &'static str, f: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
    let start = (Instant::now(), report::cpu_seconds());
    let result = f();
    stages.push(Stage::since(name, start));
    result
}

fn chunk_frames(plan: &Plan, chunk: Option<u32>) -> u64 {
    chunk.and_then(|c| plan.chunks.get(c as usize)).map_or(0, |c| c.end_frame - c.start_frame)
}

/// Stores a chunk's segments (and the init segment, identical in every chunk), then its
/// record.
fn store_chunk(
    out: &dyn Output,
    plan: &Plan,
    plan_id: &str,
    chunk: u32,
    output: ChunkOutput,
    delay: u32,
    took: Duration,
) -> Result<ChunkRecord, RunError> {
    let (_, ticks_per_frame) = video::timescale_for(plan);
    let mut files: Vec<(String, &[u8])> = Vec::new();
    let mut tracks = Vec::new();
    for rung in &output.rungs {
        if rung.delay_frames != delay {
            return Err(RunError::Inconsistent(format!(
                "chunk {chunk}, rung v{}: the encoder delays presentation by {} frames, not {delay} like the others",
                rung.rung, rung.delay_frames
            )));
        }
        let dir = format!("v{}", rung.rung);
        let codec = cmaf::codec_string(&rung.init, 0..rung.init.len())
            .map_err(|e| RunError::Inconsistent(format!("chunk {chunk}, {dir}: {e}")))?;
        // Every chunk's init segment is the same; rewriting it is as cheap as checking it.
        let init = FileRecord::of(format!("{dir}/init.mp4"), &rung.init);
        files.push((init.key.clone(), &rung.init));
        files.extend(rung.segments.iter().map(|s| (segment_key(&dir, s), s.bytes.as_slice())));
        tracks.push(TrackRecord {
            codec,
            timescale: rung.timescale,
            presentation_offset: u64::from(delay) * u64::from(ticks_per_frame),
            init,
            segments: rung.segments.iter().map(segment_record).collect(),
            quality: rung.quality,
            dir,
        });
    }
    let mut stills = Vec::with_capacity(output.stills.len());
    for (n, jpeg) in &output.stills {
        let record = FileRecord::of(assemble::still_key(*n), jpeg);
        files.push((record.key.clone(), jpeg));
        stills.push(record);
    }
    let mut posters = Vec::with_capacity(output.posters.len());
    for p in &output.posters {
        // Candidates stay out of the published tree; assembly copies the chosen one.
        let file = FileRecord::of(format!(".ladder/posters/{}.jpg", p.frame), &p.jpeg);
        files.push((file.key.clone(), &p.jpeg));
        posters.push(PosterRecord { frame: p.frame, worthy: p.worthy, file });
    }
    location::put_all(out, &files)?;
    let record = ChunkRecord {
        version: record::RECORD_VERSION,
        plan_id: plan_id.to_owned(),
        chunk: Some(chunk),
        tracks,
        stills,
        posters,
        encode_seconds: took.as_secs_f64(),
    };
    record.store(out)?;
    tracing::info!(chunk, seconds = took.as_secs_f64(), "chunk stored");
    Ok(record)
}

/// Stores the audio's init segment and its record (its segments are stored already).
fn store_audio(
    out: &dyn Output,
    plan_id: &str,
    track: AudioTrack,
    segments: Vec<SegmentRecord>,
    took: Duration,
) -> Result<ChunkRecord, RunError> {
    let codec =
        cmaf::codec_string(&track.init, 0..track.init.len()).map_err(|e| RunError::Inconsistent(format!("a0: {e}")))?;
    let offset = segments.first().map_or(0, |s| s.summary.decode_time);
    let init = store_init(out, "a0", &track.init)?;
    let record = ChunkRecord {
        version: record::RECORD_VERSION,
        plan_id: plan_id.to_owned(),
        chunk: None,
        tracks: vec![TrackRecord {
            dir: "a0".into(),
            codec,
            timescale: track.timescale,
            presentation_offset: offset,
            init,
            segments,
            quality: None,
        }],
        stills: Vec::new(),
        posters: Vec::new(),
        encode_seconds: took.as_secs_f64(),
    };
    record.store(out)?;
    Ok(record)
}

/// Stores the audio's init segment.
fn store_init(out: &dyn Output, dir: &str, init: &[u8]) -> Result<FileRecord, RunError> {
    let key = format!("{dir}/init.mp4");
    out.put(&key, init)?;
    Ok(FileRecord::of(key, init))
}

fn segment_key(dir: &str, s: &EncodedSegment) -> String {
    format!("{dir}/seg_{}.m4s", s.index)
}

fn store_segment(out: &dyn Output, dir: &str, s: &EncodedSegment) -> Result<SegmentRecord, RunError> {
    out.put(&segment_key(dir, s), &s.bytes)?;
    Ok(segment_record(s))
}

fn segment_record(s: &EncodedSegment) -> SegmentRecord {
    SegmentRecord {
        summary: SegmentSummary {
            index: s.index,
            decode_time: s.decode_time,
            duration: s.duration,
            size: s.bytes.len() as u64,
            key_frames: s
                .key_frames
                .iter()
                .map(|r| ByteRange { offset: r.start as u64, length: (r.end - r.start) as u64 })
                .collect(),
            key_frame_times: s.key_frame_times.clone(),
        },
        sha256: record::sha256_hex(&s.bytes),
    }
}

/// The scratch folder: the one asked for, or a temporary one removed afterwards.
enum Scratch {
    Given(PathBuf),
    Temporary(tempfile::TempDir),
}

impl Scratch {
    fn new(given: Option<&Path>) -> Result<Self, RunError> {
        let err = |path: &Path| {
            let path = path.display().to_string();
            move |source| RunError::Scratch { path, source }
        };
        match given {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(err(dir))?;
                Ok(Self::Given(dir.to_owned()))
            }
            None => {
                let dir = tempfile::Builder::new().prefix("ladder-").tempdir().map_err(err(&std::env::temp_dir()))?;
                Ok(Self::Temporary(dir))
            }
        }
    }

    fn path(&self) -> &Path {
        match self {
            Self::Given(p) => p,
            Self::Temporary(t) => t.path(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(lengths: &[u64]) -> Vec<Chunk> {
        let mut start = 0;
        (0..lengths.len() as u32)
            .map(|index| {
                let c = Chunk {
                    index,
                    first_segment: index,
                    end_segment: index + 1,
                    start_frame: start,
                    end_frame: start + lengths[index as usize],
                };
                start = c.end_frame;
                c
            })
            .collect()
    }

    fn audio_owner(count: u32, lengths: &[u64]) -> Vec<u32> {
        let chunks = chunks(lengths);
        let encoded = |c: &Chunk| c.end_frame - c.start_frame;
        (0..count).filter(|&index| Shard { index, count }.owns_audio(&chunks, encoded)).collect()
    }

    #[test]
    fn exactly_one_shard_owns_the_audio_the_one_with_the_fewest_frames() {
        assert_eq!(audio_owner(1, &[750, 750]), [0]);
        // Equal shares: the last shard.
        assert_eq!(audio_owner(2, &[750, 750]), [1]);
        // Shard 0 has chunks 0 and 2, shard 1 only chunk 1.
        assert_eq!(audio_owner(2, &[750, 750, 100]), [1]);
        // Three shards: shard 0 has two chunks, 1 and 2 one each; the last of those.
        assert_eq!(audio_owner(3, &[750, 750, 750, 750]), [2]);
        assert_eq!(audio_owner(3, &[750, 750, 750, 750, 750, 100]), [2]);
        assert_eq!(audio_owner(3, &[750, 750, 750, 750, 750, 750, 10]), [2]);
        // More shards than chunks: an idle shard takes it.
        assert_eq!(audio_owner(4, &[750, 750]), [3]);
        // What a chunk costs counts, e.g. a warm-up before every chunk but the first.
        let chunks = chunks(&[750, 750]);
        let warmed = |c: &Chunk| c.end_frame - c.start_frame + if c.start_frame > 0 { 25 } else { 0 };
        assert!(Shard { index: 0, count: 2 }.owns_audio(&chunks, warmed));
        assert!(!Shard { index: 1, count: 2 }.owns_audio(&chunks, warmed));
    }
}
