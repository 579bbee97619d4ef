//! WebVTT out: a segment of the grid for HLS (RFC 8216 §3.5), and a whole file for DASH.
//!
//! Cue times are on the output's timeline in every file (0 = the first frame), as
//! ffmpeg's HLS segmenter and Apple's `mediafilesegmenter` write them. In HLS the
//! `X-TIMESTAMP-MAP` of each segment maps `LOCAL:00:00:00.000` to the media's presentation
//! time of that first frame (the encoder's reorder delay, in 90 kHz), so a player lines
//! cues up with the fMP4 segments' own timestamps. In DASH the Period starts at the first
//! frame (`presentationTimeOffset`), so the whole file needs no map.

use std::fmt::Write as _;

use super::Cue;

/// One segment `[start_ms, end_ms)`: every cue shown in it, a cue across an edge in both
/// segments (players drop the repeat). `mpegts` is the first frame's presentation time in
/// 90 kHz ticks.
pub(crate) fn segment(cues: &[Cue], (start_ms, end_ms): (i64, i64), mpegts: u64) -> String {
    let mut out = format!("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:{mpegts},LOCAL:00:00:00.000\n");
    for cue in cues.iter().filter(|c| c.start_ms < end_ms && c.end_ms > start_ms) {
        write_cue(&mut out, cue);
    }
    out
}

/// Every cue in one file.
pub(crate) fn whole(cues: &[Cue]) -> String {
    let mut out = String::from("WEBVTT\n");
    for cue in cues {
        write_cue(&mut out, cue);
    }
    out
}

fn write_cue(out: &mut String, cue: &Cue) {
    let _ = write!(out, "\n{} --> {}", timestamp(cue.start_ms), timestamp(cue.end_ms));
    if !cue.settings.is_empty() {
        let _ = write!(out, " {}", cue.settings);
    }
    let _ = writeln!(out, "\n{}", cue.text);
}

/// `hh:mm:ss.mmm`.
pub(crate) fn timestamp(ms: i64) -> String {
    let ms = ms.max(0);
    format!("{:02}:{:02}:{:02}.{:03}", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cue(start_ms: i64, end_ms: i64, text: &str) -> Cue {
        Cue { start_ms, end_ms, settings: String::new(), text: text.into() }
    }

    #[test]
    fn a_cue_across_a_segment_edge_is_in_both_segments() {
        let cues = [cue(1000, 2000, "one"), cue(5500, 6500, "across"), cue(7000, 8000, "two")];
        let first = segment(&cues, (0, 6000), 6000);
        assert_eq!(
            first,
            "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:6000,LOCAL:00:00:00.000\n\n00:00:01.000 --> 00:00:02.000\none\n\n\
             00:00:05.500 --> 00:00:06.500\nacross\n"
        );
        let second = segment(&cues, (6000, 12000), 6000);
        assert!(second.contains("across") && second.contains("two") && !second.contains("one"), "{second}");
    }

    #[test]
    fn timestamps_have_hours() {
        assert_eq!(timestamp(3_723_004), "01:02:03.004");
        assert_eq!(timestamp(0), "00:00:00.000");
    }
}
