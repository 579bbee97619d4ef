//! A rung's thread: its encoder and muxer (and, with `--quality`, a decoder measuring what
//! it made), fed the rung's pictures; at the end of the queue, the muxed CMAF split into the
//! chunk's segments on the global timeline.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::ScopedJoinHandle;

use ffmpeg_next as ff;

use super::captions;
use super::fanout::RungFrame;
use super::{ChunkError, ChunkJob, RungChunk, timescale_for};
use crate::media::encoder;
use crate::package::cmaf;
use crate::pipeline::{EncodedSegment, close_fragment, open_muxer};
use crate::plan::{Chunk, Plan};
use crate::quality::QualityTotals;

/// Decoded frames a rung's queue holds: enough to ride out jitter between rungs, few
/// enough that memory does not grow with the speed difference.
const FRAME_QUEUE: usize = 8;

/// What every rung thread of a chunk shares.
pub(super) struct RungJob<'a> {
    job: &'a ChunkJob<'a>,
    chunk: &'a Chunk,
    timescale: u32,
    ticks_per_frame: u32,
}

impl<'a> RungJob<'a> {
    pub(super) fn new(job: &'a ChunkJob<'a>, chunk: &'a Chunk) -> Self {
        let (timescale, ticks_per_frame) = timescale_for(job.plan);
        Self { job, chunk, timescale, ticks_per_frame }
    }

    /// Starts a thread per rung, each fed through its own short queue: one decode, and the
    /// chunk's rungs use every CPU it is given.
    pub(super) fn spawn<'scope>(&'scope self, s: &'scope std::thread::Scope<'scope, '_>) -> RungThreads<'scope> {
        let (plan, c) = (self.job.plan, self.chunk.index);
        let mut threads = RungThreads { senders: Vec::new(), handles: Vec::new() };
        for (rung, done) in plan.rungs.iter().zip(self.job.frames_done) {
            let (tx, rx) = mpsc::sync_channel::<RungFrame>(FRAME_QUEUE);
            let handle = std::thread::Builder::new()
                .name(format!("ladder-c{c}-v{}", rung.index))
                .spawn_scoped(s, move || self.encode(rung, rx, done));
            threads.senders.push(tx);
            threads.handles.push(handle);
        }
        threads
    }

    /// A rung's thread: opens its encoder and muxer, scales and encodes every frame it is
    /// sent, and finishes the rung when the queue ends.
    fn encode(
        &self,
        rung: &crate::plan::PlannedRung,
        frames: mpsc::Receiver<RungFrame>,
        done: &AtomicU64,
    ) -> Result<RungChunk, ChunkError> {
        let (plan, chunk) = (self.job.plan, self.chunk);
        // The rung with the most pixels is the chunk's critical path: the others (and the
        // decoder's spare time) fit around it, so they give way to it on a busy CPU.
        if plan.rungs.iter().any(|r| r.width * r.height > rung.width * rung.height) {
            crate::pipeline::give_way();
        }
        let mut pipeline = self.open(rung)?;
        for frame in frames {
            let local = frame.local;
            feed_rung(&mut pipeline, &frame, chunk, plan, self.ticks_per_frame)?;
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

/// A chunk's rung threads: the queues that feed them and their handles.
pub(super) struct RungThreads<'scope> {
    pub(super) senders: Vec<mpsc::SyncSender<RungFrame>>,
    handles: Vec<std::io::Result<ScopedJoinHandle<'scope, Result<RungChunk, ChunkError>>>>,
}

impl RungThreads<'_> {
    /// Waits for every rung (their queues must have ended) and returns what each made.
    pub(super) fn join(self, chunk: u32) -> Vec<Result<RungChunk, ChunkError>> {
        self.handles
            .into_iter()
            .map(|h| match h {
                Ok(handle) => handle.join().unwrap_or(Err(ChunkError::RungPanicked(chunk))),
                Err(source) => Err(ChunkError::Thread { chunk, source }),
            })
            .collect()
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

fn feed_rung(
    r: &mut RungPipeline,
    frame: &RungFrame,
    chunk: &Chunk,
    plan: &Plan,
    ticks_per_frame: u32,
) -> Result<(), ChunkError> {
    let (c, local) = (chunk.index, frame.local);
    let libav = |context| move |source| ChunkError::Libav { chunk: c, context, source };
    // A header of its own for the time stamp and picture type; the planes are shared.
    let mut picture = picture_of(&frame.picture).ok_or(ChunkError::Libav {
        chunk: c,
        context: "sharing a picture with the encoder",
        source: ff::Error::Bug,
    })?;
    // The source's captions, and no other side data: libx264 writes them as SEI.
    if let Some(cc) = &frame.captions {
        captions::attach(&mut picture, cc).map_err(libav("attaching captions"))?;
    }
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
pub(super) fn picture_of(frame: &ff::frame::Video) -> Option<ff::frame::Video> {
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

/// The process's first encoded picture is logged: start-up time is measured to it
/// (`make bench`, `--streaming`).
static FIRST_PACKET: std::sync::Once = std::sync::Once::new();

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
                FIRST_PACKET.call_once(|| tracing::info!(chunk = c, rung = r.index, "first picture encoded"));
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
    let segments = cut_segments(&bytes, &split.fragments, chunk, plan);
    let delay_frames = r.delay.unwrap_or(0).max(r.presentation_delay).max(0) as u32;
    let quality = r.check.map(|check| check.totals);
    let init = cmaf::with_compatible_brand(&bytes[split.init], cmaf::CMAF_BRAND).map_err(package)?;
    Ok(RungChunk { rung: r.index, init, timescale, delay_frames, segments, quality })
}

/// The chunk's segments from its fragments: fragment k holds the GOP starting at local
/// frame k × gop; each goes to the segment whose frames it starts in (the last segment may
/// hold an extra, shorter GOP).
fn cut_segments(bytes: &[u8], fragments: &[cmaf::Fragment], chunk: &Chunk, plan: &Plan) -> Vec<EncodedSegment> {
    let gop = u64::from(plan.gop_frames);
    let mut fragments = fragments.iter().enumerate().peekable();
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
    segments
}

#[cfg(test)]
mod tests {
    use ffmpeg_next::{format::Pixel, software::scaling};

    use super::*;
    use crate::pipeline::video::test_pictures::picture;

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
}
