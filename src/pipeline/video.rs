//! One chunk of video: seek to the key frame before the chunk, decode once, turn the
//! source's timing into the plan's constant frame rate, scale to every rung, encode, and
//! package each rung as CMAF fragments (one per GOP) placed on the global timeline.
//!
//! Every chunk is encoded the same way from a closed GOP, so the encoder's B-frame delay
//! is the same in every chunk and every chunk's init segment is byte-identical.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};

use ffmpeg_next::{self as ff, format::Pixel, software::scaling};

use super::{EncodedSegment, close_fragment, open_muxer};
use crate::media::encoder::{self, EncoderError};
use crate::package::cmaf::{self, CmafError};
use crate::plan::{Chunk, Plan};
use crate::preset::Preset;
use crate::quality::QualityTotals;
use crate::thumbs;

/// Why a chunk could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum ChunkError {
    #[error("chunk {chunk}: {context}: {source}")]
    Libav { chunk: u32, context: &'static str, source: ff::Error },
    #[error("chunk {chunk}, rung v{rung}: {source}")]
    Encoder { chunk: u32, rung: usize, source: EncoderError },
    #[error("chunk {chunk}, rung v{rung}: the muxed output is not the expected CMAF: {source}")]
    Package { chunk: u32, rung: usize, source: CmafError },
    #[error("chunk {chunk}, rung v{rung}: expected {expected} fragments (one per GOP), the muxer wrote {found}")]
    FragmentCount { chunk: u32, rung: usize, expected: usize, found: usize },
    #[error("chunk {chunk}: scratch file {path}: {source}")]
    Scratch { chunk: u32, path: String, source: std::io::Error },
    #[error("chunk {chunk}: thumbnail: {source}")]
    Thumbnail { chunk: u32, source: thumbs::ThumbError },
    #[error("chunk {chunk}, rung v{rung}: measuring quality: {source}")]
    Quality { chunk: u32, rung: usize, source: QualityCheckError },
    #[error("chunk {chunk}: starting a rung's thread: {source}")]
    Thread { chunk: u32, source: std::io::Error },
    #[error("chunk {0}: a rung stopped taking frames")]
    RungStopped(u32),
    #[error("chunk {0}: a rung's thread panicked")]
    RungPanicked(u32),
    #[error("chunk {0}: interrupted")]
    Interrupted(u32),
    #[error(
        "chunk {chunk}: no picture from {from_seconds:.3} s to {to_seconds:.3} s could be decoded ({damaged} damaged packets): the recording is broken there"
    )]
    NoPicture { chunk: u32, from_seconds: f64, to_seconds: f64, damaged: u64 },
}

impl ChunkError {
    /// The exit code: what reading and decoding the recording fails on is the input's
    /// doing (retrying fails the same way); encoding, packaging and scratch files are ours.
    pub fn outcome(&self) -> crate::exit::Outcome {
        use crate::exit::Outcome;
        match self {
            Self::Interrupted(_) => Outcome::Interrupted,
            Self::NoPicture { .. } => Outcome::BadInput,
            Self::Libav { context, source, .. } if INPUT_STEPS.contains(context) && super::input_fault(source) => {
                Outcome::BadInput
            }
            _ => Outcome::Transient,
        }
    }
}

/// The steps of [`ChunkError::Libav`] that read the recording.
const INPUT_STEPS: &[&str] = &[
    "opening the input",
    "finding the video stream",
    "reading codec parameters",
    "opening the decoder",
    "building the picture filter",
    "seeking",
    "decoding",
    "flushing the decoder",
    "filtering",
    "flushing the picture filter",
    "scaling",
];

/// One rung's share of a chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RungChunk {
    pub rung: usize,
    /// `init.mp4`: identical in every chunk.
    pub init: Vec<u8>,
    pub timescale: u32,
    /// The encoder's reorder delay in frames: presentation starts this many frames after
    /// decoding. Must equal [`reorder_delay`]'s.
    pub delay_frames: u32,
    pub segments: Vec<EncodedSegment>,
    /// With `--quality`: PSNR/SSIM totals of the chunk's frames.
    pub quality: Option<QualityTotals>,
}

/// Track timescale for a frame rate: a whole number of ticks per frame, at least 10 000
/// ticks per second (25 fps → 10000, 30000/1001 → 30000).
pub fn timescale_for(plan: &Plan) -> (u32, u32) {
    let (num, den) = (plan.fps.num(), plan.fps.den());
    let k = 10_000u32.div_ceil(num).max(1);
    (num * k, den * k)
}

/// The encoder's reorder delay in frames: how far presentation starts after decoding
/// (x264 with B-frames: 1 or 2). Every chunk's encoders have the same, so it is learnt once,
/// from a few black frames at the smallest rung's size, before any chunk starts; the audio
/// track and the DASH manifest are offset by it.
pub fn reorder_delay(plan: &Plan, preset: &Preset) -> Result<u32, EncoderError> {
    crate::media::init();
    let rung = plan.rungs.iter().min_by_key(|r| r.width * r.height).expect("a plan has at least one rung");
    let preset_rung = preset.rungs.iter().find(|p| p.name == rung.name).expect("planned rungs come from the preset");
    let mut spec = preset.encoder_spec(preset_rung, plan.fps, plan.gop_frames, 1);
    spec.width = rung.width;
    spec.height = rung.height;
    let mut encoder = encoder::open_video(&spec)?;
    let mut frame = ff::frame::Video::new(Pixel::YUV420P, rung.width, rung.height);
    for (plane, value) in [(0, 16u8), (1, 128), (2, 128)] {
        frame.data_mut(plane).fill(value);
    }
    let failed = |source| EncoderError::Failed { encoder: spec.encoder.clone(), source };
    let mut packet = ff::Packet::empty();
    let mut sent = 0i64;
    loop {
        match encoder.receive_packet(&mut packet) {
            Ok(()) => {
                let delay = packet.pts().unwrap_or(0) - packet.dts().unwrap_or(0);
                // SVT-AV1 must see its frames through before it is closed.
                encoder.send_eof().map_err(failed)?;
                while encoder.receive_packet(&mut packet).is_ok() {}
                return Ok(delay.max(0) as u32);
            }
            Err(ff::Error::Other { errno: ff::util::error::EAGAIN }) if sent < i64::from(plan.gop_frames) * 4 => {
                frame.set_pts(Some(sent));
                frame.set_kind(if sent == 0 { ff::picture::Type::I } else { ff::picture::Type::None });
                encoder.send_frame(&frame).map_err(failed)?;
                sent += 1;
            }
            Err(ff::Error::Other { errno: ff::util::error::EAGAIN }) if sent >= 0 => {
                encoder.send_eof().map_err(failed)?;
                sent = -1;
            }
            Err(e) => return Err(failed(e)),
        }
    }
}

struct RungPipeline {
    index: usize,
    encoder: ff::encoder::video::Encoder,
    output: ff::format::context::Output,
    path: std::path::PathBuf,
    /// B-frame delay in frames, learnt from the first packet.
    delay: Option<i64>,
    /// The run's presentation delay (`ChunkJob::delay_frames`): at least `delay`, more for
    /// a chunk too short for its encoder to delay it fully.
    presentation_delay: i64,
    packets: usize,
    /// With `--quality`.
    check: Option<QualityCheck>,
}

/// Measures a rung's quality in the same pass: its packets are decoded as they leave the
/// encoder and each picture is compared with the scaled frame the encoder was given.
struct QualityCheck {
    decoder: ff::decoder::Video,
    /// Frames given to the encoder and not yet decoded back, in presentation order.
    references: std::collections::VecDeque<ff::frame::Video>,
    decoded: ff::frame::Video,
    totals: QualityTotals,
}

impl QualityCheck {
    fn new(parameters: ff::codec::Parameters) -> Result<Self, ff::Error> {
        let context = ff::codec::Context::from_parameters(parameters)?;
        Ok(Self {
            decoder: context.decoder().video()?,
            references: std::collections::VecDeque::new(),
            decoded: ff::frame::Video::empty(),
            totals: QualityTotals::default(),
        })
    }

    /// Decodes `packet` (None: the end) and compares every picture it yields.
    fn check(&mut self, packet: Option<&ff::Packet>) -> Result<(), QualityCheckError> {
        match packet {
            Some(p) => self.decoder.send_packet(p)?,
            None => self.decoder.send_eof()?,
        }
        loop {
            match self.decoder.receive_frame(&mut self.decoded) {
                Ok(()) => {
                    // Decoded pictures come out in presentation order, like the references.
                    let reference = self.references.pop_front().ok_or(QualityCheckError::Unmatched)?;
                    self.totals.add_frame(&reference, &self.decoded)?;
                }
                Err(ff::Error::Other { errno: ff::util::error::EAGAIN }) | Err(ff::Error::Eof) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// Why a rung's quality could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum QualityCheckError {
    #[error("decoding the rung's output: {0}")]
    Decode(#[from] ff::Error),
    #[error(transparent)]
    Compare(#[from] crate::quality::QualityError),
    #[error("the decoder returned more pictures than the encoder was given")]
    Unmatched,
}

/// What every chunk of a run shares.
pub struct ChunkJob<'a> {
    pub input: &'a Path,
    pub plan: &'a Plan,
    pub preset: &'a Preset,
    /// Scratch folder for the muxers' files.
    pub scratch: &'a Path,
    /// Threads each rung's encoder may use.
    pub encoder_threads: usize,
    /// Threads the chunk's decoder may use.
    pub decoder_threads: usize,
    /// Set by a signal or by another chunk's failure: stop soon.
    pub cancel: &'a AtomicBool,
    /// Frames encoded so far per rung, in plan order (for progress).
    pub frames_done: &'a [AtomicU64],
    /// Decode every rung's output as it is made and measure PSNR/SSIM against the frames
    /// the encoder was given.
    pub quality: bool,
    /// The run's presentation delay in frames ([`reorder_delay`]): every chunk presents its
    /// first frame this late, even one too short for its encoder to delay it as much.
    pub delay_frames: u32,
    /// Bytes of decoded pictures a chunk may hold to send its warm-up second twice from one
    /// decode ([`REPLAY_BUDGET`]); over it the second is decoded twice.
    pub replay_budget: usize,
}

/// Encodes `chunk` of the plan for every rung.
pub fn encode_chunk(job: &ChunkJob<'_>, chunk: &Chunk) -> Result<ChunkOutput, ChunkError> {
    let ChunkJob { input, plan, decoder_threads, cancel, frames_done, replay_budget, .. } = *job;
    crate::media::init();
    let c = chunk.index;
    let libav = |context| move |source| ChunkError::Libav { chunk: c, context, source };
    let mut ictx = ff::format::input(&input).map_err(libav("opening the input"))?;
    let stream = ictx.stream(plan.source.video_stream).ok_or(ChunkError::Libav {
        chunk: c,
        context: "finding the video stream",
        source: ff::Error::StreamNotFound,
    })?;
    let stream_time_base = stream.time_base();
    let time_base = f64::from(stream_time_base);
    // Time zero is the plan's: the first picture, or the first sound when it starts earlier.
    let origin = (plan.source.start_seconds / time_base).round() as i64;
    let mut context =
        ff::codec::Context::from_parameters(stream.parameters()).map_err(libav("reading codec parameters"))?;
    // SAFETY: plain field of a context not yet opened.
    unsafe { (*context.as_mut_ptr()).max_pixels = crate::probe::Limits::default().max_pixels as i64 };
    if decoder_threads > 1 {
        context.set_threading(ff::codec::threading::Config {
            kind: ff::codec::threading::Type::Frame,
            count: decoder_threads,
            ..Default::default()
        });
    }
    let mut decoder = context.decoder().video().map_err(libav("opening the decoder"))?;
    let mut picture = picture_filter(plan, &decoder, stream_time_base).map_err(libav("building the picture filter"))?;

    let frame_seconds = 1.0 / plan.fps.as_f64();
    // The key frame at or before the chunk's start, in AV_TIME_BASE units.
    let seek_to = {
        let start = origin as f64 * time_base + chunk.start_frame as f64 * frame_seconds;
        (start * f64::from(ff::ffi::AV_TIME_BASE)) as i64
    };
    // The warm-up (a sample of the chunk's first frames, encoded and thrown away) goes to the
    // encoders before the chunk's own frames. Its frames are held and sent again as the
    // chunk's own, so one decode from the key frame serves both; pictures too large to hold
    // a second of are decoded twice instead: one pass for the warm-up, one for the chunk.
    let warmup = Warmup::of(plan, job.preset, chunk);
    let replay = warmup.span > 0 && warmup.span as usize * picture_bytes(&decoder) <= replay_budget;
    let mut passes = Vec::with_capacity(2);
    if warmup.span > 0 && !replay {
        passes.push(Pass { slots: chunk.start_frame..chunk.start_frame + warmup.span, shift: warmup.span });
    }
    passes.push(Pass { slots: chunk.start_frame..chunk.end_frame, shift: 0 });

    let (timescale, ticks_per_frame) = timescale_for(plan);
    let video_index = plan.source.video_stream;
    let mut thumbnails = Thumbnails::new(plan, chunk);
    let rung_job = RungJob { job, chunk, timescale, ticks_per_frame };
    let mut pictures = 0;
    let (decoded, rungs) = std::thread::scope(|s| {
        // Each rung scales and encodes on its own thread, fed the decoded frames through a
        // short queue: one decode, and the chunk's rungs use every CPU it is given.
        let workers: Vec<_> = plan
            .rungs
            .iter()
            .zip(frames_done)
            .map(|(rung, done)| {
                let (tx, rx) = mpsc::sync_channel::<(Arc<ff::frame::Video>, i64)>(FRAME_QUEUE);
                let rung_job = &rung_job;
                let handle = std::thread::Builder::new()
                    .name(format!("ladder-c{c}-v{}", rung.index))
                    .spawn_scoped(s, move || rung_job.encode(rung, rx, done));
                (tx, handle)
            })
            .collect();
        let mut senders = Vec::with_capacity(workers.len());
        let mut handles = Vec::with_capacity(workers.len());
        for (tx, handle) in workers {
            senders.push(tx);
            handles.push(handle);
        }
        let mut rung_pictures: Vec<RungPictures> = plan.rungs.iter().map(RungPictures::new).collect();
        // Every rung's picture of `frame`, made here while the decoded picture is still in
        // the cache (see [`RungPictures`]).
        let mut make = |frame: &Arc<ff::frame::Video>| -> Result<Vec<Arc<ff::frame::Video>>, ChunkError> {
            rung_pictures.iter_mut().map(|p| p.make(frame).map_err(libav("scaling"))).collect()
        };
        // Local frame `local` to every rung; negative: a warm-up frame, encoded only to settle
        // the rate control.
        let send = |made: &[Arc<ff::frame::Video>], local: i64| -> Result<(), ChunkError> {
            for (tx, picture) in senders.iter().zip(made) {
                // A rung that stopped has failed: its own error is reported when joined.
                if tx.send((picture.clone(), local)).is_err() {
                    return Err(ChunkError::RungStopped(c));
                }
            }
            Ok(())
        };
        let mut thumbnail = |frame: &ff::frame::Video, slot: u64| {
            thumbnails.take(frame, slot).map_err(|source| ChunkError::Thumbnail { chunk: c, source })
        };
        let span = warmup.span as i64;
        // The warm-up span's frames, with the rung pictures made for the warm-up if any.
        type Held = (Arc<ff::frame::Video>, u64, Option<Vec<Arc<ff::frame::Video>>>);
        let mut held: Vec<Held> = Vec::with_capacity(if replay { warmup.span as usize } else { 0 });
        let mut emit = |frame: &Arc<ff::frame::Video>, slot: u64, shift: u64| -> Result<(), ChunkError> {
            let local = slot as i64 - chunk.start_frame as i64 - shift as i64;
            if replay && local < span {
                // The warm-up's turn, then, once the whole span is here, the chunk's own.
                let warm = local - span;
                let made = if warmup.encodes(warm) { Some(make(frame)?) } else { None };
                if let Some(made) = &made {
                    send(made, warm)?;
                }
                held.push((frame.clone(), slot, made));
                if local + 1 == span {
                    for (frame, slot, made) in held.drain(..) {
                        thumbnail(&frame, slot)?;
                        let made = if let Some(made) = made { made } else { make(&frame)? };
                        send(&made, slot as i64 - chunk.start_frame as i64)?;
                    }
                }
                return Ok(());
            }
            if local >= 0 {
                thumbnail(frame, slot)?;
            } else if !warmup.encodes(local) {
                return Ok(());
            }
            send(&make(frame)?, local)
        };
        let decoded = (|| {
            for (n, pass) in passes.iter().enumerate() {
                if n > 0 {
                    // Back to the chunk's start, with nothing of the last pass left inside.
                    decoder.flush();
                    picture = picture_filter(plan, &decoder, stream_time_base)
                        .map_err(libav("building the picture filter"))?;
                }
                // (Only a chunk after the first has a warm-up pass.)
                if chunk.start_frame > 0 {
                    ictx.seek(seek_to, ..seek_to).map_err(libav("seeking"))?;
                }
                let mut slots = Slots::new(pass.slots.clone(), plan.fps.as_f64(), origin, time_base);
                let mut damage = super::Damage::default();
                let mut emit = |frame: &Arc<ff::frame::Video>, slot: u64| emit(frame, slot, pass.shift);
                // Every picture the decoder gives goes to the slots (and is counted).
                let mut place = |slots: &mut Slots, frame| {
                    pictures += 1;
                    slots.place(frame, &mut emit)
                };
                for (s, packet) in ictx.packets() {
                    if cancel.load(Ordering::Relaxed) {
                        return Err(ChunkError::Interrupted(c));
                    }
                    if s.index() != video_index {
                        continue;
                    }
                    match decoder.send_packet(&packet) {
                        Ok(()) => damage.healthy(),
                        Err(e) => damage.conceal(e).map_err(libav("decoding"))?,
                    }
                    concealing(&mut damage, || {
                        receive_frames(c, &mut decoder, picture.as_mut(), &mut |f| place(&mut slots, f))
                    })?;
                    if slots.is_full() {
                        break;
                    }
                }
                if !slots.is_full() {
                    decoder.send_eof().map_err(libav("flushing the decoder"))?;
                    concealing(&mut damage, || {
                        receive_frames(c, &mut decoder, picture.as_mut(), &mut |f| place(&mut slots, f))
                    })?;
                    if let Some(graph) = picture.as_mut() {
                        push_picture(graph, None).map_err(libav("flushing the picture filter"))?;
                        drain_picture(c, graph, &mut |f| place(&mut slots, f))?;
                    }
                }
                slots.fill_to_end(&mut emit)?;
                if !slots.is_full() {
                    let seconds = |slot: u64| slot as f64 * frame_seconds;
                    return Err(ChunkError::NoPicture {
                        chunk: c,
                        from_seconds: seconds(pass.slots.start),
                        to_seconds: seconds(pass.slots.end),
                        damaged: damage.packets,
                    });
                }
                if damage.packets > 0 && n + 1 == passes.len() {
                    tracing::warn!(
                        chunk = c,
                        packets = damage.packets,
                        "concealed damaged video packets: the picture before each is shown in its place"
                    );
                }
            }
            Ok(())
        })();
        // The end of the queues tells each rung to flush its encoder (`emit` only borrowed them).
        drop(senders);
        let rungs: Vec<Result<RungChunk, ChunkError>> = handles
            .into_iter()
            .map(|h| match h {
                Ok(handle) => handle.join().unwrap_or(Err(ChunkError::RungPanicked(c))),
                Err(source) => Err(ChunkError::Thread { chunk: c, source }),
            })
            .collect();
        (decoded, rungs)
    });
    // A rung's own failure explains a stopped queue better than the decoder's view of it.
    let rungs: Vec<RungChunk> = match decoded {
        Ok(()) | Err(ChunkError::RungStopped(_)) => rungs.into_iter().collect::<Result<_, _>>()?,
        Err(e) => return Err(e),
    };
    Ok(ChunkOutput { rungs, stills: thumbnails.stills, posters: thumbnails.posters, pictures })
}

/// Frames a chunk's encoders are given: its own and its warm-up's.
pub fn frames_encoded(plan: &Plan, preset: &Preset, chunk: &Chunk) -> u64 {
    chunk.end_frame - chunk.start_frame + Warmup::of(plan, preset, chunk).frames()
}

/// One decode of (part of) a chunk: its output frames `slots`, handed to the rungs as
/// local frame `slot - start - shift` (negative: warm-up).
struct Pass {
    slots: std::ops::Range<u64>,
    shift: u64,
}

/// What a chunk after the first encodes, and throws away, before its own frames, so that
/// the rate control enters the chunk settled, as it does in one encode of the whole
/// recording. Without it every chunk after the first started x264's ABR from its initial
/// guess, which starved the chunk's first key frame: on the 60 s bench (two 30 s chunks) the
/// 240p rung's first GOP of the second chunk was 1.9 dB below one ffmpeg encode's, and the
/// whole encode 0.07-0.15 dB per rung. None for the first chunk, which starts cold in one
/// encode too.
///
/// The warm-up is the chunk's first second, sent to the encoders before the chunk's own
/// frames and then again as them (held from one decode, see [`REPLAY_BUDGET`]; frames from
/// before the chunk would do as well but cost a decode from the key frame before them, often
/// seconds earlier). x264's ABR counts time by time stamps (libavcodec leaves its `b_vfr_input` on),
/// so it settles on the bits a second holds, not on the number of frames it saw: its
/// encoders get one frame in five of that second, at their own time stamps, and its last few
/// in a row. That is 8 frames instead of 25, and it lands closer to one long encode than the
/// whole second did (docs/performance.md). Other encoders get the whole second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Warmup {
    /// The chunk's first frames, sent first as local frames `-span..0`.
    span: u64,
    /// Every `step`-th of them goes to the encoders (1: all of them).
    step: u64,
}

impl Warmup {
    const SECONDS: f64 = 1.0;
    /// Time between the frames x264 is given.
    const STEP_SECONDS: f64 = 0.2;
    /// Warm-up frames given in a row before the chunk's first, so that its first frames get
    /// the decode times of a cold start: x264 takes them from the frames before, up to two
    /// back with B-pyramid (one more for margin).
    const TAIL: i64 = 3;

    pub(crate) fn of(plan: &Plan, preset: &Preset, chunk: &Chunk) -> Self {
        Self::at(plan.fps.as_f64(), &preset.video.encoder, chunk)
    }

    fn at(fps: f64, encoder: &str, chunk: &Chunk) -> Self {
        let span = match chunk.start_frame {
            0 => 0,
            _ => ((fps * Self::SECONDS).round() as u64).min(chunk.end_frame - chunk.start_frame),
        };
        let step = match encoder {
            "libx264" => ((fps * Self::STEP_SECONDS).round() as u64).max(1),
            _ => 1,
        };
        Warmup { span, step }
    }

    /// Whether the warm-up frame at local frame `local` (`-span..0`) goes to the encoders.
    fn encodes(&self, local: i64) -> bool {
        (local + self.span as i64) % self.step as i64 == 0 || local >= -Self::TAIL
    }

    /// Frames the encoders are given.
    fn frames(&self) -> u64 {
        (-(self.span as i64)..0).filter(|&local| self.encodes(local)).count() as u64
    }
}

/// Bytes of decoded pictures a chunk may hold to send its warm-up span twice from one
/// decode: a second of 720p25 is 35 MB, of 1080p30 93 MB (of 2160p25 311 MB: decoded twice).
pub const REPLAY_BUDGET: usize = 128 << 20;

/// Bytes of one decoded picture (the decoder's size and format; 3 bytes a pixel while the
/// format is not known yet).
fn picture_bytes(decoder: &ff::decoder::Video) -> usize {
    let (w, h) = (decoder.width() as i32, decoder.height() as i32);
    // SAFETY: a pure function of its arguments; it returns a negative error for a format
    // it does not know.
    let bytes = unsafe { ff::ffi::av_image_get_buffer_size(decoder.format().into(), w, h, 1) };
    usize::try_from(bytes).unwrap_or(3 * (w * h).max(0) as usize)
}

/// A rung's pictures, made on the chunk's decoding thread from each decoded frame: the
/// decoded picture itself when it already has the rung's size and format (the top rung of a
/// ladder as large as the source), else a bicubic scale of it into a recycled frame.
///
/// Scaling here, right after the decode, reads a picture that is still in the CPU's cache;
/// each rung's thread scaling it, up to a queue's length later and after other threads had
/// the CPU, read it back from memory and took ~25 % more CPU for the same scale as the ffmpeg
/// CLI's decode-then-scale (docs/performance.md). The rung threads are left with encoding.
struct RungPictures {
    width: u32,
    height: u32,
    /// Made from the first frame's format, remade if the source's changes mid-stream.
    scaler: Option<scaling::Context>,
    /// Frames scaled into so far: one its rung is done with is scaled into again, so a
    /// chunk allocates about a queue's length of them.
    recycled: Vec<Arc<ff::frame::Video>>,
}

impl RungPictures {
    fn new(rung: &crate::plan::PlannedRung) -> Self {
        Self { width: rung.width, height: rung.height, scaler: None, recycled: Vec::new() }
    }

    /// The rung's picture of `frame`.
    fn make(&mut self, frame: &Arc<ff::frame::Video>) -> Result<Arc<ff::frame::Video>, ff::Error> {
        let source = (frame.format(), frame.width(), frame.height());
        if source == (Pixel::YUV420P, self.width, self.height) {
            return Ok(frame.clone());
        }
        if self.scaler.as_ref().is_none_or(|s| (s.input().format, s.input().width, s.input().height) != source) {
            let (format, width, height) = source;
            let to = (Pixel::YUV420P, self.width, self.height);
            self.scaler =
                Some(scaling::Context::get(format, width, height, to.0, to.1, to.2, scaling::Flags::BICUBIC)?);
        }
        let scaler = self.scaler.as_mut().expect("made just above when missing");
        // Free: no rung holds it any more, and neither does an encoder (x264 copies its input,
        // but the planes' own reference counts are what say so).
        let free = self.recycled.iter_mut().position(|f| Arc::get_mut(f).is_some_and(is_writable));
        let slot = free.unwrap_or_else(|| {
            self.recycled.push(Arc::new(ff::frame::Video::empty()));
            self.recycled.len() - 1
        });
        let out = Arc::get_mut(&mut self.recycled[slot]).expect("a free frame or a new one has no other owner");
        scaler.run(frame, out)?;
        Ok(self.recycled[slot].clone())
    }
}

/// Whether `frame` has planes that nothing else references.
fn is_writable(frame: &mut ff::frame::Video) -> bool {
    // SAFETY: reads the reference counts of the frame's buffers; `frame` is a valid frame.
    unsafe { ff::ffi::av_frame_is_writable(frame.as_mut_ptr()) > 0 }
}

/// Decoded frames a rung's queue holds: enough to ride out jitter between rungs, few
/// enough that memory does not grow with the speed difference.
const FRAME_QUEUE: usize = 8;

/// What every rung thread of a chunk shares.
struct RungJob<'a> {
    job: &'a ChunkJob<'a>,
    chunk: &'a Chunk,
    timescale: u32,
    ticks_per_frame: u32,
}

impl RungJob<'_> {
    /// A rung's thread: opens its encoder and muxer, scales and encodes every frame it is
    /// sent, and finishes the rung when the queue ends.
    fn encode(
        &self,
        rung: &crate::plan::PlannedRung,
        frames: mpsc::Receiver<(Arc<ff::frame::Video>, i64)>,
        done: &AtomicU64,
    ) -> Result<RungChunk, ChunkError> {
        let (plan, chunk) = (self.job.plan, self.chunk);
        // The rung with the most pixels is the chunk's critical path: the others (and the
        // decoder's spare time) fit around it, so they give way to it on a busy CPU.
        if plan.rungs.iter().any(|r| r.width * r.height > rung.width * rung.height) {
            super::give_way();
        }
        let mut pipeline = self.open(rung)?;
        for (frame, local) in frames {
            feed_rung(&mut pipeline, &frame, local, chunk, plan, self.ticks_per_frame)?;
            if local >= 0 {
                done.fetch_add(1, Ordering::Relaxed);
            }
        }
        finish_rung(pipeline, chunk, plan, self.ticks_per_frame)
    }

    fn open(&self, r: &crate::plan::PlannedRung) -> Result<RungPipeline, ChunkError> {
        let ChunkJob { plan, preset, scratch, encoder_threads, quality, .. } = *self.job;
        let c = self.chunk.index;
        let libav = |context| move |source| ChunkError::Libav { chunk: c, context, source };
        let preset_rung = preset.rungs.iter().find(|p| p.name == r.name).expect("planned rungs come from the preset");
        let mut spec = preset.encoder_spec(preset_rung, plan.fps, plan.gop_frames, encoder_threads);
        spec.width = r.width;
        spec.height = r.height;
        let encoder =
            encoder::open_video(&spec).map_err(|source| ChunkError::Encoder { chunk: c, rung: r.index, source })?;
        let path = scratch.join(format!("chunk{c}-v{}.mp4", r.index));
        let parameters = ff::codec::Parameters::from(&encoder);
        let output = open_muxer(&path, parameters.clone(), self.timescale).map_err(libav("opening the muxer"))?;
        let check = match quality {
            true => Some(QualityCheck::new(parameters).map_err(libav("opening a decoder to measure quality"))?),
            false => None,
        };
        let presentation_delay = i64::from(self.job.delay_frames);
        Ok(RungPipeline { index: r.index, encoder, output, path, delay: None, presentation_delay, packets: 0, check })
    }
}

/// A chunk's encoded rungs and the thumbnails taken from its frames.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkOutput {
    pub rungs: Vec<RungChunk>,
    /// `(n, JPEG)` of each still `t_<n>.jpg` due in this chunk.
    pub stills: Vec<(usize, Vec<u8>)>,
    pub posters: Vec<PosterCandidate>,
    /// Pictures the decoder produced: the chunk's own and those from the key frame before
    /// it, which a chunk cannot avoid decoding once.
    pub pictures: u64,
}

/// A frame that may become the poster.
#[derive(Debug, Clone, PartialEq)]
pub struct PosterCandidate {
    /// Output frame number.
    pub frame: u64,
    /// Neither near-black nor flat. The first frame of the recording is kept either way,
    /// as the fallback when no frame is.
    pub worthy: bool,
    pub jpeg: Vec<u8>,
}

/// The thumbnails due in a chunk, taken from the decoded (and rotated, deinterlaced)
/// frames as they go by: the stills at their planned frames, the first frame (the poster
/// of last resort) and the first worthy frame from the poster search start on.
struct Thumbnails<'a> {
    plan: Option<&'a crate::plan::PlannedThumbnails>,
    /// Index of the next still due.
    next_still: usize,
    stills: Vec<(usize, Vec<u8>)>,
    posters: Vec<PosterCandidate>,
    poster_found: bool,
}

impl<'a> Thumbnails<'a> {
    fn new(plan: &'a Plan, chunk: &Chunk) -> Self {
        let t = plan.thumbnails.as_ref();
        let next_still = t.map_or(0, |t| t.still_frames.partition_point(|&f| f < chunk.start_frame));
        Self { plan: t, next_still, stills: Vec::new(), posters: Vec::new(), poster_found: false }
    }

    fn take(&mut self, frame: &ff::frame::Video, slot: u64) -> Result<(), thumbs::ThumbError> {
        let Some(t) = self.plan else { return Ok(()) };
        if t.still_frames.get(self.next_still) == Some(&slot) {
            self.stills.push((self.next_still, thumbs::encode_jpeg(frame, t.width, t.height)?));
            self.next_still += 1;
        }
        let first = slot == 0;
        if first || (!self.poster_found && slot >= t.poster_search_from_frame) {
            let worthy = thumbs::is_poster_worthy(frame);
            if first || worthy {
                let jpeg = thumbs::encode_jpeg(frame, t.poster_width, t.poster_height)?;
                self.posters.push(PosterCandidate { frame: slot, worthy, jpeg });
                self.poster_found |= worthy && slot >= t.poster_search_from_frame;
            }
        }
        Ok(())
    }
}

/// The filters decoded pictures need before scaling: deinterlacing (yadif, a frame per
/// frame, as the ffmpeg CLI and MediaConvert default to) and the display rotation, so a
/// portrait phone recording is encoded upright. `None` when the source needs neither.
fn picture_filter(
    plan: &Plan,
    decoder: &ff::decoder::Video,
    time_base: ff::Rational,
) -> Result<Option<ff::filter::Graph>, ff::Error> {
    let mut steps = Vec::new();
    if plan.deinterlace {
        steps.push("yadif=mode=send_frame:parity=auto:deint=all");
    }
    match plan.source.rotation {
        90 => steps.push("transpose=clock"),
        180 => steps.push("hflip,vflip"),
        270 => steps.push("transpose=cclock"),
        _ => {}
    }
    if steps.is_empty() {
        return Ok(None);
    }
    let format: ff::ffi::AVPixelFormat = decoder.format().into();
    let sar = decoder.aspect_ratio();
    let (sar_num, sar_den) = if sar.numerator() > 0 { (sar.numerator(), sar.denominator()) } else { (1, 1) };
    let args = format!(
        "video_size={}x{}:pix_fmt={}:time_base={}/{}:pixel_aspect={sar_num}/{sar_den}",
        decoder.width(),
        decoder.height(),
        format as i32,
        time_base.numerator(),
        time_base.denominator()
    );
    let mut graph = ff::filter::Graph::new();
    let buffer = ff::filter::find("buffer").ok_or(ff::Error::FilterNotFound)?;
    let sink = ff::filter::find("buffersink").ok_or(ff::Error::FilterNotFound)?;
    graph.add(&buffer, "in", &args)?;
    graph.add(&sink, "out", "")?;
    graph.output("in", 0)?.input("out", 0)?.parse(&steps.join(","))?;
    graph.validate()?;
    Ok(Some(graph))
}

type OnFrame<'a> = dyn FnMut(ff::frame::Video) -> Result<(), ChunkError> + 'a;

/// Maps source frames to the plan's constant-rate slots: slot n shows the latest source
/// frame at or before n/fps (plus half a frame), so frames are duplicated over gaps and
/// dropped when the source runs faster.
struct Slots {
    /// Next slot to fill; `end` is exclusive.
    next: u64,
    end: u64,
    held: Option<Arc<ff::frame::Video>>,
    origin: i64,
    time_base: f64,
    frame_seconds: f64,
}

impl Slots {
    fn new(slots: std::ops::Range<u64>, fps: f64, origin: i64, time_base: f64) -> Self {
        Self { next: slots.start, end: slots.end, held: None, origin, time_base, frame_seconds: 1.0 / fps }
    }

    fn is_full(&self) -> bool {
        self.next >= self.end
    }

    /// Takes the next source frame (in presentation order), emitting every slot that
    /// ends before it.
    fn place(
        &mut self,
        frame: ff::frame::Video,
        emit: &mut impl FnMut(&Arc<ff::frame::Video>, u64) -> Result<(), ChunkError>,
    ) -> Result<(), ChunkError> {
        let t = frame.timestamp().or(frame.pts()).map_or(0.0, |ts| (ts - self.origin) as f64 * self.time_base);
        let frame = Arc::new(frame);
        while !self.is_full() && (self.next as f64 + 0.5) * self.frame_seconds <= t {
            emit(self.held.as_ref().unwrap_or(&frame), self.next)?;
            self.next += 1;
        }
        self.held = Some(frame);
        Ok(())
    }

    /// The source ended early: holds its last frame to the end of the chunk.
    fn fill_to_end(
        &mut self,
        emit: &mut impl FnMut(&Arc<ff::frame::Video>, u64) -> Result<(), ChunkError>,
    ) -> Result<(), ChunkError> {
        while let (false, Some(last)) = (self.is_full(), self.held.as_ref()) {
            emit(last, self.next)?;
            self.next += 1;
        }
        Ok(())
    }
}

/// Runs `receive` (a [`receive_frames`]) until the decoder has nothing more, concealing the
/// decoding errors damaged packets cause ([`super::Damage`]).
fn concealing(
    damage: &mut super::Damage,
    mut receive: impl FnMut() -> Result<(), ChunkError>,
) -> Result<(), ChunkError> {
    loop {
        match receive() {
            Err(ChunkError::Libav { chunk, context: "decoding", source }) => {
                damage.conceal(source).map_err(|source| ChunkError::Libav { chunk, context: "decoding", source })?;
            }
            done => return done,
        }
    }
}

/// Hands every frame the decoder has ready, through the picture filter when there is one,
/// to `on_frame`.
fn receive_frames(
    chunk: u32,
    decoder: &mut ff::decoder::Video,
    mut picture: Option<&mut ff::filter::Graph>,
    on_frame: &mut OnFrame<'_>,
) -> Result<(), ChunkError> {
    let mut decoded = ff::frame::Video::empty();
    loop {
        match decoder.receive_frame(&mut decoded) {
            Ok(()) => {
                let frame = std::mem::replace(&mut decoded, ff::frame::Video::empty());
                match picture.as_deref_mut() {
                    None => on_frame(frame)?,
                    Some(graph) => {
                        push_picture(graph, Some(&frame)).map_err(|source| ChunkError::Libav {
                            chunk,
                            context: "filtering",
                            source,
                        })?;
                        drain_picture(chunk, graph, on_frame)?;
                    }
                }
            }
            Err(ff::Error::Other { errno: ff::util::error::EAGAIN }) | Err(ff::Error::Eof) => return Ok(()),
            Err(source) => return Err(ChunkError::Libav { chunk, context: "decoding", source }),
        }
    }
}

/// Hands every frame the picture filter has ready to `on_frame`.
fn drain_picture(chunk: u32, graph: &mut ff::filter::Graph, on_frame: &mut OnFrame<'_>) -> Result<(), ChunkError> {
    let mut filtered = ff::frame::Video::empty();
    loop {
        let mut output = graph.get("out").expect("the graph was built with an \"out\" sink");
        match output.sink().frame(&mut filtered) {
            Ok(()) => on_frame(std::mem::replace(&mut filtered, ff::frame::Video::empty()))?,
            Err(ff::Error::Other { errno: ff::util::error::EAGAIN }) | Err(ff::Error::Eof) => return Ok(()),
            Err(source) => return Err(ChunkError::Libav { chunk, context: "filtering", source }),
        }
    }
}

/// Gives the picture filter a decoded frame; `None` flushes it at the end of the input.
fn push_picture(graph: &mut ff::filter::Graph, frame: Option<&ff::frame::Video>) -> Result<(), ff::Error> {
    let mut input = graph.get("in").expect("the graph was built with an \"in\" buffer");
    let mut source = input.source();
    match frame {
        Some(f) => source.add(f),
        None => source.flush(),
    }
}

fn feed_rung(
    r: &mut RungPipeline,
    frame: &ff::frame::Video,
    local: i64,
    chunk: &Chunk,
    plan: &Plan,
    ticks_per_frame: u32,
) -> Result<(), ChunkError> {
    let c = chunk.index;
    let libav = |context| move |source| ChunkError::Libav { chunk: c, context, source };
    // A header of its own for the time stamp and picture type; the planes are shared.
    let mut picture = picture_of(frame).ok_or(ChunkError::Libav {
        chunk: c,
        context: "sharing a picture with the encoder",
        source: ff::Error::Bug,
    })?;
    picture.set_pts(Some(local));
    // A key frame opens every GOP: the grid is the plan's, not the encoder's.
    let key = local >= 0 && local % i64::from(plan.gop_frames) == 0;
    picture.set_kind(if key { ff::picture::Type::I } else { ff::picture::Type::None });
    if let (Some(check), true) = (r.check.as_mut(), local >= 0) {
        check.references.push_back(picture.clone());
    }
    r.encoder.send_frame(&picture).map_err(libav("encoding"))?;
    drain_packets(r, chunk, ticks_per_frame)
}

/// A new reference to `frame`'s picture and nothing else: none of its side data (captions,
/// stereo or region hints the encoder would act on) and none of its properties, like a
/// scaler's output, so a rung's bytes do not depend on whether it was scaled. `None` for a
/// frame without buffers of its own to share (never from a decoder or a filter graph).
fn picture_of(frame: &ff::frame::Video) -> Option<ff::frame::Video> {
    let mut picture = ff::frame::Video::empty();
    // SAFETY: `picture` is a fresh frame with no buffers; each of `frame`'s buffers gets a
    // reference of its own, so the planes stay valid as long as `picture` lives, and
    // `extended_data` points at the frame's own `data` as for any frame of video.
    unsafe {
        let (dst, src) = (picture.as_mut_ptr(), frame.as_ptr());
        if (*src).buf[0].is_null() || !(*src).hw_frames_ctx.is_null() {
            return None;
        }
        (*dst).format = (*src).format;
        (*dst).width = (*src).width;
        (*dst).height = (*src).height;
        for i in 0..(*src).buf.len() {
            if !(*src).buf[i].is_null() {
                (*dst).buf[i] = ff::ffi::av_buffer_ref((*src).buf[i]);
                if (*dst).buf[i].is_null() {
                    return None;
                }
            }
        }
        (*dst).data = (*src).data;
        (*dst).linesize = (*src).linesize;
        (*dst).extended_data = (*dst).data.as_mut_ptr();
    }
    Some(picture)
}

fn drain_packets(r: &mut RungPipeline, chunk: &Chunk, ticks_per_frame: u32) -> Result<(), ChunkError> {
    let c = chunk.index;
    let mut packet = ff::Packet::empty();
    loop {
        match r.encoder.receive_packet(&mut packet) {
            Ok(()) => {
                if packet.pts().is_some_and(|pts| pts < 0) {
                    // Warm-up: the closed GOP at local frame 0 needs none of it.
                    continue;
                }
                if let Some(check) = r.check.as_mut() {
                    check.check(Some(&packet)).map_err(|source| ChunkError::Quality {
                        chunk: c,
                        rung: r.index,
                        source,
                    })?;
                }
                let (pts, dts) = (packet.pts().unwrap_or(0), packet.dts().unwrap_or(0));
                let delay = *r.delay.get_or_insert(pts - dts);
                // Local decode times start at 0; presentation is the run's delay later.
                let tick = i64::from(ticks_per_frame);
                packet.set_pts(Some((pts + delay.max(r.presentation_delay)) * tick));
                packet.set_dts(Some((dts + delay) * tick));
                packet.set_duration(tick);
                packet.set_stream(0);
                if packet.is_key() && r.packets > 0 {
                    close_fragment(&mut r.output).map_err(|source| ChunkError::Libav {
                        chunk: c,
                        context: "closing a fragment",
                        source,
                    })?;
                }
                packet.write(&mut r.output).map_err(|source| ChunkError::Libav {
                    chunk: c,
                    context: "muxing",
                    source,
                })?;
                r.packets += 1;
            }
            Err(ff::Error::Other { errno: ff::util::error::EAGAIN }) | Err(ff::Error::Eof) => return Ok(()),
            Err(source) => return Err(ChunkError::Libav { chunk: c, context: "encoding", source }),
        }
    }
}

fn finish_rung(mut r: RungPipeline, chunk: &Chunk, plan: &Plan, ticks_per_frame: u32) -> Result<RungChunk, ChunkError> {
    let c = chunk.index;
    r.encoder.send_eof().map_err(|source| ChunkError::Libav { chunk: c, context: "flushing the encoder", source })?;
    drain_packets(&mut r, chunk, ticks_per_frame)?;
    if let Some(check) = r.check.as_mut() {
        check.check(None).map_err(|source| ChunkError::Quality { chunk: c, rung: r.index, source })?;
    }
    r.output.write_trailer().map_err(|source| ChunkError::Libav {
        chunk: c,
        context: "finishing the muxer",
        source,
    })?;
    drop(r.output);
    let scratch_err = |source| ChunkError::Scratch { chunk: c, path: r.path.display().to_string(), source };
    let mut bytes = std::fs::read(&r.path).map_err(scratch_err)?;
    std::fs::remove_file(&r.path).map_err(scratch_err)?;
    let package = |source| ChunkError::Package { chunk: c, rung: r.index, source };
    let mut split = cmaf::split(&bytes).map_err(package)?;
    let timescale = cmaf::timescale(&bytes, split.init.clone()).map_err(package)?;
    let frames = chunk.end_frame - chunk.start_frame;
    let expected = frames.div_ceil(u64::from(plan.gop_frames)) as usize;
    if split.fragments.len() != expected {
        return Err(ChunkError::FragmentCount { chunk: c, rung: r.index, expected, found: split.fragments.len() });
    }
    let shift = chunk.start_frame * u64::from(ticks_per_frame);
    for f in split.fragments.iter_mut() {
        cmaf::shift_decode_time(&mut bytes, f, shift).map_err(package)?;
    }
    // Fragment k holds the GOP starting at local frame k × gop; each goes to the segment
    // whose frames it starts in (the last segment may hold an extra, shorter GOP).
    let gop = u64::from(plan.gop_frames);
    let mut fragments = split.fragments.iter().enumerate().peekable();
    let mut segments = Vec::with_capacity((chunk.end_segment - chunk.first_segment) as usize);
    for planned in &plan.segments[chunk.first_segment as usize..chunk.end_segment as usize] {
        let end = planned.start_frame + u64::from(planned.frames) - chunk.start_frame;
        let mut seg = Vec::new();
        let (mut key_frames, mut key_frame_times) = (Vec::new(), Vec::new());
        let (mut decode_time, mut duration) = (None, 0);
        while let Some((_, f)) = fragments.next_if(|(k, _)| (*k as u64) * gop < end) {
            let first = *decode_time.get_or_insert(f.decode_time);
            key_frames.push(seg.len()..seg.len() + f.first_sample_end);
            key_frame_times.push(f.decode_time - first);
            seg.extend_from_slice(&bytes[f.range.clone()]);
            duration += f.duration;
        }
        segments.push(EncodedSegment {
            index: planned.index,
            bytes: seg,
            decode_time: decode_time.unwrap_or(0),
            duration,
            key_frames,
            key_frame_times,
        });
    }
    let delay_frames = r.delay.unwrap_or(0).max(r.presentation_delay).max(0) as u32;
    let quality = r.check.map(|check| check.totals);
    Ok(RungChunk { rung: r.index, init: bytes[split.init].to_vec(), timescale, delay_frames, segments, quality })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A picture with a pattern moving with `n`, carrying what a decoder may attach: a
    /// caption (A53) and colour properties.
    fn decoded_picture(n: usize) -> ff::frame::Video {
        let mut f = picture(160, 96, |x, y, plane| ((x + 2 * y + 3 * n + 50 * plane) % 251) as u8);
        f.set_color_range(ff::util::color::Range::JPEG);
        f.set_color_space(ff::util::color::Space::BT709);
        let caption = [0xfc, 0x94, 0x20, 0xfc, 0x94, 0xae];
        // SAFETY: the side data is allocated with `caption.len()` bytes.
        unsafe {
            let side = ff::ffi::av_frame_new_side_data(
                f.as_mut_ptr(),
                ff::ffi::AVFrameSideDataType::AV_FRAME_DATA_A53_CC,
                caption.len(),
            );
            assert!(!side.is_null());
            std::ptr::copy_nonoverlapping(caption.as_ptr(), (*side).data, caption.len());
        }
        f
    }

    /// Every packet of 30 pictures, each made by `feed` from the decoded one.
    fn encode(feed: &mut dyn FnMut(&ff::frame::Video) -> ff::frame::Video) -> Vec<Vec<u8>> {
        let preset = crate::preset::load_str(crate::preset::builtin_text("small").expect("built in"), "small")
            .expect("the built-in preset loads");
        let mut spec =
            preset.encoder_spec(&preset.rungs[0], crate::rate::FrameRate::new(25, 1).expect("a rate"), 25, 1);
        (spec.width, spec.height) = (160, 96);
        let mut encoder = encoder::open_video(&spec).expect("libx264 opens");
        let mut packets = Vec::new();
        let mut drain = |encoder: &mut ff::encoder::video::Encoder| {
            let mut p = ff::Packet::empty();
            while encoder.receive_packet(&mut p).is_ok() {
                packets.push(p.data().expect("a packet has data").to_vec());
            }
        };
        for n in 0..30 {
            let mut picture = feed(&decoded_picture(n));
            picture.set_pts(Some(n as i64));
            picture.set_kind(if n % 25 == 0 { ff::picture::Type::I } else { ff::picture::Type::None });
            encoder.send_frame(&picture).expect("encodes");
            drain(&mut encoder);
        }
        encoder.send_eof().expect("flushes");
        drain(&mut encoder);
        packets
    }

    #[test]
    fn a_shared_picture_encodes_exactly_like_a_scaled_copy_of_it() {
        crate::media::init();
        let shared = encode(&mut |f| picture_of(f).expect("a decoded frame has buffers"));
        let mut scaler =
            scaling::Context::get(Pixel::YUV420P, 160, 96, Pixel::YUV420P, 160, 96, scaling::Flags::BICUBIC)
                .expect("a scaler");
        let scaled = encode(&mut |f| {
            let mut out = ff::frame::Video::empty();
            scaler.run(f, &mut out).expect("scales");
            out
        });
        assert_eq!(shared.len(), 30);
        assert!(shared == scaled, "the shared picture's packets differ from the scaled copy's");
        // The frame as decoded, side data and all, is not what the scaled rungs see: x264
        // writes its caption into the stream.
        let as_decoded = encode(&mut |f| f.clone());
        assert!(as_decoded != scaled, "the caption should have changed the stream");
    }

    #[test]
    fn a_shared_picture_is_the_same_planes_and_nothing_else() {
        let decoded = decoded_picture(1);
        let shared = picture_of(&decoded).expect("a frame with buffers");
        assert_eq!((shared.format(), shared.width(), shared.height()), (Pixel::YUV420P, 160, 96));
        for plane in 0..3 {
            assert_eq!(shared.data(plane).as_ptr(), decoded.data(plane).as_ptr(), "plane {plane} is not shared");
            assert_eq!(shared.stride(plane), decoded.stride(plane));
        }
        assert!(shared.side_data(ff::frame::side_data::Type::A53CC).is_none());
        assert!(decoded.side_data(ff::frame::side_data::Type::A53CC).is_some());
        assert_eq!(shared.color_range(), ff::util::color::Range::Unspecified);
        drop(decoded);
        // Its own references keep the planes alive.
        assert_eq!(shared.data(0)[3], 6, "the pattern at x = 3, y = 0 of picture 1");
    }

    fn chunk(start_frame: u64, end_frame: u64) -> Chunk {
        Chunk { index: 1, first_segment: 0, end_segment: 1, start_frame, end_frame }
    }

    #[test]
    fn only_chunks_after_the_first_warm_up_and_x264_on_a_sample_of_the_second() {
        let given = |w: Warmup| (-(w.span as i64)..0).filter(|&l| w.encodes(l)).collect::<Vec<_>>();
        assert_eq!(Warmup::at(25.0, "libx264", &chunk(0, 750)).frames(), 0);
        let x264 = Warmup::at(25.0, "libx264", &chunk(750, 1500));
        assert_eq!(given(x264), [-25, -20, -15, -10, -5, -3, -2, -1], "one in five, then the last in a row");
        assert_eq!(x264.frames(), 8);
        let x265 = Warmup::at(25.0, "libx265", &chunk(750, 1500));
        assert_eq!((x265.span, x265.frames()), (25, 25), "other encoders get the whole second");
        // 29.97 fps: a second is 30 frames, one in six.
        let ntsc = Warmup::at(30000.0 / 1001.0, "libx264", &chunk(900, 1800));
        assert_eq!(given(ntsc), [-30, -24, -18, -12, -6, -3, -2, -1]);
        // A chunk shorter than a second warms up on itself.
        assert_eq!(given(Warmup::at(25.0, "libx264", &chunk(750, 760))), [-10, -5, -3, -2, -1]);
        assert_eq!(Warmup::at(25.0, "libx264", &chunk(750, 752)).frames(), 2);
    }

    /// A textured picture panning by one pixel every `pan` pictures: costly to code as a
    /// key frame and, the slower it pans, cheap to predict.
    fn scene(n: u64, pan: u64) -> ff::frame::Video {
        picture(320, 176, |x, y, plane| {
            let (u, v) = ((x as u64 + n / pan) as u32, y as u32);
            let noise = u.wrapping_mul(2_654_435_761) ^ v.wrapping_mul(40_503).rotate_left(7);
            (((noise >> 13) & 0x3f) as usize + (u as usize / 4 + y) % 128 + 40 * plane) as u8
        })
    }

    /// A YUV420P picture whose sample at `(x, y)` of `plane` is `sample(x, y, plane)`
    /// (padding included).
    fn picture(w: u32, h: u32, sample: impl Fn(usize, usize, usize) -> u8) -> ff::frame::Video {
        let mut f = ff::frame::Video::new(Pixel::YUV420P, w, h);
        for plane in 0..3 {
            let (stride, rows) = (f.stride(plane), f.plane_height(plane) as usize);
            let data = f.data_mut(plane);
            for y in 0..rows {
                for x in 0..stride {
                    data[y * stride + x] = sample(x, y, plane);
                }
            }
        }
        f
    }

    /// Size of the key frame at local frame 0 when x264's ABR at 300 kbit/s is given
    /// `(n, local)`: picture `n` of the scene as local frame `local`, in that order.
    fn first_key_frame_bytes(pan: u64, frames: impl Iterator<Item = (u64, i64)>) -> i64 {
        let preset = crate::preset::load_str(crate::preset::builtin_text("small").expect("built in"), "small")
            .expect("the built-in preset loads");
        let mut spec =
            preset.encoder_spec(&preset.rungs[0], crate::rate::FrameRate::new(25, 1).expect("a rate"), 50, 1);
        (spec.width, spec.height) = (320, 176);
        (spec.bitrate_kbps, spec.maxrate_kbps, spec.bufsize_kbit) = (Some(300), 450, 900);
        let mut encoder = encoder::open_video(&spec).expect("libx264 opens");
        let mut key = None;
        let mut drain = |encoder: &mut ff::encoder::video::Encoder| {
            let mut p = ff::Packet::empty();
            while encoder.receive_packet(&mut p).is_ok() {
                if p.pts() == Some(0) {
                    assert!(p.is_key(), "local frame 0 opens a GOP");
                    key = Some(p.size() as i64);
                }
            }
        };
        for (n, local) in frames {
            let mut picture = scene(n, pan);
            picture.set_pts(Some(local));
            let key = local >= 0 && local % 50 == 0;
            picture.set_kind(if key { ff::picture::Type::I } else { ff::picture::Type::None });
            encoder.send_frame(&picture).expect("encodes");
            drain(&mut encoder);
        }
        encoder.send_eof().expect("flushes");
        drain(&mut encoder);
        key.expect("a key frame at local frame 0")
    }

    /// The warm-up's purpose, measured where x264 shows it: the chunk's first key frame.
    #[test]
    fn after_its_warm_up_a_chunk_starts_closer_to_one_long_encode_than_cold() {
        crate::media::init();
        // A chunk starting 8 s into the recording: encoded as part of the whole recording,
        // alone from cold, and alone after its warm-up (its first second again, sampled).
        let start = 200;
        let chunk_frames = || (start..start + 100).map(|n| (n, n as i64 - start as i64));
        let warmup = Warmup::at(25.0, "libx264", &chunk(start, start + 100));
        let span = warmup.span as i64;
        let sample = || (0..span).filter(|k| warmup.encodes(k - span)).map(|k| (start + k as u64, k - span));
        // Slow panning, where a cold start starves the key frame (about half the size), and
        // brisk panning, where it is about right and the warm-up must not overshoot.
        for pan in [8, 2] {
            let whole =
                first_key_frame_bytes(pan, (0..start).map(|n| (n, n as i64 - start as i64)).chain(chunk_frames()));
            let cold = first_key_frame_bytes(pan, chunk_frames());
            let warm = first_key_frame_bytes(pan, sample().chain(chunk_frames()));
            assert!(
                (warm - whole).abs() < (cold - whole).abs(),
                "pan 1/{pan}: key frame {warm} bytes after the warm-up, {cold} cold, {whole} in one encode"
            );
        }
    }

    /// A rung's picture is scaled into a frame again only once nothing holds it: not its
    /// rung (the `Arc`), nor an encoder or quality check (a reference to its planes).
    #[test]
    fn a_rung_picture_is_recycled_only_once_nothing_holds_it() {
        crate::media::init();
        let decoded = |n: u64| Arc::new(scene(n, 1));
        let mut pictures = RungPictures { width: 160, height: 88, scaler: None, recycled: Vec::new() };
        let planes = |f: &ff::frame::Video| f.data(0).as_ptr();
        let first = pictures.make(&decoded(0)).expect("scales");
        let kept = first.data(0).to_vec();
        let second = pictures.make(&decoded(40)).expect("scales");
        assert_ne!(planes(&first), planes(&second), "the first picture is still held");
        assert_eq!(first.data(0), &kept[..], "and was not written over");
        let shared = picture_of(&second).expect("a picture with buffers");
        drop(second);
        let third = pictures.make(&decoded(80)).expect("scales");
        assert_ne!(planes(&third), planes(&shared), "an encoder may still read the second one's planes");
        drop((first, shared, third));
        let fourth = pictures.make(&decoded(120)).expect("scales");
        assert_eq!(pictures.recycled.len(), 3, "nothing held any more: the fourth reuses a frame");
        assert!(pictures.recycled.iter().any(|f| planes(f) == planes(&fourth)));
        // A picture of the rung's own size and format is the decoded frame itself.
        let mut same = RungPictures { width: 320, height: 176, scaler: None, recycled: Vec::new() };
        let frame = decoded(0);
        assert!(Arc::ptr_eq(&same.make(&frame).expect("no scaling"), &frame));
        assert!(same.recycled.is_empty() && same.scaler.is_none());
    }
}
