//! `ladder probe`: what a recording is, as text or JSON.

use std::io::Write;

use crate::exit::Outcome;
use crate::probe::{self, Probe, VideoInfo};
use crate::rate::FrameRate;

use super::args::ProbeArgs;

/// Probes the recording and prints what it found.
pub(crate) fn execute(out: &mut impl Write, args: &ProbeArgs) -> anyhow::Result<Outcome> {
    let probe = probe::probe(&args.input, &args.limits.limits())?;
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&probe)?)?;
    } else {
        write_probe(out, &probe)?;
    }
    Ok(Outcome::Done)
}

fn write_probe(out: &mut impl Write, p: &Probe) -> std::io::Result<()> {
    writeln!(out, "{}", p.path)?;
    writeln!(out, "  container   {} ({}), {} bytes", p.container, p.container_long_name, p.size_bytes)?;
    writeln!(out, "  duration    {:.3} s", p.duration_seconds)?;
    match &p.video {
        Some(v) => write_video(out, v)?,
        None => writeln!(out, "  video       none (audio-only recording)")?,
    }
    write_audio(out, p)?;
    write_subtitles(out, p)?;
    for s in &p.streams {
        writeln!(out, "  stream #{}   {} {}", s.index, s.kind, s.codec)?;
    }
    for d in &p.discontinuities {
        writeln!(
            out,
            "  jump        at {:.3} s the timestamps jump {:+.3} s: taken out",
            d.at_seconds, d.jump_seconds
        )?;
    }
    if let Some(why) = &p.remux {
        writeln!(out, "  transcoded  from a re-based Matroska copy: {why}")?;
    }
    Ok(())
}

fn write_video(out: &mut impl Write, v: &VideoInfo) -> std::io::Result<()> {
    let rate = |r: Option<FrameRate>| r.map_or_else(|| "unknown".to_owned(), |r| format!("{r} ({:.3})", r.as_f64()));
    writeln!(
        out,
        "  video       #{} {}{} {}x{} (displayed {}x{}{}), {} {}-bit",
        v.index,
        v.codec,
        v.profile.as_deref().map(|x| format!(" {x}")).unwrap_or_default(),
        v.width,
        v.height,
        v.display_width,
        v.display_height,
        if v.rotation != 0 { format!(", rotated {}°", v.rotation) } else { String::new() },
        v.pixel_format,
        v.bit_depth
    )?;
    writeln!(
        out,
        "  frame rate  nominal {}, average {}, {}",
        rate(v.nominal_fps),
        rate(v.average_fps),
        if v.variable_frame_rate { "variable" } else { "constant" }
    )?;
    writeln!(
        out,
        "  scan        {}",
        if v.interlaced { format!("interlaced ({})", v.field_order) } else { v.field_order.clone() }
    )?;
    let captions = if v.closed_captions { "CEA-608/708 in the video (kept in H.264 rungs)" } else { "none" };
    writeln!(out, "  captions    {captions}")?;
    Ok(())
}

fn write_subtitles(out: &mut impl Write, p: &Probe) -> std::io::Result<()> {
    for s in &p.subtitle_tracks {
        let tag = |t: &Option<String>| t.as_deref().map_or_else(|| "-".to_owned(), |t| format!("{t:?}"));
        writeln!(
            out,
            "  subtitles   #{} {}, language {}, title {}{}{}",
            s.index,
            s.codec,
            tag(&s.language),
            tag(&s.title),
            if s.forced { ", forced" } else { "" },
            if s.text { "" } else { ", not text: left out (no WebVTT from pictures)" }
        )?;
    }
    Ok(())
}

fn write_audio(out: &mut impl Write, p: &Probe) -> std::io::Result<()> {
    for a in &p.audio_tracks {
        let tag = |t: &Option<String>| t.as_deref().map_or_else(|| "-".to_owned(), |t| format!("{t:?}"));
        writeln!(
            out,
            "  audio       #{} {} {} Hz {} ({} ch), {}, language {}, title {}{}{}",
            a.index,
            a.codec,
            a.sample_rate,
            a.layout,
            a.channels,
            a.sample_format,
            tag(&a.language),
            tag(&a.title),
            if a.default { ", default" } else { "" },
            if a.decodable { "" } else { ", cannot be decoded" }
        )?;
    }
    if p.audio_tracks.is_empty() {
        writeln!(out, "  audio       none")?;
    }
    Ok(())
}
