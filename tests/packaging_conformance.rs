//! What independent validators found in the packaging (issue 20, part 6), each pinned on a
//! real ladder and read back with independent parsers: roxmltree for the MPD, ffprobe for
//! the segments' time stamps, the bytes for `ftyp`, the test's own HLS parser.

#![allow(clippy::unwrap_used, reason = "helpers of a test fail it loudly, like the test itself")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::playlist;

/// One ladder for every check: 14.2 s at 25 fps, so the last GOP is 0.2 s long (the short
/// I-frame interval) and the audio's segments straddle the 6 s grid by an AAC frame.
fn ladder() -> &'static Path {
    static OUT: OnceLock<tempfile::TempDir> = OnceLock::new();
    OUT.get_or_init(|| {
        let input = common::pattern("conformance.mp4", "640x360", "25", "14.2", &[]);
        let out = tempfile::tempdir().unwrap();
        let (code, _, stderr) = common::run(&[
            "run",
            input.to_str().unwrap(),
            "--out",
            out.path().to_str().unwrap(),
            "--preset",
            common::repo("presets/small.toml").to_str().unwrap(),
            "--progress",
            "off",
        ]);
        assert_eq!(code, 0, "{stderr}");
        out
    })
    .path()
}

/// The track folders (`v0`, `v1`, `a0`) of the ladder.
fn track_dirs(out: &Path) -> Vec<String> {
    let mut dirs: Vec<String> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| out.join(name).join("init.mp4").exists())
        .collect();
    dirs.sort();
    assert!(dirs.iter().any(|d| d.starts_with('v')) && dirs.iter().any(|d| d.starts_with('a')), "{dirs:?}");
    dirs
}

/// The earliest presentation time, in seconds, of segment `n` of track `dir` (its init
/// segment and that segment alone, read by ffprobe).
fn earliest_pts(out: &Path, dir: &str, n: u64) -> f64 {
    let scratch = tempfile::tempdir().unwrap();
    let file: PathBuf = scratch.path().join("one.mp4");
    let bytes = [
        std::fs::read(out.join(dir).join("init.mp4")).unwrap(),
        std::fs::read(out.join(dir).join(format!("seg_{n}.m4s"))).unwrap(),
    ]
    .concat();
    std::fs::write(&file, bytes).unwrap();
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "packet=pts_time", "-of", "csv=p=0"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(probe.status.success(), "{}", String::from_utf8_lossy(&probe.stderr));
    let text = String::from_utf8(probe.stdout).unwrap();
    text.lines().map(|l| l.trim_end_matches(',').parse::<f64>().unwrap()).fold(f64::INFINITY, f64::min)
}

/// (number, t, d) of each segment of a `SegmentTemplate`'s timeline.
fn expand(template: roxmltree::Node<'_, '_>) -> Vec<(u64, u64, u64)> {
    let number = |n: roxmltree::Node<'_, '_>, a: &str| n.attribute(a).unwrap().parse::<u64>().unwrap();
    let mut next = number(template, "startNumber");
    let (mut out, mut t) = (Vec::new(), 0);
    let timeline = template.children().find(|c| c.has_tag_name("SegmentTimeline")).unwrap();
    for s in timeline.children().filter(|c| c.has_tag_name("S")) {
        t = s.attribute("t").map_or(t, |v| v.parse().unwrap());
        let (d, r) = (number(s, "d"), s.attribute("r").map_or(0, |v| v.parse().unwrap()));
        for _ in 0..=r {
            out.push((next, t, d));
            next += 1;
            t += d;
        }
    }
    out
}

/// DASH-IF IOP: `S@t` is a segment's earliest presentation time, read here from the media
/// itself (ffprobe on the init and that segment alone), for every segment of every
/// representation; with `presentationTimeOffset` at the first segment's, every track
/// starts at the Period's start, together.
#[test]
fn dash_segment_times_are_earliest_presentation_times_and_tracks_start_together() {
    let out = ladder();
    let text = std::fs::read_to_string(out.join("manifest.mpd")).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    let mut starts = Vec::new();
    for representation in doc.descendants().filter(|n| n.has_tag_name("Representation")) {
        let dir = representation.attribute("id").unwrap();
        let template = representation
            .children()
            .chain(representation.parent().unwrap().children())
            .find(|c| c.has_tag_name("SegmentTemplate"))
            .unwrap();
        let timescale: f64 = template.attribute("timescale").unwrap().parse().unwrap();
        let offset: u64 = template.attribute("presentationTimeOffset").unwrap().parse().unwrap();
        let segments = expand(template);
        for &(n, t, d) in &segments {
            let pts = earliest_pts(out, dir, n);
            assert!(
                (t as f64 / timescale - pts).abs() <= 0.5 / timescale,
                "{dir} segment {n}: S@t {t} is {} s, its earliest presentation is at {pts} s",
                t as f64 / timescale
            );
            if let Some(&(_, next, _)) = segments.iter().find(|s| s.0 == n + 1) {
                assert_eq!(t + d, next, "{dir} segment {n}: @d spans to the next segment");
            }
        }
        starts.push((dir.to_owned(), (segments[0].1 as f64 - offset as f64) / timescale));
    }
    assert!(starts.len() >= 3, "{starts:?}");
    for (dir, start) in &starts {
        assert!(start.abs() < 1e-9, "{dir} starts at {start} s of the Period, not 0: {starts:?}");
    }
}

#[test]
fn every_init_segment_lists_the_cmaf_brand() {
    let out = ladder();
    for dir in track_dirs(out) {
        let bytes = std::fs::read(out.join(&dir).join("init.mp4")).unwrap();
        assert_eq!(&bytes[4..8], b"ftyp", "{dir}: ftyp first");
        let size = u32::from_be_bytes(bytes[0..4].try_into().unwrap()) as usize;
        let brands: Vec<String> = bytes[16..size].chunks(4).map(|b| String::from_utf8_lossy(b).into_owned()).collect();
        assert!(brands.iter().any(|b| b == "cmfc"), "{dir}: compatible brands {brands:?}");
    }
}

#[test]
fn no_extinf_exceeds_its_playlists_target_duration() {
    let out = ladder();
    let mut audio_longest = 0.0_f64;
    for dir in track_dirs(out) {
        for name in ["index.m3u8", "iframes.m3u8"] {
            let Ok(text) = std::fs::read_to_string(out.join(&dir).join(name)) else { continue };
            let list = playlist::parse_media(&text).unwrap();
            let target = list.target_duration.unwrap() as f64;
            let longest = list.segments.iter().map(|s| s.duration).fold(0.0, f64::max);
            assert!(longest <= target, "{dir}/{name}: EXTINF {longest} > EXT-X-TARGETDURATION {target}");
            if dir.starts_with('a') {
                audio_longest = audio_longest.max(longest);
            }
        }
    }
    assert!(
        audio_longest > 6.0,
        "the audio has a segment past the 6 s grid line ({audio_longest} s), as AAC frames make"
    );
}

#[test]
fn iframe_bandwidth_is_the_peak_over_whole_key_frame_intervals() {
    let out = ladder();
    let master = playlist::parse_master(&std::fs::read_to_string(out.join("master.m3u8")).unwrap()).unwrap();
    assert!(!master.iframe_streams.is_empty());
    for stream in &master.iframe_streams {
        let uri = stream.req("URI");
        let list = playlist::parse_media(&std::fs::read_to_string(out.join(uri)).unwrap()).unwrap();
        let rates: Vec<f64> =
            list.segments.iter().map(|s| s.byte_range.as_ref().unwrap().length as f64 * 8.0 / s.duration).collect();
        let (last, whole) = rates.split_last().unwrap();
        let peak = whole.iter().copied().fold(0.0, f64::max);
        let bandwidth = stream.int("BANDWIDTH") as f64;
        assert!(
            list.segments.last().unwrap().duration < 0.5,
            "{uri}: the recording ends with a short key frame interval, the case this pins"
        );
        assert!(*last > 2.0 * peak, "{uri}: over its own short interval the last would dominate ({last} vs {peak})");
        assert!(bandwidth >= peak.floor(), "{uri}: BANDWIDTH {bandwidth} below the peak {peak}");
        assert!(bandwidth <= 1.5 * peak, "{uri}: BANDWIDTH {bandwidth} is over 1.5 × the peak {peak}");
    }
}
