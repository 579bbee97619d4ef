//! The end of a run: with every record present, assemble the ladder, write the report and
//! publish the master playlist last; otherwise say which chunks other shards still owe.

use super::encode::Workers;
use super::prepare::{Done, Prepared};
use super::{Clock, RunError, RunRequest, RunSummary};
use crate::assemble;
use crate::layout;
use crate::location::Output;
use crate::plan::Plan;
use crate::report::{self, Report, Stage};

/// What the encoding stages leave for the end.
pub(super) struct Finished<'a> {
    pub(super) req: &'a RunRequest,
    pub(super) clock: Clock,
    pub(super) workers: Workers,
    /// Chunks this run encoded, in order.
    pub(super) encoded: Vec<u32>,
    /// Chunks earlier runs had finished.
    pub(super) reused: Vec<u32>,
    pub(super) done: Done,
    /// Where the output's media lies (its generation).
    pub(super) media: crate::layout::Media,
}

impl Finished<'_> {
    /// This shard's share is done; the last shard to finish publishes.
    pub(super) fn waiting(self, plan: &Plan, input_bytes: u64, input_bytes_read: Option<u64>) -> RunSummary {
        let waiting_for = self.done.missing_chunks(plan);
        tracing::info!(shard = %self.req.shard, waiting_for = crate::logging::json(&waiting_for), "this shard's share is done; the last shard to finish publishes");
        let wall_seconds = self.clock.wall_seconds();
        RunSummary {
            output: self.req.out.to_string(),
            published: None,
            waiting_for,
            duration_seconds: plan.duration_seconds,
            wall_seconds,
            cpu_seconds: self.clock.cpu_seconds(),
            speed: plan.duration_seconds / wall_seconds.max(1e-9),
            chunks_encoded: self.encoded,
            chunks_reused: self.reused,
            rungs: Vec::new(),
            input_bytes,
            input_bytes_read,
            stages: self.clock.stages,
        }
    }
}

/// Assembles, writes the report, then publishes: the master playlist means complete.
pub(super) fn publish(
    out: &dyn Output,
    prepared: Prepared,
    f: Finished<'_>,
    scratch: &std::path::Path,
) -> Result<RunSummary, RunError> {
    let Finished { req, mut clock, workers, encoded, reused, done, media } = f;
    let plan = &prepared.plan;
    let assemble_started = (std::time::Instant::now(), report::cpu_seconds());
    let (subtitles, subtitles_left_out) = crate::subtitles::gather(plan, &prepared.input, &prepared.sidecars);
    // A stream left out because the store failed a read is not the recording's fault.
    if let Some(failed) = prepared.input.failure() {
        return Err(failed.into());
    }
    let parts = assemble::Parts { records: &done.chunks, audio_records: &done.audio, subtitles: &subtitles };
    let ladder = assemble::assemble(out, plan, &media, &req.preset, &parts, scratch)?;
    clock.stages.push(Stage::since("assemble", assemble_started));
    let mut input_identity = prepared.input_hash.wait()?;
    input_identity.bytes_read = prepared.input.bytes_read();
    input_identity.verified = prepared.verification.wait()?;
    let (wall_seconds, cpu_seconds) = (clock.wall_seconds(), clock.cpu_seconds());
    let report = Report::new(report::ReportInputs {
        input: &req.input,
        probe: &prepared.probe,
        input_identity,
        plan,
        plan_id: &prepared.plan_id,
        encoder: &req.preset.video.encoder,
        ladder: &ladder,
        stages: clock.stages,
        wall_seconds,
        cpu_seconds,
        cpus: workers.cpus,
        jobs: workers.jobs,
        encoder_threads: workers.encoder_threads,
        encoded: &encoded,
        reused: &reused,
        thumbnails: plan.thumbnails.is_some().then(|| (media.poster(), media.thumbs_vtt())),
        subtitles_left_out: &subtitles_left_out,
    });
    let report_json = serde_json::to_vec_pretty(&report).expect("a report is plain data and always serialises");
    out.put(layout::REPORT, &report_json)?;
    let published = assemble::publish(out, &ladder)?;
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
        input_bytes: prepared.probe.size_bytes,
        input_bytes_read: report.input.bytes_read,
        stages: report.stages.clone(),
    })
}
