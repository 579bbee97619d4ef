//! Dead air at a recording's ends: a black or frozen picture *and* silence ("we'll begin
//! shortly" on a muted stream, the frozen last slide after the speakers left), cut when it
//! lasts at least the preset's `[trim] dead_air_seconds`.
//!
//! Detection must not cost a second decode of the recording, so it starts from the sound:
//! the main audio track is decoded (cheap: a few hundred times faster than real time) from
//! each end until its first and last sounds. Only when one end stays silent long enough is
//! the picture decoded, and only over that silent stretch, to find where it starts to move
//! (or stops). A recording with sound at both ends, most of them, costs two short audio
//! reads; the video decode is bounded by the silence found, itself bounded by
//! [`SEARCH_SECONDS`].

use crate::location::Source;
use crate::media::input::Opened;

use ffmpeg_next as ff;
use serde::{Deserialize, Serialize};

use crate::plan::{self, Plan, PlanError};
use crate::preset::Preset;
use crate::probe::{self, Limits, Probe};
use crate::trim::Trim;

/// How far into each end dead air is looked for.
pub const SEARCH_SECONDS: f64 = 600.0;
/// Sound under this peak is silence (-50 dBFS; ffmpeg's `silencedetect` defaults to -60 dB,
/// a room's hum on a muted stream sits around -55).
const SILENCE_PEAK: f32 = 0.003_16;
/// A picture is black when this share of its (sampled) pixels is at most [`BLACK_LUMA`],
/// as ffmpeg's `blackdetect` (`pic_th=0.98`, `pix_th=0.10` of the video range).
const BLACK_SHARE: f64 = 0.98;
const BLACK_LUMA: u8 = 38;
/// A picture is frozen when its (sampled) luma differs from the last by at most this on
/// average (encoding noise of a still picture stays well below it).
const FROZEN_DIFFERENCE: f64 = 1.0;

/// What was cut as dead air.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DeadAir {
    /// The preset's shortest dead air cut.
    pub min_seconds: f64,
    pub cut_before_seconds: f64,
    pub cut_after_seconds: f64,
}

/// Plans `preset` on the recording at `path`, cut as asked (`requested`) or, when nothing
/// is asked and the preset says so, by the dead air at its ends.
pub fn plan(
    path: &Source,
    probe: &Probe,
    preset: &Preset,
    requested: &Trim,
    limits: &Limits,
) -> Result<Plan, PlanError> {
    let Some(min_seconds) = preset.dead_air_seconds.filter(|_| requested.is_none()) else {
        return plan::plan(probe, preset, requested);
    };
    let (first, last) = plan::output_span(probe);
    let found = Detector { path, probe, limits, first, last, min_seconds }.detect();
    let dead_air = DeadAir { min_seconds, cut_before_seconds: found.0, cut_after_seconds: found.1 };
    let trim =
        Trim { start: (found.0 > 0.0).then_some(found.0), end: (found.1 > 0.0).then_some(last - first - found.1) };
    if trim.is_none() {
        return plan::plan(probe, preset, &trim);
    }
    tracing::info!(before = found.0, after = found.1, "dead air is cut from the recording's ends");
    let mut planned = plan::plan(probe, preset, &trim)?;
    if let Some(t) = planned.trim.as_mut() {
        t.requested = Trim::default();
        t.dead_air = Some(dead_air);
    }
    Ok(planned)
}

/// Looks for dead air in the recording's span `[first, last]` (its clock, seconds).
struct Detector<'a> {
    path: &'a Source,
    probe: &'a Probe,
    limits: &'a Limits,
    first: f64,
    last: f64,
    min_seconds: f64,
}

impl Detector<'_> {
    /// Seconds of dead air at the start and at the end (0 when under the minimum). A
    /// recording that cannot be read here is left whole: its chunks will say what is wrong.
    fn detect(&self) -> (f64, f64) {
        let before = self.before().unwrap_or_else(|e| self.unreadable(e));
        let after = self.after().unwrap_or_else(|e| self.unreadable(e));
        // Dead air throughout: nothing is left to cut to.
        if before + after >= self.last - self.first { (0.0, 0.0) } else { (before, after) }
    }

    fn unreadable(&self, e: ff::Error) -> f64 {
        tracing::warn!(error = %e, "looking for dead air: the recording could not be read; nothing is cut");
        0.0
    }

    fn before(&self) -> Result<f64, ff::Error> {
        let window = (self.first, (self.first + SEARCH_SECONDS).min(self.last));
        let sound = match self.audio_stream() {
            Some(index) => sounds(self, index, window, Find::First)?.first.unwrap_or(window.1),
            None => window.1,
        };
        if sound - self.first < self.min_seconds {
            return Ok(0.0);
        }
        let picture = match self.probe.video.as_ref() {
            Some(v) => pictures(self, v.index, (self.first, sound), Find::First)?.first.unwrap_or(sound),
            None => sound,
        };
        let content = sound.min(picture);
        Ok(if content - self.first >= self.min_seconds { content - self.first } else { 0.0 })
    }

    fn after(&self) -> Result<f64, ff::Error> {
        let window = ((self.last - SEARCH_SECONDS).max(self.first), self.last);
        let sound = match self.audio_stream() {
            Some(index) => sounds(self, index, window, Find::Last)?.last_end.unwrap_or(window.0),
            None => window.0,
        };
        if self.last - sound < self.min_seconds {
            return Ok(0.0);
        }
        let picture = match self.probe.video.as_ref() {
            Some(v) => pictures(self, v.index, (sound, self.last), Find::Last)?.last_end.unwrap_or(sound),
            None => sound,
        };
        let content = sound.max(picture);
        Ok(if self.last - content >= self.min_seconds { self.last - content } else { 0.0 })
    }

    fn audio_stream(&self) -> Option<usize> {
        self.probe.audio.as_ref().filter(|a| a.decodable).map(|a| a.index)
    }

    /// The input at the key frame (or packet) before `at` seconds, with `stream`'s decoder.
    fn open(&self, stream: usize, at: f64) -> Result<(Opened, ff::decoder::Decoder), ff::Error> {
        let mut input = probe::open_input(self.path, self.limits).map_err(|_| ff::Error::InvalidData)?;
        if at > self.first + 0.5 {
            let to = ((at - 1.0).max(0.0) * f64::from(ff::ffi::AV_TIME_BASE)) as i64;
            input.seek(to, ..to)?;
        }
        let parameters = input.stream(stream).ok_or(ff::Error::StreamNotFound)?.parameters();
        let mut context = ff::codec::Context::from_parameters(parameters)?;
        // SAFETY: plain field of a context not yet opened.
        unsafe { (*context.as_mut_ptr()).max_pixels = i64::try_from(self.limits.max_pixels).unwrap_or(i64::MAX) };
        Ok((input, context.decoder()))
    }
}

/// What a read of a window looks for: the first (it stops there) or the last.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Find {
    First,
    Last,
}

/// Where something (sound, a moving picture) is within a window: the first time it is
/// there and the end of the last.
#[derive(Default)]
struct Found {
    first: Option<f64>,
    last_end: Option<f64>,
}

impl Found {
    fn mark(&mut self, t: f64, end: f64) {
        self.first.get_or_insert(t);
        self.last_end = Some(end);
    }
}

/// Decodes `stream` from before `from`, handing `each` every frame (in `frame`) and what is
/// found so far, until it answers `false`, or the first find when that is all `find` asks.
/// Damaged packets are skipped: what is around them still counts.
fn scan<F: std::ops::DerefMut<Target = ff::Frame>>(
    input: &mut ff::format::context::Input,
    decoder: &mut ff::decoder::Opened,
    (stream, find): (usize, Find),
    frame: &mut F,
    each: &mut dyn FnMut(&F, &mut Found) -> bool,
) -> Found {
    let mut found = Found::default();
    for (s, packet) in input.packets() {
        if s.index() != stream {
            continue;
        }
        let _ = decoder.send_packet(&packet);
        let mut more = true;
        while decoder.receive_frame(frame).is_ok() {
            more &= each(frame, &mut found);
        }
        if !more || (find == Find::First && found.first.is_some()) {
            return found;
        }
    }
    let _ = decoder.send_eof();
    while decoder.receive_frame(frame).is_ok() {
        each(frame, &mut found);
    }
    found
}

/// Where the sound is within a window.
fn sounds(d: &Detector<'_>, stream: usize, (from, to): (f64, f64), find: Find) -> Result<Found, ff::Error> {
    let (mut input, decoder) = d.open(stream, from)?;
    let mut decoder = decoder.audio()?;
    let time_base = f64::from(input.stream(stream).ok_or(ff::Error::StreamNotFound)?.time_base());
    let mut each = |frame: &ff::frame::Audio, found: &mut Found| {
        let Some(start) = frame.timestamp().or(frame.pts()).map(|t| t as f64 * time_base) else { return true };
        let rate = f64::from(frame.rate().max(1));
        for (n, loud) in loud_samples(frame).into_iter().enumerate() {
            let t = start + n as f64 / rate;
            if loud && (from..to).contains(&t) {
                found.mark(t, t + 1.0 / rate);
            }
        }
        start < to
    };
    Ok(scan(&mut input, &mut decoder, (stream, find), &mut ff::frame::Audio::empty(), &mut each))
}

/// For each sample of `frame`: whether any channel's is over the silence. Reads the sample
/// formats libav's decoders give (float, 16- and 32-bit integer, double; planar or packed).
fn loud_samples(frame: &ff::frame::Audio) -> Vec<bool> {
    use ff::format::Sample;
    let (samples, channels) = (frame.samples(), usize::from(frame.channels()).max(1));
    let mut loud = vec![false; samples];
    let (width, read): (usize, fn(&[u8]) -> f32) = match frame.format() {
        Sample::F32(_) => (4, |b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]])),
        Sample::I16(_) => (2, |b| f32::from(i16::from_ne_bytes([b[0], b[1]])) / 32768.0),
        Sample::I32(_) => (4, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as f32 / 2_147_483_648.0),
        Sample::F64(_) => (8, |b| f64::from_ne_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32),
        // Unsigned 8-bit and others: every sample counts as sound, nothing is cut.
        _ => return vec![true; samples],
    };
    let planar = frame.is_planar();
    for c in 0..channels {
        let (plane, step, offset) = if planar { (c, width, 0) } else { (0, width * channels, c * width) };
        let data = frame.data(plane);
        for (n, is_loud) in loud.iter_mut().enumerate() {
            let at = offset + n * step;
            if let Some(bytes) = data.get(at..at + width) {
                *is_loud |= read(bytes).abs() > SILENCE_PEAK;
            }
        }
    }
    loud
}

/// Where the picture moves within a window. Black pictures never move; the others move
/// when they differ from the last.
fn pictures(d: &Detector<'_>, stream: usize, (from, to): (f64, f64), find: Find) -> Result<Found, ff::Error> {
    let (mut input, decoder) = d.open(stream, from)?;
    let mut decoder = decoder.video()?;
    let time_base = f64::from(input.stream(stream).ok_or(ff::Error::StreamNotFound)?.time_base());
    let frame_seconds = d.probe.video.as_ref().and_then(|v| v.nominal_fps).map_or(1.0 / 30.0, |f| 1.0 / f.as_f64());
    let mut last: Option<Vec<u8>> = None;
    let mut each = |frame: &ff::frame::Video, found: &mut Found| {
        let Some(t) = frame.timestamp().or(frame.pts()).map(|ts| ts as f64 * time_base) else { return true };
        let luma = luma_sample(frame);
        let moving = match (&luma, &last) {
            (None, _) => true,
            (Some(l), _) if is_black(l) => false,
            (Some(l), Some(previous)) => mean_difference(l, previous) > FROZEN_DIFFERENCE,
            // The first picture read: still, until the next shows it moves.
            (Some(_), None) => false,
        };
        if moving && (from..to).contains(&t) {
            found.mark(t, t + frame_seconds);
        }
        last = luma;
        t < to
    };
    Ok(scan(&mut input, &mut decoder, (stream, find), &mut ff::frame::Video::empty(), &mut each))
}

/// Every 4th luma sample of every 4th row, 8-bit; `None` for a format not read here.
fn luma_sample(frame: &ff::frame::Video) -> Option<Vec<u8>> {
    use ff::format::Pixel;
    let shift = match frame.format() {
        Pixel::YUV420P | Pixel::YUVJ420P | Pixel::YUV422P | Pixel::YUVJ422P | Pixel::YUV444P | Pixel::NV12 => 0,
        Pixel::YUV420P10LE | Pixel::YUV422P10LE | Pixel::P010LE => 2,
        _ => return None,
    };
    let (stride, data) = (frame.stride(0), frame.data(0));
    let (width, height) = (frame.width() as usize, frame.height() as usize);
    let mut out = Vec::with_capacity(width * height / 16);
    for y in (0..height).step_by(4) {
        for x in (0..width).step_by(4) {
            out.push(match shift {
                0 => data[y * stride + x],
                _ => (u16::from_le_bytes([data[y * stride + 2 * x], data[y * stride + 2 * x + 1]]) >> shift) as u8,
            });
        }
    }
    Some(out)
}

fn is_black(luma: &[u8]) -> bool {
    let dark = luma.iter().filter(|&&y| y <= BLACK_LUMA).count();
    dark as f64 >= BLACK_SHARE * luma.len() as f64
}

fn mean_difference(a: &[u8], b: &[u8]) -> f64 {
    if a.len() != b.len() || a.is_empty() {
        return f64::INFINITY;
    }
    a.iter().zip(b).map(|(x, y)| u64::from(x.abs_diff(*y))).sum::<u64>() as f64 / a.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn black_and_frozen_pictures_are_told_from_moving_ones() {
        assert!(is_black(&[16; 100]));
        let mut mostly = vec![16u8; 100];
        mostly[0] = 200;
        assert!(is_black(&mostly), "a speck of light is still black");
        mostly[..5].fill(200);
        assert!(!is_black(&mostly));
        let slide = vec![120u8; 100];
        let noisy: Vec<u8> = slide.iter().enumerate().map(|(i, v)| v + (i % 2) as u8).collect();
        assert!(mean_difference(&slide, &noisy) <= FROZEN_DIFFERENCE, "encoding noise is not motion");
        assert!(mean_difference(&slide, &[140u8; 100]) > FROZEN_DIFFERENCE);
    }
}
