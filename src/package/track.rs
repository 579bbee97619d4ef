//! What the manifests know about a stored track: plain data read back from the segments
//! (or from the chunk records), and the measurements every manifest derives from it
//! (durations, bitrates, where the key frames are in time).
//!
//! Everything here is integer arithmetic on ticks and bytes, so that the same ladder always
//! gives byte-identical manifests.

use crate::rate::FrameRate;

/// What the manifests need to know about one stored track (a video rung or the audio).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrackSummary {
    /// Folder under the output root: "v0", "v1", … or "a0".
    pub dir: String,
    pub kind: TrackKind,
    /// RFC 6381 codec string read from the init segment, e.g. "avc1.64001f", "mp4a.40.2".
    pub codec: String,
    /// Ticks per second of the track's media timeline.
    pub timescale: u32,
    /// Presentation time, in ticks, of the track's first sample (the encoder's reorder delay;
    /// decode time starts at 0). DASH uses it as presentationTimeOffset; it is identical, in
    /// seconds, for every track of a ladder.
    pub presentation_offset: u64,
    /// Segments in order, numbers global and contiguous from 0.
    pub segments: Vec<SegmentSummary>,
}

/// A WebVTT subtitle rendition as the manifests describe it: segmented on the grid for
/// HLS, one whole file for DASH.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SubtitleSummary {
    /// The plan's rendition number.
    pub index: usize,
    /// Folder under the output root: "s0", "s1", …
    pub dir: String,
    /// BCP 47.
    pub language: String,
    pub name: String,
    pub forced: bool,
    /// Ticks per second of `segments`' durations (the grid's: the frame rate's numerator).
    pub timescale: u32,
    /// `seg_<index>.vtt`, in order.
    pub segments: Vec<SubtitleSegment>,
    /// Bytes of the whole file.
    pub size: u64,
    pub cues: usize,
}

/// One WebVTT segment, `seg_<index>.vtt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SubtitleSegment {
    pub index: u32,
    /// In ticks of the rendition's timescale.
    pub duration: u64,
    /// Bytes of the file.
    pub size: u64,
}

impl SubtitleSummary {
    /// The highest bitrate of any segment, in bit/s (rounded up).
    pub fn peak_bitrate(&self) -> u64 {
        self.segments.iter().map(|s| bits_per_second(s.size, s.duration, self.timescale)).max().unwrap_or(0)
    }

    /// The whole file's bitrate over `duration` ticks, in bit/s (rounded up).
    pub fn average_bitrate(&self) -> u64 {
        bits_per_second(self.size, self.segments.iter().map(|s| s.duration).sum(), self.timescale)
    }
}

/// Whether a track is video or audio, with what each manifest says about it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum TrackKind {
    Video {
        width: u32,
        height: u32,
        fps: FrameRate,
    },
    Audio {
        sample_rate: u32,
        channels: u32,
        /// RFC 5646 language tag, e.g. "en".
        language: String,
        /// Human-readable name players show, e.g. "English".
        name: String,
        /// Players pick it when the viewer's language is not offered.
        default: bool,
    },
}

/// One stored segment, `seg_<index>.m4s`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SegmentSummary {
    pub index: u32,
    /// tfdt, in ticks.
    pub decode_time: u64,
    /// In ticks.
    pub duration: u64,
    /// Bytes of `seg_<index>.m4s`.
    pub size: u64,
    /// Byte ranges within the segment file of each key frame with its moof (one per GOP), in
    /// order; empty for audio. The I-frame playlist points at these.
    pub key_frames: Vec<ByteRange>,
    /// Ticks from the segment's start to each key frame, parallel to `key_frames`, when
    /// known (a short last segment's GOPs are not all equal). Empty: split evenly.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_frame_times: Vec<u64>,
}

/// `length` bytes from `offset` (the HLS `EXT-X-BYTERANGE` `<length>@<offset>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ByteRange {
    pub offset: u64,
    pub length: u64,
}

/// One key frame placed on the track's timeline: what an I-frame playlist entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyFrameSpan {
    /// The segment whose file holds the key frame.
    pub segment: u32,
    pub range: ByteRange,
    /// Ticks from the start of the track (the first segment's start) to the key frame.
    pub start: u64,
    /// Ticks until the next key frame, or until the end of the track for the last one.
    pub duration: u64,
}

impl SegmentSummary {
    /// `seg_<index>.m4s`, the file's name inside the track's folder.
    pub fn file_name(&self) -> String {
        crate::layout::segment_file(self.index)
    }
}

impl TrackSummary {
    /// Total duration in ticks: the sum of the segment durations (what a player's timeline
    /// adds up to, whatever the tfdt values say).
    pub fn duration(&self) -> u64 {
        self.segments.iter().map(|s| s.duration).sum()
    }

    /// Earliest presentation time, in ticks, of each segment, in order: what DASH's
    /// `S@t` is (DASH-IF IOP), against the decode time `tfdt` carries.
    ///
    /// The first segment's is the track's `presentation_offset`; each later one lies as far
    /// after it as its decode time does. That holds because every segment starts with a
    /// key frame of a closed GOP (the earliest picture it presents, shown `delay` frames
    /// after it is decoded, the same delay in every chunk: checked when stored) or is
    /// audio, whose samples are presented when decoded.
    pub fn presentation_times(&self) -> Vec<u64> {
        let first = self.segments.first().map_or(0, |s| s.decode_time);
        self.segments.iter().map(|s| self.presentation_offset + (s.decode_time - first)).collect()
    }

    /// The longest segment, in ticks (0 without segments).
    pub fn max_segment_duration(&self) -> u64 {
        self.segments.iter().map(|s| s.duration).max().unwrap_or(0)
    }

    /// The measured peak bitrate in bit/s: the highest `size × 8 / duration` over the
    /// segments, rounded up so that it is never below any segment's. Segments without
    /// duration carry no rate and are left out.
    pub fn peak_bitrate(&self) -> u64 {
        self.segments.iter().map(|s| bits_per_second(s.size, s.duration, self.timescale)).max().unwrap_or(0)
    }

    /// The measured average bitrate in bit/s: all bytes × 8 over the whole duration,
    /// rounded up.
    pub fn average_bitrate(&self) -> u64 {
        bits_per_second(self.segments.iter().map(|s| s.size).sum(), self.duration(), self.timescale)
    }

    /// The key frames on the track's timeline, one per entry of the I-frame playlist.
    ///
    /// Each key frame starts at its recorded time within its segment (`key_frame_times`);
    /// without one, a segment's duration is split evenly, in ticks, by its key frame count
    /// (exact with the fixed GOP for all but a short last segment). Each key frame stands
    /// for the time until the next one, so a segment without key frames extends the
    /// previous one; time before the first key frame has no entry.
    pub fn key_frame_spans(&self) -> Vec<KeyFrameSpan> {
        let mut spans: Vec<KeyFrameSpan> = Vec::new();
        let mut segment_start = 0u64;
        for segment in &self.segments {
            if let Some(gop) = segment.duration.checked_div(segment.key_frames.len() as u64) {
                let recorded = segment.key_frame_times.len() == segment.key_frames.len();
                for (k, range) in segment.key_frames.iter().enumerate() {
                    let offset = if recorded { segment.key_frame_times[k] } else { k as u64 * gop };
                    spans.push(KeyFrameSpan {
                        segment: segment.index,
                        range: *range,
                        start: segment_start + offset,
                        duration: 0,
                    });
                }
            }
            segment_start += segment.duration;
        }
        let ends: Vec<u64> = spans.iter().skip(1).map(|s| s.start).chain([segment_start]).collect();
        for (span, end) in spans.iter_mut().zip(ends) {
            span.duration = end - span.start;
        }
        spans
    }

    /// Peak bitrate of the I-frame playlist in bit/s: the highest key frame bytes × 8 over
    /// the time that key frame stands for, rounded up (RFC 8216 §4.3.4.2: an I-frame
    /// "segment" lasts until the next key frame).
    ///
    /// The last key frame stands for at least as long as the longest other one: it is
    /// followed by whatever is left of the recording, often a fraction of a GOP, and
    /// bytes over that leftover are no rate a trick-play client sustains (one key frame
    /// fetched once), yet they would set the peak — several times the real one. Every
    /// other span, the nominal GOP or a short one before a gap, counts as it is.
    pub fn iframe_peak_bitrate(&self) -> u64 {
        let spans = self.key_frame_spans();
        let nominal = spans.iter().rev().skip(1).map(|k| k.duration).max().unwrap_or(0);
        let last = spans.len().saturating_sub(1);
        spans
            .iter()
            .enumerate()
            .map(|(n, k)| {
                let duration = if n == last { k.duration.max(nominal) } else { k.duration };
                bits_per_second(k.range.length, duration, self.timescale)
            })
            .max()
            .unwrap_or(0)
    }

    /// Average bitrate of the I-frame playlist in bit/s: all key frame bytes × 8 over the
    /// time they stand for together, rounded up.
    pub fn iframe_average_bitrate(&self) -> u64 {
        let spans = self.key_frame_spans();
        let bytes = spans.iter().map(|k| k.range.length).sum();
        let ticks = spans.iter().map(|k| k.duration).sum();
        bits_per_second(bytes, ticks, self.timescale)
    }
}

/// `bytes × 8` over `ticks / timescale` seconds in bit/s, rounded up; 0 for no time.
fn bits_per_second(bytes: u64, ticks: u64, timescale: u32) -> u64 {
    if ticks == 0 {
        return 0;
    }
    let bits = u128::from(bytes) * 8 * u128::from(timescale);
    u64::try_from(bits.div_ceil(u128::from(ticks))).unwrap_or(u64::MAX)
}

/// `ticks / timescale` in whole microseconds, rounded half up. Manifests print times from
/// this, so their digits never depend on floating point.
pub(crate) fn ticks_to_micros(ticks: u64, timescale: u32) -> u64 {
    let ts = u128::from(timescale.max(1));
    let micros = (u128::from(ticks) * 2_000_000 + ts) / (2 * ts);
    u64::try_from(micros).unwrap_or(u64::MAX)
}

/// Microseconds as decimal seconds with exactly six decimals: `6.000000`.
pub(crate) fn micros_fixed6(micros: u64) -> String {
    format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

/// A synthetic ladder shaped like a real one, shared by the manifest tests.
#[cfg(test)]
pub(crate) mod fixture {
    use super::*;

    /// Per-segment size factors in percent: real segments vary with the content.
    const VARIATION: [u64; 13] = [100, 118, 92, 131, 104, 87, 112, 96, 125, 101, 90, 108, 97];

    pub(crate) const SEGMENTS: usize = 13;
    pub(crate) const VIDEO_TIMESCALE: u32 = 12800;
    /// 6 s at 12800 ticks/s.
    pub(crate) const SEGMENT_TICKS: u64 = 76_800;
    /// The short last segment: 2.56 s, 64 frames at 25 fps.
    pub(crate) const LAST_SEGMENT_TICKS: u64 = 32_768;

    fn video(dir: &str, width: u32, height: u32, codec: &str, bitrate: u64) -> TrackSummary {
        let fps = FrameRate::new(25, 1).expect("25 fps is valid");
        let segments = (0..SEGMENTS)
            .map(|i| {
                let last = i == SEGMENTS - 1;
                let duration = if last { LAST_SEGMENT_TICKS } else { SEGMENT_TICKS };
                let size = bitrate * duration / u64::from(VIDEO_TIMESCALE) / 8 * VARIATION[i] / 100;
                // 2 s GOPs: three key frames in a full segment, two in the 2.56 s one. An
                // IDR with its moof is roughly a tenth of the GOP's bytes.
                let gops = if last { 2 } else { 3 };
                let key_frames = (0..gops)
                    .map(|g| ByteRange { offset: size * g / gops, length: size / gops / 10 + 600 + g * 37 })
                    .collect();
                SegmentSummary {
                    index: i as u32,
                    decode_time: i as u64 * SEGMENT_TICKS,
                    duration,
                    size,
                    key_frames,
                    key_frame_times: Vec::new(),
                }
            })
            .collect();
        TrackSummary {
            dir: dir.to_owned(),
            kind: TrackKind::Video { width, height, fps },
            codec: codec.to_owned(),
            timescale: VIDEO_TIMESCALE,
            // Two frames of B-frame reorder delay: 0.08 s.
            presentation_offset: 1024,
            segments,
        }
    }

    /// Three rungs (720p, 480p, 360p) at 25 fps, 13 segments of which the last is short.
    pub(crate) fn video_rungs() -> Vec<TrackSummary> {
        vec![
            video("v0", 1280, 720, "avc1.64001f", 3_000_000),
            video("v1", 854, 480, "avc1.64001e", 1_500_000),
            video("v2", 640, 360, "avc1.4d401e", 800_000),
        ]
    }

    /// A WebVTT rendition on the video's grid (at 25 fps: 150 frames a segment, 64 in the
    /// last), in `language`.
    pub(crate) fn subtitles(index: usize, language: &str, name: &str) -> SubtitleSummary {
        let segments = (0..SEGMENTS as u32)
            .map(|index| SubtitleSegment {
                index,
                duration: if index as usize == SEGMENTS - 1 { 64 } else { 150 },
                size: 80 + u64::from(index % 4) * 120,
            })
            .collect();
        SubtitleSummary {
            index,
            dir: format!("s{index}"),
            language: language.to_owned(),
            name: name.to_owned(),
            forced: false,
            timescale: 25,
            segments,
            size: 2_000,
            cues: 20,
        }
    }

    /// AAC at 48 kHz on the same 6 s grid: each segment ends at the first AAC frame (1024
    /// samples) boundary at or after the grid line, so durations are 281 or 282 frames.
    pub(crate) fn audio() -> TrackSummary {
        const FRAME: u64 = 1024;
        const RATE: u64 = 48_000;
        let total_frames = (12 * 6 * RATE + 2_560 * RATE / 1000).div_ceil(FRAME);
        let boundary = |n: u64| (n * 6 * RATE).div_ceil(FRAME).min(total_frames);
        let segments = (0..SEGMENTS as u64)
            .map(|i| {
                let end = if i as usize == SEGMENTS - 1 { total_frames } else { boundary(i + 1) };
                let frames = end - boundary(i);
                SegmentSummary {
                    index: i as u32,
                    // Shifted, like the real audio, to start with the video's presentation.
                    decode_time: 3840 + boundary(i) * FRAME,
                    duration: frames * FRAME,
                    // 128 kbit/s AAC: ~341 bytes a frame, plus moof.
                    size: frames * 341 + 1200 + i % 3,
                    key_frames: Vec::new(),
                    key_frame_times: Vec::new(),
                }
            })
            .collect();
        TrackSummary {
            dir: "a0".to_owned(),
            kind: TrackKind::Audio {
                sample_rate: 48_000,
                channels: 2,
                language: "en".to_owned(),
                name: "English".to_owned(),
                default: true,
            },
            codec: "mp4a.40.2".to_owned(),
            timescale: 48_000,
            // The same 0.08 s as the video.
            presentation_offset: 3840,
            segments,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(index: u32, duration: u64, size: u64, key_frames: &[(u64, u64)]) -> SegmentSummary {
        SegmentSummary {
            index,
            decode_time: 0,
            duration,
            size,
            key_frames: key_frames.iter().map(|&(offset, length)| ByteRange { offset, length }).collect(),
            key_frame_times: Vec::new(),
        }
    }

    fn track(segments: Vec<SegmentSummary>) -> TrackSummary {
        TrackSummary {
            dir: "v0".into(),
            kind: TrackKind::Video { width: 640, height: 360, fps: FrameRate::new(25, 1).expect("valid") },
            codec: "avc1.64001e".into(),
            timescale: 1000,
            presentation_offset: 0,
            segments,
        }
    }

    #[test]
    fn peak_is_the_densest_segment_rounded_up_and_average_is_bytes_over_time() {
        // 1000 bytes in 3 s = 2666.67 bit/s; 1000 bytes in 1 s = 8000 bit/s.
        let t = track(vec![segment(0, 3000, 1000, &[]), segment(1, 1000, 1000, &[])]);
        assert_eq!(t.peak_bitrate(), 8000);
        // 2000 bytes in 4 s.
        assert_eq!(t.average_bitrate(), 4000);
        let t = track(vec![segment(0, 3000, 1000, &[])]);
        assert_eq!(t.peak_bitrate(), 2667);
        assert_eq!(t.average_bitrate(), 2667);
    }

    #[test]
    fn empty_and_zero_length_tracks_have_no_bitrate() {
        assert_eq!(track(vec![]).peak_bitrate(), 0);
        assert_eq!(track(vec![segment(0, 0, 500, &[])]).average_bitrate(), 0);
    }

    #[test]
    fn key_frames_split_a_segment_evenly_and_the_last_takes_the_remainder() {
        let t =
            track(vec![segment(0, 1000, 9000, &[(0, 100), (3000, 90), (6000, 80)]), segment(1, 500, 4000, &[(0, 70)])]);
        let spans = t.key_frame_spans();
        let starts: Vec<u64> = spans.iter().map(|k| k.start).collect();
        let durations: Vec<u64> = spans.iter().map(|k| k.duration).collect();
        assert_eq!(starts, [0, 333, 666, 1000]);
        assert_eq!(durations, [333, 333, 334, 500]);
        assert_eq!(spans[2].range, ByteRange { offset: 6000, length: 80 });
        assert_eq!(spans[3].segment, 1);
    }

    #[test]
    fn recorded_key_frame_times_win_over_the_even_split() {
        // A short last segment of 2 s + 0.56 s GOPs.
        let mut last = segment(0, 2560, 9000, &[(0, 100), (5000, 90)]);
        last.key_frame_times = vec![0, 2000];
        let spans = track(vec![last]).key_frame_spans();
        let durations: Vec<u64> = spans.iter().map(|k| k.duration).collect();
        assert_eq!(durations, [2000, 560]);
    }

    #[test]
    fn a_segment_without_key_frames_extends_the_previous_one() {
        let t = track(vec![segment(0, 1000, 10, &[(0, 5)]), segment(1, 1000, 10, &[]), segment(2, 400, 10, &[(0, 4)])]);
        let durations: Vec<u64> = t.key_frame_spans().iter().map(|k| k.duration).collect();
        assert_eq!(durations, [2000, 400]);
    }

    #[test]
    fn iframe_bitrates_are_key_frame_bytes_over_the_time_each_stands_for() {
        // 100 bytes for 0.5 s = 1600 bit/s; 50 bytes for 1.5 s = 266.67 bit/s.
        let t = track(vec![segment(0, 1000, 1000, &[(0, 100), (500, 50)]), segment(1, 1000, 1000, &[])]);
        assert_eq!(t.iframe_peak_bitrate(), 1600);
        // 150 bytes over 2 s.
        assert_eq!(t.iframe_average_bitrate(), 600);
    }

    #[test]
    fn a_short_last_key_frame_span_counts_as_a_whole_gop_for_the_peak() {
        // GOPs of 1 s; the recording ends 0.1 s after the last key frame. Over its own
        // 0.1 s, that key frame's 100 bytes would be 8000 bit/s, ten times the others'.
        let t = track(vec![segment(0, 2000, 9000, &[(0, 100), (3000, 90)]), segment(1, 100, 900, &[(0, 100)])]);
        assert_eq!(t.key_frame_spans().last().unwrap().duration, 100);
        assert_eq!(t.iframe_peak_bitrate(), 800);
        // A last span longer than the others counts as it is.
        let t = track(vec![segment(0, 1000, 9000, &[(0, 100)]), segment(1, 4000, 900, &[(0, 400)])]);
        assert_eq!(t.iframe_peak_bitrate(), 800);
    }

    #[test]
    fn segments_are_presented_from_the_offset_as_they_are_decoded() {
        let mut t = track(vec![segment(0, 1000, 10, &[]), segment(1, 1000, 10, &[]), segment(2, 400, 10, &[])]);
        for (k, s) in t.segments.iter_mut().enumerate() {
            s.decode_time = k as u64 * 1000;
        }
        // Video: decoded from 0, presented two 40 ms frames later.
        t.presentation_offset = 80;
        assert_eq!(t.presentation_times(), [80, 1080, 2080]);
        // Audio: its decode times were shifted to start at the same instant.
        for s in &mut t.segments {
            s.decode_time += 80;
        }
        assert_eq!(t.presentation_times(), [80, 1080, 2080]);
    }

    #[test]
    fn times_print_from_integers() {
        assert_eq!(micros_fixed6(ticks_to_micros(76_800, 12_800)), "6.000000");
        // 281 AAC frames at 48 kHz: 5.994666… s.
        assert_eq!(micros_fixed6(ticks_to_micros(281 * 1024, 48_000)), "5.994667");
    }
}
