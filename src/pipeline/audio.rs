//! The audio rendition: decoded, resampled and AAC-encoded once for the whole recording,
//! then cut on the plan's segment grid.
//!
//! Sync is kept the way players expect from a recording with gaps: every decoded frame is
//! placed at its timestamp (relative to the first video frame, the output's time zero),
//! silence fills gaps and overlaps are trimmed; audio is never stretched. The track starts
//! at the video's presentation delay so both start together.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use ffmpeg_next::{self as ff};

use super::loudness::{self, LoudnessFigures, Measured, Stage};
use super::video::ChunkJob;
use super::{EncodedSegment, close_fragment, open_muxer};
use crate::exit::{ExitClass, Outcome};
use crate::location::Source;
use crate::media::encoder::{self, AudioEncoderSpec, EncoderError};
use crate::package::cmaf::{self, CmafError};
use crate::plan::{Plan, PlannedAudio};
use crate::preset::Loudness;

/// AAC-LC codes 1024 samples per packet.
const AAC_FRAME: u64 = 1024;

/// Timestamp jitter tolerated before silence is inserted or samples are trimmed, in seconds.
const SYNC_TOLERANCE_SECONDS: f64 = 0.010;

/// Why the audio could not be made.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("audio: {context}: {source}")]
    Libav { context: &'static str, source: ff::Error },
    #[error("audio: {0}")]
    Encoder(#[from] EncoderError),
    #[error("audio: the muxed output is not the expected CMAF: {0}")]
    Package(#[from] CmafError),
    #[error("audio: scratch file {path}: {source}")]
    Scratch { path: String, source: std::io::Error },
    #[error("audio: expected {expected} fragments (one per segment), the muxer wrote {found}")]
    FragmentCount { expected: usize, found: usize },
    #[error("audio: normalizing the loudness: {0}")]
    Loudness(#[from] ff::Error),
    #[error("audio: interrupted")]
    Interrupted,
}

impl ExitClass for AudioError {
    /// What reading, decoding and converting the recording's sound fails on is the input's
    /// doing (retrying fails the same way); encoding and packaging are ours.
    fn outcome(&self) -> Outcome {
        const INPUT_STEPS: &[&str] = &[
            "opening the input",
            "finding the audio stream",
            "reading codec parameters",
            "opening the decoder",
            "decoding",
            "flushing the decoder",
            "creating the resampler",
            "resampling",
        ];
        match self {
            Self::Interrupted => Outcome::Interrupted,
            Self::Libav { context, source } if INPUT_STEPS.contains(context) && super::input_fault(source) => {
                Outcome::BadInput
            }
            Self::Encoder(e) => e.outcome(),
            Self::Libav { .. }
            | Self::Loudness(_)
            | Self::Package(_)
            | Self::Scratch { .. }
            | Self::FragmentCount { .. } => Outcome::Transient,
        }
    }
}

/// The audio rendition's init segment, once every segment has been handed out.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioTrack {
    pub init: Vec<u8>,
    pub timescale: u32,
    /// With loudness normalization: what was measured and done.
    pub loudness: Option<LoudnessFigures>,
}

/// Encodes rendition `audio` of the plan, handing each segment to `on_segment` as soon as it is cut (so
/// memory does not grow with the recording's length). `delay_seconds` is the video's
/// presentation delay (see [`super::video::reorder_delay`]): the first audio sample is
/// presented with the first video frame.
pub fn encode_audio(
    job: &ChunkJob<'_>,
    audio: &PlannedAudio,
    delay_seconds: f64,
    on_segment: &mut dyn FnMut(EncodedSegment) -> Result<(), AudioError>,
) -> Result<AudioTrack, AudioError> {
    let ChunkJob { input, plan, preset, scratch, cancel, .. } = *job;
    crate::media::init();
    let normalization = match audio.loudness {
        Some(target) => Some(Normalization::measure(input, plan, audio, target, cancel)?),
        None => None,
    };
    let mut source = AudioSource::open(input, plan, audio)?;
    let spec = AudioEncoderSpec {
        encoder: preset.audio.encoder.clone(),
        bitrate_kbps: audio.bitrate_kbps,
        sample_rate: audio.sample_rate,
        channels: audio.channels,
    };
    let mut encoder = encoder::open_audio(&spec)?;
    let rate = u64::from(audio.sample_rate);
    let path = scratch.join(format!("audio_{}.mp4", audio.index));
    let parameters = ff::codec::Parameters::from(&encoder);
    let mut output = open_muxer(&path, parameters, audio.sample_rate).map_err(libav("opening the muxer"))?;
    let delay = (delay_seconds * rate as f64).round() as u64;
    let mut segmenter = Segmenter::open(&path, plan, delay, on_segment)?;
    segmenter.take(&mut output)?;
    let mut track = Track {
        fifo: Fifo::new(audio.channels as usize),
        resampler: None,
        total_samples: (plan.duration_seconds * rate as f64).round() as u64,
        rate,
        boundaries: segment_boundaries(plan, rate),
        next_pts: 0,
        packets: 0,
        segmenter,
        stage: normalization.as_ref().map(|n| source.stage(&loudness::conformed(audio, &n.plan.chain))),
    };
    source.decode(&mut track, &mut encoder, &mut output, cancel)?;
    track.take(None, None, &mut encoder, &mut output)?;
    // The recording's audio may end before its video: the rest is silence.
    track.fill_silence(track.total_samples, &mut encoder, &mut output)?;
    track.encode_ready(&mut encoder, &mut output, true)?;
    encoder.send_eof().map_err(libav("flushing the encoder"))?;
    track.mux_packets(&mut encoder, &mut output)?;
    output.write_trailer().map_err(libav("finishing the muxer"))?;
    track.segmenter.take(&mut output)?;
    drop(output);
    let loudness = normalization.map(|n| n.figures(track.stage.as_ref()));
    let Segmenter { init, timescale, next, .. } = track.segmenter;
    std::fs::remove_file(&path).map_err(|source| AudioError::Scratch { path: path.display().to_string(), source })?;
    if next != plan.segments.len() {
        return Err(AudioError::FragmentCount { expected: plan.segments.len(), found: next });
    }
    Ok(AudioTrack { init, timescale, loudness })
}

/// A rendition's loudness normalization: the whole track measured, and the gain planned.
struct Normalization {
    target: Loudness,
    input: Measured,
    plan: loudness::Plan,
}

impl Normalization {
    /// Measures the track in a pass of its own (audio only), and plans the gain.
    fn measure(
        input: &Source,
        plan: &Plan,
        audio: &PlannedAudio,
        target: Loudness,
        cancel: &AtomicBool,
    ) -> Result<Self, AudioError> {
        let mut source = AudioSource::open(input, plan, audio)?;
        let mut stage = source.stage(&loudness::conformed(audio, loudness::METER));
        source.meter(&mut stage, cancel)?;
        let measured = stage.meter.measured();
        let planned = loudness::plan(&measured, target);
        tracing::info!(
            audio = audio.index,
            integrated_lufs = measured.integrated_lufs,
            true_peak_dbtp = measured.true_peak_dbtp,
            gain_db = planned.gain_db,
            limited = planned.limited,
            "measured the loudness"
        );
        Ok(Self { target, input: measured, plan: planned })
    }

    /// The report's figures, the output measured by the stage's meter.
    fn figures(self, stage: Option<&Stage>) -> LoudnessFigures {
        let output = stage.map_or(self.input, |s| s.meter.measured());
        LoudnessFigures {
            target_lufs: self.target.target_lufs,
            true_peak_limit_db: self.target.true_peak_db,
            input: self.input,
            gain_db: self.plan.gain_db,
            limited: self.plan.limited,
            output,
        }
    }
}

fn libav(context: &'static str) -> impl Fn(ff::Error) -> AudioError {
    move |source| AudioError::Libav { context, source }
}

/// The recording's audio stream and its decoder.
struct AudioSource {
    input: crate::media::input::Opened,
    decoder: ff::decoder::Audio,
    index: usize,
    time_base: ff::Rational,
    /// The timeline's zero on the recording's clock, in seconds.
    zero: f64,
    /// The output's end, in seconds from zero.
    end: f64,
}

impl AudioSource {
    /// A loudness stage for this stream's decoded frames.
    fn stage(&self, chain: &str) -> Stage {
        Stage::new(chain.to_owned(), self.time_base, self.zero)
    }

    /// Decodes the whole stream through `stage`, for its meter only.
    /// Frames wholly before zero or after the end (a trimmed recording's cuts) are left out.
    fn meter(&mut self, stage: &mut Stage, cancel: &AtomicBool) -> Result<(), AudioError> {
        let mut ignore = |_: &ff::frame::Audio, _: Option<f64>| Ok::<(), AudioError>(());
        let end = self.end;
        self.each_frame(cancel, &mut |frame, at| {
            let seconds = frame.samples() as f64 / f64::from(frame.rate().max(1));
            match at {
                Some(t) if t + seconds <= 0.0 => Ok(true),
                Some(t) if t >= end => Ok(false),
                _ => stage.feed(Some(frame), &mut ignore).map(|()| true),
            }
        })?;
        stage.feed(None, &mut ignore)
    }

    fn open(input: &Source, plan: &Plan, audio: &PlannedAudio) -> Result<Self, AudioError> {
        let input =
            crate::media::input::open_with_info(input, crate::probe::PROTOCOLS).map_err(libav("opening the input"))?;
        // Time zero is the plan's: the first picture, or the first sound when it starts earlier.
        let zero = plan.source.start_seconds;
        let stream = input
            .stream(audio.source_stream)
            .ok_or(AudioError::Libav { context: "finding the audio stream", source: ff::Error::StreamNotFound })?;
        let time_base = stream.time_base();
        let context =
            ff::codec::Context::from_parameters(stream.parameters()).map_err(libav("reading codec parameters"))?;
        let decoder = context.decoder().audio().map_err(libav("opening the decoder"))?;
        let mut source =
            Self { input, decoder, index: audio.source_stream, time_base, zero, end: plan.duration_seconds };
        if plan.trim.as_ref().is_some_and(|t| t.cut_before_seconds > 0.0) {
            source.seek_before_zero();
        }
        Ok(source)
    }

    /// Skips what a trimmed recording cuts from its start: to a second before the output's
    /// zero (the frames before zero are then trimmed by time, to the sample). A container
    /// that cannot seek is read from its start instead.
    fn seek_before_zero(&mut self) {
        let to = ((self.zero - 1.0).max(0.0) * f64::from(ff::ffi::AV_TIME_BASE)) as i64;
        if let Err(e) = self.input.seek(to, ..to) {
            tracing::debug!(error = %e, "the audio cannot seek: read from the start");
        }
    }

    /// Decodes the stream into `track` (encoding what is ready) until it holds the
    /// recording's samples or the stream ends.
    fn decode(
        &mut self,
        track: &mut Track<'_>,
        encoder: &mut ff::encoder::audio::Encoder,
        output: &mut ff::format::context::Output,
        cancel: &AtomicBool,
    ) -> Result<(), AudioError> {
        self.each_frame(cancel, &mut |frame, at| {
            track.take(Some(frame), at, encoder, output)?;
            track.encode_ready(encoder, output, false)?;
            Ok(track.fifo.written < track.total_samples)
        })
    }

    /// Decodes the stream, handing each frame to `each` until it answers `false` or the
    /// stream ends (the decoder's last frames included).
    fn each_frame(&mut self, cancel: &AtomicBool, each: &mut FrameSink<'_>) -> Result<(), AudioError> {
        let (time_base, zero) = (f64::from(self.time_base), self.zero);
        let at = |frame: &ff::frame::Audio| frame.timestamp().or(frame.pts()).map(|ts| ts as f64 * time_base - zero);
        let mut frame = ff::frame::Audio::empty();
        let mut damage = super::Damage::default();
        let mut more = true;
        for (s, packet) in self.input.packets() {
            if cancel.load(Ordering::Relaxed) {
                return Err(AudioError::Interrupted);
            }
            if s.index() != self.index {
                continue;
            }
            match self.decoder.send_packet(&packet) {
                Ok(()) => damage.healthy(),
                Err(e) => damage.conceal(e).map_err(libav("decoding"))?,
            }
            while receive_frame(&mut self.decoder, &mut frame, &mut damage)? {
                more &= each(&frame, at(&frame))?;
            }
            if !more {
                break;
            }
        }
        if more {
            self.decoder.send_eof().map_err(libav("flushing the decoder"))?;
            while more && receive_frame(&mut self.decoder, &mut frame, &mut damage)? {
                more = each(&frame, at(&frame))?;
            }
        }
        if damage.packets > 0 {
            tracing::warn!(
                packets = damage.packets,
                "concealed damaged audio packets: silence is heard in their place"
            );
        }
        Ok(())
    }
}

/// What each decoded frame is handed to, with its time in seconds from the output's zero;
/// it answers whether to go on.
type FrameSink<'a> = dyn FnMut(&ff::frame::Audio, Option<f64>) -> Result<bool, AudioError> + 'a;

/// Reads the muxer's file as it grows: first the init segment, then each fragment as soon
/// as it is closed, handed out as the next segment on the presentation timeline.
struct Segmenter<'a> {
    file: std::fs::File,
    path: String,
    init: Vec<u8>,
    timescale: u32,
    /// The muxer starts the track at decode time 0; it is presented with the video.
    delay: u64,
    plan: &'a Plan,
    /// Index into the plan's segments of the next segment.
    next: usize,
    on_segment: &'a mut dyn FnMut(EncodedSegment) -> Result<(), AudioError>,
}

impl<'a> Segmenter<'a> {
    fn open(
        path: &Path,
        plan: &'a Plan,
        delay: u64,
        on_segment: &'a mut dyn FnMut(EncodedSegment) -> Result<(), AudioError>,
    ) -> Result<Self, AudioError> {
        let file = std::fs::File::open(path)
            .map_err(|source| AudioError::Scratch { path: path.display().to_string(), source })?;
        let path = path.display().to_string();
        Ok(Self { file, path, init: Vec::new(), timescale: 0, delay, plan, next: 0, on_segment })
    }

    /// Flushes what the muxer has written and hands out the new fragments.
    fn take(&mut self, output: &mut ff::format::context::Output) -> Result<(), AudioError> {
        // SAFETY: the muxer's AVIOContext is open until the output is dropped.
        unsafe { ff::ffi::avio_flush((*output.as_mut_ptr()).pb) };
        let mut fresh = Vec::new();
        std::io::Read::read_to_end(&mut self.file, &mut fresh)
            .map_err(|source| AudioError::Scratch { path: self.path.clone(), source })?;
        if fresh.is_empty() {
            return Ok(());
        }
        if self.init.is_empty() {
            let split = cmaf::split(&fresh)?;
            self.timescale = cmaf::timescale(&fresh, split.init.clone())?;
            self.init = fresh[split.init.clone()].to_vec();
            fresh.drain(..split.init.end);
            if fresh.is_empty() {
                return Ok(());
            }
        }
        let mut bytes = [self.init.as_slice(), &fresh].concat();
        let split = cmaf::split(&bytes)?;
        for mut f in split.fragments {
            cmaf::shift_decode_time(&mut bytes, &mut f, self.delay)?;
            let index = self.plan.segments.get(self.next).map_or(u32::MAX, |s| s.index);
            self.next += 1;
            (self.on_segment)(EncodedSegment {
                index,
                bytes: bytes[f.range.clone()].to_vec(),
                decode_time: f.decode_time,
                duration: f.duration,
                key_frames: Vec::new(),
                key_frame_times: Vec::new(),
            })?;
        }
        Ok(())
    }
}

/// The first AAC packet of each segment, plus the end: the audio sample nearest to each
/// segment's start, rounded to a whole packet (audio can only be cut between packets).
fn segment_boundaries(plan: &Plan, rate: u64) -> Vec<u64> {
    plan.segments
        .iter()
        .map(|s| ((s.start_seconds * rate as f64) / AAC_FRAME as f64).round() as u64)
        .chain(std::iter::once(u64::MAX))
        .collect()
}

/// Takes the next decoded frame; `false` when the decoder needs more input. A packet it
/// could not decode is concealed ([`super::Damage`]): its time stays silent.
fn receive_frame(
    decoder: &mut ff::decoder::Audio,
    frame: &mut ff::frame::Audio,
    damage: &mut super::Damage,
) -> Result<bool, AudioError> {
    loop {
        match decoder.receive_frame(frame) {
            Ok(()) => return Ok(true),
            Err(ff::Error::Other { errno: ff::util::error::EAGAIN }) | Err(ff::Error::Eof) => return Ok(false),
            Err(source) => {
                damage.conceal(source).map_err(|source| AudioError::Libav { context: "decoding", source })?
            }
        }
    }
}

/// Resampled planar samples waiting for the encoder.
struct Fifo {
    channels: Vec<Vec<f32>>,
    /// Samples ever pushed (the position of the end of the queue on the output timeline).
    written: u64,
}

impl Fifo {
    fn new(channels: usize) -> Self {
        Self { channels: vec![Vec::new(); channels], written: 0 }
    }

    fn len(&self) -> usize {
        self.channels[0].len()
    }

    fn pad_to(&mut self, position: u64) {
        if position > self.written {
            let n = (position - self.written) as usize;
            for c in &mut self.channels {
                c.resize(c.len() + n, 0.0);
            }
            self.written = position;
        }
    }
}

struct Track<'a> {
    fifo: Fifo,
    /// Made from the first frame, remade if the source's format changes.
    resampler: Option<Resampler>,
    total_samples: u64,
    rate: u64,
    /// First packet of each segment, then `u64::MAX`.
    boundaries: Vec<u64>,
    /// Next packet's number (packet n holds samples n×1024…).
    next_pts: u64,
    /// Packets written to the muxer.
    packets: u64,
    segmenter: Segmenter<'a>,
    /// Loudness normalization between the decoder and the resampler.
    stage: Option<Stage>,
}

impl Track<'_> {
    /// Places a decoded frame, through the loudness stage when there is one; `None` (the end
    /// of the input) places what the stage still holds (its limiter looks ahead).
    fn take(
        &mut self,
        frame: Option<&ff::frame::Audio>,
        at_seconds: Option<f64>,
        encoder: &mut ff::encoder::audio::Encoder,
        output: &mut ff::format::context::Output,
    ) -> Result<(), AudioError> {
        let Some(mut stage) = self.stage.take() else {
            return frame.map_or(Ok(()), |frame| self.place(frame, at_seconds, encoder, output));
        };
        let result = stage.feed(frame, &mut |filtered, at| self.place(filtered, at, encoder, output));
        self.stage = Some(stage);
        result
    }

    /// Resamples `frame` into the queue at its place on the timeline: silence before it when
    /// it starts after what is queued, its start dropped when it overlaps what is queued (or
    /// starts before time zero).
    fn place(
        &mut self,
        frame: &ff::frame::Audio,
        at_seconds: Option<f64>,
        encoder: &mut ff::encoder::audio::Encoder,
        output: &mut ff::format::context::Output,
    ) -> Result<(), AudioError> {
        let source = (frame.format(), frame.channel_layout().bits(), frame.channels(), frame.rate());
        if self.resampler.as_ref().is_none_or(|r| r.source != source) {
            self.resampler = Some(Resampler::new(frame, &self.fifo, self.rate)?);
        }
        let mut overlap = 0;
        if let Some(at) = at_seconds {
            let drift = at * self.rate as f64 - self.fifo.written as f64;
            let tolerance = SYNC_TOLERANCE_SECONDS * self.rate as f64;
            if drift > tolerance {
                self.fill_silence((at * self.rate as f64).round() as u64, encoder, output)?;
            } else if drift < -tolerance {
                overlap = (-drift).round() as usize;
            }
        }
        let queued = self.fifo.len();
        let resampler = self.resampler.as_mut().expect("made just above when missing");
        resampler.convert(frame, &mut self.fifo)?;
        let dropped = overlap.min(self.fifo.len() - queued);
        if dropped > 0 {
            for c in &mut self.fifo.channels {
                c.drain(queued..queued + dropped);
            }
            self.fifo.written -= dropped as u64;
        }
        Ok(())
    }

    /// Silence up to sample `to` (never past the end), a second at a time, each encoded
    /// before the next is made: a gap of an hour (or a timestamp that lies) never sits in
    /// memory whole.
    fn fill_silence(
        &mut self,
        to: u64,
        encoder: &mut ff::encoder::audio::Encoder,
        output: &mut ff::format::context::Output,
    ) -> Result<(), AudioError> {
        let to = to.min(self.total_samples);
        while self.fifo.written < to {
            self.fifo.pad_to(to.min(self.fifo.written + self.rate));
            self.encode_ready(encoder, output, false)?;
        }
        Ok(())
    }

    /// Encodes every whole AAC frame queued (and, at the end, the last partial one), never
    /// past the video's duration.
    fn encode_ready(
        &mut self,
        encoder: &mut ff::encoder::audio::Encoder,
        output: &mut ff::format::context::Output,
        last: bool,
    ) -> Result<(), AudioError> {
        let frame_size = AAC_FRAME as usize;
        loop {
            let encoded = self.next_pts * AAC_FRAME;
            if encoded >= self.total_samples {
                return Ok(());
            }
            let wanted = (self.total_samples - encoded).min(AAC_FRAME) as usize;
            if self.fifo.len() < wanted || (!last && self.fifo.len() < frame_size) {
                return Ok(());
            }
            let take = wanted.min(self.fifo.len());
            let mut frame = ff::frame::Audio::new(
                ff::format::Sample::F32(ff::format::sample::Type::Planar),
                frame_size,
                encoder.channel_layout(),
            );
            frame.set_rate(self.rate as u32);
            for (i, c) in self.fifo.channels.iter_mut().enumerate() {
                let plane = frame.plane_mut::<f32>(i);
                plane[..take].copy_from_slice(&c[..take]);
                plane[take..].fill(0.0);
                c.drain(..take);
            }
            frame.set_pts(Some((self.next_pts * AAC_FRAME) as i64));
            self.next_pts += 1;
            encoder.send_frame(&frame).map_err(|source| AudioError::Libav { context: "encoding", source })?;
            self.mux_packets(encoder, output)?;
        }
    }

    /// Writes every packet the encoder has ready, closing a fragment at each segment start.
    /// Packets before time zero (the encoder's priming) are dropped: the first packet
    /// holds the recording's first samples, presented with the first video frame.
    fn mux_packets(
        &mut self,
        encoder: &mut ff::encoder::audio::Encoder,
        output: &mut ff::format::context::Output,
    ) -> Result<(), AudioError> {
        let mut packet = ff::Packet::empty();
        loop {
            match encoder.receive_packet(&mut packet) {
                Ok(()) => {
                    let pts = packet.pts().unwrap_or(0);
                    if pts < 0 {
                        continue;
                    }
                    let number = pts as u64 / AAC_FRAME;
                    if self.packets > 0 && self.boundaries.contains(&number) {
                        close_fragment(output)
                            .map_err(|source| AudioError::Libav { context: "closing a fragment", source })?;
                    }
                    packet.set_pts(Some(pts));
                    packet.set_dts(Some(pts));
                    packet.set_duration(AAC_FRAME as i64);
                    packet.set_stream(0);
                    packet.write(output).map_err(|source| AudioError::Libav { context: "muxing", source })?;
                    self.packets += 1;
                }
                Err(ff::Error::Other { errno: ff::util::error::EAGAIN }) | Err(ff::Error::Eof) => return Ok(()),
                Err(source) => return Err(AudioError::Libav { context: "encoding", source }),
            }
        }
    }
}

/// libswresample from the source's format to planar float at the output rate and layout,
/// writing straight into the queue.
struct Resampler {
    context: ff::software::resampling::Context,
    source: (ff::format::Sample, u64, u16, u32),
}

impl Resampler {
    fn new(frame: &ff::frame::Audio, fifo: &Fifo, rate: u64) -> Result<Self, AudioError> {
        let layout = match frame.channel_layout() {
            l if l.bits() != 0 => l,
            _ => ff::ChannelLayout::default(i32::from(frame.channels())),
        };
        let out_layout = encoder::audio_layout(fifo.channels.len() as u32);
        let context = ff::software::resampling::Context::get(
            frame.format(),
            layout,
            frame.rate(),
            ff::format::Sample::F32(ff::format::sample::Type::Planar),
            out_layout,
            rate as u32,
        )
        .map_err(|source| AudioError::Libav { context: "creating the resampler", source })?;
        Ok(Self { context, source: (frame.format(), frame.channel_layout().bits(), frame.channels(), frame.rate()) })
    }

    fn convert(&mut self, frame: &ff::frame::Audio, fifo: &mut Fifo) -> Result<(), AudioError> {
        let samples = frame.samples() as i32;
        // SAFETY: the output pointers address `capacity` floats reserved in each channel's
        // queue; swr_convert writes at most that many and reports how many it wrote. The
        // input pointers are the decoded frame's planes, valid for `samples` samples.
        unsafe {
            let swr = self.context.as_mut_ptr();
            let capacity = ff::ffi::swr_get_out_samples(swr, samples).max(0) as usize;
            let mut planes: Vec<*mut u8> = Vec::with_capacity(fifo.channels.len());
            for c in &mut fifo.channels {
                c.reserve(capacity);
                planes.push(c.as_mut_ptr().add(c.len()).cast());
            }
            let input = (*frame.as_ptr()).extended_data as *mut *const u8;
            let n = ff::ffi::swr_convert(swr, planes.as_mut_ptr(), capacity as i32, input, samples);
            if n < 0 {
                return Err(AudioError::Libav { context: "resampling", source: ff::Error::from(n) });
            }
            for c in &mut fifo.channels {
                c.set_len(c.len() + n as usize);
            }
            fifo.written += n as u64;
        }
        Ok(())
    }
}
