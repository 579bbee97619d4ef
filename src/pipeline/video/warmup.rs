//! The warm-up: what a chunk after the first gives its encoders before its own frames.

use crate::plan::{Chunk, Plan};
use crate::preset::Preset;

/// What a chunk after the first encodes, and throws away, before its own frames, so that
/// the rate control enters the chunk settled, as it does in one encode of the whole
/// recording. Without it every chunk after the first started x264's ABR from its initial
/// guess, which starved the chunk's first key frame and cost every rung some quality
/// against one encode (docs/performance.md, "Rate control warm-up"). None for the first
/// chunk, which starts cold in one encode too.
///
/// The warm-up is the chunk's first second, sent to the encoders before the chunk's own
/// frames and then again as them (held from one decode, see [`REPLAY_BUDGET`]; frames from
/// before the chunk would do as well but cost a decode from the key frame before them, often
/// seconds earlier). x264's ABR counts time by time stamps (libavcodec leaves its `b_vfr_input` on),
/// so it settles on the bits a second holds, not on the number of frames it saw: its
/// encoders get one frame in five of that second, at their own time stamps, and its last few
/// in a row: fewer frames than the whole second, and closer to one long encode than it was
/// (docs/performance.md). Other encoders get the whole second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Warmup {
    /// The chunk's first frames, sent first as local frames `-span..0`.
    pub(super) span: u64,
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
    pub(super) fn encodes(&self, local: i64) -> bool {
        (local + self.span as i64) % self.step as i64 == 0 || local >= -Self::TAIL
    }

    /// Frames the encoders are given.
    pub(super) fn frames(&self) -> u64 {
        (-(self.span as i64)..0).filter(|&local| self.encodes(local)).count() as u64
    }
}

/// Bytes of decoded pictures a chunk may hold to send its warm-up span twice from one
/// decode: a second of 1080p30 fits, a second of 2160p is decoded twice.
pub const REPLAY_BUDGET: usize = 128 << 20;

#[cfg(test)]
mod tests {
    use ffmpeg_next as ff;

    use super::*;
    use crate::media::encoder;
    use crate::pipeline::video::test_pictures::scene;

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
}
