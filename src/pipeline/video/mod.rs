//! One chunk of video: seek to the key frame before the chunk, decode once, turn the
//! source's timing into the plan's constant frame rate (`decode`), make every rung's
//! picture on the decoding thread (`fanout`), encode each rung on its own thread and
//! package it as CMAF fragments (one per GOP) placed on the global timeline (`rung`).
//!
//! Every chunk is encoded the same way from a closed GOP, so the encoder's B-frame delay
//! is the same in every chunk and every chunk's init segment is byte-identical.

mod captions;
mod decode;
mod fanout;
mod rung;
mod warmup;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64};

use ffmpeg_next::{self as ff, format::Pixel};

use super::EncodedSegment;
use crate::exit::{ExitClass, Outcome};
use crate::media::encoder::{self, EncoderError};
use crate::package::cmaf::CmafError;
use crate::plan::{Chunk, Plan};
use crate::preset::Preset;
use crate::quality::QualityTotals;
use crate::thumbs;
use decode::{ChunkDecoder, Pass};
use fanout::FanOut;
pub use rung::QualityCheckError;
use rung::RungJob;
pub use warmup::REPLAY_BUDGET;
use warmup::Warmup;

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

impl ExitClass for ChunkError {
    /// What reading and decoding the recording fails on is the input's doing (retrying
    /// fails the same way); encoding, packaging and scratch files are ours.
    fn outcome(&self) -> Outcome {
        match self {
            Self::Interrupted(_) => Outcome::Interrupted,
            Self::NoPicture { .. } => Outcome::BadInput,
            Self::Libav { context, source, .. } if INPUT_STEPS.contains(context) && super::input_fault(source) => {
                Outcome::BadInput
            }
            Self::Encoder { source, .. } => source.outcome(),
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
    // Without pictures (an audio-only recording) the audio starts at zero.
    let Some(rung) = plan.rungs.iter().min_by_key(|r| r.width * r.height) else { return Ok(0) };
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

/// What every chunk of a run shares.
pub struct ChunkJob<'a> {
    pub input: &'a crate::location::Source,
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
    /// Bytes of decoded pictures a chunk may hold to send its warm-up second twice from one
    /// decode ([`REPLAY_BUDGET`]); over it the second is decoded twice.
    pub replay_budget: usize,
    /// The run's presentation delay in frames ([`reorder_delay`]): every chunk presents its
    /// first frame this late, even one too short for its encoder to delay it as much.
    pub delay_frames: u32,
    /// Pixels a decoded picture may have (the run's `--max-pixels`).
    pub max_pixels: u64,
}

/// Encodes `chunk` of the plan for every rung.
pub fn encode_chunk(job: &ChunkJob<'_>, chunk: &Chunk) -> Result<ChunkOutput, ChunkError> {
    crate::media::init();
    let mut decoder = ChunkDecoder::open(job, chunk)?;
    // The warm-up (a sample of the chunk's first frames, encoded and thrown away) goes to the
    // encoders before the chunk's own frames. Its frames are held and sent again as the
    // chunk's own, so one decode from the key frame serves both; pictures too large to hold
    // a second of are decoded twice instead: one pass for the warm-up, one for the chunk.
    let warmup = Warmup::of(job.plan, job.preset, chunk);
    let replay = warmup.span > 0 && warmup.span as usize * decoder.picture_bytes() <= job.replay_budget;
    let passes = Pass::of(chunk, warmup, replay);
    let rung_job = RungJob::new(job, chunk);
    let (decoded, thumbnails, rungs) = std::thread::scope(|s| {
        let mut threads = rung_job.spawn(s);
        let mut fanout = FanOut::new(job.plan, chunk, warmup, replay, std::mem::take(&mut threads.senders));
        let decoded =
            decoder.decode(&passes, job.cancel, &mut |frame, slot, cc, pass| fanout.emit(frame, slot, cc, pass));
        // Ending the queues tells each rung to flush its encoder.
        let thumbnails = fanout.finish();
        (decoded, thumbnails, threads.join(chunk.index))
    });
    // A rung's own failure explains a stopped queue better than the decoder's view of it.
    let rungs: Vec<RungChunk> = match decoded {
        Ok(()) | Err(ChunkError::RungStopped(_)) => rungs.into_iter().collect::<Result<_, _>>()?,
        Err(e) => return Err(e),
    };
    let (thumbnails, channels) = thumbnails;
    let captions = channels.instream_ids();
    Ok(ChunkOutput {
        rungs,
        stills: thumbnails.stills,
        posters: thumbnails.posters,
        pictures: decoder.pictures,
        captions,
    })
}

/// Frames a chunk's encoders are given: its own and its warm-up's.
pub fn frames_encoded(plan: &Plan, preset: &Preset, chunk: &Chunk) -> u64 {
    chunk.end_frame - chunk.start_frame + Warmup::of(plan, preset, chunk).frames()
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
    /// The closed-caption channels its frames carry, as HLS's `INSTREAM-ID`s (`CC1`,
    /// `SERVICE1`), carried into every H.264 rung.
    pub captions: Vec<String>,
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

#[cfg(test)]
mod test_pictures {
    use ffmpeg_next::{self as ff, format::Pixel};

    /// A textured picture panning by one pixel every `pan` pictures: costly to code as a
    /// key frame and, the slower it pans, cheap to predict.
    pub(super) fn scene(n: u64, pan: u64) -> ff::frame::Video {
        picture(320, 176, |x, y, plane| {
            let (u, v) = ((x as u64 + n / pan) as u32, y as u32);
            let noise = u.wrapping_mul(2_654_435_761) ^ v.wrapping_mul(40_503).rotate_left(7);
            (((noise >> 13) & 0x3f) as usize + (u as usize / 4 + y) % 128 + 40 * plane) as u8
        })
    }

    /// A YUV420P picture whose sample at `(x, y)` of `plane` is `sample(x, y, plane)`
    /// (padding included).
    pub(super) fn picture(w: u32, h: u32, sample: impl Fn(usize, usize, usize) -> u8) -> ff::frame::Video {
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
}
