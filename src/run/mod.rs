//! `ladder run`: the whole job, as stages. [`run`] reads top to bottom: prepare the input
//! ([`prepare`]: fetch, probe, plan), find what earlier runs recorded, claim the output,
//! encode what is left ([`encode`]: the chunk pool, the audio thread, and storing each part
//! as it finishes, [`store`]), and, when every record is there, assemble the manifests,
//! thumbnails and report and publish the master playlist last ([`finish`]).

mod encode;
mod error;
mod finish;
mod lease;
mod prepare;
mod scratch;
mod shard;
mod store;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use serde::Serialize;

pub(crate) use error::RunError;
pub(crate) use shard::Shard;

use crate::location::{self, Location, StorageConfig};
use crate::pipeline::video::{self, ChunkJob};
use crate::preset::Preset;
use crate::probe::Limits;
use crate::progress::{Progress, ProgressMode};
use crate::report::{self, Stage};
use encode::{Storer, Workers};
use lease::{Lease, Owner};
use prepare::{Done, Work};
use scratch::Scratch;
use store::Destination;

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct RunRequest {
    pub input: Location,
    pub out: Location,
    pub preset: Preset,
    /// The part of the recording to keep.
    pub trim: crate::trim::Trim,
    /// Chunks encoded at once; default: one per two CPUs this process may use.
    pub jobs: Option<usize>,
    /// Where muxers write; default: a temporary folder, removed afterwards.
    pub scratch: Option<PathBuf>,
    /// Measure PSNR and SSIM of every rung against the source.
    pub quality: bool,
    /// Take over an output that holds another recording's (or preset's) ladder.
    pub overwrite: bool,
    /// What the input may be: the probe and every decoder the run opens honour them.
    pub limits: Limits,
    pub progress: ProgressMode,
    /// This process's share of the chunks.
    pub shard: Shard,
    /// Subtitle files to add as renditions (`--subtitles LANG=PATH`).
    pub subtitles: Vec<crate::subtitles::Sidecar>,
    /// How to reach S3 when the input or output is there.
    pub storage: StorageConfig,
    /// Receives the run's progress counters once it has planned (for metrics pushes).
    pub watch: crate::progress::Watch,
}

/// What `--json` prints and the CLI summarises.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RunSummary {
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
    /// Size of the input recording.
    pub input_bytes: u64,
    /// Bytes of it this process fetched, when it was read in place from S3.
    pub input_bytes_read: Option<u64>,
    /// Wall and CPU seconds of each stage so far.
    pub stages: Vec<Stage>,
}

/// Runs the job. `cancel` is set by SIGINT/SIGTERM; the run then stops within a few
/// seconds, keeps what is recorded, publishes nothing and returns `Interrupted`.
pub(crate) fn run(req: &RunRequest, cancel: &AtomicBool) -> Result<RunSummary, RunError> {
    let clock = Clock::start();
    let out = location::open_output(&req.out, &req.storage)?;
    let owner =
        Owner { input: req.input.to_string(), preset: req.preset.name.clone(), preset_hash: req.preset.hash.clone() };
    let mut lease = Lease::claim(out.as_ref(), owner, req.overwrite)?;
    let result = run_claimed(req, out.as_ref(), &mut lease, cancel, clock);
    match &result {
        // Failed before the input was known to be good: the ladder it was to replace stays.
        Err(_) if lease.taking_over() => lease.restore(out.as_ref()),
        // Other shards are still at work, or a rerun will resume: the claim stays.
        Ok(summary) if summary.published.is_none() => {}
        Err(RunError::Interrupted) => {}
        // Failed before anything was stored (bad input, a missing object): nothing to own.
        Err(_) if matches!(out.size(crate::layout::PLAN), Ok(None)) => lease.withdraw(out.as_ref()),
        _ => lease.release(out.as_ref()),
    }
    result
}

/// The job, once the output is this run's.
fn run_claimed(
    req: &RunRequest,
    out: &dyn location::Output,
    lease: &mut Lease,
    cancel: &AtomicBool,
    mut clock: Clock,
) -> Result<RunSummary, RunError> {
    let scratch = Scratch::new(req.scratch.as_deref())?;
    let prepared = prepare::prepare(req, scratch.path(), &mut clock)?;
    lease.take_over(out)?;
    let (plan, plan_id) = (&prepared.plan, prepared.plan_id.as_str());

    let mut done = Done::default();
    done.load_missing(out, plan, plan_id)?;
    let work = Work::left(req, plan, &done);
    prepare::claim(out, plan, &done)?;
    if !work.reused.is_empty() {
        tracing::info!(chunks = crate::logging::json(&work.reused), "reusing chunks finished by an earlier run");
    }

    let delay = clock.timed("encoder setup", || video::reorder_delay(plan, &req.preset))?;
    let workers = Workers::size(req.jobs, work.chunks.len(), &crate::memory::Estimate::of(plan, &req.preset));
    let progress = Progress::start(req.progress, plan, done.frames(plan), &req.watch);
    let job = ChunkJob {
        input: &prepared.source,
        plan,
        preset: &req.preset,
        scratch: scratch.path(),
        encoder_threads: workers.encoder_threads,
        decoder_threads: workers.decoder_threads,
        cancel,
        frames_done: &progress.counters().frames,
        quality: req.quality,
        replay_budget: video::REPLAY_BUDGET,
        delay_frames: delay,
        max_pixels: req.limits.max_pixels,
    };
    let encode_started = (Instant::now(), report::cpu_seconds());
    tracing::info!(chunks = work.chunks.len(), jobs = workers.jobs, cpus = workers.cpus, shard = %req.shard, "encoding");
    let encoded = encode::encode(
        &job,
        workers,
        &work,
        Storer::new(
            Destination {
                out,
                media: lease.media(),
                plan_id,
                verification: &prepared.verification,
                input: &prepared.input,
            },
            plan,
            delay,
            &mut done,
            lease,
            progress.counters(),
        ),
    );
    progress.finish();
    clock.stages.push(Stage::since("encode", encode_started));
    let encoded = encoded.map_err(|e| prepare::read_failure(&prepared.input, e))?;
    prepared.verification.wait()?;

    // Chunks other shards own: published only when every record is there.
    done.load_missing(out, plan, plan_id)?;
    log_bytes_read(&prepared.input, prepared.probe.size_bytes);
    let media = lease.media();
    let finished = finish::Finished { req, clock, workers, encoded, reused: work.reused, done, media };
    if !finished.done.is_complete(plan) {
        return Ok(finished.waiting(plan, prepared.probe.size_bytes, prepared.input.bytes_read()));
    }
    finish::publish(out, prepared, finished, scratch.path())
}

/// How much of an input read in place this process fetched.
fn log_bytes_read(input: &location::Source, size: u64) {
    if let Some(bytes) = input.bytes_read() {
        let share = bytes as f64 / size.max(1) as f64;
        tracing::info!(bytes_read = bytes, of = size, share = (share * 1000.0).round() / 1000.0, "input read in place");
    }
}

/// Wall and CPU time of the run and of each stage, for the report.
struct Clock {
    started: Instant,
    cpu_at_start: f64,
    stages: Vec<Stage>,
}

impl Clock {
    fn start() -> Self {
        Self { started: Instant::now(), cpu_at_start: report::cpu_seconds(), stages: Vec::new() }
    }

    /// Runs `f` as the stage `name`.
    fn timed<T, E>(&mut self, name: &'static str, f: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        let start = (Instant::now(), report::cpu_seconds());
        let result = f();
        self.stages.push(Stage::since(name, start));
        result
    }

    fn wall_seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    fn cpu_seconds(&self) -> f64 {
        report::cpu_seconds() - self.cpu_at_start
    }
}
