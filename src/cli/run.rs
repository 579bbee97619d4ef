//! `ladder run`: the request from the flags (and an Indexed Job's environment), signal
//! handling, and the summary printed at the end.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context as _;

use crate::exit::{Outcome, UsageError};
use crate::location::Location;
use crate::run::{RunRequest, RunSummary, Shard};

use super::args::RunArgs;

/// Transcodes the recording; SIGINT/SIGTERM ask the run to stop (a second one exits at once).
pub(crate) fn execute(out: &mut impl Write, args: &RunArgs) -> anyhow::Result<Outcome> {
    // Every run pushes its end, whatever ends it; a bad shard setting is reported below.
    let shard = args.shard.or_else(|| shard_from_job_env().ok()).unwrap_or(Shard::ALL);
    let pusher = args.metrics.pusher(&args.preset.preset, shard);
    let result = transcode(args, pusher.watch());
    pusher.finish(result.as_ref().map(|(_, summary)| summary).map_err(super::outcome_of));
    let (request, summary) = result?;
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&summary)?)?;
    } else {
        write_summary(out, request.shard, &summary)?;
    }
    Ok(Outcome::Done)
}

/// `ladder run` up to its summary.
fn transcode(args: &RunArgs, watch: crate::progress::Watch) -> anyhow::Result<(RunRequest, RunSummary)> {
    let request = request(args, watch)?;
    let cancel = cancel_on_signals()?;
    let summary = crate::run::run(&request, &cancel)?;
    Ok((request, summary))
}

/// The validated request, in the order its parts are checked: preset, input, output,
/// shard, storage.
fn request(args: &RunArgs, watch: crate::progress::Watch) -> anyhow::Result<RunRequest> {
    let preset = args.preset.load()?;
    Ok(RunRequest {
        input: Location::parse(&args.input)?,
        out: Location::parse(&args.out)?,
        preset,
        trim: args.trim.trim()?,
        jobs: args.jobs.map(usize::from),
        scratch: args.scratch.clone(),
        quality: args.quality,
        overwrite: args.overwrite,
        limits: args.limits.limits(),
        progress: args.progress.mode(),
        shard: match args.shard {
            Some(shard) => shard,
            None => shard_from_job_env()?,
        },
        storage: args.s3.config()?,
        subtitles: args.subtitles.sidecars()?,
        watch,
    })
}

/// The shard of a pod in an Indexed Job: `JOB_COMPLETION_INDEX` (set by Kubernetes) of
/// `LADDER_SHARDS` (set by `ladder dispatch`); the whole job otherwise.
fn shard_from_job_env() -> anyhow::Result<Shard> {
    let (Ok(index), Ok(count)) = (std::env::var("JOB_COMPLETION_INDEX"), std::env::var("LADDER_SHARDS")) else {
        return Ok(Shard::ALL);
    };
    Shard::parse(&format!("{index}/{count}"))
        .map_err(|e| UsageError(format!("JOB_COMPLETION_INDEX / LADDER_SHARDS: {e}")).into())
}

/// A flag the first SIGINT/SIGTERM sets; the second exits at once with exit 5.
fn cancel_on_signals() -> anyhow::Result<Arc<AtomicBool>> {
    let cancel = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // The second signal exits at once; the first asks the workers to stop. The exit hook
        // runs first, so it sees the flag as an earlier signal left it.
        signal_hook::flag::register_conditional_shutdown(signal, Outcome::Interrupted as i32, cancel.clone())
            .context("installing signal handlers")?;
        signal_hook::flag::register(signal, cancel.clone()).context("installing signal handlers")?;
    }
    Ok(cancel)
}

/// What this shard left to others, or what was published and how each rung came out.
fn write_summary(out: &mut impl Write, shard: Shard, summary: &RunSummary) -> std::io::Result<()> {
    let Some(published) = &summary.published else {
        return writeln!(
            out,
            "shard {shard} done ({} chunks encoded); chunks {:?} are left to other shards, the last to finish publishes",
            summary.chunks_encoded.len(),
            summary.waiting_for
        );
    };
    writeln!(
        out,
        "done: {published} ({} rungs, {:.1} s of media in {:.1} s, {:.2}× realtime, {:.1} CPU s)",
        summary.rungs.len(),
        summary.duration_seconds,
        summary.wall_seconds,
        summary.speed,
        summary.cpu_seconds
    )?;
    for r in &summary.rungs {
        let quality = match (r.psnr_db, r.ssim) {
            (Some(p), Some(s)) => format!(", PSNR {p:.2} dB, SSIM {s:.4}"),
            _ => String::new(),
        };
        writeln!(
            out,
            "  {} {}x{} {}: {:.0} kbit/s average, {:.0} peak, {} segments{quality}",
            r.dir, r.width, r.height, r.codec, r.average_kbps, r.peak_kbps, r.segments
        )?;
    }
    Ok(())
}
