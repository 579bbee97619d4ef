//! Decoding a chunk: open the input at the key frame before the chunk, decode once (or
//! twice when the warm-up cannot be held), filter (deinterlace, rotate) and map the source's
//! timing onto the plan's constant-rate slots.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ffmpeg_next as ff;

use super::captions::{self, CcData, SlotCaptions};
use super::warmup::Warmup;
use super::{ChunkError, ChunkJob};
use crate::pipeline::Damage;
use crate::plan::{Chunk, Plan};

/// What receives each filled slot: the frame, its output frame number and the captions it
/// carries.
pub(super) type SlotSink<'a> =
    dyn FnMut(&Arc<ff::frame::Video>, u64, Option<CcData>, &Pass) -> Result<(), ChunkError> + 'a;

/// What `Slots` hands on for each slot.
type Emit<'a> = dyn FnMut(&Arc<ff::frame::Video>, u64, Option<CcData>) -> Result<(), ChunkError> + 'a;

/// One decode of (part of) a chunk: its output frames `slots`, handed to the rungs as
/// local frame `slot - start - shift` (negative: warm-up).
pub(super) struct Pass {
    slots: std::ops::Range<u64>,
    pub(super) shift: u64,
}

impl Pass {
    /// The passes of `chunk`: a warm-up pass first when its frames are not held (see
    /// [`Warmup`]), then the chunk's own.
    pub(super) fn of(chunk: &Chunk, warmup: Warmup, replay: bool) -> Vec<Pass> {
        let mut passes = Vec::with_capacity(2);
        if warmup.span > 0 && !replay {
            passes.push(Pass { slots: chunk.start_frame..chunk.start_frame + warmup.span, shift: warmup.span });
        }
        passes.push(Pass { slots: chunk.start_frame..chunk.end_frame, shift: 0 });
        passes
    }
}

/// A chunk's demuxer, decoder and picture filter.
pub(super) struct ChunkDecoder<'a> {
    plan: &'a Plan,
    chunk: &'a Chunk,
    input: crate::media::input::Opened,
    decoder: ff::decoder::Video,
    picture: Option<ff::filter::Graph>,
    stream_time_base: ff::Rational,
    /// The video stream's start time, in its time base.
    origin: i64,
    /// The key frame at or before the chunk's start, in `AV_TIME_BASE` units.
    seek_to: i64,
    /// Pictures the decoder produced: the chunk's own and those from the key frame before
    /// it, which a chunk cannot avoid decoding once.
    pub(super) pictures: u64,
}

impl<'a> ChunkDecoder<'a> {
    /// Opens the input and its video decoder, within the run's pixel limit.
    pub(super) fn open(job: &ChunkJob<'a>, chunk: &'a Chunk) -> Result<Self, ChunkError> {
        let (plan, c) = (job.plan, chunk.index);
        let libav = |context| move |source| ChunkError::Libav { chunk: c, context, source };
        let input = crate::media::input::open_with_info(job.input, crate::probe::PROTOCOLS)
            .map_err(libav("opening the input"))?;
        let index = plan.source.video_stream.expect("only a recording with video has chunks");
        let stream = input.stream(index).ok_or(ChunkError::Libav {
            chunk: c,
            context: "finding the video stream",
            source: ff::Error::StreamNotFound,
        })?;
        let stream_time_base = stream.time_base();
        // Time zero is the plan's: the first picture, or the first sound when it starts earlier.
        let origin = (plan.source.start_seconds / f64::from(stream_time_base)).round() as i64;
        let mut context =
            ff::codec::Context::from_parameters(stream.parameters()).map_err(libav("reading codec parameters"))?;
        // SAFETY: plain field of a context not yet opened.
        unsafe { (*context.as_mut_ptr()).max_pixels = i64::try_from(job.max_pixels).unwrap_or(i64::MAX) };
        if job.decoder_threads > 1 {
            context.set_threading(ff::codec::threading::Config {
                kind: ff::codec::threading::Type::Frame,
                count: job.decoder_threads,
                ..Default::default()
            });
        }
        let decoder = context.decoder().video().map_err(libav("opening the decoder"))?;
        let picture = picture_filter(plan, &decoder, stream_time_base).map_err(libav("building the picture filter"))?;
        let start = origin as f64 * f64::from(stream_time_base) + chunk.start_frame as f64 / plan.fps.as_f64();
        let seek_to = (start * f64::from(ff::ffi::AV_TIME_BASE)) as i64;
        Ok(Self { plan, chunk, input, decoder, picture, stream_time_base, origin, seek_to, pictures: 0 })
    }

    /// Bytes of one decoded picture.
    pub(super) fn picture_bytes(&self) -> usize {
        picture_bytes(&self.decoder)
    }

    /// Decodes every pass, handing each filled slot to `sink`.
    pub(super) fn decode(
        &mut self,
        passes: &[Pass],
        cancel: &AtomicBool,
        sink: &mut SlotSink<'_>,
    ) -> Result<(), ChunkError> {
        // What the last pass concealed: the warm-up's packets come again in the chunk's own.
        let mut concealed = 0;
        for (n, pass) in passes.iter().enumerate() {
            if n > 0 {
                self.restart()?;
            }
            let mut damage = Damage::default();
            self.decode_pass(pass, cancel, sink, &mut damage)?;
            concealed = damage.packets;
        }
        if concealed > 0 {
            tracing::warn!(
                chunk = self.chunk.index,
                packets = concealed,
                "concealed damaged video packets: the picture before each is shown in its place"
            );
        }
        Ok(())
    }

    /// Back to the chunk's start, with nothing of the last pass left inside.
    fn restart(&mut self) -> Result<(), ChunkError> {
        self.decoder.flush();
        self.picture = picture_filter(self.plan, &self.decoder, self.stream_time_base)
            .map_err(|source| self.libav("building the picture filter", source))?;
        Ok(())
    }

    fn libav(&self, context: &'static str, source: ff::Error) -> ChunkError {
        ChunkError::Libav { chunk: self.chunk.index, context, source }
    }

    /// One pass: seek, decode until its slots are full (or the input ends), hold the last
    /// frame to the end. Damaged packets are concealed and counted in `damage`; a pass
    /// with no picture at all fails ([`ChunkError::NoPicture`]).
    fn decode_pass(
        &mut self,
        pass: &Pass,
        cancel: &AtomicBool,
        sink: &mut SlotSink<'_>,
        damage: &mut Damage,
    ) -> Result<(), ChunkError> {
        let c = self.chunk.index;
        let libav = |context| move |source| ChunkError::Libav { chunk: c, context, source };
        // (Only a chunk after the first has a warm-up pass.) The first chunk of a trimmed
        // recording seeks too: to the key frame before its start.
        let trimmed = self.plan.trim.as_ref().is_some_and(|t| t.cut_before_seconds > 0.0);
        if self.chunk.start_frame > 0 || trimmed {
            self.input.seek(self.seek_to, ..self.seek_to).map_err(libav("seeking"))?;
        }
        let time_base = f64::from(self.stream_time_base);
        let mut slots = Slots::new(pass.slots.clone(), self.plan.fps.as_f64(), self.origin, time_base);
        let mut emit = |frame: &Arc<ff::frame::Video>, slot: u64, cc: Option<CcData>| sink(frame, slot, cc, pass);
        let pictures = &mut self.pictures;
        // Every picture the decoder gives goes to the slots (and is counted).
        let mut place = |slots: &mut Slots, frame: ff::frame::Video| {
            *pictures += 1;
            slots.place(frame, &mut emit)
        };
        let video_index = self.plan.source.video_stream.expect("only a recording with video has chunks");
        for (s, packet) in self.input.packets() {
            if cancel.load(Ordering::Relaxed) {
                return Err(ChunkError::Interrupted(c));
            }
            if s.index() != video_index {
                continue;
            }
            match self.decoder.send_packet(&packet) {
                Ok(()) => damage.healthy(),
                Err(e) => damage.conceal(e).map_err(libav("decoding"))?,
            }
            concealing(damage, || {
                receive_frames(c, &mut self.decoder, self.picture.as_mut(), &mut |f| place(&mut slots, f))
            })?;
            if slots.is_full() {
                break;
            }
        }
        if !slots.is_full() {
            self.decoder.send_eof().map_err(libav("flushing the decoder"))?;
            concealing(damage, || {
                receive_frames(c, &mut self.decoder, self.picture.as_mut(), &mut |f| place(&mut slots, f))
            })?;
            if let Some(graph) = self.picture.as_mut() {
                push_picture(graph, None).map_err(libav("flushing the picture filter"))?;
                drain_picture(c, graph, &mut |f| place(&mut slots, f))?;
            }
        }
        slots.fill_to_end(&mut emit)?;
        if !slots.is_full() {
            let seconds = |slot: u64| slot as f64 / self.plan.fps.as_f64();
            return Err(ChunkError::NoPicture {
                chunk: c,
                from_seconds: seconds(pass.slots.start),
                to_seconds: seconds(pass.slots.end),
                damaged: damage.packets,
            });
        }
        Ok(())
    }
}

/// Runs `receive` (a [`receive_frames`]) until the decoder has nothing more, concealing the
/// decoding errors damaged packets cause ([`Damage`]).
fn concealing(damage: &mut Damage, mut receive: impl FnMut() -> Result<(), ChunkError>) -> Result<(), ChunkError> {
    loop {
        match receive() {
            Err(ChunkError::Libav { chunk, context: "decoding", source }) => {
                damage.conceal(source).map_err(|source| ChunkError::Libav { chunk, context: "decoding", source })?;
            }
            done => return done,
        }
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
/// dropped when the source runs faster. The frames' closed captions go with the slots
/// ([`SlotCaptions`]).
struct Slots {
    /// Next slot to fill; `end` is exclusive.
    next: u64,
    end: u64,
    /// The pass's slots.
    range: std::ops::Range<u64>,
    captions: SlotCaptions,
    held: Option<Arc<ff::frame::Video>>,
    origin: i64,
    time_base: f64,
    frame_seconds: f64,
}

impl Slots {
    fn new(slots: std::ops::Range<u64>, fps: f64, origin: i64, time_base: f64) -> Self {
        let (next, end, frame_seconds) = (slots.start, slots.end, 1.0 / fps);
        Self {
            next,
            end,
            range: slots,
            captions: SlotCaptions::default(),
            held: None,
            origin,
            time_base,
            frame_seconds,
        }
    }

    fn is_full(&self) -> bool {
        self.next >= self.end
    }

    /// Takes the next source frame (in presentation order), emitting every slot that
    /// ends before it.
    fn place(&mut self, frame: ff::frame::Video, emit: &mut Emit<'_>) -> Result<(), ChunkError> {
        let t = frame.timestamp().or(frame.pts()).map_or(0.0, |ts| (ts - self.origin) as f64 * self.time_base);
        if let (Some(cc), Some(slot)) = (captions::of_frame(&frame), self.slot_of(t)) {
            self.captions.add(slot, &self.range, cc);
        }
        let frame = Arc::new(frame);
        while !self.is_full() && self.ends_before(self.next, t) {
            emit(self.held.as_ref().unwrap_or(&frame), self.next, self.captions.take(self.next))?;
            self.next += 1;
        }
        self.held = Some(frame);
        Ok(())
    }

    /// Slot `n` is over by time `t`: a frame at `t` shows from a later slot on.
    fn ends_before(&self, n: u64, t: f64) -> bool {
        (n as f64 + 0.5) * self.frame_seconds <= t
    }

    /// The slot whose interval holds time `t`: the first that does not end before it. `None`
    /// before slot 0's (a picture before the output's zero: a trimmed start).
    fn slot_of(&self, t: f64) -> Option<u64> {
        if t < -0.5 * self.frame_seconds {
            return None;
        }
        let mut n = (t / self.frame_seconds - 0.5).floor().max(-1.0) as i64 + 1;
        while n > 0 && !self.ends_before(n as u64 - 1, t) {
            n -= 1;
        }
        let mut n = n.max(0) as u64;
        while self.ends_before(n, t) {
            n += 1;
        }
        Some(n)
    }

    /// The source ended early: holds its last frame to the end of the chunk.
    fn fill_to_end(&mut self, emit: &mut Emit<'_>) -> Result<(), ChunkError> {
        while let (false, Some(last)) = (self.is_full(), self.held.as_ref()) {
            emit(last, self.next, self.captions.take(self.next))?;
            self.next += 1;
        }
        Ok(())
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

/// Bytes of one decoded picture (the decoder's size and format; 3 bytes a pixel while the
/// format is not known yet).
fn picture_bytes(decoder: &ff::decoder::Video) -> usize {
    let (w, h) = (decoder.width() as i32, decoder.height() as i32);
    // SAFETY: a pure function of its arguments; it returns a negative error for a format
    // it does not know.
    let bytes = unsafe { ff::ffi::av_image_get_buffer_size(decoder.format().into(), w, h, 1) };
    usize::try_from(bytes).unwrap_or(3 * (w * h).max(0) as usize)
}
