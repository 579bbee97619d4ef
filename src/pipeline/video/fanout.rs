//! The fan-out on the decoding thread: every slot's frame becomes each rung's picture
//! (scaled right after the decode) and goes to the rung's queue; the stills and poster
//! candidates due are taken from it; the warm-up's frames are held and sent again.

use std::sync::Arc;
use std::sync::mpsc::SyncSender;

use ffmpeg_next::{self as ff, format::Pixel, software::scaling};

use super::captions::{CcData, Channels};
use super::decode::Pass;
use super::warmup::Warmup;
use super::{ChunkError, PosterCandidate};
use crate::plan::{Chunk, Plan};
use crate::thumbs;

/// A rung's picture on its way to the rung's encoder.
pub(super) struct RungFrame {
    pub(super) picture: Arc<ff::frame::Video>,
    /// Local frame number (negative: warm-up).
    pub(super) local: i64,
    /// The closed captions the frame carries (the chunk's own frames only).
    pub(super) captions: Option<CcData>,
}

/// A warm-up frame held to be sent again as the chunk's own, with the rung pictures made
/// for the warm-up if it was encoded.
struct Held {
    frame: Arc<ff::frame::Video>,
    slot: u64,
    captions: Option<CcData>,
    made: Option<Vec<Arc<ff::frame::Video>>>,
}

/// Where a chunk's decoded frames go.
pub(super) struct FanOut<'a> {
    chunk: &'a Chunk,
    warmup: Warmup,
    /// The warm-up's frames are held and sent again (one decode serves both).
    replay: bool,
    pictures: Vec<RungPictures>,
    senders: Vec<SyncSender<RungFrame>>,
    thumbnails: Thumbnails<'a>,
    held: Vec<Held>,
    /// The caption channels of the chunk's own frames.
    channels: Channels,
}

impl<'a> FanOut<'a> {
    pub(super) fn new(
        plan: &'a Plan,
        chunk: &'a Chunk,
        warmup: Warmup,
        replay: bool,
        senders: Vec<SyncSender<RungFrame>>,
    ) -> Self {
        let pictures = plan.rungs.iter().map(RungPictures::new).collect();
        let held = Vec::with_capacity(if replay { warmup.span as usize } else { 0 });
        let thumbnails = Thumbnails::new(plan, chunk);
        Self { chunk, warmup, replay, pictures, senders, thumbnails, held, channels: Channels::default() }
    }

    /// Output frame `slot`'s picture and captions, decoded in `pass`: to the rungs (as the
    /// chunk's own frame or a warm-up frame) and to the thumbnails.
    pub(super) fn emit(
        &mut self,
        frame: &Arc<ff::frame::Video>,
        slot: u64,
        captions: Option<CcData>,
        pass: &Pass,
    ) -> Result<(), ChunkError> {
        let local = slot as i64 - self.chunk.start_frame as i64 - pass.shift as i64;
        if self.replay && local < self.warmup.span as i64 {
            return self.hold(frame, slot, captions, local);
        }
        if local >= 0 {
            self.thumbnail(frame, slot)?;
        } else if !self.warmup.encodes(local) {
            return Ok(());
        }
        let made = self.make(frame)?;
        self.send(&made, local, captions)
    }

    /// A frame of the warm-up span while it is held: the warm-up's turn now, then, once the
    /// whole span is here, the chunk's own.
    fn hold(
        &mut self,
        frame: &Arc<ff::frame::Video>,
        slot: u64,
        captions: Option<CcData>,
        local: i64,
    ) -> Result<(), ChunkError> {
        let span = self.warmup.span as i64;
        let warm = local - span;
        let made = if self.warmup.encodes(warm) { Some(self.make(frame)?) } else { None };
        if let Some(made) = &made {
            self.send(made, warm, None)?;
        }
        self.held.push(Held { frame: frame.clone(), slot, captions, made });
        if local + 1 == span {
            for held in std::mem::take(&mut self.held) {
                self.thumbnail(&held.frame, held.slot)?;
                let made = match held.made {
                    Some(made) => made,
                    None => self.make(&held.frame)?,
                };
                self.send(&made, held.slot as i64 - self.chunk.start_frame as i64, held.captions)?;
            }
        }
        Ok(())
    }

    /// Every rung's picture of `frame`, made here while the decoded picture is still in the
    /// cache (see [`RungPictures`]).
    fn make(&mut self, frame: &Arc<ff::frame::Video>) -> Result<Vec<Arc<ff::frame::Video>>, ChunkError> {
        let c = self.chunk.index;
        let scaling = |source| ChunkError::Libav { chunk: c, context: "scaling", source };
        self.pictures.iter_mut().map(|p| p.make(frame).map_err(scaling)).collect()
    }

    /// Local frame `local` to every rung; negative: a warm-up frame, encoded only to settle
    /// the rate control and given no captions.
    fn send(&mut self, made: &[Arc<ff::frame::Video>], local: i64, captions: Option<CcData>) -> Result<(), ChunkError> {
        let captions = captions.filter(|_| local >= 0);
        if let Some(cc) = &captions {
            self.channels.read(cc);
        }
        for (tx, picture) in self.senders.iter().zip(made) {
            let frame = RungFrame { picture: picture.clone(), local, captions: captions.clone() };
            // A rung that stopped has failed: its own error is reported when joined.
            if tx.send(frame).is_err() {
                return Err(ChunkError::RungStopped(self.chunk.index));
            }
        }
        Ok(())
    }

    fn thumbnail(&mut self, frame: &ff::frame::Video, slot: u64) -> Result<(), ChunkError> {
        let c = self.chunk.index;
        self.thumbnails.take(frame, slot).map_err(|source| ChunkError::Thumbnail { chunk: c, source })
    }

    /// The thumbnails taken and the caption channels met. Ending the queues tells each rung
    /// to flush its encoder.
    pub(super) fn finish(self) -> (Thumbnails<'a>, Channels) {
        (self.thumbnails, self.channels)
    }
}

/// A rung's pictures, made on the chunk's decoding thread from each decoded frame: the
/// decoded picture itself when it already has the rung's size and format (the top rung of a
/// ladder as large as the source), else a bicubic scale of it into a recycled frame.
///
/// Scaling here, right after the decode, reads a picture that is still in the CPU's cache;
/// each rung's thread scaling it, up to a queue's length later and after other threads had
/// the CPU, read it back from memory and cost more CPU (docs/performance.md). The rung
/// threads are left with encoding.
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
    pub(super) fn new(rung: &crate::plan::PlannedRung) -> Self {
        Self { width: rung.width, height: rung.height, scaler: None, recycled: Vec::new() }
    }

    /// The rung's picture of `frame`.
    pub(super) fn make(&mut self, frame: &Arc<ff::frame::Video>) -> Result<Arc<ff::frame::Video>, ff::Error> {
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

/// The thumbnails due in a chunk, taken from the decoded (and rotated, deinterlaced)
/// frames as they go by: the stills at their planned frames, the first frame (the poster
/// of last resort) and the first worthy frame from the poster search start on.
pub(super) struct Thumbnails<'a> {
    plan: Option<&'a crate::plan::PlannedThumbnails>,
    /// Index of the next still due.
    next_still: usize,
    pub(super) stills: Vec<(usize, Vec<u8>)>,
    pub(super) posters: Vec<PosterCandidate>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::video::rung::picture_of;
    use crate::pipeline::video::test_pictures::scene;

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
