//! Encoding what is left: the chunks on a rayon pool, each audio track on its own thread, and the
//! calling thread storing each part as it finishes (files, then record) while the others
//! encode.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::RunError;
use super::lease::Lease;
use super::prepare::{Done, Work};
use super::store::{self, Destination};
use crate::exit::{ExitClass, Outcome};
use crate::memory::Estimate;
use crate::pipeline::EncodedSegment;
use crate::pipeline::audio::{self, AudioError, AudioTrack};
use crate::pipeline::video::{self, ChunkError, ChunkJob, ChunkOutput};
use crate::plan::{Chunk, Plan, PlannedAudio};
use crate::progress::Counters;
use crate::record::SegmentRecord;

/// CPUs one chunk keeps busy: its decoder thread and one thread per rung, the largest
/// rung doing about half of the encoding.
const CPUS_PER_CHUNK: usize = 2;

/// How the work is spread over the CPUs this process may use.
#[derive(Debug, Clone, Copy)]
pub(super) struct Workers {
    pub(super) cpus: usize,
    /// Chunks encoded at once.
    pub(super) jobs: usize,
    /// One thread per encoder, whatever the machine: a chunk's bytes are then the same
    /// whichever process, shard or rerun encodes it. Parallelism comes from chunks.
    pub(super) encoder_threads: usize,
    /// Decoding is bit-exact with any thread count: spare CPUs (fewer chunks than workers)
    /// go to the decoders.
    pub(super) decoder_threads: usize,
}

impl Workers {
    /// `jobs` as asked for, else one chunk per [`CPUS_PER_CHUNK`] CPUs, and no more than
    /// the cgroup's memory limit holds ([`Estimate`]): every chunk at work holds a set of
    /// encoders in memory.
    pub(super) fn size(jobs: Option<usize>, pending: usize, memory: &Estimate) -> Self {
        let cpus = crate::report::available_cpus();
        let jobs = jobs.unwrap_or_else(|| auto_jobs(cpus, memory, crate::memory::cgroup_limit())).max(1);
        let decoder_threads = (cpus / (jobs.min(pending).max(1) * CPUS_PER_CHUNK)).max(1);
        Self { cpus, jobs, encoder_threads: 1, decoder_threads }
    }
}

/// Chunks at once when `--jobs` is not given: one per [`CPUS_PER_CHUNK`] CPUs, fewer when
/// the memory `limit` holds fewer (said in the log, as is a limit too small for one).
fn auto_jobs(cpus: usize, memory: &Estimate, limit: Option<u64>) -> usize {
    let by_cpu = cpus.div_ceil(CPUS_PER_CHUNK).max(1);
    let Some(limit) = limit else { return by_cpu };
    let by_memory = memory.chunks_within(limit);
    let mib = |bytes: u64| bytes >> 20;
    if memory.for_jobs(1) > limit {
        tracing::warn!(
            limit_mib = mib(limit),
            needs_mib = mib(memory.for_jobs(1)),
            "the memory limit is below the estimate for one chunk of this plan: raise the pod's memory"
        );
    } else if by_memory < by_cpu {
        tracing::info!(
            jobs = by_memory,
            by_cpu,
            limit_mib = mib(limit),
            chunk_mib = mib(memory.chunk_bytes),
            "fewer chunks at once than the CPUs allow: the memory limit holds no more"
        );
    }
    by_cpu.min(by_memory)
}

/// A part that finished encoding, on its way to the storing thread.
enum Finished {
    Chunk(u32, Result<ChunkOutput, ChunkError>, Duration),
    /// A segment of audio rendition `.0`, stored as soon as it is cut.
    AudioSegment(usize, EncodedSegment),
    Audio(usize, Result<AudioTrack, AudioError>, Duration),
}

/// The storing side: where parts go and what has been stored.
pub(super) struct Storer<'a> {
    pub(super) to: Destination<'a>,
    pub(super) plan: &'a Plan,
    /// The encoder delay every rung must have, in frames.
    pub(super) delay: u32,
    pub(super) done: &'a mut Done,
    lease: &'a mut Lease,
    /// Progress, counted as parts are stored (for metrics pushes).
    counters: &'a Counters,
    /// Chunks stored by this run, in the order they finished.
    pub(super) encoded: Vec<u32>,
    /// Per audio rendition, the segments stored so far.
    audio_segments: BTreeMap<usize, Vec<SegmentRecord>>,
    first_error: Option<RunError>,
}

impl<'a> Storer<'a> {
    pub(super) fn new(
        to: Destination<'a>,
        plan: &'a Plan,
        delay: u32,
        done: &'a mut Done,
        lease: &'a mut Lease,
        counters: &'a Counters,
    ) -> Self {
        let (encoded, audio_segments) = (Vec::new(), BTreeMap::new());
        Self { to, plan, delay, done, lease, counters, encoded, audio_segments, first_error: None }
    }

    fn store(&mut self, finished: Finished) -> Result<(), RunError> {
        match finished {
            Finished::Chunk(c, result, took) => {
                let record = store::store_chunk(&self.to, self.plan, c, result?, self.delay, took)?;
                self.done.chunks.insert(c, record);
                self.encoded.push(c);
                let chunk = &self.plan.chunks[c as usize];
                self.counters.chunk_stored(chunk.end_frame - chunk.start_frame);
                self.lease.renew_if_due(self.to.out)?;
            }
            Finished::AudioSegment(a, segment) => {
                let record = store::store_audio_segment(&self.to, a, &segment)?;
                self.audio_segments.entry(a).or_default().push(record);
            }
            Finished::Audio(a, result, took) => {
                let segments = self.audio_segments.remove(&a).unwrap_or_default();
                let record = store::store_audio(&self.to, a, result?, segments, took)?;
                self.done.audio.insert(a, record);
            }
        }
        Ok(())
    }

    /// Keeps the first real failure (what the user needs to see), not a part that only
    /// stopped because of it.
    fn fail(&mut self, e: RunError) {
        let interrupted = e.outcome() == Outcome::Interrupted;
        if self.first_error.as_ref().is_none_or(|f| f.outcome() == Outcome::Interrupted && !interrupted) {
            self.first_error = Some(e);
        }
    }

    /// The run's result so far: the first failure, or `Interrupted` when stopped.
    fn result(self, cancel: &AtomicBool) -> Result<Vec<u32>, RunError> {
        match self.first_error {
            // A chunk that stopped for a signal says only that; the run's message says what next.
            Some(e) if e.outcome() == Outcome::Interrupted => Err(RunError::Interrupted),
            Some(e) => Err(e),
            None if cancel.load(Ordering::Relaxed) => Err(RunError::Interrupted),
            None => {
                let mut encoded = self.encoded;
                encoded.sort_unstable();
                Ok(encoded)
            }
        }
    }
}

/// Encodes `work` and stores every part; returns the chunks this run encoded, in order.
/// On the first failure the other workers are cancelled.
pub(super) fn encode(
    job: &ChunkJob<'_>,
    workers: Workers,
    work: &Work<'_>,
    mut storer: Storer<'_>,
) -> Result<Vec<u32>, RunError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(workers.jobs)
        .thread_name(|i| format!("ladder-chunk-{i}"))
        .build()
        .map_err(|e| RunError::Inconsistent(format!("starting {} worker threads: {e}", workers.jobs)))?;
    let delay_seconds = f64::from(storer.delay) / job.plan.fps.as_f64();
    std::thread::scope(|s| {
        // Bounded: a worker whose chunk is not stored yet waits, so memory stays flat when
        // storing is slower than encoding.
        let (tx, rx) = mpsc::sync_channel::<Finished>(workers.jobs);
        for &a in &work.audio {
            let tx = tx.clone();
            let audio = &job.plan.audio[a];
            let spawned = std::thread::Builder::new()
                .name(format!("ladder-audio-{a}"))
                .spawn_scoped(s, move || encode_audio(job, audio, delay_seconds, &tx));
            if let Err(e) = spawned {
                storer.fail(RunError::Inconsistent(format!("starting the audio thread: {e}")));
                job.cancel.store(true, Ordering::Relaxed);
            }
        }
        let pool = &pool;
        s.spawn(move || encode_chunks(pool, job, &work.chunks, &tx));
        for finished in rx {
            if let Err(e) = storer.store(finished) {
                storer.fail(e);
                job.cancel.store(true, Ordering::Relaxed);
            }
        }
    });
    storer.result(job.cancel)
}

/// An audio rendition, a small serial task: on its own thread it never holds up a chunk.
/// Segments go to the storing thread as they are cut; a closed channel means the run is
/// stopping.
fn encode_audio(job: &ChunkJob<'_>, audio: &PlannedAudio, delay_seconds: f64, tx: &mpsc::SyncSender<Finished>) {
    crate::pipeline::give_way();
    let started = Instant::now();
    let a = audio.index;
    let mut send = |segment| tx.send(Finished::AudioSegment(a, segment)).map_err(|_| AudioError::Interrupted);
    let result = audio::encode_audio(job, audio, delay_seconds, &mut send);
    let _ = tx.send(Finished::Audio(a, result, started.elapsed()));
}

/// The chunks on the pool, FIFO: they start in order, so an interrupted run has finished
/// the start of the recording.
fn encode_chunks(pool: &rayon::ThreadPool, job: &ChunkJob<'_>, chunks: &[&Chunk], tx: &mpsc::SyncSender<Finished>) {
    pool.scope_fifo(|ps| {
        for &chunk in chunks {
            let tx = tx.clone();
            ps.spawn_fifo(move |_| {
                let _ = tx.send(encode_one(job, chunk));
            });
        }
    });
}

fn encode_one(job: &ChunkJob<'_>, chunk: &Chunk) -> Finished {
    if job.cancel.load(Ordering::Relaxed) {
        return Finished::Chunk(chunk.index, Err(ChunkError::Interrupted(chunk.index)), Duration::ZERO);
    }
    let started = Instant::now();
    let result = video::encode_chunk(job, chunk);
    Finished::Chunk(chunk.index, result, started.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn automatic_jobs_take_the_fewer_of_what_the_cpus_and_the_memory_limit_allow() {
        let estimate = Estimate { chunk_bytes: 1_500 << 20, process_bytes: 160 << 20 };
        // 8 CPUs: 4 chunks by CPU; a 4 GiB limit holds 2 (as the default preset's 1080p).
        assert_eq!(auto_jobs(8, &estimate, Some(4 << 30)), 2);
        assert_eq!(auto_jobs(8, &estimate, None), 4, "no limit: the CPUs decide");
        assert_eq!(auto_jobs(2, &estimate, Some(64 << 30)), 1, "a large limit: the CPUs decide");
        assert_eq!(auto_jobs(8, &estimate, Some(1 << 30)), 1, "under one chunk: one is still tried");
    }
}
