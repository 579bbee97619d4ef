//! Recordings that cannot be transcoded where they lie, and the copy they are transcoded
//! from instead.
//!
//! A chunk seeks to the key frame before its start. MP4/MOV and Matroska with cues index
//! their key frames, so that seek is exact. MPEG-TS, FLV, HLS, Ogg, MPEG-PS and Matroska
//! written live (no cues) have no such index: libav seeks them by bisecting timestamps and
//! lands on any packet, often mid-GOP, where the decoder shows nothing until the next key
//! frame, so a chunk would start with the wrong picture or with none. Those containers
//! are also the ones whose timestamps jump: an encoder restarting mid-event starts its
//! clock again, a splice jumps it forward, MPEG-TS wraps it every 26.5 hours.
//!
//! Such a recording is copied (packets as they are, no decoding) into Matroska in the
//! scratch folder, with its timestamps re-based to run on (`Rebase`), and the copy is what
//! the chunks and the audio read. The probe runs the same `Rebase` over the original's
//! packets (`walk`), so `ladder probe` and `ladder plan` already describe the copy.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ff::Rescale as _;
use ffmpeg_next::{self as ff, ffi};

use crate::exit::{ExitClass, Outcome};
use crate::location::Source;
use crate::probe::{AudioInfo, Discontinuity, Limits, Probe, ProbeError};

/// A stream whose decode time goes back by more than this has restarted its clock.
/// (Decode times never go back; presentation times go back by a few frames with B-frames,
/// which is why decode times are used when the container has them.)
const JUMP_BACK_SECONDS: f64 = 1.0;
/// Every stream going silent at once for longer than this is a jump of the clock, not a
/// pause: the FFmpeg CLI's `-dts_delta_threshold` for MPEG-TS.
const JUMP_FORWARD_SECONDS: f64 = 10.0;

const MICROS: f64 = 1_000_000.0;

/// Takes jumps out of a recording's timestamps, packet by packet: at a jump (backwards
/// beyond [`JUMP_BACK_SECONDS`] in one stream, or forwards beyond [`JUMP_FORWARD_SECONDS`]
/// past everything seen), what follows is moved to start where the latest stream ended.
/// All streams move together, so what was in sync stays in sync. The first packet starts
/// the clock at zero.
#[derive(Debug, Default)]
pub(crate) struct Rebase {
    /// Microseconds added to every timestamp from here on.
    offset: i64,
    /// Per stream: the latest re-based decode time, in microseconds.
    last: HashMap<usize, i64>,
    /// The latest re-based end of any packet, in microseconds.
    end: Option<i64>,
    pub discontinuities: Vec<Discontinuity>,
}

impl Rebase {
    /// The offset (microseconds) to add to the timestamps of a packet of `stream` whose
    /// decode time (or presentation time, when it has none) is `time` microseconds on the
    /// source's clock and which lasts `duration` microseconds.
    pub(crate) fn offset_for(&mut self, stream: usize, time: i64, duration: i64) -> i64 {
        let Some(end) = self.end else {
            self.offset = time.saturating_neg();
            self.last.insert(stream, 0);
            self.end = Some(duration.max(0));
            return self.offset;
        };
        let mut t = time.saturating_add(self.offset);
        let back = (JUMP_BACK_SECONDS * MICROS) as i64;
        let forward = (JUMP_FORWARD_SECONDS * MICROS) as i64;
        if let Some(&last) = self.last.get(&stream)
            && (t < last.saturating_sub(back) || t > end.saturating_add(forward))
        {
            self.discontinuities.push(Discontinuity {
                at_seconds: end as f64 / MICROS,
                jump_seconds: t.saturating_sub(end) as f64 / MICROS,
            });
            self.offset = self.offset.saturating_add(end.saturating_sub(t));
            t = end;
        }
        self.last.insert(stream, t);
        self.end = Some(end.max(t.saturating_add(duration.max(0))));
        self.offset
    }
}

/// One packet as [`walk`] hands it over, with its timestamps re-based.
pub(crate) struct Walked<'a> {
    pub stream: usize,
    pub packet: &'a mut ff::Packet,
    pub time_base: ff::Rational,
}

/// Reads every packet of `streams` in file order, re-bases its timestamps ([`Rebase`]) and
/// hands it to `visit`. Reading stops at the end or at the first read error (the rest of
/// a damaged file is unreadable for every later reader too). Returns the rebaser.
pub(crate) fn walk(
    input: &mut ff::format::context::Input,
    streams: &[usize],
    visit: &mut dyn FnMut(Walked<'_>) -> Result<(), ff::Error>,
) -> Result<Rebase, ff::Error> {
    let time_bases: HashMap<usize, ff::Rational> =
        input.streams().filter(|s| streams.contains(&s.index())).map(|s| (s.index(), s.time_base())).collect();
    let micros = ff::Rational::new(1, ffi::AV_TIME_BASE);
    let mut rebase = Rebase::default();
    let mut packet = ff::Packet::empty();
    loop {
        match packet.read(input) {
            Ok(()) => {}
            Err(ff::Error::Eof) => break,
            Err(e) => {
                tracing::warn!(error = %e, "the recording cannot be read past this point; using what came before");
                break;
            }
        }
        let stream = packet.stream();
        let Some(&time_base) = time_bases.get(&stream) else { continue };
        if let Some(time) = packet.dts().or(packet.pts()) {
            let to_micros = |t: i64| t.rescale(time_base, micros);
            let offset = rebase.offset_for(stream, to_micros(time), to_micros(packet.duration()));
            let shift = offset.rescale(micros, time_base);
            packet.set_pts(packet.pts().map(|t| t.saturating_add(shift)));
            packet.set_dts(packet.dts().map(|t| t.saturating_add(shift)));
        }
        visit(Walked { stream, packet: &mut packet, time_base })?;
    }
    Ok(rebase)
}

/// Why the copy could not be made.
#[derive(Debug, thiserror::Error)]
pub enum RemuxError {
    #[error(
        "{path}: its {codec} stream #{stream} cannot be copied into the Matroska file ladder transcodes {kind} recordings from"
    )]
    Unsupported { path: PathBuf, kind: String, stream: usize, codec: String },
    #[error("{path}: copying it for transcoding: {context}: {source}")]
    Libav { path: PathBuf, context: &'static str, source: ff::Error },
    #[error("{path}: copying it for transcoding: {source}")]
    Probe { path: PathBuf, source: Box<ProbeError> },
}

impl ExitClass for RemuxError {
    /// A stream that does not fit or packets the muxer refuses are the input's doing; a
    /// write that fails (scratch full, I/O) may pass.
    fn outcome(&self) -> Outcome {
        match self {
            Self::Unsupported { .. } => Outcome::BadInput,
            Self::Libav { source: ff::Error::Other { errno }, .. }
                if [libc::ENOSPC, libc::EIO, libc::EDQUOT, libc::ENOMEM].contains(errno) =>
            {
                Outcome::Transient
            }
            Self::Libav { .. } => Outcome::BadInput,
            Self::Probe { source, .. } => source.outcome(),
        }
    }
}

/// What the chunks and the audio read: the recording itself, or its re-based copy.
#[derive(Debug)]
pub struct Remuxed {
    pub source: Source,
    /// The probe to plan from: the recording's, with the copy's stream numbers and timing.
    pub probe: Probe,
}

/// The recording as it is when it can be transcoded in place (`probe.remux` is `None`),
/// else its Matroska copy in `scratch`, probed again.
pub fn prepare(input: &Source, probe: Probe, scratch: &Path, limits: &Limits) -> Result<Remuxed, RemuxError> {
    // An audio-only recording is read in place: its audio is read in order, never sought.
    let (Some(reason), Some(video)) = (probe.remux.clone(), probe.video.clone()) else {
        return Ok(Remuxed { source: input.clone(), probe });
    };
    tracing::info!(reason = %reason, "copying the recording into Matroska before transcoding");
    let copy = scratch.join("source.mkv");
    let mut streams = vec![video.index];
    let audio: Vec<&AudioInfo> = probe.audio_tracks.iter().filter(|a| a.decodable).collect();
    streams.extend(audio.iter().map(|a| a.index));
    remux(input, &probe, &streams, &copy, limits)?;
    let wrap = |source| RemuxError::Probe { path: input.name(), source: Box::new(source) };
    let mut copied = crate::probe::probe(&copy, limits).map_err(wrap)?;
    // The recording's identity and timing stay (the copy's clock may start a little
    // differently, and Matroska does not say where each stream ends); what the copy
    // changes is where its streams are.
    let copied_video = copied.video.as_mut().ok_or_else(|| RemuxError::Probe {
        path: input.name(),
        source: Box::new(crate::probe::ProbeError::NoVideo { path: copy.clone(), has_audio: true }),
    })?;
    let shift = copied_video.start_seconds - video.start_seconds;
    copied_video.end_seconds = video.end_seconds + shift;
    copied_video.frame_count = video.frame_count;
    copied.duration_seconds = probe.duration_seconds;
    if let (Some(copy), Some(original)) = (copied.audio.as_mut(), probe.audio.as_ref()) {
        copy.start_seconds = original.start_seconds.map(|t| t + shift);
        copy.end_seconds = original.end_seconds.map(|t| t + shift);
    }
    // The copy's audio streams are the decodable tracks in order: each keeps its tags;
    // the others stay listed (with the recording's numbers) to be reported left out.
    let undecodable = probe.audio_tracks.iter().filter(|a| !a.decodable).cloned();
    copied.audio_tracks = (audio.iter().zip(&copied.audio_tracks))
        .map(|(original, copy)| AudioInfo { index: copy.index, ..(*original).clone() })
        .chain(undecodable)
        .collect();
    copied.path = probe.path;
    copied.size_bytes = probe.size_bytes;
    copied.container = probe.container;
    copied.container_long_name = probe.container_long_name;
    copied.title = probe.title;
    copied.bit_rate = probe.bit_rate;
    copied.streams = probe.streams;
    // Subtitles are read from the recording itself, by its stream numbers.
    copied.subtitle_tracks = probe.subtitle_tracks;
    copied.discontinuities = probe.discontinuities;
    copied.remux = Some(reason);
    Ok(Remuxed { source: Source::Local(copy), probe: copied })
}

/// Copies `streams` of `input` into a Matroska file at `out` (with cues), re-based.
fn remux(input: &Source, probe: &Probe, streams: &[usize], out: &Path, limits: &Limits) -> Result<(), RemuxError> {
    let name = input.name();
    let libav = |context| {
        let path = name.clone();
        move |source| RemuxError::Libav { path, context, source }
    };
    let mut ictx = crate::probe::open_input(input, limits).map_err(|source| RemuxError::Probe {
        path: input.name(),
        source: Box::new(crate::probe::read_failure(input, source)),
    })?;
    let mut octx = ff::format::output_as(&out, "matroska").map_err(libav("creating the copy"))?;
    // SAFETY: a plain flag of an output context whose header is not written yet: no random
    // UIDs or dates, so every shard and rerun makes the same copy.
    unsafe { (*octx.as_mut_ptr()).flags |= ffi::AVFMT_FLAG_BITEXACT };
    let mut mapping = HashMap::new();
    for &index in streams {
        let ist = ictx.stream(index).ok_or(ff::Error::StreamNotFound).map_err(libav("finding a stream"))?;
        let mut ost = octx.add_stream(ff::encoder::find(ff::codec::Id::None)).map_err(libav("adding a stream"))?;
        ost.set_parameters(ist.parameters());
        ost.set_time_base(ist.time_base());
        ost.set_avg_frame_rate(ist.avg_frame_rate());
        ost.set_rate(ist.rate());
        // SAFETY: the stream was just added; its codecpar is allocated and the header is not
        // written. Matroska names codecs itself; the source container's tag means nothing there.
        unsafe {
            (*(*ost.as_mut_ptr()).codecpar).codec_tag = 0;
            (*ost.as_mut_ptr()).sample_aspect_ratio = (*ist.as_ptr()).sample_aspect_ratio;
        }
        mapping.insert(index, (ost.index(), ist.time_base()));
    }
    octx.write_header().map_err(|_| {
        let (stream, codec) = streams
            .iter()
            .find_map(|i| probe.streams.iter().find(|s| s.index == *i && !mkv_can_hold(&s.codec)))
            .or_else(|| probe.streams.iter().find(|s| s.index == streams[0]))
            .map_or((streams[0], String::new()), |s| (s.index, s.codec.clone()));
        RemuxError::Unsupported { path: input.name(), kind: probe.container.clone(), stream, codec }
    })?;
    let out_time_bases: HashMap<usize, ff::Rational> = octx.streams().map(|s| (s.index(), s.time_base())).collect();
    // The muxer refuses decode times that do not increase; a damaged stream can have them.
    let mut last_dts: HashMap<usize, i64> = HashMap::new();
    let mut refused = 0u64;
    let mut write = |w: Walked<'_>| -> Result<(), ff::Error> {
        let (ost, _) = mapping[&w.stream];
        let packet = w.packet;
        packet.rescale_ts(w.time_base, out_time_bases[&ost]);
        if let Some(dts) = packet.dts() {
            let dts = last_dts.get(&ost).map_or(dts, |&last| dts.max(last.saturating_add(1)));
            last_dts.insert(ost, dts);
            packet.set_dts(Some(dts));
            packet.set_pts(packet.pts().map(|p| p.max(dts)));
        }
        packet.set_position(-1);
        packet.set_stream(ost);
        match packet.write_interleaved(&mut octx) {
            // A packet the muxer refuses (damaged: no size, timestamps it cannot store) is
            // left out, as a decoder would leave it out.
            Err(e) if crate::pipeline::input_fault(&e) => {
                refused += 1;
                Ok(())
            }
            done => done,
        }
    };
    walk(&mut ictx, streams, &mut write).map_err(libav("writing the copy"))?;
    octx.write_trailer().map_err(libav("finishing the copy"))?;
    if refused > 0 {
        tracing::warn!(packets = refused, "left damaged packets out of the copy transcoded");
    }
    Ok(())
}

/// Whether Matroska has a codec ID for a codec (by libav's name); for the error message.
fn mkv_can_hold(codec: &str) -> bool {
    // SAFETY: avcodec_descriptor_get_by_name accepts any NUL-terminated name.
    let Ok(name) = std::ffi::CString::new(codec) else { return false };
    let id = unsafe {
        let d = ffi::avcodec_descriptor_get_by_name(name.as_ptr());
        if d.is_null() {
            return false;
        }
        (*d).id
    };
    // SAFETY: a registered muxer's query function, for any codec ID.
    unsafe {
        let format = ffi::av_guess_format(c"matroska".as_ptr(), std::ptr::null(), std::ptr::null());
        !format.is_null() && ffi::avformat_query_codec(format, id, ffi::FF_COMPLIANCE_NORMAL) == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times(packets: &[(usize, f64)]) -> (Vec<f64>, Vec<Discontinuity>) {
        let mut r = Rebase::default();
        let out = packets
            .iter()
            .map(|&(s, t)| {
                let t = (t * MICROS).round() as i64;
                (t + r.offset_for(s, t, 40_000)) as f64 / MICROS
            })
            .collect();
        (out, r.discontinuities)
    }

    #[test]
    fn a_clock_that_restarts_continues_after_what_came_before() {
        // Video and audio 1.4 s → 3.4 s, then both restart at 1.4 s (an encoder restart).
        let (t, jumps) = times(&[(0, 1.4), (1, 1.41), (0, 3.4), (1, 3.41), (0, 1.4), (1, 1.41), (0, 1.44)]);
        assert_eq!(t, [0.0, 0.01, 2.0, 2.01, 2.05, 2.06, 2.09]);
        assert_eq!(jumps.len(), 1);
        assert!((jumps[0].at_seconds - 2.05).abs() < 1e-9 && (jumps[0].jump_seconds + 2.05).abs() < 1e-9);
    }

    #[test]
    fn a_pause_of_one_stream_is_kept_and_a_jump_of_all_is_taken_out() {
        // Video pauses 15 s while audio goes on: real time, kept.
        let (t, jumps) = times(&[(0, 0.0), (1, 0.0), (1, 8.0), (1, 15.0), (0, 15.0)]);
        assert_eq!(t, [0.0, 0.0, 8.0, 15.0, 15.0]);
        assert!(jumps.is_empty());
        // Both jump an hour ahead: a splice, taken out.
        let (t, jumps) = times(&[(0, 0.0), (1, 0.02), (0, 3600.0), (1, 3600.02)]);
        assert_eq!(t, [0.0, 0.02, 0.06, 0.08]);
        assert_eq!(jumps.len(), 1);
    }

    #[test]
    fn extreme_timestamps_do_not_overflow() {
        let (t, _) = times(&[(0, 0.0)]);
        assert_eq!(t, [0.0]);
        let mut r = Rebase::default();
        r.offset_for(0, i64::MIN, i64::MAX);
        r.offset_for(0, i64::MAX, i64::MAX);
        r.offset_for(1, i64::MIN, -5);
    }
}
