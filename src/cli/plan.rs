//! `ladder plan`: the work for a recording, as a summary or the whole plan in JSON.

use std::io::Write;

use crate::exit::Outcome;
use crate::plan::{self, Plan};
use crate::probe;

use super::args::PlanArgs;

/// Loads the preset, probes the recording, plans and prints the plan.
pub(crate) fn execute(out: &mut impl Write, args: &PlanArgs) -> anyhow::Result<Outcome> {
    let preset = args.preset.load()?;
    let sidecars = args.subtitles.sidecars()?;
    // Read now, as a run would, so that a bad file is reported here too.
    let scratch = tempfile::tempdir()?;
    crate::subtitles::load_sidecars(&sidecars, scratch.path(), &Default::default())?;
    let limits = args.limits.limits();
    let probe = probe::probe(&args.input, &limits)?;
    let trim = args.trim.trim()?;
    let plan =
        crate::dead_air::plan(&crate::location::Source::Local(args.input.clone()), &probe, &preset, &trim, &limits)?
            .with_sidecars(&sidecars);
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&plan)?)?;
    } else {
        write_plan(out, &plan)?;
        write_memory(out, &crate::memory::Estimate::of(&plan, &preset))?;
    }
    Ok(Outcome::Done)
}

/// What a chunk at work holds, and how many the cgroup's memory limit (if any) holds.
fn write_memory(out: &mut impl Write, estimate: &crate::memory::Estimate) -> std::io::Result<()> {
    let mib = |bytes: u64| bytes >> 20;
    let fit = match crate::memory::cgroup_limit() {
        Some(limit) => format!("; {} at once fit in this cgroup's {} MiB", estimate.chunks_within(limit), mib(limit)),
        None => String::new(),
    };
    writeln!(
        out,
        "  memory   ~{} MiB per chunk at work, ~{} MiB for the process besides{fit}",
        mib(estimate.chunk_bytes),
        mib(estimate.process_bytes)
    )
}

/// The source, the output rate and the grid, then the renditions.
fn write_plan(out: &mut impl Write, plan: &Plan) -> std::io::Result<()> {
    let s = &plan.source;
    writeln!(out, "{} with preset {} ({})", s.path, plan.preset.name, &plan.preset.hash[..12])?;
    if s.video_stream.is_none() {
        writeln!(out, "  source   audio only, {:.3} s: audio renditions, no video rungs", s.duration_seconds)?;
    } else {
        write_source(out, s)?;
    }
    if let Some(t) = &plan.trim {
        writeln!(
            out,
            "  trim     keeps {:.3} s to {:.3} s of the recording ({:.3} s cut before, {:.3} s after{})",
            t.start_seconds,
            t.end_seconds,
            t.cut_before_seconds,
            t.cut_after_seconds,
            if t.dead_air.is_some() { ": dead air" } else { "" }
        )?;
    }
    writeln!(
        out,
        "  output   {} fps ({}), {} frames = {:.3} s",
        plan.fps, plan.fps_reason, plan.total_frames, plan.duration_seconds
    )?;
    writeln!(
        out,
        "  grid     GOP {} frames, segment {} frames ({:.3} s), {} segments in {} chunks",
        plan.gop_frames,
        plan.segment_frames,
        f64::from(plan.segment_frames) / plan.fps.as_f64(),
        plan.segments.len(),
        plan.chunks.len()
    )?;
    write_renditions(out, plan)
}

fn write_source(out: &mut impl Write, s: &crate::plan::Source) -> std::io::Result<()> {
    writeln!(
        out,
        "  source   {}x{} displayed {}x{}, {:.3} s{}{}{}",
        s.width,
        s.height,
        s.display_width,
        s.display_height,
        s.duration_seconds,
        if s.rotation != 0 { format!(", rotated {}°", s.rotation) } else { String::new() },
        if s.interlaced { ", interlaced → deinterlace" } else { "" },
        if s.variable_frame_rate { ", variable frame rate" } else { "" }
    )
}

/// One line per subtitle rendition, and per subtitle stream left out.
fn write_subtitles(out: &mut impl Write, plan: &Plan) -> std::io::Result<()> {
    for s in &plan.subtitles {
        let source = match &s.source {
            plan::SubtitleSource::Embedded { stream, codec } => format!("stream #{stream} ({codec})"),
            plan::SubtitleSource::Sidecar { location, .. } => location.clone(),
        };
        let forced = if s.forced { ", forced" } else { "" };
        writeln!(out, "  s{:<3}     {:<10} {:<4} WebVTT from {source}{forced}", s.index, s.label, s.language)?;
    }
    for s in &plan.skipped_subtitles {
        writeln!(out, "  skipped  stream #{}: {}", s.source_stream, s.reason)?;
    }
    Ok(())
}

/// One line per rung (and per skipped rung), the audio and the thumbnails.
fn write_renditions(out: &mut impl Write, plan: &Plan) -> std::io::Result<()> {
    for r in &plan.rungs {
        writeln!(
            out,
            "  v{:<3}     {:<10} {:>4}x{:<4} {:>6} kbit/s (max {}, buffer {} kbit)",
            r.index, r.name, r.width, r.height, r.bitrate_kbps, r.maxrate_kbps, r.bufsize_kbit
        )?;
    }
    for r in &plan.skipped_rungs {
        writeln!(out, "  skipped  {:<10} {}", r.name, r.reason)?;
    }
    for a in &plan.audio {
        writeln!(
            out,
            "  a{:<3}     {:<10} {:<4} AAC-LC {} Hz {} ch {} kbit/s from stream #{} ({}){}",
            a.index,
            a.label,
            a.language,
            a.sample_rate,
            a.channels,
            a.bitrate_kbps,
            a.source_stream,
            a.source_layout,
            if a.default { ", default" } else { "" }
        )?;
    }
    for a in &plan.skipped_audio {
        writeln!(out, "  skipped  stream #{}: {}", a.source_stream, a.reason)?;
    }
    if plan.audio.is_empty() {
        writeln!(out, "  audio    none (video-only ladder)")?;
    }
    write_subtitles(out, plan)?;
    if let Some(t) = &plan.thumbnails {
        writeln!(
            out,
            "  thumbs   {} stills {}x{} every {} s in {} sprite(s) of {}x{}; poster {}x{}",
            t.still_frames.len(),
            t.width,
            t.height,
            t.interval_seconds,
            t.sprite_count,
            t.sprite_columns,
            t.sprite_rows,
            t.poster_width,
            t.poster_height
        )?;
    }
    Ok(())
}
